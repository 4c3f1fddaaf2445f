//! Blob endpoints (`docs/blobs.md`): announce, chunk, complete, ranged download. Each handler
//! reads the request, calls the endpoint's logic (`blobs::service`, plain blocking functions
//! that check who may do what, then use the database and the byte store) on a blocking thread,
//! and writes the answer.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use quartier_protocol::blobs::{AnnounceBlob, UploadState, BLOB_CHUNK_BYTES};
use uuid::Uuid;

use super::auth::Device;
use super::{Ids, Wire};
use crate::blobs::{counselling, service, BlobError};
use crate::state::AppState;

/// Bytes per piece of a streamed download.
const STREAM_PIECE: usize = 64 * 1024;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::Io(format!("worker failed: {e}")))?
}

/// `POST /v1/spaces/{space}/blobs`: announce (or resume) an upload ([`service::announce`]).
pub async fn announce(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(space): Ids<Uuid>,
    Wire(announced): Wire<AnnounceBlob>,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    blocking(move || service::announce(&state.db, &state.blobs, &device, space, &announced).map(Wire)).await
}

/// `PUT /v1/blobs/{hash}/chunks/{index}`: one chunk, raw bytes ([`service::put_chunk`]).
pub async fn put_chunk(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((hash, index)): Ids<(String, u32)>,
    body: Body,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    if !quartier_protocol::blobs::is_blob_hash(&hash) {
        return Err(BlobError::InvalidHash);
    }
    let bytes = chunk_body(body).await?;
    blocking(move || {
        service::put_chunk(&state.db, &state.blobs, device.person, &hash, index, &bytes).map(Wire)
    })
    .await
}

/// A chunk's raw body, never buffered beyond one chunk (plus one byte, to tell "too long" from
/// "exactly full").
async fn chunk_body(body: Body) -> Result<Bytes, BlobError> {
    axum::body::to_bytes(body, BLOB_CHUNK_BYTES as usize + 1)
        .await
        .map_err(|e| {
            BlobError::BadRequest(format!(
                "a chunk has at most {BLOB_CHUNK_BYTES} bytes, or the body could not be read: {e}"
            ))
        })
}

/// `POST /v1/blobs/{hash}/complete`: every chunk is there; verify the whole and accept it, or
/// discard it ([`service::complete`]).
pub async fn complete(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(hash): Ids<String>,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    blocking(move || service::complete(&state.db, &state.blobs, device.person, &hash).map(Wire)).await
}

/// A `Range` header's single byte range, resolved against `size`: `Ok(None)` without a header.
/// Public for the fuzz target `server_requests` (`docs/fuzzing.md`).
pub fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, BlobError> {
    service::parse_range(headers.get(header::RANGE).map(HeaderValue::as_bytes), size)
}

/// `GET /v1/blobs/{hash}`: the blob, or one byte range of it (`206`), to a device whose person
/// may see an item that uses it (or who uploaded it) ([`service::download`]). Streamed, never
/// held whole in memory. `HEAD` answers the same headers (`Content-Length` is the real size)
/// without opening the file: a device on a metered link checks it before fetching a thumbnail
/// or preview.
pub async fn download(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(hash): Ids<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, BlobError> {
    let head_only = method == Method::HEAD;
    let device = device.active()?;
    let download = {
        let hash = hash.clone();
        blocking(move || {
            let range = headers.get(header::RANGE).map(HeaderValue::as_bytes);
            service::download(&state.db, &state.blobs, &device, &hash, range, head_only)
        })
        .await?
    };
    Ok(respond(&hash, download))
}

/// The answer to a download the device may make: the bytes streamed, with the headers of a
/// content-addressed, ranged resource.
fn respond(hash: &str, download: service::Download) -> Response {
    let service::Download { row, range, reader } = download;
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
    response
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

/// The conversation access token a request carries (`quartier-access`), if any.
fn access_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(quartier_protocol::counselling::ACCESS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /v1/counselling/{conversation}/attachments`: announce (or resume) the upload of an
/// encrypted attachment ([`counselling::announce`]).
pub async fn announce_attachment(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids(conversation): Ids<Uuid>,
    headers: HeaderMap,
    Wire(announced): Wire<AnnounceBlob>,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    let token = access_token(&headers);
    blocking(move || {
        let asker = counselling::Asker {
            device: &device,
            token: token.as_deref(),
        };
        counselling::announce(&state.db, &state.blobs, &asker, conversation, &announced).map(Wire)
    })
    .await
}

/// `PUT /v1/counselling/{conversation}/attachments/{hash}/chunks/{index}`: one chunk of an
/// attachment, raw bytes ([`counselling::put_chunk`]).
pub async fn put_attachment_chunk(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((conversation, hash, index)): Ids<(Uuid, String, u32)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    if !quartier_protocol::blobs::is_blob_hash(&hash) {
        return Err(BlobError::InvalidHash);
    }
    let token = access_token(&headers);
    let bytes = chunk_body(body).await?;
    blocking(move || {
        let asker = counselling::Asker {
            device: &device,
            token: token.as_deref(),
        };
        counselling::put_chunk(
            &state.db,
            &state.blobs,
            &asker,
            conversation,
            &hash,
            index,
            &bytes,
        )
        .map(Wire)
    })
    .await
}

/// `POST /v1/counselling/{conversation}/attachments/{hash}/complete`
/// ([`counselling::complete`]).
pub async fn complete_attachment(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((conversation, hash)): Ids<(Uuid, String)>,
    headers: HeaderMap,
) -> Result<Wire<UploadState>, BlobError> {
    let device = device.active()?;
    let token = access_token(&headers);
    blocking(move || {
        let asker = counselling::Asker {
            device: &device,
            token: token.as_deref(),
        };
        counselling::complete(&state.db, &state.blobs, &asker, conversation, &hash).map(Wire)
    })
    .await
}

/// `GET /v1/counselling/{conversation}/attachments/{hash}`: an attachment's ciphertext, or a
/// byte range of it, to the conversation's devices ([`counselling::download`]).
pub async fn download_attachment(
    State(state): State<Arc<AppState>>,
    device: Device,
    Ids((conversation, hash)): Ids<(Uuid, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, BlobError> {
    let head_only = method == Method::HEAD;
    let device = device.active()?;
    let download = {
        let hash = hash.clone();
        blocking(move || {
            let token = access_token(&headers);
            let asker = counselling::Asker {
                device: &device,
                token: token.as_deref(),
            };
            let range = headers.get(header::RANGE).map(HeaderValue::as_bytes);
            counselling::download(
                &state.db,
                &state.blobs,
                &asker,
                conversation,
                &hash,
                range,
                head_only,
            )
        })
        .await?
    };
    Ok(respond(&hash, download))
}
