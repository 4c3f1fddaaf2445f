//! Versioned schema migrations: numbered SQL files applied one per transaction, with
//! `PRAGMA user_version` as the version. A store from a newer core, or another application's
//! SQLite file, is refused after a read-only look ([`inspect`]), before anything writes to it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::key::{self, FileKind, StoreKey};
use crate::error::{Error, Result};

/// One migration: its version, the SQL, whether documents written before it need their
/// projections rebuilt afterwards, and a step in Rust run after the SQL in the same
/// transaction (skipped when a projection rebuild is owed: that rebuild does its work too; a
/// step that meets a damaged row owes that rebuild instead of failing).
struct Migration {
    version: i64,
    sql: &'static str,
    rebuilds_projections: bool,
    then: Option<fn(&Connection) -> Result<()>>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/001_documents.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/002_projections.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 3,
        sql: include_str!("migrations/003_history.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 4,
        sql: include_str!("migrations/004_sync.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 5,
        sql: include_str!("migrations/005_media.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 6,
        sql: include_str!("migrations/006_undelivered.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 7,
        sql: include_str!("migrations/007_space_registrations.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 8,
        sql: include_str!("migrations/008_media_spaces.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 9,
        sql: include_str!("migrations/009_members.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 10,
        sql: include_str!("migrations/010_search_stems.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 11,
        sql: include_str!("migrations/011_creation_forms.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 12,
        sql: include_str!("migrations/012_light_rows.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 13,
        sql: include_str!("migrations/013_map_pins.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 14,
        sql: include_str!("migrations/014_rebuild_marker.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 15,
        sql: include_str!("migrations/015_lighter_writes.sql"),
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 16,
        sql: include_str!("migrations/016_counselling.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 17,
        sql: include_str!("migrations/017_media_key.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 18,
        sql: include_str!("migrations/018_counselling_files.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 19,
        sql: include_str!("migrations/019_counselling_rotation.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 20,
        sql: include_str!("migrations/020_peers.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 21,
        sql: include_str!("migrations/021_moderation.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 22,
        sql: include_str!("migrations/022_help.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 23,
        sql: include_str!("migrations/023_notifications.sql"),
        // Media alt text, captions and transcripts joined the search index.
        rebuilds_projections: true,
        then: None,
    },
    Migration {
        version: 24,
        sql: include_str!("migrations/024_imports.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 25,
        sql: include_str!("migrations/025_ascending_feed_indexes.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 26,
        sql: include_str!("migrations/026_search_pending.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 27,
        sql: include_str!("migrations/027_search_pending_replaces.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 28,
        sql: include_str!("migrations/028_search_prefix_index.sql"),
        // Only the search index is built again, with its prefix index.
        rebuilds_projections: false,
        then: Some(super::search_index::rebuild),
    },
    Migration {
        version: 29,
        sql: include_str!("migrations/029_pending_edits.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 30,
        sql: include_str!("migrations/030_history_order.sql"),
        rebuilds_projections: false,
        // Rows stored before it get theirs where their order depends on it.
        then: Some(super::projection::fill_history_seq),
    },
    Migration {
        version: 31,
        sql: include_str!("migrations/031_search_delete_merge.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 32,
        sql: include_str!("migrations/032_signature_stream.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 33,
        sql: include_str!("migrations/033_signers.sql"),
        rebuilds_projections: false,
        then: None,
    },
    Migration {
        version: 34,
        sql: include_str!("migrations/034_signatures_by_document.sql"),
        rebuilds_projections: false,
        then: None,
    },
    // Next: 035. Append here; SCHEMA_VERSION follows the last entry.
];

/// The schema version this core writes: the last migration's.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// `PRAGMA application_id` of a Quartier store (ASCII `Qrtr`), so that tools such as `file`
/// recognise it and so that another application's database is told apart from ours. Stores made
/// before it was set carry 0 and get it on their next open.
pub const APPLICATION_ID: i32 = 0x5172_7472;

/// Tables every Quartier store has had since schema version 1.
const FIRST_TABLES: [&str; 3] = ["device", "documents", "doc_changes"];

/// What [`inspect`] found at the store's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing yet (missing, empty, or an SQLite database without tables): a new store.
    Nothing,
    /// A plain (unencrypted) Quartier store.
    Plain,
    /// A Quartier store encrypted with the key that was given.
    Encrypted,
}

/// Looks at an existing file through a read-only connection and refuses it unless it is empty,
/// or a Quartier store this core can open: another application's database is
/// [`Error::Corrupt`], a store of a newer core [`Error::SchemaTooNew`], an encrypted store with
/// another key or without one [`Error::WrongStoreKey`]. Nothing is written to the file (no
/// journal mode switch, no table), so a refused file stays as it was.
///
/// A plain store is read without a key even when one is given (the caller encrypts it next);
/// any other non-empty file is read with the key.
pub(crate) fn inspect(path: &Path, store_key: Option<&StoreKey>) -> Result<Found> {
    let len = match std::fs::metadata(path) {
        // A missing or empty file becomes a new store.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Ok(meta) if meta.is_file() && meta.len() == 0 => return Ok(Found::Nothing),
        Ok(meta) if !meta.is_file() => {
            return Err(Error::Corrupt(format!("{} is not a file", path.display())))
        }
        Ok(meta) => meta.len(),
        Err(_) => 0,
    };
    let kind =
        key::file_kind(path).map_err(|e| Error::Corrupt(format!("the store file cannot be read: {e}")))?;
    let look_key = match kind {
        FileKind::Plain => None,
        FileKind::Opaque => store_key,
    };
    let conn = open_for_look(path, look_key)?;
    let key_given = look_key.is_some();
    let version = match schema_version(&conn) {
        Ok(version) => version,
        // Not SQLite when read with this key (or without one). Pages of an encrypted store
        // come whole; a file of another length is not a store whatever the key.
        Err(Error::Corrupt(reason)) if kind == FileKind::Opaque => {
            return Err(if key::could_be_encrypted(len) {
                Error::WrongStoreKey { key_given }
            } else {
                Error::Corrupt(reason)
            });
        }
        Err(e) => return Err(e),
    };
    let application: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    drop(conn);
    if application != 0 && application != APPLICATION_ID {
        return Err(Error::Corrupt(format!(
            "another application's database (application_id {application:#010x}); it was not changed"
        )));
    }
    let ours =
        application == APPLICATION_ID || FIRST_TABLES.iter().all(|t| tables.iter().any(|name| name == t));
    if version == 0 && application == 0 && tables.is_empty() {
        // An empty SQLite database: nothing in it to damage. An empty encrypted one is opened
        // with its key; an empty plain one becomes a plain store, or is encrypted first.
        return Ok(if key_given { Found::Encrypted } else { Found::Plain });
    }
    if !ours || version == 0 {
        return Err(Error::Corrupt(format!(
            "a SQLite database of another application ({} tables, schema version {version}); it was not changed",
            tables.len()
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(if key_given { Found::Encrypted } else { Found::Plain })
}

/// A read-only connection that leaves no trace: without a `-wal` file beside it, the file
/// alone holds the database and is opened `immutable` (a read-only connection on a WAL-mode
/// file would otherwise create `-wal` and `-shm` files it cannot remove). With a store key, the
/// key is its first statement; a key that does not open the file fails at its first read.
fn open_for_look(path: &Path, store_key: Option<&StoreKey>) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let conn = match path.to_str() {
        Some(text) if !Path::new(&wal).exists() => {
            let escaped = text.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
            let uri = format!("file:{escaped}?immutable=1");
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
        }
        _ => Connection::open_with_flags(path, flags)?,
    };
    if let Some(store_key) = store_key {
        // The key is checked by the caller's first read, which tells a wrong key from a
        // damaged plain file by the file's header.
        key::set_key(&conn, store_key)?;
    }
    Ok(conn)
}

/// What a migration run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MigrationOutcome {
    pub from: i64,
    pub to: i64,
    pub rebuild_projections: bool,
}

/// Reads the schema version of an open database.
pub(crate) fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Upgrades the database to `target` (normally [`SCHEMA_VERSION`]).
pub(crate) fn migrate(conn: &mut Connection, target: i64) -> Result<MigrationOutcome> {
    let from = schema_version(conn)?;
    if from > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    let mut outcome = MigrationOutcome {
        from,
        to: from,
        rebuild_projections: false,
    };
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql)?;
        tx.pragma_update(None, "user_version", migration.version)?;
        if migration.rebuilds_projections && from > 0 {
            let documents: i64 = tx.query_row("SELECT count(*) FROM documents", [], |r| r.get(0))?;
            outcome.rebuild_projections |= documents > 0;
        }
        if let Some(step) = migration.then {
            if !outcome.rebuild_projections && !rebuild_owed(&tx)? {
                match step(&tx) {
                    Ok(()) => {}
                    // A row the step cannot read (a damaged projection): the projections are
                    // rebuilt from the documents instead, which never fails the opening over
                    // one document, rather than the store refusing to open at every attempt.
                    Err(Error::Corrupt(reason)) => {
                        tracing::error!(version = migration.version, %reason, "migration step: rebuilding the projections");
                        outcome.rebuild_projections = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if outcome.rebuild_projections && has_table(&tx, "projection_rebuild")? {
            tx.execute(
                "INSERT OR IGNORE INTO projection_rebuild (singleton, owed_since) VALUES (1, ?1)",
                [super::now_ms()],
            )?;
        }
        tx.commit()?;
        outcome.to = migration.version;
        tracing::info!(version = migration.version, "applied store migration");
    }
    // A rebuild an earlier open owed and did not finish.
    outcome.rebuild_projections |= rebuild_owed(conn)?;
    let application: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if application != APPLICATION_ID {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    Ok(outcome)
}

/// Whether an earlier open owes a projection rebuild it did not finish.
fn rebuild_owed(conn: &Connection) -> Result<bool> {
    if !has_table(conn, "projection_rebuild")? {
        return Ok(false);
    }
    let owed: i64 = conn.query_row("SELECT count(*) FROM projection_rebuild", [], |r| r.get(0))?;
    Ok(owed > 0)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )? > 0)
}
