//! `PeerSession`: one device-to-device sync as a sans-IO state machine, fed frames and
//! returning the frame to send (`docs/protocol.md`, "Device to device").
//!
//! Turns alternate: the initiator sends the first frame, and each side answers every frame it
//! receives with exactly one, until both have said `done` (a frame that is not a message's last
//! is answered with a one-byte `continue`). So a transport that shows one code at a time (QR)
//! carries it as well as a socket. Every page of changes is checked ([`super::verify`]) and
//! committed before the next turn: a session cut anywhere is started again, and the inventories
//! leave out what the first one brought.

use std::collections::{HashMap, HashSet, VecDeque};

use automerge::ChangeHash;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use quartier_protocol::certificates::{Certificate, RevocationList, SignedCertificate, SignedRevocationList};
use quartier_protocol::peer::{
    frame, peer_proof_payload, Guest, Hello, InventoryEntry, PeerMessage, Turn, PEER_PROTOCOL_VERSION,
};
use quartier_protocol::{DocKind, Record};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::credentials;
use super::guest::HeldInvite;
use super::relay::{self, Carried};
use super::verify::{verify_page, Certificates, PeerRefusal, Receiver};
use crate::document::guarded;
use crate::error::{Error, Result};
use crate::model::{permits, Action, Audience, ItemKind, Role};
use crate::store::{IncomingChange, Store};
use crate::sync::Count;

/// Frame size for a transport that carries little at a time (a QR code: 2 KB of binary).
pub const QR_FRAME_BYTES: usize = 2_000;
/// Frame size for a socket (the local-network transport).
pub const DEFAULT_FRAME_BYTES: usize = 256 * 1024;
/// Most bytes one message may inflate to.
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Most inventory entries a peer may announce in one session, and most heads in all of them
/// and in one (a document has one head unless edits are concurrent).
const MAX_INVENTORY: usize = 500_000;
const MAX_INVENTORY_HEADS: usize = 1_000_000;
const MAX_HEADS_PER_ENTRY: usize = 64;
/// Most bytes a message may inflate to before the other device proved its key (a hello).
const MAX_UNPROVEN_MESSAGE_BYTES: usize = 256 * 1024;
/// Most turns one session takes from the other side (a peer that never says done).
const MAX_TURNS: usize = 1_000_000;
/// Most refusals a report keeps (the count goes on).
const MAX_REPORTED_REFUSALS: usize = 100;

/// Who speaks first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum PeerRole {
    Initiator,
    Responder,
}

/// Settings of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerOptions {
    /// Most bytes of one frame, header included (at least 128): [`QR_FRAME_BYTES`] for QR
    /// codes, [`DEFAULT_FRAME_BYTES`] for sockets.
    pub frame_bytes: usize,
    /// Carry the peer's changes of others to the server (store-and-forward), within the
    /// store's relay limits.
    pub carry: bool,
    /// What the transport's encryption binds the session to (the local-network transport's
    /// Noise handshake hash): both proofs sign it. `None` for transports the devices see
    /// directly (QR codes shown and scanned face to face).
    pub channel_binding: Option<[u8; 32]>,
    /// Only these spaces are offered and synced (the local network: the spaces opted in);
    /// `None`: every space both devices hold a certificate of.
    pub only_spaces: Option<Vec<Uuid>>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            frame_bytes: DEFAULT_FRAME_BYTES,
            carry: true,
            channel_binding: None,
            only_spaces: None,
        }
    }
}

/// What a session did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PeerReport {
    /// The other device, once it proved its key.
    pub peer_device: Option<String>,
    /// Spaces both devices hold a valid certificate of.
    pub shared_spaces: Count,
    pub changes_sent: Count,
    /// Changes received, checked and stored.
    pub changes_received: Count,
    /// Changes received that were left out, with why (the first hundred).
    pub refused: Vec<PeerRefusal>,
    pub refused_count: Count,
    /// Received changes put in the outbox for the server (store-and-forward).
    pub carried: Count,
    /// Received changes not carried: the relay limits were reached.
    pub not_carried: Count,
    /// Documents not offered: some change of theirs has no signature this device could show.
    pub unsigned_documents: Count,
    /// The peer held an older revocation list than this device for a shared space.
    pub peer_revocations_stale: bool,
    pub frames_sent: Count,
    pub frames_received: Count,
    pub bytes_sent: Count,
    pub bytes_received: Count,
    /// Both sides said done.
    pub finished: bool,
    /// Thumbnails and small files received and sent after the session (local network only).
    pub media_received: Count,
    pub media_sent: Count,
}

/// One of this device's documents the peer may read, with its heads.
struct Offer {
    space: Uuid,
    doc: Uuid,
    kind: DocKind,
    heads: Vec<ChangeHash>,
}

struct Peer {
    device: Uuid,
    key: VerifyingKey,
    nonce: Vec<u8>,
    /// Its certificates by space (valid ones only).
    certificates: HashMap<Uuid, Certificate>,
    proven: bool,
    /// A guest's invite secret (this device made the invite): its proof is a keyed hash.
    guest_secret: Option<[u8; 32]>,
}

/// One device-to-device session.
pub struct PeerSession {
    role: PeerRole,
    options: PeerOptions,
    device: Uuid,
    person: Uuid,
    server_key: VerifyingKey,
    nonce: [u8; 16],
    /// This device's valid certificates by space, as signed and read.
    mine: HashMap<Uuid, (SignedCertificate, Certificate)>,
    /// This device's public key (a guest shows it with its invite).
    device_key: [u8; 32],
    /// A guest's invite (this device has no account yet).
    guest: Option<HeldInvite>,
    peer: Option<Peer>,
    shared: Vec<Uuid>,
    /// Certificates the peer showed for change authors, read and as signed.
    shown: HashMap<(Uuid, Uuid), (Certificate, SignedCertificate)>,
    /// Revocation lists read this session (the newest of both sides).
    lists: HashMap<Uuid, RevocationList>,
    offers: Option<Vec<Offer>>,
    inventory_sent: usize,
    inventory_done_sent: bool,
    peer_inventory: HashMap<Uuid, Vec<ChangeHash>>,
    peer_inventory_done: bool,
    /// Heads announced by the peer so far, and turns taken from it.
    inventory_heads: usize,
    turns: usize,
    /// Offers not yet planned (indices into `offers`), then the changes of the planned ones.
    plan: VecDeque<usize>,
    planned: bool,
    queued: VecDeque<(Record, Option<SignedCertificate>)>,
    certificates_sent: HashSet<(Uuid, Uuid)>,
    said_done: bool,
    peer_done: bool,
    /// Frames of this side's current message not sent yet.
    outgoing: VecDeque<Vec<u8>>,
    incoming: Vec<u8>,
    report: PeerReport,
}

/// Who this device is in a session.
struct Identity {
    device: Uuid,
    person: Uuid,
    server_key: VerifyingKey,
    mine: HashMap<Uuid, (SignedCertificate, Certificate)>,
    guest: Option<HeldInvite>,
}

fn stop(code: &'static str, message: impl Into<String>) -> Error {
    Error::Peer {
        code,
        message: message.into(),
    }
}

impl PeerSession {
    /// Starts a session. The initiator gets its first frame to send; the responder `None` (it
    /// waits for the initiator's). Needs a registered device with a pinned server key and a
    /// valid certificate for at least one space (both come with a sync).
    pub fn start(
        store: &Store,
        role: PeerRole,
        options: PeerOptions,
    ) -> Result<(PeerSession, Option<Vec<u8>>)> {
        let now = crate::store::now_ms();
        if !store.read(super::guest::has_account)? {
            return Self::start_guest(store, role, options, now);
        }
        let (account, server_key, mine, lists) = store.read(|conn| {
            let account = crate::sync::load_account(conn)?.ok_or(Error::NotRegistered)?;
            let key = credentials::server_key(conn)?.ok_or_else(|| {
                stop(
                    "bad_certificate",
                    "this device has no certificates yet: sync with the server once first",
                )
            })?;
            let mut mine = HashMap::new();
            let mut lists = Vec::new();
            let spaces: Vec<String> = conn
                .prepare("SELECT space_id FROM memberships ORDER BY space_id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for space in spaces {
                let space = Uuid::parse_str(&space).map_err(|e| Error::Corrupt(e.to_string()))?;
                if options
                    .only_spaces
                    .as_ref()
                    .is_some_and(|only| !only.contains(&space))
                {
                    continue;
                }
                if let Ok(cert) = credentials::valid_certificate(conn, &key, account.device, space, now)? {
                    if let Some(signed) = credentials::certificate(conn, account.device, space)? {
                        mine.insert(space, (signed, cert));
                    }
                }
                lists.extend(credentials::revocation_list(conn, space)?);
            }
            Ok((account, key, mine, lists))
        })?;
        if mine.is_empty() {
            return Err(stop(
                "bad_certificate",
                "this device holds no valid certificate: sync with the server first",
            ));
        }
        let lists: Vec<_> = lists;
        Self::begin(
            store,
            role,
            options,
            Identity {
                device: account.device,
                person: account.person.as_uuid(),
                server_key,
                mine,
                guest: None,
            },
            lists,
        )
    }

    /// A device without an account, holding an offline invite: it meets the coordinator's
    /// device that made it, shows the invite instead of certificates, and only receives.
    fn start_guest(
        store: &Store,
        role: PeerRole,
        options: PeerOptions,
        now: i64,
    ) -> Result<(PeerSession, Option<Vec<u8>>)> {
        let held = store.guest_invite(now)?.ok_or(Error::NotRegistered)?;
        let key = <[u8; 32]>::try_from(held.invite.server_key.as_slice())
            .ok()
            .and_then(|k| VerifyingKey::from_bytes(&k).ok())
            .ok_or_else(|| stop("bad_certificate", "the invite names no valid server key"))?;
        let mut device = [0u8; 16];
        getrandom::fill(&mut device).map_err(|e| Error::invalid("session", format!("no randomness: {e}")))?;
        Self::begin(
            store,
            role,
            PeerOptions {
                carry: false,
                ..options
            },
            Identity {
                device: Uuid::from_bytes(device),
                person: Uuid::nil(),
                server_key: key,
                mine: HashMap::new(),
                guest: Some(held),
            },
            Vec::new(),
        )
    }

    fn begin(
        store: &Store,
        role: PeerRole,
        options: PeerOptions,
        identity: Identity,
        lists: Vec<SignedRevocationList>,
    ) -> Result<(PeerSession, Option<Vec<u8>>)> {
        let Identity {
            device,
            person,
            server_key,
            mine,
            guest,
        } = identity;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| Error::invalid("session", format!("no randomness: {e}")))?;
        let mut session = PeerSession {
            role,
            options: PeerOptions {
                frame_bytes: options.frame_bytes.max(frame::MIN_FRAME_BYTES),
                ..options
            },
            device,
            person,
            device_key: store.device_public_key(),
            guest,
            server_key,
            nonce,
            mine,
            peer: None,
            shared: Vec::new(),
            shown: HashMap::new(),
            lists: lists
                .iter()
                .filter_map(|l| l.verify(&server_key).ok())
                .map(|l| (l.space, l))
                .collect(),
            offers: None,
            inventory_sent: 0,
            inventory_done_sent: false,
            peer_inventory: HashMap::new(),
            peer_inventory_done: false,
            inventory_heads: 0,
            turns: 0,
            plan: VecDeque::new(),
            planned: false,
            queued: VecDeque::new(),
            certificates_sent: HashSet::new(),
            said_done: false,
            peer_done: false,
            outgoing: VecDeque::new(),
            incoming: Vec::new(),
            report: PeerReport::default(),
        };
        let first = match role {
            PeerRole::Initiator => {
                let hello = session.hello(None, lists);
                Some(session.send(&PeerMessage::Hello(hello))?)
            }
            PeerRole::Responder => None,
        };
        Ok((session, first))
    }

    /// What the session did so far.
    pub fn report(&self) -> &PeerReport {
        &self.report
    }

    /// Who reads on each side, for the media exchange after the session: this device, then the
    /// other; roles of the shared spaces only. `None` before the other device proved its key.
    pub(crate) fn readers(&self) -> Option<(super::media::Reader, super::media::Reader)> {
        let peer = self.peer.as_ref().filter(|p| p.proven)?;
        let shared = |space: &Uuid| self.shared.contains(space);
        let mut mine: HashMap<Uuid, Role> = self
            .mine
            .iter()
            .filter(|(s, _)| shared(s))
            .map(|(s, (_, c))| (*s, c.role))
            .collect();
        if let Some(HeldInvite { invite, .. }) = &self.guest {
            mine.insert(invite.space, Role::Resident);
        }
        let theirs: HashMap<Uuid, Role> = peer
            .certificates
            .iter()
            .filter(|(s, _)| shared(s))
            .map(|(s, c)| (*s, c.role))
            .collect();
        let their_person = peer
            .certificates
            .values()
            .next()
            .map(|c| c.person)
            .filter(|p| !p.is_nil());
        Some((
            super::media::Reader {
                person: self.guest.is_none().then_some(self.person),
                roles: mine,
            },
            super::media::Reader {
                person: their_person,
                roles: theirs,
            },
        ))
    }

    /// Counts files moved after the session (the local-network transport's media exchange).
    pub(crate) fn count_media(&mut self, received: usize, sent: usize) {
        self.report.media_received += received;
        self.report.media_sent += sent;
    }

    /// Whether both sides said done (nothing more to send or receive).
    pub fn is_finished(&self) -> bool {
        // A last message in several frames is finished once its last frame went out.
        self.report.finished && self.outgoing.is_empty()
    }

    /// Takes one frame from the peer; returns the frame to answer with, or `None` when the
    /// session is finished. An error stops the session (send nothing more; start a new one).
    pub fn receive(&mut self, store: &Store, received: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.is_finished() {
            return Err(stop("protocol", "the session is finished"));
        }
        self.report.frames_received += 1;
        self.report.bytes_received += received.len();
        let Some((&header, body)) = received.split_first() else {
            return Err(stop("malformed", "an empty frame"));
        };
        match header {
            frame::CONTINUE => {
                let next = self
                    .outgoing
                    .pop_front()
                    .ok_or_else(|| stop("protocol", "asked to continue a message that is complete"))?;
                return Ok(Some(self.count_sent(next)));
            }
            frame::MORE | frame::LAST => {}
            _ => return Err(stop("malformed", "a frame of an unknown kind")),
        }
        if !self.outgoing.is_empty() {
            return Err(stop(
                "protocol",
                "a message arrived before this side's was complete",
            ));
        }
        // Before the other device proved its key, only a hello's worth is read.
        let limit = match self.peer.as_ref().is_some_and(|p| p.proven) {
            true => MAX_MESSAGE_BYTES,
            false => MAX_UNPROVEN_MESSAGE_BYTES,
        };
        if self.incoming.len() + body.len() > limit {
            return Err(stop("malformed", "a message larger than a session takes"));
        }
        self.incoming.extend_from_slice(body);
        if header == frame::MORE {
            return Ok(Some(self.count_sent(vec![frame::CONTINUE])));
        }
        let bytes = std::mem::take(&mut self.incoming);
        let message: PeerMessage = quartier_protocol::decode(&bytes, limit)
            .map_err(|e| stop("malformed", format!("a message does not decode: {e}")))?;
        let reply = match message {
            PeerMessage::Hello(hello) => self.on_hello(store, hello)?,
            PeerMessage::Turn(turn) => self.on_turn(store, turn)?,
            PeerMessage::Refused { code, message } => {
                return Err(stop(
                    "refused_by_peer",
                    format!("the other device stopped: {code}: {message}"),
                ))
            }
            PeerMessage::Unknown => return Err(stop("protocol", "a message of an unknown kind")),
        };
        match reply {
            Some(message) => Ok(Some(self.send(&message)?)),
            None => Ok(None),
        }
    }

    fn count_sent(&mut self, frame: Vec<u8>) -> Vec<u8> {
        self.report.frames_sent += 1;
        self.report.bytes_sent += frame.len();
        frame
    }

    /// Encodes a message into frames; returns the first, keeps the rest.
    fn send(&mut self, message: &PeerMessage) -> Result<Vec<u8>> {
        let bytes = quartier_protocol::encode(message).map_err(|e| stop("malformed", e.to_string()))?;
        let mut frames: VecDeque<Vec<u8>> = frame::split(&bytes, self.options.frame_bytes).into();
        let first = frames.pop_front().unwrap_or_else(|| vec![frame::LAST]);
        self.outgoing = frames;
        Ok(self.count_sent(first))
    }

    fn hello(&self, proof: Option<Vec<u8>>, lists: Vec<SignedRevocationList>) -> Hello {
        Hello {
            version: PEER_PROTOCOL_VERSION,
            server_key: self.server_key.to_bytes().to_vec(),
            device: self.device,
            nonce: self.nonce.to_vec(),
            certificates: self.mine.values().map(|(signed, _)| signed.clone()).collect(),
            revocations: lists,
            proof,
            guest: self.guest.as_ref().map(|held| Guest {
                invite: held.signed.clone(),
                device_key: self.device_key.to_vec(),
            }),
        }
    }

    /// The bytes each side signs: the initiator's nonce first.
    fn proof_payload(&self, signer: Uuid) -> Result<Vec<u8>> {
        let peer = self
            .peer
            .as_ref()
            .ok_or_else(|| stop("protocol", "no hello yet"))?;
        let (first, second) = match self.role {
            PeerRole::Initiator => (self.nonce.as_slice(), peer.nonce.as_slice()),
            PeerRole::Responder => (peer.nonce.as_slice(), self.nonce.as_slice()),
        };
        let channel = self.options.channel_binding.as_ref().map_or(&[][..], |c| &c[..]);
        Ok(peer_proof_payload(
            first,
            second,
            signer,
            &self.server_key.to_bytes(),
            channel,
        ))
    }

    fn my_proof(&self, store: &Store) -> Result<Vec<u8>> {
        // A guest proves it holds the invite's secret (its QR code), not a certified key.
        if let Some(held) = &self.guest {
            return Ok(super::guest::guest_proof(
                &held.secret,
                &self.proof_payload(self.device)?,
            ));
        }
        Ok(store
            .signing_key()
            .sign(&self.proof_payload(self.device)?)
            .to_bytes()
            .to_vec())
    }

    fn check_proof(&mut self, proof: Option<&[u8]>) -> Result<()> {
        let payload = {
            let peer = self
                .peer
                .as_ref()
                .ok_or_else(|| stop("protocol", "no hello yet"))?;
            self.proof_payload(peer.device)?
        };
        let peer = self
            .peer
            .as_mut()
            .ok_or_else(|| stop("protocol", "no hello yet"))?;
        let good = match &peer.guest_secret {
            // A keyed hash of the session under the invite's secret (compared in constant time).
            Some(secret) => proof
                .and_then(|p| <[u8; 32]>::try_from(p).ok())
                .is_some_and(|p| blake3::Hash::from(p) == blake3::keyed_hash(secret, &payload)),
            None => proof.and_then(|p| <[u8; 64]>::try_from(p).ok()).is_some_and(|p| {
                peer.key
                    .verify_strict(&payload, &Signature::from_bytes(&p))
                    .is_ok()
            }),
        };
        if !good {
            return Err(stop(
                "unproven",
                "the other device did not prove it holds the key its certificates name",
            ));
        }
        peer.proven = true;
        self.report.peer_device = Some(peer.device.to_string());
        Ok(())
    }

    fn on_hello(&mut self, store: &Store, hello: Hello) -> Result<Option<PeerMessage>> {
        if self.peer.is_some() {
            return Err(stop("protocol", "a second hello"));
        }
        if hello.version != PEER_PROTOCOL_VERSION {
            return Err(stop(
                "protocol",
                format!(
                    "the other device speaks session version {}, this one {PEER_PROTOCOL_VERSION}",
                    hello.version
                ),
            ));
        }
        if hello.server_key != self.server_key.to_bytes() {
            return Err(stop("other_server", "the other device belongs to another server"));
        }
        if hello.device == self.device {
            return Err(stop("protocol", "a session with itself"));
        }
        if hello.nonce.len() != 16 || hello.certificates.len() > quartier_protocol::MAX_CURSORS_PER_REQUEST {
            return Err(stop("malformed", "a hello out of bounds"));
        }
        // The peer's lists first: a newer one of either side wins over any certificate.
        let now = crate::store::now_ms();
        let mut newer = Vec::new();
        for signed in hello
            .revocations
            .iter()
            .take(quartier_protocol::MAX_CURSORS_PER_REQUEST)
        {
            let list = signed
                .verify(&self.server_key)
                .map_err(|e| stop("bad_certificate", format!("a revocation list: {e}")))?;
            match self.lists.get(&list.space) {
                Some(held) if held.issued_at_ms >= list.issued_at_ms => {}
                _ => newer.push((list, signed.clone())),
            }
        }
        if !newer.is_empty() {
            store.write(|tx, _| {
                for (list, signed) in &newer {
                    credentials::keep_revocation_list(tx, list, signed)?;
                }
                Ok(())
            })?;
            for (list, _) in newer {
                self.lists.insert(list.space, list);
            }
        }
        let mut certificates = HashMap::new();
        let mut key = None;
        let mut guest_secret = None;
        for signed in &hello.certificates {
            let cert = signed
                .verify(&self.server_key)
                .map_err(|e| stop("bad_certificate", format!("the other device's certificate: {e}")))?;
            if cert.device != hello.device
                || key.is_some_and(|k: VerifyingKey| k.to_bytes().as_slice() != cert.device_key)
            {
                return Err(stop(
                    "bad_certificate",
                    "the other device's certificates name another device",
                ));
            }
            key = Some(
                cert.verifying_key()
                    .map_err(|e| stop("bad_certificate", e.to_string()))?,
            );
            if cert.check_valid(now, self.lists.get(&cert.space)).is_ok() {
                certificates.insert(cert.space, cert);
            }
        }
        // A new device shows the invite this device made instead (joining offline).
        let key = match (key, &hello.guest) {
            (Some(key), _) => key,
            (None, Some(guest)) => {
                let (key, secret) = self.host_guest(store, guest, hello.device, now, &mut certificates)?;
                guest_secret = Some(secret);
                key
            }
            (None, None) => return Err(stop("bad_certificate", "the other device showed no certificate")),
        };
        // A guest meets the device that made its invite, and only for the invite's space.
        if let Some(HeldInvite { invite, .. }) = &self.guest {
            if hello.device != invite.issued_by {
                return Err(stop(
                    "bad_certificate",
                    "a new member first meets the coordinator's phone that invited it",
                ));
            }
            certificates.retain(|space, _| *space == invite.space);
        }
        // Its own certificates check its own changes like any author's.
        for signed in &hello.certificates {
            if let Ok(cert) = signed.verify(&self.server_key) {
                self.shown
                    .insert((cert.device, cert.space), (cert, signed.clone()));
            }
        }
        // The peer's lists older than this device's: it has not heard of a revocation (or keeps
        // it back); it gets this device's lists with the hello.
        let theirs: HashMap<Uuid, i64> = hello
            .revocations
            .iter()
            .take(quartier_protocol::MAX_CURSORS_PER_REQUEST)
            .filter_map(|s| s.verify(&self.server_key).ok())
            .map(|l| (l.space, l.issued_at_ms))
            .collect();
        self.report.peer_revocations_stale = certificates.keys().any(|space| {
            self.lists
                .get(space)
                .is_some_and(|mine| theirs.get(space).is_none_or(|t| *t < mine.issued_at_ms))
        });
        let guest_space = self.guest.as_ref().map(|held| held.invite.space);
        self.shared = certificates
            .keys()
            .filter(|s| self.mine.contains_key(s) || guest_space == Some(**s))
            .copied()
            .collect();
        self.shared.sort();
        self.report.shared_spaces = self.shared.len();
        self.peer = Some(Peer {
            device: hello.device,
            key,
            nonce: hello.nonce,
            certificates,
            proven: false,
            guest_secret,
        });
        match self.role {
            PeerRole::Responder => {
                let lists = store.read(|conn| {
                    let mut out = Vec::new();
                    for space in self.mine.keys() {
                        out.extend(credentials::revocation_list(conn, *space)?);
                    }
                    Ok(out)
                })?;
                let proof = self.my_proof(store)?;
                Ok(Some(PeerMessage::Hello(self.hello(Some(proof), lists))))
            }
            PeerRole::Initiator => {
                self.check_proof(hello.proof.as_deref())?;
                let proof = self.my_proof(store)?;
                let mut turn = self.next_turn(store)?;
                turn.proof = Some(proof);
                Ok(Some(PeerMessage::Turn(turn)))
            }
        }
    }

    /// Checks a new device's invite: this device made it, for a space it holds, and it has not
    /// expired. The guest is then seen as a resident of that space: it gets what a resident
    /// reads, and nothing of its own is taken (it has no certificate).
    fn host_guest(
        &self,
        store: &Store,
        guest: &Guest,
        device: Uuid,
        now: i64,
        certificates: &mut HashMap<Uuid, Certificate>,
    ) -> Result<(VerifyingKey, [u8; 32])> {
        let (invite, _) = guest
            .invite
            .verify(&self.server_key)
            .map_err(|e| stop("bad_certificate", format!("the invite: {e}")))?;
        if invite.issued_by != self.device {
            return Err(stop("bad_certificate", "an invite this device did not make"));
        }
        if invite.expires_at_ms <= now {
            return Err(stop("bad_certificate", "the invite has expired"));
        }
        if !self.mine.contains_key(&invite.space) {
            return Err(stop(
                "not_shared",
                "the invite's space is not one this device offers",
            ));
        }
        let key = <[u8; 32]>::try_from(guest.device_key.as_slice())
            .ok()
            .and_then(|k| VerifyingKey::from_bytes(&k).ok())
            .ok_or_else(|| stop("bad_certificate", "the new device's key is not a valid key"))?;
        certificates.insert(
            invite.space,
            Certificate {
                space: invite.space,
                person: Uuid::nil(),
                device,
                device_key: guest.device_key.clone(),
                role: Role::Resident,
                issued_at_ms: invite.issued_at_ms,
                expires_at_ms: invite.expires_at_ms,
            },
        );
        Ok((key, super::guest::invite_secret(store.signing_key(), invite.id)))
    }

    fn on_turn(&mut self, store: &Store, turn: Turn) -> Result<Option<PeerMessage>> {
        let proven = self.peer.as_ref().is_some_and(|p| p.proven);
        if !proven {
            if self.role == PeerRole::Responder && self.peer.is_some() {
                self.check_proof(turn.proof.as_deref())?;
            } else {
                return Err(stop("unproven", "a turn before the other device proved its key"));
            }
        }
        self.turns += 1;
        if self.peer_inventory.len() + turn.inventory.len() > MAX_INVENTORY || self.turns > MAX_TURNS {
            return Err(stop(
                "malformed",
                "an inventory or a session longer than a session takes",
            ));
        }
        for entry in turn.inventory {
            self.inventory_heads += entry.heads.len();
            if entry.heads.len() > MAX_HEADS_PER_ENTRY || self.inventory_heads > MAX_INVENTORY_HEADS {
                return Err(stop(
                    "malformed",
                    "an inventory with more heads than a session takes",
                ));
            }
            if !self.shared.contains(&entry.space) {
                return Err(stop(
                    "not_shared",
                    "an inventory entry of a space this session does not share",
                ));
            }
            let heads = entry
                .heads
                .iter()
                .map(|h| {
                    ChangeHash::try_from(h.as_slice())
                        .map_err(|_| stop("malformed", "a head is not a change hash"))
                })
                .collect::<Result<Vec<_>>>()?;
            self.peer_inventory.insert(entry.doc, heads);
        }
        self.peer_inventory_done |= turn.inventory_done;
        self.take_certificates(&turn.certificates)?;
        if !turn.changes.is_empty() {
            self.take_changes(store, &turn.changes)?;
        }
        self.peer_done |= turn.done;
        if self.peer_done && self.said_done {
            self.report.finished = true;
            return Ok(None);
        }
        let turn = self.next_turn(store)?;
        if turn.done && self.peer_done {
            self.report.finished = true;
        }
        Ok(Some(PeerMessage::Turn(turn)))
    }

    fn take_certificates(&mut self, shown: &[SignedCertificate]) -> Result<()> {
        if shown.len() > quartier_protocol::MAX_SIGNER_CERTIFICATES {
            return Err(stop("malformed", "too many certificates in one turn"));
        }
        for signed in shown {
            let cert = signed
                .verify(&self.server_key)
                .map_err(|e| stop("bad_certificate", format!("an author's certificate: {e}")))?;
            self.shown
                .insert((cert.device, cert.space), (cert, signed.clone()));
        }
        Ok(())
    }

    /// Checks a page of changes and stores what passes, with the authors' signatures and
    /// certificates, and (store-and-forward) carries them for the server.
    fn take_changes(&mut self, store: &Store, records: &[Record]) -> Result<()> {
        let now = crate::store::now_ms();
        let mut roles: HashMap<Uuid, Role> = self.mine.iter().map(|(s, (_, c))| (*s, c.role)).collect();
        if let Some(HeldInvite { invite, .. }) = &self.guest {
            // Until the server confirms it, a new member reads what a resident reads.
            roles.insert(invite.space, Role::Resident);
        }
        let receiver = Receiver {
            person: self.person,
            roles,
        };
        let lookup = SessionCertificates {
            shown: &self.shown,
            lists: &self.lists,
            server_key: &self.server_key,
        };
        let shared = self.shared.clone();
        let carry = self.options.carry;
        let (accepted, refused, carried, not_carried) = store.write(|tx, touched| {
            let (accepted, refused) =
                verify_page(tx, store.actor(), &lookup, &shared, &receiver, records, now)?;
            let incoming: Vec<IncomingChange> = accepted
                .iter()
                .map(|a| IncomingChange {
                    doc_id: a.doc.to_string(),
                    kind: a.kind,
                    bytes: a.change.raw_bytes().to_vec(),
                })
                .collect();
            let by_doc = crate::store::decode_incoming(&incoming)?;
            store.merge_decoded(tx, by_doc, touched)?;
            let (mut carried, mut not_carried) = (0, 0);
            let mut room = relay::CarryRoom::read(tx)?;
            // Each author's certificate is kept once per page, not once per change.
            let authors: HashSet<(Uuid, Uuid)> = accepted.iter().map(|a| (a.device, a.space)).collect();
            for author in &authors {
                if let Some((cert, signed)) = self.shown.get(author) {
                    credentials::keep_certificate(tx, cert, signed)?;
                }
                credentials::keep_signer(tx, author.1, author.0)?;
            }
            for a in &accepted {
                let doc = a.doc.to_string();
                let hash = a.change.hash();
                credentials::keep_signature(tx, &doc, &hash.0, a.device, &a.signature)?;
                if carry {
                    let kept = room.carry(
                        tx,
                        &Carried {
                            doc_id: &doc,
                            kind: a.kind.as_str(),
                            space: &a.space.to_string(),
                            hash: &hash.0,
                            bytes: a.change.raw_bytes(),
                            signer: &a.device.to_string(),
                            signature: &a.signature,
                        },
                        now,
                    )?;
                    if kept {
                        carried += 1;
                    } else {
                        not_carried += 1;
                    }
                }
            }
            Ok((accepted.len(), refused, carried, not_carried))
        })?;
        self.report.changes_received += accepted;
        self.report.carried += carried;
        self.report.not_carried += not_carried;
        self.report.refused_count += refused.len();
        let room = MAX_REPORTED_REFUSALS.saturating_sub(self.report.refused.len());
        self.report.refused.extend(refused.into_iter().take(room));
        Ok(())
    }

    /// The next turn: the rest of the inventory, then changes, within one page.
    fn next_turn(&mut self, store: &Store) -> Result<Turn> {
        let budget = (self.options.frame_bytes * 3 / 4).clamp(96, 1024 * 1024);
        let mut turn = Turn::default();
        let mut used = 64;
        if self.offers.is_none() {
            self.offers = Some(self.build_offers(store)?);
        }
        let offers = self.offers.as_ref().map_or(&[][..], Vec::as_slice);
        while self.inventory_sent < offers.len() {
            let offer = &offers[self.inventory_sent];
            let entry = InventoryEntry {
                space: offer.space,
                doc: offer.doc,
                heads: offer
                    .heads
                    .iter()
                    .map(|h| quartier_protocol::peer::ByteBuf::from(h.0.to_vec()))
                    .collect(),
            };
            if used + entry.weight() > budget && !turn.inventory.is_empty() {
                break;
            }
            used += entry.weight();
            turn.inventory.push(entry);
            self.inventory_sent += 1;
        }
        if self.inventory_sent == offers.len() {
            turn.inventory_done = true;
            self.inventory_done_sent = true;
        }
        // Changes only once the peer's whole inventory is known, and only in room left.
        if self.inventory_done_sent && self.peer_inventory_done {
            if !self.planned {
                self.plan = (0..offers.len()).collect();
                self.planned = true;
            }
            while used < budget {
                if self.queued.is_empty() {
                    let Some(next) = self.plan.pop_front() else { break };
                    self.queue_offer(store, next)?;
                    continue;
                }
                let Some((record, cert)) = self.queued.front() else {
                    break;
                };
                let weight = record.weight() + cert.as_ref().map_or(0, |c| c.body.len() + 64);
                if used + weight > budget && !turn.changes.is_empty() {
                    break;
                }
                used += weight;
                if let Some((record, cert)) = self.queued.pop_front() {
                    turn.changes.push(record);
                    turn.certificates.extend(cert);
                }
            }
            self.report.changes_sent += turn.changes.len();
            if self.queued.is_empty() && self.plan.is_empty() {
                turn.done = true;
                self.said_done = true;
            }
        }
        Ok(turn)
    }

    /// This device's documents of the shared spaces that the peer may read, with their heads.
    fn build_offers(&self, store: &Store) -> Result<Vec<Offer>> {
        // A guest offers nothing: what it wrote waits for the server.
        if self.guest.is_some() {
            return Ok(Vec::new());
        }
        let peer = self
            .peer
            .as_ref()
            .ok_or_else(|| stop("protocol", "no hello yet"))?;
        let peer_person = peer.certificates.values().next().map(|c| c.person);
        store.read(|conn| {
            let mut offers = Vec::new();
            for space in &self.shared {
                let Some(role) = peer.certificates.get(space).map(|c| c.role) else {
                    continue;
                };
                for (doc, kind) in readable_documents(conn, *space, role, peer_person)? {
                    let Some(loaded) = crate::store::load_document(conn, &doc.to_string(), store.actor())?
                    else {
                        continue;
                    };
                    let mut heads = loaded.doc.get_heads();
                    if heads.is_empty() {
                        continue;
                    }
                    heads.sort();
                    offers.push(Offer {
                        space: *space,
                        doc,
                        kind,
                        heads,
                    });
                }
            }
            Ok(offers)
        })
    }

    /// Queues the changes of one offer the peer lacks, each with its signature (and the
    /// author's certificate the first time); a document with a change this device cannot show
    /// signed is left out whole.
    fn queue_offer(&mut self, store: &Store, index: usize) -> Result<()> {
        let Some(offer) = self.offers.as_ref().and_then(|o| o.get(index)) else {
            return Ok(());
        };
        let (space, doc, kind) = (offer.space, offer.doc, offer.kind);
        let theirs = self.peer_inventory.get(&doc).cloned().unwrap_or_default();
        if theirs == offer.heads {
            return Ok(());
        }
        let doc_id = doc.to_string();
        let device = self.device;
        let mine = self.mine.get(&space).map(|(signed, _)| signed.clone());
        let actor = store.actor().clone();
        let signing = store.signing_key().clone();
        let queued = store.read(|conn| {
            let Some(loaded) = crate::store::load_document(conn, &doc_id, &actor)? else {
                return Ok(None);
            };
            let known: Vec<ChangeHash> = theirs
                .iter()
                .filter(|h| loaded.doc.get_change_meta_by_hash(h).is_some())
                .copied()
                .collect();
            let changes = guarded::changes_since(&loaded.doc, &known)
                .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?;
            let mut out = Vec::new();
            for change in changes {
                let hash = change.hash();
                let (signer, signature, cert) = if change.actor_id() == &actor {
                    let signature = crate::sync::identity::sign_change(&signing, &doc_id, &hash.0);
                    (device, signature, mine.clone())
                } else {
                    match credentials::signature_of(conn, &doc_id, &hash.0)? {
                        Some((signer, signature)) => {
                            (signer, signature, credentials::certificate(conn, signer, space)?)
                        }
                        None => return Ok(None),
                    }
                };
                let Some(cert) = cert else { return Ok(None) };
                out.push((
                    Record::Change {
                        space,
                        doc,
                        kind,
                        bytes: change.raw_bytes().to_vec(),
                        device: signer,
                        signature,
                    },
                    (signer, cert),
                ));
            }
            Ok(Some(out))
        })?;
        match queued {
            None => self.report.unsigned_documents += 1,
            Some(records) => {
                for (record, (signer, cert)) in records {
                    let first = self.certificates_sent.insert((signer, space));
                    self.queued.push_back((record, first.then_some(cert)));
                }
            }
        }
        Ok(())
    }
}

/// The certificates a session checks authors with: those the peer showed, then those kept;
/// revocation lists the newest of both sides.
struct SessionCertificates<'a> {
    shown: &'a HashMap<(Uuid, Uuid), (Certificate, SignedCertificate)>,
    lists: &'a HashMap<Uuid, RevocationList>,
    server_key: &'a VerifyingKey,
}

impl Certificates for SessionCertificates<'_> {
    fn lookup(&self, conn: &Connection, device: Uuid, space: Uuid) -> Result<Option<Certificate>> {
        // The newer of the one shown and the one kept: an older certificate of another role
        // shown by a relay does not win over what this device already knows.
        let kept =
            credentials::certificate(conn, device, space)?.and_then(|s| s.verify(self.server_key).ok());
        let shown = self.shown.get(&(device, space)).map(|(cert, _)| cert.clone());
        Ok(match (shown, kept) {
            (Some(shown), Some(kept)) if kept.issued_at_ms > shown.issued_at_ms => Some(kept),
            (Some(shown), _) => Some(shown),
            (None, kept) => kept,
        })
    }

    fn list(&self, conn: &Connection, space: Uuid) -> Result<Option<RevocationList>> {
        let kept = credentials::newest_list(conn, self.server_key, space)?;
        Ok(match (kept, self.lists.get(&space)) {
            (Some(kept), Some(session)) if session.issued_at_ms > kept.issued_at_ms => Some(session.clone()),
            (Some(kept), _) => Some(kept),
            (None, session) => session.cloned(),
        })
    }
}

/// Documents of `space` a member with `role` may read: the space's own, and items by the
/// permission table (their author always).
fn readable_documents(
    conn: &Connection,
    space: Uuid,
    role: Role,
    person: Option<Uuid>,
) -> Result<Vec<(Uuid, DocKind)>> {
    let mut out = Vec::new();
    let space_id = space.to_string();
    let mut stmt = conn.prepare_cached(
        "SELECT d.doc_id, d.kind, i.kind, i.audience, i.author FROM documents d
         LEFT JOIN items i ON i.item_id = d.doc_id
         WHERE d.space_id = ?1 OR (d.kind = 'space' AND d.doc_id = ?1)
         ORDER BY d.doc_id",
    )?;
    let rows = stmt.query_map(params![space_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let person = person.map(|p| p.to_string());
    for row in rows {
        let (doc, kind, item_kind, audience, author) = row?;
        let Ok(doc) = Uuid::parse_str(&doc) else { continue };
        match DocKind::parse(&kind) {
            Some(DocKind::Space) => out.push((doc, DocKind::Space)),
            Some(DocKind::Item) => {
                let (Some(item_kind), Some(audience)) = (item_kind, audience) else {
                    continue;
                };
                let (Ok(item_kind), Ok(audience)) =
                    (ItemKind::parse(&item_kind), audience.parse::<Audience>())
                else {
                    continue;
                };
                let is_author = person.is_some() && author == person;
                if permits(role, Action::Read, item_kind, audience, is_author) {
                    out.push((doc, DocKind::Item));
                }
            }
            None => {}
        }
    }
    Ok(out)
}
