//! Conversation keys: one Megolm session per sending device and conversation.
//!
//! A sender encrypts each message once with its [`OutboundGroup`]; the session's key goes to
//! every participating device over Olm ([`crate::device`]), and each keeps it in its
//! [`InboundGroups`]. A device that leaves (a caseworker removed from the team, a lost phone
//! revoked) keeps the keys it had, so the sender starts a new session, shared only with the
//! devices that remain: [`OutboundGroup::needs_rotation`]. A device that joins is given the
//! current session's key from the session's first message: messages written offline before
//! the sender learned of the device are readable to it, and nothing of earlier sessions is
//! (a session holds at most [`MESSAGES_PER_SESSION`] messages).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle, MegolmMessage,
    SessionConfig, SessionKey,
};

use crate::envelope::{Envelope, Sealed};
use crate::error::{CryptoError, Result};

/// Messages one Megolm session encrypts before the sender starts a new one (the same bound
/// as Matrix clients': a leaked key reads at most this many).
pub const MESSAGES_PER_SESSION: u32 = 100;

/// Most encoded envelope bytes one message may carry (attachments travel as blobs).
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// A device's sending session for one conversation.
pub struct OutboundGroup {
    conversation: Uuid,
    session: GroupSession,
    /// The session's key at its first message (what a device joining it is given).
    initial_key: String,
    /// Identity keys of the devices this session's key was given to.
    shared_with: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct OutboundPickle {
    conversation: Uuid,
    session: String,
    initial_key: String,
    shared_with: BTreeSet<String>,
}

impl OutboundGroup {
    /// A new session for `conversation`, shared with nobody yet.
    pub fn new(conversation: Uuid) -> Self {
        let session = GroupSession::new(SessionConfig::version_1());
        OutboundGroup {
            conversation,
            initial_key: session.session_key().to_base64(),
            session,
            shared_with: BTreeSet::new(),
        }
    }

    pub fn conversation(&self) -> Uuid {
        self.conversation
    }

    pub fn session_id(&self) -> String {
        self.session.session_id()
    }

    /// The key to send to a device (over Olm): it reads this session's messages, from its
    /// first, and nothing of the sender's other sessions.
    pub fn session_key(&self) -> &str {
        &self.initial_key
    }

    /// Whether the sender must start a new session before its next message: a device it shared
    /// this one with is no longer among `participants`, or the session has encrypted
    /// [`MESSAGES_PER_SESSION`] messages.
    pub fn needs_rotation(&self, participants: &BTreeSet<String>) -> bool {
        self.session.message_index() >= MESSAGES_PER_SESSION || !self.shared_with.is_subset(participants)
    }

    /// Whether every device this session's key was given to is still among `participants`.
    pub fn nobody_left(&self, participants: &BTreeSet<String>) -> bool {
        self.shared_with.is_subset(participants)
    }

    /// Participants that have not been given this session's key yet.
    pub fn not_shared_with(&self, participants: &BTreeSet<String>) -> Vec<String> {
        participants.difference(&self.shared_with).cloned().collect()
    }

    /// Records that `device` was given the key.
    pub fn mark_shared(&mut self, device: &str) {
        self.shared_with.insert(device.to_string());
    }

    /// Records that the key did not reach `device` (the server refused the share): it is
    /// given again.
    pub fn unmark_shared(&mut self, device: &str) {
        self.shared_with.remove(device);
    }

    /// Encrypts one envelope (which must be for this conversation).
    pub fn encrypt(&mut self, envelope: &Envelope) -> Result<Sealed> {
        if envelope.conversation != self.conversation {
            return Err(CryptoError::Misdirected {
                what: "envelope",
                other: "conversation",
            });
        }
        let plaintext = envelope.encode()?;
        let message = self.session.encrypt(&plaintext);
        Ok(Sealed {
            session_id: self.session.session_id(),
            ciphertext: message.to_bytes(),
        })
    }

    pub fn pickle(&self, key: &[u8; 32]) -> String {
        serde_json::to_string(&OutboundPickle {
            conversation: self.conversation,
            session: self.session.pickle().encrypt(key),
            initial_key: self.initial_key.clone(),
            shared_with: self.shared_with.clone(),
        })
        .unwrap_or_default()
    }

    pub fn from_pickle(pickle: &str, key: &[u8; 32]) -> Result<Self> {
        let pickle: OutboundPickle =
            serde_json::from_str(pickle).map_err(|e| CryptoError::malformed("outbound session pickle", e))?;
        let session =
            GroupSessionPickle::from_encrypted(&pickle.session, key).map_err(|_| CryptoError::Tampered {
                what: "outbound session pickle",
            })?;
        Ok(OutboundGroup {
            conversation: pickle.conversation,
            session: GroupSession::from_pickle(session),
            initial_key: pickle.initial_key,
            shared_with: pickle.shared_with,
        })
    }
}

/// One session key a device received: for which conversation.
struct Inbound {
    conversation: Uuid,
    session: InboundGroupSession,
}

#[derive(Serialize, Deserialize)]
struct InboundPickle {
    conversation: Uuid,
    sender: String,
    session_id: String,
    session: String,
}

/// The session keys a device holds, by the device that gave them and session id. Keyed by the
/// giver too: a participant who forwards someone else's session key first only fills a slot
/// of its own, which opens nothing the real sender wrote.
#[derive(Default)]
pub struct InboundGroups {
    sessions: BTreeMap<(String, String), Inbound>,
}

/// A decrypted message and where it sat in its session (to catch replays).
#[derive(Debug)]
pub struct Opened {
    pub envelope: Envelope,
    pub session_id: String,
    pub index: u32,
}

impl InboundGroups {
    /// Keeps a session key `sender` gave this device for `conversation`. A key for a session
    /// already held from that sender keeps the earlier position (a later key never narrows
    /// what is read), and one that claims another conversation than the held one is refused.
    pub fn add(
        &mut self,
        conversation: Uuid,
        sender: &str,
        session_id: &str,
        session_key: &str,
    ) -> Result<()> {
        let key =
            SessionKey::from_base64(session_key).map_err(|e| CryptoError::malformed("session key", e))?;
        let session = InboundGroupSession::new(&key, SessionConfig::version_1());
        self.keep(conversation, sender, session_id, session)
    }

    fn keep(
        &mut self,
        conversation: Uuid,
        sender: &str,
        session_id: &str,
        mut session: InboundGroupSession,
    ) -> Result<()> {
        if session.session_id() != session_id {
            return Err(CryptoError::Misdirected {
                what: "session key",
                other: "session",
            });
        }
        let slot = (sender.to_string(), session_id.to_string());
        match self.sessions.get_mut(&slot) {
            Some(held) => {
                if held.conversation != conversation {
                    return Err(CryptoError::Misdirected {
                        what: "session key",
                        other: "conversation",
                    });
                }
                if let Some(merged) = held.session.merge(&mut session) {
                    held.session = merged;
                }
            }
            None => {
                self.sessions.insert(
                    slot,
                    Inbound {
                        conversation,
                        session,
                    },
                );
            }
        }
        Ok(())
    }

    /// Whether the key `sender` gave for `session_id` is here.
    pub fn has(&self, sender: &str, session_id: &str) -> bool {
        self.sessions
            .contains_key(&(sender.to_string(), session_id.to_string()))
    }

    /// Decrypts a message that arrived for `conversation` from the device `sender`. The key
    /// must have come from that device for that conversation, and the envelope inside must
    /// name the conversation too.
    pub fn decrypt(&mut self, conversation: Uuid, sender: &str, sealed: &Sealed) -> Result<Opened> {
        let missing = || CryptoError::MissingKey {
            conversation,
            session_id: sealed.session_id.clone(),
        };
        let inbound = self
            .sessions
            .get_mut(&(sender.to_string(), sealed.session_id.clone()))
            .ok_or_else(missing)?;
        if inbound.conversation != conversation {
            return Err(CryptoError::Misdirected {
                what: "message",
                other: "conversation",
            });
        }
        let message = MegolmMessage::from_bytes(&sealed.ciphertext)
            .map_err(|e| CryptoError::malformed("megolm message", e))?;
        let decrypted = inbound.session.decrypt(&message).map_err(|e| match e {
            vodozemac::megolm::DecryptionError::UnknownMessageIndex(..) => missing(),
            _ => CryptoError::Tampered { what: "message" },
        })?;
        let envelope = Envelope::decode(&decrypted.plaintext)?;
        if envelope.conversation != conversation {
            return Err(CryptoError::Misdirected {
                what: "envelope",
                other: "conversation",
            });
        }
        Ok(Opened {
            envelope,
            session_id: sealed.session_id.clone(),
            index: decrypted.message_index,
        })
    }

    /// Every key held for `conversation`, as (sender, session id, exported key) from its first
    /// known position: what a passphrase backup carries to a new phone.
    pub fn export(&self, conversation: Uuid) -> Vec<(String, String, String)> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.conversation == conversation)
            .map(|((sender, id), s)| {
                (
                    sender.clone(),
                    id.clone(),
                    s.session.export_at_first_known_index().to_base64(),
                )
            })
            .collect()
    }

    /// Takes keys [`InboundGroups::export`] gave (from a backup).
    pub fn import(
        &mut self,
        conversation: Uuid,
        sender: &str,
        session_id: &str,
        exported: &str,
    ) -> Result<()> {
        let key = vodozemac::megolm::ExportedSessionKey::from_base64(exported)
            .map_err(|e| CryptoError::malformed("exported session key", e))?;
        let session = InboundGroupSession::import(&key, SessionConfig::version_1());
        self.keep(conversation, sender, session_id, session)
    }

    /// Forgets every key of `conversation` (erasure, or leaving it).
    pub fn forget(&mut self, conversation: Uuid) {
        self.sessions.retain(|_, s| s.conversation != conversation);
    }

    pub fn pickle(&self, key: &[u8; 32]) -> String {
        let pickles: Vec<InboundPickle> = self
            .sessions
            .iter()
            .map(|((sender, session_id), s)| InboundPickle {
                conversation: s.conversation,
                sender: sender.clone(),
                session_id: session_id.clone(),
                session: s.session.pickle().encrypt(key),
            })
            .collect();
        serde_json::to_string(&pickles).unwrap_or_default()
    }

    pub fn from_pickle(pickle: &str, key: &[u8; 32]) -> Result<Self> {
        let pickles: Vec<InboundPickle> =
            serde_json::from_str(pickle).map_err(|e| CryptoError::malformed("inbound sessions pickle", e))?;
        let mut sessions = BTreeMap::new();
        for p in pickles {
            let session = InboundGroupSessionPickle::from_encrypted(&p.session, key).map_err(|_| {
                CryptoError::Tampered {
                    what: "inbound sessions pickle",
                }
            })?;
            sessions.insert(
                (p.sender, p.session_id),
                Inbound {
                    conversation: p.conversation,
                    session: InboundGroupSession::from_pickle(session),
                },
            );
        }
        Ok(InboundGroups { sessions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Body;

    fn text(conversation: Uuid, text: &str) -> Envelope {
        Envelope::new(
            conversation,
            Body::Message {
                text: text.into(),
                attachments: vec![],
            },
        )
    }

    fn body_text(opened: &Opened) -> &str {
        match &opened.envelope.body {
            Body::Message { text, .. } => text,
            other => panic!("not a message: {other:?}"),
        }
    }

    /// Messages written offline, before the sender knew the reader, are readable with the key
    /// given later; the sender's earlier sessions are not.
    #[test]
    fn a_key_given_later_reads_its_session_from_the_start_and_no_earlier_session() {
        let conversation = Uuid::now_v7();
        let mut old = OutboundGroup::new(conversation);
        let before = old.encrypt(&text(conversation, "an earlier session")).unwrap();
        let mut sender = OutboundGroup::new(conversation);
        let queued = sender.encrypt(&text(conversation, "written offline")).unwrap();
        let mut reader = InboundGroups::default();
        reader
            .add(conversation, "alice", &sender.session_id(), sender.session_key())
            .unwrap();
        let later = sender.encrypt(&text(conversation, "after")).unwrap();
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &later).unwrap()),
            "after"
        );
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &queued).unwrap()),
            "written offline"
        );
        assert!(matches!(
            reader.decrypt(conversation, "alice", &before),
            Err(CryptoError::MissingKey { .. })
        ));
    }

    #[test]
    fn a_device_that_leaves_forces_a_new_session_it_cannot_read() {
        let conversation = Uuid::now_v7();
        let mut sender = OutboundGroup::new(conversation);
        let mut everyone: BTreeSet<String> = ["bob", "carol"].map(String::from).into();
        let mut carol = InboundGroups::default();
        for device in sender.not_shared_with(&everyone) {
            sender.mark_shared(&device);
        }
        carol
            .add(conversation, "alice", &sender.session_id(), sender.session_key())
            .unwrap();
        assert!(!sender.needs_rotation(&everyone));
        everyone.remove("carol");
        assert!(
            sender.needs_rotation(&everyone),
            "carol left: the old session must end"
        );
        let mut sender = OutboundGroup::new(conversation);
        sender.mark_shared("bob");
        let after = sender
            .encrypt(&text(conversation, "carol must not read this"))
            .unwrap();
        assert!(matches!(
            carol.decrypt(conversation, "alice", &after),
            Err(CryptoError::MissingKey { .. })
        ));
    }

    #[test]
    fn tampered_moved_and_foreign_messages_are_refused() {
        let conversation = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mut sender = OutboundGroup::new(conversation);
        let mut reader = InboundGroups::default();
        reader
            .add(conversation, "alice", &sender.session_id(), sender.session_key())
            .unwrap();
        let sealed = sender.encrypt(&text(conversation, "hello")).unwrap();

        let mut flipped = sealed.clone();
        let middle = flipped.ciphertext.len() / 2;
        flipped.ciphertext[middle] ^= 1;
        assert_eq!(
            reader.decrypt(conversation, "alice", &flipped).unwrap_err(),
            CryptoError::Tampered { what: "message" }
        );
        assert!(matches!(
            reader.decrypt(other, "alice", &sealed),
            Err(CryptoError::Misdirected { .. })
        ));
        // A record claimed by another sender finds no key of that sender.
        assert!(matches!(
            reader.decrypt(conversation, "mallory", &sealed),
            Err(CryptoError::MissingKey { .. })
        ));
        // A key for the same session, claimed for another conversation, is refused.
        assert!(reader
            .add(other, "alice", &sender.session_id(), sender.session_key())
            .is_err());
        // An envelope of another conversation cannot be sent in this one.
        assert!(sender.encrypt(&text(other, "x")).is_err());
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &sealed).unwrap()),
            "hello"
        );
    }

    /// Mallory forwards Alice's session key before Alice does: it opens nothing Alice wrote,
    /// and Alice's own share still works.
    #[test]
    fn a_session_key_forwarded_by_another_participant_does_not_take_the_senders_place() {
        let conversation = Uuid::now_v7();
        let mut alice = OutboundGroup::new(conversation);
        let sealed = alice.encrypt(&text(conversation, "von Alice")).unwrap();
        let mut reader = InboundGroups::default();
        reader
            .add(conversation, "mallory", &alice.session_id(), alice.session_key())
            .unwrap();
        assert!(matches!(
            reader.decrypt(conversation, "alice", &sealed),
            Err(CryptoError::MissingKey { .. })
        ));
        reader
            .add(conversation, "alice", &alice.session_id(), alice.session_key())
            .unwrap();
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &sealed).unwrap()),
            "von Alice"
        );
    }

    #[test]
    fn sessions_rotate_after_a_bounded_number_of_messages() {
        let conversation = Uuid::now_v7();
        let mut sender = OutboundGroup::new(conversation);
        let none = BTreeSet::new();
        for _ in 0..MESSAGES_PER_SESSION {
            assert!(!sender.needs_rotation(&none));
            sender.encrypt(&text(conversation, ".")).unwrap();
        }
        assert!(sender.needs_rotation(&none));
    }

    #[test]
    fn keys_survive_pickling_and_export() {
        let conversation = Uuid::now_v7();
        let mut sender = OutboundGroup::new(conversation);
        let mut reader = InboundGroups::default();
        reader
            .add(conversation, "alice", &sender.session_id(), sender.session_key())
            .unwrap();
        let first = sender.encrypt(&text(conversation, "one")).unwrap();
        let key = [3u8; 32];
        let mut sender = OutboundGroup::from_pickle(&sender.pickle(&key), &key).unwrap();
        let second = sender.encrypt(&text(conversation, "two")).unwrap();
        let mut reader = InboundGroups::from_pickle(&reader.pickle(&key), &key).unwrap();
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &second).unwrap()),
            "two"
        );

        let mut restored = InboundGroups::default();
        for (sender, id, exported) in reader.export(conversation) {
            restored.import(conversation, &sender, &id, &exported).unwrap();
        }
        assert_eq!(
            body_text(&restored.decrypt(conversation, "alice", &first).unwrap()),
            "one"
        );
        restored.forget(conversation);
        assert!(!restored.has("alice", &first.session_id));
    }
}
