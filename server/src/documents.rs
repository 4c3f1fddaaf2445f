//! Documents held in memory for permission checks and snapshots: loaded lazily from the
//! database, evicted least-recently-used, so memory stays bounded whatever the number of spaces
//! and documents.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use automerge::{Automerge, Change};
use lru::LruCache;
use rusqlite::Connection;
use uuid::Uuid;

use crate::error::ServerError;
use crate::storage::log;

/// Compact a document's log into a snapshot after this many changes.
const SNAPSHOT_AFTER_CHANGES: i64 = 64;

pub struct DocCache {
    docs: Mutex<LruCache<Uuid, Automerge>>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            docs: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The current state of a document (empty if the server has none of it).
    pub fn get(&self, conn: &Connection, doc: Uuid) -> Result<Automerge, ServerError> {
        if let Some(d) = self.docs.lock().unwrap_or_else(|p| p.into_inner()).get(&doc) {
            return Ok(d.clone());
        }
        let (snapshot, changes) = log::doc_state(conn, doc)?;
        let mut loaded = match snapshot {
            Some(bytes) => Automerge::load(&bytes)
                .map_err(|e| ServerError::Internal(format!("snapshot of {doc}: {e}")))?,
            None => Automerge::new(),
        };
        let changes = changes
            .into_iter()
            .map(Change::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServerError::Internal(format!("stored change of {doc}: {e}")))?;
        loaded
            .apply_changes(changes)
            .map_err(|e| ServerError::Internal(format!("stored changes of {doc}: {e}")))?;
        self.put(doc, loaded.clone());
        Ok(loaded)
    }

    /// Replaces the cached state after a change was stored, compacting when due.
    pub fn stored(
        &self,
        conn: &Connection,
        doc: Uuid,
        state: Automerge,
        seq: i64,
    ) -> Result<(), ServerError> {
        if log::changes_since_snapshot(conn, doc)? >= SNAPSHOT_AFTER_CHANGES {
            log::store_snapshot(conn, doc, &state.save(), seq)?;
        }
        self.put(doc, state);
        Ok(())
    }

    /// Forgets a document (after a failed transaction).
    pub fn forget(&self, doc: Uuid) {
        self.docs.lock().unwrap_or_else(|p| p.into_inner()).pop(&doc);
    }

    fn put(&self, doc: Uuid, state: Automerge) {
        self.docs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(doc, state);
    }

    /// Number of documents in memory.
    pub fn len(&self) -> usize {
        self.docs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
