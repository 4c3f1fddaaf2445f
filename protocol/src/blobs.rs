//! Blob (media) transfer messages, specified in `docs/blobs.md`.
//!
//! Blobs are content-addressed by BLAKE3 (64 lowercase hex digits) and move in fixed-size
//! chunks of [`BLOB_CHUNK_BYTES`] so that an interrupted transfer resumes at the last finished
//! chunk. Announcements and upload states travel in the wire format (CBOR + zstd) like every
//! other message; chunk bodies and downloads are raw bytes (`application/octet-stream`): media
//! is already compressed, and a raw body lets downloads use HTTP `Range`.
//!
//! Nothing here does I/O.

use serde::{Deserialize, Serialize};

/// Size of every chunk but the last (256 KiB): small enough that a 2G link finishes one between
/// drops, large enough that per-request overhead stays under 1 %.
pub const BLOB_CHUNK_BYTES: u32 = 256 * 1024;

/// Media type of chunk bodies and downloads.
pub const BLOB_CONTENT_TYPE: &str = "application/octet-stream";

/// `POST /v1/spaces/{space}/blobs`: a device is about to upload a blob for items of a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceBlob {
    /// BLAKE3 of the whole content, 64 lowercase hex digits.
    pub hash: String,
    pub size: u64,
    pub mime_type: String,
    /// Must be [`BLOB_CHUNK_BYTES`]; carried so that a later version can change it knowingly.
    pub chunk_size: u32,
}

/// Where an upload stands: the answer to an announcement and to every finished chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub hash: String,
    pub size: u64,
    pub chunk_size: u32,
    /// Indices of the chunks the server holds, ascending. A resuming device sends the others.
    pub received: Vec<u32>,
    /// The server holds the whole, verified blob: nothing needs to be sent.
    pub complete: bool,
}

/// Whether `hash` is a BLAKE3 hash as blobs are named: 64 lowercase hex digits.
pub fn is_blob_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Number of chunks of a blob of `size` bytes (an empty blob has none).
pub fn chunk_count(size: u64, chunk_size: u32) -> u32 {
    let chunk = u64::from(chunk_size.max(1));
    u32::try_from(size.div_ceil(chunk)).unwrap_or(u32::MAX)
}

/// Byte range `start..end` of chunk `index`, or `None` past the end.
pub fn chunk_range(size: u64, chunk_size: u32, index: u32) -> Option<(u64, u64)> {
    let chunk = u64::from(chunk_size.max(1));
    let start = u64::from(index).checked_mul(chunk)?;
    if start >= size {
        return None;
    }
    Some((start, (start + chunk).min(size)))
}

/// The indices in `0..chunk_count` that `received` (ascending) does not hold.
pub fn missing_chunks(state: &UploadState) -> Vec<u32> {
    let mut have = state.received.iter().peekable();
    (0..chunk_count(state.size, state.chunk_size))
        .filter(|i| {
            while have.next_if(|r| **r < *i).is_some() {}
            have.next_if_eq(&i).is_none()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_arithmetic() {
        assert_eq!(chunk_count(0, 10), 0);
        assert_eq!(chunk_count(10, 10), 1);
        assert_eq!(chunk_count(11, 10), 2);
        assert_eq!(chunk_range(25, 10, 2), Some((20, 25)));
        assert_eq!(chunk_range(25, 10, 3), None);
        assert_eq!(
            chunk_range(u64::MAX, 10, u32::MAX),
            Some((42_949_672_950, 42_949_672_960))
        );
    }

    #[test]
    fn missing_chunks_are_the_complement() {
        let state = UploadState {
            hash: String::new(),
            size: 55,
            chunk_size: 10,
            received: vec![0, 2, 5],
            complete: false,
        };
        assert_eq!(missing_chunks(&state), vec![1, 3, 4]);
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert!(is_blob_hash(&"a".repeat(64)));
        assert!(!is_blob_hash(&"A".repeat(64)));
        assert!(!is_blob_hash(&"a".repeat(63)));
        assert!(!is_blob_hash("../../etc/passwd"));
    }
}
