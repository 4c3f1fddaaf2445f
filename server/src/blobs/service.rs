//! What each blob endpoint does, without HTTP: plain blocking functions of the database, the
//! byte store and the (active) device that asks. The axum handlers (`http::blobs`) read the
//! request, call these on a blocking thread and write the answer; the in-process sync harness
//! (`server/tests/sim`) calls the same functions, so the endpoints' logic is what it tests.
//! No function holds the database lock during file I/O.

use std::io::Read;

use quartier_protocol::blobs::{
    chunk_count, chunk_range, is_blob_hash, AnnounceBlob, BlobVariant, UploadState, BLOB_CHUNK_BYTES,
};
use uuid::Uuid;

use super::index::{self, BlobRow};
use super::{BlobError, Blobs};
use crate::error::ServerError;
use crate::storage::{accounts::DeviceRecord, spaces, Db, Snapshot};

fn valid_mime(mime: &str) -> bool {
    let mut parts = mime.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(t), Some(s), None) if !t.is_empty() && !s.is_empty())
        && mime.len() <= 127
        && mime.bytes().all(|b| b.is_ascii_graphic())
}

/// Announces (or resumes) an upload into `space`; any member may, since every role may write
/// some kind with media.
pub fn announce(
    db: &Db,
    blobs: &Blobs,
    device: &DeviceRecord,
    space: Uuid,
    announced: &AnnounceBlob,
) -> Result<UploadState, BlobError> {
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
    let limits = blobs.limits;
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
    let (upload, discard) = {
        let conn = db.lock();
        if spaces::role_of(&conn, space, device.person)?.is_none() {
            return Err(ServerError::Forbidden("you are not a member of this space".into()).into());
        }
        index::announce(&conn, space, device.person, announced, &limits)?
    };
    if discard {
        blobs.store.discard_partial(&announced.hash, device.person)?;
    }
    Ok(upload)
}

/// Stores chunk `index` of `uploader`'s upload of `hash` (a person's, or a counselling
/// conversation's: `blobs::counselling`). Idempotent: sending a chunk again replaces it;
/// sending one of a blob the uploader has uploaded changes nothing.
pub fn put_chunk(
    db: &Db,
    blobs: &Blobs,
    uploader: Uuid,
    hash: &str,
    index: u32,
    bytes: &[u8],
) -> Result<UploadState, BlobError> {
    if !is_blob_hash(hash) {
        return Err(BlobError::InvalidHash);
    }
    let person = uploader;
    let row = {
        let conn = db.lock();
        match index::upload(&conn, hash, person)? {
            Some(row) => row,
            None => match index::blob(&conn, hash)? {
                Some(row) if index::has_uploaded(&conn, hash, person)? => {
                    return index::upload_state(&conn, hash, person, &row);
                }
                _ => return Err(BlobError::UnknownUpload),
            },
        }
    };
    let count = chunk_count(row.size, row.chunk_size);
    let (start, end) =
        chunk_range(row.size, row.chunk_size, index).ok_or(BlobError::ChunkOutOfRange { index, count })?;
    if bytes.len() as u64 != end - start {
        return Err(BlobError::ChunkLength {
            index,
            expected: end - start,
            actual: bytes.len() as u64,
        });
    }
    blobs.store.put_chunk(hash, person, index, bytes)?;
    let conn = db.lock();
    // Re-read: an announcement with another size may have started the upload over while the
    // chunk was written; then this chunk is not recorded (the device sends it again).
    match index::upload(&conn, hash, person)? {
        Some(now) if now == row => index::record_chunk(&conn, hash, person, index)?,
        _ => return Err(BlobError::UnknownUpload),
    }
    index::upload_state(&conn, hash, person, &row)
}

/// Every chunk of `uploader`'s upload of `hash` is there: verifies the whole and accepts it,
/// or discards it.
pub fn complete(db: &Db, blobs: &Blobs, uploader: Uuid, hash: &str) -> Result<UploadState, BlobError> {
    if !is_blob_hash(hash) {
        return Err(BlobError::InvalidHash);
    }
    let person = uploader;
    let _one_at_a_time = blobs.assembling.lock().unwrap_or_else(|p| p.into_inner());
    let row = {
        let conn = db.lock();
        let row = match index::upload(&conn, hash, person)? {
            Some(row) => row,
            None => match index::blob(&conn, hash)? {
                Some(row) if index::has_uploaded(&conn, hash, person)? => {
                    return index::upload_state(&conn, hash, person, &row);
                }
                _ => return Err(BlobError::UnknownUpload),
            },
        };
        let state = index::upload_state(&conn, hash, person, &row)?;
        let missing = quartier_protocol::blobs::missing_chunks(&state);
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
            let more = if missing.len() > 20 { ", …" } else { "" };
            return Err(BlobError::MissingChunks(format!("{}{more}", shown.join(", "))));
        }
        row
    };
    match blobs
        .store
        .assemble(hash, person, chunk_count(row.size, row.chunk_size), row.size)
    {
        Ok(()) => {}
        Err(BlobError::HashMismatch) => {
            index::forget_pending(&db.lock(), hash, person)?;
            return Err(BlobError::HashMismatch);
        }
        Err(e) => return Err(e),
    }
    let conn = db.lock();
    index::mark_uploaded(&conn, hash, person, &row)?;
    let stored = index::blob(&conn, hash)?.ok_or(BlobError::NotFound)?;
    index::upload_state(&conn, hash, person, &stored)
}

/// A download the device may make: the blob, the byte range asked for (`None`: all of it) and,
/// unless only the headers were asked for, a reader of those bytes.
pub struct Download {
    pub row: BlobRow,
    pub range: Option<(u64, u64)>,
    pub reader: Option<Box<dyn Read + Send>>,
}

/// Opens `hash` for a device whose person may see an item that uses it (or who uploaded it);
/// to anyone else it does not exist. `range` is the `Range` header's value, if there was one.
pub fn download(
    db: &Db,
    blobs: &Blobs,
    device: &DeviceRecord,
    hash: &str,
    range: Option<&[u8]>,
    head_only: bool,
) -> Result<Download, BlobError> {
    open(db, blobs, hash, range, head_only, |conn| {
        index::may_fetch(conn, hash, device.person)
    })
}

/// Opens `hash` if `may_fetch` (asked in the same snapshot as the lookup) says yes; otherwise,
/// like a blob the server does not hold, it is `NotFound`.
pub fn open(
    db: &Db,
    blobs: &Blobs,
    hash: &str,
    range: Option<&[u8]>,
    head_only: bool,
    may_fetch: impl FnOnce(&rusqlite::Connection) -> Result<bool, BlobError>,
) -> Result<Download, BlobError> {
    if !is_blob_hash(hash) {
        return Err(BlobError::InvalidHash);
    }
    let row = {
        // A lookup: through a reader, one snapshot for both questions.
        let conn = db.read()?;
        let _snapshot = Snapshot::begin(&conn)?;
        let row = index::blob(&conn, hash)?.ok_or(BlobError::NotFound)?;
        if !may_fetch(&conn)? {
            return Err(BlobError::NotFound);
        }
        row
    };
    let range = parse_range(range, row.size)?;
    let (start, end) = range.unwrap_or((0, row.size));
    let reader = if head_only {
        None
    } else {
        Some(blobs.store.open_range(hash, start, end)?)
    };
    Ok(Download { row, range, reader })
}

/// A `Range` header's single byte range, resolved against `size`: `Ok(None)` without a header.
pub fn parse_range(value: Option<&[u8]>, size: u64) -> Result<Option<(u64, u64)>, BlobError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bad = || {
        BlobError::BadRequest("Range must be one byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`".into())
    };
    if !value.is_ascii() {
        return Err(bad());
    }
    let text = std::str::from_utf8(value).map_err(|_| bad())?.trim();
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
