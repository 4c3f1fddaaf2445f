//! Read-only connections to the server's database, so that pulls, token checks and blob lookups
//! read in parallel with each other and with the one writer instead of queueing behind its lock.
//!
//! SQLite in WAL mode lets any number of readers work beside one writer: each read transaction
//! sees the database as it was when the transaction began (its *snapshot*) and is never blocked
//! by the writer, nor blocks it. The pool opens its connections lazily, read-only, on the same
//! file, up to a fixed number; a request that finds none idle waits for one to be handed back.
//!
//! A reader must never hand out anything newer than its snapshot: see [`Snapshot`] and
//! `DocCache::get_as_of`.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, OpenFlags};

use crate::error::ServerError;

/// How many read connections the server keeps at most. Each holds its own page cache (SQLite's
/// default, about 2 MB), so this bounds memory too; more than a few does not help on the small
/// machines the server is made for, where the CPU, not the connections, is the limit.
pub const DEFAULT_READERS: usize = 4;

/// The pool of read-only connections.
pub struct Readers {
    path: PathBuf,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections open, idle or lent out.
    open: usize,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max: usize) -> Self {
        Readers {
            path,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// A read connection, outside any transaction; waits while all are lent out.
    pub fn get(&self) -> Result<Reader<'_>, ServerError> {
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Reader {
                    conn: Some(conn),
                    pool: self,
                });
            }
            if state.open < self.max {
                state.open += 1;
                // Opened without holding the pool's lock: opening touches the file.
                drop(state);
                return match self.open() {
                    Ok(conn) => Ok(Reader {
                        conn: Some(conn),
                        pool: self,
                    }),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            self.returned.wait(&mut state);
        }
    }

    fn open(&self) -> Result<Connection, ServerError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
        super::plan_once(&conn)?;
        // A reader waits for the writer only in rare moments of WAL recovery or checkpointing;
        // the same patience as the writer's.
        conn.busy_timeout(Duration::from_secs(5))?;
        // Belt and braces: even a statement that could write (a TEMP table) is refused.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        self.state.lock().idle.push(conn);
        self.returned.notify_one();
    }
}

/// A read connection lent out of the pool; goes back when dropped.
pub struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Readers,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Always `Some` until dropped.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a reader is only emptied on drop"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A reader left inside a transaction would pin its snapshot (and keep the WAL from being
        // checkpointed past it) for as long as it sits idle: ended here, or not given back.
        if !conn.is_autocommit() {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "ending a reader's transaction failed; connection closed");
                let mut state = self.pool.state.lock();
                state.open -= 1;
                drop(state);
                self.pool.returned.notify_one();
                return;
            }
        }
        self.pool.give_back(conn);
    }
}

/// One consistent view of the database for a unit of reading: every query made through it sees
/// the same committed state, and [`Snapshot::seq`] is the last log position in that state.
///
/// Why the position: documents in the shared cache may be newer than the snapshot (a push
/// committed, or is about to commit, after the snapshot began). A reader uses a cached document
/// only if the last change applied to it is at or before `seq`, and otherwise loads it through
/// its own connection (`DocCache::get_as_of`).
pub struct Snapshot<'c> {
    conn: &'c Connection,
    /// Whether this snapshot began the transaction (and ends it when dropped).
    began: bool,
    seq: i64,
}

impl<'c> Snapshot<'c> {
    /// Begins a read transaction on `conn`, or joins the one it is inside already (the caller's
    /// view is then the snapshot).
    pub fn begin(conn: &'c Connection) -> Result<Self, ServerError> {
        let began = conn.is_autocommit();
        if began {
            conn.execute_batch("BEGIN DEFERRED")?;
        }
        // Ends the transaction again should the first read fail.
        let mut snapshot = Snapshot { conn, began, seq: 0 };
        // The first read fixes the WAL snapshot; its log position is the snapshot's.
        snapshot.seq = conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM log")?
            .query_row([], |r| r.get(0))?;
        Ok(snapshot)
    }

    /// The last log position this snapshot sees.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn conn(&self) -> &'c Connection {
        self.conn
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if self.began {
            // Nothing was written: ending the transaction only lets the snapshot go.
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "ending a read snapshot failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use super::*;

    fn docs(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn a_reader_sees_committed_state_only_and_never_waits_for_the_writer() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("open");
        let writer = db.lock();
        writer
            .execute_batch(
                "BEGIN IMMEDIATE; INSERT INTO docs (doc_id, space_id, kind) VALUES ('d', 's', 'item')",
            )
            .expect("write");
        // The writer holds its lock and an open write transaction; the reader still reads.
        let reader = db.read().expect("reader");
        assert_eq!(docs(&reader), 0, "a reader saw an uncommitted row");
        writer.execute_batch("COMMIT").expect("commit");
        drop(writer);
        assert_eq!(docs(&reader), 1);
        assert!(
            reader
                .execute_batch("INSERT INTO docs (doc_id, space_id, kind) VALUES ('e', 's', 'item')")
                .is_err(),
            "a reader wrote"
        );
    }

    #[test]
    fn a_snapshot_keeps_its_view_and_its_log_position_while_the_writer_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("open");
        let append = |doc: &str| {
            db.lock()
                .execute(
                    "INSERT INTO log (space_id, doc_id, record, received_at) VALUES ('s', ?1, 'reveal', 0)",
                    [doc],
                )
                .expect("append");
        };
        append("a");
        let reader = db.read().expect("reader");
        {
            let snapshot = Snapshot::begin(&reader).expect("snapshot");
            assert_eq!(snapshot.seq(), 1);
            append("b");
            let rows: i64 = reader
                .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
                .expect("rows");
            assert_eq!(rows, 1, "the snapshot moved");
        }
        assert!(reader.is_autocommit(), "the snapshot's transaction was left open");
        assert_eq!(Snapshot::begin(&reader).expect("snapshot").seq(), 2);
    }

    #[test]
    fn a_reader_given_back_inside_a_transaction_is_ended_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("open");
        let pool = Readers::new(dir.path().join("quartier-server.db"), 1);
        {
            let reader = pool.get().expect("reader");
            reader.execute_batch("BEGIN; SELECT 1").expect("begin");
        }
        let reader = pool.get().expect("the same reader, back");
        assert!(reader.is_autocommit());
        assert_eq!(pool.state.lock().open, 1);
        drop(db);
    }
}
