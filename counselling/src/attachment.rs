//! Attachments: a file (a photo of a letter from the Jobcenter) is encrypted on the device with
//! a key made for it alone, before it is stored as a blob or uploaded. The key, the nonce and
//! the ciphertext's hash travel inside the encrypted message ([`FileKey`]); the server holds
//! only the ciphertext, content-addressed by that hash.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::error::{CryptoError, Result};
use crate::random_bytes;

/// Largest file this encrypts in one piece (photos and scans of letters; longer recordings
/// are not counselling attachments).
pub const MAX_ATTACHMENT_BYTES: usize = 32 * 1024 * 1024;

/// What a reader needs to fetch and open one attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// BLAKE3 of the ciphertext, hex: the blob's address.
    pub hash: String,
    /// XChaCha20-Poly1305 key and nonce, base64.
    pub key: String,
    pub nonce: String,
    /// Plaintext size and type, for the app to show before it fetches.
    pub size: i64,
    pub mime: String,
}

/// Encrypts `plaintext` under a fresh key: the ciphertext to store, and its key.
pub fn encrypt(plaintext: &[u8], mime: &str) -> Result<(Vec<u8>, FileKey)> {
    if plaintext.len() > MAX_ATTACHMENT_BYTES {
        return Err(CryptoError::TooLarge {
            what: "attachment",
            size: plaintext.len(),
            limit: MAX_ATTACHMENT_BYTES,
        });
    }
    let key = random_bytes::<32>();
    let nonce = random_bytes::<24>();
    let cipher = XChaCha20Poly1305::new(&key.into());
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), plaintext)
        .map_err(|_| CryptoError::malformed("attachment", "encryption failed"))?;
    let file_key = FileKey {
        hash: blake3::hash(&ciphertext).to_hex().to_string(),
        key: vodozemac::base64_encode(key),
        nonce: vodozemac::base64_encode(nonce),
        size: plaintext.len() as i64,
        mime: mime.to_string(),
    };
    Ok((ciphertext, file_key))
}

/// Opens what [`encrypt`] made, after checking it is the blob the key names.
pub fn decrypt(ciphertext: &[u8], file_key: &FileKey) -> Result<Vec<u8>> {
    if ciphertext.len() > MAX_ATTACHMENT_BYTES + 16 {
        return Err(CryptoError::TooLarge {
            what: "attachment",
            size: ciphertext.len(),
            limit: MAX_ATTACHMENT_BYTES + 16,
        });
    }
    if blake3::hash(ciphertext).to_hex().as_str() != file_key.hash {
        return Err(CryptoError::Tampered { what: "attachment" });
    }
    let key: [u8; 32] = decode_fixed(&file_key.key, "attachment key")?;
    let nonce: [u8; 24] = decode_fixed(&file_key.nonce, "attachment nonce")?;
    XChaCha20Poly1305::new(&key.into())
        .decrypt(&XNonce::from(nonce), ciphertext)
        .map_err(|_| CryptoError::Tampered { what: "attachment" })
}

fn decode_fixed<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N]> {
    let bytes = vodozemac::base64_decode(text).map_err(|e| CryptoError::malformed(what, e))?;
    bytes
        .try_into()
        .map_err(|_| CryptoError::malformed(what, format!("expected {N} bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_its_ciphertext_hides_it() {
        let letter = b"Bescheid des Jobcenters: MARKER-ATTACHMENT".repeat(100);
        let (ciphertext, key) = encrypt(&letter, "image/jpeg").unwrap();
        assert!(!ciphertext.windows(6).any(|w| w == b"MARKER"));
        assert_eq!(decrypt(&ciphertext, &key).unwrap(), letter);
        assert_eq!(key.size, letter.len() as i64);
        // Two encryptions of the same file share nothing.
        let (again, other_key) = encrypt(&letter, "image/jpeg").unwrap();
        assert_ne!(again, ciphertext);
        assert_ne!(other_key.key, key.key);
    }

    #[test]
    fn an_altered_or_swapped_file_is_refused() {
        let (mut ciphertext, key) = encrypt(b"payslip", "application/pdf").unwrap();
        let (other, other_key) = encrypt(b"another file", "application/pdf").unwrap();
        assert!(matches!(decrypt(&other, &key), Err(CryptoError::Tampered { .. })));
        ciphertext[0] ^= 1;
        assert!(matches!(
            decrypt(&ciphertext, &key),
            Err(CryptoError::Tampered { .. })
        ));
        // The right hash with a wrong key: the AEAD catches it.
        let mut wrong = other_key.clone();
        wrong.key = key.key.clone();
        assert!(matches!(
            decrypt(&other, &wrong),
            Err(CryptoError::Tampered { .. })
        ));
        let mut bad = other_key;
        bad.nonce = "AAAA".into();
        assert!(matches!(
            decrypt(&other, &bad),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
