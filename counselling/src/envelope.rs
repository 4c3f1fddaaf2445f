//! What an encrypted counselling record carries inside, and its outer form.
//!
//! An [`Envelope`] is the plaintext: its own id (what makes delivery exactly-once), the
//! conversation it belongs to (checked on decryption, so a relay cannot move it), when it was
//! written, and a [`Body`]. [`Sealed`] is what the server sees: the Megolm session id and the
//! ciphertext. Nothing else about a message leaves the device.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::attachment::FileKey;
use crate::error::{CryptoError, Result};
use crate::group::MAX_ENVELOPE_BYTES;

/// The plaintext of one counselling record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Uuid,
    pub conversation: Uuid,
    /// Milliseconds since the Unix epoch, on the writer's clock.
    pub written_at_ms: i64,
    pub body: Body,
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// A message in a conversation, with files encrypted under keys of their own.
    Message {
        text: String,
        #[serde(default)]
        attachments: Vec<FileKey>,
    },
    /// A caseworker's note, readable by the team only (it travels in the team's notes channel,
    /// never in the conversation). `about` names the conversation it concerns.
    Note { about: Uuid, text: String },
    /// An appointment proposed or changed, shown to both sides; a later one with the same
    /// `appointment` id replaces it.
    Appointment {
        appointment: Uuid,
        starts_at_ms: i64,
        minutes: i32,
        place: AppointmentPlace,
        #[serde(default)]
        cancelled: bool,
    },
    /// The conversation is closed (by either side); its retention clock starts.
    Closed,
    /// A kind of record this version does not know (kept, not shown).
    #[serde(other)]
    Unknown,
}

/// Where an appointment happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AppointmentPlace {
    InPerson { address: String },
    Phone { number: String },
    Video { link: String },
}

/// An encrypted record as it travels and as the server keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The sender's Megolm session it was encrypted with.
    pub session_id: String,
    #[serde(with = "serde_bytes_vec")]
    pub ciphertext: Vec<u8>,
}

impl Envelope {
    /// A new record for `conversation`, written now.
    pub fn new(conversation: Uuid, body: Body) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            conversation,
            written_at_ms: now_ms(),
            body,
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let bytes = serde_json::to_vec(self).map_err(|e| CryptoError::malformed("envelope", e))?;
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(CryptoError::TooLarge {
                what: "message",
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        Ok(bytes)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(CryptoError::TooLarge {
                what: "message",
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| CryptoError::malformed("envelope", e))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Bytes as base64 in JSON (a pickle or a backup), not as a list of numbers.
mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&vodozemac::base64_encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        vodozemac::base64_decode(&text).map_err(serde::de::Error::custom)
    }
}
