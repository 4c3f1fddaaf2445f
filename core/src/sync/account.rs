//! What the device knows of its server: its registration, the memberships the server granted
//! (a read-only copy), and per-space sync status.

use chrono::{DateTime, Utc};
use quartier_protocol::{Membership, Role};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{PersonId, SpaceId};
use crate::store::Store;

/// This device's registration with a server.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Base URL of the server, e.g. `https://quartier.example.org`.
    pub server: String,
    pub device: Uuid,
    pub person: PersonId,
    pub(crate) token: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never in logs.
        f.debug_struct("Account")
            .field("server", &self.server)
            .field("device", &self.device)
            .field("person", &self.person)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The bearer token this device authenticates with, for tools and tests (e.g. a hand-made
    /// `POST /v1/sync`). A credential: never log it.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// A space this device's person belongs to, with their role, as the server stated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceMembership {
    pub space: SpaceId,
    pub role: Role,
}

/// Where one space's sync stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceSyncStatus {
    pub space: SpaceId,
    pub role: Role,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Local changes of this space not yet acknowledged by the server.
    pub outbox: usize,
}

pub(crate) fn load_account(conn: &Connection) -> Result<Option<Account>> {
    let row: Option<(String, String, String, String)> = conn
        .query_row(
            "SELECT server, device_id, person_id, token FROM account WHERE singleton = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((server, device, person, token)) = row else {
        return Ok(None);
    };
    Ok(Some(Account {
        server,
        device: Uuid::parse_str(&device).map_err(|e| Error::Corrupt(format!("account device: {e}")))?,
        person: person.parse()?,
        token,
    }))
}

pub(crate) fn save_account(conn: &Connection, account: &Account) -> Result<()> {
    conn.execute(
        "INSERT INTO account (singleton, server, device_id, person_id, token, registered_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (singleton) DO UPDATE SET server = excluded.server, device_id = excluded.device_id,
             person_id = excluded.person_id, token = excluded.token, registered_at = excluded.registered_at",
        params![account.server, account.device.to_string(), account.person.to_string(), account.token, crate::store::now_ms()],
    )?;
    Ok(())
}

/// Records one membership the server stated.
pub(crate) fn record_membership(conn: &Connection, membership: &Membership) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO memberships (space_id, person_id, role, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (space_id) DO UPDATE SET person_id = excluded.person_id, role = excluded.role,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        membership.space.to_string(),
        membership.person.to_string(),
        membership.role.as_str(),
        crate::store::now_ms()
    ])?;
    conn.prepare_cached("INSERT OR IGNORE INTO sync_spaces (space_id) VALUES (?1)")?
        .execute([membership.space.to_string()])?;
    // A space created here for sharing is registered once the server states a membership.
    conn.prepare_cached("DELETE FROM space_registrations WHERE space_id = ?1")?
        .execute([membership.space.to_string()])?;
    Ok(())
}

pub(crate) fn memberships(conn: &Connection) -> Result<Vec<SpaceMembership>> {
    let mut stmt = conn.prepare_cached("SELECT space_id, role FROM memberships ORDER BY space_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (space, role) = row?;
        let role = Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("membership role {role}")))?;
        out.push(SpaceMembership {
            space: space.parse()?,
            role,
        });
    }
    Ok(out)
}

impl Store {
    /// This device's server registration, if it has one.
    pub fn account(&self) -> Result<Option<Account>> {
        self.read(load_account)
    }

    /// Keeps the credential the server answered a registration with.
    pub(crate) fn save_account(&self, account: &Account) -> Result<()> {
        self.write(|tx, _| save_account(tx, account))
    }

    /// Keeps a membership the server stated (a space registered, an invite redeemed).
    pub(crate) fn record_membership(&self, membership: &Membership) -> Result<()> {
        self.write(|tx, _| record_membership(tx, membership))
    }

    /// The spaces this device's person belongs to, as the server last stated.
    pub fn memberships(&self) -> Result<Vec<SpaceMembership>> {
        self.read(memberships)
    }

    /// Sync status of every space this device belongs to.
    pub fn sync_status(&self) -> Result<Vec<SpaceSyncStatus>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT m.space_id, m.role, s.last_success, s.last_attempt, s.last_error,
                        (SELECT count(*) FROM outbox o WHERE o.space_id = m.space_id)
                 FROM memberships m LEFT JOIN sync_spaces s ON s.space_id = m.space_id ORDER BY m.space_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (space, role, success, attempt, error, outbox) = row?;
                out.push(SpaceSyncStatus {
                    space: space.parse()?,
                    role: Role::parse(&role)
                        .ok_or_else(|| Error::Corrupt(format!("membership role {role}")))?,
                    last_success: success.and_then(DateTime::from_timestamp_millis),
                    last_attempt: attempt.and_then(DateTime::from_timestamp_millis),
                    last_error: error,
                    outbox: outbox as usize,
                });
            }
            Ok(out)
        })
    }
}

/// A store registered with a server that does not exist, for tests of the sessions.
#[cfg(test)]
pub(crate) fn registered_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("phone.db"), crate::StoreOptions::default()).expect("store");
    store
        .save_account(&Account {
            server: "sim://server".into(),
            device: Uuid::now_v7(),
            person: PersonId::new(),
            token: "t".into(),
        })
        .expect("account");
    (dir, store)
}
