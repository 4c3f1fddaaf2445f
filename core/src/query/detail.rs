//! One item in detail: the item, its history (who changed which fields, when, from which
//! device) and its comments.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};

use super::{item_from_row, Filter, ITEM_COLUMNS};
use crate::error::{Error, Result};
use crate::model::{Item, ItemId, PersonId, Viewer};

/// One change in an item's history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HistoryEntry {
    /// Automerge change hash, hex. For the creation of a document this device keeps in creation
    /// form (not built yet, `docs/store.md`), its first 8 hex digits: a prefix of the full hash,
    /// which replaces it once the document is built; empty for an item created here whose change
    /// was not built yet (not pushed, not loaded); `pending-<n>` for an edit made here and kept
    /// as a patch, until its change is built (pushed, or the document loaded for a merge). Keys
    /// of changes not built yet are this device's own: another device names the same change by
    /// its hash.
    pub change: String,
    /// The device (Automerge actor), hex.
    pub device: String,
    /// The person on whose behalf the change was made, when the change says so.
    pub person: Option<PersonId>,
    pub at: DateTime<Utc>,
    /// Top-level fields the change touched (`created` for the first).
    pub fields: Vec<String>,
}

/// An item with its history and comments.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemDetail {
    pub item: Item,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
    /// Comments visible to the viewer, oldest first.
    pub comments: Vec<Item>,
}

pub(crate) fn item_detail(conn: &Connection, id: ItemId, viewer: &Viewer) -> Result<ItemDetail> {
    let not_found = || Error::NotFound {
        what: "item",
        id: id.to_string(),
    };
    let mut f = Filter::default();
    f.and("i.item_id = ?", [SqlValue::Text(id.to_string())])
        .visible_to(viewer);
    let item = conn
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM items i CROSS JOIN item_json j ON j.id = i.id WHERE {}",
            f.sql()
        ))?
        .query_row(f.params(), |r| Ok(item_from_row(r, 0)))
        .optional()?
        .ok_or_else(not_found)??;
    let mut history = Vec::new();
    // A creation kept in creation form and edits kept as patches have no row: the form and
    // the outbox entries say who, when and what.
    let doc_id = id.to_string();
    let unbuilt = crate::store::creation_history(conn, &doc_id)?
        .into_iter()
        .chain(crate::store::pending_edit_history(conn, &doc_id)?);
    for entry in unbuilt {
        history.push(HistoryEntry {
            change: entry.key,
            device: entry.actor,
            person: entry.note.as_ref().map(|n| n.by),
            at: DateTime::from_timestamp_millis(entry.time_ms).unwrap_or_default(),
            fields: entry.note.map(|n| n.fields).unwrap_or_default(),
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT hash, actor, person, at, fields FROM item_history WHERE item_id = ?1 ORDER BY at, hash",
    )?;
    let mut rows = stmt.query([id.to_string()])?;
    while let Some(row) = rows.next()? {
        let person: Option<String> = row.get(2)?;
        let fields: String = row.get(4)?;
        history.push(HistoryEntry {
            change: row.get(0)?,
            device: row.get(1)?,
            person: person.and_then(|p| p.parse().ok()),
            at: DateTime::from_timestamp_millis(row.get(3)?).unwrap_or_default(),
            fields: fields
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    }
    history.sort_by(|a, b| (a.at, &a.change).cmp(&(b.at, &b.change)));
    let mut f = Filter::default();
    f.and("i.parent_id = ?", [SqlValue::Text(id.to_string())])
        .visible_to(viewer);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items i CROSS JOIN item_json j ON j.id = i.id WHERE {} ORDER BY i.created_at, i.id",
        f.sql()
    ))?;
    let mut rows = stmt.query(f.params())?;
    let mut comments = Vec::new();
    while let Some(row) = rows.next()? {
        comments.push(item_from_row(row, 0)?);
    }
    Ok(ItemDetail {
        item,
        history,
        comments,
    })
}
