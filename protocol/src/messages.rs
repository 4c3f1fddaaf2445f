//! Requests and responses of protocol version 1. Ids are UUIDs; byte fields are CBOR byte
//! strings. Every enum that may grow has an `Unknown` variant so that a newer peer's additions
//! are skipped, not fatal.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member's role in one space; decided by the server only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    Volunteer,
    Caseworker,
    Coordinator,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Resident,
        Role::Volunteer,
        Role::Caseworker,
        Role::Coordinator,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::Volunteer => "volunteer",
            Role::Caseworker => "caseworker",
            Role::Coordinator => "coordinator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which layout a document follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Item,
    Space,
}

impl DocKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Item => "item",
            DocKind::Space => "space",
        }
    }

    pub fn parse(text: &str) -> Option<DocKind> {
        match text {
            "item" => Some(DocKind::Item),
            "space" => Some(DocKind::Space),
            _ => None,
        }
    }
}

/// `POST /v1/devices/challenge` (no body): a one-time challenge the device signs to register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationChallenge {
    #[serde(with = "serde_bytes")]
    pub challenge: Vec<u8>,
    /// Milliseconds since the epoch after which the server no longer takes it.
    pub expires_at_ms: i64,
}

/// `POST /v1/devices`: a device introduces its public key, proves it holds the private key by
/// signing a [`RegistrationChallenge`] (`signing::registration_signing_payload`), and gets a
/// credential. A registration without `challenge` and `signature` (a device of before this
/// rule) is refused with `426 upgrade_required`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterDevice {
    /// Ed25519 public key of the device.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// A name the person chose for themselves (may be a pseudonym).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The challenge the server handed out.
    #[serde(default, with = "serde_bytes")]
    pub challenge: Option<Vec<u8>>,
    /// Ed25519 signature of the device key over the registration payload.
    #[serde(default, with = "serde_bytes")]
    pub signature: Option<Vec<u8>>,
    /// A code from [`DeviceLink`]: the device joins the person who made it (their second
    /// phone) instead of becoming a new person. `display_name` is then ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_code: Option<String>,
    /// The person id the device has written under since before it registered (what it wrote
    /// offline, joining offline, carries it): the server takes it for the new person unless it
    /// is taken. Ignored with `link_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
}

/// `POST /v1/me/device-links`: a one-use code, valid for minutes, that registers another
/// device as this device's person (shown as a QR code on the first phone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLink {
    pub code: String,
    pub expires_at_ms: i64,
}

/// Answer to [`RegisterDevice`]: who the device is and the bearer token it authenticates with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRegistered {
    pub device: Uuid,
    pub person: Uuid,
    pub token: String,
}

/// `POST /v1/spaces`: registers a space the device created; its person becomes coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpace {
    pub space: Uuid,
}

/// `POST /v1/spaces/{space}/invites` (coordinators): an invite code for a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInvite {
    pub role: Role,
    /// Milliseconds since the epoch after which the code no longer works.
    pub expires_at_ms: i64,
    pub max_uses: u32,
}

/// Answer to [`CreateInvite`]. `code` is short enough for a QR code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    pub code: String,
}

/// One open invite of a space, as `GET /v1/spaces/{space}/invites` lists them for its
/// coordinators: never the code itself (the server keeps only its hash), but what it grants
/// and how often it may still be used. `id` names it for `DELETE …/invites/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub id: u64,
    pub role: Role,
    pub expires_at_ms: i64,
    pub max_uses: u32,
    pub uses: u32,
    pub created_by: Uuid,
}

/// Answer to `GET /v1/spaces/{space}/invites`: the invites not yet expired or used up, oldest
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteList {
    pub invites: Vec<InviteInfo>,
}

/// `POST /v1/invites/redeem`: joins the space of an invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemInvite {
    pub code: String,
}

/// Answer to `POST /v1/spaces/{space}/calendar-feed`: the member's new secret calendar feed,
/// as a path on the server (`/calendar/<token>.ics`; the app puts the server's address in front).
/// Any earlier feed of this member and space stops working; `DELETE` on the same route ends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarFeed {
    pub path: String,
}

/// A person's membership of a space, as the server decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub space: Uuid,
    pub person: Uuid,
    pub role: Role,
}

/// `PUT /v1/me/display-name`: the person changes their own display name (any of their
/// devices); `None` or a blank name removes it. The answer is the name as stored (trimmed).
/// Names follow [`crate::names::check_display_name`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName {
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A member of a space as the other members see them: who (the person id, to match authors
/// with), the name they chose (if any) and their role. Never their devices, keys, other spaces
/// or who invited them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub person: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
    pub role: Role,
}

/// Answer to `GET /v1/spaces/{space}/members` (members): the current members, coordinators
/// first, then caseworkers, volunteers, residents; by name within a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    pub members: Vec<MemberInfo>,
}

/// Most member changes (joined, changed, left) one [`SpacePage`] carries; a page that leaves
/// some behind says `more`.
pub const MAX_MEMBERS_PER_PAGE: usize = 200;

/// `PUT /v1/spaces/{space}/members/{person}` (coordinators): changes a member's role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRole {
    pub role: Role,
}

/// Where a device stands in one space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCursor {
    pub space: Uuid,
    /// The `next` of the last page the device committed, verbatim; `None` for a device that has
    /// nothing of the space yet (it then gets compacted snapshots, not the history).
    #[serde(default)]
    pub after: Option<String>,
    /// The `members_next` of the last page whose member changes the device committed; `Some(0)`
    /// for a device that keeps a member list and has none of this space yet (it then gets the
    /// current members). `None` (devices before member lists): no member changes are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_after: Option<i64>,
    /// Where the device stands in the space's stream of signatures
    /// ([`ACCEPTS_SIGNATURE_STREAM`]): the `signatures_next` of the last page it committed,
    /// verbatim, or `""` to start one over everything it holds up to `after`. `None`: no stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_after: Option<String>,
}

/// One record in a push or a page. Record types may be added without a version break: a peer
/// skips `Unknown` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// One Automerge change, signed by the device that made it.
    Change {
        space: Uuid,
        doc: Uuid,
        kind: DocKind,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        /// The device whose key signed `signature`.
        device: Uuid,
        /// Ed25519 signature over [`crate::signing::change_signing_payload`].
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// A compacted document (server → device, for devices new to a space).
    Snapshot {
        space: Uuid,
        doc: Uuid,
        kind: DocKind,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A document whose whole history is its creation, as what rebuilds that change bit for
    /// bit: the author's actor id, the change's time and message, and the JSON it wrote
    /// (server → device, instead of a [`Record::Snapshot`], to devices that list
    /// [`ACCEPTS_CREATED`] in [`SyncRequest::accepts`]). The device rebuilds the change the
    /// way a local write makes one and checks it against `check`, a prefix of its hash.
    Created {
        space: Uuid,
        doc: Uuid,
        kind: DocKind,
        #[serde(with = "serde_bytes")]
        actor: Vec<u8>,
        time_ms: i64,
        #[serde(default)]
        message: Option<String>,
        /// The document's JSON after the change.
        state: String,
        #[serde(with = "serde_bytes")]
        check: Vec<u8>,
    },
    /// An end-to-end encrypted counselling record (`docs/counselling.md`): a message, a case
    /// note or an appointment, readable only by the conversation's devices. Pushed by its
    /// sender; served in a [`crate::counselling::ConversationPage`] with the server's `seq`.
    Sealed {
        conversation: Uuid,
        /// The record's id, also inside the ciphertext: what makes delivery exactly-once.
        id: Uuid,
        /// The sending device's Curve25519 identity key (base64).
        sender: String,
        /// The sender's Megolm session.
        session_id: String,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        /// Its place in the conversation (server → device only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
    },
    /// An Olm-encrypted message from one device to another (a conversation key).
    ToDevice {
        /// The recipient's identity key.
        recipient: String,
        /// The sender's identity key.
        sender: String,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        /// Its place in the recipient's inbox (server → device only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
    },
    /// A record type this version does not know.
    #[serde(other)]
    Unknown,
}

/// What a device lists in [`SyncRequest::accepts`] to be sent [`Record::Created`] made by
/// version 1 of the creation rule (`document::commit_target` as of this protocol). A later rule
/// gets a new name (`created/2`); a server sends a record only in a rule the device names, and a
/// snapshot otherwise.
pub const ACCEPTS_CREATED: &str = "created/1";

/// What devices from before the rule was versioned list; they rebuild by rule 1.
pub const ACCEPTS_CREATED_UNVERSIONED: &str = "created";

/// Whether a device that lists `accepts` rebuilds creation records of rule 1.
pub fn accepts_created_v1(accepts: &[String]) -> bool {
    accepts
        .iter()
        .any(|a| a == ACCEPTS_CREATED || a == ACCEPTS_CREATED_UNVERSIONED)
}

/// How much smaller the JSON of a [`Record::Created`] gets in a zstd-compressed page: about 8×
/// on generated neighbourhood content (`bench/examples/snapshot_size.rs`), rounded down.
pub const CREATED_WIRE_RATIO: usize = 6;

/// How much smaller an uncompressed Automerge snapshot (`save_nocompress`, what the server
/// sends) gets in a zstd-compressed page: about 4.5× on generated neighbourhood content
/// (`bench/examples/snapshot_size.rs`). Rounded down, so pages err on the small side.
pub const SNAPSHOT_WIRE_RATIO: usize = 4;

impl Record {
    /// Approximate size on the wire (after the page's zstd), for byte budgets: a page of budget
    /// B is about B bytes on the link, which is what a dropped 2G connection costs.
    pub fn weight(&self) -> usize {
        match self {
            Record::Change { bytes, signature, .. } => bytes.len() + signature.len() + 64,
            Record::Snapshot { bytes, .. } => bytes.len() / SNAPSHOT_WIRE_RATIO + 48,
            Record::Created {
                state,
                message,
                check,
                ..
            } => {
                (state.len() + message.as_ref().map_or(0, String::len)) / CREATED_WIRE_RATIO
                    + check.len()
                    + 48
            }
            Record::Sealed {
                ciphertext,
                sender,
                session_id,
                ..
            } => ciphertext.len() + sender.len() + session_id.len() + 48,
            Record::ToDevice {
                ciphertext,
                sender,
                recipient,
                ..
            } => ciphertext.len() + sender.len() + recipient.len() + 16,
            Record::Unknown => 8,
        }
    }
}

/// Most bytes of one change: the server refuses a larger one (`too_large`), and so does a
/// device taking changes from another device.
pub const MAX_CHANGE_BYTES: usize = 512 * 1024;

/// Most records one [`SyncRequest`] may push, and most spaces it may carry cursors for; a
/// device in more spaces asks about them in windows of this many (the server refuses more).
pub const MAX_PUSH_PER_REQUEST: usize = 5_000;
pub const MAX_CURSORS_PER_REQUEST: usize = 500;

/// `POST /v1/sync`: one batched exchange per request, never one handshake per document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    pub cursors: Vec<SpaceCursor>,
    pub push: Vec<Record>,
    /// Most bytes of records the device wants in the response.
    pub budget_bytes: u32,
    /// Record forms beyond those of version 1 that the device can apply (e.g.
    /// [`ACCEPTS_CREATED`]); a server sends no other, so older devices never skip a document.
    #[serde(default)]
    pub accepts: Vec<String>,
    /// Counselling: conversations, inboxes, key claims and publications (`docs/counselling.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counselling: Option<crate::counselling::CounsellingRequest>,
    /// Certificates and revocation lists for device to device (`docs/protocol.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsRequest>,
    /// Reports, coordinators' decisions, mutes and the moderation log's cursors
    /// (`docs/neighbourhood.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<crate::moderation::ModerationRequest>,
    /// Steps of the help board's flow and the help log's cursors (`docs/neighbourhood.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<crate::help::HelpRequest>,
}

/// Most certificates of other devices one [`CredentialsRequest`] may ask for.
pub const MAX_SIGNER_CERTIFICATES: usize = 256;

/// What a device asks for to meet other devices without the server: its own certificates, the
/// certificates of devices whose changes it carries, and newer revocation lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsRequest {
    /// Spaces for which the device wants a certificate of its own (first or renewed).
    #[serde(default)]
    pub own: Vec<Uuid>,
    /// Other devices whose certificates it wants, at most [`MAX_SIGNER_CERTIFICATES`].
    #[serde(default)]
    pub signers: Vec<SignerRef>,
    /// The revocation lists it holds (`after_ms` 0: none); a newer one is sent back.
    #[serde(default)]
    pub revocations: Vec<RevocationCursor>,
}

/// A device, in a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerRef {
    pub space: Uuid,
    pub device: Uuid,
}

/// The time of the revocation list a device holds for a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationCursor {
    pub space: Uuid,
    pub after_ms: i64,
}

/// Answer to [`CredentialsRequest`]: the server's key (which devices pin), and what it could
/// issue: nothing for a space the device is not a member of or a device that is not one's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(with = "serde_bytes")]
    pub server_key: Vec<u8>,
    #[serde(default)]
    pub certificates: Vec<crate::certificates::SignedCertificate>,
    #[serde(default)]
    pub revocations: Vec<crate::certificates::SignedRevocationList>,
}

/// What became of a pushed change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AckOutcome {
    /// Stored now.
    Stored,
    /// The server already had it.
    Duplicate,
    /// Refused for good: the device takes it out of its outbox, returns the document to what
    /// the server accepted, and lists the change as not delivered, with the code, for the person.
    Rejected { code: RejectCode, message: String },
    /// Not stored yet; keep it and push it again later. `reason` says why: a change it depends
    /// on has not arrived, or the server failed for a moment (its database, its disk). Never
    /// sent for a change the server will not take.
    Deferred {
        message: String,
        /// Absent from servers before the reason was added: read as `missing_dependency`.
        #[serde(default)]
        reason: DeferReason,
    },
    #[serde(other)]
    Unknown,
}

/// Why a pushed change was deferred (kept by the device and pushed again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferReason {
    /// A change it depends on has not reached the server yet.
    #[default]
    MissingDependency,
    /// The server failed while storing it (a transient fault): nothing of it was stored.
    ServerFault,
    /// The request had used up the work the server does for one request: push it again.
    Busy,
    #[serde(other)]
    Unknown,
}

impl DeferReason {
    /// The snake_case name the protocol uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeferReason::MissingDependency => "missing_dependency",
            DeferReason::ServerFault => "server_fault",
            DeferReason::Busy => "busy",
            DeferReason::Unknown => "unknown",
        }
    }
}

/// Why a pushed change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    BadSignature,
    NotAMember,
    Forbidden,
    NotYourChange,
    TooLarge,
    Malformed,
    /// The author is blocked in the space by its coordinators.
    Blocked,
    /// The item was erased by the space's coordinators: nothing more of it is taken.
    Erased,
    #[serde(other)]
    Other,
}

impl RejectCode {
    /// The snake_case name the protocol uses (what is on the wire).
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectCode::BadSignature => "bad_signature",
            RejectCode::NotAMember => "not_a_member",
            RejectCode::Forbidden => "forbidden",
            RejectCode::NotYourChange => "not_your_change",
            RejectCode::TooLarge => "too_large",
            RejectCode::Malformed => "malformed",
            RejectCode::Blocked => "blocked",
            RejectCode::Erased => "erased",
            RejectCode::Other => "other",
        }
    }
}

impl std::fmt::Display for RejectCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The acknowledgement of one pushed record, by its position in the push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub index: u32,
    pub outcome: AckOutcome,
}

/// Records of one space after the device's cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacePage {
    pub space: Uuid,
    pub records: Vec<Record>,
    /// The cursor to send next time for this space (opaque to devices).
    pub next: String,
    /// More records wait after `next`, or more member changes after the roster's `next`.
    pub more: bool,
    /// The space's member changes since the cursor's `members_after`: only when the cursor
    /// carried one and something changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<RosterChanges>,
    /// The authors' signatures of the changes inside this page's [`Record::Created`] and
    /// [`Record::Snapshot`] records, for devices that list [`ACCEPTS_SIGNATURES`]: what lets a
    /// device show those documents to another device (`docs/protocol.md`, "Device to device").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<ChangeSignature>,
    /// For devices that list [`ACCEPTS_SIGNATURE_STREAM`]: the `signatures_after` to send next
    /// time for this space, `None` when the stream is complete (or there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_next: Option<String>,
}

/// What a device lists in [`SyncRequest::accepts`] to be sent [`SpacePage::signatures`] inside
/// each page, beside the forms and snapshots they sign.
pub const ACCEPTS_SIGNATURES: &str = "signatures/1";

/// What a device lists in [`SyncRequest::accepts`] to be sent the signatures of an initial
/// sync's forms and snapshots after the space's content, in pages of their own
/// ([`SpaceCursor::signatures_after`], [`SpacePage::signatures_next`]): the content arrives in
/// fewer bytes, sooner, and a device that never shows documents to peers can go without them.
/// A server that knows it prefers it to [`ACCEPTS_SIGNATURES`].
pub const ACCEPTS_SIGNATURE_STREAM: &str = "signatures/2";

/// One change's author and signature, as the device that made it pushed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSignature {
    pub doc: Uuid,
    /// The change's hash (32 bytes).
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    pub device: Uuid,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl ChangeSignature {
    /// What it takes of a page's byte budget (random bytes: zstd does not shrink them).
    pub fn weight(&self) -> usize {
        self.hash.len() + self.signature.len() + 48
    }
}

/// Who joined, changed their name or role, or left a space since a device's `members_after`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterChanges {
    /// Members as they are now, at most [`MAX_MEMBERS_PER_PAGE`] (with `left`), within the
    /// page's byte budget.
    #[serde(default)]
    pub members: Vec<MemberInfo>,
    /// Persons no longer members (they left or were removed).
    #[serde(default)]
    pub left: Vec<Uuid>,
    /// The `members_after` to send next time.
    pub next: i64,
    /// The server started the list over (the device's `members_after` was past the server's
    /// newest change: a database restored from a backup): the device drops the list it holds
    /// and takes this one, with this `next`, although it is lower than the one it held.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

impl MemberInfo {
    /// What a member takes of a page's byte budget, as [`Record::weight`] does for records: the
    /// name, and a bound for the id and role.
    pub fn weight(&self) -> usize {
        self.display_name.as_ref().map_or(0, String::len) + 48
    }
}

impl RosterChanges {
    /// What a departure takes of a page's byte budget.
    pub const LEFT_WEIGHT: usize = 24;

    /// What these changes take of a page's byte budget.
    pub fn weight(&self) -> usize {
        self.members.iter().map(MemberInfo::weight).sum::<usize>() + Self::LEFT_WEIGHT * self.left.len() + 16
    }
}

/// Answer to [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    pub acks: Vec<Ack>,
    pub pages: Vec<SpacePage>,
    /// The device's memberships now (read-only copy for the device).
    pub memberships: Vec<Membership>,
    /// Spaces the device asked about but may no longer see: purge them.
    pub revoked: Vec<Uuid>,
    /// The answer to [`SyncRequest::counselling`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counselling: Option<crate::counselling::CounsellingResponse>,
    /// The answer to [`SyncRequest::credentials`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// The answer to [`SyncRequest::moderation`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<crate::moderation::ModerationResponse>,
    /// The answer to [`SyncRequest::help`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<crate::help::HelpResponse>,
}

/// Body of every 4xx/5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized`, `protocol_version`, `malformed`.
    pub code: String,
    pub message: String,
    /// Versions the server speaks (on `protocol_version`).
    #[serde(default)]
    pub protocol_versions: Vec<u32>,
    /// The request's id, also in the `x-request-id` header and in the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names apps and logs see are exactly what travels on the wire.
    #[test]
    fn reject_code_names_are_the_wire_names() {
        // The names `docs/protocol.md` documents, written out: a rename on either side fails.
        for (code, name) in [
            (RejectCode::BadSignature, "bad_signature"),
            (RejectCode::NotAMember, "not_a_member"),
            (RejectCode::Forbidden, "forbidden"),
            (RejectCode::NotYourChange, "not_your_change"),
            (RejectCode::TooLarge, "too_large"),
            (RejectCode::Malformed, "malformed"),
            (RejectCode::Blocked, "blocked"),
            (RejectCode::Erased, "erased"),
            (RejectCode::Other, "other"),
        ] {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, serde_json::Value::String(name.into()));
            assert_eq!(code.as_str(), name);
            assert_eq!(code.to_string(), name);
        }
        for (reason, name) in [
            (DeferReason::MissingDependency, "missing_dependency"),
            (DeferReason::ServerFault, "server_fault"),
            (DeferReason::Busy, "busy"),
        ] {
            let wire = serde_json::to_value(reason).unwrap();
            assert_eq!(wire, serde_json::Value::String(name.into()));
            assert_eq!(reason.as_str(), name);
        }
    }

    /// A `deferred` from a server that predates the reason still reads, as a missing
    /// dependency; a reason from a newer server that this version does not know reads as
    /// `unknown` (and the change is still kept).
    #[test]
    fn deferred_reason_is_optional_and_open() {
        let old: AckOutcome = serde_json::from_str(r#"{"outcome":"deferred","message":"later"}"#).unwrap();
        assert_eq!(
            old,
            AckOutcome::Deferred {
                message: "later".into(),
                reason: DeferReason::MissingDependency
            }
        );
        let newer: AckOutcome =
            serde_json::from_str(r#"{"outcome":"deferred","message":"later","reason":"moon_phase"}"#)
                .unwrap();
        assert!(matches!(
            newer,
            AckOutcome::Deferred {
                reason: DeferReason::Unknown,
                ..
            }
        ));
    }
}
