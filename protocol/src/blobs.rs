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

/// Largest thumbnail a server accepts (512 KiB; the core makes them about 256 px wide, tens of
/// KB). Devices on a metered link fetch nothing called a thumbnail that is larger.
pub const MAX_THUMBNAIL_BYTES: u64 = 512 * 1024;
/// Largest preview a server accepts (8 MiB: a 1280 px PNG with alpha, the largest the core
/// makes, stays under it). Devices on a metered link fetch nothing called a preview that is
/// larger.
pub const MAX_PREVIEW_BYTES: u64 = 8 * 1024 * 1024;

/// Which file of a media reference a blob is uploaded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobVariant {
    Original,
    Preview,
    Thumbnail,
}

impl BlobVariant {
    /// The largest blob of this variant, if it is bounded (originals are bounded only by the
    /// server's `max_blob_bytes`).
    pub fn max_bytes(self) -> Option<u64> {
        match self {
            BlobVariant::Original => None,
            BlobVariant::Preview => Some(MAX_PREVIEW_BYTES),
            BlobVariant::Thumbnail => Some(MAX_THUMBNAIL_BYTES),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BlobVariant::Original => "original",
            BlobVariant::Preview => "preview",
            BlobVariant::Thumbnail => "thumbnail",
        }
    }
}

/// `POST /v1/spaces/{space}/blobs`: a device is about to upload a blob for items of a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceBlob {
    /// BLAKE3 of the whole content, 64 lowercase hex digits.
    pub hash: String,
    pub size: u64,
    pub mime_type: String,
    /// Must be [`BLOB_CHUNK_BYTES`]; carried so that a later version can change it knowingly.
    pub chunk_size: u32,
    /// What the blob is for; a preview or thumbnail above its [`BlobVariant::max_bytes`] is
    /// refused. Absent (devices before this field) counts as an original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<BlobVariant>,
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

impl UploadState {
    /// Checks an answer against the announcement it answers, before anything is planned from
    /// it: the same blob, size and chunk size, and received chunks that are ascending, unique
    /// and inside the blob. A state that fails is the server's fault (or an attacker's); without
    /// this a hostile state (a size of 2^40 in chunks of one byte) makes [`missing_chunks`] plan
    /// billions of chunks.
    pub fn check_answers(&self, announce: &AnnounceBlob) -> Result<(), String> {
        if self.hash != announce.hash {
            return Err("the upload state is for another blob".into());
        }
        if self.size != announce.size || self.chunk_size != announce.chunk_size {
            return Err(format!(
                "the upload state has {} bytes in chunks of {}, not the {} in chunks of {} announced",
                self.size, self.chunk_size, announce.size, announce.chunk_size
            ));
        }
        let count = chunk_count(self.size, self.chunk_size);
        let mut previous: Option<u32> = None;
        for index in &self.received {
            if *index >= count || previous.is_some_and(|p| p >= *index) {
                return Err(format!(
                    "the upload state lists chunk {index} out of order or past the {count} chunks"
                ));
            }
            previous = Some(*index);
        }
        Ok(())
    }
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

    fn announce(size: u64, chunk_size: u32) -> AnnounceBlob {
        AnnounceBlob {
            hash: "ab".repeat(32),
            size,
            mime_type: "image/jpeg".into(),
            chunk_size,
            variant: None,
        }
    }

    fn state(size: u64, chunk_size: u32, received: Vec<u32>) -> UploadState {
        UploadState {
            hash: "ab".repeat(32),
            size,
            chunk_size,
            received,
            complete: false,
        }
    }

    #[test]
    fn an_upload_state_must_answer_its_announcement() {
        let announced = announce(25, 10);
        assert_eq!(state(25, 10, vec![0, 2]).check_answers(&announced), Ok(()));
        // A hostile state: 2^40 bytes in chunks of one byte would plan 4 billion chunks.
        assert!(state(1 << 40, 1, vec![]).check_answers(&announced).is_err());
        assert!(state(25, 1, vec![]).check_answers(&announced).is_err());
        assert!(
            state(25, 10, vec![3]).check_answers(&announced).is_err(),
            "past the end"
        );
        assert!(
            state(25, 10, vec![1, 1]).check_answers(&announced).is_err(),
            "twice"
        );
        assert!(
            state(25, 10, vec![2, 0]).check_answers(&announced).is_err(),
            "out of order"
        );
        let mut other = state(25, 10, vec![]);
        other.hash = "cd".repeat(32);
        assert!(other.check_answers(&announced).is_err(), "another blob");
    }

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
    fn announcements_without_a_variant_still_decode() {
        #[derive(Serialize)]
        struct Before {
            hash: String,
            size: u64,
            mime_type: String,
            chunk_size: u32,
        }
        let old = crate::encode(&Before {
            hash: "a".repeat(64),
            size: 5,
            mime_type: "image/jpeg".into(),
            chunk_size: BLOB_CHUNK_BYTES,
        })
        .unwrap();
        let read: AnnounceBlob = crate::decode(&old, 1 << 20).unwrap();
        assert_eq!(read.variant, None);
        let new = AnnounceBlob {
            variant: Some(BlobVariant::Thumbnail),
            ..read
        };
        let back: AnnounceBlob = crate::decode(&crate::encode(&new).unwrap(), 1 << 20).unwrap();
        assert_eq!(back, new);
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert!(is_blob_hash(&"a".repeat(64)));
        assert!(!is_blob_hash(&"A".repeat(64)));
        assert!(!is_blob_hash(&"a".repeat(63)));
        assert!(!is_blob_hash("../../etc/passwd"));
    }
}
