//! Blobs (media files): chunked, resumable uploads verified by BLAKE3 before acceptance, ranged
//! downloads, per-space quotas and the reference index behind the download permission
//! (`docs/blobs.md`).
//!
//! - [`BlobStore`]: where the bytes live (the only part that touches them); [`fs::FsBlobStore`]
//!   keeps them under the data folder, a later S3-compatible backend implements the same trait;
//! - [`index`]: the database side (blobs, received chunks, quota claims, which items reference
//!   which blob); touches only the server database;
//! - [`service`]: what each endpoint does, as blocking functions of the two (the HTTP handlers
//!   and the in-process harness call them);
//! - [`BlobError`]: every refusal, with its HTTP status and stable code.

pub mod counselling;
pub mod fs;
pub mod gc;
pub mod index;
pub mod service;

use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quartier_protocol::ErrorBody;
use uuid::Uuid;

use crate::error::ServerError;

/// Where blob bytes are kept. Calls block (file or network I/O): use them from blocking tasks.
///
/// Uploads write chunks to a partial area, one upload per blob and uploader (two people
/// announcing the same hash never share or overwrite chunks); `assemble` turns an upload into
/// a readable blob only if the whole content hashes to its name, so a blob that can be read is
/// always a verified one.
pub trait BlobStore: Send + Sync {
    /// Writes chunk `index` of `uploader`'s upload of `hash` durably (on return it survives a
    /// crash). Writing the same chunk again replaces it.
    fn put_chunk(&self, hash: &str, uploader: Uuid, index: u32, bytes: &[u8]) -> Result<(), BlobError>;

    /// Joins chunks `0..count` of `uploader`'s upload of `hash` in order and checks their
    /// BLAKE3 against `hash` and their total length against `size`, also when the blob is
    /// stored already (then the verified bytes are simply dropped). On success the blob is
    /// stored and the upload's chunks are gone; on a mismatch the chunks are discarded and
    /// [`BlobError::HashMismatch`] returned.
    fn assemble(&self, hash: &str, uploader: Uuid, count: u32, size: u64) -> Result<(), BlobError>;

    /// Removes whatever chunks of `uploader`'s upload of `hash` the partial area holds.
    fn discard_partial(&self, hash: &str, uploader: Uuid) -> Result<(), BlobError>;

    /// Every upload the partial area holds chunks of, as (hash, uploader): garbage collection
    /// removes those the database no longer knows (a chunk that arrived as its upload was
    /// dropped).
    fn partial_uploads(&self) -> Result<Vec<(String, Uuid)>, BlobError>;

    /// Bytes `start..end` of a stored blob.
    fn open_range(&self, hash: &str, start: u64, end: u64) -> Result<Box<dyn Read + Send>, BlobError>;

    /// Whether a stored (verified) blob exists.
    fn exists(&self, hash: &str) -> Result<bool, BlobError>;

    /// Removes a stored blob (no error if it is absent).
    fn delete(&self, hash: &str) -> Result<(), BlobError>;
}

/// Size limits, from the server configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLimits {
    pub max_blob_bytes: u64,
    pub space_quota_bytes: u64,
}

/// What request handlers share about blobs.
pub struct Blobs {
    pub store: Arc<dyn BlobStore>,
    pub limits: BlobLimits,
    /// One assembly at a time: it reads and hashes a whole blob, and two completions of the same
    /// upload must not interleave.
    pub assembling: Mutex<()>,
}

impl Blobs {
    pub fn new(store: Arc<dyn BlobStore>, limits: BlobLimits) -> Blobs {
        Blobs {
            store,
            limits,
            assembling: Mutex::new(()),
        }
    }
}

/// Every way a blob request can fail.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("a blob is named by its BLAKE3 hash: 64 lowercase hex digits")]
    InvalidHash,
    #[error("{0}")]
    BadRequest(String),
    #[error("the blob has {size} bytes; this server accepts at most {limit} bytes per blob")]
    TooLarge { size: u64, limit: u64 },
    #[error("a {variant} may have at most {limit} bytes; this one has {size} (upload it as an original)")]
    VariantTooLarge {
        variant: &'static str,
        size: u64,
        limit: u64,
    },
    #[error(
        "the space's media quota is {quota} bytes and {used} are in use; a blob of {size} bytes does not fit"
    )]
    QuotaExceeded { quota: u64, used: u64, size: u64 },
    #[error("chunk {index} must have {expected} bytes, this one has {actual}")]
    ChunkLength { index: u32, expected: u64, actual: u64 },
    #[error("chunk {index} is past the end: this blob has {count} chunks")]
    ChunkOutOfRange { index: u32, count: u32 },
    #[error(
        "no upload of this blob is under way for you: announce it first (POST /v1/spaces/{{space}}/blobs)"
    )]
    UnknownUpload,
    #[error("chunks missing before the blob can be completed: {0}")]
    MissingChunks(String),
    #[error("the uploaded bytes do not hash to the blob's name (BLAKE3); they were discarded")]
    HashMismatch,
    #[error("no blob with this hash is stored, or no item you may see uses it")]
    NotFound,
    #[error("the requested range is outside the blob ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    #[error("the server's blob storage is full; nothing of this request was stored")]
    StorageFull,
    #[error("blob storage: {0}")]
    Io(String),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<rusqlite::Error> for BlobError {
    fn from(e: rusqlite::Error) -> Self {
        BlobError::Server(e.into())
    }
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            BlobError::StorageFull
        } else {
            BlobError::Io(e.to_string())
        }
    }
}

impl BlobError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            BlobError::InvalidHash | BlobError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            BlobError::ChunkLength { .. } | BlobError::ChunkOutOfRange { .. } => {
                (StatusCode::BAD_REQUEST, "bad_chunk")
            }
            BlobError::TooLarge { .. } | BlobError::VariantTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            BlobError::QuotaExceeded { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"),
            BlobError::UnknownUpload => (StatusCode::NOT_FOUND, "unknown_upload"),
            BlobError::MissingChunks(_) => (StatusCode::CONFLICT, "missing_chunks"),
            BlobError::HashMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"),
            BlobError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            BlobError::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "bad_range"),
            BlobError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            BlobError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            BlobError::Server(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for BlobError {
    fn into_response(self) -> Response {
        if let BlobError::Server(e) = self {
            return e.into_response();
        }
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "blob request failed");
        } else {
            tracing::debug!(error = %self, code, "blob request refused");
        }
        let body = ErrorBody {
            code: code.into(),
            message: self.to_string(),
            protocol_versions: vec![],
            request_id: None,
        };
        let bytes = quartier_protocol::encode(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(quartier_protocol::CONTENT_TYPE),
        );
        if let BlobError::RangeNotSatisfiable { size } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}
