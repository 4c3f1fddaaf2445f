//! A device's counselling keys and its pairwise channels to other devices.
//!
//! Each device holds one Olm account: a long-term Curve25519 identity key (what other devices
//! address it by), an Ed25519 key, and one-time keys it publishes so that others can open an
//! Olm session with it while it is offline. Olm sessions carry only [`ToDeviceContent`]: the
//! conversation keys of [`crate::group`]. Messages themselves never travel pairwise.
//!
//! Every payload names its sender's and recipient's identity keys inside the ciphertext, and
//! decryption checks both: a relay that re-addresses a key to another device is caught.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionConfig, SessionPickle};
use vodozemac::Curve25519PublicKey;

use crate::error::{CryptoError, Result};

/// Olm sessions kept per peer device; an older one only matters while messages made with it
/// are still in flight.
const SESSIONS_PER_PEER: usize = 4;

/// Most one-time keys published in one go (vodozemac keeps at most 100 unused ones).
pub const MAX_ONE_TIME_KEYS: usize = 50;

/// A device's public keys, as published in the key directory (base64, unpadded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityKeys {
    /// What other devices address this one by.
    pub curve25519: String,
    /// What its Megolm sessions' keys are bound to.
    pub ed25519: String,
}

/// What travels over a pairwise Olm channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToDeviceContent {
    /// The key of the sender's Megolm session for a conversation (or a team's notes): with it
    /// the recipient reads that session's messages from `session_key`'s position on.
    ConversationKey {
        conversation: Uuid,
        session_id: String,
        session_key: String,
    },
}

/// The plaintext of an Olm message: the content, and who it is from and for.
#[derive(Serialize, Deserialize)]
struct ToDevicePlaintext {
    sender: String,
    recipient: String,
    content: ToDeviceContent,
}

/// A device's Olm account and its sessions with other devices (by their Curve25519 key).
pub struct Device {
    account: Account,
    sessions: BTreeMap<String, Vec<Session>>,
}

/// How a [`Device`] is kept between calls (encrypted with the store's pickle key).
#[derive(Serialize, Deserialize)]
struct DevicePickle {
    account: String,
    sessions: BTreeMap<String, Vec<String>>,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// A new device identity, with fresh keys.
    pub fn new() -> Self {
        Device {
            account: Account::new(),
            sessions: BTreeMap::new(),
        }
    }

    /// The public keys to publish.
    pub fn identity(&self) -> IdentityKeys {
        IdentityKeys {
            curve25519: self.account.curve25519_key().to_base64(),
            ed25519: self.account.ed25519_key().to_base64(),
        }
    }

    /// New one-time keys to publish (at most [`MAX_ONE_TIME_KEYS`]), marked published: each
    /// opens one Olm session with this device while it is offline, and is then forgotten.
    pub fn new_one_time_keys(&mut self, count: usize) -> Vec<String> {
        let result = self.account.generate_one_time_keys(count.min(MAX_ONE_TIME_KEYS));
        self.account.mark_keys_as_published();
        result
            .created
            .iter()
            .map(Curve25519PublicKey::to_base64)
            .collect()
    }

    /// A new fallback key to publish: others use it when every one-time key of this device is
    /// taken. The previous one still opens sessions until the rotation after this one (so a
    /// message made with it while it was being replaced is not lost).
    pub fn rotate_fallback_key(&mut self) -> String {
        self.account.generate_fallback_key();
        let key = self
            .account
            .fallback_key()
            .values()
            .next()
            .map(Curve25519PublicKey::to_base64)
            .unwrap_or_default();
        self.account.mark_keys_as_published();
        key
    }

    /// Whether this device can send to `peer` without a one-time key.
    pub fn has_session(&self, peer: &str) -> bool {
        self.sessions.get(peer).is_some_and(|s| !s.is_empty())
    }

    /// Encrypts `content` for the device whose identity key is `peer`. Without a session, one
    /// is opened with `one_time_key` (claimed from the key directory).
    pub fn encrypt_for(
        &mut self,
        peer: &str,
        one_time_key: Option<&str>,
        content: &ToDeviceContent,
    ) -> Result<Vec<u8>> {
        let peer_key = parse_curve(peer, "peer identity key")?;
        if !self.has_session(peer) {
            let otk = one_time_key.ok_or_else(|| CryptoError::NoSession(peer.to_string()))?;
            let otk = parse_curve(otk, "one-time key")?;
            let session = self
                .account
                .create_outbound_session(SessionConfig::version_1(), peer_key, otk)
                .map_err(|e| CryptoError::malformed("one-time key", e))?;
            self.remember(peer, session);
        }
        let plaintext = serde_json::to_vec(&ToDevicePlaintext {
            sender: self.identity().curve25519,
            recipient: peer.to_string(),
            content: content.clone(),
        })
        .map_err(|e| CryptoError::malformed("to-device content", e))?;
        let session = self
            .sessions
            .get_mut(peer)
            .and_then(|s| s.first_mut())
            .ok_or_else(|| CryptoError::NoSession(peer.to_string()))?;
        let message = session
            .encrypt(&plaintext)
            .map_err(|e| CryptoError::malformed("olm session", e))?;
        Ok(encode_olm(&message))
    }

    /// Decrypts what the device `peer` sent with [`Device::encrypt_for`], opening a session if
    /// it is the first message of one. Fails with [`CryptoError::Tampered`] when no session
    /// (or one-time key) of this device decrypts it, or with [`CryptoError::Misdirected`] when
    /// the payload names another sender or recipient.
    pub fn decrypt_from(&mut self, peer: &str, bytes: &[u8]) -> Result<ToDeviceContent> {
        let message = decode_olm(bytes)?;
        let plaintext = self.decrypt_olm(peer, &message)?;
        let payload: ToDevicePlaintext =
            serde_json::from_slice(&plaintext).map_err(|e| CryptoError::malformed("to-device content", e))?;
        if payload.sender != peer {
            return Err(CryptoError::Misdirected {
                what: "to-device message",
                other: "sender",
            });
        }
        if payload.recipient != self.identity().curve25519 {
            return Err(CryptoError::Misdirected {
                what: "to-device message",
                other: "recipient",
            });
        }
        Ok(payload.content)
    }

    fn decrypt_olm(&mut self, peer: &str, message: &OlmMessage) -> Result<Vec<u8>> {
        if let Some(sessions) = self.sessions.get_mut(peer) {
            for (position, session) in sessions.iter_mut().enumerate() {
                let matches = match message {
                    OlmMessage::PreKey(pre_key) => pre_key.session_id() == session.session_id(),
                    OlmMessage::Normal(_) => true,
                };
                if !matches {
                    continue;
                }
                if let Ok(plaintext) = session.decrypt(message) {
                    // The session that works moves to the front: it is the one to answer on.
                    let used = sessions.remove(position);
                    sessions.insert(0, used);
                    return Ok(plaintext);
                }
            }
        }
        let OlmMessage::PreKey(pre_key) = message else {
            return Err(CryptoError::Tampered { what: "olm message" });
        };
        let peer_key = parse_curve(peer, "peer identity key")?;
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), peer_key, pre_key)
            .map_err(|_| CryptoError::Tampered { what: "olm message" })?;
        self.remember(peer, created.session);
        Ok(created.plaintext)
    }

    fn remember(&mut self, peer: &str, session: Session) {
        let sessions = self.sessions.entry(peer.to_string()).or_default();
        sessions.insert(0, session);
        sessions.truncate(SESSIONS_PER_PEER);
    }

    /// This device's state, encrypted with `key`, for the store.
    pub fn pickle(&self, key: &[u8; 32]) -> String {
        let pickle = DevicePickle {
            account: self.account.pickle().encrypt(key),
            sessions: self
                .sessions
                .iter()
                .map(|(peer, sessions)| {
                    (
                        peer.clone(),
                        sessions.iter().map(|s| s.pickle().encrypt(key)).collect(),
                    )
                })
                .collect(),
        };
        // A map of strings always serialises.
        serde_json::to_string(&pickle).unwrap_or_default()
    }

    /// The device [`Device::pickle`] stored.
    pub fn from_pickle(pickle: &str, key: &[u8; 32]) -> Result<Self> {
        let pickle: DevicePickle =
            serde_json::from_str(pickle).map_err(|e| CryptoError::malformed("device pickle", e))?;
        let account =
            AccountPickle::from_encrypted(&pickle.account, key).map_err(|_| CryptoError::Tampered {
                what: "device pickle",
            })?;
        let mut sessions = BTreeMap::new();
        for (peer, pickles) in pickle.sessions {
            let mut list = Vec::with_capacity(pickles.len());
            for p in pickles {
                let session = SessionPickle::from_encrypted(&p, key).map_err(|_| CryptoError::Tampered {
                    what: "device pickle",
                })?;
                list.push(Session::from_pickle(session));
            }
            sessions.insert(peer, list);
        }
        Ok(Device {
            account: Account::from_pickle(account),
            sessions,
        })
    }
}

/// Parses a base64 Curve25519 public key.
pub(crate) fn parse_curve(key: &str, what: &'static str) -> Result<Curve25519PublicKey> {
    Curve25519PublicKey::from_base64(key).map_err(|e| CryptoError::malformed(what, e))
}

/// An Olm message on the wire: its type (0 pre-key, 1 normal) in one byte, then its body.
fn encode_olm(message: &OlmMessage) -> Vec<u8> {
    let (kind, body) = message.to_parts();
    let mut bytes = Vec::with_capacity(body.len() + 1);
    bytes.push(kind as u8);
    bytes.extend_from_slice(&body);
    bytes
}

fn decode_olm(bytes: &[u8]) -> Result<OlmMessage> {
    let (&kind, body) = bytes
        .split_first()
        .ok_or_else(|| CryptoError::malformed("olm message", "empty"))?;
    OlmMessage::from_parts(usize::from(kind), body).map_err(|e| CryptoError::malformed("olm message", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_for(conversation: Uuid) -> ToDeviceContent {
        ToDeviceContent::ConversationKey {
            conversation,
            session_id: "s".into(),
            session_key: "k".into(),
        }
    }

    /// Alice opens a session with Bob's one-time key; Bob reads it, answers on the same
    /// session, and both keep working after a pickle round trip.
    #[test]
    fn a_session_opens_with_a_one_time_key_and_survives_pickling() {
        let mut alice = Device::new();
        let mut bob = Device::new();
        let otk = bob.new_one_time_keys(1).remove(0);
        let (a, b) = (alice.identity().curve25519, bob.identity().curve25519);
        let conversation = Uuid::now_v7();

        assert_eq!(
            alice.encrypt_for(&b, None, &key_for(conversation)),
            Err(CryptoError::NoSession(b.clone()))
        );
        let first = alice.encrypt_for(&b, Some(&otk), &key_for(conversation)).unwrap();
        assert_eq!(bob.decrypt_from(&a, &first).unwrap(), key_for(conversation));

        let key = [7u8; 32];
        let mut bob = Device::from_pickle(&bob.pickle(&key), &key).unwrap();
        let mut alice = Device::from_pickle(&alice.pickle(&key), &key).unwrap();
        let answer = bob.encrypt_for(&a, None, &key_for(conversation)).unwrap();
        assert_eq!(alice.decrypt_from(&b, &answer).unwrap(), key_for(conversation));
        // The same bytes a second time: the ratchet has moved on.
        assert!(matches!(
            alice.decrypt_from(&b, &answer),
            Err(CryptoError::Tampered { .. })
        ));
    }

    #[test]
    fn a_wrong_pickle_key_is_a_typed_error() {
        let device = Device::new();
        let pickle = device.pickle(&[1; 32]);
        assert!(matches!(
            Device::from_pickle(&pickle, &[2; 32]),
            Err(CryptoError::Tampered { .. })
        ));
        assert!(matches!(
            Device::from_pickle("{", &[1; 32]),
            Err(CryptoError::Malformed { .. })
        ));
    }

    /// A message to Bob, handed to Carol by the relay: Carol cannot read it; a message Bob
    /// claims came from Carol is not accepted as hers.
    #[test]
    fn a_message_readdressed_by_the_relay_is_refused() {
        let mut alice = Device::new();
        let mut bob = Device::new();
        let mut carol = Device::new();
        let otk = bob.new_one_time_keys(1).remove(0);
        carol.new_one_time_keys(1);
        let (a, b, c) = (
            alice.identity().curve25519,
            bob.identity().curve25519,
            carol.identity().curve25519,
        );
        let bytes = alice.encrypt_for(&b, Some(&otk), &key_for(Uuid::nil())).unwrap();
        assert!(matches!(
            carol.decrypt_from(&a, &bytes),
            Err(CryptoError::Tampered { .. })
        ));
        assert!(matches!(
            bob.decrypt_from(&c, &bytes),
            Err(CryptoError::Tampered { .. })
        ));
        // Bob still reads it from its real sender.
        assert!(bob.decrypt_from(&a, &bytes).is_ok());
    }

    #[test]
    fn garbage_is_malformed_or_tampered_never_a_panic() {
        let mut bob = Device::new();
        let a = Device::new().identity().curve25519;
        for bytes in [&b""[..], &[0u8], &[1u8, 2, 3], &[0u8; 200], &[9u8, 1, 2]] {
            let error = bob.decrypt_from(&a, bytes).unwrap_err();
            assert!(
                matches!(
                    error,
                    CryptoError::Malformed { .. } | CryptoError::Tampered { .. }
                ),
                "{error:?}"
            );
        }
        assert!(bob.decrypt_from("not a key", &[0u8; 80]).is_err());
    }

    #[test]
    fn the_fallback_key_opens_sessions_when_one_time_keys_are_gone() {
        let mut alice = Device::new();
        let mut bob = Device::new();
        let fallback = bob.rotate_fallback_key();
        assert_eq!(fallback.len(), 43, "an unpadded base64 Curve25519 key");
        let bytes = alice
            .encrypt_for(&bob.identity().curve25519, Some(&fallback), &key_for(Uuid::nil()))
            .unwrap();
        assert!(bob.decrypt_from(&alice.identity().curve25519, &bytes).is_ok());
        assert_ne!(bob.rotate_fallback_key(), fallback);
    }
}
