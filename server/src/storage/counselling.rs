//! Counselling tables (schema 10, `010_counselling.sql`): teams and their caseworkers,
//! conversations (by access-token hash, never by who opened them), published identity and
//! one-time keys, the relayed ciphertext, to-device inboxes, key backups and the erasure log.
//! Plain SQL over one connection; the rules of who may do what live in `sync::counselling`
//! and `http::teams`.

use quartier_protocol::counselling::{
    ChannelKind, Participant, Side, TeamInfo, TeamSettings, MAX_CONVERSATION_SEALED_BYTES,
};
use quartier_protocol::Record;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::stored_uuid;
use crate::error::ServerError;

/// Most one-time keys the server keeps per identity (vodozemac keeps 100 unused ones).
pub const MAX_STORED_ONE_TIME_KEYS: i64 = 100;

/// A team row.
#[derive(Clone, Debug)]
pub struct TeamRow {
    pub id: Uuid,
    pub space: Uuid,
    pub info: TeamInfo,
}

pub fn create_team(
    conn: &Connection,
    space: Uuid,
    settings: &TeamSettings,
    now: i64,
) -> Result<Uuid, ServerError> {
    let id = Uuid::now_v7();
    conn.execute(
        "INSERT INTO teams (team_id, space_id, name, topic, postcodes, retention_days, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.to_string(),
            space.to_string(),
            settings.name,
            settings.topic,
            postcodes_json(&settings.postcodes),
            settings.retention_days,
            now
        ],
    )?;
    Ok(id)
}

pub fn update_team(conn: &Connection, team: Uuid, settings: &TeamSettings) -> Result<bool, ServerError> {
    Ok(conn.execute(
        "UPDATE teams SET name = ?2, topic = ?3, postcodes = ?4, retention_days = ?5 WHERE team_id = ?1",
        params![
            team.to_string(),
            settings.name,
            settings.topic,
            postcodes_json(&settings.postcodes),
            settings.retention_days
        ],
    )? == 1)
}

fn postcodes_json(postcodes: &[String]) -> String {
    serde_json::to_string(postcodes).unwrap_or_else(|_| "[]".into())
}

fn team_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, String, Option<i32>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn team_row(fields: (String, String, String, String, String, Option<i32>)) -> Result<TeamRow, ServerError> {
    let (id, space, name, topic, postcodes, retention_days) = fields;
    let id = stored_uuid(&id)?;
    Ok(TeamRow {
        id,
        space: stored_uuid(&space)?,
        info: TeamInfo {
            id,
            name,
            topic,
            postcodes: serde_json::from_str(&postcodes).unwrap_or_default(),
            retention_days,
        },
    })
}

const TEAM_COLUMNS: &str = "team_id, space_id, name, topic, postcodes, retention_days";

pub fn team(conn: &Connection, team: Uuid) -> Result<Option<TeamRow>, ServerError> {
    conn.prepare_cached(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE team_id = ?1"))?
        .query_row([team.to_string()], team_from_row)
        .optional()?
        .map(team_row)
        .transpose()
}

pub fn teams_of_space(conn: &Connection, space: Uuid) -> Result<Vec<TeamInfo>, ServerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TEAM_COLUMNS} FROM teams WHERE space_id = ?1 ORDER BY topic, name"
    ))?;
    let rows = stmt.query_map([space.to_string()], team_from_row)?;
    rows.map(|r| team_row(r?).map(|t| t.info)).collect()
}

/// Teams whose caseworker `person` is now: a member of the team who still holds the
/// caseworker role in the team's space.
pub fn teams_of_caseworker(conn: &Connection, person: Uuid) -> Result<Vec<TeamRow>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.team_id, t.space_id, t.name, t.topic, t.postcodes, t.retention_days
         FROM team_members tm JOIN teams t ON t.team_id = tm.team_id
         JOIN members m ON m.space_id = t.space_id AND m.person_id = tm.person_id
             AND m.revoked_at IS NULL AND m.role = 'caseworker'
         WHERE tm.person_id = ?1 ORDER BY t.team_id",
    )?;
    let rows = stmt.query_map([person.to_string()], team_from_row)?;
    rows.map(|r| team_row(r?)).collect()
}

pub fn add_team_member(conn: &Connection, team: Uuid, person: Uuid, now: i64) -> Result<(), ServerError> {
    conn.execute(
        "INSERT OR IGNORE INTO team_members (team_id, person_id, added_at) VALUES (?1, ?2, ?3)",
        params![team.to_string(), person.to_string(), now],
    )?;
    Ok(())
}

pub fn remove_team_member(conn: &Connection, team: Uuid, person: Uuid) -> Result<bool, ServerError> {
    Ok(conn.execute(
        "DELETE FROM team_members WHERE team_id = ?1 AND person_id = ?2",
        params![team.to_string(), person.to_string()],
    )? == 1)
}

/// The team's caseworkers (person ids), for coordinators and org admins.
pub fn team_members(conn: &Connection, team: Uuid) -> Result<Vec<Uuid>, ServerError> {
    let mut stmt =
        conn.prepare_cached("SELECT person_id FROM team_members WHERE team_id = ?1 ORDER BY person_id")?;
    let rows = stmt.query_map([team.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows.map(|r| stored_uuid(&r?)).collect::<rusqlite::Result<_>>()?)
}

/// A conversation as the server knows it.
#[derive(Clone, Debug)]
pub struct ConversationRow {
    pub id: Uuid,
    pub team: Uuid,
    pub space: Uuid,
    pub token_hash: Vec<u8>,
    /// The token's hash before the resident side last replaced it ([`rotate_token`]).
    pub previous_token_hash: Option<Vec<u8>>,
    pub closed_at: Option<i64>,
}

pub fn conversation(conn: &Connection, id: Uuid) -> Result<Option<ConversationRow>, ServerError> {
    let row = conn
        .prepare_cached(
            "SELECT c.team_id, t.space_id, c.token_hash, c.closed_at, c.previous_token_hash FROM conversations c
             JOIN teams t ON t.team_id = c.team_id WHERE c.conversation_id = ?1",
        )?
        .query_row([id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
            ))
        })
        .optional()?;
    row.map(|(team, space, token_hash, closed_at, previous_token_hash)| {
        Ok(ConversationRow {
            id,
            team: stored_uuid(&team)?,
            space: stored_uuid(&space)?,
            token_hash,
            previous_token_hash,
            closed_at,
        })
    })
    .transpose()
}

/// Whether `id` may not become a new conversation, nor a new space: a team's id (its notes
/// channel), a space's, an erased conversation's, or one records were stored under. (A
/// conversation's attachments are claimed under its id as if it were a space: the two must
/// never meet.)
pub fn id_taken(conn: &Connection, id: Uuid) -> Result<bool, ServerError> {
    let id = id.to_string();
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM teams WHERE team_id = ?1)
                 OR EXISTS (SELECT 1 FROM spaces WHERE space_id = ?1)
                 OR EXISTS (SELECT 1 FROM persons WHERE person_id = ?1)
                 OR EXISTS (SELECT 1 FROM blob_claims WHERE space_id = ?1)
                 OR EXISTS (SELECT 1 FROM erasures WHERE conversation_id = ?1)
                 OR EXISTS (SELECT 1 FROM sealed WHERE conversation_id = ?1)
                 OR EXISTS (SELECT 1 FROM conversations WHERE conversation_id = ?1)",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// Identities a conversation's resident side published.
pub fn resident_key_count(conn: &Connection, conversation: Uuid) -> Result<usize, ServerError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM counselling_keys WHERE conversation_id = ?1")?
        .query_row([conversation.to_string()], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Replaces a conversation's access token (its hash), keeping the replaced one's hash.
pub fn rotate_token(conn: &Connection, conversation: Uuid, new_hash: &[u8]) -> Result<(), ServerError> {
    conn.prepare_cached(
        "UPDATE conversations SET previous_token_hash = token_hash, token_hash = ?2
         WHERE conversation_id = ?1 AND token_hash != ?2",
    )?
    .execute(params![conversation.to_string(), new_hash])?;
    Ok(())
}

/// Drops the resident side's identities of a conversation except `keep`, with their one-time
/// keys and the messages waiting for them: those devices are no participants any more.
pub fn drop_resident_identities(
    conn: &Connection,
    conversation: Uuid,
    keep: &[String],
) -> Result<usize, ServerError> {
    let dropped: Vec<String> = conn
        .prepare_cached("SELECT curve25519 FROM counselling_keys WHERE conversation_id = ?1")?
        .query_map([conversation.to_string()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|key| !keep.contains(key))
        .collect();
    for key in &dropped {
        conn.execute("DELETE FROM to_device WHERE recipient = ?1", [key])?;
        conn.execute("DELETE FROM one_time_keys WHERE curve25519 = ?1", [key])?;
        conn.execute("DELETE FROM counselling_keys WHERE curve25519 = ?1", [key])?;
    }
    Ok(dropped.len())
}

/// Drops a device's caseworker identity (it publishes a new one), with its one-time keys and
/// its waiting messages.
pub fn drop_device_keys(conn: &Connection, device: Uuid) -> Result<(), ServerError> {
    let device = device.to_string();
    conn.execute(
        "DELETE FROM to_device WHERE recipient IN (SELECT curve25519 FROM counselling_keys WHERE device_id = ?1)",
        [&device],
    )?;
    conn.execute(
        "DELETE FROM one_time_keys WHERE curve25519 IN (SELECT curve25519 FROM counselling_keys WHERE device_id = ?1)",
        [&device],
    )?;
    conn.execute("DELETE FROM counselling_keys WHERE device_id = ?1", [&device])?;
    Ok(())
}

/// Opens a conversation; `false` when it existed already (the caller compares the token).
pub fn open_conversation(
    conn: &Connection,
    id: Uuid,
    team: Uuid,
    token_hash: &[u8],
    now: i64,
) -> Result<bool, ServerError> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO conversations (conversation_id, team_id, token_hash, opened_at) VALUES (?1, ?2, ?3, ?4)",
        params![id.to_string(), team.to_string(), token_hash, now],
    )? == 1)
}

pub fn close_conversation(conn: &Connection, id: Uuid, now: i64) -> Result<(), ServerError> {
    conn.execute(
        "UPDATE conversations SET closed_at = coalesce(closed_at, ?2) WHERE conversation_id = ?1",
        params![id.to_string(), now],
    )?;
    Ok(())
}

/// Conversations of a team, oldest first.
pub fn conversations_of_team(conn: &Connection, team: Uuid) -> Result<Vec<Uuid>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT conversation_id FROM conversations WHERE team_id = ?1 ORDER BY opened_at, conversation_id",
    )?;
    let rows = stmt.query_map([team.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows.map(|r| stored_uuid(&r?)).collect::<rusqlite::Result<_>>()?)
}

/// Whether `conversation` was erased.
pub fn erased(conn: &Connection, conversation: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM erasures WHERE conversation_id = ?1")?
        .exists([conversation.to_string()])?)
}

/// Whose an identity key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOwner {
    Device(Uuid),
    Conversation(Uuid),
}

pub fn key_owner(conn: &Connection, curve25519: &str) -> Result<Option<KeyOwner>, ServerError> {
    let row = conn
        .prepare_cached("SELECT device_id, conversation_id FROM counselling_keys WHERE curve25519 = ?1")?
        .query_row([curve25519], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    Ok(match row {
        Some((Some(device), _)) => Some(KeyOwner::Device(stored_uuid(&device)?)),
        Some((None, Some(conversation))) => Some(KeyOwner::Conversation(stored_uuid(&conversation)?)),
        _ => None,
    })
}

/// Publishes (or adds to) an identity. The caller checked that the owner may.
pub fn publish_keys(
    conn: &Connection,
    curve25519: &str,
    ed25519: &str,
    owner: KeyOwner,
    one_time_keys: &[String],
    fallback_key: Option<&str>,
    now: i64,
) -> Result<(), ServerError> {
    let (device, conversation) = match owner {
        KeyOwner::Device(d) => (Some(d.to_string()), None),
        KeyOwner::Conversation(c) => (None, Some(c.to_string())),
    };
    conn.prepare_cached(
        "INSERT INTO counselling_keys (curve25519, ed25519, device_id, conversation_id, fallback_key, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (curve25519) DO UPDATE SET fallback_key = coalesce(excluded.fallback_key, fallback_key)",
    )?
    .execute(params![curve25519, ed25519, device, conversation, fallback_key, now])?;
    let stored: i64 = conn.query_row(
        "SELECT count(*) FROM one_time_keys WHERE curve25519 = ?1",
        [curve25519],
        |r| r.get(0),
    )?;
    let room = (MAX_STORED_ONE_TIME_KEYS - stored).max(0) as usize;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO one_time_keys (curve25519, key) VALUES (?1, ?2)")?;
    for key in one_time_keys.iter().take(room) {
        insert.execute(params![curve25519, key])?;
    }
    Ok(())
}

/// Hands out one one-time key of `curve25519` (deleting it), or its fallback key.
pub fn claim_key(conn: &Connection, curve25519: &str) -> Result<Option<String>, ServerError> {
    let one_time: Option<String> = conn
        .prepare_cached("SELECT key FROM one_time_keys WHERE curve25519 = ?1 LIMIT 1")?
        .query_row([curve25519], |r| r.get(0))
        .optional()?;
    if let Some(key) = one_time {
        conn.execute(
            "DELETE FROM one_time_keys WHERE curve25519 = ?1 AND key = ?2",
            params![curve25519, key],
        )?;
        return Ok(Some(key));
    }
    Ok(conn
        .prepare_cached("SELECT fallback_key FROM counselling_keys WHERE curve25519 = ?1")?
        .query_row([curve25519], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub fn one_time_key_count(conn: &Connection, curve25519: &str) -> Result<u32, ServerError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM one_time_keys WHERE curve25519 = ?1")?
        .query_row([curve25519], |r| r.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Every device that reads a channel now: for a conversation, its resident side's keys and
/// the team's; for a team's notes, the team's. A team device is one of a caseworker who is in
/// the team and holds the caseworker role in its space, on a device not revoked.
pub fn participants(
    conn: &Connection,
    kind: ChannelKind,
    channel: Uuid,
    team: Uuid,
    space: Uuid,
) -> Result<Vec<Participant>, ServerError> {
    let mut out = Vec::new();
    if kind == ChannelKind::Conversation {
        let mut stmt = conn.prepare_cached(
            "SELECT curve25519, ed25519 FROM counselling_keys WHERE conversation_id = ?1 ORDER BY curve25519",
        )?;
        let rows = stmt.query_map([channel.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (curve25519, ed25519) = row?;
            out.push(Participant {
                curve25519,
                ed25519,
                side: Side::Resident,
                person: None,
            });
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT k.curve25519, k.ed25519, d.person_id FROM counselling_keys k
         JOIN devices d ON d.device_id = k.device_id AND d.revoked_at IS NULL
         JOIN team_members tm ON tm.person_id = d.person_id AND tm.team_id = ?1
         JOIN members m ON m.space_id = ?2 AND m.person_id = d.person_id AND m.revoked_at IS NULL
             AND m.role = 'caseworker'
         ORDER BY k.curve25519",
    )?;
    let rows = stmt.query_map([team.to_string(), space.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (curve25519, ed25519, person) = row?;
        out.push(Participant {
            curve25519,
            ed25519,
            side: Side::Team,
            person: Some(stored_uuid(&person)?),
        });
    }
    Ok(out)
}

/// What storing a sealed record did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    /// The same record (id) was stored before, in the same channel.
    Duplicate,
    /// The id is taken by a record of another channel.
    Conflict,
    /// The conversation holds its most bytes of records ([`MAX_CONVERSATION_SEALED_BYTES`]).
    Full,
}

pub fn store_sealed(
    conn: &Connection,
    channel: Uuid,
    id: Uuid,
    sender: &str,
    session_id: &str,
    ciphertext: &[u8],
    now: i64,
) -> Result<Stored, ServerError> {
    let held: Option<String> = conn
        .prepare_cached("SELECT conversation_id FROM sealed WHERE record_id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    if let Some(held) = held {
        return Ok(if held == channel.to_string() {
            Stored::Duplicate
        } else {
            Stored::Conflict
        });
    }
    // A conversation's records are bounded in bytes (a team's notes channel is not: only its
    // caseworkers write there).
    let charged = conn
        .prepare_cached(
            "UPDATE conversations SET sealed_bytes = sealed_bytes + ?2
             WHERE conversation_id = ?1 AND sealed_bytes + ?2 <= ?3",
        )?
        .execute(params![
            channel.to_string(),
            ciphertext.len() as i64,
            MAX_CONVERSATION_SEALED_BYTES as i64
        ])?;
    if charged == 0 && conversation(conn, channel)?.is_some() {
        return Ok(Stored::Full);
    }
    conn.prepare_cached(
        "INSERT INTO sealed (conversation_id, record_id, sender, session_id, ciphertext, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        channel.to_string(),
        id.to_string(),
        sender,
        session_id,
        ciphertext,
        now
    ])?;
    Ok(Stored::New)
}

/// A page of sealed records after `after`, within `budget` bytes (at least one record when
/// any waits): (records, next, more).
pub fn sealed_after(
    conn: &Connection,
    channel: Uuid,
    after: i64,
    budget: usize,
) -> Result<(Vec<Record>, i64, bool), ServerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, record_id, sender, session_id, ciphertext FROM sealed
         WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT {PAGE_ROWS}"
    ))?;
    let rows = stmt.query(params![channel.to_string(), after])?;
    page(rows, after, budget, |r| {
        Ok(Record::Sealed {
            conversation: channel,
            id: stored_uuid(&r.get::<_, String>(1)?)?,
            sender: r.get(2)?,
            session_id: r.get(3)?,
            ciphertext: r.get(4)?,
            seq: Some(r.get(0)?),
        })
    })
}

/// Most rows one page reads.
const PAGE_ROWS: usize = 500;

/// Takes rows (`seq` first) in order while they fit `budget` (at least one): the records, the
/// cursor after the last, and whether more wait.
fn page(
    mut rows: rusqlite::Rows<'_>,
    after: i64,
    budget: usize,
    record: impl Fn(&rusqlite::Row<'_>) -> Result<Record, ServerError>,
) -> Result<(Vec<Record>, i64, bool), ServerError> {
    let mut records = Vec::new();
    let mut used = 0usize;
    let mut next = after;
    while let Some(r) = rows.next()? {
        let item = record(r)?;
        let weight = item.weight();
        if !records.is_empty() && used + weight > budget {
            return Ok((records, next, true));
        }
        used += weight;
        next = r.get(0)?;
        records.push(item);
    }
    let more = records.len() == PAGE_ROWS;
    Ok((records, next, more))
}

pub fn store_to_device(
    conn: &Connection,
    recipient: &str,
    sender: &str,
    ciphertext: &[u8],
    now: i64,
) -> Result<(), ServerError> {
    conn.prepare_cached(
        "INSERT INTO to_device (recipient, sender, ciphertext, stored_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![recipient, sender, ciphertext, now])?;
    Ok(())
}

/// Most messages waiting in one inbox: a device that does not sync for a long time is not
/// buried, and nobody can fill the disk through it.
pub const MAX_INBOX: i64 = 2_000;

/// Messages waiting for `recipient`.
pub fn inbox_len(conn: &Connection, recipient: &str) -> Result<i64, ServerError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM to_device WHERE recipient = ?1")?
        .query_row([recipient], |r| r.get(0))?)
}

/// Deletes what the recipient has (at or before its cursor `after`).
pub fn delete_delivered(conn: &Connection, recipient: &str, after: i64) -> Result<(), ServerError> {
    conn.prepare_cached("DELETE FROM to_device WHERE recipient = ?1 AND seq <= ?2")?
        .execute(params![recipient, after])?;
    Ok(())
}

/// A page of what waits for `recipient` after `after`.
pub fn inbox_after(
    conn: &Connection,
    recipient: &str,
    after: i64,
    budget: usize,
) -> Result<(Vec<Record>, i64, bool), ServerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, sender, ciphertext FROM to_device WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT {PAGE_ROWS}"
    ))?;
    let rows = stmt.query(params![recipient, after])?;
    page(rows, after, budget, |r| {
        Ok(Record::ToDevice {
            recipient: recipient.to_string(),
            sender: r.get(1)?,
            ciphertext: r.get(2)?,
            seq: Some(r.get(0)?),
        })
    })
}

/// Stores a backup under `id`: new, or replacing one made with the same secret.
pub fn put_backup(
    conn: &Connection,
    id: &str,
    secret_hash: &[u8],
    sealed: &[u8],
    now: i64,
) -> Result<bool, ServerError> {
    let held: Option<Vec<u8>> = conn
        .prepare_cached("SELECT secret_hash FROM key_backups WHERE backup_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match held {
        Some(hash) if hash != secret_hash => Ok(false),
        _ => {
            conn.prepare_cached(
                "INSERT INTO key_backups (backup_id, secret_hash, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (backup_id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            )?
            .execute(params![id, secret_hash, sealed, now])?;
            Ok(true)
        }
    }
}

pub fn backup(conn: &Connection, id: &str) -> Result<Option<Vec<u8>>, ServerError> {
    Ok(conn
        .prepare_cached("SELECT sealed FROM key_backups WHERE backup_id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// Erases a conversation: its records, its resident side's keys and their inboxes, the
/// conversation itself; records that it happened, without content. Idempotent.
pub fn erase_conversation(
    conn: &Connection,
    conversation: &ConversationRow,
    requested_by: &str,
    reason: &str,
    now: i64,
) -> Result<(), ServerError> {
    let id = conversation.id.to_string();
    conn.execute("DELETE FROM sealed WHERE conversation_id = ?1", [&id])?;
    conn.execute(
        "DELETE FROM to_device WHERE recipient IN (SELECT curve25519 FROM counselling_keys WHERE conversation_id = ?1)
            OR sender IN (SELECT curve25519 FROM counselling_keys WHERE conversation_id = ?1)",
        [&id],
    )?;
    conn.execute(
        "DELETE FROM one_time_keys WHERE curve25519 IN (SELECT curve25519 FROM counselling_keys WHERE conversation_id = ?1)",
        [&id],
    )?;
    conn.execute("DELETE FROM counselling_keys WHERE conversation_id = ?1", [&id])?;
    conn.execute("DELETE FROM conversations WHERE conversation_id = ?1", [&id])?;
    // Its attachments (`blobs::counselling`: the conversation is their space and uploader);
    // their bytes go with the next `blobs::gc::drop_erased` (or collection).
    conn.execute(
        "INSERT OR IGNORE INTO erased_blobs (hash) SELECT hash FROM blob_claims WHERE space_id = ?1",
        [&id],
    )?;
    conn.execute("DELETE FROM blob_claims WHERE space_id = ?1", [&id])?;
    let uploader = crate::blobs::counselling::uploader_of(conversation.id).to_string();
    conn.execute("DELETE FROM blob_upload_chunks WHERE person_id = ?1", [&uploader])?;
    conn.execute("DELETE FROM blob_uploads WHERE person_id = ?1", [&uploader])?;
    conn.execute(
        "INSERT OR IGNORE INTO erasures (conversation_id, team_id, requested_by, reason, erased_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, conversation.team.to_string(), requested_by, reason, now],
    )?;
    Ok(())
}

/// One line of the erasure log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    pub conversation: Uuid,
    pub team: Uuid,
    pub requested_by: String,
    pub reason: String,
    pub erased_at: i64,
}

pub fn erasures(conn: &Connection) -> Result<Vec<ErasureRecord>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT conversation_id, team_id, requested_by, reason, erased_at FROM erasures ORDER BY erased_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (conversation, team, requested_by, reason, erased_at) = row?;
        Ok(ErasureRecord {
            conversation: stored_uuid(&conversation)?,
            team: stored_uuid(&team)?,
            requested_by,
            reason,
            erased_at,
        })
    })
    .collect()
}

/// Closed conversations of teams with a retention rule whose time has come.
pub fn due_for_erasure(conn: &Connection, now: i64) -> Result<Vec<ConversationRow>, ServerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.conversation_id FROM conversations c JOIN teams t ON t.team_id = c.team_id
         WHERE c.closed_at IS NOT NULL AND t.retention_days IS NOT NULL
           AND c.closed_at + t.retention_days * 86400000 <= ?1",
    )?;
    let ids: Vec<String> = stmt.query_map([now], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = conversation(conn, stored_uuid(&id)?)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// Erases every closed conversation whose team's retention has run out; returns how many.
/// The WAL is then truncated (best effort), so nothing of them stays in the database files.
pub fn erase_due(conn: &Connection, now: i64) -> Result<usize, ServerError> {
    let tx = conn.unchecked_transaction()?;
    let due = due_for_erasure(&tx, now)?;
    for conversation in &due {
        erase_conversation(
            &tx,
            conversation,
            "retention",
            "the team's retention period ran out",
            now,
        )?;
    }
    tx.commit()?;
    if !due.is_empty() {
        truncate_wal(conn);
    }
    Ok(due.len())
}

/// Moves the WAL into the database and truncates it, after an erasure: deleted pages were
/// zeroed (`secure_delete`), and this drops the WAL's copies of them. Best effort: a reader
/// holding an old snapshot delays it to the next erasure or checkpoint.
pub fn truncate_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint after an erasure failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;

    /// A conversation takes records up to its byte bound, then refuses them; a duplicate is
    /// still a duplicate, and a team's notes channel is not bounded.
    #[test]
    fn a_conversation_holds_a_bounded_number_of_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("db");
        let conn = db.lock();
        let team = Uuid::now_v7();
        conn.execute_batch("PRAGMA foreign_keys = OFF;")
            .expect("no foreign keys");
        conn.execute(
            "INSERT INTO teams (team_id, space_id, name, topic, created_at) VALUES (?1, ?2, 'T', 'debt', 0)",
            params![team.to_string(), Uuid::now_v7().to_string()],
        )
        .expect("a team");
        let conversation = Uuid::now_v7();
        assert!(open_conversation(&conn, conversation, team, b"hash", 0).expect("open"));
        let record = |n: u8| Uuid::from_bytes([n; 16]);
        let limit = MAX_CONVERSATION_SEALED_BYTES as i64;
        conn.execute(
            "UPDATE conversations SET sealed_bytes = ?1 WHERE conversation_id = ?2",
            params![limit - 100, conversation.to_string()],
        )
        .expect("nearly full");
        let store = |id, bytes: usize| store_sealed(&conn, conversation, id, "k", "s", &vec![7u8; bytes], 0);
        assert!(matches!(store(record(1), 100).expect("fits"), Stored::New));
        assert!(matches!(store(record(1), 100).expect("again"), Stored::Duplicate));
        assert!(matches!(store(record(2), 1).expect("full"), Stored::Full));
        let held: i64 = conn
            .query_row(
                "SELECT count(*) FROM sealed WHERE conversation_id = ?1",
                [conversation.to_string()],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(held, 1, "nothing of the refused record is stored");
        // The team's notes channel (no conversation row) takes records regardless.
        assert!(matches!(
            store_sealed(&conn, team, record(3), "k", "s", &[1; 10], 0).expect("notes"),
            Stored::New
        ));
    }
}
