//! The device's Ed25519 key: created on first open, kept in the store, used to sign every change
//! this device pushes so that the server (and any relay) can attribute it to this device.

use ed25519_dalek::{Signer, SigningKey};
use quartier_protocol::signing::change_signing_payload;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// Loads the device key, creating it when the store has none.
pub(crate) fn load_or_create(conn: &Connection) -> Result<SigningKey> {
    let existing: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT signing_key FROM device WHERE singleton = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(Some(bytes)) = existing {
        let secret: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("the device key has the wrong length".into()))?;
        return Ok(SigningKey::from_bytes(&secret));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| Error::invalid("device key", format!("no randomness available: {e}")))?;
    conn.execute(
        "UPDATE device SET signing_key = ?1 WHERE singleton = 1",
        [secret.as_slice()],
    )?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Signs one change of one document.
pub(crate) fn sign_change(key: &SigningKey, doc_id: &str, change_hash: &[u8]) -> Vec<u8> {
    key.sign(&change_signing_payload(doc_id, change_hash))
        .to_bytes()
        .to_vec()
}
