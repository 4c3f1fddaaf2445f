//! # quartier-counselling
//!
//! The cryptography of counselling (Online-Beratung), with no I/O: every function takes state
//! and bytes and returns state and bytes; the store (`quartier-core`) keeps the state, the
//! sync moves the bytes. Built on `vodozemac`, the Matrix project's audited implementation of
//! Olm and Megolm; nothing here implements a cipher or a ratchet itself.
//!
//! - [`device`]: a device's long-term keys and its pairwise Olm sessions, over which
//!   conversation keys travel to other devices (to-device messages);
//! - [`group`]: one Megolm session per sender and conversation: encrypt once, every device the
//!   key was shared with decrypts; rotated when a device leaves, so it reads nothing after;
//! - [`envelope`]: what is inside an encrypted message (a message, a case note, an
//!   appointment) and the checks that bind it to its conversation and sender;
//! - [`attachment`]: files encrypted with a key of their own, carried inside the message;
//! - [`backup`]: a passphrase-protected (Argon2id) copy of the keys, for a new phone.
//!
//! The threat model this serves is `docs/threat-model.md`.

pub mod attachment;
pub mod backup;
pub mod device;
pub mod envelope;
pub mod error;
pub mod group;

pub use error::{CryptoError, Result};

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not something any caller can recover from, and continuing
    // with predictable keys would be far worse than stopping.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}
