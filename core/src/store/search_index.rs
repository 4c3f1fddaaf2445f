//! The search index written in batches. A write projects an item's folded texts into
//! `search_pending` (one small row, one page) instead of the FTS5 table, whose every commit
//! writes a segment, its structure record and merges (about six of the nineteen pages a create
//! wrote, and a quarter of a durable create's time). The pending rows go into `items_fts`
//! together: when [`BATCH`] have gathered, at the end of the write transaction that reaches it;
//! before any search, so that a search always sees every committed write ([`Store::search`]);
//! and at the end of every write while a live search is subscribed (its notifier reads on a
//! reader connection, which cannot index).
//!
//! An item has an FTS row or a pending row, never both: projecting it clears both first
//! (`projection::clear_secondary`). May touch `search_pending` and `items_fts` only.

use rusqlite::{params, Connection};

use crate::error::Result;

/// How many pending items a write transaction lets gather before it indexes them.
pub(crate) const BATCH: i64 = 16;

/// Records the folded texts of the item at `row_id` for the next batch.
pub(crate) fn defer(conn: &Connection, row_id: i64, title: &str, body: &str, extra: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO search_pending (id, title, body, extra) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, extra = excluded.extra",
    )?
    .execute(params![row_id, title, body, extra])?;
    Ok(())
}

/// Forgets what is pending for the item at `row_id` (its projection is rewritten or removed).
pub(crate) fn forget(conn: &Connection, row_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_pending WHERE id = ?1")?
        .execute([row_id])?;
    Ok(())
}

/// How many items wait to be indexed.
pub(crate) fn pending(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM search_pending")?
        .query_row([], |r| r.get(0))?)
}

/// Indexes every pending item when at least `at_least` wait. Returns how many were indexed.
pub(crate) fn index_pending(conn: &Connection, at_least: i64) -> Result<i64> {
    let waiting = pending(conn)?;
    if waiting == 0 || waiting < at_least {
        return Ok(0);
    }
    conn.prepare_cached(
        "INSERT INTO items_fts (rowid, title, body, extra) SELECT id, title, body, extra FROM search_pending",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM search_pending")?.execute([])?;
    Ok(waiting)
}
