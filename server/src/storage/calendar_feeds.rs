//! Calendar feeds: one secret address per member and space (`016_standards.sql`). Only a
//! hash of each token is kept, as for device tokens, so the database alone does not give the
//! addresses away.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{now_ms, random_token, secret_hash, stored_uuid};
use crate::error::ServerError;

/// Makes a new feed token for `person` in `space`, replacing the one they had (which stops
/// working). Returns the token, which is not stored.
pub fn renew(conn: &Connection, person: Uuid, space: Uuid) -> Result<String, ServerError> {
    let token = random_token(32)?;
    conn.prepare_cached(
        "INSERT INTO calendar_feeds (person_id, space_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (person_id, space_id) DO UPDATE SET token_hash = excluded.token_hash,
             created_at = excluded.created_at",
    )?
    .execute(params![
        person.to_string(),
        space.to_string(),
        secret_hash(&token),
        now_ms()
    ])?;
    Ok(token)
}

/// Ends `person`'s feed in `space`; whether there was one.
pub fn revoke(conn: &Connection, person: Uuid, space: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("DELETE FROM calendar_feeds WHERE person_id = ?1 AND space_id = ?2")?
        .execute([person.to_string(), space.to_string()])?
        > 0)
}

/// The member and space of a feed token, if it is current.
pub fn owner(conn: &Connection, token: &str) -> Result<Option<(Uuid, Uuid)>, ServerError> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT person_id, space_id FROM calendar_feeds WHERE token_hash = ?1")?
        .query_row([secret_hash(token)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row
        .map(|(person, space)| -> rusqlite::Result<_> { Ok((stored_uuid(&person)?, stored_uuid(&space)?)) })
        .transpose()?)
}
