//! How an item is kept in its projection: the columns of `items` that queries filter and sort
//! on, plus `item_json.json` holding the rest of the item — its JSON without the fields those
//! columns already hold and without empty or null fields, compressed with zstd. The item reads
//! back by putting the two together ([`ITEM_COLUMNS`], [`item_from_row`]). The JSON is most of
//! a store; keeping each field once and compressing the text (bodies, opening hours) took it
//! from about 1 150 to about 450 bytes per item (`docs/store.md`).
//!
//! A row written before schema 15 holds the whole item as JSON text; it reads as before until
//! the projection rebuild of the upgrade rewrites it.

use std::cell::RefCell;

use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Item;

/// The columns an item reads back from, in the order [`item_from_row`] takes them (`i` is
/// `items`, `j` is `item_json`).
pub(crate) const ITEM_COLUMNS: &str =
    "i.item_id, i.space_id, i.author, i.created_at, i.updated_at, i.audience, i.status, i.valid_until, j.json";

/// Fields of the item's JSON that `items` holds in columns of its own, every one of them
/// written with the row since schema 2. (Not the title: `items.title` came with schema 13 and
/// is only filled by the projection rebuild of that upgrade, while the rebuild itself reads
/// items back.)
const IN_COLUMNS: [&str; 8] = [
    "id",
    "space",
    "author",
    "created_at",
    "updated_at",
    "audience",
    "status",
    "valid_until",
];

/// Fields that read back as their default when absent (`#[serde(default)]` in the model), left
/// out when empty. Only these: a required field is never left out, even empty.
const DEFAULTED: [&str; 5] = ["body", "tags", "location", "media", "on_behalf_of"];

/// The rest of an item's JSON decompressed is at most this large: an item document is at most
/// 1 MiB (the budget), this bounds a damaged row.
const MAX_REST: usize = 2 * 1024 * 1024;

/// zstd level for the rows: 3 is zstd's default, fast to write and to read.
const LEVEL: i32 = 3;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `item_json.json` of `item`: its JSON without what `items` holds, compressed. An item whose
/// rest is larger than a row may inflate to ([`MAX_REST`]: only a peer's oversized document
/// makes one) is kept whole as JSON text instead, which reads without that bound, as rows of
/// before schema 15 do: one such item never makes the queries that meet it fail.
pub(crate) fn encode_item_rest(item: &Item) -> Result<rusqlite::types::Value> {
    let corrupt = |e: &dyn std::fmt::Display| Error::document(item.id, e);
    let mut value = serde_json::to_value(item).map_err(|e| corrupt(&e))?;
    if let Value::Object(map) = &mut value {
        for key in IN_COLUMNS {
            map.remove(key);
        }
        for key in DEFAULTED {
            if map.get(key).is_some_and(is_empty) {
                map.remove(key);
            }
        }
    }
    let json = serde_json::to_vec(&value).map_err(|e| corrupt(&e))?;
    if json.len() > MAX_REST {
        let whole = serde_json::to_string(item).map_err(|e| corrupt(&e))?;
        return Ok(rusqlite::types::Value::Text(whole));
    }
    COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let compressor = match &mut *slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(LEVEL).map_err(|e| corrupt(&e))?),
        };
        compressor
            .compress(&json)
            .map(rusqlite::types::Value::Blob)
            .map_err(|e| corrupt(&e))
    })
}

/// Null, or an empty list, map or text: what the item's fields default to when absent.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Reads an item from [`ITEM_COLUMNS`], starting at column `first` of `row`.
pub(crate) fn item_from_row(row: &rusqlite::Row<'_>, first: usize) -> Result<Item> {
    let corrupt = |what: &str| Error::Corrupt(format!("item projection: {what}"));
    let rest = match row.get_ref(first + 8)? {
        // Written before schema 15, or too large to compress into a row: the whole item.
        ValueRef::Text(text) => {
            return serde_json::from_slice(text).map_err(|e| corrupt(&e.to_string()));
        }
        ValueRef::Blob(blob) => decompress(blob)?,
        _ => return Err(corrupt("no JSON")),
    };
    let id: String = row.get(first)?;
    let space: String = row.get(first + 1)?;
    let author: String = row.get(first + 2)?;
    let created_at: i64 = row.get(first + 3)?;
    let updated_at: i64 = row.get(first + 4)?;
    let audience: String = row.get(first + 5)?;
    let status: String = row.get(first + 6)?;
    let valid_until: Option<i64> = row.get(first + 7)?;
    // The columns hold ids, enum names and numbers the store wrote; they are written as JSON
    // strings anyway, so nothing in them can break the object.
    use std::fmt::Write as _;
    let mut json = String::with_capacity(rest.len() + 256);
    json.push('{');
    for (key, value) in [
        ("id", id),
        ("space", space),
        ("author", author),
        ("audience", audience),
        ("status", status),
    ] {
        // Written as JSON strings (escaped), whatever a damaged column holds.
        let _ = write!(json, "\"{key}\":{},", Value::String(value));
    }
    let _ = write!(json, "\"created_at\":{created_at},\"updated_at\":{updated_at}");
    if let Some(valid_until) = valid_until {
        let _ = write!(json, ",\"valid_until\":{valid_until}");
    }
    let rest = std::str::from_utf8(&rest).map_err(|_| corrupt("not UTF-8"))?;
    match rest.strip_prefix('{') {
        Some("}") => json.push('}'),
        Some(fields) => {
            json.push(',');
            json.push_str(fields);
        }
        None => return Err(corrupt("not a JSON map")),
    }
    serde_json::from_str(&json).map_err(|e| corrupt(&e.to_string()))
}

/// The item `item_id` from its projection, whoever may see it; `None` when it has none.
pub(crate) fn item_by_id(conn: &rusqlite::Connection, item_id: &str) -> Result<Option<Item>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items i JOIN item_json j ON j.id = i.id WHERE i.item_id = ?1"
    ))?
    .query_row([item_id], |r| Ok(item_from_row(r, 0)))
    .optional()?
    .transpose()
}

fn decompress(blob: &[u8]) -> Result<Vec<u8>> {
    // The frame says how large it inflates (the compressor writes it): exactly that much is
    // allocated, after checking it against the bound, instead of the bound every time.
    let size = match zstd::zstd_safe::get_frame_content_size(blob) {
        Ok(Some(size)) if size <= MAX_REST as u64 => size as usize,
        _ => {
            return Err(Error::Corrupt(
                "item projection: not a row this core wrote".into(),
            ))
        }
    };
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let decompressor = match &mut *slot {
            Some(d) => d,
            None => slot.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| Error::Corrupt(format!("item projection: {e}")))?,
            ),
        };
        decompressor
            .decompress(blob, size)
            .map_err(|e| Error::Corrupt(format!("item projection: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// Writes `item` as the projection does (the columns and the rest) and reads it back.
    fn round_trip(item: &Item) -> Item {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, item_id, space_id, author, created_at, updated_at,
                                 audience, status, valid_until);
             CREATE TABLE item_json (id INTEGER PRIMARY KEY, json);",
        )
        .unwrap();
        let c = &item.content;
        conn.execute(
            "INSERT INTO items VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                item.id.to_string(),
                item.space.to_string(),
                item.author.to_string(),
                item.created_at.timestamp_millis(),
                item.updated_at.timestamp_millis(),
                c.audience.as_str(),
                c.status.as_str(),
                c.valid_until.map(|t| t.timestamp_millis()),
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO item_json VALUES (1, ?1)",
            [encode_item_rest(item).unwrap()],
        )
        .unwrap();
        item_by_id(&conn, &item.id.to_string())
            .unwrap()
            .expect("the item")
    }

    /// Now, to the millisecond a projection keeps.
    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).unwrap()
    }

    fn item(content: ItemContent) -> Item {
        NewItem::new(SpaceId::new(), PersonId::new(), content).into_item(now())
    }

    #[test]
    fn items_read_back_whole_from_their_columns_and_compressed_rest() {
        let post = ItemContent::new(
            LocalizedText::single("de", "Quote \" and \\ and {\"json\": 1}"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        let bare = item(post.clone());
        assert_eq!(round_trip(&bare), bare, "no body, tags, location or media");
        let mut full = post;
        full.body = LocalizedText::single("ar", "مرحبا بالجيران");
        full.tags = ["fest".to_owned()].into_iter().collect();
        full.location = Some(Location::gps(50.94, 6.95, 3.5));
        full.audience = Audience::Volunteers;
        full.status = Status::Draft;
        full.valid_until = Some(now() + chrono::Duration::days(3));
        let full = item(full);
        assert_eq!(round_trip(&full), full);
        // An empty title is required, so it stays, and reads back.
        let mut untitled = item(ItemContent::new(
            LocalizedText::default(),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        ));
        untitled.content.body = LocalizedText::single("de", "nur Text");
        assert_eq!(round_trip(&untitled), untitled);
    }

    #[test]
    fn an_item_too_large_for_a_compressed_row_is_kept_whole_and_reads_back() {
        let mut content = ItemContent::new(
            LocalizedText::single("de", "Riesig"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        // Control characters are written six bytes each in JSON: 3 MiB of rest.
        content.body = LocalizedText::single("de", "\u{1}".repeat(MAX_REST / 6 + 1024));
        let huge = item(content);
        assert!(matches!(
            encode_item_rest(&huge).unwrap(),
            rusqlite::types::Value::Text(_)
        ));
        assert_eq!(round_trip(&huge), huge);
    }

    #[test]
    fn a_damaged_row_is_a_typed_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, item_id, space_id, author, created_at, updated_at,
                                 audience, status, valid_until);
             CREATE TABLE item_json (id INTEGER PRIMARY KEY, json);
             INSERT INTO items VALUES (1, 'x', 'y', 'z', 0, 0, 'everyone', 'published', NULL);
             INSERT INTO item_json VALUES (1, x'28b52ffd');",
        )
        .unwrap();
        assert!(matches!(item_by_id(&conn, "x"), Err(Error::Corrupt(_))));
        conn.execute("UPDATE item_json SET json = 42", []).unwrap();
        assert!(matches!(item_by_id(&conn, "x"), Err(Error::Corrupt(_))));
    }
}
