//! Counselling on the device (`docs/counselling.md`): end-to-end encrypted conversations
//! between a resident side and a counselling team, the team's case notes and appointments,
//! kept in the store and moved by the batched sync.
//!
//! The cryptography is `quartier-counselling` (vodozemac's Olm and Megolm); this module keeps
//! its state in the store (schema 16, `state.rs`), turns the app's calls into encrypted records
//! in the counselling outbox, and takes the counselling part of a sync (`exchange.rs`). Every
//! call is one transaction: a message is durable, encrypted and queued when it returns, online
//! or not.
//!
//! A resident's conversation uses an identity (Olm account) made for it alone and is reached on
//! the server with an access token, never with the person's id: the team does not learn who
//! else the resident is in the space, and two conversations of one resident share no key.

mod attachments;
pub(crate) mod exchange;
pub(crate) mod state;

pub(crate) use attachments::PendingUpload;
pub use attachments::{NewAttachment, MAX_FILES_PER_MESSAGE};
use quartier_counselling::envelope::Envelope;
pub use quartier_counselling::envelope::{AppointmentPlace, Body};
pub use quartier_counselling::{attachment::FileKey, CryptoError};
pub use quartier_protocol::counselling::{ChannelKind, Participant, Side, TeamInfo};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{parse_stored_uuid, Error, Result};
use crate::model::SpaceId;
use crate::store::Store;
use state::{pickle_key, Channel};

/// A conversation or a team's notes channel, as this device holds it.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CounsellingChannel {
    pub id: Uuid,
    pub kind: ChannelKind,
    /// Which side this device is on.
    pub side: Side,
    pub space: Uuid,
    pub team: Uuid,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    /// The devices that read it now (as the server last said).
    pub participants: Vec<Participant>,
    /// Why the server refused this device the channel (a wrong token), if it did.
    pub problem: Option<String>,
    /// Records written here that the server has not taken yet.
    pub unsent: i64,
}

/// Where a record stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum RecordState {
    /// Written on this device, waiting for the next sync.
    Queued,
    /// The server has it (and every device of the channel will get it).
    Delivered,
    /// Received, but its key has not arrived yet: shown once it does.
    WaitingForKey,
    /// The server refused it, with its reason (this device's own records only).
    Refused(String),
}

/// One record of a channel: a message, a note, an appointment, a closing.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CounsellingRecord {
    pub id: Uuid,
    pub channel: Uuid,
    /// Written on this device.
    pub mine: bool,
    /// Which side wrote it (by the sender's key among the participants). `from_side` across
    /// the FFI (`from` is a keyword in Python).
    #[cfg_attr(feature = "uniffi", uniffi(name = "from_side"))]
    pub from: Side,
    /// The sender device's identity key.
    pub sender: String,
    pub written_at_ms: Option<i64>,
    pub state: RecordState,
    /// `None` while [`RecordState::WaitingForKey`].
    pub body: Option<Body>,
}

/// A passphrase-sealed copy of this device's resident-side counselling keys.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct KeyBackup {
    /// The recovery code: where the backup is kept on the server (32 hex characters). The
    /// resident writes it down with the passphrase.
    pub backup_id: String,
    /// What lets this device (and restored ones) replace the backup later.
    pub secret: String,
    pub sealed: Vec<u8>,
}

/// What a backup holds (JSON, then sealed): per conversation its token and every session key
/// this device holds for it.
#[derive(Serialize, Deserialize)]
struct BackupContent {
    version: u32,
    backup_id: String,
    secret: String,
    channels: Vec<BackupChannel>,
}

#[derive(Serialize, Deserialize)]
struct BackupChannel {
    id: Uuid,
    space: Uuid,
    team: Uuid,
    token: String,
    opened_at_ms: i64,
    closed_at_ms: Option<i64>,
    /// (sender, session id, exported key)
    keys: Vec<(String, String, String)>,
}

/// The team a resident's conversation on `topic` goes to: among the teams of that topic, the
/// one whose postcodes match `postcode` best (the longest matching leading digits), else the
/// one that serves the whole space (no postcodes). `None` when no team counsels on the topic
/// there.
pub fn route<'a>(teams: &'a [TeamInfo], topic: &str, postcode: Option<&str>) -> Option<&'a TeamInfo> {
    let postcode = postcode.map(str::trim).unwrap_or_default();
    let of_topic = teams.iter().filter(|t| t.topic == topic);
    let best_local = of_topic
        .clone()
        .filter_map(|t| {
            t.postcodes
                .iter()
                .filter(|p| !postcode.is_empty() && postcode.starts_with(p.as_str()))
                .map(|p| p.len())
                .max()
                .map(|len| (len, t))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, t)| t);
    best_local.or_else(|| of_topic.clone().find(|t| t.postcodes.is_empty()))
}

/// The code a [`CryptoError`] has for apps (`QuartierError::Counselling`).
pub(crate) fn error_code(error: &CryptoError) -> &'static str {
    match error {
        CryptoError::Malformed { .. } => "malformed",
        CryptoError::Tampered { .. } => "tampered",
        CryptoError::MissingKey { .. } => "missing_key",
        CryptoError::Replayed { .. } => "replayed",
        CryptoError::Misdirected { .. } => "misdirected",
        CryptoError::NotAParticipant(_) => "not_a_participant",
        CryptoError::NoSession(_) => "no_session",
        CryptoError::WrongPassphrase => "wrong_passphrase",
        CryptoError::TooLarge { .. } => "too_large",
        _ => "counselling",
    }
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound {
        what: "counselling conversation",
        id: id.to_string(),
    }
}

fn random_hex<const N: usize>() -> Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::invalid("randomness", e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Opens a conversation with `team` of `space` as its resident side: a new identity and
    /// access token made for it alone. Works offline; the server learns of it at the next sync
    /// (the person must be a member of the space then). Returns the conversation's id.
    pub fn open_conversation(&self, space: SpaceId, team: Uuid) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let token = random_hex::<32>()?;
        self.write(|tx, touched| {
            touched.counselling.insert(id);
            let key = pickle_key(tx)?;
            state::create_identity(tx, &key, Some(id))?;
            tx.execute(
                "INSERT INTO counselling_channels (channel_id, kind, side, space_id, team_id, token, opened_at)
                 VALUES (?1, 'conversation', 'resident', ?2, ?3, ?4, ?5)",
                params![id.to_string(), space.to_string(), team.to_string(), token, crate::store::now_ms()],
            )?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Writes a record into a channel: encrypted for the channel's devices, stored, and queued
    /// for the next sync, in one transaction. Returns the record's id.
    pub fn send_counselling(&self, channel: Uuid, body: Body) -> Result<Uuid> {
        if let Body::Message { text, attachments } = &body {
            if text.trim().is_empty() && attachments.is_empty() {
                return Err(Error::invalid("message", "a message needs text or an attachment"));
            }
        }
        if let Body::Appointment { minutes, .. } = &body {
            if *minutes <= 0 {
                return Err(Error::invalid(
                    "appointment",
                    format!("an appointment lasts at least a minute, got {minutes}"),
                ));
            }
        }
        if matches!(body, Body::Unknown) {
            return Err(Error::invalid(
                "counselling record",
                "not a kind of record that can be sent",
            ));
        }
        self.write(|tx, touched| {
            let channel = state::load_channel(tx, channel)?
                .filter(|c| c.erase_sent)
                .ok_or_else(|| not_found(channel))?;
            touched.counselling.insert(channel.id);
            let closes = matches!(body, Body::Closed);
            let id = seal_and_queue(tx, &channel, body)?;
            if closes {
                tx.execute(
                    "UPDATE counselling_channels SET closed_at = coalesce(closed_at, ?2), close_sent = 0 WHERE channel_id = ?1",
                    params![channel.id.to_string(), crate::store::now_ms()],
                )?;
            }
            Ok(id)
        })
    }

    /// A text message in a conversation.
    pub fn send_counselling_message(&self, channel: Uuid, text: &str) -> Result<Uuid> {
        self.send_counselling(
            channel,
            Body::Message {
                text: text.to_owned(),
                attachments: Vec::new(),
            },
        )
    }

    /// A caseworker's note about a conversation, in the team's notes channel: read by the
    /// team's devices only. The device must have synced since its person joined the team.
    pub fn write_case_note(&self, team: Uuid, about: Uuid, text: &str) -> Result<Uuid> {
        if text.trim().is_empty() {
            return Err(Error::invalid("note", "a note needs text"));
        }
        let notes = self.read(|conn| state::load_channel(conn, team))?;
        if notes.is_none_or(|c| c.kind != "team_notes") {
            return Err(Error::NotFound {
                what: "counselling team",
                id: team.to_string(),
            });
        }
        self.send_counselling(
            team,
            Body::Note {
                about,
                text: text.to_owned(),
            },
        )
    }

    /// Closes a conversation (either side): a closing record is sent, and the team's retention
    /// rule starts counting.
    pub fn close_conversation(&self, channel: Uuid) -> Result<Uuid> {
        self.send_counselling(channel, Body::Closed)
    }

    /// Erases a conversation from this device at once, and from the server and every other
    /// device at the next sync (the resident side, or a caseworker of its team at the
    /// resident's request). Nothing of it stays: records, keys, the identity made for it.
    pub fn erase_conversation(&self, channel: Uuid) -> Result<()> {
        self.write(|tx, touched| {
            touched.counselling.insert(channel);
            state::load_channel(tx, channel)?
                .filter(|c| c.kind == "conversation")
                .ok_or_else(|| not_found(channel))?;
            // The row stays, with its token, until the server has taken the erasure.
            state::forget_channel(tx, channel, true)?;
            tx.execute(
                "UPDATE counselling_channels SET erase_sent = 0 WHERE channel_id = ?1",
                [channel.to_string()],
            )?;
            Ok(())
        })?;
        // The deleted pages were zeroed (secure_delete); this drops the WAL's copies.
        self.checkpoint_after_erasure();
        self.sweep_counselling_files()?;
        Ok(())
    }

    /// Locks every other device of the resident side out of a conversation (a lost or stolen
    /// phone), from this one: at the next sync the server replaces the conversation's access
    /// token with a new one only this device holds, and drops the other devices' identities,
    /// so the team's devices start new sessions without them. A locked-out device reads
    /// nothing sent after, and deletes the conversation at its next sync. A backup made before
    /// holds the old token: upload a new one afterwards (`SyncClient::upload_key_backup`).
    pub fn lock_out_other_devices(&self, channel: Uuid) -> Result<()> {
        let token = random_hex::<32>()?;
        self.write(|tx, touched| {
            touched.counselling.insert(channel);
            state::load_channel(tx, channel)?
                .filter(|c| {
                    c.erase_sent && c.kind == "conversation" && c.side == "resident" && c.token.is_some()
                })
                .ok_or_else(|| not_found(channel))?;
            tx.execute(
                "UPDATE counselling_channels SET rotate_to = coalesce(rotate_to, ?2) WHERE channel_id = ?1",
                params![channel.to_string(), token],
            )?;
            Ok(())
        })
    }

    /// The channels this device takes part in, oldest first.
    pub fn counselling_channels(&self) -> Result<Vec<CounsellingChannel>> {
        self.read(Self::channels_on)
    }

    /// [`Store::counselling_channels`] on a connection (also run by the live query).
    pub(crate) fn channels_on(conn: &rusqlite::Connection) -> Result<Vec<CounsellingChannel>> {
        let mut stmt = conn.prepare_cached(
            "SELECT c.channel_id, c.kind, c.side, c.space_id, c.team_id, c.opened_at, c.closed_at, c.participants,
                    c.problem,
                    (SELECT count(*) FROM counselling_outbox o WHERE o.channel_id = c.channel_id AND o.kind = 'sealed')
             FROM counselling_channels c WHERE c.erase_sent = 1 ORDER BY c.opened_at, c.channel_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, side, space, team, opened_at_ms, closed_at_ms, participants, problem, unsent) =
                row?;
            out.push(CounsellingChannel {
                id: parse_stored_uuid(&id)?,
                kind: if kind == "team_notes" {
                    ChannelKind::TeamNotes
                } else {
                    ChannelKind::Conversation
                },
                side: if side == "team" {
                    Side::Team
                } else {
                    Side::Resident
                },
                space: parse_stored_uuid(&space)?,
                team: parse_stored_uuid(&team)?,
                opened_at_ms,
                closed_at_ms,
                participants: serde_json::from_str(&participants)
                    .map_err(|e| Error::Corrupt(format!("counselling participants: {e}")))?,
                problem,
                unsent,
            });
        }
        Ok(out)
    }

    /// A channel's records in order: those the server placed by its order, then this device's
    /// queued ones.
    pub fn counselling_records(&self, channel: Uuid) -> Result<Vec<CounsellingRecord>> {
        self.read(|conn| Self::records_on(conn, channel))
    }

    /// [`Store::counselling_records`] on a connection (also run by the live query).
    pub(crate) fn records_on(conn: &rusqlite::Connection, channel: Uuid) -> Result<Vec<CounsellingRecord>> {
        let held = state::load_channel(conn, channel)?
            .filter(|c| c.erase_sent)
            .ok_or_else(|| not_found(channel))?;
        let own = state::identity_curve(conn, &held)?;
        // The server lists every resident-side key of a conversation for as long as it
        // exists; a sender not among them is a caseworker (one who left the team too).
        let resident_keys: std::collections::BTreeSet<&str> = held
            .participants
            .iter()
            .filter(|p| p.side == Side::Resident)
            .map(|p| p.curve25519.as_str())
            .collect();
        let mut stmt = conn.prepare_cached(
            "SELECT r.record_id, r.sender, r.mine, r.written_at, r.body, r.refused, r.seq,
                    EXISTS (SELECT 1 FROM counselling_outbox o WHERE o.record_id = r.record_id)
             FROM counselling_records r WHERE r.channel_id = ?1
             ORDER BY r.seq IS NULL, r.seq, r.local_order",
        )?;
        let rows = stmt.query_map([channel.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sender, mine, written_at_ms, body, refused, seq, queued) = row?;
            let body: Option<Body> = body
                .map(|b| {
                    serde_json::from_str(&b).map_err(|e| Error::Corrupt(format!("counselling body: {e}")))
                })
                .transpose()?;
            let state = match (refused, &body, queued, seq) {
                (Some(reason), ..) => RecordState::Refused(reason),
                (None, None, ..) => RecordState::WaitingForKey,
                (None, Some(_), true, _) => RecordState::Queued,
                (None, Some(_), false, _) => RecordState::Delivered,
            };
            let resident_side = if mine || own.as_deref() == Some(sender.as_str()) {
                held.side == "resident"
            } else {
                held.kind == "conversation" && resident_keys.contains(sender.as_str())
            };
            let from = if resident_side { Side::Resident } else { Side::Team };
            out.push(CounsellingRecord {
                id: parse_stored_uuid(&id)?,
                channel,
                mine,
                from,
                sender,
                written_at_ms,
                state,
                body,
            });
        }
        Ok(out)
    }

    /// Seals this device's resident-side counselling keys under `passphrase` (Argon2id): what a
    /// new phone needs, with the returned recovery code, to read these conversations.
    pub fn export_key_backup(&self, passphrase: &str) -> Result<KeyBackup> {
        let (backup_id, secret, content) = self.write(|tx, _| {
            let key = pickle_key(tx)?;
            let held: (Option<String>, Option<String>) = tx.query_row(
                "SELECT backup_id, backup_secret FROM counselling_device WHERE singleton = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (backup_id, secret) = match held {
                (Some(id), Some(secret)) => (id, secret),
                _ => {
                    let (id, secret) = (random_hex::<16>()?, random_hex::<32>()?);
                    tx.execute(
                        "UPDATE counselling_device SET backup_id = ?1, backup_secret = ?2 WHERE singleton = 1",
                        params![id, secret],
                    )?;
                    (id, secret)
                }
            };
            let mut channels = Vec::new();
            for channel in state::all_channels(tx)? {
                let Some(token) = channel.token.clone().filter(|_| channel.side == "resident" && channel.erase_sent)
                else {
                    continue;
                };
                let inbound = state::inbound_of(&channel, &key)?;
                let (opened_at_ms, closed_at_ms): (i64, Option<i64>) = tx.query_row(
                    "SELECT opened_at, closed_at FROM counselling_channels WHERE channel_id = ?1",
                    [channel.id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                channels.push(BackupChannel {
                    id: channel.id,
                    space: channel.space,
                    team: channel.team,
                    token,
                    opened_at_ms,
                    closed_at_ms,
                    keys: inbound.export(channel.id),
                });
            }
            let content = serde_json::to_vec(&BackupContent {
                version: 1,
                backup_id: backup_id.clone(),
                secret: secret.clone(),
                channels,
            })
            .map_err(|e| Error::invalid("backup", e.to_string()))?;
            Ok((backup_id, secret, content))
        })?;
        let sealed = quartier_counselling::backup::seal(passphrase, &content)?;
        Ok(KeyBackup {
            backup_id,
            secret,
            sealed,
        })
    }

    /// Restores conversations from a backup sealed with `passphrase`: this device joins each as
    /// a new device of the resident side (an identity of its own, published at the next sync)
    /// and reads their history with the keys in the backup. Returns how many it added. A
    /// wrong passphrase is [`CryptoError::WrongPassphrase`], and nothing is stored.
    pub fn restore_key_backup(&self, passphrase: &str, sealed: &[u8]) -> Result<usize> {
        let content = quartier_counselling::backup::open(passphrase, sealed)?;
        let content: BackupContent = serde_json::from_slice(&content).map_err(|e| {
            Error::from(CryptoError::Malformed {
                what: "backup content",
                reason: e.to_string(),
            })
        })?;
        self.write(|tx, touched| {
            let key = pickle_key(tx)?;
            tx.execute(
                "UPDATE counselling_device SET backup_id = ?1, backup_secret = ?2 WHERE singleton = 1",
                params![content.backup_id, content.secret],
            )?;
            touched.counselling.extend(content.channels.iter().map(|c| c.id));
            let mut added = 0;
            for channel in &content.channels {
                if state::load_channel(tx, channel.id)?.is_some() {
                    continue;
                }
                let mut inbound = quartier_counselling::group::InboundGroups::default();
                for (sender, session_id, exported) in &channel.keys {
                    inbound.import(channel.id, sender, session_id, exported)?;
                }
                tx.execute(
                    "INSERT INTO counselling_channels (channel_id, kind, side, space_id, team_id, token, opened, opened_at,
                         closed_at, inbound)
                     VALUES (?1, 'conversation', 'resident', ?2, ?3, ?4, 1, ?5, ?6, ?7)",
                    params![
                        channel.id.to_string(),
                        channel.space.to_string(),
                        channel.team.to_string(),
                        channel.token,
                        channel.opened_at_ms,
                        channel.closed_at_ms,
                        inbound.pickle(&key)
                    ],
                )?;
                state::create_identity(tx, &key, Some(channel.id))?;
                added += 1;
            }
            Ok(added)
        })
    }

    /// The recovery code and secret of this device's backup, if it made or restored one.
    pub fn key_backup_id(&self) -> Result<Option<(String, String)>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT backup_id, backup_secret FROM counselling_device
                     WHERE singleton = 1 AND backup_id IS NOT NULL AND backup_secret IS NOT NULL",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
    }
}

/// Encrypts `body` for `channel` with this device's sending session (a new one when a device
/// left or the session is used up), stores the record as this device's own, and queues it.
fn seal_and_queue(tx: &rusqlite::Transaction<'_>, channel: &Channel, body: Body) -> Result<Uuid> {
    let key = pickle_key(tx)?;
    let own = match state::identity_curve(tx, channel)? {
        Some(curve) => curve,
        None if channel.side == "team" => state::create_identity(tx, &key, None)?.curve25519,
        None => {
            return Err(Error::Corrupt(
                "a resident conversation without its identity".into(),
            ))
        }
    };
    let readers = exchange::readers(channel, &own);
    // Only the current session is opened and stored again: a send costs the same however many
    // earlier sessions wait to reach every reader (`exchange`).
    let mut earlier = state::outbound_pickles(channel)?;
    let current = earlier
        .pop()
        .map(|p| quartier_counselling::group::OutboundGroup::from_pickle(&p, &key))
        .transpose()?;
    // A new session when the current one is used up or a device it went to left; the earlier
    // ones stay until their keys have reached every reader.
    let mut outbound = match current {
        Some(group) if !group.needs_rotation(&readers) => group,
        Some(group) => {
            earlier.push(group.pickle(&key));
            exchange::new_outbound(tx, channel, &own, &key)?
        }
        None => exchange::new_outbound(tx, channel, &own, &key)?,
    };
    let envelope = Envelope::new(channel.id, body);
    let sealed = outbound.encrypt(&envelope)?;
    let body_json = serde_json::to_string(&envelope.body)
        .map_err(|e| Error::invalid("counselling body", e.to_string()))?;
    tx.execute(
        "INSERT INTO counselling_records (record_id, channel_id, local_order, sender, mine, session_id, written_at, body)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7)",
        params![
            envelope.id.to_string(),
            channel.id.to_string(),
            state::next_local_order(tx)?,
            own,
            sealed.session_id,
            envelope.written_at_ms,
            body_json
        ],
    )?;
    tx.execute(
        "INSERT INTO counselling_outbox (kind, channel_id, record_id, sender, session_id, ciphertext)
         VALUES ('sealed', ?1, ?2, ?3, ?4, ?5)",
        params![
            channel.id.to_string(),
            envelope.id.to_string(),
            own,
            sealed.session_id,
            sealed.ciphertext
        ],
    )?;
    earlier.push(outbound.pickle(&key));
    state::save_outbound_pickles(tx, channel.id, &earlier)?;
    Ok(envelope.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(topic: &str, postcodes: &[&str]) -> TeamInfo {
        TeamInfo {
            id: Uuid::now_v7(),
            name: format!("{topic} {postcodes:?}"),
            topic: topic.into(),
            postcodes: postcodes.iter().map(|p| p.to_string()).collect(),
            retention_days: None,
        }
    }

    #[test]
    fn routing_prefers_the_closest_local_team_then_the_general_one() {
        let teams = vec![
            team("debt", &[]),
            team("debt", &["507"]),
            team("debt", &["5073", "5074"]),
            team("addiction", &["507"]),
        ];
        assert_eq!(
            route(&teams, "debt", Some("50733")).map(|t| t.id),
            Some(teams[2].id)
        );
        assert_eq!(
            route(&teams, "debt", Some("50799")).map(|t| t.id),
            Some(teams[1].id)
        );
        assert_eq!(
            route(&teams, "debt", Some("10115")).map(|t| t.id),
            Some(teams[0].id)
        );
        assert_eq!(route(&teams, "debt", None).map(|t| t.id), Some(teams[0].id));
        // No general addiction team: outside its postcodes nobody takes it.
        assert_eq!(route(&teams, "addiction", Some("10115")), None);
        assert_eq!(route(&teams, "family", Some("50733")), None);
    }
}
