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
    /// Oldest first; a device's changes made within one millisecond in the order it made them.
    pub history: Vec<HistoryEntry>,
    /// Comments visible to the viewer, oldest first.
    pub comments: Vec<Item>,
}

/// Where a change stands among its device's changes of one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Made {
    /// A row stored before schema 30, without its sequence number.
    Unknown,
    /// A built change, by its sequence number among its device's changes (a creation kept in
    /// creation form is the first).
    Built(i64),
    /// An edit kept as a patch, by its outbox position: built after every change the device
    /// built, in the order they were made.
    Pending(i64),
}

/// An item's history oldest first: by time, and the changes one device made within the same
/// millisecond in the order it made them (a hash says nothing about order), whether built or
/// still kept as patches.
fn in_order_made(mut history: Vec<(Made, HistoryEntry)>) -> Vec<HistoryEntry> {
    history.sort_by(|(made_a, a), (made_b, b)| {
        (a.at, &a.device, made_a, &a.change).cmp(&(b.at, &b.device, made_b, &b.change))
    });
    history.into_iter().map(|(_, entry)| entry).collect()
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
    let creation = crate::store::creation_history(conn, &doc_id)?.map(|c| (Made::Built(1), c));
    let pending = crate::store::pending_edit_history(conn, &doc_id)?
        .into_iter()
        .map(|e| (Made::Pending(e.position), e.entry));
    for (made, entry) in creation.into_iter().chain(pending) {
        history.push((
            made,
            HistoryEntry {
                change: entry.key,
                device: entry.actor,
                person: entry.note.as_ref().map(|n| n.by),
                at: DateTime::from_timestamp_millis(entry.time_ms).unwrap_or_default(),
                fields: entry.note.map(|n| n.fields).unwrap_or_default(),
            },
        ));
    }
    let mut stmt = conn
        .prepare_cached("SELECT hash, actor, person, at, fields, seq FROM item_history WHERE item_id = ?1")?;
    let mut rows = stmt.query([id.to_string()])?;
    while let Some(row) = rows.next()? {
        let person: Option<String> = row.get(2)?;
        let fields: String = row.get(4)?;
        let seq: Option<i64> = row.get(5)?;
        history.push((
            seq.map_or(Made::Unknown, Made::Built),
            HistoryEntry {
                change: row.get(0)?,
                device: row.get(1)?,
                person: person.and_then(|p| p.parse().ok()),
                at: DateTime::from_timestamp_millis(row.get(3)?).unwrap_or_default(),
                fields: fields
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
        ));
    }
    let history = in_order_made(history);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(change: &str, device: &str, at_ms: i64) -> HistoryEntry {
        HistoryEntry {
            change: change.to_owned(),
            device: device.to_owned(),
            person: None,
            at: DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
            fields: Vec::new(),
        }
    }

    /// Changes a device made within one millisecond keep the order it made them in, built or
    /// pending, whatever their hashes and however many digits their outbox positions have;
    /// time still comes first.
    #[test]
    fn a_devices_changes_within_one_millisecond_keep_the_order_they_were_made_in() {
        let history = vec![
            (Made::Pending(10), entry("pending-10", "aa", 5)),
            (Made::Built(3), entry("00ff", "aa", 5)),
            (Made::Pending(9), entry("pending-9", "aa", 5)),
            (Made::Built(2), entry("ff00", "aa", 5)),
            (Made::Built(1), entry("", "aa", 5)),
            (Made::Built(4), entry("0000", "aa", 4)),
            (Made::Unknown, entry("1111", "aa", 6)),
        ];
        let keys: Vec<_> = in_order_made(history).into_iter().map(|e| e.change).collect();
        assert_eq!(
            keys,
            ["0000", "", "ff00", "00ff", "pending-9", "pending-10", "1111"]
        );
    }
}
