//! The search index written in batches. A write projects an item's folded texts into
//! `search_pending` (one small row, one page) instead of the FTS5 table, whose every commit
//! writes a segment, its structure record and merges (about six of the nineteen pages a create
//! wrote, and a quarter of a durable create's time). The pending rows go into `items_fts`
//! together: when [`BATCH`] have gathered, at the end of the write transaction that reaches it;
//! before any search, so that a search always sees every committed write (`Store::search`:
//! it reads in one snapshot with nothing pending, [`search_if_settled`], or searches inside
//! the write that indexed);
//! and at the end of every write while a live search is subscribed (its notifier reads on a
//! reader connection, which cannot index: a live search that finds items waiting gives no
//! result and runs again after the write that indexes them, `LiveQuery::run`).
//!
//! An edit leaves the item's FTS row where it is and marks its pending row `replaces`: the batch
//! deletes that FTS row before it inserts the new texts (an FTS5 delete at each edit wrote and
//! merged segments as an insert does). No search reads the index while anything is pending, so
//! the old row is never found. A removal (erasure, deletion, a space left) takes both rows out
//! at once ([`remove`], called by `projection`). May touch `search_pending` and `items_fts` only.

use rusqlite::{params, Connection};

use super::Touched;
use crate::error::Result;
use crate::query::{SearchHit, SearchRequest};

/// How many pending items a write transaction lets gather before it indexes them.
const BATCH: i64 = 16;

/// What every write transaction does to the index before it commits: index the batch when it
/// is full, or whatever waits while a live search is subscribed (its notifier reads on a
/// reader connection, after this commit); rewrite the index when the write removed items for
/// good.
pub(crate) fn before_commit(conn: &Connection, live_search: bool, touched: &mut Touched) -> Result<()> {
    index_pending(conn, if live_search { 1 } else { BATCH }, touched)?;
    if touched.words_removed {
        drop_removed_words(conn)?;
    }
    Ok(())
}

/// What an item's texts do to the index at the next batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pending {
    /// The item has no row in `items_fts` (it is new, or was deleted).
    New,
    /// The item's row in `items_fts` (if no earlier pending row says otherwise) is replaced.
    Replaces,
}

/// Records the folded texts of the item at `row_id` for the next batch. A pending row that is
/// there already keeps its `replaces`: it knows whether the index holds the item.
pub(crate) fn defer(
    conn: &Connection,
    row_id: i64,
    pending: Pending,
    title: &str,
    body: &str,
    extra: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO search_pending (id, title, body, extra, replaces) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, extra = excluded.extra",
    )?
    .execute(params![row_id, title, body, extra, pending == Pending::Replaces])?;
    Ok(())
}

/// Fills the index again from the items' projection rows, one item at a time, straight into
/// `items_fts`, in the caller's transaction: for a schema that changes the index's layout and nothing else (schema 28), where
/// a projection rebuild would rewrite every document and every row. Deleted items have no index
/// row, as [`super::projection::project_item`] leaves them.
pub(crate) fn rebuild(conn: &Connection) -> Result<()> {
    clear(conn)?;
    let sql = format!(
        "SELECT i.id, {} FROM items i JOIN item_json j ON j.id = i.id WHERE i.status != 'deleted'",
        crate::query::ITEM_COLUMNS
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut insert =
        conn.prepare("INSERT INTO items_fts (rowid, title, body, extra) VALUES (?1, ?2, ?3, ?4)")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let row_id: i64 = row.get(0)?;
        // A row that does not read is `Error::Corrupt`: the migration then owes the full
        // projection rebuild, which rebuilds from the documents and never fails an opening
        // over one document.
        let item = crate::query::item_from_row(row, 1)?;
        let [title, body, extra] = super::projection::search_texts(&item);
        insert.execute(params![row_id, title, body, extra])?;
    }
    Ok(())
}

/// Empties the index and what waits for it, before it is written again from scratch. FTS5's
/// `delete-all` drops every segment at once: a `DELETE` of every row only marks each deleted in
/// the contentless index, and with merges at deletion rare (schema 31) those rows stayed in the
/// file as a second, dead copy of the index that every search read through.
pub(crate) fn clear(conn: &Connection) -> Result<()> {
    conn.execute("INSERT INTO items_fts (items_fts) VALUES ('delete-all')", [])?;
    conn.execute("DELETE FROM search_pending", [])?;
    Ok(())
}

/// Takes the item at `row_id` out of the index and out of what is pending, at once.
pub(crate) fn remove(conn: &Connection, row_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM items_fts WHERE rowid = ?1")?
        .execute([row_id])?;
    conn.prepare_cached("DELETE FROM search_pending WHERE id = ?1")?
        .execute([row_id])?;
    Ok(())
}

/// Rewrites the search index without the words of items removed from it. FTS5 takes a removed
/// row's entries out of the doclists (`secure-delete`) but keeps a term whose doclist became
/// empty in its segment: an erased item's words stayed readable in the file. `optimize` merges
/// every segment into one, which drops them; its work grows with the index (about half a
/// second for 100 000 items here), so it runs once per write that removed content for good
/// (`Touched::words_removed`: erasure, a space or role left).
pub(crate) fn drop_removed_words(conn: &Connection) -> Result<()> {
    conn.execute("INSERT INTO items_fts (items_fts) VALUES ('optimize')", [])?;
    Ok(())
}

/// How many items wait to be indexed.
pub(crate) fn pending(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM search_pending")?
        .query_row([], |r| r.get(0))?)
}

/// The hits of `request` in one snapshot of `conn`, or `None` if items wait for the index
/// there (the caller indexes them first, or waits for the write that does).
pub(crate) fn search_if_settled(
    conn: &Connection,
    request: &SearchRequest,
) -> Result<Option<Vec<SearchHit>>> {
    let snapshot = conn.unchecked_transaction()?;
    if pending(&snapshot)? > 0 {
        return Ok(None);
    }
    let hits = crate::query::search(&snapshot, request)?;
    snapshot.commit()?;
    Ok(Some(hits))
}

/// Indexes every pending item when at least `at_least` wait, and marks their spaces touched
/// (a live search in them runs again, whichever write indexed them). Returns how many were
/// indexed.
pub(crate) fn index_pending(conn: &Connection, at_least: i64, touched: &mut Touched) -> Result<i64> {
    let waiting = pending(conn)?;
    if waiting == 0 || waiting < at_least {
        return Ok(0);
    }
    let mut spaces =
        conn.prepare_cached("SELECT DISTINCT i.space_id FROM search_pending p JOIN items i ON i.id = p.id")?;
    for space in spaces.query_map([], |r| r.get::<_, String>(0))? {
        touched.spaces.insert(space?);
    }
    let replaced: Vec<i64> = conn
        .prepare_cached("SELECT id FROM search_pending WHERE replaces = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for row_id in replaced {
        conn.prepare_cached("DELETE FROM items_fts WHERE rowid = ?1")?
            .execute([row_id])?;
    }
    conn.prepare_cached(
        "INSERT INTO items_fts (rowid, title, body, extra) SELECT id, title, body, extra FROM search_pending",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM search_pending")?.execute([])?;
    Ok(waiting)
}
