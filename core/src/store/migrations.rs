//! Versioned schema migrations: numbered SQL files applied one per transaction, with
//! `PRAGMA user_version` as the version. A store from a newer core is refused, not damaged.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// One migration: its version, the SQL, and whether documents written before it need their
/// projections rebuilt afterwards.
struct Migration {
    version: i64,
    sql: &'static str,
    rebuilds_projections: bool,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/001_documents.sql"),
        rebuilds_projections: false,
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/002_projections.sql"),
        rebuilds_projections: true,
    },
    Migration {
        version: 3,
        sql: include_str!("migrations/003_history.sql"),
        rebuilds_projections: true,
    },
    Migration {
        version: 4,
        sql: include_str!("migrations/004_sync.sql"),
        rebuilds_projections: false,
    },
    Migration {
        version: 5,
        sql: include_str!("migrations/005_media.sql"),
        rebuilds_projections: false,
    },
    // Next: 006. Append here; SCHEMA_VERSION follows the last entry.
];

/// The schema version this core writes: the last migration's.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

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
        tx.commit()?;
        outcome.to = migration.version;
        tracing::info!(version = migration.version, "applied store migration");
    }
    Ok(outcome)
}
