//! Garbage collection of blobs (`docs/blobs.md`, "Garbage collection"): uploads abandoned for a
//! grace period are dropped (their chunks deleted, their quota released); a space's claim on a
//! blob that no item of the space has referenced for a grace period is released; a blob no
//! space claims any more is deleted. Runs periodically inside `serve` and on
//! `quartier-server admin gc`.

use rusqlite::params;
use uuid::Uuid;

use super::{index, BlobError, Blobs};
use crate::storage::Db;

/// What one collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Uploads under way that nobody touched for the grace period, dropped.
    pub abandoned_uploads: usize,
    /// Space claims released (unreferenced uploads, pending reservations without an upload).
    pub released_claims: usize,
    /// Stored blobs deleted because no space claims them any more.
    pub deleted_blobs: usize,
    pub freed_bytes: u64,
}

/// Whether an item document of the claim's space references the claimed blob now.
/// A counselling conversation's claims (`blobs::counselling`) are its attachments: referenced
/// for as long as the conversation exists (erasing it deletes them).
const REFERENCED: &str = "(EXISTS (SELECT 1 FROM blob_refs r JOIN docs d ON d.doc_id = r.doc_id
                          WHERE r.hash = blob_claims.hash AND d.space_id = blob_claims.space_id)
                          OR EXISTS (SELECT 1 FROM conversations cv
                                     WHERE cv.conversation_id = blob_claims.space_id))";

/// One collection at `now_ms`: what has been unreferenced or untouched for `grace_ms` goes.
/// Holds the blob store's assembly lock throughout, so no upload completes in between.
pub fn collect(db: &Db, blobs: &Blobs, grace_ms: i64, now_ms: i64) -> Result<GcReport, BlobError> {
    let _no_completions = blobs.assembling.lock().unwrap_or_else(|p| p.into_inner());
    let cutoff = now_ms.saturating_sub(grace_ms.max(0));
    let mut report = GcReport::default();

    // 1. Uploads under way that nobody touched for the grace period.
    let abandoned: Vec<(String, String)> = {
        let conn = db.lock();
        let mut stmt = conn.prepare("SELECT hash, person_id FROM blob_uploads WHERE touched_at <= ?1")?;
        let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (hash, person) in abandoned {
        let Ok(person) = Uuid::parse_str(&person) else {
            continue;
        };
        index::forget_pending(&db.lock(), &hash, person)?;
        blobs.store.discard_partial(&hash, person)?;
        report.abandoned_uploads += 1;
    }

    // Chunk folders of uploads the database does not know (a chunk written as its upload was
    // dropped). Uploads are recorded before their first chunk, so none of these is under way.
    for (hash, person) in blobs.store.partial_uploads()? {
        if index::upload(&db.lock(), &hash, person)?.is_none() {
            blobs.store.discard_partial(&hash, person)?;
        }
    }

    let deleted: Vec<(String, i64)> = {
        let conn = db.lock();
        let tx = conn.unchecked_transaction()?;
        // Reservations whose upload is gone (completed with another size, or dropped above).
        report.released_claims += tx.execute(
            "DELETE FROM blob_claims WHERE uploaded_at IS NULL AND created_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM blob_uploads u
                               WHERE u.hash = blob_claims.hash AND u.person_id = blob_claims.person_id)",
            [cutoff],
        )?;
        // 2. Claims of uploaded blobs: mark when first seen unreferenced, clear the mark when
        // referenced again, release once marked for the grace period.
        tx.execute(
            &format!(
                "UPDATE blob_claims SET unreferenced_since = NULL
                 WHERE unreferenced_since IS NOT NULL AND {REFERENCED}"
            ),
            [],
        )?;
        tx.execute(
            &format!(
                "UPDATE blob_claims SET unreferenced_since = ?1
                 WHERE uploaded_at IS NOT NULL AND unreferenced_since IS NULL AND NOT {REFERENCED}"
            ),
            [now_ms],
        )?;
        report.released_claims += tx.execute(
            "DELETE FROM blob_claims WHERE uploaded_at IS NOT NULL AND unreferenced_since <= ?1",
            [cutoff],
        )?;
        // 3. Blobs no space claims any more.
        let gone = forget_unclaimed(&tx)?;
        // Whatever erasures left for `drop_erased` is settled by this run too.
        tx.execute("DELETE FROM erased_blobs", [])?;
        tx.commit()?;
        gone
    };
    delete_bytes(blobs, deleted, &mut report)?;
    Ok(report)
}

/// Deletes now the attachments of erased counselling conversations that nobody claims any
/// more (`erased_blobs`, filled by the erasure): called right after a sync that erased, so
/// that their bytes do not wait for the next collection. Work in proportion to what was
/// erased; nothing to do is one lookup.
pub fn drop_erased(db: &Db, blobs: &Blobs) -> Result<GcReport, BlobError> {
    let _no_completions = blobs.assembling.lock().unwrap_or_else(|p| p.into_inner());
    let mut report = GcReport::default();
    let deleted = {
        let conn = db.lock();
        let tx = conn.unchecked_transaction()?;
        let gone: Vec<(String, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT b.hash, b.size FROM erased_blobs e JOIN blobs b ON b.hash = e.hash
                 WHERE NOT EXISTS (SELECT 1 FROM blob_claims c WHERE c.hash = e.hash)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (hash, _) in &gone {
            tx.execute("DELETE FROM blobs WHERE hash = ?1", params![hash])?;
        }
        tx.execute("DELETE FROM erased_blobs", [])?;
        tx.commit()?;
        gone
    };
    delete_bytes(blobs, deleted, &mut report)?;
    Ok(report)
}

/// Removes the rows of stored blobs no claim holds; returns them (hash, size).
fn forget_unclaimed(tx: &rusqlite::Connection) -> Result<Vec<(String, i64)>, BlobError> {
    let gone: Vec<(String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT hash, size FROM blobs
             WHERE NOT EXISTS (SELECT 1 FROM blob_claims c WHERE c.hash = blobs.hash)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (hash, _) in &gone {
        tx.execute("DELETE FROM blobs WHERE hash = ?1", params![hash])?;
    }
    Ok(gone)
}

/// Rows first, then files: a crash in between leaves a file without a row (harmless: the next
/// upload of that content finds it verified), never a row without its file.
fn delete_bytes(blobs: &Blobs, gone: Vec<(String, i64)>, report: &mut GcReport) -> Result<(), BlobError> {
    for (hash, size) in gone {
        blobs.store.delete(&hash)?;
        report.deleted_blobs += 1;
        report.freed_bytes += size.max(0) as u64;
    }
    Ok(())
}

/// `quartier-server admin gc`: one collection over the data folder of `config`.
pub fn collect_in(config: &crate::Config, grace_secs: u64) -> Result<GcReport, crate::ServerError> {
    let db = Db::open(&config.data_dir)?;
    let store = super::fs::FsBlobStore::attach(&config.data_dir.join("blobs"))
        .map_err(|e| crate::ServerError::Startup(format!("blob folder: {e}")))?;
    let blobs = Blobs::new(
        std::sync::Arc::new(store),
        super::BlobLimits {
            max_blob_bytes: config.max_blob_bytes,
            space_quota_bytes: config.space_quota_bytes,
        },
    );
    let grace_ms = i64::try_from(grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    collect(&db, &blobs, grace_ms, crate::storage::now_ms()).map_err(|e| match e {
        BlobError::Server(e) => e,
        other => crate::ServerError::Internal(other.to_string()),
    })
}
