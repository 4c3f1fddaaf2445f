//! The server's embedded database (SQLite): persons, devices, spaces, members, invites, the
//! document metadata the permission checks need, and the change log pulls read. One writing
//! connection behind a fair mutex (waiting requests get it in turn), and a pool of read-only
//! connections ([`readers`]) through which pulls and lookups read in parallel; both used from
//! blocking tasks.

pub mod accounts;
pub mod calendar_feeds;
pub mod certificates;
pub mod counselling;
pub mod help;
pub mod log;
pub mod moderation;
pub mod pending;
pub mod readers;
pub mod spaces;

pub use accounts::DeviceRecord;
pub use log::{DocMeta, LogRow};
pub use pending::{PendingCreation, PendingCreations};
pub use readers::{Reader, Snapshot};

use parking_lot::{FairMutex, FairMutexGuard};
use std::path::Path;

use rusqlite::Connection;

use crate::error::ServerError;

/// The schema, one script per version: `MIGRATIONS[n]` brings version `n` to `n + 1`.
const MIGRATIONS: [&str; 16] = [
    include_str!("schema.sql"),
    // Blobs (media).
    include_str!("002_blobs.sql"),
    // Creation forms of never-edited documents.
    include_str!("003_creations.sql"),
    // Blob uploads per uploader; blobs readable through the spaces they were uploaded into.
    include_str!("004_blob_uploads.sql"),
    // Which invites a removed member may no longer use.
    include_str!("005_removals.sql"),
    // Operator approval of persons; devices by public key.
    include_str!("006_operators.sql"),
    // Member lists: the order of member changes, for devices to fetch what changed.
    include_str!("007_rosters.sql"),
    // Member changes of a space numbered apart (version 7 gave older members one number).
    include_str!("008_roster_order.sql"),
    // Organisation admins: who may appoint caseworkers.
    include_str!("009_org_admins.sql"),
    // Counselling: teams, conversations, keys, relayed ciphertext, backups, erasures.
    include_str!("010_counselling.sql"),
    // A person's further devices (one-use link codes).
    include_str!("011_device_links.sql"),
    // Counselling: a resident side's access token replaced (a lost phone locked out).
    include_str!("012_token_rotation.sql"),
    // Certificates for device to device: the server's signing key, role changes.
    include_str!("013_certificates.sql"),
    // Moderation: reports and decisions, hidden items, blocks, erased items, mutes.
    include_str!("014_moderation.sql"),
    // The help board: each request's flow.
    include_str!("015_help.sql"),
    // Standards: a secret calendar feed per member and space; the operator's imports.
    include_str!("016_standards.sql"),
];
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
/// Prepared statements kept per connection: a push and a pull use more distinct statements
/// than rusqlite's default of 16, which evicted and compiled the same SQL again every request.
const STATEMENT_CACHE: usize = 128;

/// The database.
pub struct Db {
    /// The one connection that writes.
    conn: FairMutex<Connection>,
    /// Read-only connections (WAL readers on the same file), opened when first needed.
    readers: readers::Readers,
    /// New documents whose creation form is still to be recorded (`sync::creations`).
    pending_creations: PendingCreations,
    /// The key certificates and revocation lists are signed with.
    signing_key: ed25519_dalek::SigningKey,
}

/// A cached statement keeps the plan it was prepared with, whatever values are bound to it.
/// Without this SQLite (3.54) prepares a statement again at every run that binds a new value
/// to a `LIMIT ?` (it plans with the bound limit), as every page of a pull does. The server's
/// queries do not rely on plans that depend on bound values (no `LIKE ?`, no `ANALYZE`).
fn plan_once(conn: &Connection) -> Result<(), ServerError> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

impl Db {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Db, ServerError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServerError::Startup(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("quartier-server.db");
        let conn = Connection::open(&path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        plan_once(&conn)?;
        // WAL + FULL: an acknowledged change is on disk, power loss included.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content is overwritten, not left in free pages: an erased conversation (or
        // item) must not be readable in the file afterwards.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(ServerError::Startup(format!(
                "database schema {version} is newer than this server ({SCHEMA_VERSION})"
            )));
        }
        // One step per version, each in its own transaction: a failed step leaves the database
        // at the version before it.
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", from as i64 + 1)?;
            tx.commit()?;
        }
        let signing_key = certificates::load_or_create_key(&conn)?;
        Ok(Db {
            signing_key,
            conn: FairMutex::new(conn),
            readers: readers::Readers::new(path, readers::DEFAULT_READERS),
            pending_creations: PendingCreations::default(),
        })
    }

    /// Opens the database of an existing data folder (administrative tasks): refuses a folder
    /// without one rather than creating an empty database.
    pub fn open_existing(dir: &Path) -> Result<Db, ServerError> {
        let file = dir.join("quartier-server.db");
        if !file.is_file() {
            return Err(ServerError::Startup(format!(
                "{} holds no quartier-server database ({} is missing); check --data",
                dir.display(),
                file.display()
            )));
        }
        Db::open(dir)
    }

    /// The connection, for one unit of work. Fair: a request that waits gets the connection
    /// before the one releasing it may take it again (a long push hands it over between its
    /// steps, `sync::push`).
    ///
    /// Every unit of work starts outside a transaction: one that ended inside its own (it
    /// should not; `sync::push` guards its transactions) is rolled back here rather than making
    /// every later request fail to begin.
    pub fn lock(&self) -> FairMutexGuard<'_, Connection> {
        let conn = self.conn.lock();
        if !conn.is_autocommit() {
            tracing::error!("the database was left inside a transaction; rolled back");
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back the abandoned transaction failed");
            }
        }
        conn
    }

    /// A read-only connection (waits while every one of the pool is lent out). It never waits
    /// for the writer: it reads the last committed state, in WAL mode, beside a writer's open
    /// transaction. Order: a unit of work that holds [`Db::lock`] must not ask for a reader, nor
    /// one that holds a reader for the writer lock (docs/server.md, "Lock order").
    pub fn read(&self) -> Result<Reader<'_>, ServerError> {
        self.readers.get()
    }

    /// The key this server signs certificates and revocation lists with.
    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.signing_key
    }

    /// New documents whose creation form is still to be recorded.
    pub fn pending_creations(&self) -> &PendingCreations {
        &self.pending_creations
    }
}

/// An id the server itself stored, read back. Text that is not a UUID is a damaged database: an
/// error (never skipped), usable inside row closures and with `?` outside them.
pub fn stored_uuid(text: &str) -> rusqlite::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// The placeholders of an `IN (…)` list of `values` (audiences a reader may read, item kinds),
/// with the values appended to `args`: the one way a query filters by a list. An empty list is
/// `NULL`, which matches nothing.
pub fn in_list(args: &mut Vec<rusqlite::types::Value>, values: &[&str]) -> String {
    let mut marks = Vec::new();
    for value in values {
        args.push((*value).to_owned().into());
        marks.push(format!("?{}", args.len()));
    }
    if marks.is_empty() {
        "NULL".to_owned()
    } else {
        marks.join(", ")
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// 32 random bytes, hex: bearer tokens and invite codes.
pub fn random_token(bytes: usize) -> Result<String, ServerError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// BLAKE3 of a secret, as stored.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    blake3::hash(secret.as_bytes()).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_statement_is_not_prepared_again_for_each_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("open");
        let sql = "SELECT count(*) FROM (SELECT value FROM json_each('[1,2,3,4]') LIMIT ?1)";
        let reprepares = |conn: &Connection| {
            let mut total = 0;
            for limit in [1_i64, 3, 2] {
                let mut stmt = conn.prepare_cached(sql).expect("prepare");
                let count: i64 = stmt.query_row([limit], |r| r.get(0)).expect("query");
                assert_eq!(count, limit);
                total = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            }
            total
        };
        assert_eq!(reprepares(&db.lock()), 0, "writer");
        assert_eq!(reprepares(&db.read().expect("reader")), 0, "reader");
    }

    fn version(db: &Db) -> i64 {
        db.lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version")
    }

    #[test]
    fn every_earlier_schema_upgrades_and_keeps_its_rows() {
        for from in 1..SCHEMA_VERSION {
            let dir = tempfile::tempdir().expect("dir");
            {
                let conn = Connection::open(dir.path().join("quartier-server.db")).expect("open");
                for sql in &MIGRATIONS[..from as usize] {
                    conn.execute_batch(sql).expect("old schema");
                }
                conn.pragma_update(None, "user_version", from).expect("version");
                conn.execute(
                    "INSERT INTO docs (doc_id, space_id, kind) VALUES ('d', 's', 'item')",
                    [],
                )
                .expect("a document");
            }
            let db = Db::open(dir.path()).expect("upgrade");
            assert_eq!(version(&db), SCHEMA_VERSION, "from {from}");
            let conn = db.lock();
            let docs: i64 = conn
                .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
                .expect("docs");
            assert_eq!(docs, 1, "from {from}");
            let creations: i64 = conn
                .query_row("SELECT count(*) FROM doc_creations", [], |r| r.get(0))
                .expect("creations table");
            assert_eq!(creations, 0);
        }
    }

    #[test]
    fn schema_4_keeps_only_claims_whose_bytes_were_uploaded() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let conn = Connection::open(dir.path().join("quartier-server.db")).expect("open");
            for sql in &MIGRATIONS[..3] {
                conn.execute_batch(sql).expect("old schema");
            }
            conn.pragma_update(None, "user_version", 3).expect("version");
            conn.execute_batch(
                "INSERT INTO blobs VALUES ('stored', 10, 'image/jpeg', 262144, 40, 100);
                 INSERT INTO blobs VALUES ('pending', 10, 'image/jpeg', 262144, 40, NULL);
                 INSERT INTO blob_chunks VALUES ('pending', 0);
                 INSERT INTO blob_claims VALUES ('s1', 'stored', 'uploader', 10, 50);
                 INSERT INTO blob_claims VALUES ('s2', 'stored', 'announced-later', 10, 200);
                 INSERT INTO blob_claims VALUES ('s1', 'pending', 'uploader', 10, 60);",
            )
            .expect("rows of version 3");
        }
        let db = Db::open(dir.path()).expect("upgrade");
        let conn = db.lock();
        let claims: Vec<(String, String, Option<i64>)> = conn
            .prepare("SELECT space_id, person_id, uploaded_at FROM blob_claims ORDER BY space_id")
            .expect("claims")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("claims");
        assert_eq!(claims, vec![("s1".into(), "uploader".into(), Some(100))]);
        let blobs: i64 = conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .expect("blobs");
        assert_eq!(blobs, 1, "the pending upload starts over");
    }

    #[test]
    fn schema_8_numbers_the_members_of_before_schema_7_apart_so_a_page_can_end_anywhere() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let conn = Connection::open(dir.path().join("quartier-server.db")).expect("open");
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).expect("old schema");
            }
            conn.pragma_update(None, "user_version", 6).expect("version");
            conn.execute_batch(
                "INSERT INTO persons (person_id, created_at) VALUES ('p1', 1), ('p2', 1), ('p3', 1);
                 INSERT INTO spaces (space_id, created_by, created_at) VALUES ('s', 'p1', 1), ('t', 'p1', 1);
                 INSERT INTO members (space_id, person_id, role) VALUES
                     ('s', 'p1', 'coordinator'), ('s', 'p2', 'resident'), ('s', 'p3', 'resident'),
                     ('t', 'p1', 'coordinator');",
            )
            .expect("members of version 6");
        }
        let db = Db::open(dir.path()).expect("upgrade");
        let conn = db.lock();
        let seqs: Vec<(String, i64)> = conn
            .prepare("SELECT space_id, roster_seq FROM members ORDER BY space_id, person_id")
            .expect("members")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("members");
        let in_s: std::collections::BTreeSet<i64> = seqs
            .iter()
            .filter(|(space, _)| space == "s")
            .map(|(_, seq)| *seq)
            .collect();
        assert_eq!(in_s.len(), 3, "each member of s has its own number: {seqs:?}");
        assert!(
            in_s.iter().all(|seq| *seq > 1),
            "above every number given before: {seqs:?}"
        );
        assert!(
            seqs.contains(&("t".into(), 1)),
            "a member alone with its number keeps it"
        );
    }

    #[test]
    fn work_left_inside_a_transaction_is_rolled_back_for_the_next() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("open");
        {
            let conn = db.lock();
            conn.execute_batch("BEGIN; INSERT INTO docs (doc_id, space_id, kind) VALUES ('d', 's', 'item')")
                .expect("begin");
            // Ends here without COMMIT or ROLLBACK, as a panic unwinding through it would.
        }
        let conn = db.lock();
        assert!(conn.is_autocommit());
        conn.execute_batch("BEGIN; COMMIT")
            .expect("the next unit of work begins");
        let docs: i64 = conn
            .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
            .expect("docs");
        assert_eq!(docs, 0, "what the abandoned unit wrote is not kept");
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("dir");
        drop(Db::open(dir.path()).expect("create"));
        Connection::open(dir.path().join("quartier-server.db"))
            .expect("open")
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("version");
        assert!(matches!(Db::open(dir.path()), Err(ServerError::Startup(_))));
        let conn = Connection::open(dir.path().join("quartier-server.db")).expect("open");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("v");
        assert_eq!(v, SCHEMA_VERSION + 1);
    }
}
