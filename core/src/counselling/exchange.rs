//! The counselling part of a sync, without I/O: [`Store::prepare_counselling`] shares
//! conversation keys and tops up published keys (a write), [`request_part`] reads what the
//! request carries, [`apply_part`] takes the answer inside the sync's transaction.
//!
//! Keys travel before they are needed where possible, and never need to: a record whose key
//! has not arrived is kept as ciphertext and opened when the key comes. A sender that learns
//! a device left starts a new Megolm session and re-encrypts what it had not sent yet, so the
//! departed device can read nothing sent after.

use std::collections::BTreeSet;

use quartier_counselling::device::ToDeviceContent;
use quartier_counselling::envelope::{Envelope, Sealed};
use quartier_counselling::group::OutboundGroup;
use quartier_counselling::CryptoError;
use quartier_protocol::counselling::{
    participants_digest, ChannelKind, ConversationAccess, ConversationCursor, CounsellingRequest,
    CounsellingResponse, GoneReason, InboxCursor, OpenConversation, PublishKeys, MAX_COUNSELLING_ENTRIES,
};
use quartier_protocol::{AckOutcome, Record};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::state::{self, pickle_key, Channel};
use super::Body;
use crate::error::{parse_stored_uuid, Error, Result};
use crate::store::Store;

/// One-time keys published at a time, and the count under which more are published.
const ONE_TIME_KEYS: usize = 20;
const TOP_UP_BELOW: u32 = 5;

/// Most counselling records one request pushes.
const MAX_PUSH: usize = 500;

/// The devices that read `channel` besides this one (identity `own`).
pub(crate) fn readers(channel: &Channel, own: &str) -> BTreeSet<String> {
    channel
        .participants
        .iter()
        .map(|p| p.curve25519.clone())
        .filter(|k| k != own)
        .collect()
}

/// A new sending session for `channel` (the caller stores it with the others); its key also
/// goes into this device's own keys of the channel, so that a passphrase backup carries what
/// this device wrote.
pub(crate) fn new_outbound(
    tx: &Transaction<'_>,
    channel: &Channel,
    own: &str,
    key: &[u8; 32],
) -> Result<OutboundGroup> {
    let outbound = OutboundGroup::new(channel.id);
    let current = state::load_channel(tx, channel.id)?.unwrap_or_else(|| channel.clone());
    let mut inbound = state::inbound_of(&current, key)?;
    inbound.add(channel.id, own, &outbound.session_id(), outbound.session_key())?;
    state::save_groups(tx, channel.id, None, Some(&inbound.pickle(key)))?;
    Ok(outbound)
}

/// Whether a device that was given one of `groups` no longer reads the channel.
fn someone_left(groups: &[OutboundGroup], readers: &BTreeSet<String>) -> bool {
    groups.iter().any(|g| !g.nobody_left(readers))
}

/// Re-encrypts this device's queued records of `channel` with `outbound` (a new session):
/// what a departed device could read must not be what is sent after it left.
fn reseal_queued(tx: &Transaction<'_>, channel: Uuid, outbound: &mut OutboundGroup) -> Result<()> {
    let queued: Vec<(i64, String, Option<i64>, Option<String>)> = tx
        .prepare_cached(
            "SELECT o.seq, o.record_id, r.written_at, r.body FROM counselling_outbox o
             JOIN counselling_records r ON r.record_id = o.record_id
             WHERE o.kind = 'sealed' AND o.channel_id = ?1 ORDER BY o.seq",
        )?
        .query_map([channel.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, record_id, written_at, body) in queued {
        let Some(body) = body else { continue };
        let body: Body =
            serde_json::from_str(&body).map_err(|e| Error::Corrupt(format!("counselling body: {e}")))?;
        let envelope = Envelope {
            id: parse_stored_uuid(&record_id)?,
            conversation: channel,
            written_at_ms: written_at.unwrap_or(0),
            body,
        };
        let sealed = outbound.encrypt(&envelope)?;
        tx.execute(
            "UPDATE counselling_outbox SET session_id = ?2, ciphertext = ?3 WHERE seq = ?1",
            params![seq, sealed.session_id, sealed.ciphertext],
        )?;
        tx.execute(
            "UPDATE counselling_records SET session_id = ?2 WHERE record_id = ?1",
            params![record_id, sealed.session_id],
        )?;
    }
    Ok(())
}

/// Keys made for the next request to publish.
#[derive(Serialize, Deserialize)]
struct ToPublish {
    one_time_keys: Vec<String>,
    fallback_key: Option<String>,
}

impl Store {
    /// Before a request: makes this device's caseworker identity if it is a caseworker
    /// anywhere, new keys to publish where the server runs low, new sessions where a device
    /// left, and key shares for every device that lacks the key of this device's session (with
    /// a one-time key claimed earlier, or an open Olm session).
    pub(crate) fn prepare_counselling(&self) -> Result<()> {
        self.write(|tx, _| {
            let caseworker: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM memberships WHERE role = 'caseworker')", [], |r| r.get(0))?;
            let has_channels: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM counselling_channels)", [], |r| r.get(0))?;
            if !caseworker && !has_channels {
                return Ok(());
            }
            let key = pickle_key(tx)?;
            if caseworker && state::caseworker_curve(tx)?.is_none() {
                state::create_identity(tx, &key, None)?;
            }
            // Keys to publish.
            let wanting: Vec<String> = tx
                .prepare_cached(
                    "SELECT curve25519 FROM counselling_identities WHERE (published = 0 OR needs_keys = 1) AND to_publish IS NULL",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for curve in wanting {
                let Some(mut identity) = state::load_identity(tx, &key, &curve)? else { continue };
                let to_publish = ToPublish {
                    one_time_keys: identity.device.new_one_time_keys(ONE_TIME_KEYS),
                    fallback_key: Some(identity.device.rotate_fallback_key()),
                };
                state::save_identity(tx, &key, &identity)?;
                tx.execute(
                    "UPDATE counselling_identities SET to_publish = ?2 WHERE curve25519 = ?1",
                    params![
                        curve,
                        serde_json::to_string(&to_publish).map_err(|e| Error::invalid("keys", e.to_string()))?
                    ],
                )?;
            }
            // Sessions and key shares.
            for channel in state::all_channels(tx)? {
                if !channel.erase_sent {
                    continue;
                }
                let Some(own) = state::identity_curve(tx, &channel)? else { continue };
                let mut groups = state::outbounds_of(&channel, &key)?;
                if groups.is_empty() {
                    continue;
                }
                let readers = readers(&channel, &own);
                if someone_left(&groups, &readers) {
                    // Everything not sent yet goes out in a new session the departed device
                    // never gets; the old sessions are not given to anyone any more.
                    let mut fresh = new_outbound(tx, &channel, &own, &key)?;
                    reseal_queued(tx, channel.id, &mut fresh)?;
                    groups = vec![fresh];
                }
                let Some(mut identity) = state::load_identity(tx, &key, &own)? else { continue };
                for group in &mut groups {
                    let content = ToDeviceContent::ConversationKey {
                        conversation: channel.id,
                        session_id: group.session_id(),
                        session_key: group.session_key().to_owned(),
                    };
                    for peer in group.not_shared_with(&readers) {
                        let claimed: Option<String> = tx
                            .prepare_cached(
                                "SELECT one_time_key FROM counselling_claimed WHERE own = ?1 AND identity = ?2",
                            )?
                            .query_row([&own, &peer], |r| r.get(0))
                            .optional()?;
                        if !identity.device.has_session(&peer) && claimed.is_none() {
                            continue;
                        }
                        tx.execute(
                            "DELETE FROM counselling_claimed WHERE own = ?1 AND identity = ?2",
                            [&own, &peer],
                        )?;
                        let ciphertext = match identity.device.encrypt_for(&peer, claimed.as_deref(), &content) {
                            Ok(c) => c,
                            Err(e) => {
                                // A malformed key from the server: claim another next time.
                                tracing::warn!(error = %e, "a key share could not be made");
                                continue;
                            }
                        };
                        tx.execute(
                            "INSERT INTO counselling_outbox (kind, channel_id, sender, recipient, ciphertext)
                             VALUES ('to_device', ?1, ?2, ?3, ?4)",
                            params![channel.id.to_string(), own, peer, ciphertext],
                        )?;
                        group.mark_shared(&peer);
                    }
                }
                // An earlier session is done with once the server has all its records and every
                // reader its key; the current one stays. (Before the first answer nobody reads
                // yet: everything stays.)
                let last = groups.len() - 1;
                let mut kept = Vec::with_capacity(groups.len());
                for (i, group) in groups.into_iter().enumerate() {
                    let queued: bool = tx
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM counselling_outbox WHERE kind = 'sealed' AND session_id = ?1)",
                        )?
                        .query_row([group.session_id()], |r| r.get(0))?;
                    let done = !readers.is_empty() && group.not_shared_with(&readers).is_empty() && !queued;
                    if i == last || !done {
                        kept.push(group);
                    }
                }
                state::save_identity(tx, &key, &identity)?;
                state::save_outbounds(tx, channel.id, &kept, &key)?;
            }
            Ok(())
        })
    }
}

/// What a request's counselling part pushed: outbox positions by their place in the push, and
/// what else it asked that its answer settles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushedCounselling {
    /// Index in the request's push of the first counselling record.
    pub(crate) first_index: usize,
    pub(crate) seqs: Vec<i64>,
    pub(crate) published: Vec<String>,
    pub(crate) closed: Vec<Uuid>,
    pub(crate) erased: Vec<Uuid>,
    /// Conversations whose token this request replaces, with the new token.
    pub(crate) rotated: Vec<(Uuid, String)>,
    /// The identity of this device each claim of the request is for, in the claims' order.
    pub(crate) claim_owners: Vec<String>,
}

/// Reads what the next request carries for counselling; `None` when this device has nothing
/// of counselling at all.
pub(crate) fn request_part(
    conn: &Connection,
    first_index: usize,
) -> Result<Option<(CounsellingRequest, Vec<Record>, PushedCounselling)>> {
    let channels = state::all_channels(conn)?;
    // (curve25519, ed25519, conversation, inbox cursor, keys to publish)
    type IdentityRow = (String, String, Option<String>, i64, Option<String>);
    let identities: Vec<IdentityRow> = conn
        .prepare_cached(
            "SELECT curve25519, ed25519, conversation_id, inbox_after, to_publish FROM counselling_identities ORDER BY curve25519",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if channels.is_empty() && identities.is_empty() {
        return Ok(None);
    }
    let mut req = CounsellingRequest::default();
    let mut pushed = PushedCounselling {
        first_index,
        ..Default::default()
    };
    let mut claims = BTreeSet::new();
    // Read once: no key means no session of this device to share yet.
    let key = state::stored_pickle_key(conn)?;
    for channel in &channels {
        if let Some(token) = &channel.token {
            let rotate = state::pending_rotation(conn, channel)?;
            if let Some(rotation) = &rotate {
                pushed.rotated.push((channel.id, rotation.token.clone()));
            }
            req.access.push(ConversationAccess {
                conversation: channel.id,
                token: token.clone(),
                open: (!channel.opened).then_some(OpenConversation {
                    space: channel.space,
                    team: channel.team,
                }),
                rotate,
            });
        }
        if !channel.erase_sent {
            req.erase.push(channel.id);
            pushed.erased.push(channel.id);
            continue;
        }
        req.cursors.push(ConversationCursor {
            conversation: channel.id,
            after: channel.after,
            participants: participants_digest(&channel.participants),
        });
        if !channel.close_sent {
            req.close.push(channel.id);
            pushed.closed.push(channel.id);
        }
        // Devices this one must share its session with and has no channel to yet.
        let Some(own) = state::identity_curve(conn, channel)? else {
            continue;
        };
        let Some(key) = key else {
            continue;
        };
        let groups = state::outbounds_of(channel, &key)?;
        let Some(identity) = state::load_identity(conn, &key, &own)? else {
            continue;
        };
        let claimed: BTreeSet<String> = conn
            .prepare_cached("SELECT identity FROM counselling_claimed WHERE own = ?1")?
            .query_map([&own], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for group in &groups {
            for peer in group.not_shared_with(&readers(channel, &own)) {
                if !identity.device.has_session(&peer) && !claimed.contains(&peer) {
                    // One key per pair of identities: each of a resident's conversations has
                    // its own identity, and each needs its own session with the peer.
                    claims.insert((own.clone(), peer));
                }
            }
        }
    }
    let claims: Vec<(String, String)> = claims.into_iter().take(MAX_COUNSELLING_ENTRIES).collect();
    req.claims = claims.iter().map(|(_, peer)| peer.clone()).collect();
    pushed.claim_owners = claims.into_iter().map(|(own, _)| own).collect();
    for (curve, ed, conversation, inbox_after, to_publish) in identities {
        let conversation = conversation.as_deref().map(parse_stored_uuid).transpose()?;
        if let Some(to_publish) = to_publish {
            let keys: ToPublish = serde_json::from_str(&to_publish)
                .map_err(|e| Error::Corrupt(format!("counselling keys to publish: {e}")))?;
            req.publish.push(PublishKeys {
                curve25519: curve.clone(),
                ed25519: ed.clone(),
                conversation,
                one_time_keys: keys.one_time_keys,
                fallback_key: keys.fallback_key,
            });
            pushed.published.push(curve.clone());
        }
        req.inboxes.push(InboxCursor {
            identity: curve,
            after: inbox_after,
        });
    }
    truncate_lists(&mut req);
    let mut push = Vec::new();
    let mut stmt = conn.prepare_cached(
        // A message whose files (or an earlier message's, in the same channel) are not
        // uploaded yet waits: a reader never gets a message whose files cannot be fetched, and
        // a channel's messages keep their order.
        "SELECT seq, kind, channel_id, record_id, sender, recipient, session_id, ciphertext
         FROM counselling_outbox o
         WHERE o.kind = 'to_device' OR NOT EXISTS (
             SELECT 1 FROM counselling_files f JOIN counselling_outbox w ON w.record_id = f.record_id
             WHERE f.uploaded = 0 AND w.kind = 'sealed' AND w.channel_id = o.channel_id AND w.seq <= o.seq)
         ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([MAX_PUSH as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Vec<u8>>(7)?,
        ))
    })?;
    for row in rows {
        let (seq, kind, channel, record, sender, recipient, session_id, ciphertext) = row?;
        let record = if kind == "sealed" {
            Record::Sealed {
                conversation: parse_stored_uuid(channel.as_deref().unwrap_or_default())?,
                id: parse_stored_uuid(record.as_deref().unwrap_or_default())?,
                sender,
                session_id: session_id.unwrap_or_default(),
                ciphertext,
                seq: None,
            }
        } else {
            Record::ToDevice {
                recipient: recipient.unwrap_or_default(),
                sender,
                ciphertext,
                seq: None,
            }
        };
        push.push(record);
        pushed.seqs.push(seq);
    }
    Ok(Some((req, push, pushed)))
}

/// Keeps every list within what the server takes in one request (the rest goes next time).
fn truncate_lists(req: &mut CounsellingRequest) {
    req.access.truncate(MAX_COUNSELLING_ENTRIES);
    req.cursors.truncate(MAX_COUNSELLING_ENTRIES);
    req.inboxes.truncate(MAX_COUNSELLING_ENTRIES);
    req.publish.truncate(MAX_COUNSELLING_ENTRIES);
    req.close.truncate(MAX_COUNSELLING_ENTRIES);
    req.erase.truncate(MAX_COUNSELLING_ENTRIES);
}

/// What applying a counselling answer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CounsellingApplied {
    pub received: usize,
    /// Conversations erased (on request or by retention) and removed from this device.
    pub erased: usize,
    /// Another request has work: pages left, or keys claimed that shares now use.
    pub more: bool,
    /// Channels whose records or state this answer changed (for live queries).
    pub channels: BTreeSet<Uuid>,
}

/// Applies the acknowledgements of the counselling records `pushed` pushed, and the answer.
pub(crate) fn apply_part(
    tx: &Transaction<'_>,
    pushed: &PushedCounselling,
    acks: &[quartier_protocol::Ack],
    response: Option<&CounsellingResponse>,
) -> Result<CounsellingApplied> {
    let mut applied = CounsellingApplied {
        more: pushed.seqs.len() == MAX_PUSH,
        ..Default::default()
    };
    // The channels of the pushed records: acknowledged, they are delivered or refused.
    for seq in &pushed.seqs {
        let channel: Option<Option<String>> = tx
            .prepare_cached("SELECT channel_id FROM counselling_outbox WHERE seq = ?1 AND kind = 'sealed'")?
            .query_row([seq], |r| r.get(0))
            .optional()?;
        if let Some(Some(channel)) = channel {
            applied.channels.insert(parse_stored_uuid(&channel)?);
        }
    }
    for ack in acks {
        let Some(position) = (ack.index as usize).checked_sub(pushed.first_index) else {
            continue;
        };
        let Some(seq) = pushed.seqs.get(position) else {
            continue;
        };
        match &ack.outcome {
            AckOutcome::Stored | AckOutcome::Duplicate => {
                tx.execute("DELETE FROM counselling_outbox WHERE seq = ?1", [seq])?;
            }
            AckOutcome::Rejected { code, message } => {
                tx.execute(
                    "UPDATE counselling_records SET refused = ?2
                     WHERE record_id = (SELECT record_id FROM counselling_outbox WHERE seq = ?1)",
                    params![seq, format!("{code}: {message}")],
                )?;
                // A refused key share is given again (after new keys are claimed).
                let share: Option<(Option<String>, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT channel_id, recipient FROM counselling_outbox WHERE seq = ?1 AND kind = 'to_device'",
                    )?
                    .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((Some(channel), Some(recipient))) = share {
                    let key = pickle_key(tx)?;
                    if let Some(held) = state::load_channel(tx, parse_stored_uuid(&channel)?)? {
                        let mut groups = state::outbounds_of(&held, &key)?;
                        for group in &mut groups {
                            group.unmark_shared(&recipient);
                        }
                        state::save_outbounds(tx, held.id, &groups, &key)?;
                    }
                }
                tx.execute("DELETE FROM counselling_outbox WHERE seq = ?1", [seq])?;
            }
            AckOutcome::Deferred { .. } | AckOutcome::Unknown => {}
        }
    }
    let Some(response) = response else {
        return Ok(applied);
    };
    let key = pickle_key(tx)?;
    applied.more |= response.more;
    // Only what the server took counts as published; the rest is published again.
    for curve in pushed.published.iter().filter(|c| response.published.contains(c)) {
        tx.execute(
            "UPDATE counselling_identities SET published = 1, needs_keys = 0, to_publish = NULL WHERE curve25519 = ?1",
            [curve],
        )?;
    }
    for id in &pushed.closed {
        tx.execute(
            "UPDATE counselling_channels SET close_sent = 1 WHERE channel_id = ?1",
            [id.to_string()],
        )?;
    }
    for id in &pushed.erased {
        state::forget_channel(tx, *id, false)?;
        applied.erased += 1;
    }
    // A replaced token is the token once the server served the conversation on the strength of
    // the request that replaced it (an access entry the request left out, or a page the budget
    // left out, is not that: the rotation is sent again, and taken as done).
    for (id, token) in &pushed.rotated {
        if response.conversations.iter().any(|page| page.conversation == *id) {
            tx.execute(
                "UPDATE counselling_channels SET token = ?2, rotate_to = NULL WHERE channel_id = ?1 AND rotate_to = ?2",
                params![id.to_string(), token],
            )?;
        }
    }
    applied
        .channels
        .extend(response.gone.iter().map(|g| g.conversation));
    for gone in &response.gone {
        match gone.reason {
            // Locked out by the resident side's other device (this one was lost): nothing of
            // the conversation stays here.
            GoneReason::Erased | GoneReason::Revoked => {
                if state::load_channel(tx, gone.conversation)?.is_some() {
                    state::forget_channel(tx, gone.conversation, false)?;
                    applied.erased += 1;
                }
            }
            _ => {
                let held = state::load_channel(tx, gone.conversation)?;
                match held {
                    // A team device no longer in the team keeps nothing of it.
                    Some(c) if c.side == "team" => state::forget_channel(tx, gone.conversation, false)?,
                    Some(_) => {
                        tx.execute(
                            "UPDATE counselling_channels SET problem = 'the server refused this device the conversation'
                             WHERE channel_id = ?1",
                            [gone.conversation.to_string()],
                        )?;
                    }
                    None => {}
                }
            }
        }
    }
    // The server answers claims in the order they were asked.
    for (claimed, own) in response.claimed.iter().zip(&pushed.claim_owners) {
        if let Some(otk) = &claimed.one_time_key {
            tx.execute(
                "INSERT OR REPLACE INTO counselling_claimed (own, identity, one_time_key) VALUES (?1, ?2, ?3)",
                params![own, claimed.identity, otk],
            )?;
            applied.more = true;
        }
    }
    for count in &response.one_time_keys_left {
        if count.count < TOP_UP_BELOW {
            tx.execute(
                "UPDATE counselling_identities SET needs_keys = 1 WHERE curve25519 = ?1 AND to_publish IS NULL",
                [&count.identity],
            )?;
        }
    }
    // Channels first (a key may arrive for a conversation new to this device).
    let mut touched: BTreeSet<Uuid> = BTreeSet::new();
    for page in &response.conversations {
        let kind = match page.kind {
            ChannelKind::Conversation => "conversation",
            ChannelKind::TeamNotes => "team_notes",
            ChannelKind::Unknown => continue,
        };
        let participants = serde_json::to_string(&page.participants)
            .map_err(|e| Error::invalid("participants", e.to_string()))?;
        match state::load_channel(tx, page.conversation)? {
            Some(held) if !held.erase_sent => continue,
            // A page that claims another kind of channel than the one held is not this one.
            Some(held) if held.kind != kind => {
                tracing::warn!("a counselling page of another kind than the channel held was refused");
                continue;
            }
            Some(held) => {
                let before: BTreeSet<&str> =
                    held.participants.iter().map(|p| p.curve25519.as_str()).collect();
                let now: BTreeSet<&str> = page.participants.iter().map(|p| p.curve25519.as_str()).collect();
                if before != now {
                    // New devices get this device's key at the next request.
                    applied.more |= held.outbound.is_some();
                }
                tx.execute(
                    "UPDATE counselling_channels SET participants = ?2, opened = 1, problem = NULL,
                         closed_at = coalesce(closed_at, ?3)
                     WHERE channel_id = ?1",
                    params![page.conversation.to_string(), participants, page.closed_at_ms],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO counselling_channels (channel_id, kind, side, space_id, team_id, opened, participants,
                         opened_at, closed_at)
                     VALUES (?1, ?2, 'team', ?3, ?4, 1, ?5, ?6, ?7)",
                    params![
                        page.conversation.to_string(),
                        kind,
                        page.space.to_string(),
                        page.team.to_string(),
                        participants,
                        crate::store::now_ms(),
                        page.closed_at_ms
                    ],
                )?;
            }
        }
        touched.insert(page.conversation);
    }
    // Keys.
    for inbox in &response.inboxes {
        let Some(mut identity) = state::load_identity(tx, &key, &inbox.identity)? else {
            continue;
        };
        for record in &inbox.records {
            let Record::ToDevice {
                sender, ciphertext, ..
            } = record
            else {
                continue;
            };
            match identity.device.decrypt_from(sender, ciphertext) {
                Ok(ToDeviceContent::ConversationKey {
                    conversation,
                    session_id,
                    session_key,
                }) => {
                    if take_key(tx, &key, conversation, sender, &session_id, &session_key)? {
                        touched.insert(conversation);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a to-device message was refused"),
            }
        }
        state::save_identity(tx, &key, &identity)?;
        tx.execute(
            "UPDATE counselling_identities SET inbox_after = max(inbox_after, ?2) WHERE curve25519 = ?1",
            params![inbox.identity, inbox.next],
        )?;
        applied.more |= inbox.more;
    }
    // Records.
    for page in &response.conversations {
        let Some(channel) = state::load_channel(tx, page.conversation)? else {
            continue;
        };
        for record in &page.records {
            let Record::Sealed {
                id,
                sender,
                session_id,
                ciphertext,
                seq,
                ..
            } = record
            else {
                continue;
            };
            let held: Option<bool> = tx
                .prepare_cached("SELECT mine FROM counselling_records WHERE record_id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            if held.is_some() {
                tx.execute(
                    "UPDATE counselling_records SET seq = coalesce(seq, ?2) WHERE record_id = ?1",
                    params![id.to_string(), seq],
                )?;
                continue;
            }
            tx.execute(
                "INSERT INTO counselling_records (record_id, channel_id, seq, local_order, sender, mine, session_id, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
                params![
                    id.to_string(),
                    channel.id.to_string(),
                    seq,
                    state::next_local_order(tx)?,
                    sender,
                    session_id,
                    ciphertext
                ],
            )?;
            applied.received += 1;
        }
        tx.execute(
            "UPDATE counselling_channels SET after = max(after, ?2) WHERE channel_id = ?1",
            params![channel.id.to_string(), page.next],
        )?;
        applied.more |= page.more;
    }
    // Keys that waited for their conversation or sender.
    let pending: Vec<(String, String, String, String)> = tx
        .prepare_cached(
            "SELECT conversation_id, sender, session_id, session_key FROM counselling_pending_keys",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (conversation, sender, session_id, session_key) in pending {
        let conversation = parse_stored_uuid(&conversation)?;
        // A key still not takeable stays (with the time it first came).
        if take_key(tx, &key, conversation, &sender, &session_id, &session_key)? {
            tx.execute(
                "DELETE FROM counselling_pending_keys WHERE sender = ?1 AND session_id = ?2",
                params![sender, session_id],
            )?;
            touched.insert(conversation);
        }
    }
    // Keys nobody claimed for a week are dropped (a conversation this device never joins).
    tx.execute(
        "DELETE FROM counselling_pending_keys WHERE received_at < ?1",
        [crate::store::now_ms() - 7 * 86_400_000],
    )?;
    applied.channels.extend(touched.iter().copied());
    for channel in touched {
        open_waiting(tx, &key, channel)?;
    }
    Ok(applied)
}

/// Keeps a conversation key `sender` gave this device: only for a channel this device holds,
/// and only from a device of that channel. `true` when kept.
fn take_key(
    tx: &Transaction<'_>,
    key: &[u8; 32],
    conversation: Uuid,
    sender: &str,
    session_id: &str,
    session_key: &str,
) -> Result<bool> {
    let channel = state::load_channel(tx, conversation)?;
    let Some(channel) = channel.filter(|c| c.participants.iter().any(|p| p.curve25519 == sender)) else {
        // Before this device knows the conversation or the sender as a participant (a key may
        // overtake the page that lists them): kept and taken when it does.
        tx.execute(
            "INSERT OR IGNORE INTO counselling_pending_keys (conversation_id, sender, session_id, session_key, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![conversation.to_string(), sender, session_id, session_key, crate::store::now_ms()],
        )?;
        return Ok(false);
    };
    let mut inbound = state::inbound_of(&channel, key)?;
    if let Err(e) = inbound.add(conversation, sender, session_id, session_key) {
        tracing::warn!(error = %e, "a conversation key was refused");
        return Ok(false);
    }
    state::save_groups(tx, conversation, None, Some(&inbound.pickle(key)))?;
    Ok(true)
}

/// Opens every record of `channel` still waiting for its key, with the keys held now.
/// A record that is tampered, misdirected or a replay is dropped (logged): nothing of it stays.
fn open_waiting(tx: &Transaction<'_>, key: &[u8; 32], channel: Uuid) -> Result<()> {
    let Some(held) = state::load_channel(tx, channel)? else {
        return Ok(());
    };
    let waiting: Vec<(String, String, String, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT record_id, sender, session_id, ciphertext FROM counselling_records
             WHERE channel_id = ?1 AND body IS NULL AND ciphertext IS NOT NULL ORDER BY local_order",
        )?
        .query_map([channel.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if waiting.is_empty() {
        return Ok(());
    }
    let mut inbound = state::inbound_of(&held, key)?;
    let mut closed = false;
    for (record_id, sender, session_id, ciphertext) in waiting {
        let sealed = Sealed {
            session_id: session_id.clone(),
            ciphertext,
        };
        let opened = match inbound.decrypt(channel, &sender, &sealed) {
            Ok(opened) if opened.envelope.id.to_string() == record_id => Ok(opened),
            Ok(_) => Err(Error::from(CryptoError::Misdirected {
                what: "message",
                other: "record id",
            })),
            Err(CryptoError::MissingKey { .. }) => continue,
            Err(e) => Err(e.into()),
        };
        let outcome = opened.and_then(|opened| {
            let replayed: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM counselling_records WHERE session_id = ?1 AND msg_index = ?2)")?
                .query_row(params![opened.session_id, opened.index], |r| r.get(0))?;
            if replayed {
                return Err(Error::from(CryptoError::Replayed {
                    session_id: opened.session_id.clone(),
                    index: opened.index,
                }));
            }
            Ok(opened)
        });
        match outcome {
            Ok(opened) => {
                closed |= matches!(opened.envelope.body, Body::Closed);
                let body = serde_json::to_string(&opened.envelope.body)
                    .map_err(|e| Error::invalid("counselling body", e.to_string()))?;
                tx.execute(
                    "UPDATE counselling_records SET body = ?2, ciphertext = NULL, msg_index = ?3, written_at = ?4
                     WHERE record_id = ?1",
                    params![record_id, body, opened.index, opened.envelope.written_at_ms],
                )?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a counselling record was refused and dropped");
                tx.execute(
                    "DELETE FROM counselling_records WHERE record_id = ?1",
                    [&record_id],
                )?;
            }
        }
    }
    if closed {
        tx.execute(
            "UPDATE counselling_channels SET closed_at = coalesce(closed_at, ?2) WHERE channel_id = ?1",
            params![channel.to_string(), crate::store::now_ms()],
        )?;
    }
    Ok(())
}
