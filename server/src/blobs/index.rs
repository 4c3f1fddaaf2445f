//! The database side of blobs (`storage/002_blobs.sql`, `004_blob_uploads.sql`): stored blobs,
//! uploads under way (one per blob and uploader, with their received chunks), per-space claims
//! (quota, and the record that a blob's bytes were uploaded into a space) and the reference
//! index from item documents to blobs. Touches only the server database; never the bytes.

use quartier_protocol::blobs::{chunk_count, AnnounceBlob, UploadState};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{BlobError, BlobLimits};
use crate::storage::{log, now_ms, spaces};

/// A blob the server holds, or an upload under way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    pub size: u64,
    pub mime_type: String,
    pub chunk_size: u32,
    /// The whole blob is verified and readable.
    pub stored: bool,
}

/// The stored (verified) blob `hash`, if the server holds it.
pub fn blob(conn: &Connection, hash: &str) -> Result<Option<BlobRow>, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT size, mime_type, chunk_size FROM blobs WHERE hash = ?1 AND stored_at IS NOT NULL",
        )?
        .query_row([hash], |r| {
            Ok(BlobRow {
                size: r.get::<_, i64>(0)? as u64,
                mime_type: r.get(1)?,
                chunk_size: r.get::<_, i64>(2)? as u32,
                stored: true,
            })
        })
        .optional()?)
}

/// `person`'s upload of `hash` under way, if any.
pub fn upload(conn: &Connection, hash: &str, person: Uuid) -> Result<Option<BlobRow>, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT size, mime_type, chunk_size FROM blob_uploads WHERE hash = ?1 AND person_id = ?2",
        )?
        .query_row(params![hash, person.to_string()], |r| {
            Ok(BlobRow {
                size: r.get::<_, i64>(0)? as u64,
                mime_type: r.get(1)?,
                chunk_size: r.get::<_, i64>(2)? as u32,
                stored: false,
            })
        })
        .optional()?)
}

/// Indices of the chunks of `person`'s upload of `hash` received so far, ascending.
pub fn received(conn: &Connection, hash: &str, person: Uuid) -> Result<Vec<u32>, BlobError> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx FROM blob_upload_chunks WHERE hash = ?1 AND person_id = ?2 ORDER BY idx",
    )?;
    let rows = stmt.query_map(params![hash, person.to_string()], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row? as u32);
    }
    Ok(out)
}

/// The upload state a device resumes from: a stored blob is complete, an upload under way
/// lists `person`'s own chunks.
pub fn upload_state(
    conn: &Connection,
    hash: &str,
    person: Uuid,
    row: &BlobRow,
) -> Result<UploadState, BlobError> {
    Ok(UploadState {
        hash: hash.to_owned(),
        size: row.size,
        chunk_size: row.chunk_size,
        received: if row.stored {
            (0..chunk_count(row.size, row.chunk_size)).collect()
        } else {
            received(conn, hash, person)?
        },
        complete: row.stored,
    })
}

/// Blob bytes charged to a space (pending uploads included), each blob once.
pub fn space_usage(conn: &Connection, space: Uuid) -> Result<u64, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(size), 0) FROM
               (SELECT max(size) AS size FROM blob_claims WHERE space_id = ?1 GROUP BY hash)",
        )?
        .query_row([space.to_string()], |r| r.get::<_, i64>(0))? as u64)
}

/// Whether `person`'s bytes of `hash` were verified as uploaded into `space`.
fn uploaded_into(conn: &Connection, space: Uuid, hash: &str, person: Uuid) -> Result<bool, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM blob_claims
             WHERE space_id = ?1 AND hash = ?2 AND person_id = ?3 AND uploaded_at IS NOT NULL",
        )?
        .query_row(params![space.to_string(), hash, person.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records an announced upload and answers where it stands. Nothing of the answer depends on
/// what others uploaded: only this person's own uploads are `complete` (into this space, or
/// into another one: they hold the bytes, so the claim in this space is recorded at once and
/// nothing is sent again), and only this person's own chunks are listed (announcing a hash
/// reveals nothing about it). Charges the space (once per blob) and starts or resumes this
/// person's upload; an upload of theirs announced before with another size starts over (the
/// returned flag: discard its chunks). The caller has checked the hash, the size limits and
/// the membership.
pub fn announce(
    conn: &Connection,
    space: Uuid,
    person: Uuid,
    announced: &AnnounceBlob,
    limits: &BlobLimits,
) -> Result<(UploadState, bool), BlobError> {
    let tx = conn.unchecked_transaction()?;
    let hash = announced.hash.as_str();
    let who = person.to_string();
    if uploaded_into(&tx, space, hash, person)? {
        if let Some(row) = blob(&tx, hash)? {
            return Ok((upload_state(&tx, hash, person, &row)?, false));
        }
    }
    let now = now_ms();
    // Bytes this person uploaded (verified) into another space, of the announced size.
    let uploaded_before = match blob(&tx, hash)? {
        Some(row) if row.size == announced.size && has_uploaded(&tx, hash, person)? => Some(row),
        _ => None,
    };
    if let Some(row) = uploaded_before {
        claim(&tx, space, hash, person, announced.size, Some(now), limits)?;
        // An upload of theirs under way for this hash (another size) is moot now.
        let discard_partial = upload(&tx, hash, person)?.is_some();
        if discard_partial {
            forget_upload(&tx, hash, &who)?;
        }
        let state = upload_state(&tx, hash, person, &row)?;
        tx.commit()?;
        return Ok((state, discard_partial));
    }
    let claimed_size: Option<i64> = tx
        .prepare_cached("SELECT size FROM blob_claims WHERE space_id = ?1 AND hash = ?2 AND person_id = ?3")?
        .query_row(params![space.to_string(), hash, who], |r| r.get(0))
        .optional()?;
    if claimed_size != Some(announced.size as i64) {
        claim(&tx, space, hash, person, announced.size, None, limits)?;
    }
    let mut discard_partial = false;
    let row = match upload(&tx, hash, person)? {
        Some(row) if row.size == announced.size && row.chunk_size == announced.chunk_size => {
            tx.prepare_cached("UPDATE blob_uploads SET touched_at = ?3 WHERE hash = ?1 AND person_id = ?2")?
                .execute(params![hash, who, now])?;
            row
        }
        existing => {
            // This person announced it before with another size or chunk size: both cannot be
            // right, the latest announcement starts their upload over (the hash decides at
            // completion anyway). Nobody else's upload is touched.
            if existing.is_some() {
                tx.prepare_cached("DELETE FROM blob_upload_chunks WHERE hash = ?1 AND person_id = ?2")?
                    .execute(params![hash, who])?;
                discard_partial = true;
            }
            tx.prepare_cached(
                "INSERT INTO blob_uploads (hash, person_id, size, mime_type, chunk_size, created_at, touched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (hash, person_id) DO UPDATE SET size = excluded.size,
                    mime_type = excluded.mime_type, chunk_size = excluded.chunk_size,
                    touched_at = excluded.touched_at",
            )?
            .execute(params![
                hash,
                who,
                announced.size as i64,
                announced.mime_type,
                announced.chunk_size,
                now
            ])?;
            BlobRow {
                size: announced.size,
                mime_type: announced.mime_type.clone(),
                chunk_size: announced.chunk_size,
                stored: false,
            }
        }
    };
    let state = upload_state(&tx, hash, person, &row)?;
    tx.commit()?;
    Ok((state, discard_partial))
}

/// Records `person`'s claim of `size` bytes of `hash` in `space` (uploaded at `uploaded_at`, or
/// only reserving quota), refusing it if the space's quota would be exceeded. The caller's
/// transaction rolls a refused claim back when it is dropped.
fn claim(
    tx: &Connection,
    space: Uuid,
    hash: &str,
    person: Uuid,
    size: u64,
    uploaded_at: Option<i64>,
    limits: &BlobLimits,
) -> Result<(), BlobError> {
    let used = space_usage(tx, space)?;
    tx.prepare_cached(
        "INSERT INTO blob_claims (space_id, hash, person_id, size, created_at, uploaded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (space_id, hash, person_id) DO UPDATE SET
            size = excluded.size, uploaded_at = coalesce(excluded.uploaded_at, uploaded_at)",
    )?
    .execute(params![
        space.to_string(),
        hash,
        person.to_string(),
        size as i64,
        now_ms(),
        uploaded_at
    ])?;
    if space_usage(tx, space)? > limits.space_quota_bytes {
        return Err(BlobError::QuotaExceeded {
            quota: limits.space_quota_bytes,
            used,
            size,
        });
    }
    Ok(())
}

/// Whether `person` has uploaded `hash` (verified) into some space: sending chunks of a stored
/// blob then changes nothing and is answered as complete.
pub fn has_uploaded(conn: &Connection, hash: &str, person: Uuid) -> Result<bool, BlobError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM blob_claims WHERE hash = ?1 AND person_id = ?2 AND uploaded_at IS NOT NULL LIMIT 1",
        )?
        .query_row(params![hash, person.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A chunk of `person`'s upload is durable.
pub fn record_chunk(conn: &Connection, hash: &str, person: Uuid, index: u32) -> Result<(), BlobError> {
    let who = person.to_string();
    conn.prepare_cached(
        "INSERT OR IGNORE INTO blob_upload_chunks (hash, person_id, idx) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![hash, who, index])?;
    conn.prepare_cached("UPDATE blob_uploads SET touched_at = ?3 WHERE hash = ?1 AND person_id = ?2")?
        .execute(params![hash, who, now_ms()])?;
    Ok(())
}

/// `person`'s upload of `hash` is verified: the blob is stored (if it was not already), the
/// spaces they announced it in with this size may now read it, and the upload is done.
pub fn mark_uploaded(conn: &Connection, hash: &str, person: Uuid, row: &BlobRow) -> Result<(), BlobError> {
    let tx = conn.unchecked_transaction()?;
    let (who, now) = (person.to_string(), now_ms());
    tx.prepare_cached(
        "INSERT INTO blobs (hash, size, mime_type, chunk_size, created_at, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![hash, row.size as i64, row.mime_type, row.chunk_size, now])?;
    tx.prepare_cached(
        "UPDATE blob_claims SET uploaded_at = ?4
         WHERE hash = ?1 AND person_id = ?2 AND size = ?3 AND uploaded_at IS NULL",
    )?
    .execute(params![hash, who, row.size as i64, now])?;
    // Announced with another size somewhere: that reservation was for bytes that never came.
    tx.prepare_cached("DELETE FROM blob_claims WHERE hash = ?1 AND person_id = ?2 AND uploaded_at IS NULL")?
        .execute(params![hash, who])?;
    forget_upload(&tx, hash, &who)?;
    tx.commit()?;
    Ok(())
}

fn forget_upload(conn: &Connection, hash: &str, who: &str) -> Result<(), BlobError> {
    conn.prepare_cached("DELETE FROM blob_upload_chunks WHERE hash = ?1 AND person_id = ?2")?
        .execute(params![hash, who])?;
    conn.prepare_cached("DELETE FROM blob_uploads WHERE hash = ?1 AND person_id = ?2")?
        .execute(params![hash, who])?;
    Ok(())
}

/// Forgets `person`'s upload of `hash` (its bytes did not match, or it was abandoned) and frees
/// the quota its pending claims held. Nobody else's upload or claim is touched.
pub fn forget_pending(conn: &Connection, hash: &str, person: Uuid) -> Result<(), BlobError> {
    let tx = conn.unchecked_transaction()?;
    let who = person.to_string();
    forget_upload(&tx, hash, &who)?;
    tx.prepare_cached("DELETE FROM blob_claims WHERE hash = ?1 AND person_id = ?2 AND uploaded_at IS NULL")?
        .execute(params![hash, who])?;
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

/// Whether `person` may fetch `hash`. Only through a space the blob's bytes were uploaded into
/// (a reference or an announcement alone grants nothing): they uploaded it there themselves and
/// are still a member, or they may read an item of that space that references it (the rules
/// pull uses).
pub fn may_fetch(conn: &Connection, hash: &str, person: Uuid) -> Result<bool, BlobError> {
    let own: bool = conn
        .prepare_cached(
            "SELECT 1 FROM blob_claims c
             JOIN members m ON m.space_id = c.space_id AND m.person_id = c.person_id
             WHERE c.hash = ?1 AND c.person_id = ?2 AND c.uploaded_at IS NOT NULL
               AND m.revoked_at IS NULL LIMIT 1",
        )?
        .query_row(params![hash, person.to_string()], |_| Ok(()))
        .optional()?
        .is_some();
    if own {
        return Ok(true);
    }
    let docs: Vec<String> = conn
        .prepare_cached(
            "SELECT r.doc_id FROM blob_refs r JOIN docs d ON d.doc_id = r.doc_id
             WHERE r.hash = ?1 AND EXISTS (
                SELECT 1 FROM blob_claims c
                WHERE c.space_id = d.space_id AND c.hash = r.hash AND c.uploaded_at IS NOT NULL)",
        )?
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
