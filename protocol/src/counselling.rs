//! Counselling over the batched sync (`docs/counselling.md`): what a device asks and pushes in
//! [`crate::SyncRequest::counselling`], and what the server answers in
//! [`crate::SyncResponse::counselling`]. The server relays ciphertext ([`crate::Record::Sealed`],
//! [`crate::Record::ToDevice`]) and keeps only the routing metadata these types name.
//!
//! Who may read a conversation: the devices of its resident side, which prove it with the
//! conversation's access token (the server keeps its hash, never who holds it), and the devices
//! of the caseworkers in its team (by the server's membership). A team's notes channel (id =
//! the team's id) is read by the team's devices only.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messages::Record;

/// Most access tokens, claims, published key sets, closings or erasures one request may name.
pub const MAX_COUNSELLING_ENTRIES: usize = 200;

/// Most channel cursors and inbox cursors one request may carry (a caseworker's device holds a
/// cursor for every conversation of its teams).
pub const MAX_COUNSELLING_CURSORS: usize = 5_000;

/// Most conversations one request may open (a flood of new conversations slows every sync of
/// the team's devices).
pub const MAX_OPENS_PER_REQUEST: usize = 5;

/// Most identities a conversation's resident side may publish (one per device of the resident).
pub const MAX_RESIDENT_DEVICES: usize = 8;

/// Most one-time keys one publication may carry.
pub const MAX_ONE_TIME_KEYS_PER_PUBLISH: usize = 50;

/// Most bytes of one sealed record's ciphertext (a message of at most 64 KiB of envelope,
/// encrypted and padded); attachments travel as blobs.
pub const MAX_SEALED_BYTES: usize = 72 * 1024;

/// Most bytes of one attachment's ciphertext: 32 MiB of file (the counselling crate's
/// `MAX_ATTACHMENT_BYTES`) and its authentication tag, with room to spare.
pub const MAX_ATTACHMENT_CIPHERTEXT_BYTES: u64 = 32 * 1024 * 1024 + 1024;

/// Most bytes of sealed records one conversation holds on a server (tens of thousands of
/// messages); past it, records are refused (`too_large`) and the app shows why.
pub const MAX_CONVERSATION_SEALED_BYTES: u64 = 64 * 1024 * 1024;

/// Most attachment bytes one conversation holds on a server (uploads under way included).
pub const MAX_CONVERSATION_ATTACHMENT_BYTES: u64 = 256 * 1024 * 1024;

/// The HTTP header that proves a conversation's access token on the attachment endpoints
/// (`/v1/counselling/{conversation}/attachments/…`): the resident side's devices send it; a
/// caseworker's device is recognised by its credentials and needs none.
pub const ACCESS_HEADER: &str = "quartier-access";

/// Most bytes of one to-device ciphertext (a conversation key in an Olm message).
pub const MAX_TO_DEVICE_BYTES: usize = 4 * 1024;

/// Length of a base64 (unpadded) Curve25519 or Ed25519 public key.
pub const KEY_CHARS: usize = 43;

/// The counselling part of a sync request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounsellingRequest {
    /// Conversations this device reads as the resident: the access token proves it may.
    #[serde(default)]
    pub access: Vec<ConversationAccess>,
    /// Where the device stands in each conversation it reads (resident or team side). A team
    /// device gets its teams' conversations it names no cursor for from the start.
    #[serde(default)]
    pub cursors: Vec<ConversationCursor>,
    /// The device's to-device inboxes (one per identity key it holds) and what it received.
    #[serde(default)]
    pub inboxes: Vec<InboxCursor>,
    /// Identity keys of other devices to claim one one-time key of each (to open an Olm
    /// session); only devices that share a conversation with this one.
    #[serde(default)]
    pub claims: Vec<String>,
    /// Keys this device publishes: a new identity, more one-time keys, a new fallback key.
    #[serde(default)]
    pub publish: Vec<PublishKeys>,
    /// Conversations this device closes (either side may): their retention clock starts.
    #[serde(default)]
    pub close: Vec<Uuid>,
    /// Conversations this device has erased (the resident side, or a caseworker of the team on
    /// the resident's request): the server deletes them and tells every other device.
    #[serde(default)]
    pub erase: Vec<Uuid>,
}

/// Proof that the device reads a conversation as its resident side; with `open`, the
/// conversation is created if the server does not have it (opening is idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationAccess {
    pub conversation: Uuid,
    /// 32 random bytes, base64: made by the device that opened the conversation, carried to
    /// the resident's other devices in the passphrase backup.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenConversation>,
    /// Locks the resident side's other devices out (a lost phone): see [`TokenRotation`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<TokenRotation>,
}

/// A new access token for a conversation, proven with the current one: from then on the old
/// token reaches nothing (a device still sending it is told [`GoneReason::Revoked`]), and of the
/// resident side's identities only `keep` stay participants, so senders start new sessions
/// without the others. Sent again until the answer arrives (the server takes a repeat as done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRotation {
    pub token: String,
    /// Curve25519 keys of the resident side's identities that stay (the asking device's own).
    pub keep: Vec<String>,
}

/// Where a new conversation goes: a team of a space the device's person belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConversation {
    pub space: Uuid,
    pub team: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationCursor {
    pub conversation: Uuid,
    /// The `next` of the last page of this conversation the device committed (0: none yet).
    pub after: i64,
    /// [`participants_digest`] of the participants the device holds: the server sends the
    /// list again only when it differs, or when records wait.
    #[serde(default)]
    pub participants: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCursor {
    /// One of the device's identity keys (Curve25519, base64).
    pub identity: String,
    /// The `next` of the last inbox page committed: the server deletes what is at or before it.
    pub after: i64,
}

/// A device's public keys and the one-time keys it adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishKeys {
    pub curve25519: String,
    pub ed25519: String,
    /// `Some`: a resident-side identity made for this one conversation (the request carries
    /// its access token); `None`: this device's caseworker identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Uuid>,
    #[serde(default)]
    pub one_time_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<String>,
}

/// The counselling part of a sync response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounsellingResponse {
    #[serde(default)]
    pub conversations: Vec<ConversationPage>,
    #[serde(default)]
    pub inboxes: Vec<InboxPage>,
    #[serde(default)]
    pub claimed: Vec<ClaimedKey>,
    /// Conversations the device named that it may no longer read (its caseworker left the
    /// team, the conversation was erased, the token is wrong): it forgets them and their keys.
    #[serde(default)]
    pub gone: Vec<GoneConversation>,
    /// One-time keys the server still holds per identity of this device (to top up).
    #[serde(default)]
    pub one_time_keys_left: Vec<KeyCount>,
    /// The identities of [`CounsellingRequest::publish`] the server took (the others are
    /// published again next time).
    #[serde(default)]
    pub published: Vec<String>,
    /// More channels wait than the budget held: ask again.
    #[serde(default)]
    pub more: bool,
}

/// One conversation (or a team's notes channel) as this device may see it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationPage {
    pub conversation: Uuid,
    pub space: Uuid,
    pub team: Uuid,
    pub kind: ChannelKind,
    /// Every device that reads the conversation now.
    pub participants: Vec<Participant>,
    /// [`Record::Sealed`] after the device's cursor, oldest first.
    pub records: Vec<Record>,
    pub next: i64,
    pub more: bool,
    /// Closed by either side (milliseconds since the epoch); retention counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A resident and a team.
    Conversation,
    /// A team's case notes: its caseworkers' devices only.
    TeamNotes,
    #[serde(other)]
    Unknown,
}

/// A device that reads a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub curve25519: String,
    pub ed25519: String,
    pub side: Side,
    /// The caseworker (a person of the space) for team devices; never set for the resident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Resident,
    Team,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    pub identity: String,
    /// [`Record::ToDevice`] after the cursor, oldest first.
    pub records: Vec<Record>,
    pub next: i64,
    pub more: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    pub identity: String,
    /// A one-time key, or the device's fallback key when none is left; `None` when the device
    /// published neither (or shares no conversation with the claimer).
    #[serde(default)]
    pub one_time_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneConversation {
    pub conversation: Uuid,
    pub reason: GoneReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// Erased (on request or by retention): the device deletes everything of it.
    Erased,
    /// This device may not read it (not in the team any more, a wrong token).
    NoAccess,
    /// The resident side locked this device out (its token was replaced, [`TokenRotation`]):
    /// the device deletes everything of it.
    Revoked,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    pub identity: String,
    pub count: u32,
}

/// A counselling team of a space, as members see it (`GET /v1/spaces/{space}/teams`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamInfo {
    pub id: Uuid,
    pub name: String,
    /// What the team counsels on (`debt`, `addiction`, `family`, `migration` …): routing key.
    pub topic: String,
    /// Postcodes (or their leading digits) the team serves; empty: the whole space.
    #[serde(default)]
    pub postcodes: Vec<String>,
    /// Days after closing that a conversation is erased (`None`: kept until erased on request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamList {
    pub teams: Vec<TeamInfo>,
}

/// `POST /v1/spaces/{space}/teams` (coordinators) and `PUT …/teams/{team}` (renaming,
/// re-routing, retention).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSettings {
    pub name: String,
    pub topic: String,
    #[serde(default)]
    pub postcodes: Vec<String>,
    #[serde(default)]
    pub retention_days: Option<i32>,
}

/// `PUT /v1/counselling/backups/{id}`: a passphrase-sealed key backup, stored under a random id
/// the resident keeps (the recovery code). `secret` (made with the backup, kept in it) is what
/// may replace it later; the server keeps its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupUpload {
    pub secret: String,
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// `GET /v1/counselling/backups/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDownload {
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// Most bytes of a sealed backup (keys of many conversations; never messages or media).
pub const MAX_BACKUP_BYTES: usize = 4 * 1024 * 1024;

/// `PUT /v1/spaces/{space}/teams/{team}/members/{person}` answers, and what coordinators and org
/// admins read from `GET …/teams/{team}/members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMembers {
    pub team: Uuid,
    pub caseworkers: Vec<Uuid>,
}

impl Record {
    /// Whether this is a counselling record (relayed, never applied to documents).
    pub fn is_counselling(&self) -> bool {
        matches!(self, Record::Sealed { .. } | Record::ToDevice { .. })
    }
}

/// A short fingerprint of a participant list (order does not matter), for
/// [`ConversationCursor::participants`].
pub fn participants_digest(participants: &[Participant]) -> String {
    let mut keys: Vec<&str> = participants.iter().map(|p| p.curve25519.as_str()).collect();
    keys.sort_unstable();
    // FNV-1a over the sorted keys: a change detector, not a security check (the list itself
    // comes from the server either way).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for key in keys {
        for byte in key.bytes().chain([b'\n']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Whether `key` looks like a base64 Curve25519/Ed25519 public key (43 characters of the
/// unpadded standard alphabet). The server checks form only; devices check the key itself.
pub fn is_public_key(key: &str) -> bool {
    key.len() == KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_checked_for_form() {
        assert!(is_public_key("n1Zzq9J0k0tA0JZ0eYqf7rV3n0aYzq9J0k0tA0JZ0eY"));
        assert!(!is_public_key("short"));
        assert!(!is_public_key("n1Zzq9J0k0tA0JZ0eYqf7rV3n0aYzq9J0k0tA0JZ0e="));
        assert!(!is_public_key(&"é".repeat(22)));
    }
}
