//! Persistence of Automerge documents: a compacted snapshot plus incremental changes per
//! document, loaded into memory only for a write or a merge and dropped afterwards, so memory
//! does not grow with the number of documents. Every function here runs inside the caller's
//! transaction.

use automerge::{ActorId, Automerge, Change, ChangeHash};
use rusqlite::{params, Connection, OptionalExtension};

use crate::document::{guarded, DocKind};
use crate::error::{Error, Result};

/// Compact when a document has more incremental changes than this…
const COMPACT_AFTER_CHANGES: i64 = 64;
/// …or when its changes outweigh its snapshot and this many bytes.
const COMPACT_AFTER_BYTES: i64 = 16 * 1024;

/// A document loaded for a write or merge, with the storage figures it was loaded with.
pub(crate) struct LoadedDoc {
    pub doc: Automerge,
    pub kind: DocKind,
    pub space_id: Option<String>,
    pub snapshot_bytes: i64,
    pub change_bytes: i64,
    pub change_count: i64,
}

impl LoadedDoc {
    /// An empty document that is not stored yet.
    pub fn new(kind: DocKind, actor: &ActorId) -> Self {
        Self {
            doc: Automerge::new().with_actor(actor.clone()),
            kind,
            space_id: None,
            snapshot_bytes: 0,
            change_bytes: 0,
            change_count: 0,
        }
    }

    /// Bytes the document takes in the store.
    pub fn stored_bytes(&self) -> i64 {
        self.snapshot_bytes + self.change_bytes
    }
}

/// Loads a document, or `None` if the store has no such document.
pub(crate) fn load(conn: &Connection, doc_id: &str, actor: &ActorId) -> Result<Option<LoadedDoc>> {
    let row = conn
        .prepare_cached(
            "SELECT kind, space_id, snapshot, snapshot_bytes, change_bytes, change_count
             FROM documents WHERE doc_id = ?1",
        )?
        .query_row([doc_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((kind, space_id, snapshot, snapshot_bytes, change_bytes, change_count)) = row else {
        return Ok(None);
    };
    let kind =
        DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("document {doc_id} has kind {kind}")))?;
    let mut doc = match snapshot {
        Some(bytes) => {
            guarded::load_stored(&bytes).map_err(|e| Error::Corrupt(format!("snapshot of {doc_id}: {e}")))?
        }
        None => Automerge::new(),
    };
    doc.set_actor(actor.clone());
    let mut stmt = conn.prepare_cached("SELECT bytes FROM doc_changes WHERE doc_id = ?1 ORDER BY id")?;
    let changes = stmt
        .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))?
        .map(|bytes| {
            let bytes = bytes?;
            guarded::decode(bytes).map_err(|e| Error::Corrupt(format!("stored change of {doc_id}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if !changes.is_empty() {
        guarded::apply_stored(&mut doc, changes)
            .map_err(|e| Error::Corrupt(format!("stored changes of {doc_id}: {e}")))?;
    }
    Ok(Some(LoadedDoc {
        doc,
        kind,
        space_id,
        snapshot_bytes,
        change_bytes,
        change_count,
    }))
}

/// Stores one change of a document (creating the document row if needed). Returns false when
/// the store already had that change.
pub(crate) fn store_change(
    conn: &Connection,
    doc_id: &str,
    loaded: &mut LoadedDoc,
    change: &Change,
    now_ms: i64,
) -> Result<bool> {
    conn.prepare_cached(
        "INSERT INTO documents (doc_id, kind, space_id, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (doc_id) DO UPDATE SET space_id = coalesce(excluded.space_id, space_id),
                                            updated_at = excluded.updated_at",
    )?
    .execute(params![doc_id, loaded.kind.as_str(), loaded.space_id, now_ms])?;
    let bytes = change.raw_bytes();
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO doc_changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)")?
        .execute(params![doc_id, change.hash().as_ref(), bytes])?;
    if inserted == 1 {
        loaded.change_bytes += bytes.len() as i64;
        loaded.change_count += 1;
        conn.prepare_cached("UPDATE documents SET change_bytes = ?2, change_count = ?3 WHERE doc_id = ?1")?
            .execute(params![doc_id, loaded.change_bytes, loaded.change_count])?;
    }
    Ok(inserted == 1)
}

/// Replaces incremental changes by a snapshot when they have grown; changes whose
/// dependencies are still missing are kept, since a snapshot only holds applied history.
pub(crate) fn compact_if_due(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<bool> {
    let due = loaded.change_count > COMPACT_AFTER_CHANGES
        || loaded.change_bytes > loaded.snapshot_bytes.max(COMPACT_AFTER_BYTES);
    if !due {
        return Ok(false);
    }
    compact(conn, doc_id, loaded)?;
    Ok(true)
}

/// Writes a snapshot of the document and removes the changes it contains.
pub(crate) fn compact(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<()> {
    let snapshot = guarded::save(&loaded.doc).map_err(|e| Error::Corrupt(format!("saving {doc_id}: {e}")))?;
    let mut pending = Vec::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT id, hash, length(bytes) FROM doc_changes WHERE doc_id = ?1")?;
        let rows = stmt.query_map([doc_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (id, hash, len) = row?;
            let applied = ChangeHash::try_from(hash.as_slice())
                .map(|h| loaded.doc.get_change_meta_by_hash(&h).is_some())
                .unwrap_or(false);
            pending.push((id, applied, len));
        }
    }
    let mut kept_bytes = 0;
    let mut kept_count = 0;
    for (id, applied, len) in pending {
        if applied {
            conn.prepare_cached("DELETE FROM doc_changes WHERE id = ?1")?
                .execute([id])?;
        } else {
            kept_bytes += len;
            kept_count += 1;
        }
    }
    loaded.snapshot_bytes = snapshot.len() as i64;
    loaded.change_bytes = kept_bytes;
    loaded.change_count = kept_count;
    conn.prepare_cached(
        "UPDATE documents SET snapshot = ?2, snapshot_bytes = ?3, change_bytes = ?4, change_count = ?5
         WHERE doc_id = ?1",
    )?
    .execute(params![
        doc_id,
        snapshot,
        loaded.snapshot_bytes,
        kept_bytes,
        kept_count
    ])?;
    Ok(())
}

/// What becomes of a document's undelivered records when the document is erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    /// The content itself is being erased (or replaced): its records go with it.
    Erase,
    /// Only this device loses the document (a purge), whose records were set aside on purpose
    /// and say what they must (`purge.rs`).
    Keep,
}

/// Removes a document and all its changes and outbox entries, and its undelivered records as
/// `records` says.
pub(crate) fn erase(conn: &Connection, doc_id: &str, records: Records) -> Result<()> {
    conn.execute("DELETE FROM doc_changes WHERE doc_id = ?1", [doc_id])?;
    conn.execute("DELETE FROM outbox WHERE doc_id = ?1", [doc_id])?;
    if records == Records::Erase {
        conn.execute("DELETE FROM undelivered WHERE doc_id = ?1", [doc_id])?;
    }
    conn.execute("DELETE FROM documents WHERE doc_id = ?1", [doc_id])?;
    Ok(())
}

/// Queues a change for the server.
pub(crate) fn enqueue(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    space_id: &str,
    change: &Change,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (doc_id, kind, space_id, hash, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![doc_id, kind.as_str(), space_id, change.hash().as_ref(), change.raw_bytes(), now_ms])?;
    Ok(())
}

/// This device's actor id, created on first open.
pub(crate) fn device_actor(conn: &Connection, now_ms: i64) -> Result<ActorId> {
    let existing: Option<Vec<u8>> = conn
        .query_row("SELECT actor FROM device WHERE singleton = 1", [], |r| r.get(0))
        .optional()?;
    if let Some(bytes) = existing {
        return Ok(ActorId::from(bytes));
    }
    let actor = ActorId::random();
    conn.execute(
        "INSERT INTO device (singleton, actor, created_at) VALUES (1, ?1, ?2)",
        params![actor.to_bytes(), now_ms],
    )?;
    Ok(actor)
}
