//! Passphrase-protected backups of counselling keys, so that a resident who loses the phone can
//! read the conversation on a new one, and nobody without the passphrase can.
//!
//! The key is derived with Argon2id (RFC 9106's second recommended setting: 64 MiB, 3 passes)
//! from the passphrase and a random salt; the content is sealed with XChaCha20-Poly1305, the
//! header (format, work factors, salt) as associated data so that nobody can lower the work
//! factors of a stored backup unnoticed. Opening refuses work factors beyond fixed bounds, so a
//! forged backup cannot make a phone spend gigabytes.
//!
//! Layout: `QBK1` · m_cost (KiB) · t_cost · p_cost (u32 little endian each) · salt (16) ·
//! nonce (24) · ciphertext.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{CryptoError, Result};
use crate::random_bytes;

const MAGIC: &[u8; 4] = b"QBK1";
const HEADER_LEN: usize = 4 + 12 + 16 + 24;

/// Argon2id memory (KiB), passes and lanes of new backups.
pub const MEMORY_KIB: u32 = 64 * 1024;
pub const PASSES: u32 = 3;
pub const LANES: u32 = 1;

/// The most a backup may ask for when it is opened.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_PASSES: u32 = 10;
const MAX_LANES: u32 = 4;

/// The shortest passphrase accepted for a new backup (in characters).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Largest backup content (keys of many conversations; never messages' media).
pub const MAX_BACKUP_BYTES: usize = 4 * 1024 * 1024 - 1024;

/// Seals `content` under `passphrase`.
pub fn seal(passphrase: &str, content: &[u8]) -> Result<Vec<u8>> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(CryptoError::malformed(
            "passphrase",
            format!("at least {MIN_PASSPHRASE_CHARS} characters are needed"),
        ));
    }
    if content.len() > MAX_BACKUP_BYTES {
        return Err(CryptoError::TooLarge {
            what: "backup",
            size: content.len(),
            limit: MAX_BACKUP_BYTES,
        });
    }
    let salt = random_bytes::<16>();
    let nonce = random_bytes::<24>();
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    for n in [MEMORY_KIB, PASSES, LANES] {
        header.extend_from_slice(&n.to_le_bytes());
    }
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    let key = derive(passphrase, &salt, MEMORY_KIB, PASSES, LANES)?;
    let ciphertext = XChaCha20Poly1305::new(&key.into())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: content,
                aad: &header,
            },
        )
        .map_err(|_| CryptoError::malformed("backup", "encryption failed"))?;
    header.extend_from_slice(&ciphertext);
    Ok(header)
}

/// Opens what [`seal`] made. A wrong passphrase and an altered backup are both
/// [`CryptoError::WrongPassphrase`]: the two cannot be told apart, by design.
pub fn open(passphrase: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() > MAX_BACKUP_BYTES + HEADER_LEN + 16 {
        return Err(CryptoError::TooLarge {
            what: "backup",
            size: sealed.len(),
            limit: MAX_BACKUP_BYTES + HEADER_LEN + 16,
        });
    }
    if sealed.len() < HEADER_LEN + 16 || &sealed[..4] != MAGIC {
        return Err(CryptoError::malformed("backup", "not a Quartier key backup"));
    }
    let word = |at: usize| u32::from_le_bytes([sealed[at], sealed[at + 1], sealed[at + 2], sealed[at + 3]]);
    let (memory, passes, lanes) = (word(4), word(8), word(12));
    if memory > MAX_MEMORY_KIB || passes > MAX_PASSES || lanes > MAX_LANES {
        return Err(CryptoError::malformed(
            "backup",
            "work factors beyond what a phone can spend",
        ));
    }
    let (header, ciphertext) = sealed.split_at(HEADER_LEN);
    let salt = &header[16..32];
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&header[32..56]);
    let key = derive(passphrase, salt, memory, passes, lanes)?;
    XChaCha20Poly1305::new(&key.into())
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .map_err(|_| CryptoError::WrongPassphrase)
}

fn derive(passphrase: &str, salt: &[u8], memory: u32, passes: u32, lanes: u32) -> Result<[u8; 32]> {
    let params = Params::new(memory, passes, lanes, Some(32))
        .map_err(|e| CryptoError::malformed("backup work factors", e))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| CryptoError::malformed("backup work factors", e))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passphrase_opens_it_and_nothing_else_does() {
        let content = b"keys of conversation MARKER-BACKUP".to_vec();
        let sealed = seal("correct horse battery", &content).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"MARKER"));
        assert_eq!(open("correct horse battery", &sealed).unwrap(), content);
        assert_eq!(
            open("correct horse batterY", &sealed),
            Err(CryptoError::WrongPassphrase)
        );
    }

    #[test]
    fn altered_headers_and_forged_work_factors_are_refused() {
        let sealed = seal("correct horse battery", b"k").unwrap();
        // Lowering the memory cost changes the key and fails the associated data.
        let mut weakened = sealed.clone();
        weakened[4..8].copy_from_slice(&(8u32 * 1024).to_le_bytes());
        assert_eq!(
            open("correct horse battery", &weakened),
            Err(CryptoError::WrongPassphrase)
        );
        // Asking for 4 GiB is refused before any work.
        let mut greedy = sealed.clone();
        greedy[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            open("correct horse battery", &greedy),
            Err(CryptoError::Malformed { .. })
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            open("correct horse battery", &flipped),
            Err(CryptoError::WrongPassphrase)
        );
        assert!(matches!(open("x", b"QBK1"), Err(CryptoError::Malformed { .. })));
        assert!(matches!(
            open("x", &[0u8; 100]),
            Err(CryptoError::Malformed { .. })
        ));
    }

    #[test]
    fn short_passphrases_are_refused() {
        assert!(matches!(
            seal("1234567", b"k"),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
