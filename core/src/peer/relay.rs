//! Store-and-forward: changes this device took from a peer that the server may not have yet
//! wait in the outbox with their author's device and signature, and the next sync pushes them as
//! they are (the server checks them against their author, as if the author pushed them). What a
//! device carries for others is bounded in bytes and age ([`RelayLimits`]); a carried change the
//! server sends back, or acknowledges, leaves the outbox.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::store::Store;

/// What this device carries for other devices at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RelayLimits {
    /// Bytes of others' changes waiting in the outbox at once; 0 carries nothing.
    pub max_bytes: i64,
    /// How long a carried change waits for a sync before it is dropped (its author still holds
    /// it), in milliseconds.
    pub max_age_ms: i64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024 * 1024,
            max_age_ms: 14 * 24 * 60 * 60 * 1000,
        }
    }
}

/// What this device carries for others now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CarriedChanges {
    pub changes: i64,
    pub bytes: i64,
}

pub(crate) fn limits(conn: &Connection) -> Result<RelayLimits> {
    Ok(conn.query_row(
        "SELECT relay_max_bytes, relay_max_age_ms FROM device WHERE singleton = 1",
        [],
        |r| {
            Ok(RelayLimits {
                max_bytes: r.get(0)?,
                max_age_ms: r.get(1)?,
            })
        },
    )?)
}

fn carried(conn: &Connection) -> Result<CarriedChanges> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(length(bytes)), 0) FROM outbox WHERE signer IS NOT NULL",
        )?
        .query_row([], |r| {
            Ok(CarriedChanges {
                changes: r.get(0)?,
                bytes: r.get(1)?,
            })
        })?)
}

/// A change to carry, as its author signed it.
pub(crate) struct Carried<'a> {
    pub doc_id: &'a str,
    pub kind: &'a str,
    pub space: &'a str,
    pub hash: &'a [u8],
    pub bytes: &'a [u8],
    pub signer: &'a str,
    pub signature: &'a [u8],
}

/// Room left for carrying others' changes, read once per page of a session (not per change).
pub(crate) struct CarryRoom {
    left: i64,
}

impl CarryRoom {
    pub(crate) fn read(conn: &Connection) -> Result<CarryRoom> {
        Ok(CarryRoom {
            left: limits(conn)?.max_bytes - carried(conn)?.bytes,
        })
    }

    /// Puts a change in the outbox to carry, if the limits leave room; `false` if they do not.
    /// A change already waiting (carried or this device's own) is not added twice.
    pub(crate) fn carry(&mut self, conn: &Connection, change: &Carried<'_>, now: i64) -> Result<bool> {
        let size = change.bytes.len() as i64;
        if size > self.left {
            return Ok(false);
        }
        let added = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox (doc_id, kind, space_id, hash, bytes, created_at, signer, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                change.doc_id,
                change.kind,
                change.space,
                change.hash,
                change.bytes,
                now,
                change.signer,
                change.signature
            ])?;
        self.left -= size * added as i64;
        Ok(true)
    }
}

/// Whether an outbox entry is a change carried for another device.
pub(crate) fn is_carried(conn: &Connection, seq: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT signer IS NOT NULL FROM outbox WHERE seq = ?1")?
        .query_row([seq], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// A carried change the server has (it sent it back): nothing left to carry.
pub(crate) fn delivered(conn: &Connection, hash: &[u8]) -> Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE hash = ?1 AND signer IS NOT NULL")?
        .execute([hash])?;
    Ok(())
}

impl Store {
    /// Sets what this device carries for others at most (`docs/protocol.md`, "Store and
    /// forward"); changes already carried beyond a lower byte limit stay until delivered.
    pub fn set_relay_limits(&self, limits: RelayLimits) -> Result<()> {
        if limits.max_bytes < 0 || limits.max_age_ms < 0 {
            return Err(Error::invalid("relay limits", "limits cannot be negative"));
        }
        self.write(|tx, _| {
            tx.execute(
                "UPDATE device SET relay_max_bytes = ?1, relay_max_age_ms = ?2 WHERE singleton = 1",
                params![limits.max_bytes, limits.max_age_ms],
            )?;
            Ok(())
        })
    }

    /// What this device carries for others at most.
    pub fn relay_limits(&self) -> Result<RelayLimits> {
        self.read(limits)
    }

    /// What this device carries for others now.
    pub fn carried_changes(&self) -> Result<CarriedChanges> {
        self.read(carried)
    }

    /// Drops carried changes older than the age limit (their authors still hold them).
    pub(crate) fn expire_carried(&self) -> Result<usize> {
        let now = crate::store::now_ms();
        self.write(|tx, _| {
            let limits = limits(tx)?;
            Ok(tx
                .prepare_cached("DELETE FROM outbox WHERE signer IS NOT NULL AND created_at < ?1")?
                .execute([now.saturating_sub(limits.max_age_ms)])?)
        })
    }
}
