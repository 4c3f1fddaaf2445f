//! The server's signing key, membership certificates and revocation lists (device to device,
//! `docs/protocol.md`, "Certificates"). Certificates are made on request from the membership
//! tables; revocation lists are worked out from them too (members who left, roles that changed,
//! devices revoked), so no path that changes a membership can forget to revoke.

use ed25519_dalek::SigningKey;
use quartier_protocol::certificates::{
    Certificate, Revocation, RevocationList, SignedCertificate, SignedRevocationList, MAX_REVOCATIONS,
};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{accounts::DeviceRecord, now_ms, spaces};
use crate::error::ServerError;

/// How long a certificate is good for: a device offline longer than this cannot show its
/// membership to another device until it syncs (and a revocation it never heard of stops
/// mattering after this long).
pub const CERTIFICATE_VALIDITY_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The key, made with the first start.
pub(crate) fn load_or_create_key(conn: &Connection) -> Result<SigningKey, ServerError> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT signing_key FROM server_identity WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(bytes) = stored {
        let secret = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| ServerError::Startup("the server's signing key has the wrong length".into()))?;
        return Ok(SigningKey::from_bytes(&secret));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| ServerError::Startup(format!("no randomness: {e}")))?;
    conn.execute(
        "INSERT INTO server_identity (singleton, signing_key, created_at) VALUES (1, ?1, ?2)",
        params![secret.as_slice(), now_ms()],
    )?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Revocations of `space` that can still void an unexpired certificate, by device, newest
/// time per device; past [`MAX_REVOCATIONS`] (a list must stay one signed message), the newest.
fn revocations(conn: &Connection, space: Uuid, now: i64) -> Result<Vec<Revocation>, ServerError> {
    let cutoff = now - CERTIFICATE_VALIDITY_MS;
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, max(since) FROM (
             SELECT d.device_id, m.revoked_at AS since FROM members m
                 JOIN devices d ON d.person_id = m.person_id
                 WHERE m.space_id = ?1 AND m.revoked_at > ?2
             UNION ALL
             SELECT d.device_id, m.role_since FROM members m
                 JOIN devices d ON d.person_id = m.person_id
                 WHERE m.space_id = ?1 AND m.role_since > ?2
             UNION ALL
             SELECT d.device_id, d.revoked_at FROM devices d
                 JOIN members m ON m.person_id = d.person_id AND m.space_id = ?1
                 WHERE d.revoked_at > ?2
         ) GROUP BY device_id ORDER BY max(since) DESC, device_id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![space.to_string(), cutoff, MAX_REVOCATIONS as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (device, since_ms) = row?;
        let device = Uuid::parse_str(&device).map_err(|e| ServerError::Internal(e.to_string()))?;
        out.push(Revocation { device, since_ms });
    }
    Ok(out)
}

/// The revocation list of `space` if it is newer than `after_ms` (the list the device holds):
/// issued at its newest revocation, so two devices holding the same revocations hold lists of
/// the same time. `None` when there is nothing newer.
pub fn revocation_list(
    conn: &Connection,
    key: &SigningKey,
    space: Uuid,
    after_ms: i64,
    now: i64,
) -> Result<Option<SignedRevocationList>, ServerError> {
    let revoked = revocations(conn, space, now)?;
    let Some(issued_at_ms) = revoked.iter().map(|r| r.since_ms).max() else {
        return Ok(None);
    };
    if issued_at_ms <= after_ms {
        return Ok(None);
    }
    Ok(Some(
        RevocationList {
            space,
            issued_at_ms,
            revoked,
        }
        .sign(key),
    ))
}

/// A certificate for `device` in `space`, if its person is a member and the device is not
/// revoked; issued after the newest revocation of the device, so no list voids it.
pub fn certificate(
    conn: &Connection,
    key: &SigningKey,
    space: Uuid,
    device: &DeviceRecord,
    now: i64,
) -> Result<Option<SignedCertificate>, ServerError> {
    if device.revoked {
        return Ok(None);
    }
    let Some(role) = spaces::role_of(conn, space, device.person)? else {
        return Ok(None);
    };
    let newest_revocation: Option<i64> = conn
        .prepare_cached(
            "SELECT max(coalesce(m.role_since, 0)) FROM members m
             WHERE m.space_id = ?1 AND m.person_id = ?2",
        )?
        .query_row(params![space.to_string(), device.person.to_string()], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    let issued_at_ms = now.max(newest_revocation.unwrap_or(0) + 1);
    Ok(Some(
        Certificate {
            space,
            person: device.person,
            device: device.device,
            device_key: device.public_key.clone(),
            role,
            issued_at_ms,
            expires_at_ms: issued_at_ms + CERTIFICATE_VALIDITY_MS,
        }
        .sign(key),
    ))
}
