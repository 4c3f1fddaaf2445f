//! The server's embedded database (SQLite): persons, devices, spaces, members, invites, the
//! document metadata the permission checks need, and the change log pulls read. One connection
//! behind a mutex, used from blocking tasks.

pub mod accounts;
pub mod log;
pub mod spaces;

pub use accounts::DeviceRecord;
pub use log::{DocMeta, LogRow};

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::error::ServerError;

const SCHEMA_VERSION: i64 = 2;

/// The database.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Db, ServerError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServerError::Startup(format!("cannot create {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("quartier-server.db"))?;
        // WAL + FULL: an acknowledged change is on disk, power loss included.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            conn.execute_batch(include_str!("schema.sql"))?;
            conn.pragma_update(None, "user_version", 1)?;
        }
        if version <= 1 {
            // Version 2: blobs (media), `002_blobs.sql`.
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(include_str!("002_blobs.sql"))?;
            tx.pragma_update(None, "user_version", 2)?;
            tx.commit()?;
        } else if version > SCHEMA_VERSION {
            return Err(ServerError::Startup(format!(
                "database schema {version} is newer than this server ({SCHEMA_VERSION})"
            )));
        }
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// The connection, for one unit of work.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
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
