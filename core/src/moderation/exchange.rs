//! The moderation part of a sync, without I/O: [`request_part`] reads what the request carries
//! (this device's reports and decisions, its person's mute changes, a cursor per space), and
//! [`apply_part`] takes the answer inside the sync's transaction: outcomes, the person's mutes,
//! and the log's new entries with what they decide (hidden, restored, erased, blocked).
//!
//! Entries are applied once, in log order: an entry at or before the space's cursor (a
//! response delivered late or twice) changes nothing.

use std::collections::BTreeSet;

use quartier_protocol::moderation::{
    Decision, ModerationEvent, ModerationRequest, ModerationResponse, MuteChange, Report, SettingChange,
    MAX_MODERATION_ENTRIES,
};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::refresh_hidden;
use crate::error::{parse_stored_uuid as parse, Result};
use crate::store::Touched;
use crate::sync::server_log::ServerLog;

/// What a request carried, to match the answer with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushedModeration {
    ids: Vec<String>,
    /// Mute changes sent, with the sequence each had (a change made since is sent again).
    mutes: Vec<(String, i64)>,
    /// Setting changes sent, likewise.
    settings: Vec<(String, String, i64)>,
}

/// The moderation part of the next request, for the spaces this device is a member of.
pub(crate) fn request_part(conn: &Connection) -> Result<(ModerationRequest, PushedModeration)> {
    let mut req = ModerationRequest::default();
    let mut pushed = PushedModeration::default();
    let mut stmt = conn.prepare_cached(
        "SELECT id, space_id, action, item_id, person_id, reason, text, created_at FROM moderation_outbox
         WHERE refused IS NULL ORDER BY rowid LIMIT ?1",
    )?;
    let rows = stmt.query_map([MAX_MODERATION_ENTRIES as i64], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    for row in rows {
        let (id, space, action, item, person, reason, text, at_ms) = row?;
        let (uid, space) = (parse(&id)?, parse(&space)?);
        let item = item.as_deref().map(parse).transpose()?;
        if action == "report" {
            let Some(item) = item else { continue };
            req.reports.push(Report {
                id: uid,
                space,
                item,
                reason: reason.unwrap_or_default(),
                text,
                at_ms,
            });
        } else {
            req.decisions.push(Decision {
                id: uid,
                space,
                action,
                item,
                person: person.as_deref().map(parse).transpose()?,
                note: text,
                at_ms,
            });
        }
        pushed.ids.push(id);
    }
    let mut stmt =
        conn.prepare_cached("SELECT person_id, muted, seq FROM mute_outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([MAX_MODERATION_ENTRIES as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, i64>(2)?))
    })?;
    for row in rows {
        let (person, muted, seq) = row?;
        req.mutes.push(MuteChange {
            person: parse(&person)?,
            muted,
        });
        pushed.mutes.push((person, seq));
    }
    let mut stmt =
        conn.prepare_cached("SELECT kind, value, \"on\", seq FROM settings_outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([MAX_MODERATION_ENTRIES as i64], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (kind, value, on, seq) = row?;
        req.settings.push(SettingChange {
            kind: kind.clone(),
            value: value.clone(),
            on,
        });
        pushed.settings.push((kind, value, seq));
    }
    req.cursors = ServerLog::Moderation.cursors(conn)?;
    Ok((req, pushed))
}

/// What applying the answer did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub more: bool,
    /// Documents erased from this device by the coordinators' decisions.
    pub erased: usize,
}

/// Takes the answer to a request that carried `pushed`.
pub(crate) fn apply_part(
    tx: &Connection,
    pushed: &PushedModeration,
    response: &ModerationResponse,
    touched: &mut Touched,
) -> Result<Applied> {
    let mut applied = Applied {
        more: response.more,
        ..Default::default()
    };
    // Outcomes: taken entries leave the outbox; refused ones stay, marked, for the app.
    let mut items = BTreeSet::new();
    for outcome in &response.outcomes {
        let id = outcome.id.to_string();
        if !pushed.ids.contains(&id) {
            continue;
        }
        let row: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT space_id, item_id FROM moderation_outbox WHERE id = ?1")?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((space, item)) = row else { continue };
        ServerLog::Moderation.settle(tx, outcome)?;
        touched.spaces.insert(space);
        items.extend(item);
    }
    // Mutes: the server's list, with the changes made since the request was built.
    for (person, seq) in &pushed.mutes {
        tx.prepare_cached("DELETE FROM mute_outbox WHERE person_id = ?1 AND seq = ?2")?
            .execute(params![person, seq])?;
    }
    let before: BTreeSet<String> = {
        let mut stmt = tx.prepare_cached("SELECT person_id FROM muted_persons")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut after: BTreeSet<String> = response.muted.iter().map(Uuid::to_string).collect();
    {
        let mut stmt = tx.prepare_cached("SELECT person_id, muted FROM mute_outbox")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        for row in rows {
            let (person, muted) = row?;
            if muted {
                after.insert(person);
            } else {
                after.remove(&person);
            }
        }
    }
    for person in before.symmetric_difference(&after) {
        if after.contains(person) {
            tx.prepare_cached("INSERT OR IGNORE INTO muted_persons (person_id) VALUES (?1)")?
                .execute([person])?;
        } else {
            tx.prepare_cached("DELETE FROM muted_persons WHERE person_id = ?1")?
                .execute([person])?;
        }
        refresh_hidden(tx, "author = ?1", person)?;
        let mut stmt = tx.prepare_cached("SELECT DISTINCT space_id FROM items WHERE author = ?1")?;
        for space in stmt.query_map([person], |r| r.get::<_, String>(0))? {
            touched.spaces.insert(space?);
        }
    }
    // Follows and turned-off kinds: the server's list, with the changes made since.
    for (kind, value, seq) in &pushed.settings {
        tx.prepare_cached("DELETE FROM settings_outbox WHERE kind = ?1 AND value = ?2 AND seq = ?3")?
            .execute(params![kind, value, seq])?;
    }
    if let Some(settings) = &response.settings {
        crate::notifications::take_settings(tx, settings)?;
    }
    // The log's new entries, each once.
    let me: Option<String> = tx
        .query_row("SELECT person_id FROM account", [], |r| r.get(0))
        .optional()?;
    for event in &response.events {
        let space = event.space.to_string();
        let taken = ServerLog::Moderation.take_once(tx, &space, event.seq, || {
            record(tx, event)?;
            crate::notifications::moderation_entry(tx, event, touched)?;
            applied.erased += decide(tx, event, me.as_deref(), touched, &mut items)?;
            Ok(())
        })?;
        if taken {
            touched.spaces.insert(space);
        }
    }
    for cursor in &response.cursors {
        ServerLog::Moderation.advance(tx, &cursor.space.to_string(), cursor.after)?;
    }
    for item in items {
        refresh_hidden(tx, "item_id = ?1", &item)?;
        touched.items.insert(item);
    }
    Ok(applied)
}

/// Forgets what this device received of a space's moderation log, to read it again from the
/// start (after a change of role: what the log shows depends on it).
pub(crate) fn forget_log(tx: &Connection, space: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM moderation_log WHERE space_id = ?1")?
        .execute([space])?;
    tx.prepare_cached("DELETE FROM moderation_cursors WHERE space_id = ?1")?
        .execute([space])?;
    Ok(())
}

fn record(tx: &Connection, e: &ModerationEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO moderation_log (space_id, seq, action, item_id, person_id, actor, reason, text, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.space.to_string(),
        e.seq,
        e.action,
        e.item.map(|i| i.to_string()),
        e.person.map(|p| p.to_string()),
        e.actor.map(|p| p.to_string()),
        e.reason,
        e.text,
        e.at_ms
    ])?;
    Ok(())
}

/// What one entry decides on this device; the documents it erased.
fn decide(
    tx: &Connection,
    e: &ModerationEvent,
    me: Option<&str>,
    touched: &mut Touched,
    items: &mut BTreeSet<String>,
) -> Result<usize> {
    let item = e.item.map(|i| i.to_string());
    match (e.action.as_str(), item) {
        ("hide", Some(item)) => {
            tx.prepare_cached("INSERT OR IGNORE INTO hidden_items (item_id) VALUES (?1)")?
                .execute([&item])?;
            items.insert(item);
        }
        ("restore", Some(item)) => {
            tx.prepare_cached("DELETE FROM hidden_items WHERE item_id = ?1")?
                .execute([&item])?;
            items.insert(item);
        }
        ("erase", Some(item)) => {
            tx.prepare_cached("DELETE FROM hidden_items WHERE item_id = ?1")?
                .execute([&item])?;
            items.remove(&item);
            return Ok(crate::store::erase_in(tx, &item, touched)?.unwrap_or(0));
        }
        ("block" | "unblock", _) if e.person.map(|p| p.to_string()).as_deref() == me && me.is_some() => {
            let sql = if e.action == "block" {
                "INSERT OR IGNORE INTO blocked_spaces (space_id) VALUES (?1)"
            } else {
                "DELETE FROM blocked_spaces WHERE space_id = ?1"
            };
            tx.prepare_cached(sql)?.execute([e.space.to_string()])?;
        }
        _ => {}
    }
    Ok(0)
}
