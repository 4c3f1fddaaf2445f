//! The database side of blobs (`storage/002_blobs.sql`): blob rows, received chunks, per-space
//! quota claims and the reference index from item documents to blobs. Touches only the server
//! database; never the bytes.

use quartier_protocol::blobs::{chunk_count, AnnounceBlob, UploadState};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{BlobError, BlobLimits};
use crate::storage::{log, now_ms, spaces};

/// A blob the server holds or is receiving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    pub size: u64,
    pub mime_type: String,
    pub chunk_size: u32,
    /// The whole blob is verified and readable.
    pub stored: bool,
}

pub fn blob(conn: &Connection, hash: &str) -> Result<Option<BlobRow>, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT size, mime_type, chunk_size, stored_at IS NOT NULL FROM blobs WHERE hash = ?1",
        )?
        .query_row([hash], |r| {
            Ok(BlobRow {
                size: r.get::<_, i64>(0)? as u64,
                mime_type: r.get(1)?,
                chunk_size: r.get::<_, i64>(2)? as u32,
                stored: r.get(3)?,
            })
        })
        .optional()?)
}

/// Indices of the chunks received so far, ascending.
pub fn received(conn: &Connection, hash: &str) -> Result<Vec<u32>, BlobError> {
    let mut stmt = conn.prepare_cached("SELECT idx FROM blob_chunks WHERE hash = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([hash], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row? as u32);
    }
    Ok(out)
}

/// The upload state a device resumes from.
pub fn upload_state(conn: &Connection, hash: &str, row: &BlobRow) -> Result<UploadState, BlobError> {
    Ok(UploadState {
        hash: hash.to_owned(),
        size: row.size,
        chunk_size: row.chunk_size,
        received: if row.stored {
            (0..chunk_count(row.size, row.chunk_size)).collect()
        } else {
            received(conn, hash)?
        },
        complete: row.stored,
    })
}

/// Blob bytes charged to a space (pending uploads included).
pub fn space_usage(conn: &Connection, space: Uuid) -> Result<u64, BlobError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(sum(size), 0) FROM blob_claims WHERE space_id = ?1")?
        .query_row([space.to_string()], |r| r.get::<_, i64>(0))? as u64)
}

/// Records an announced upload: charges the space (once per blob), creates the pending blob if
/// the server has none, and answers where the upload stands. The caller has checked the hash,
/// the size limit and the membership.
pub fn announce(
    conn: &Connection,
    space: Uuid,
    person: Uuid,
    announced: &AnnounceBlob,
    limits: &BlobLimits,
) -> Result<(UploadState, bool), BlobError> {
    let tx = conn.unchecked_transaction()?;
    let hash = announced.hash.as_str();
    let claimed: bool = tx
        .prepare_cached("SELECT 1 FROM blob_claims WHERE space_id = ?1 AND hash = ?2")?
        .query_row(params![space.to_string(), hash], |_| Ok(()))
        .optional()?
        .is_some();
    if !claimed {
        let used = space_usage(&tx, space)?;
        if used.saturating_add(announced.size) > limits.space_quota_bytes {
            return Err(BlobError::QuotaExceeded {
                quota: limits.space_quota_bytes,
                used,
                size: announced.size,
            });
        }
        tx.prepare_cached(
            "INSERT INTO blob_claims (space_id, hash, person_id, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            space.to_string(),
            hash,
            person.to_string(),
            announced.size as i64,
            now_ms()
        ])?;
    }
    let mut discard_partial = false;
    let row = match blob(&tx, hash)? {
        Some(row) if row.stored || (row.size == announced.size && row.chunk_size == announced.chunk_size) => {
            row
        }
        existing => {
            // A pending upload announced with another size or chunk size cannot both be right:
            // the latest announcement starts over (the hash decides at completion anyway).
            if existing.is_some() {
                tx.prepare_cached("DELETE FROM blob_chunks WHERE hash = ?1")?
                    .execute([hash])?;
                tx.prepare_cached("DELETE FROM blobs WHERE hash = ?1")?
                    .execute([hash])?;
                discard_partial = true;
            }
            tx.prepare_cached(
                "INSERT INTO blobs (hash, size, mime_type, chunk_size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                hash,
                announced.size as i64,
                announced.mime_type,
                announced.chunk_size,
                now_ms()
            ])?;
            BlobRow {
                size: announced.size,
                mime_type: announced.mime_type.clone(),
                chunk_size: announced.chunk_size,
                stored: false,
            }
        }
    };
    let state = upload_state(&tx, hash, &row)?;
    tx.commit()?;
    Ok((state, discard_partial))
}

/// Whether `person` announced `hash` in a space they still belong to (and so may send chunks
/// of it, and fetch it before any item references it).
pub fn is_uploader(conn: &Connection, hash: &str, person: Uuid) -> Result<bool, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM blob_claims c JOIN members m ON m.space_id = c.space_id AND m.person_id = c.person_id
             WHERE c.hash = ?1 AND c.person_id = ?2 AND m.revoked_at IS NULL LIMIT 1",
        )?
        .query_row(params![hash, person.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn record_chunk(conn: &Connection, hash: &str, index: u32) -> Result<(), BlobError> {
    conn.prepare_cached("INSERT OR IGNORE INTO blob_chunks (hash, idx) VALUES (?1, ?2)")?
        .execute(params![hash, index])?;
    Ok(())
}

/// The blob is verified and stored: its chunks are no longer tracked.
pub fn mark_stored(conn: &Connection, hash: &str) -> Result<(), BlobError> {
    let tx = conn.unchecked_transaction()?;
    tx.prepare_cached("UPDATE blobs SET stored_at = ?2 WHERE hash = ?1")?
        .execute(params![hash, now_ms()])?;
    tx.prepare_cached("DELETE FROM blob_chunks WHERE hash = ?1")?
        .execute([hash])?;
    tx.commit()?;
    Ok(())
}

/// Forgets a pending upload whose bytes did not match its hash, and frees the quota it held.
pub fn forget_pending(conn: &Connection, hash: &str) -> Result<(), BlobError> {
    let tx = conn.unchecked_transaction()?;
    let stored: bool = tx
        .prepare_cached("SELECT stored_at IS NOT NULL FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if !stored {
        tx.prepare_cached("DELETE FROM blob_chunks WHERE hash = ?1")?
            .execute([hash])?;
        tx.prepare_cached("DELETE FROM blob_claims WHERE hash = ?1")?
            .execute([hash])?;
        tx.prepare_cached("DELETE FROM blobs WHERE hash = ?1")?
            .execute([hash])?;
    }
    tx.commit()?;
    Ok(())
}

/// Replaces the blobs an item document references (called with each stored change, inside its
/// transaction). Hashes that are not blob names are ignored.
pub fn set_refs<'a>(
    conn: &Connection,
    doc: Uuid,
    hashes: impl IntoIterator<Item = &'a str>,
) -> Result<(), BlobError> {
    let doc = doc.to_string();
    conn.prepare_cached("DELETE FROM blob_refs WHERE doc_id = ?1")?
        .execute([&doc])?;
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO blob_refs (doc_id, hash) VALUES (?1, ?2)")?;
    for hash in hashes {
        if quartier_protocol::blobs::is_blob_hash(hash) {
            insert.execute(params![doc, hash])?;
        }
    }
    Ok(())
}

/// Whether `person` may fetch `hash`: they may read at least one item that references it (the
/// rules pull uses), or they uploaded it into a space they still belong to.
pub fn may_fetch(conn: &Connection, hash: &str, person: Uuid) -> Result<bool, BlobError> {
    if is_uploader(conn, hash, person)? {
        return Ok(true);
    }
    let docs: Vec<String> = conn
        .prepare_cached("SELECT doc_id FROM blob_refs WHERE hash = ?1")?
        .query_map([hash], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let who = person.to_string();
    for doc in docs {
        let Ok(doc) = Uuid::parse_str(&doc) else { continue };
        let Some(meta) = log::doc_meta(conn, doc)? else {
            continue;
        };
        let Some(role) = spaces::role_of(conn, meta.space, person)? else {
            continue;
        };
        if crate::sync::may_read(&meta, &who, role) {
            return Ok(true);
        }
    }
    Ok(false)
}
