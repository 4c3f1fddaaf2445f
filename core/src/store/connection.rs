//! Opening SQLite connections with the settings the store relies on, and the small pool of
//! read-only connections that queries use while the single writer commits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::key::{self, StoreKey};
use crate::error::Result;

/// How long a connection waits for a lock before failing (checkpoints, a second process).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle readers kept open; more are opened under load and closed when returned.
const MAX_IDLE_READERS: usize = 4;
/// Prepared statements kept per connection. The store's paths use more distinct statements
/// than rusqlite's default of 16: with that cache, `prepare_cached` evicted and compiled the
/// same SQL again on every write and sync round.
pub(crate) const STATEMENT_CACHE: usize = 128;

/// Opens the writer connection; with a store key, that key is its first statement.
pub(crate) fn open_writer(path: &Path, store_key: Option<&StoreKey>) -> Result<Connection> {
    let conn = Connection::open(path)?;
    key::apply(&conn, store_key)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer and the writer never blocks readers.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is synced at every commit, so a write is durable when the call returns,
    // power loss included (NORMAL would only survive a process crash).
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Projection rows cascade away with their item.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Erasure must not leave deleted content readable in free pages of the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Temporary b-trees (sorting) in memory: the phone's flash is slow and wears.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Keep the WAL from growing without bound between checkpoints.
    conn.pragma_update(None, "journal_size_limit", 8 * 1024 * 1024)?;
    Ok(conn)
}

/// Opens a read-only connection on an existing store; with a store key, that key is its first
/// statement.
pub(crate) fn open_reader(path: &Path, store_key: Option<&StoreKey>) -> Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    key::apply(&conn, store_key)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Smaller page cache per reader than the default 2 MB: several readers on a low-end phone.
    conn.pragma_update(None, "cache_size", -1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Read-only connections, handed out one per query, and the store key they are opened with.
///
/// The key can change while the store is open ([`super::Store::rekey`]): a connection keyed
/// with the old one cannot read pages written under the new one. So every connection is
/// tagged with the key's generation, and one of an older generation is dropped instead of
/// being used or kept (the live-query notifier, which keeps its own connection, checks the
/// same generation).
pub(crate) struct ReaderPool {
    path: PathBuf,
    key: RwLock<Option<StoreKey>>,
    generation: AtomicU64,
    idle: Mutex<Vec<(u64, Connection)>>,
}

impl ReaderPool {
    pub fn new(path: PathBuf, key: Option<StoreKey>) -> Self {
        Self {
            path,
            key: RwLock::new(key),
            generation: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a reader connection.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (generation, conn) = match pooled {
            Some((generation, conn)) if generation == self.generation() => (generation, conn),
            _ => self.open()?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS && generation == self.generation() {
            idle.push((generation, conn));
        }
        result
    }

    /// A new reader with the current key, and the generation of that key.
    pub fn open(&self) -> Result<(u64, Connection)> {
        let key = self.key.read().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation();
        Ok((generation, open_reader(&self.path, key.as_ref())?))
    }

    /// The generation of the current key: it grows by one at every rekey.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Readers from now on use `key`; idle readers with the old one are closed.
    pub fn set_key(&self, key: StoreKey) {
        let mut current = self.key.write().unwrap_or_else(|p| p.into_inner());
        *current = Some(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
