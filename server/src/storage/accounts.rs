//! Persons and their devices.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{now_ms, secret_hash, stored_uuid};
use crate::error::ServerError;

/// A registered device.
#[derive(Clone, Debug)]
pub struct DeviceRecord {
    pub device: Uuid,
    pub person: Uuid,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device: stored_uuid(&r.get::<_, String>(0)?)?,
        person: stored_uuid(&r.get::<_, String>(1)?)?,
        public_key: r.get(2)?,
        revoked: r.get::<_, Option<i64>>(3)?.is_some(),
    })
}

/// Registers a device: of a new person, or, with a valid link code, of the person who made
/// the code (the code is used up).
pub fn register(
    conn: &Connection,
    public_key: &[u8],
    display_name: Option<&str>,
    token: &str,
    link_code: Option<&str>,
) -> Result<DeviceRecord, ServerError> {
    register_as(conn, public_key, display_name, token, link_code, None)
}

/// As [`register`], for a new person with the id the device proposes (the one it wrote under
/// before registering), unless that id is taken or nil: then it is refused with `409`, and
/// nothing is registered.
pub fn register_as(
    conn: &Connection,
    public_key: &[u8],
    display_name: Option<&str>,
    token: &str,
    link_code: Option<&str>,
    proposed_person: Option<Uuid>,
) -> Result<DeviceRecord, ServerError> {
    let device = Uuid::now_v7();
    let tx = conn.unchecked_transaction()?;
    let linked_person = match link_code {
        Some(code) => {
            let person: Option<String> = tx
                .prepare_cached(
                    "DELETE FROM device_links WHERE code_hash = ?1 AND expires_at > ?2 RETURNING person_id",
                )?
                .query_row(params![secret_hash(code), now_ms()], |r| r.get(0))
                .optional()?;
            match person {
                Some(p) => Some(stored_uuid(&p)?),
                None => {
                    return Err(ServerError::Forbidden(
                        "unknown, used or expired device link code; make a new one on your other device"
                            .into(),
                    ))
                }
            }
        }
        None => None,
    };
    let proposed = match (linked_person, proposed_person) {
        (None, Some(person)) => {
            // A UUIDv7 (what devices make), not a person's, nor any other id a person id must
            // never be: a space, a conversation, a team (`counselling::id_taken`), or one that
            // media uploads are kept under (a conversation's attachments' derived uploader).
            let taken: bool = person.get_version_num() != 7
                || super::counselling::id_taken(&tx, person)?
                || tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM blob_uploads WHERE person_id = ?1)
                             OR EXISTS (SELECT 1 FROM blob_claims WHERE person_id = ?1)",
                    )?
                    .query_row([person.to_string()], |r| r.get(0))?;
            if taken {
                return Err(ServerError::Conflict(
                    "the person id this device proposes is taken; register without it".into(),
                ));
            }
            Some(person)
        }
        _ => None,
    };
    let person = linked_person.or(proposed).unwrap_or_else(Uuid::now_v7);
    let taken: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM devices WHERE public_key = ?1)")?
        .query_row([public_key], |r| r.get(0))?;
    if taken {
        return Err(ServerError::Conflict(
            "this public key is already registered; a device registers once (make a new key for a new device)".into(),
        ));
    }
    if linked_person.is_none() {
        tx.execute(
            "INSERT INTO persons (person_id, display_name, created_at) VALUES (?1, ?2, ?3)",
            params![person.to_string(), display_name, now_ms()],
        )?;
    }
    tx.execute(
        "INSERT INTO devices (device_id, person_id, public_key, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![device.to_string(), person.to_string(), public_key, secret_hash(token), now_ms()],
    )?;
    tx.commit()?;
    Ok(DeviceRecord {
        device,
        person,
        public_key: public_key.to_vec(),
        revoked: false,
    })
}

/// How long a device link code stays valid.
pub const DEVICE_LINK_TTL_MS: i64 = 10 * 60 * 1000;

/// Stores a one-use link code for `person`'s next device; returns when it expires. Expired
/// codes are cleared on the way.
pub fn create_device_link(conn: &Connection, person: Uuid, code: &str) -> Result<i64, ServerError> {
    let now = now_ms();
    conn.execute("DELETE FROM device_links WHERE expires_at <= ?1", [now])?;
    let open: i64 = conn.query_row(
        "SELECT count(*) FROM device_links WHERE person_id = ?1",
        [person.to_string()],
        |r| r.get(0),
    )?;
    if open >= 5 {
        return Err(ServerError::Conflict(
            "five device link codes are open already; use one or wait ten minutes".into(),
        ));
    }
    let expires = now + DEVICE_LINK_TTL_MS;
    conn.execute(
        "INSERT INTO device_links (code_hash, person_id, expires_at) VALUES (?1, ?2, ?3)",
        params![secret_hash(code), person.to_string(), expires],
    )?;
    Ok(expires)
}

/// The device a bearer token belongs to (revoked devices included: they learn of it by syncing).
pub fn device_by_token(conn: &Connection, token: &str) -> Result<Option<DeviceRecord>, ServerError> {
    Ok(conn
        .prepare_cached(
            "SELECT device_id, person_id, public_key, revoked_at FROM devices WHERE token_hash = ?1",
        )?
        .query_row([secret_hash(token)], device_from_row)
        .optional()?)
}

/// A device by id.
pub fn device(conn: &Connection, device: Uuid) -> Result<Option<DeviceRecord>, ServerError> {
    Ok(conn
        .prepare_cached(
            "SELECT device_id, person_id, public_key, revoked_at FROM devices WHERE device_id = ?1",
        )?
        .query_row([device.to_string()], device_from_row)
        .optional()?)
}

/// Revokes a device at once.
pub fn revoke_device(conn: &Connection, device: Uuid) -> Result<bool, ServerError> {
    Ok(conn.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
        params![device.to_string(), now_ms()],
    )? == 1)
}

/// A person as `admin persons` lists them.
#[derive(Clone, Debug)]
pub struct PersonRecord {
    pub person: Uuid,
    pub display_name: Option<String>,
    pub approved: bool,
    /// Whether the person is an organisation admin (may appoint caseworkers).
    pub org_admin: bool,
    pub devices: i64,
}

/// Every person, oldest first.
pub fn persons(conn: &Connection) -> Result<Vec<PersonRecord>, ServerError> {
    let mut stmt = conn.prepare(
        "SELECT p.person_id, p.display_name, p.approved_at IS NOT NULL,
                (SELECT count(*) FROM devices d WHERE d.person_id = p.person_id AND d.revoked_at IS NULL),
                EXISTS (SELECT 1 FROM org_admins o WHERE o.person_id = p.person_id)
         FROM persons p ORDER BY p.created_at, p.person_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PersonRecord {
            person: stored_uuid(&r.get::<_, String>(0)?)?,
            display_name: r.get(1)?,
            approved: r.get(2)?,
            devices: r.get(3)?,
            org_admin: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Approves a person (or withdraws it), by person id or by the id of one of their devices;
/// returns the person.
pub fn set_approved(conn: &Connection, id: Uuid, approved: bool) -> Result<Uuid, ServerError> {
    let person = match device(conn, id)? {
        Some(d) => d.person,
        None => id,
    };
    let changed = conn.execute(
        "UPDATE persons SET approved_at = CASE WHEN ?2 THEN coalesce(approved_at, ?3) END WHERE person_id = ?1",
        params![person.to_string(), approved, now_ms()],
    )?;
    if changed == 0 {
        return Err(ServerError::NotFound(format!("no person or device {id}")));
    }
    Ok(person)
}

/// Makes a person an organisation admin, who may appoint caseworkers in every space of this
/// server (or withdraws it), by person id or by the id of one of their devices; returns the
/// person.
pub fn set_org_admin(conn: &Connection, id: Uuid, admin: bool) -> Result<Uuid, ServerError> {
    let person = match device(conn, id)? {
        Some(d) => d.person,
        None => id,
    };
    let known: bool = conn
        .prepare_cached("SELECT 1 FROM persons WHERE person_id = ?1")?
        .exists([person.to_string()])?;
    if !known {
        return Err(ServerError::NotFound(format!("no person or device {id}")));
    }
    if admin {
        conn.execute(
            "INSERT OR IGNORE INTO org_admins (person_id, granted_at) VALUES (?1, ?2)",
            params![person.to_string(), now_ms()],
        )?;
    } else {
        conn.execute(
            "DELETE FROM org_admins WHERE person_id = ?1",
            [person.to_string()],
        )?;
        // Their open caseworker invites go with it: a withdrawn appointer appoints no one more.
        conn.execute(
            "DELETE FROM invites WHERE role = 'caseworker' AND created_by = ?1",
            [person.to_string()],
        )?;
    }
    Ok(person)
}

/// Whether the person is an organisation admin.
pub fn is_org_admin(conn: &Connection, person: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM org_admins WHERE person_id = ?1")?
        .exists([person.to_string()])?)
}

/// Whether an administrator approved the person.
pub fn is_approved(conn: &Connection, person: Uuid) -> Result<bool, ServerError> {
    Ok(conn
        .prepare_cached("SELECT approved_at IS NOT NULL FROM persons WHERE person_id = ?1")?
        .query_row([person.to_string()], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// Sets (or, with `None`, removes) a person's display name, already checked
/// (`quartier_protocol::names::check_display_name`); every space they belong to lists the
/// change for its members' devices.
pub fn set_display_name(
    conn: &Connection,
    person: Uuid,
    display_name: Option<&str>,
) -> Result<(), ServerError> {
    let tx = conn.unchecked_transaction()?;
    let current: Option<Option<String>> = tx
        .query_row(
            "SELECT display_name FROM persons WHERE person_id = ?1",
            params![person.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(ServerError::NotFound("no such person".into()));
    };
    // The same name again changes nothing: no member change for every device of every space.
    if current.as_deref() == display_name {
        return Ok(());
    }
    tx.execute(
        "UPDATE persons SET display_name = ?2 WHERE person_id = ?1",
        params![person.to_string(), display_name],
    )?;
    super::spaces::person_changed(&tx, person)?;
    tx.commit()?;
    Ok(())
}
