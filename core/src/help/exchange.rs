//! The help board part of a sync, without I/O: [`request_part`] reads this device's waiting
//! steps and a cursor per space; [`apply_part`] takes the answer inside the sync's transaction
//! (outcomes, then the log's new entries, each once, in log order).

use quartier_protocol::help::{HelpAction, HelpEvent, HelpRequest, HelpResponse, MAX_HELP_ENTRIES};
use rusqlite::{params, Connection};

use crate::error::{parse_stored_uuid as parse, Result};
use crate::store::Touched;
use crate::sync::server_log::ServerLog;

/// The ids of the steps a request carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushedHelp {
    ids: Vec<String>,
}

/// The help part of the next request.
pub(crate) fn request_part(conn: &Connection) -> Result<(HelpRequest, PushedHelp)> {
    let mut req = HelpRequest::default();
    let mut pushed = PushedHelp::default();
    let mut stmt = conn.prepare_cached(
        "SELECT id, space_id, request_id, action, person_id, note, contact, created_at FROM help_outbox
         WHERE refused IS NULL ORDER BY rowid LIMIT ?1",
    )?;
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        String,
        i64,
    );
    let rows = stmt.query_map([MAX_HELP_ENTRIES as i64], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })?;
    for row in rows {
        let (id, space, request, action, person, note, contact, at_ms): Row = row?;
        req.actions.push(HelpAction {
            id: parse(&id)?,
            space: parse(&space)?,
            request: parse(&request)?,
            action,
            person: person.as_deref().map(parse).transpose()?,
            note,
            contact,
            at_ms,
        });
        pushed.ids.push(id);
    }
    req.cursors = ServerLog::Help.cursors(conn)?;
    Ok((req, pushed))
}

/// Takes the answer to a request that carried `pushed`; whether more entries wait.
pub(crate) fn apply_part(
    tx: &Connection,
    pushed: &PushedHelp,
    response: &HelpResponse,
    touched: &mut Touched,
) -> Result<bool> {
    for outcome in &response.outcomes {
        let id = outcome.id.to_string();
        if !pushed.ids.contains(&id) {
            continue;
        }
        let request: Option<String> = rusqlite::OptionalExtension::optional(
            tx.prepare_cached("SELECT request_id FROM help_outbox WHERE id = ?1")?
                .query_row([&id], |r| r.get(0)),
        )?;
        let Some(request) = request else { continue };
        ServerLog::Help.settle(tx, outcome)?;
        touched.items.insert(request);
    }
    for event in &response.events {
        let space = event.space.to_string();
        let taken = ServerLog::Help.take_once(tx, &space, event.seq, || {
            record(tx, event)?;
            crate::notifications::help_entry(tx, event, touched)
        })?;
        if taken {
            touched.items.insert(event.request.to_string());
            touched.spaces.insert(space);
        }
    }
    for cursor in &response.cursors {
        ServerLog::Help.advance(tx, &cursor.space.to_string(), cursor.after)?;
    }
    Ok(response.more)
}

fn record(tx: &Connection, e: &HelpEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO help_log (space_id, seq, request_id, action, actor, person_id, note, contact, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.space.to_string(),
        e.seq,
        e.request.to_string(),
        e.action,
        e.actor.map(|a| a.to_string()),
        e.person.map(|p| p.to_string()),
        e.note,
        e.contact,
        e.at_ms
    ])?;
    Ok(())
}
