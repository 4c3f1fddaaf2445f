//! Help board rows (`015_help.sql`): the log of each request's flow per space and where each
//! request stands. Judging who may take which step is `sync::help`'s.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::stored_uuid;
use crate::error::ServerError;

/// One log row.
#[derive(Clone, Debug)]
pub struct HelpRow {
    pub seq: i64,
    pub request: Uuid,
    pub author: Uuid,
    pub action: String,
    pub actor: Uuid,
    pub person: Option<Uuid>,
    pub note: String,
    pub contact: String,
    pub at: i64,
}

/// Where a request stands: `open` (also when it has no row), `agreed`, `done`, `withdrawn`.
pub struct HelpState {
    pub state: String,
    pub agreed_with: Option<Uuid>,
}

/// Who sent the entry with this id, for which space, request and step, if it was taken before.
pub fn entry_owner(conn: &Connection, id: Uuid) -> Result<Option<(Uuid, Uuid, Uuid, String)>, ServerError> {
    let row: Option<(String, String, String, String)> = conn
        .prepare_cached("SELECT actor, space_id, request_id, action FROM help_log WHERE entry_id = ?1")?
        .query_row([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(row
        .map(|(actor, space, request, action)| -> rusqlite::Result<_> {
            Ok((
                stored_uuid(&actor)?,
                stored_uuid(&space)?,
                stored_uuid(&request)?,
                action,
            ))
        })
        .transpose()?)
}

pub fn state(conn: &Connection, request: Uuid) -> Result<HelpState, ServerError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT state, agreed_with FROM help_state WHERE request_id = ?1")?
        .query_row([request.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((state, agreed_with)) => HelpState {
            state,
            agreed_with: agreed_with.as_deref().map(stored_uuid).transpose()?,
        },
        None => HelpState {
            state: "open".into(),
            agreed_with: None,
        },
    })
}

pub fn set_state(
    conn: &Connection,
    space: Uuid,
    request: Uuid,
    state: &str,
    agreed_with: Option<Uuid>,
) -> Result<(), ServerError> {
    conn.prepare_cached(
        "INSERT INTO help_state (request_id, space_id, state, agreed_with) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (request_id) DO UPDATE SET state = excluded.state, agreed_with = excluded.agreed_with",
    )?
    .execute(params![
        request.to_string(),
        space.to_string(),
        state,
        agreed_with.map(|p| p.to_string())
    ])?;
    Ok(())
}

/// The contact `person` gave with their response to `request`, if they responded.
pub fn response_of(conn: &Connection, request: Uuid, person: Uuid) -> Result<Option<String>, ServerError> {
    Ok(conn
        .prepare_cached(
            "SELECT contact FROM help_log WHERE request_id = ?1 AND action = 'respond' AND actor = ?2 LIMIT 1",
        )?
        .query_row([request.to_string(), person.to_string()], |r| r.get(0))
        .optional()?)
}

pub struct NewHelpEntry<'a> {
    pub id: Uuid,
    pub space: Uuid,
    pub request: Uuid,
    pub author: Uuid,
    pub item_audience: Option<&'a str>,
    pub action: &'a str,
    pub actor: Uuid,
    pub person: Option<Uuid>,
    pub note: &'a str,
    pub contact: &'a str,
    pub at: i64,
}

pub fn append(conn: &Connection, e: &NewHelpEntry<'_>) -> Result<(), ServerError> {
    conn.prepare_cached(
        "INSERT INTO help_log (entry_id, space_id, request_id, author, item_audience, action, actor, person_id, note,
                               contact, at)
         VALUES (?1, ?2, ?3, ?4, ?11, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.id.to_string(),
        e.space.to_string(),
        e.request.to_string(),
        e.author.to_string(),
        e.action,
        e.actor.to_string(),
        e.person.map(|p| p.to_string()),
        e.note,
        e.contact,
        e.at,
        e.item_audience
    ])?;
    Ok(())
}

/// Rows of `space` after `after` that `person` receives (rows of requests in an audience of
/// `audiences`, or of their own), oldest first, at most `limit`. Filtered here, so that a
/// cursor only moves over what its reader receives.
pub fn rows_after(
    conn: &Connection,
    space: Uuid,
    after: i64,
    limit: usize,
    person: Uuid,
    audiences: &[&str],
) -> Result<Vec<HelpRow>, ServerError> {
    let mut args: Vec<rusqlite::types::Value> = vec![
        space.to_string().into(),
        after.into(),
        (limit as i64).into(),
        person.to_string().into(),
    ];
    let readable = super::in_list(&mut args, audiences);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, request_id, author, action, actor, person_id, note, contact, at FROM help_log
         WHERE space_id = ?1 AND seq > ?2 AND (item_audience IN ({readable}) OR author = ?4)
         ORDER BY seq LIMIT ?3"
    ))?;
    type Raw = (
        i64,
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        String,
        i64,
    );
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, request, author, action, actor, person, note, contact, at): Raw = row?;
        out.push(HelpRow {
            seq,
            request: stored_uuid(&request)?,
            author: stored_uuid(&author)?,
            action,
            actor: stored_uuid(&actor)?,
            person: person.as_deref().map(stored_uuid).transpose()?,
            note,
            contact,
            at,
        });
    }
    Ok(out)
}
