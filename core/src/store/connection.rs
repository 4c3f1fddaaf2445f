//! Opening SQLite connections with the settings the store relies on, and the small pool of
//! read-only connections that queries use while the single writer commits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// How long a connection waits for a lock before failing (checkpoints, a second process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle readers kept open; more are opened under load and closed when returned.
const MAX_IDLE_READERS: usize = 4;
/// Prepared statements kept per connection. The store's paths use more distinct statements
/// than rusqlite's default of 16: with that cache, `prepare_cached` evicted and compiled the
/// same SQL again on every write and sync round.
pub(crate) const STATEMENT_CACHE: usize = 128;

/// Opens the writer connection.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
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

/// Opens a read-only connection on an existing store.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Smaller page cache per reader than the default 2 MB: several readers on a low-end phone.
    conn.pragma_update(None, "cache_size", -1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Read-only connections, handed out one per query.
pub(crate) struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a reader connection.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}
