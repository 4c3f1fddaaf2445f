//! The error of every operation of this crate: typed by what the caller does next (wait for a
//! key, drop the input, ask for the passphrase again). No message carries key material or text.

/// Result alias of this crate.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;

/// What can go wrong while encrypting, decrypting or restoring.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Bytes that are not what they claim to be (bad encoding, wrong length, unknown version).
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },

    /// The ciphertext or its signature does not verify: it was altered, or made with another key.
    #[error("the {what} does not verify: it was altered or was not made for this key")]
    Tampered { what: &'static str },

    /// The key for this message has not arrived (yet): keep the message and try again when
    /// keys arrive. Never permanent on its own.
    #[error("no key yet for session {session_id} of conversation {conversation}")]
    MissingKey {
        conversation: uuid::Uuid,
        session_id: String,
    },

    /// The message was already decrypted once (same session, same position): a replay.
    #[error("message {index} of session {session_id} was already received")]
    Replayed { session_id: String, index: u32 },

    /// A message or key that names another conversation, sender or recipient than the one it
    /// arrived for: moved by someone in between.
    #[error("the {what} was made for another {other}")]
    Misdirected { what: &'static str, other: &'static str },

    /// A message for a session this device may no longer read (it left the conversation).
    #[error("this device no longer reads conversation {0}")]
    NotAParticipant(uuid::Uuid),

    /// No pairwise session with the device yet and no one-time key to start one.
    #[error("no session with device {0} and no one-time key to start one")]
    NoSession(String),

    /// The passphrase does not open the backup (or the backup was altered).
    #[error("the passphrase does not open this backup")]
    WrongPassphrase,

    /// An input beyond what this crate accepts (a file, a backup's work factor).
    #[error("{what} too large: {size} bytes, at most {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
}

impl CryptoError {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        CryptoError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
