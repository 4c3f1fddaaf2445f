//! The counselling tables of the store (schema 16) as typed rows: identities (Olm accounts,
//! kept as vodozemac pickles under the store's pickle key), channels with their participants
//! and Megolm state, records and the outbox. SQL only; the rules are in `mod.rs` and
//! `exchange.rs`.

use quartier_counselling::device::Device;
use quartier_counselling::group::{InboundGroups, OutboundGroup};
use quartier_protocol::counselling::{Participant, TokenRotation};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::error::{parse_stored_uuid, Error, Result};

/// The key vodozemac pickles are encrypted with, if this device has made one.
pub(crate) fn stored_pickle_key(conn: &Connection) -> Result<Option<[u8; 32]>> {
    let held: Option<Vec<u8>> = conn
        .query_row(
            "SELECT pickle_key FROM counselling_device WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    held.map(|bytes| {
        <[u8; 32]>::try_from(bytes)
            .map_err(|_| Error::Corrupt("counselling pickle key is not 32 bytes".into()))
    })
    .transpose()
}

/// The key vodozemac pickles are encrypted with; made on first use.
pub(crate) fn pickle_key(conn: &Connection) -> Result<[u8; 32]> {
    if let Some(key) = stored_pickle_key(conn)? {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::invalid("randomness", e.to_string()))?;
    conn.execute(
        "INSERT INTO counselling_device (singleton, pickle_key) VALUES (1, ?1)",
        [key.as_slice()],
    )?;
    Ok(key)
}

/// One Olm account of this device.
pub(crate) struct Identity {
    pub curve25519: String,
    pub device: Device,
}

pub(crate) fn load_identity(conn: &Connection, key: &[u8; 32], curve25519: &str) -> Result<Option<Identity>> {
    let row = conn
        .prepare_cached("SELECT pickle FROM counselling_identities WHERE curve25519 = ?1")?
        .query_row([curve25519], |r| r.get::<_, String>(0))
        .optional()?;
    row.map(|pickle| {
        Ok(Identity {
            curve25519: curve25519.to_string(),
            device: Device::from_pickle(&pickle, key)?,
        })
    })
    .transpose()
}

/// The identity this device speaks with in `channel`: the conversation's own (resident side)
/// or the caseworker identity (team side).
pub(crate) fn identity_curve(conn: &Connection, channel: &Channel) -> Result<Option<String>> {
    if channel.side == "resident" {
        return Ok(conn
            .prepare_cached("SELECT curve25519 FROM counselling_identities WHERE conversation_id = ?1")?
            .query_row([channel.id.to_string()], |r| r.get(0))
            .optional()?);
    }
    caseworker_curve(conn)
}

/// This device's caseworker identity, if it has made one.
pub(crate) fn caseworker_curve(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT curve25519 FROM counselling_identities WHERE conversation_id IS NULL")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Creates an identity (a new Olm account) for a conversation, or the caseworker one.
pub(crate) fn create_identity(
    conn: &Connection,
    key: &[u8; 32],
    conversation: Option<Uuid>,
) -> Result<Identity> {
    let device = Device::new();
    let keys = device.identity();
    conn.execute(
        "INSERT INTO counselling_identities (curve25519, ed25519, conversation_id, pickle) VALUES (?1, ?2, ?3, ?4)",
        params![
            keys.curve25519,
            keys.ed25519,
            conversation.map(|c| c.to_string()),
            device.pickle(key)
        ],
    )?;
    Ok(Identity {
        curve25519: keys.curve25519,
        device,
    })
}

pub(crate) fn save_identity(conn: &Connection, key: &[u8; 32], identity: &Identity) -> Result<()> {
    conn.prepare_cached("UPDATE counselling_identities SET pickle = ?2 WHERE curve25519 = ?1")?
        .execute(params![identity.curve25519, identity.device.pickle(key)])?;
    Ok(())
}

/// A channel row.
#[derive(Clone, Debug)]
pub(crate) struct Channel {
    pub id: Uuid,
    pub kind: String,
    pub side: String,
    pub space: Uuid,
    pub team: Uuid,
    pub token: Option<String>,
    pub opened: bool,
    pub after: i64,
    pub participants: Vec<Participant>,
    pub outbound: Option<String>,
    pub inbound: Option<String>,
    pub close_sent: bool,
    pub erase_sent: bool,
}

const CHANNEL_COLUMNS: &str =
    "channel_id, kind, side, space_id, team_id, token, opened, after, participants, \
                               outbound, inbound, close_sent, erase_sent";

fn channel_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelFields> {
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
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

type ChannelFields = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    i64,
    String,
    Option<String>,
    Option<String>,
    bool,
    bool,
);

fn channel(fields: ChannelFields) -> Result<Channel> {
    let (
        id,
        kind,
        side,
        space,
        team,
        token,
        opened,
        after,
        participants,
        outbound,
        inbound,
        close_sent,
        erase_sent,
    ) = fields;
    Ok(Channel {
        id: parse_stored_uuid(&id)?,
        kind,
        side,
        space: parse_stored_uuid(&space)?,
        team: parse_stored_uuid(&team)?,
        token,
        opened,
        after,
        participants: serde_json::from_str(&participants)
            .map_err(|e| Error::Corrupt(format!("counselling participants: {e}")))?,
        outbound,
        inbound,
        close_sent,
        erase_sent,
    })
}

pub(crate) fn load_channel(conn: &Connection, id: Uuid) -> Result<Option<Channel>> {
    conn.prepare_cached(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM counselling_channels WHERE channel_id = ?1"
    ))?
    .query_row([id.to_string()], channel_from_row)
    .optional()?
    .map(channel)
    .transpose()
}

/// The token rotation a resident side asked for (`Store::lock_out_other_devices`) and the
/// server has not taken yet: the new token, keeping this device's identity only.
pub(crate) fn pending_rotation(conn: &Connection, channel: &Channel) -> Result<Option<TokenRotation>> {
    let rotate_to: Option<String> = conn
        .prepare_cached("SELECT rotate_to FROM counselling_channels WHERE channel_id = ?1")?
        .query_row([channel.id.to_string()], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(token) = rotate_to else {
        return Ok(None);
    };
    Ok(Some(TokenRotation {
        token,
        keep: identity_curve(conn, channel)?.into_iter().collect(),
    }))
}

pub(crate) fn all_channels(conn: &Connection) -> Result<Vec<Channel>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM counselling_channels ORDER BY opened_at, channel_id"
    ))?;
    let rows = stmt.query_map([], channel_from_row)?;
    rows.map(|r| channel(r?)).collect()
}

pub(crate) fn save_groups(
    conn: &Connection,
    channel: Uuid,
    outbound: Option<&str>,
    inbound: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE counselling_channels SET outbound = coalesce(?2, outbound), inbound = coalesce(?3, inbound)
         WHERE channel_id = ?1",
    )?
    .execute(params![channel.to_string(), outbound, inbound])?;
    Ok(())
}

pub(crate) fn inbound_of(channel: &Channel, key: &[u8; 32]) -> Result<InboundGroups> {
    match &channel.inbound {
        Some(pickle) => Ok(InboundGroups::from_pickle(pickle, key)?),
        None => Ok(InboundGroups::default()),
    }
}

/// This device's sending sessions of `channel` as stored (pickles), the current one last.
pub(crate) fn outbound_pickles(channel: &Channel) -> Result<Vec<String>> {
    let Some(list) = channel.outbound.as_deref() else {
        return Ok(Vec::new());
    };
    serde_json::from_str(list).map_err(|e| Error::Corrupt(format!("counselling sessions: {e}")))
}

/// This device's sending sessions of `channel`, the current one last.
pub(crate) fn outbounds_of(channel: &Channel, key: &[u8; 32]) -> Result<Vec<OutboundGroup>> {
    outbound_pickles(channel)?
        .iter()
        .map(|p| OutboundGroup::from_pickle(p, key).map_err(Error::from))
        .collect()
}

/// Stores this device's sending sessions of `channel`.
pub(crate) fn save_outbounds(
    conn: &Connection,
    channel: Uuid,
    groups: &[OutboundGroup],
    key: &[u8; 32],
) -> Result<()> {
    let pickles: Vec<String> = groups.iter().map(|g| g.pickle(key)).collect();
    save_outbound_pickles(conn, channel, &pickles)
}

/// Stores sending sessions already pickled.
pub(crate) fn save_outbound_pickles(conn: &Connection, channel: Uuid, pickles: &[String]) -> Result<()> {
    let list =
        serde_json::to_string(pickles).map_err(|e| Error::invalid("counselling sessions", e.to_string()))?;
    save_groups(conn, channel, Some(&list), None)
}

/// The next local order of a channel's records (what shows a record before the server has
/// placed it).
pub(crate) fn next_local_order(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce(max(local_order), 0) + 1 FROM counselling_records",
        [],
        |r| r.get(0),
    )?)
}

/// Removes everything of a channel from this device: records, keys, the resident identity
/// made for it, what waits to be sent, and (unless `keep_row`) the channel itself. A kept row
/// keeps its token: the erasure request it waits to send is authorised by it.
pub(crate) fn forget_channel(conn: &Connection, id: Uuid, keep_row: bool) -> Result<()> {
    let id = id.to_string();
    conn.execute("DELETE FROM counselling_records WHERE channel_id = ?1", [&id])?;
    // Its attachments' files go with the next `Store::sweep_counselling_files`.
    conn.execute("DELETE FROM counselling_files WHERE channel_id = ?1", [&id])?;
    conn.execute(
        "DELETE FROM counselling_pending_keys WHERE conversation_id = ?1",
        [&id],
    )?;
    conn.execute("DELETE FROM counselling_outbox WHERE channel_id = ?1", [&id])?;
    conn.execute(
        "DELETE FROM counselling_outbox WHERE kind = 'to_device' AND sender IN
             (SELECT curve25519 FROM counselling_identities WHERE conversation_id = ?1)",
        [&id],
    )?;
    conn.execute(
        "DELETE FROM counselling_identities WHERE conversation_id = ?1",
        [&id],
    )?;
    if keep_row {
        conn.execute(
            "UPDATE counselling_channels SET outbound = NULL, inbound = NULL, participants = '[]'
             WHERE channel_id = ?1",
            [&id],
        )?;
    } else {
        conn.execute("DELETE FROM counselling_channels WHERE channel_id = ?1", [&id])?;
    }
    Ok(())
}
