//! Documents held in memory for permission checks and snapshots: loaded lazily from the
//! database, evicted least-recently-used, so memory stays bounded whatever the number of spaces
//! and documents.
//!
//! The cache never holds a state the database does not: a push takes a document out
//! ([`DocCache::take`]), changes it, and puts it back ([`DocCache::put`]) only once the change's
//! rows are written; a document whose rows did not commit is forgotten ([`DocCache::forget`])
//! and loaded again from the database when next needed.
//!
//! Only the writer fills the cache. Readers (`storage::readers`) each see the database as of
//! their own snapshot, which may be older than a cached state: a push may have committed since,
//! or be about to commit what it already put back. A reader therefore uses a cached state only
//! if the last change in it is at or before its snapshot's log position
//! ([`DocCache::get_as_of`]), and never inserts what it loads: the cache's states are always the
//! newest the writer knows, so "no newer than my snapshot" means "exactly my snapshot's".

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use automerge::Automerge;
use lru::LruCache;
use rusqlite::Connection;
use uuid::Uuid;

use crate::error::ServerError;
use crate::storage::log;
use quartier_domain::document::guarded;

/// Compact a document's log into a snapshot after this many changes.
pub const SNAPSHOT_AFTER_CHANGES: i64 = 64;

/// A document as the database holds it.
pub struct Doc {
    pub doc: Automerge,
    /// What the database holds of it, in bytes: its snapshot and the changes after it. An upper
    /// bound of its saved size, what the work and size budgets of a push count.
    pub stored_bytes: usize,
    /// The log position of the last change in this state (0 for a document the server does not
    /// have). Which readers may use it: those whose snapshot reaches this position.
    pub seq: i64,
}

pub struct DocCache {
    docs: Mutex<LruCache<Uuid, Arc<Doc>>>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            docs: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<Uuid, Arc<Doc>>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state of a document (empty if the server has none of it), to read. Only
    /// under the writer's lock (`Db::lock`), with its connection: what it loads is cached.
    pub fn get(&self, conn: &Connection, doc: Uuid) -> Result<Arc<Doc>, ServerError> {
        if let Some(d) = self.cache().get(&doc) {
            return Ok(d.clone());
        }
        let loaded = Arc::new(load(conn, doc)?);
        self.cache().put(doc, loaded.clone());
        Ok(loaded)
    }

    /// A document as a read snapshot sees it (`conn` inside that snapshot, `visible` its last
    /// log position): the cached state if it holds nothing after `visible`, else the document
    /// loaded through `conn`, which is not cached (it may be older than what the writer holds,
    /// and the cache must only ever move forward).
    pub fn get_as_of(&self, conn: &Connection, doc: Uuid, visible: i64) -> Result<Arc<Doc>, ServerError> {
        if let Some(d) = self.cache().get(&doc).filter(|d| d.seq <= visible).cloned() {
            return Ok(d);
        }
        Ok(Arc::new(load(conn, doc)?))
    }

    /// The current state of a document, taken out of the cache to be changed: until it is
    /// [`put`](Self::put) back, the next use loads it from the database.
    pub fn take(&self, conn: &Connection, doc: Uuid) -> Result<Doc, ServerError> {
        match self.cache().pop(&doc) {
            Some(d) => Ok(Arc::try_unwrap(d).unwrap_or_else(|shared| Doc {
                doc: shared.doc.clone(),
                stored_bytes: shared.stored_bytes,
                seq: shared.seq,
            })),
            None => load(conn, doc),
        }
    }

    /// Puts a document back once the database holds exactly this state.
    pub fn put(&self, doc: Uuid, state: Doc) {
        self.cache().put(doc, Arc::new(state));
    }

    /// Forgets a document (after a failed transaction).
    pub fn forget(&self, doc: Uuid) {
        self.cache().pop(&doc);
    }

    /// Number of documents in memory.
    pub fn len(&self) -> usize {
        self.cache().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Loads a document from its snapshot and the changes logged after it.
pub fn load(conn: &Connection, doc: Uuid) -> Result<Doc, ServerError> {
    let (snapshot, changes, seq) = log::doc_state(conn, doc)?;
    let mut stored_bytes = snapshot.as_ref().map_or(0, Vec::len);
    let mut loaded = match snapshot {
        Some(bytes) => guarded::load_stored(&bytes)
            .map_err(|e| ServerError::Internal(format!("snapshot of {doc}: {e}")))?,
        None => Automerge::new(),
    };
    stored_bytes += changes.iter().map(Vec::len).sum::<usize>();
    let changes = changes
        .into_iter()
        .map(guarded::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Internal(format!("stored change of {doc}: {e}")))?;
    guarded::apply_stored(&mut loaded, changes)
        .map_err(|e| ServerError::Internal(format!("stored changes of {doc}: {e}")))?;
    Ok(Doc {
        doc: loaded,
        stored_bytes,
        seq,
    })
}
