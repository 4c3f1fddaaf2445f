//! Moderation rows (`014_moderation.sql`): the log of reports and decisions per space, the state
//! the decisions leave (hidden items, blocked members, erased items), mutes, and the erasure of
//! an item's documents. Judging who may do what is `sync::moderation`'s.

use quartier_protocol::moderation::ModerationEvent;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::stored_uuid;
use crate::error::ServerError;

/// One entry to append to a space's log.
pub struct NewEntry<'a> {
    pub id: Uuid,
    pub space: Uuid,
    pub action: &'a str,
    pub item: Option<Uuid>,
    pub person: Option<Uuid>,
    pub actor: Uuid,
    /// `coordinators`, `members` or `person` (see `014_moderation.sql`).
    pub audience: &'a str,
    /// The item's audience when the entry was made (who of the members receives it).
    pub item_audience: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub text: Option<&'a str>,
    pub at: i64,
}

fn optional_uuid(text: Option<String>) -> rusqlite::Result<Option<Uuid>> {
    text.as_deref().map(stored_uuid).transpose()
}

/// Who sent the entry with this id, and for which space, if it was taken before.
pub fn entry_owner(conn: &Connection, id: Uuid) -> Result<Option<(Uuid, Uuid)>, ServerError> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT actor, space_id FROM moderation_log WHERE entry_id = ?1")?
        .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row
        .map(|(actor, space)| -> rusqlite::Result<_> { Ok((stored_uuid(&actor)?, stored_uuid(&space)?)) })
        .transpose()?)
}

/// Whether `reporter` has a report on `item` that no decision closed yet.
pub fn has_open_report(conn: &Connection, item: Uuid, reporter: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM moderation_log r WHERE r.item_id = ?1 AND r.action = 'report' AND r.actor = ?2
               AND r.seq > coalesce((SELECT max(d.seq) FROM moderation_log d WHERE d.item_id = ?1
                                     AND d.action IN ('hide', 'restore', 'erase', 'dismiss')), 0)",
        )?
        .exists([item.to_string(), reporter.to_string()])?)
}

pub fn append(conn: &Connection, e: &NewEntry<'_>) -> Result<i64, ServerError> {
    conn.prepare_cached(
        "INSERT INTO moderation_log (entry_id, space_id, action, item_id, person_id, actor, audience, item_audience,
                                     reason, text, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.id.to_string(),
        e.space.to_string(),
        e.action,
        e.item.map(|i| i.to_string()),
        e.person.map(|p| p.to_string()),
        e.actor.to_string(),
        e.audience,
        e.item_audience,
        e.reason,
        e.text,
        e.at
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Who reads a space's log: a coordinator all of it; anyone else the decisions about items
/// in the audiences they read (`audiences`) or of their own, and the decisions about
/// themselves. Filtered here, so that a cursor only ever moves over what its reader receives.
pub enum LogReader<'a> {
    Coordinator,
    Member { person: Uuid, audiences: &'a [&'a str] },
}

/// Entries of `space` after `after` that `reader` receives, oldest first, at most `limit`.
pub fn entries_after(
    conn: &Connection,
    space: Uuid,
    after: i64,
    limit: usize,
    reader: &LogReader<'_>,
) -> Result<Vec<ModerationEvent>, ServerError> {
    let mut args: Vec<rusqlite::types::Value> =
        vec![space.to_string().into(), after.into(), (limit as i64).into()];
    let filter = match reader {
        LogReader::Coordinator => String::new(),
        LogReader::Member { person, audiences } => {
            args.push(person.to_string().into());
            let readable = super::in_list(&mut args, audiences);
            format!(
                "AND ((audience = 'members' AND (item_audience IN ({readable}) OR person_id = ?4))
                      OR (audience = 'person' AND person_id = ?4))"
            )
        }
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, action, item_id, person_id, actor, reason, text, at FROM moderation_log
         WHERE space_id = ?1 AND seq > ?2 {filter} ORDER BY seq LIMIT ?3"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok(ModerationEvent {
            seq: r.get(0)?,
            space,
            action: r.get(1)?,
            item: optional_uuid(r.get(2)?)?,
            person: optional_uuid(r.get(3)?)?,
            actor: optional_uuid(r.get(4)?)?,
            reason: r.get(5)?,
            text: r.get(6)?,
            at_ms: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn is_hidden(conn: &Connection, item: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM hidden_items WHERE item_id = ?1")?
        .exists([item.to_string()])?)
}

pub fn set_hidden(
    conn: &Connection,
    space: Uuid,
    item: Uuid,
    hidden: bool,
    now: i64,
) -> Result<(), ServerError> {
    if hidden {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO hidden_items (item_id, space_id, since) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![item.to_string(), space.to_string(), now])?;
    } else {
        conn.prepare_cached("DELETE FROM hidden_items WHERE item_id = ?1")?
            .execute([item.to_string()])?;
    }
    Ok(())
}

pub fn is_blocked(conn: &Connection, space: Uuid, person: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blocked_members WHERE space_id = ?1 AND person_id = ?2")?
        .exists([space.to_string(), person.to_string()])?)
}

pub fn set_blocked(
    conn: &Connection,
    space: Uuid,
    person: Uuid,
    blocked: bool,
    now: i64,
) -> Result<(), ServerError> {
    if blocked {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO blocked_members (space_id, person_id, since) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![space.to_string(), person.to_string(), now])?;
    } else {
        conn.prepare_cached("DELETE FROM blocked_members WHERE space_id = ?1 AND person_id = ?2")?
            .execute([space.to_string(), person.to_string()])?;
    }
    Ok(())
}

/// The space of an erased item (`None`: never erased).
pub fn erased_in(conn: &Connection, item: Uuid) -> Result<Option<Uuid>, ServerError> {
    let space: Option<String> = conn
        .prepare_cached("SELECT space_id FROM erased_items WHERE item_id = ?1")?
        .query_row([item.to_string()], |r| r.get(0))
        .optional()?;
    Ok(optional_uuid(space)?)
}

/// Comments of `item` (by the parent recorded when they were stored), and comments of the space
/// stored before parents were recorded (the caller reads those documents to tell).
pub fn comments_of(
    conn: &Connection,
    space: Uuid,
    item: Uuid,
) -> Result<(Vec<Uuid>, Vec<Uuid>), ServerError> {
    let ids = |sql: &str, args: &[String]| -> Result<Vec<Uuid>, ServerError> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        Ok(rows
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|t| Uuid::parse_str(&t).ok())
            .collect())
    };
    let known = ids(
        "SELECT doc_id FROM docs WHERE parent_id = ?1 AND space_id = ?2",
        &[item.to_string(), space.to_string()],
    )?;
    let unknown = ids(
        "SELECT doc_id FROM docs WHERE space_id = ?1 AND item_kind = 'comment' AND parent_id IS NULL",
        &[space.to_string()],
    )?;
    Ok((known, unknown))
}

/// Records the item a comment belongs to (`None`: it cannot be read; recorded as the empty
/// string so that it is not read again).
pub fn set_parent(conn: &Connection, doc: Uuid, parent: Option<Uuid>) -> Result<(), ServerError> {
    conn.prepare_cached("UPDATE docs SET parent_id = ?2 WHERE doc_id = ?1")?
        .execute([doc.to_string(), parent.map(|p| p.to_string()).unwrap_or_default()])?;
    Ok(())
}

/// Removes documents from the server for good: their rows, every change, creation form and
/// blob reference; `item` is recorded as erased so that no change of it is taken again.
pub fn erase_documents(
    conn: &Connection,
    space: Uuid,
    item: Uuid,
    docs: &[Uuid],
    now: i64,
) -> Result<(), ServerError> {
    for doc in docs {
        let doc = doc.to_string();
        for sql in [
            "DELETE FROM log WHERE doc_id = ?1",
            "DELETE FROM doc_creations WHERE doc_id = ?1",
            "DELETE FROM blob_refs WHERE doc_id = ?1",
            "DELETE FROM hidden_items WHERE item_id = ?1",
            // The source key stays, without the item: the same record is not imported again.
            "UPDATE imported_items SET item_id = '' WHERE item_id = ?1",
            "DELETE FROM docs WHERE doc_id = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([&doc])?;
        }
        conn.prepare_cached(
            "INSERT OR IGNORE INTO erased_items (item_id, space_id, at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![doc, space.to_string(), now])?;
    }
    conn.prepare_cached("INSERT OR IGNORE INTO erased_items (item_id, space_id, at) VALUES (?1, ?2, ?3)")?
        .execute(params![item.to_string(), space.to_string(), now])?;
    Ok(())
}

pub fn set_muted(conn: &Connection, person: Uuid, muted: Uuid, on: bool) -> Result<(), ServerError> {
    let sql = if on {
        "INSERT OR IGNORE INTO mutes (person_id, muted_id) VALUES (?1, ?2)"
    } else {
        "DELETE FROM mutes WHERE person_id = ?1 AND muted_id = ?2"
    };
    conn.prepare_cached(sql)?
        .execute([person.to_string(), muted.to_string()])?;
    Ok(())
}

pub fn mute_count(conn: &Connection, person: Uuid) -> Result<usize, ServerError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM mutes WHERE person_id = ?1")?
        .query_row([person.to_string()], |r| r.get(0))?;
    Ok(n as usize)
}

pub fn muted(conn: &Connection, person: Uuid) -> Result<Vec<Uuid>, ServerError> {
    let mut stmt =
        conn.prepare_cached("SELECT muted_id FROM mutes WHERE person_id = ?1 ORDER BY muted_id")?;
    let rows = stmt.query_map([person.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|t| Uuid::parse_str(&t).ok())
        .collect())
}

pub fn set_setting(
    conn: &Connection,
    person: Uuid,
    kind: &str,
    value: &str,
    on: bool,
) -> Result<(), ServerError> {
    let sql = if on {
        "INSERT OR IGNORE INTO person_settings (person_id, kind, value) VALUES (?1, ?2, ?3)"
    } else {
        "DELETE FROM person_settings WHERE person_id = ?1 AND kind = ?2 AND value = ?3"
    };
    conn.prepare_cached(sql)?
        .execute([person.to_string().as_str(), kind, value])?;
    Ok(())
}

pub fn settings(
    conn: &Connection,
    person: Uuid,
) -> Result<Vec<quartier_protocol::moderation::PersonSetting>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, value FROM person_settings WHERE person_id = ?1 ORDER BY kind, value",
    )?;
    let rows = stmt.query_map([person.to_string()], |r| {
        Ok(quartier_protocol::moderation::PersonSetting {
            kind: r.get(0)?,
            value: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn setting_count(conn: &Connection, person: Uuid) -> Result<usize, ServerError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM person_settings WHERE person_id = ?1")?
        .query_row([person.to_string()], |r| r.get(0))?;
    Ok(n as usize)
}
