//! Projection rows: what queries read. Written from model values in the same transaction as
//! the document change that produced them, by local writes and merges alike.

use automerge::Change;
use rusqlite::{params, Connection, OptionalExtension};

use super::search_index::Pending;
use crate::document::ChangeNote;
use crate::error::{Error, Result};
use crate::model::{Item, ItemDetails, Space, Status};
use crate::search::fold_for_index;

/// The values of an item's projection rows that take work to make and need no connection: its
/// JSON without the columns, compressed; its title; its folded search texts. The bulk path makes
/// them on other threads while the writer stores the items before (`parallel`).
pub(crate) struct ItemRows {
    rest: rusqlite::types::Value,
    title: String,
    /// Made only when the write needs them (an edit that leaves the texts keeps their rows).
    texts: Option<[String; 3]>,
}

impl ItemRows {
    /// Every value, texts included.
    pub(crate) fn of(item: &Item) -> Result<Self> {
        Ok(Self {
            texts: Some(search_texts(item)),
            ..Self::without_texts(item)?
        })
    }

    fn without_texts(item: &Item) -> Result<Self> {
        Ok(Self {
            rest: crate::query::encode_item_rest(item)?,
            title: serde_json::to_string(&item.content.title).map_err(|e| Error::document(item.id, e))?,
            texts: None,
        })
    }
}

/// Writes (or rewrites) every projection row of an item.
pub(crate) fn project_item(conn: &Connection, item: &Item) -> Result<()> {
    project_item_over(conn, None, item)
}

/// [`project_item`] with its row values made already ([`ItemRows::of`]).
pub(crate) fn project_item_rows(conn: &Connection, item: &Item, rows: ItemRows) -> Result<()> {
    write_item(conn, None, item, rows)
}

/// [`project_item`] for an edit made here, `before` being the item exactly as its projection
/// held it: the secondary rows and search texts of the parts the edit left alone are kept as
/// they are instead of being deleted and written again (the map's R*Tree entry alone is
/// several pages).
pub(crate) fn project_item_over(conn: &Connection, before: Option<&Item>, item: &Item) -> Result<()> {
    write_item(conn, before, item, ItemRows::without_texts(item)?)
}

fn write_item(conn: &Connection, before: Option<&Item>, item: &Item, rows: ItemRows) -> Result<()> {
    let c = &item.content;
    let kept = Kept::between(before, item);
    let ItemRows { rest, title, texts } = rows;
    let item_id = item.id.to_string();
    let key = RowKey {
        space_id: item.space.to_string(),
        kind: item.kind().as_str().to_owned(),
        author: item.author.to_string(),
        parent_id: c.details.parent().map(|p| p.to_string()),
        created_at: item.created_at.timestamp_millis(),
    };
    let (lat, lon) = (
        c.location.as_ref().map(|l| l.lat),
        c.location.as_ref().map(|l| l.lon),
    );
    let valid_until = c.valid_until.map(|t| t.timestamp_millis());
    let updated_at = item.updated_at.timestamp_millis();
    // The row as it stands, with the columns `items`' indexes are made of.
    let existing = conn
        .prepare_cached(
            "SELECT id, space_id, kind, author, parent_id, created_at, status = 'deleted' FROM items
             WHERE item_id = ?1",
        )?
        .query_row([&item_id], |r| {
            let stored = RowKey {
                space_id: r.get(1)?,
                kind: r.get(2)?,
                author: r.get(3)?,
                parent_id: r.get(4)?,
                created_at: r.get(5)?,
            };
            Ok((r.get::<_, i64>(0)?, stored, r.get::<_, bool>(6)?))
        })
        .optional()?;
    let rewrite = existing.is_some();
    // Every stored item but a deleted one has its texts in the index or pending for it.
    let pending = match &existing {
        Some((_, _, false)) => Pending::Replaces,
        _ => Pending::New,
    };
    let row_id = match existing {
        // An edit that leaves every indexed column as it was (nearly all do) sets only the
        // others: SQLite rewrites the entries of every index whose columns an UPDATE sets, equal
        // or not, and the full upsert below touched four index pages per edit for nothing.
        Some((row_id, stored, _)) if stored == key => {
            conn.prepare_cached(
                "UPDATE items SET audience = ?2, status = ?3, updated_at = ?4, valid_until = ?5, title = ?6,
                                  lat = ?7, lon = ?8
                 WHERE id = ?1",
            )?
            .execute(params![
                row_id,
                c.audience.as_str(),
                c.status.as_str(),
                updated_at,
                valid_until,
                title,
                lat,
                lon
            ])?;
            row_id
        }
        _ => conn
            .prepare_cached(
                "INSERT INTO items (item_id, space_id, kind, author, parent_id, audience, status, created_at,
                                    updated_at, valid_until, title, lat, lon)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (item_id) DO UPDATE SET
                    space_id = excluded.space_id, kind = excluded.kind, author = excluded.author,
                    parent_id = excluded.parent_id, audience = excluded.audience, status = excluded.status,
                    created_at = excluded.created_at, updated_at = excluded.updated_at,
                    valid_until = excluded.valid_until, title = excluded.title, lat = excluded.lat,
                    lon = excluded.lon
                 RETURNING id",
            )?
            .query_row(
                params![
                    item_id,
                    key.space_id,
                    key.kind,
                    key.author,
                    key.parent_id,
                    c.audience.as_str(),
                    c.status.as_str(),
                    key.created_at,
                    updated_at,
                    valid_until,
                    title,
                    lat,
                    lon,
                ],
                |r| r.get(0),
            )?,
    };
    conn.prepare_cached(
        "INSERT INTO item_json (id, json) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET json = excluded.json",
    )?
    .execute(params![row_id, rest])?;
    // Hidden by the coordinators or muted: worked out only where such state exists (made
    // inline in the insert, the lookups cost a create about a third of its time).
    if crate::moderation::any_hiding(conn)? {
        crate::moderation::refresh_hidden(conn, "item_id = ?1", &item_id)?;
    }
    // A new row has no secondary rows to clear (every removal of a row clears its own first,
    // `remove_item`): the lookup above instead of six deletes on the create and bulk paths.
    let kept = if rewrite { kept } else { Kept::default() };
    if rewrite {
        clear_secondary(conn, row_id, &kept)?;
        if c.status == Status::Deleted {
            super::search_index::remove(conn, row_id)?;
        }
    }
    if c.status == Status::Deleted {
        return Ok(());
    }
    if !kept.media {
        insert_media(conn, item, row_id)?;
    }
    if !kept.tags {
        for tag in &c.tags {
            conn.prepare_cached("INSERT OR IGNORE INTO item_tags (tag, item) VALUES (?1, ?2)")?
                .execute(params![tag, row_id])?;
        }
    }
    if !kept.texts {
        let [title, body, extra] = texts.unwrap_or_else(|| search_texts(item));
        super::search_index::defer(conn, row_id, pending, &title, &body, &extra)?;
    }
    if !kept.location {
        if let Some(loc) = &c.location {
            conn.prepare_cached(
                "INSERT INTO items_geo (id, min_lat, max_lat, min_lon, max_lon) VALUES (?1, ?2, ?2, ?3, ?3)",
            )?
            .execute(params![row_id, loc.lat, loc.lon])?;
        }
    }
    if !kept.details {
        insert_schedules(conn, item, row_id)?;
    }
    Ok(())
}

/// Which parts of an item an edit left as they were, so that their rows stay (all false for a
/// new row, a merge, or an edit that deletes or restores the item).
#[derive(Default)]
struct Kept {
    media: bool,
    tags: bool,
    location: bool,
    /// The kind's details: opening hours and event series.
    details: bool,
    /// Everything the search texts are made of (`search_texts`).
    texts: bool,
}

impl Kept {
    fn between(before: Option<&Item>, item: &Item) -> Self {
        let Some(before) = before else {
            return Self::default();
        };
        let (old, new) = (&before.content, &item.content);
        if old.status == Status::Deleted || new.status == Status::Deleted {
            return Self::default();
        }
        let media = old.media == new.media;
        let tags = old.tags == new.tags;
        let details = old.details == new.details;
        Self {
            media,
            tags,
            location: old.location.as_ref().map(|l| (l.lat, l.lon))
                == new.location.as_ref().map(|l| (l.lat, l.lon)),
            details,
            texts: media
                && tags
                && details
                && old.title == new.title
                && old.body == new.body
                && old.on_behalf_of == new.on_behalf_of,
        }
    }
}

fn insert_media(conn: &Connection, item: &Item, row_id: i64) -> Result<()> {
    for (position, reference) in item.content.media.iter().enumerate() {
        let reference = serde_json::to_string(reference).map_err(|e| Error::document(item.id, e))?;
        conn.prepare_cached("INSERT INTO item_media (item, position, reference) VALUES (?1, ?2, ?3)")?
            .execute(params![row_id, position as i64, reference])?;
    }
    Ok(())
}

/// An offer's opening hours and an event's series.
fn insert_schedules(conn: &Connection, item: &Item, row_id: i64) -> Result<()> {
    match &item.content.details {
        ItemDetails::Offer(offer) if !offer.schedules.is_empty() => {
            let rules = serde_json::to_string(&offer.schedules).map_err(|e| Error::document(item.id, e))?;
            conn.prepare_cached("INSERT INTO offer_hours (item, rules) VALUES (?1, ?2)")?
                .execute(params![row_id, rules])?;
        }
        ItemDetails::Event(event) => {
            // A timing that no longer evaluates (merged from a newer peer) leaves the event out of
            // calendar queries; the item itself stays readable.
            if let Ok((first_start, last_end)) = event.timing.series_bounds() {
                let timing = serde_json::to_string(&event.timing).map_err(|e| Error::document(item.id, e))?;
                conn.prepare_cached(
                    "INSERT INTO event_series (item, first_start, last_end, timing) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    row_id,
                    first_start.timestamp_millis(),
                    last_end.map(|t| t.timestamp_millis()),
                    timing
                ])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The columns of an `items` row that its indexes are made of (besides `id` and `item_id`).
#[derive(PartialEq)]
struct RowKey {
    space_id: String,
    kind: String,
    author: String,
    parent_id: Option<String>,
    created_at: i64,
}

/// Removes the secondary rows of an item (tags, media, map, hours, events) but the ones of
/// `kept` parts, not its texts in the search index: a rewrite replaces those at the next batch
/// (`search_index::defer`), a removal takes them out itself (`search_index::remove`).
fn clear_secondary(conn: &Connection, row_id: i64, kept: &Kept) -> Result<()> {
    for (sql, keep) in [
        ("DELETE FROM item_tags WHERE item = ?1", kept.tags),
        ("DELETE FROM item_media WHERE item = ?1", kept.media),
        ("DELETE FROM items_geo WHERE id = ?1", kept.location),
        ("DELETE FROM offer_hours WHERE item = ?1", kept.details),
        ("DELETE FROM event_series WHERE item = ?1", kept.details),
    ] {
        if !keep {
            conn.prepare_cached(sql)?.execute([row_id])?;
        }
    }
    Ok(())
}

/// Removes every projection row of an item, its history included.
pub(crate) fn remove_item(conn: &Connection, item_id: &str) -> Result<()> {
    let row_id: Option<i64> = conn
        .query_row("SELECT id FROM items WHERE item_id = ?1", [item_id], |r| r.get(0))
        .optional()?;
    if let Some(row_id) = row_id {
        clear_secondary(conn, row_id, &Kept::default())?;
        super::search_index::remove(conn, row_id)?;
        conn.execute("DELETE FROM item_json WHERE id = ?1", [row_id])?;
        conn.execute("DELETE FROM items WHERE id = ?1", [row_id])?;
    }
    conn.execute("DELETE FROM item_history WHERE item_id = ?1", [item_id])?;
    Ok(())
}

/// The item's title, body and other words (`extra_text`) as the search index holds them.
pub(super) fn search_texts(item: &Item) -> [String; 3] {
    [
        fold_for_index(&item.content.title.joined()),
        fold_for_index(&item.content.body.joined()),
        fold_for_index(&extra_text(item)),
    ]
}

/// Words searched besides title and body: tags and the kind's names and categories.
fn extra_text(item: &Item) -> String {
    let mut parts: Vec<&str> = item.content.tags.iter().map(String::as_str).collect();
    match &item.content.details {
        ItemDetails::Offer(o) => {
            parts.push(&o.organization.name);
            parts.extend(o.category.as_deref());
            parts.extend(o.location.as_ref().map(|l| l.name.as_str()));
        }
        ItemDetails::Place(p) => {
            parts.extend(p.category.as_deref());
            if let Some(a) = &p.address {
                parts.extend([a.street.as_str(), a.city.as_str()]);
            }
        }
        ItemDetails::Event(e) => parts.extend(e.venue.as_deref()),
        ItemDetails::Request(r) => parts.push(&r.category),
        ItemDetails::Observation(o) => {
            parts.push(&o.preset);
            parts.extend(o.category.as_deref());
        }
        ItemDetails::Post(_) | ItemDetails::Comment(_) => {}
    }
    if let Some(behalf) = &item.content.on_behalf_of {
        parts.push(&behalf.name);
    }
    // What media say for people who cannot see or hear them is found by search too.
    let media: Vec<String> = item
        .content
        .media
        .iter()
        .flat_map(|m| [m.alt_text.joined(), m.caption.joined(), m.transcript.joined()])
        .filter(|t| !t.is_empty())
        .collect();
    parts.extend(media.iter().map(String::as_str));
    parts.join(" ")
}

/// Writes the space row.
pub(crate) fn project_space(conn: &Connection, space: &Space, now_ms: i64) -> Result<()> {
    let json = serde_json::to_string(space).map_err(|e| Error::document(space.id, e))?;
    conn.prepare_cached(
        "INSERT INTO spaces (space_id, time_zone, json, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (space_id) DO UPDATE SET time_zone = excluded.time_zone, json = excluded.json,
                                              updated_at = excluded.updated_at",
    )?
    .execute(params![space.id.to_string(), space.meta.time_zone, json, now_ms])?;
    Ok(())
}

/// Records one change of an item document in its history. The change's sequence number among
/// its device's changes orders the changes one device made within the same millisecond.
pub(crate) fn record_history(conn: &Connection, item_id: &str, change: &Change) -> Result<()> {
    let note = ChangeNote::decode(change.message());
    let fields = note.as_ref().map(|n| n.fields.join(",")).unwrap_or_default();
    conn.prepare_cached(
        "INSERT OR IGNORE INTO item_history (item_id, hash, actor, person, at, fields, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        item_id,
        change.hash().to_string(),
        change.actor_id().to_hex_string(),
        note.map(|n| n.by.to_string()),
        change.timestamp(),
        fields,
        i64::try_from(change.seq()).unwrap_or(i64::MAX),
    ])?;
    Ok(())
}

/// Schema 30's step: the sequence numbers of the history rows that share an item, a device and
/// a millisecond (the only rows whose order they decide), read from their documents, so that an
/// upgraded device shows them in the order made as every other device does. A document that does
/// not load keeps its rows without (ordered by hash, as before) rather than fail the upgrade.
pub(crate) fn fill_history_seq(conn: &Connection) -> Result<()> {
    let items: Vec<String> = conn
        .prepare("SELECT DISTINCT item_id FROM item_history GROUP BY item_id, actor, at HAVING count(*) > 1")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for item_id in items {
        let loaded = match super::documents::load(conn, &item_id, &automerge::ActorId::random()) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(doc = %item_id, error = %e, "history order not filled in");
                continue;
            }
        };
        let Ok(changes) = crate::document::guarded::changes_since(&loaded.doc, &[]) else {
            continue;
        };
        for change in changes {
            conn.prepare_cached("UPDATE item_history SET seq = ?3 WHERE item_id = ?1 AND hash = ?2")?
                .execute(params![
                    item_id,
                    change.hash().to_string(),
                    i64::try_from(change.seq()).unwrap_or(i64::MAX)
                ])?;
        }
    }
    Ok(())
}
