//! Persons and their devices.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{now_ms, secret_hash};
use crate::error::ServerError;

/// A registered device.
#[derive(Clone, Debug)]
pub struct DeviceRecord {
    pub device: Uuid,
    pub person: Uuid,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

fn parse_uuid(text: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device: parse_uuid(r.get(0)?)?,
        person: parse_uuid(r.get(1)?)?,
        public_key: r.get(2)?,
        revoked: r.get::<_, Option<i64>>(3)?.is_some(),
    })
}

/// Registers a new person with their first device.
pub fn register(
    conn: &Connection,
    public_key: &[u8],
    display_name: Option<&str>,
    token: &str,
) -> Result<DeviceRecord, ServerError> {
    let device = Uuid::now_v7();
    let person = Uuid::now_v7();
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO persons (person_id, display_name, created_at) VALUES (?1, ?2, ?3)",
        params![person.to_string(), display_name, now_ms()],
    )?;
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
