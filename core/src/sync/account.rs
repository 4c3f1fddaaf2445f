//! What the device knows of its server: its registration, the memberships the server granted
//! (a read-only copy), and per-space sync status.

use chrono::{DateTime, Utc};
use quartier_protocol::{Membership, Role, RosterChanges};
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SpaceMembership {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub role: Role,
}

/// A member of a space as this device last heard from the server: the name they chose (may be
/// a pseudonym; `None` if they gave none) and their role. Apps show the name, never the id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Member {
    /// To match members with the authors of items.
    pub person_id: PersonId,
    pub display_name: Option<String>,
    pub role: Role,
}

/// Where one space's sync stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SpaceSyncStatus {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
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

/// Applies a page's member changes to the space's list, unless the list already holds them (a
/// page delivered late or twice never takes the list back).
pub(crate) fn apply_roster(conn: &Connection, space: Uuid, roster: &RosterChanges) -> Result<()> {
    let space = space.to_string();
    let held: i64 = conn
        .prepare_cached("SELECT coalesce(members_after, 0) FROM sync_spaces WHERE space_id = ?1")?
        .query_row([&space], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if roster.reset {
        // The server started over (restored from a backup): its list replaces ours, and its
        // numbers, lower than the one we held, are the ones to ask from.
        conn.prepare_cached("DELETE FROM space_members WHERE space_id = ?1")?
            .execute([&space])?;
    } else if roster.next <= held {
        return Ok(());
    }
    for member in &roster.members {
        // The server checked the name; one it should not have sent is shown as no name.
        let name =
            quartier_protocol::names::check_display_name(member.display_name.as_deref()).unwrap_or(None);
        conn.prepare_cached(
            "INSERT INTO space_members (space_id, person_id, display_name, role) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (space_id, person_id) DO UPDATE SET display_name = excluded.display_name, role = excluded.role",
        )?
        .execute(params![space, member.person.to_string(), name, member.role.as_str()])?;
    }
    for person in &roster.left {
        conn.prepare_cached("DELETE FROM space_members WHERE space_id = ?1 AND person_id = ?2")?
            .execute(params![space, person.to_string()])?;
    }
    conn.prepare_cached("UPDATE sync_spaces SET members_after = ?2 WHERE space_id = ?1")?
        .execute(params![space, roster.next])?;
    Ok(())
}

/// The members of `space` (only `person`, if given), in list order.
fn members_where(conn: &Connection, space: SpaceId, person: Option<PersonId>) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT person_id, display_name, role FROM space_members
         WHERE space_id = ?1 AND (?2 IS NULL OR person_id = ?2)",
    )?;
    let rows = stmt.query_map(params![space.to_string(), person.map(|p| p.to_string())], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (person, display_name, role) = row?;
        out.push(Member {
            person_id: person.parse()?,
            display_name,
            role: Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("member role {role}")))?,
        });
    }
    // Coordinators first, then caseworkers, volunteers, residents; by name (ignoring case)
    // within a role, nameless members last; the person id keeps the order stable.
    out.sort_by(|a, b| {
        b.role
            .cmp(&a.role)
            .then_with(|| a.display_name.is_none().cmp(&b.display_name.is_none()))
            .then_with(|| {
                let fold = |m: &Member| m.display_name.as_deref().map(str::to_lowercase);
                fold(a).cmp(&fold(b))
            })
            .then_with(|| a.person_id.cmp(&b.person_id))
    });
    Ok(out)
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

    /// The members of `space` as the server last stated them (each sync brings what changed):
    /// coordinators first, then caseworkers, volunteers and residents, by name within a role.
    /// Empty for a space this device has not synced yet. Reads only the store: works offline.
    pub fn members(&self, space: SpaceId) -> Result<Vec<Member>> {
        self.read(|conn| members_where(conn, space, None))
    }

    /// One member of `space` (e.g. an item's author, to show their name), if the store knows
    /// them as a member.
    pub fn member(&self, space: SpaceId, person: PersonId) -> Result<Option<Member>> {
        // One row by its key: an app looks up the author of every item it shows.
        self.read(|conn| Ok(members_where(conn, space, Some(person))?.pop()))
    }

    /// After the server took a new display name of this device's person: shows it in every
    /// member list at once, before the next sync confirms it.
    pub(crate) fn set_own_display_name(&self, person: PersonId, display_name: Option<&str>) -> Result<()> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE space_members SET display_name = ?2 WHERE person_id = ?1",
                params![person.to_string(), display_name],
            )?;
            Ok(())
        })
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
