//! The counselling part of a sync exchange (`docs/counselling.md`): who may read and write
//! which conversation, the relay of sealed records and to-device messages, key publication and
//! claims, closing and erasure. The server never decrypts anything; it checks routing only.
//!
//! Who reads a channel:
//! - a conversation: the devices proving its access token in this request (its resident
//!   side), and the devices of caseworkers in its team (holding the caseworker role in the
//!   team's space now);
//! - a team's notes channel (its id is the team's): the team's caseworkers' devices only.
//!
//! Nothing here records which device or person holds a conversation's token.

use std::collections::{BTreeMap, BTreeSet};

use quartier_protocol::counselling::{
    is_public_key, participants_digest, ChannelKind, ClaimedKey, ConversationPage, CounsellingRequest,
    CounsellingResponse, GoneConversation, GoneReason, InboxPage, KeyCount, MAX_COUNSELLING_CURSORS,
    MAX_COUNSELLING_ENTRIES, MAX_ONE_TIME_KEYS_PER_PUBLISH, MAX_OPENS_PER_REQUEST, MAX_RESIDENT_DEVICES,
    MAX_SEALED_BYTES, MAX_TO_DEVICE_BYTES,
};
use quartier_protocol::{Ack, AckOutcome, Record, RejectCode};
use rusqlite::Connection;
use uuid::Uuid;

use crate::error::ServerError;
use crate::storage::counselling::{self as store, KeyOwner, Stored, TeamRow};
use crate::storage::{now_ms, secret_hash, spaces, Db, DeviceRecord};

/// What one device may reach in this request.
struct Reach {
    device: Uuid,

    /// Conversations whose token this request proved, with their team and space.
    resident: BTreeMap<Uuid, store::ConversationRow>,
    /// Teams the device's person is a caseworker of now.
    teams: BTreeMap<Uuid, TeamRow>,
}

/// A channel and where it belongs.
#[derive(Clone, Copy)]
struct Channel {
    id: Uuid,
    kind: ChannelKind,
    team: Uuid,
    space: Uuid,
}

impl Reach {
    /// The channel `id` if this device may read it.
    fn channel(&self, conn: &Connection, id: Uuid) -> Result<Option<Channel>, ServerError> {
        if let Some(c) = self.resident.get(&id) {
            return Ok(Some(Channel {
                id,
                kind: ChannelKind::Conversation,
                team: c.team,
                space: c.space,
            }));
        }
        if let Some(team) = self.teams.get(&id) {
            return Ok(Some(Channel {
                id,
                kind: ChannelKind::TeamNotes,
                team: team.id,
                space: team.space,
            }));
        }
        if let Some(c) = store::conversation(conn, id)? {
            if self.teams.contains_key(&c.team) {
                return Ok(Some(Channel {
                    id,
                    kind: ChannelKind::Conversation,
                    team: c.team,
                    space: c.space,
                }));
            }
        }
        Ok(None)
    }

    /// Whether the identity `key` is this device's own: its caseworker key, or the resident
    /// key of a conversation whose token this request proved.
    fn owns(&self, owner: Option<KeyOwner>) -> bool {
        match owner {
            Some(KeyOwner::Device(d)) => d == self.device,
            Some(KeyOwner::Conversation(c)) => self.resident.contains_key(&c),
            None => false,
        }
    }

    /// Whether the device whose key is owned by `other` shares a channel with this device's
    /// key owned by `mine`: only then may this device claim its keys or send it messages.
    fn shares_channel(
        &self,
        conn: &Connection,
        mine: KeyOwner,
        other: KeyOwner,
    ) -> Result<bool, ServerError> {
        match (mine, other) {
            // The resident side of a conversation and the devices of the conversation.
            (KeyOwner::Conversation(c), KeyOwner::Conversation(o)) => Ok(c == o),
            (KeyOwner::Conversation(c), KeyOwner::Device(d)) => {
                let Some(row) = self.resident.get(&c) else {
                    return Ok(false);
                };
                team_device(conn, row.team, row.space, d)
            }
            // A caseworker's device and its teams' conversations and colleagues.
            (KeyOwner::Device(_), KeyOwner::Conversation(o)) => {
                Ok(store::conversation(conn, o)?.is_some_and(|row| self.teams.contains_key(&row.team)))
            }
            (KeyOwner::Device(_), KeyOwner::Device(d)) => Ok(device_teams(conn, d)?
                .iter()
                .any(|t| self.teams.get(&t.id).is_some_and(|mine| mine.space == t.space))),
        }
    }
}

/// Whether `device` may use conversation `id` outside a sync (its attachments): it proves the
/// conversation's access `token` (its resident side), or it belongs to a caseworker of the
/// conversation's team now. An unknown or erased conversation: nobody.
pub fn may_use_conversation(
    conn: &Connection,
    device: &DeviceRecord,
    id: Uuid,
    token: Option<&str>,
) -> Result<bool, ServerError> {
    let Some(row) = store::conversation(conn, id)? else {
        return Ok(false);
    };
    if device.revoked {
        return Ok(false);
    }
    if token.is_some_and(|t| t.len() <= 128 && secret_hash(t) == row.token_hash) {
        return Ok(true);
    }
    team_device(conn, row.team, row.space, device.device)
}

/// The teams whose caseworker `device`'s person is now (none for a revoked device).
fn device_teams(conn: &Connection, device: Uuid) -> Result<Vec<TeamRow>, ServerError> {
    match crate::storage::accounts::device(conn, device)? {
        Some(record) if !record.revoked => store::teams_of_caseworker(conn, record.person),
        _ => Ok(Vec::new()),
    }
}

/// Whether `device` belongs to a caseworker of `team` now.
fn team_device(conn: &Connection, team: Uuid, space: Uuid, device: Uuid) -> Result<bool, ServerError> {
    Ok(device_teams(conn, device)?
        .iter()
        .any(|t| t.id == team && t.space == space))
}

fn reject(code: RejectCode, message: &str) -> AckOutcome {
    AckOutcome::Rejected {
        code,
        message: message.into(),
    }
}

/// Checks the shape of a request before any work: bounded lists, well-formed keys.
pub fn check(req: &CounsellingRequest) -> Result<(), ServerError> {
    let lists = [
        req.access.len(),
        req.claims.len(),
        req.publish.len(),
        req.close.len(),
        req.erase.len(),
    ];
    if lists.iter().any(|&n| n > MAX_COUNSELLING_ENTRIES)
        || req.cursors.len() > MAX_COUNSELLING_CURSORS
        || req.inboxes.len() > MAX_COUNSELLING_CURSORS
    {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_COUNSELLING_ENTRIES} entries per counselling list \
             ({MAX_COUNSELLING_CURSORS} cursors)"
        )));
    }
    let keys = req
        .claims
        .iter()
        .chain(req.inboxes.iter().map(|i| &i.identity))
        .chain(req.publish.iter().flat_map(|p| {
            [&p.curve25519, &p.ed25519]
                .into_iter()
                .chain(p.one_time_keys.iter())
                .chain(p.fallback_key.iter())
        }));
    for key in keys {
        if !is_public_key(key) {
            return Err(ServerError::BadRequest(
                "counselling keys are 43 characters of unpadded base64".into(),
            ));
        }
    }
    if req
        .publish
        .iter()
        .any(|p| p.one_time_keys.len() > MAX_ONE_TIME_KEYS_PER_PUBLISH)
    {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_ONE_TIME_KEYS_PER_PUBLISH} one-time keys per publication"
        )));
    }
    let rotations = req.access.iter().filter_map(|a| a.rotate.as_ref());
    if rotations.clone().any(|r| r.keep.len() > MAX_RESIDENT_DEVICES)
        || rotations.flat_map(|r| r.keep.iter()).any(|k| !is_public_key(k))
    {
        return Err(ServerError::BadRequest(format!(
            "a token rotation keeps at most {MAX_RESIDENT_DEVICES} identities, each a public key"
        )));
    }
    if req
        .access
        .iter()
        .any(|a| a.token.len() > 128 || a.rotate.as_ref().is_some_and(|r| r.token.len() > 128))
    {
        return Err(ServerError::BadRequest(
            "an access token has at most 128 characters".into(),
        ));
    }
    Ok(())
}

/// Runs the counselling part of one request for `device`: `pushed` are the request's
/// counselling records with their index in the push. Returns their acknowledgements, the
/// answer, and the bytes of `budget` it used. What changes (openings, keys, records, claims,
/// closings, erasures, delivered inbox messages) is one transaction under the writer; the
/// pages are read afterwards through a reader, beside other requests.
pub fn exchange(
    db: &Db,
    device: &DeviceRecord,
    req: &CounsellingRequest,
    pushed: &[(usize, &Record)],
    budget: usize,
) -> Result<(Vec<Ack>, CounsellingResponse, usize), ServerError> {
    let (acks, mut response, reach) = {
        let conn = db.lock();
        let (acks, response, reach, erased_any) = write_part(&conn, device, req, pushed)?;
        if erased_any {
            store::truncate_wal(&conn);
        }
        (acks, response, reach)
    };
    let conn = db.read()?;
    let used = read_part(&conn, &reach, req, budget, &mut response)?;
    Ok((acks, response, used))
}

/// Times stored with counselling rows, to the hour: exact times would let someone holding the
/// database match a conversation's rows with the same request's other rows (a device's
/// document changes), and retention needs no more.
fn coarse(now: i64) -> i64 {
    now - now.rem_euclid(3_600_000)
}

type WritePart = (Vec<Ack>, CounsellingResponse, Reach, bool);

fn write_part(
    conn: &Connection,
    device: &DeviceRecord,
    req: &CounsellingRequest,
    pushed: &[(usize, &Record)],
) -> Result<WritePart, ServerError> {
    let now = coarse(now_ms());
    let tx = conn.unchecked_transaction()?;
    let mut response = CounsellingResponse::default();
    let mut reach = Reach {
        device: device.device,
        resident: BTreeMap::new(),
        teams: store::teams_of_caseworker(&tx, device.person)?
            .into_iter()
            .map(|t| (t.id, t))
            .collect(),
    };
    let mut opened = 0usize;
    for access in &req.access {
        let hash = secret_hash(&access.token);
        if store::erased(&tx, access.conversation)? {
            response.gone.push(GoneConversation {
                conversation: access.conversation,
                reason: GoneReason::Erased,
            });
            continue;
        }
        let row = match store::conversation(&tx, access.conversation)? {
            Some(row) => Some(row),
            None => match &access.open {
                // Past the openings one request may make: asked again next time.
                Some(_) if opened >= MAX_OPENS_PER_REQUEST => continue,
                Some(open)
                    if may_open(&tx, device.person, open.space, open.team)?
                        && !store::id_taken(&tx, access.conversation)? =>
                {
                    opened += 1;
                    store::open_conversation(&tx, access.conversation, open.team, &hash, now)?;
                    store::conversation(&tx, access.conversation)?
                }
                _ => None,
            },
        };
        let rotation = access.rotate.as_ref();
        let rotated_to = rotation.map(|r| secret_hash(&r.token));
        let proven = |row: &store::ConversationRow| {
            row.token_hash == hash
                // A rotation sent again (its answer was lost): already done.
                || (row.previous_token_hash.as_ref() == Some(&hash) && rotated_to.as_ref() == Some(&row.token_hash))
        };
        match row {
            Some(mut row) if proven(&row) => {
                if let (Some(rotation), Some(new_hash)) = (rotation, rotated_to) {
                    // Before any publication of this request: the asking device's identity
                    // (in `keep`) may be published right after, whatever the count was.
                    store::rotate_token(&tx, row.id, &new_hash)?;
                    store::drop_resident_identities(&tx, row.id, &rotation.keep)?;
                    row.token_hash = new_hash;
                }
                reach.resident.insert(row.id, row);
            }
            Some(row) if row.previous_token_hash.as_ref() == Some(&hash) => {
                response.gone.push(GoneConversation {
                    conversation: access.conversation,
                    reason: GoneReason::Revoked,
                })
            }
            _ => response.gone.push(GoneConversation {
                conversation: access.conversation,
                reason: GoneReason::NoAccess,
            }),
        }
    }

    for publish in &req.publish {
        let owner = match publish.conversation {
            Some(c) if reach.resident.contains_key(&c) => KeyOwner::Conversation(c),
            // Only caseworkers publish a device identity.
            None if !reach.teams.is_empty() => KeyOwner::Device(device.device),
            _ => continue,
        };
        match store::key_owner(&tx, &publish.curve25519)? {
            Some(held) if held != owner => continue,
            Some(_) => {}
            None => match owner {
                // One caseworker identity per device: a new one replaces the old.
                KeyOwner::Device(d) => store::drop_device_keys(&tx, d)?,
                KeyOwner::Conversation(c) => {
                    if store::resident_key_count(&tx, c)? >= MAX_RESIDENT_DEVICES {
                        continue;
                    }
                }
            },
        }
        store::publish_keys(
            &tx,
            &publish.curve25519,
            &publish.ed25519,
            owner,
            &publish.one_time_keys,
            publish.fallback_key.as_deref(),
            now,
        )?;
        response.published.push(publish.curve25519.clone());
    }

    let mut acks = Vec::with_capacity(pushed.len());
    for &(index, record) in pushed {
        let outcome = store_record(&tx, &reach, record, now)?;
        acks.push(Ack {
            index: index as u32,
            outcome,
        });
    }

    for claim in &req.claims {
        let mut key = None;
        if let Some(theirs) = store::key_owner(&tx, claim)? {
            for mine in owned_keys(&reach) {
                if reach.shares_channel(&tx, mine, theirs)? {
                    key = store::claim_key(&tx, claim)?;
                    break;
                }
            }
        }
        response.claimed.push(ClaimedKey {
            identity: claim.clone(),
            one_time_key: key,
        });
    }

    for id in &req.close {
        if let Some(channel) = reach.channel(&tx, *id)? {
            if channel.kind == ChannelKind::Conversation {
                store::close_conversation(&tx, *id, now)?;
            }
        }
    }
    let mut erased_any = false;
    for id in &req.erase {
        if let Some(channel) = reach.channel(&tx, *id)? {
            if let (ChannelKind::Conversation, Some(row)) = (channel.kind, store::conversation(&tx, *id)?) {
                let by = if reach.resident.contains_key(id) {
                    "resident".to_string()
                } else {
                    format!("caseworker {}", device.person)
                };
                store::erase_conversation(&tx, &row, &by, "on request", now)?;
                erased_any = true;
                reach.resident.remove(id);
                response.gone.push(GoneConversation {
                    conversation: *id,
                    reason: GoneReason::Erased,
                });
            }
        }
    }
    // Inbox messages at or before a device's cursor have arrived: deleted now.
    for inbox in &req.inboxes {
        if reach.owns(store::key_owner(&tx, &inbox.identity)?) {
            store::delete_delivered(&tx, &inbox.identity, inbox.after)?;
        }
    }
    tx.commit()?;
    Ok((acks, response, reach, erased_any))
}

/// Pages of every channel the device reads, and its inboxes, within `budget`; returns the
/// bytes used.
fn read_part(
    conn: &Connection,
    reach: &Reach,
    req: &CounsellingRequest,
    budget: usize,
    response: &mut CounsellingResponse,
) -> Result<usize, ServerError> {
    let mut used = 0usize;
    let cursors: BTreeMap<Uuid, &quartier_protocol::counselling::ConversationCursor> =
        req.cursors.iter().map(|c| (c.conversation, c)).collect();
    let mut channels: Vec<Channel> = Vec::new();
    for row in reach.resident.values() {
        channels.push(Channel {
            id: row.id,
            kind: ChannelKind::Conversation,
            team: row.team,
            space: row.space,
        });
    }
    for team in reach.teams.values() {
        channels.push(Channel {
            id: team.id,
            kind: ChannelKind::TeamNotes,
            team: team.id,
            space: team.space,
        });
        for id in store::conversations_of_team(conn, team.id)? {
            if !reach.resident.contains_key(&id) {
                channels.push(Channel {
                    id,
                    kind: ChannelKind::Conversation,
                    team: team.id,
                    space: team.space,
                });
            }
        }
    }
    let readable: BTreeSet<Uuid> = channels.iter().map(|c| c.id).collect();
    for cursor in &req.cursors {
        if !readable.contains(&cursor.conversation)
            && !response
                .gone
                .iter()
                .any(|g| g.conversation == cursor.conversation)
        {
            let reason = if store::erased(conn, cursor.conversation)? {
                GoneReason::Erased
            } else {
                GoneReason::NoAccess
            };
            response.gone.push(GoneConversation {
                conversation: cursor.conversation,
                reason,
            });
        }
    }
    for channel in channels {
        let cursor = cursors.get(&channel.id);
        let left = budget.saturating_sub(used);
        if left == 0 {
            // The rest next time (channels the device has not heard of included).
            response.more = true;
            break;
        }
        let after = cursor.map_or(0, |c| c.after);
        let participants = store::participants(conn, channel.kind, channel.id, channel.team, channel.space)?;
        let (records, next, more) = store::sealed_after(conn, channel.id, after, left)?;
        let changed = cursor.is_none_or(|c| c.participants != participants_digest(&participants));
        if records.is_empty() && !more && !changed {
            continue;
        }
        used += records.iter().map(Record::weight).sum::<usize>()
            + participants
                .iter()
                .map(|p| p.curve25519.len() + p.ed25519.len() + 40)
                .sum::<usize>();
        let closed_at_ms = match channel.kind {
            ChannelKind::Conversation => store::conversation(conn, channel.id)?.and_then(|c| c.closed_at),
            _ => None,
        };
        response.conversations.push(ConversationPage {
            conversation: channel.id,
            space: channel.space,
            team: channel.team,
            kind: channel.kind,
            participants,
            records,
            next,
            more,
            closed_at_ms,
        });
    }

    for inbox in &req.inboxes {
        let owner = store::key_owner(conn, &inbox.identity)?;
        if !reach.owns(owner) {
            continue;
        }
        let left = budget.saturating_sub(used).max(1);
        let (records, next, more) = store::inbox_after(conn, &inbox.identity, inbox.after, left)?;
        used += records.iter().map(Record::weight).sum::<usize>();
        response.one_time_keys_left.push(KeyCount {
            identity: inbox.identity.clone(),
            count: store::one_time_key_count(conn, &inbox.identity)?,
        });
        if records.is_empty() && next == inbox.after {
            continue;
        }
        response.inboxes.push(InboxPage {
            identity: inbox.identity.clone(),
            records,
            next,
            more,
        });
    }
    Ok(used)
}

/// Whether `person` may open a conversation with `team` of `space`: a member of the space,
/// and the team is the space's.
fn may_open(conn: &Connection, person: Uuid, space: Uuid, team: Uuid) -> Result<bool, ServerError> {
    if spaces::role_of(conn, space, person)?.is_none() {
        return Ok(false);
    }
    Ok(store::team(conn, team)?.is_some_and(|t| t.space == space))
}

/// The identities this request proved it holds, as owners.
fn owned_keys(reach: &Reach) -> Vec<KeyOwner> {
    let mut owners: Vec<KeyOwner> = reach
        .resident
        .keys()
        .map(|c| KeyOwner::Conversation(*c))
        .collect();
    if !reach.teams.is_empty() {
        owners.push(KeyOwner::Device(reach.device));
    }
    owners
}

/// Checks and stores one pushed counselling record.
fn store_record(
    conn: &Connection,
    reach: &Reach,
    record: &Record,
    now: i64,
) -> Result<AckOutcome, ServerError> {
    match record {
        Record::Sealed {
            conversation,
            id,
            sender,
            session_id,
            ciphertext,
            ..
        } => {
            if ciphertext.len() > MAX_SEALED_BYTES || session_id.len() > 128 {
                return Ok(reject(RejectCode::TooLarge, "a sealed record has at most 72 KiB"));
            }
            let Some(channel) = reach.channel(conn, *conversation)? else {
                return Ok(reject(
                    RejectCode::Forbidden,
                    "this device does not take part in that conversation",
                ));
            };
            let owner = store::key_owner(conn, sender)?;
            let sender_ok = match owner {
                Some(KeyOwner::Conversation(c)) => c == channel.id && reach.resident.contains_key(&c),
                Some(KeyOwner::Device(d)) => d == reach.device && reach.teams.contains_key(&channel.team),
                None => false,
            };
            if !sender_ok {
                return Ok(reject(
                    RejectCode::NotYourChange,
                    "the sender key is not one this device published for that conversation",
                ));
            }
            Ok(
                match store::store_sealed(conn, channel.id, *id, sender, session_id, ciphertext, now)? {
                    Stored::New => AckOutcome::Stored,
                    Stored::Duplicate => AckOutcome::Duplicate,
                    Stored::Conflict => reject(
                        RejectCode::Malformed,
                        "that record id belongs to another conversation",
                    ),
                    Stored::Full => reject(
                        RejectCode::TooLarge,
                        "the conversation holds as many messages as the server keeps for one (64 MiB)",
                    ),
                },
            )
        }
        Record::ToDevice {
            recipient,
            sender,
            ciphertext,
            ..
        } => {
            if ciphertext.len() > MAX_TO_DEVICE_BYTES {
                return Ok(reject(
                    RejectCode::TooLarge,
                    "a to-device message has at most 4 KiB",
                ));
            }
            let mine = store::key_owner(conn, sender)?;
            let Some(mine) = mine.filter(|_| reach.owns(mine)) else {
                return Ok(reject(
                    RejectCode::NotYourChange,
                    "the sender key is not one this device published",
                ));
            };
            let Some(theirs) = store::key_owner(conn, recipient)? else {
                return Ok(reject(RejectCode::Forbidden, "no device has that key"));
            };
            if !reach.shares_channel(conn, mine, theirs)? {
                return Ok(reject(
                    RejectCode::Forbidden,
                    "that device shares no conversation with this one",
                ));
            }
            if store::inbox_len(conn, recipient)? >= store::MAX_INBOX {
                return Ok(reject(
                    RejectCode::TooLarge,
                    "that device's inbox is full; it takes more once it has synced",
                ));
            }
            store::store_to_device(conn, recipient, sender, ciphertext, now)?;
            Ok(AckOutcome::Stored)
        }
        _ => Ok(reject(RejectCode::Malformed, "not a counselling record")),
    }
}
