//! Blob endpoints (`docs/blobs.md`): announce, chunk, complete, ranged download. Handlers check
//! who may do what, then call the database (`blobs::index`) and the byte store
//! (`blobs::BlobStore`) on blocking threads, never holding the database lock during file I/O.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use quartier_protocol::blobs::{
    chunk_count, chunk_range, is_blob_hash, AnnounceBlob, BlobVariant, UploadState, BLOB_CHUNK_BYTES,
};
use uuid::Uuid;

use super::auth::Device;
use super::{Ids, Wire};
use crate::blobs::{index, BlobError};
use crate::state::AppState;
use crate::storage::spaces;

/// Bytes per piece of a streamed download.
const STREAM_PIECE: usize = 64 * 1024;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::Io(format!("worker failed: {e}")))?
}

fn valid_mime(mime: &str) -> bool {
    let mut parts = mime.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(t), Some(s), None) if !t.is_empty() && !s.is_empty())
        && mime.len() <= 127
        && mime.bytes().all(|b| b.is_ascii_graphic())
}

/// `POST /v1/spaces/{space}/blobs`: announce (or resume) an upload; any member may, since every
/// role may write some kind with media.
pub async fn announce(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
    Wire(announced): Wire<AnnounceBlob>,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    if !is_blob_hash(&announced.hash) {
        return Err(BlobError::InvalidHash);
    }
    if announced.chunk_size != BLOB_CHUNK_BYTES {
        return Err(BlobError::BadRequest(format!(
            "chunk size {} is not spoken here; use {BLOB_CHUNK_BYTES}",
            announced.chunk_size
        )));
    }
    if !valid_mime(&announced.mime_type) {
        return Err(BlobError::BadRequest(
            "the MIME type must be `type/subtype`, e.g. `image/jpeg`".into(),
        ));
    }
    let limits = state.blobs.limits;
    if announced.size > limits.max_blob_bytes {
        return Err(BlobError::TooLarge {
            size: announced.size,
            limit: limits.max_blob_bytes,
        });
    }
    let variant = announced.variant.unwrap_or(BlobVariant::Original);
    if let Some(limit) = variant.max_bytes().filter(|limit| announced.size > *limit) {
        return Err(BlobError::VariantTooLarge {
            variant: variant.as_str(),
            size: announced.size,
            limit,
        });
    }
    blocking(move || {
        let (upload, discard) = {
            let conn = state.db.lock();
            if spaces::role_of(&conn, space, device.person)?.is_none() {
                return Err(crate::error::ServerError::Forbidden(
                    "you are not a member of this space".into(),
                )
                .into());
            }
            index::announce(&conn, space, device.person, &announced, &limits)?
        };
        if discard {
            state
                .blobs
                .store
                .discard_partial(&announced.hash, device.person)?;
        }
        Ok(Wire(upload))
    })
    .await
}

/// `PUT /v1/blobs/{hash}/chunks/{index}`: one chunk, raw bytes. Idempotent: sending a chunk
/// again replaces it; sending one of a stored blob changes nothing.
pub async fn put_chunk(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((hash, index)): Ids<(String, u32)>,
    body: Body,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    if !is_blob_hash(&hash) {
        return Err(BlobError::InvalidHash);
    }
    // Never buffer more than one chunk (plus one byte, to tell "too long" from "exactly full").
    let limit = BLOB_CHUNK_BYTES as usize + 1;
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        BlobError::BadRequest(format!(
            "a chunk has at most {BLOB_CHUNK_BYTES} bytes, or the body could not be read: {e}"
        ))
    })?;
    blocking(move || {
        let person = device.person;
        let row = {
            let conn = state.db.lock();
            match index::upload(&conn, &hash, person)? {
                Some(row) => row,
                // Sending a chunk of a blob one has uploaded changes nothing.
                None => match index::blob(&conn, &hash)? {
                    Some(row) if index::has_uploaded(&conn, &hash, person)? => {
                        return Ok(Wire(index::upload_state(&conn, &hash, person, &row)?));
                    }
                    _ => return Err(BlobError::UnknownUpload),
                },
            }
        };
        let count = chunk_count(row.size, row.chunk_size);
        let (start, end) = chunk_range(row.size, row.chunk_size, index)
            .ok_or(BlobError::ChunkOutOfRange { index, count })?;
        if bytes.len() as u64 != end - start {
            return Err(BlobError::ChunkLength {
                index,
                expected: end - start,
                actual: bytes.len() as u64,
            });
        }
        state.blobs.store.put_chunk(&hash, person, index, &bytes)?;
        let conn = state.db.lock();
        // Re-read: an announcement with another size may have started the upload over while
        // the chunk was written; then this chunk is not recorded (the device sends it again).
        match index::upload(&conn, &hash, person)? {
            Some(now) if now == row => index::record_chunk(&conn, &hash, person, index)?,
            _ => return Err(BlobError::UnknownUpload),
        }
        Ok(Wire(index::upload_state(&conn, &hash, person, &row)?))
    })
    .await
}

/// `POST /v1/blobs/{hash}/complete`: every chunk is there; verify the whole and accept it, or
/// discard it.
pub async fn complete(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(hash): Ids<String>,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    if !is_blob_hash(&hash) {
        return Err(BlobError::InvalidHash);
    }
    blocking(move || {
        let person = device.person;
        let _one_at_a_time = state.blobs.assembling.lock().unwrap_or_else(|p| p.into_inner());
        let row = {
            let conn = state.db.lock();
            let row = match index::upload(&conn, &hash, person)? {
                Some(row) => row,
                None => match index::blob(&conn, &hash)? {
                    Some(row) if index::has_uploaded(&conn, &hash, person)? => {
                        return Ok(Wire(index::upload_state(&conn, &hash, person, &row)?));
                    }
                    _ => return Err(BlobError::UnknownUpload),
                },
            };
            let state = index::upload_state(&conn, &hash, person, &row)?;
            let missing = quartier_protocol::blobs::missing_chunks(&state);
            if !missing.is_empty() {
                let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
                let more = if missing.len() > 20 { ", …" } else { "" };
                return Err(BlobError::MissingChunks(format!("{}{more}", shown.join(", "))));
            }
            row
        };
        match state
            .blobs
            .store
            .assemble(&hash, person, chunk_count(row.size, row.chunk_size), row.size)
        {
            Ok(()) => {}
            Err(BlobError::HashMismatch) => {
                index::forget_pending(&state.db.lock(), &hash, person)?;
                return Err(BlobError::HashMismatch);
            }
            Err(e) => return Err(e),
        }
        let conn = state.db.lock();
        index::mark_uploaded(&conn, &hash, person, &row)?;
        let stored = index::blob(&conn, &hash)?.ok_or(BlobError::NotFound)?;
        Ok(Wire(index::upload_state(&conn, &hash, person, &stored)?))
    })
    .await
}

/// A `Range` header's single byte range, resolved against `size`: `Ok(None)` without a header.
/// Public for the fuzz target `server_requests` (`docs/fuzzing.md`).
pub fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, BlobError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || {
        BlobError::BadRequest("Range must be one byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`".into())
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let spec = text.strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') {
        return Err(bad());
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(bad()),
        (true, false) => {
            let n = number(b)?;
            if n == 0 {
                return Err(BlobError::RangeNotSatisfiable { size });
            }
            (size.saturating_sub(n), size)
        }
        (false, true) => (number(a)?, size),
        (false, false) => {
            let (first, last) = (number(a)?, number(b)?);
            if last < first {
                return Err(bad());
            }
            (first, last.saturating_add(1).min(size))
        }
    };
    if start >= size {
        return Err(BlobError::RangeNotSatisfiable { size });
    }
    Ok(Some((start, end)))
}

/// `GET /v1/blobs/{hash}`: the blob, or one byte range of it (`206`), to a device whose person
/// may see an item that uses it (or who uploaded it). Streamed, never held whole in memory.
/// `HEAD` answers the same headers (`Content-Length` is the real size) without opening the file:
/// a device on a metered link checks it before fetching a thumbnail or preview.
pub async fn download(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(hash): Ids<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, BlobError> {
    let head_only = method == Method::HEAD;
    let device = device.active()?;
    if !is_blob_hash(&hash) {
        return Err(BlobError::InvalidHash);
    }
    let (row, range, reader) = {
        let state = Arc::clone(&state);
        let hash = hash.clone();
        blocking(move || {
            let row = {
                // A lookup: through a reader, one snapshot for both questions.
                let conn = state.db.read()?;
                let _snapshot = crate::storage::Snapshot::begin(&conn)?;
                let row = index::blob(&conn, &hash)?.ok_or(BlobError::NotFound)?;
                if !index::may_fetch(&conn, &hash, device.person)? {
                    return Err(BlobError::NotFound);
                }
                row
            };
            let range = parse_range(&headers, row.size)?;
            let (start, end) = range.unwrap_or((0, row.size));
            let reader = if head_only {
                None
            } else {
                Some(state.blobs.store.open_range(&hash, start, end)?)
            };
            Ok((row, range, reader))
        })
        .await?
    };
    let (start, end) = range.unwrap_or((0, row.size));
    let mut response = match reader {
        Some(reader) => stream_body(reader).into_response(),
        None => Body::empty().into_response(),
    };
    *response.status_mut() = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    let mime = HeaderValue::from_str(&row.mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static(quartier_protocol::blobs::BLOB_CONTENT_TYPE));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Content-addressed: the bytes behind a name never change.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        h.insert(header::ETAG, v);
    }
    if range.is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{}", end.saturating_sub(1), row.size))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// A blocking reader pumps pieces into a small channel; the body streams them out.
fn stream_body(reader: Box<dyn std::io::Read + Send>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        loop {
            let mut piece = vec![0u8; STREAM_PIECE];
            match reader.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => {
                    piece.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                        break; // the device hung up
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) },
        );
    Body::from_stream(stream)
}
