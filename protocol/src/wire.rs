//! Encoding of messages on the wire: CBOR, compressed with zstd. Decoding is bounded (a body
//! that would decompress beyond [`MAX_DECODED_BYTES`] is refused once that much is inflated) and
//! every failure is a typed [`WireError`].

use std::cell::RefCell;
use std::io::Read;

use serde::{de::DeserializeOwned, Serialize};

/// Largest decompressed body either side accepts.
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// zstd level: 3 is the library default, fast on low-end phones with most of the gain.
const ZSTD_LEVEL: i32 = 3;
/// Largest window a body may use (8 MiB): level 3 uses at most 2 MiB.
const MAX_WINDOW_LOG: u32 = 23;

/// Why bytes could not be turned into a message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("the body is not zstd-compressed data: {0}")]
    Compression(String),
    #[error("the body decompresses to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not a valid message: {0}")]
    Malformed(String),
    #[error("the message could not be encoded: {0}")]
    Encode(String),
}

thread_local! {
    // One zstd context per thread for each direction, kept between messages: making one costs
    // more than compressing a small sync message (a few hundred kilobytes of tables to set up
    // and clear each time).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// Encodes a message: CBOR, then zstd.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(message, &mut cbor).map_err(|e| WireError::Encode(e.to_string()))?;
    let failed = |e: std::io::Error| WireError::Encode(e.to_string());
    COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let compressor = match &mut *slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(failed)?),
        };
        let mut body = compressor.compress(&cbor).map_err(failed)?;
        body.shrink_to_fit();
        Ok(body)
    })
}

/// CBOR shorter than this stays uncompressed in [`encode_compact`]: on a few dozen bytes
/// zstd's frame and tables cost more bytes than they save, and most of the time of encoding.
const COMPACT_PLAIN_BELOW: usize = 256;

/// zstd's magic number, as a frame starts. No CBOR message of ours (a map or an array) starts
/// with these bytes: a CBOR value starting with 0x28 is the integer -9, complete in that byte.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Encodes a record kept on a device (a stored creation form, an edit kept as a patch): CBOR,
/// compressed with zstd only when it is long enough to gain from it. Read it with
/// [`decode_compact`], which also reads what [`encode`] made. Not for the wire: [`decode`]
/// takes only compressed bodies.
pub fn encode_compact<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(message, &mut cbor).map_err(|e| WireError::Encode(e.to_string()))?;
    if cbor.len() < COMPACT_PLAIN_BELOW {
        return Ok(cbor);
    }
    encode(message)
}

/// Decodes what [`encode_compact`] or [`encode`] made, refusing records longer than `limit`
/// bytes once decompressed.
pub fn decode_compact<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, WireError> {
    if body.starts_with(&ZSTD_MAGIC) {
        return decode(body, limit);
    }
    if body.len() > limit {
        return Err(WireError::TooLarge { limit });
    }
    ciborium::from_reader(body).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Bodies whose frame says they inflate to more than this are read as they inflate (a page of a
/// sync); smaller ones (most records) are inflated whole first, which is faster for them.
const STREAM_ABOVE: u64 = 64 * 1024;

/// Decodes a message, refusing bodies that inflate beyond `limit` bytes.
///
/// A large body is parsed while it inflates: its CBOR is never whole in memory beside the
/// message it becomes (a 1 MiB page of creation forms inflates to about 4 MiB, which a growing
/// buffer held in 8).
pub fn decode<T: DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, WireError> {
    let bound = limit as u64 + 1;
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let context = match &mut *slot {
            Some(context) => context,
            None => {
                let mut context = zstd::zstd_safe::DCtx::create();
                // A frame may ask for a window of up to 128 MiB, which the context would then
                // keep for the thread: no sender of ours uses more than 2 MiB (level 3).
                context
                    .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(MAX_WINDOW_LOG))
                    .map_err(|code| WireError::Compression(zstd::zstd_safe::get_error_name(code).into()))?;
                slot.insert(context)
            }
        };
        // `with_context` starts a new session, so a body refused half-way (cut off, over the
        // limit) leaves nothing behind for the next one.
        let decoder = zstd::stream::read::Decoder::with_context(body, context);
        let declared = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
        match declared {
            Some(size) if size > limit as u64 => Err(WireError::TooLarge { limit }),
            Some(size) if size <= STREAM_ABOVE => {
                let mut cbor = Vec::with_capacity(size.min(bound) as usize);
                decoder
                    .take(bound)
                    .read_to_end(&mut cbor)
                    .map_err(|e| WireError::Compression(e.to_string()))?;
                if cbor.len() > limit {
                    return Err(WireError::TooLarge { limit });
                }
                ciborium::from_reader(cbor.as_slice()).map_err(|e| WireError::Malformed(e.to_string()))
            }
            _ => {
                let mut inflated =
                    std::io::BufReader::with_capacity(STREAM_ABOVE as usize, decoder.take(bound));
                let parsed = ciborium::from_reader(&mut inflated);
                if parsed.is_err() {
                    // Told apart as before: a body that inflates beyond the limit is too
                    // large, whatever its first bytes.
                    let _ = std::io::copy(&mut inflated, &mut std::io::sink());
                }
                if inflated.get_ref().limit() == 0 {
                    return Err(WireError::TooLarge { limit });
                }
                parsed.map_err(|e| match e {
                    ciborium::de::Error::Io(e) => WireError::Compression(e.to_string()),
                    e => WireError::Malformed(e.to_string()),
                })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn request() -> SyncRequest {
        SyncRequest {
            protocol: crate::PROTOCOL_VERSION,
            cursors: vec![SpaceCursor {
                space: Uuid::from_u128(1),
                after: Some("c:42".into()),
                members_after: None,
                signatures_after: None,
            }],
            push: vec![Record::Change {
                space: Uuid::from_u128(1),
                doc: Uuid::from_u128(2),
                kind: DocKind::Item,
                bytes: vec![1, 2, 3],
                device: Uuid::from_u128(3),
                signature: vec![7; 64],
            }],
            budget_bytes: 1 << 20,
            accepts: vec![crate::ACCEPTS_CREATED.into()],
            counselling: None,
            credentials: None,
            moderation: None,
            help: None,
        }
    }

    #[test]
    fn compact_records_are_plain_cbor_when_short_and_read_either_way() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Note {
            text: String,
        }
        let short = Note { text: "kurz".into() };
        let plain = encode_compact(&short).unwrap();
        assert!(
            !plain.starts_with(&ZSTD_MAGIC),
            "a short record is not compressed"
        );
        assert_eq!(decode_compact::<Note>(&plain, 4096).unwrap(), short);
        // A long record is compressed, and what `encode` made (as stored before) reads too.
        let long = Note {
            text: "lang ".repeat(200),
        };
        let compressed = encode_compact(&long).unwrap();
        assert!(compressed.starts_with(&ZSTD_MAGIC));
        assert!(compressed.len() < 200);
        assert_eq!(decode_compact::<Note>(&compressed, 4096).unwrap(), long);
        assert_eq!(
            decode_compact::<Note>(&encode(&short).unwrap(), 4096).unwrap(),
            short
        );
        // Bounds and garbage give typed errors.
        assert_eq!(
            decode_compact::<Note>(&plain, 5),
            Err(WireError::TooLarge { limit: 5 })
        );
        assert_eq!(
            decode_compact::<Note>(&compressed, 64),
            Err(WireError::TooLarge { limit: 64 })
        );
        assert!(matches!(
            decode_compact::<Note>(&[0xA1, 0x64, 0xFF], 4096),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode_compact::<Note>(&[0x28, 0xB5, 0x2F, 0xFD, 0, 0], 4096),
            Err(WireError::Compression(_))
        ));
        // The wire itself still takes only compressed bodies.
        assert!(decode::<Note>(&plain, 4096).is_err());
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&request()).unwrap();
        assert_eq!(
            decode::<SyncRequest>(&bytes, MAX_DECODED_BYTES).unwrap(),
            request()
        );
    }

    #[test]
    fn unknown_record_types_are_skipped_not_fatal() {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Future {
            SealedMessage { ciphertext: Vec<u8> },
        }
        #[derive(Serialize)]
        struct FutureRequest {
            protocol: u32,
            cursors: Vec<SpaceCursor>,
            push: Vec<Future>,
            budget_bytes: u32,
            extra_field: String,
        }
        let bytes = encode(&FutureRequest {
            protocol: 1,
            cursors: vec![],
            push: vec![Future::SealedMessage { ciphertext: vec![1] }],
            budget_bytes: 10,
            extra_field: "from a newer peer".into(),
        })
        .unwrap();
        let decoded: SyncRequest = decode(&bytes, MAX_DECODED_BYTES).unwrap();
        assert_eq!(decoded.push, vec![Record::Unknown]);
    }

    #[test]
    fn bombs_and_garbage_are_typed_errors() {
        let bomb = zstd::encode_all(vec![0u8; 2 * 1024 * 1024].as_slice(), 19).unwrap();
        assert_eq!(
            decode::<SyncRequest>(&bomb, 1024 * 1024),
            Err(WireError::TooLarge { limit: 1024 * 1024 })
        );
        assert!(matches!(
            decode::<SyncRequest>(b"hello", 1024),
            Err(WireError::Compression(_))
        ));
        let not_cbor = zstd::encode_all(&b"\xff\xff\xff"[..], 3).unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&not_cbor, 1024),
            Err(WireError::Malformed(_))
        ));
        let full = encode(&request()).unwrap();
        assert!(decode::<SyncRequest>(&full[..full.len() / 2], MAX_DECODED_BYTES).is_err());
    }

    /// A body larger than [`STREAM_ABOVE`] once inflated is parsed as it inflates: the same
    /// message, the same errors.
    #[test]
    fn a_large_body_is_read_as_it_inflates_with_the_same_outcomes() {
        let mut large = request();
        let Record::Change { bytes, .. } = &mut large.push[0] else {
            panic!("a change")
        };
        // Incompressible, so that the body stays large: about 300 KiB inflated.
        *bytes = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut cbor = Vec::new();
        ciborium::into_writer(&large, &mut cbor).unwrap();
        assert!(cbor.len() as u64 > STREAM_ABOVE);
        for body in [
            encode(&large).unwrap(),
            zstd::encode_all(cbor.as_slice(), 3).unwrap(),
        ] {
            // With and without the inflated size in the frame.
            assert_eq!(decode::<SyncRequest>(&body, MAX_DECODED_BYTES).unwrap(), large);
            assert_eq!(
                decode::<SyncRequest>(&body, 200_000),
                Err(WireError::TooLarge { limit: 200_000 })
            );
            assert!(decode::<SyncRequest>(&body[..body.len() / 2], MAX_DECODED_BYTES).is_err());
        }
        let mut garbage = cbor.clone();
        garbage[0] = 0xff;
        let body = zstd::encode_all(garbage.as_slice(), 3).unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&body, MAX_DECODED_BYTES),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_body_asking_for_a_huge_window_is_refused_before_memory_is_taken() {
        let mut cbor = Vec::new();
        ciborium::into_writer(&request(), &mut cbor).unwrap();
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder
            .set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
            .unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &cbor).unwrap();
        let wide = encoder.finish().unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&wide, MAX_DECODED_BYTES),
            Err(WireError::Compression(_))
        ));
        // The thread's context still decodes the next body.
        let full = encode(&request()).unwrap();
        assert_eq!(
            decode::<SyncRequest>(&full, MAX_DECODED_BYTES).unwrap(),
            request()
        );
    }

    #[test]
    fn a_body_refused_half_way_leaves_the_thread_s_context_clean_for_the_next() {
        let full = encode(&request()).unwrap();
        let bomb = zstd::encode_all(vec![0u8; 2 * 1024 * 1024].as_slice(), 19).unwrap();
        // Each leaves this thread's context mid-frame: stopped at the limit, cut off.
        assert!(decode::<SyncRequest>(&bomb, 1024).is_err());
        assert_eq!(
            decode::<SyncRequest>(&full, MAX_DECODED_BYTES).unwrap(),
            request()
        );
        assert!(decode::<SyncRequest>(&full[..full.len() - 3], MAX_DECODED_BYTES).is_err());
        assert_eq!(
            decode::<SyncRequest>(&full, MAX_DECODED_BYTES).unwrap(),
            request()
        );
        // Bodies made by other encoders (streaming, no size in the header) decode too.
        let mut cbor = Vec::new();
        ciborium::into_writer(&request(), &mut cbor).unwrap();
        let streamed = zstd::encode_all(cbor.as_slice(), 3).unwrap();
        assert_eq!(
            decode::<SyncRequest>(&streamed, MAX_DECODED_BYTES).unwrap(),
            request()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<SyncRequest>(&bytes, 4096);
            let _ = decode::<SyncResponse>(&bytes, 4096);
        }

        #[test]
        fn corrupted_messages_never_panic(flip in 0usize..200, value in any::<u8>()) {
            let mut bytes = encode(&request()).unwrap();
            let i = flip % bytes.len();
            bytes[i] = value;
            let _ = decode::<SyncRequest>(&bytes, 4096);
        }
    }
}
