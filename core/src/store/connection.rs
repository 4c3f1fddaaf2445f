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
/// Bytes of the store file a reader maps into memory, reading pages in place instead of
/// copying each into its page cache with a system call: a search touches hundreds of scattered
/// pages (doclists, `items` rows, row sizes), and `pread` into the 1 MB cache was a third of its
/// time (`docs/store.md`, "Connections"). 64-bit only: a 32-bit process has too little address
/// space to map the file once per reader. An encrypted store is never mapped (SQLCipher reads
/// every page through its codec).
pub(crate) const READER_MMAP_BYTES: i64 = if cfg!(target_pointer_width = "64") {
    1 << 30
} else {
    0
};

/// Opens the writer connection; with a store key, that key is its first statement.
pub(crate) fn open_writer(path: &Path, store_key: Option<&StoreKey>) -> Result<Connection> {
    let conn = Connection::open(path)?;
    key::apply(&conn, store_key)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    plan_once(&conn)?;
    super::bm25_one_phrase::register(&conn)?;
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
    plan_once(&conn)?;
    super::bm25_one_phrase::register(&conn)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Smaller page cache per reader than the default 2 MB: several readers on a low-end phone.
    conn.pragma_update(None, "cache_size", -1024)?;
    if store_key.is_none() {
        // SQLCipher reads an encrypted store's pages through its codec, never mapped: the
        // pragma then says so too.
        conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    }
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// A cached statement keeps the plan it was prepared with, whatever values are bound to it.
/// Without this SQLite (3.54) prepares a statement again at every run that binds a new value
/// to a `LIMIT ?` (it plans with the bound limit), which every page of the feed, search and map
/// does: about a tenth of a search's time. The store's queries do not rely on plans that depend
/// on bound values (no `LIKE ?`, no `ANALYZE` statistics).
fn plan_once(conn: &Connection) -> Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// A store file with a few rows, and the sum of the first `limit` of them read by the same
    /// cached statement with each limit in turn; returns how often SQLite prepared it again.
    fn reprepares_across_limits(conn: &Connection) -> i32 {
        let mut total = 0;
        for limit in [1_i64, 2, 3, 2] {
            let mut stmt = conn
                .prepare_cached("SELECT count(*) FROM (SELECT n FROM numbers ORDER BY n LIMIT ?1)")
                .expect("prepare");
            let count: i64 = stmt.query_row([limit], |r| r.get(0)).expect("query");
            assert_eq!(count, limit);
            total = stmt.get_status(StatementStatus::RePrepare);
        }
        total
    }

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_each_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let writer = open_writer(&path, None).expect("writer");
        writer
            .execute_batch("CREATE TABLE numbers (n INTEGER); INSERT INTO numbers VALUES (1), (2), (3), (4);")
            .expect("seed");
        assert_eq!(reprepares_across_limits(&writer), 0, "writer");
        let reader = open_reader(&path, None).expect("reader");
        assert_eq!(reprepares_across_limits(&reader), 0, "reader");
    }

    #[test]
    fn readers_map_the_store_file_and_the_writer_and_encrypted_readers_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = StoreKey::new([7; StoreKey::LEN]);
        let encrypted = dir.path().join("encrypted.db");
        open_writer(&encrypted, Some(&key))
            .expect("encrypted writer")
            .execute_batch("CREATE TABLE t (x);")
            .expect("encrypted schema");
        let keyed = open_reader(&encrypted, Some(&key)).expect("encrypted reader");
        let mapped = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA mmap_size", [], |r| r.get(0))
                .expect("mmap_size")
        };
        assert_eq!(mapped(&keyed), 0);
        let path = dir.path().join("store.db");
        let writer = open_writer(&path, None).expect("writer");
        writer.execute_batch("CREATE TABLE t (x);").expect("schema");
        assert_eq!(
            mapped(&open_reader(&path, None).expect("reader")),
            READER_MMAP_BYTES
        );
        assert_eq!(mapped(&writer), 0);
    }
}
