//! Conversation keys: one Megolm session per sending device and conversation.
//!
//! A sender encrypts each message once with its [`OutboundGroup`]; the session's key goes to
//! every participating device over Olm ([`crate::device`]), and each keeps it in its
//! [`InboundGroups`]. A device that leaves (a caseworker removed from the team, a lost phone
//! revoked) keeps the keys it had, so the sender starts a new session, shared only with the
//! devices that remain: [`OutboundGroup::needs_rotation`]. A device that joins is given the
//! current session from its current position: it reads what is sent from then on.

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
    /// Identity keys of the devices this session's key was given to.
    shared_with: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct OutboundPickle {
    conversation: Uuid,
    session: String,
    shared_with: BTreeSet<String>,
}

impl OutboundGroup {
    /// A new session for `conversation`, shared with nobody yet.
    pub fn new(conversation: Uuid) -> Self {
        OutboundGroup {
            conversation,
            session: GroupSession::new(SessionConfig::version_1()),
            shared_with: BTreeSet::new(),
        }
    }

    pub fn conversation(&self) -> Uuid {
        self.conversation
    }

    pub fn session_id(&self) -> String {
        self.session.session_id()
    }

    /// The key to send to a device (over Olm), from the session's current position: the device
    /// reads what this session encrypts from now on, nothing before.
    pub fn session_key(&self) -> String {
        self.session.session_key().to_base64()
    }

    /// Whether the sender must start a new session before its next message: a device it shared
    /// this one with is no longer among `participants`, or the session has encrypted
    /// [`MESSAGES_PER_SESSION`] messages.
    pub fn needs_rotation(&self, participants: &BTreeSet<String>) -> bool {
        self.session.message_index() >= MESSAGES_PER_SESSION || !self.shared_with.is_subset(participants)
    }

    /// Participants that have not been given this session's key yet.
    pub fn not_shared_with(&self, participants: &BTreeSet<String>) -> Vec<String> {
        participants.difference(&self.shared_with).cloned().collect()
    }

    /// Records that `device` was given the key.
    pub fn mark_shared(&mut self, device: &str) {
        self.shared_with.insert(device.to_string());
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
            shared_with: pickle.shared_with,
        })
    }
}

/// One session key a device received: for which conversation, from which device.
struct Inbound {
    conversation: Uuid,
    sender: String,
    session: InboundGroupSession,
}

#[derive(Serialize, Deserialize)]
struct InboundPickle {
    conversation: Uuid,
    sender: String,
    session: String,
}

/// The session keys a device holds, by session id.
#[derive(Default)]
pub struct InboundGroups {
    sessions: BTreeMap<String, Inbound>,
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
    /// already held keeps the earlier position (never lets a later key narrow what is read),
    /// and a key that claims another conversation or sender than the held one is refused.
    pub fn add(
        &mut self,
        conversation: Uuid,
        sender: &str,
        session_id: &str,
        session_key: &str,
    ) -> Result<()> {
        let key =
            SessionKey::from_base64(session_key).map_err(|e| CryptoError::malformed("session key", e))?;
        let mut session = InboundGroupSession::new(&key, SessionConfig::version_1());
        if session.session_id() != session_id {
            return Err(CryptoError::Misdirected {
                what: "session key",
                other: "session",
            });
        }
        match self.sessions.get_mut(session_id) {
            Some(held) => {
                if held.conversation != conversation || held.sender != sender {
                    return Err(CryptoError::Misdirected {
                        what: "session key",
                        other: "conversation or sender",
                    });
                }
                if let Some(merged) = held.session.merge(&mut session) {
                    held.session = merged;
                }
            }
            None => {
                self.sessions.insert(
                    session_id.to_string(),
                    Inbound {
                        conversation,
                        sender: sender.to_string(),
                        session,
                    },
                );
            }
        }
        Ok(())
    }

    /// Whether the key of `session_id` is here.
    pub fn has(&self, session_id: &str) -> bool {
        self.sessions.contains_key(session_id)
    }

    /// Decrypts a message that arrived for `conversation` from the device `sender`. The key
    /// must have come from that device for that conversation, and the envelope inside must
    /// name the conversation too.
    pub fn decrypt(&mut self, conversation: Uuid, sender: &str, sealed: &Sealed) -> Result<Opened> {
        let inbound = self
            .sessions
            .get_mut(&sealed.session_id)
            .ok_or_else(|| CryptoError::MissingKey {
                conversation,
                session_id: sealed.session_id.clone(),
            })?;
        if inbound.conversation != conversation || inbound.sender != sender {
            return Err(CryptoError::Misdirected {
                what: "message",
                other: "conversation or sender",
            });
        }
        let message = MegolmMessage::from_bytes(&sealed.ciphertext)
            .map_err(|e| CryptoError::malformed("megolm message", e))?;
        let decrypted = inbound.session.decrypt(&message).map_err(|e| match e {
            vodozemac::megolm::DecryptionError::UnknownMessageIndex(..) => CryptoError::MissingKey {
                conversation,
                session_id: sealed.session_id.clone(),
            },
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
            .map(|(id, s)| {
                (
                    s.sender.clone(),
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
        if session.session_id() != session_id {
            return Err(CryptoError::Misdirected {
                what: "session key",
                other: "session",
            });
        }
        if self.sessions.contains_key(session_id) {
            return Ok(());
        }
        self.sessions.insert(
            session_id.to_string(),
            Inbound {
                conversation,
                sender: sender.to_string(),
                session,
            },
        );
        Ok(())
    }

    /// Forgets every key of `conversation` (erasure, or leaving it).
    pub fn forget(&mut self, conversation: Uuid) {
        self.sessions.retain(|_, s| s.conversation != conversation);
    }

    pub fn pickle(&self, key: &[u8; 32]) -> String {
        let pickles: BTreeMap<&String, InboundPickle> = self
            .sessions
            .iter()
            .map(|(id, s)| {
                (
                    id,
                    InboundPickle {
                        conversation: s.conversation,
                        sender: s.sender.clone(),
                        session: s.session.pickle().encrypt(key),
                    },
                )
            })
            .collect();
        serde_json::to_string(&pickles).unwrap_or_default()
    }

    pub fn from_pickle(pickle: &str, key: &[u8; 32]) -> Result<Self> {
        let pickles: BTreeMap<String, InboundPickle> =
            serde_json::from_str(pickle).map_err(|e| CryptoError::malformed("inbound sessions pickle", e))?;
        let mut sessions = BTreeMap::new();
        for (id, p) in pickles {
            let session = InboundGroupSessionPickle::from_encrypted(&p.session, key).map_err(|_| {
                CryptoError::Tampered {
                    what: "inbound sessions pickle",
                }
            })?;
            sessions.insert(
                id,
                Inbound {
                    conversation: p.conversation,
                    sender: p.sender,
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

    #[test]
    fn a_shared_key_reads_from_its_position_on_and_not_before() {
        let conversation = Uuid::now_v7();
        let mut sender = OutboundGroup::new(conversation);
        let early = sender.encrypt(&text(conversation, "before you joined")).unwrap();
        let mut reader = InboundGroups::default();
        reader
            .add(conversation, "alice", &sender.session_id(), &sender.session_key())
            .unwrap();
        let later = sender.encrypt(&text(conversation, "after")).unwrap();
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &later).unwrap()),
            "after"
        );
        assert!(matches!(
            reader.decrypt(conversation, "alice", &early),
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
            .add(conversation, "alice", &sender.session_id(), &sender.session_key())
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
            .add(conversation, "alice", &sender.session_id(), &sender.session_key())
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
        assert!(matches!(
            reader.decrypt(conversation, "mallory", &sealed),
            Err(CryptoError::Misdirected { .. })
        ));
        // A key for the same session, claimed for another conversation, is refused.
        assert!(reader
            .add(other, "alice", &sender.session_id(), &sender.session_key())
            .is_err());
        // An envelope of another conversation cannot be sent in this one.
        assert!(sender.encrypt(&text(other, "x")).is_err());
        assert_eq!(
            body_text(&reader.decrypt(conversation, "alice", &sealed).unwrap()),
            "hello"
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
            .add(conversation, "alice", &sender.session_id(), &sender.session_key())
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
        assert!(!restored.has(&first.session_id));
    }
}
