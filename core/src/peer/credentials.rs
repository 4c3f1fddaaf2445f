//! Certificates, revocation lists and change signatures as the store keeps them
//! (`docs/protocol.md`, "Certificates"): asked for and taken in with every sync, shown to and
//! taken from peers. Every certificate and list is checked against the pinned server key before
//! it is kept; nothing here trusts a peer.

use ed25519_dalek::VerifyingKey;
use quartier_protocol::certificates::{
    Certificate, CertificateError, RevocationList, SignedCertificate, SignedRevocationList,
};
use quartier_protocol::{
    Credentials, CredentialsRequest, RevocationCursor, SignerRef, MAX_SIGNER_CERTIFICATES,
};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The server key this device pinned with its first credentials.
pub(crate) fn server_key(conn: &Connection) -> Result<Option<VerifyingKey>> {
    let key: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT server_key FROM account WHERE singleton = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(Some(bytes)) = key else { return Ok(None) };
    let bytes = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::Corrupt("the pinned server key has the wrong length".into()))?;
    VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|_| Error::Corrupt("the pinned server key is not a valid key".into()))
}

/// Whether a certificate should be renewed: past half its life.
fn due_for_renewal(issued_at: i64, expires_at: i64, now: i64) -> bool {
    now >= issued_at + (expires_at - issued_at) / 2
}

/// What the next sync asks for: certificates of this device where it has none, one of
/// another role, or one past half its life; certificates of the devices whose changes it holds
/// where it has no valid one; newer revocation lists of its spaces.
pub(crate) fn credentials_request(
    conn: &Connection,
    own_device: Uuid,
    now: i64,
) -> Result<CredentialsRequest> {
    let mut request = CredentialsRequest::default();
    let mut stmt = conn.prepare_cached(
        "SELECT m.space_id, c.role IS NULL OR c.role <> m.role, c.issued_at, c.expires_at,
                coalesce(r.issued_at, 0)
         FROM memberships m
         LEFT JOIN certificates c ON c.space_id = m.space_id AND c.device = ?1
         LEFT JOIN revocation_lists r ON r.space_id = m.space_id
         ORDER BY m.space_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![
            own_device.to_string(),
            quartier_protocol::MAX_CURSORS_PER_REQUEST as i64
        ],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    for row in rows {
        let (space, other_role, issued, expires, list_at) = row?;
        let space = parse_stored_uuid(&space)?;
        let renew = match (issued, expires) {
            (Some(issued), Some(expires)) => other_role || due_for_renewal(issued, expires, now),
            _ => true,
        };
        if renew {
            request.own.push(space);
        }
        request.revocations.push(RevocationCursor {
            space,
            after_ms: list_at,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT g.space_id, g.device FROM signers g
         JOIN memberships m ON m.space_id = g.space_id
         LEFT JOIN certificates c ON c.device = g.device AND c.space_id = g.space_id
         WHERE g.device <> ?1 AND (c.device IS NULL OR c.issued_at + (c.expires_at - c.issued_at) / 2 <= ?2)
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![own_device.to_string(), now, MAX_SIGNER_CERTIFICATES as i64],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    for row in rows {
        let (space, device) = row?;
        request.signers.push(SignerRef {
            space: parse_stored_uuid(&space)?,
            device: parse_stored_uuid(&device)?,
        });
    }
    Ok(request)
}

/// Takes in what a server answered: pins its key the first time (the sync runs over the same
/// authenticated connection as the registration), then keeps every certificate and list its key
/// signed. A server that answers with another key than the pinned one is not believed: its
/// credentials are dropped and logged.
pub(crate) fn apply_credentials(conn: &Connection, credentials: &Credentials) -> Result<()> {
    let offered = <[u8; 32]>::try_from(credentials.server_key.as_slice())
        .ok()
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let Some(offered) = offered else {
        tracing::warn!("the server's credentials carry no valid key; ignored");
        return Ok(());
    };
    let key = match server_key(conn)? {
        Some(pinned) if pinned != offered => {
            tracing::warn!(
                "the server signs with another key than the one pinned; its credentials are ignored"
            );
            return Ok(());
        }
        Some(pinned) => pinned,
        None => {
            conn.execute(
                "UPDATE account SET server_key = ?1 WHERE singleton = 1",
                [offered.to_bytes().as_slice()],
            )?;
            offered
        }
    };
    for signed in &credentials.certificates {
        match signed.verify(&key) {
            Ok(certificate) => keep_certificate(conn, &certificate, signed)?,
            Err(e) => tracing::warn!(error = %e, "a certificate from the server does not verify; ignored"),
        }
    }
    for signed in &credentials.revocations {
        match signed.verify(&key) {
            Ok(list) => keep_revocation_list(conn, &list, signed)?,
            Err(e) => {
                tracing::warn!(error = %e, "a revocation list from the server does not verify; ignored")
            }
        }
    }
    Ok(())
}

/// Keeps a verified certificate unless a newer one of the same device and space is kept.
pub(crate) fn keep_certificate(
    conn: &Connection,
    certificate: &Certificate,
    signed: &SignedCertificate,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO certificates (device, space_id, person_id, role, issued_at, expires_at, body, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (device, space_id) DO UPDATE SET person_id = excluded.person_id, role = excluded.role,
             issued_at = excluded.issued_at, expires_at = excluded.expires_at, body = excluded.body,
             signature = excluded.signature
         WHERE excluded.issued_at > certificates.issued_at",
    )?
    .execute(params![
        certificate.device.to_string(),
        certificate.space.to_string(),
        certificate.person.to_string(),
        certificate.role.as_str(),
        certificate.issued_at_ms,
        certificate.expires_at_ms,
        signed.body,
        signed.signature,
    ])?;
    Ok(())
}

/// Keeps a verified list if it is newer than the one kept.
pub(crate) fn keep_revocation_list(
    conn: &Connection,
    list: &RevocationList,
    signed: &SignedRevocationList,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO revocation_lists (space_id, issued_at, body, signature) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (space_id) DO UPDATE SET issued_at = excluded.issued_at, body = excluded.body,
             signature = excluded.signature
         WHERE excluded.issued_at > revocation_lists.issued_at",
    )?
    .execute(params![
        list.space.to_string(),
        list.issued_at_ms,
        signed.body,
        signed.signature
    ])?;
    Ok(())
}

/// The newest revocation list kept for `space`, as signed.
pub(crate) fn revocation_list(conn: &Connection, space: Uuid) -> Result<Option<SignedRevocationList>> {
    Ok(conn
        .prepare_cached("SELECT body, signature FROM revocation_lists WHERE space_id = ?1")?
        .query_row([space.to_string()], |r| {
            Ok(SignedRevocationList {
                body: r.get(0)?,
                signature: r.get(1)?,
            })
        })
        .optional()?)
}

/// The certificate kept for `device` in `space`, as signed.
pub(crate) fn certificate(conn: &Connection, device: Uuid, space: Uuid) -> Result<Option<SignedCertificate>> {
    Ok(conn
        .prepare_cached("SELECT body, signature FROM certificates WHERE device = ?1 AND space_id = ?2")?
        .query_row(params![device.to_string(), space.to_string()], |r| {
            Ok(SignedCertificate {
                body: r.get(0)?,
                signature: r.get(1)?,
            })
        })
        .optional()?)
}

/// A kept certificate, checked again (the pinned key, expiry, the newest list).
pub(crate) fn valid_certificate(
    conn: &Connection,
    key: &VerifyingKey,
    device: Uuid,
    space: Uuid,
    now: i64,
) -> Result<std::result::Result<Certificate, CertificateError>> {
    let Some(signed) = certificate(conn, device, space)? else {
        return Ok(Err(CertificateError::Malformed("no certificate".into())));
    };
    let list = newest_list(conn, key, space)?;
    Ok(signed
        .verify(key)
        .and_then(|c| c.check_valid(now, list.as_ref()).map(|()| c)))
}

/// The newest revocation list kept for `space`, read.
pub(crate) fn newest_list(
    conn: &Connection,
    key: &VerifyingKey,
    space: Uuid,
) -> Result<Option<RevocationList>> {
    Ok(revocation_list(conn, space)?.and_then(|signed| signed.verify(key).ok()))
}

/// Keeps the signature of a change another device made, and drops a carried copy of it from
/// the outbox when it came from the server (the server has it).
pub(crate) fn keep_signature(
    conn: &Connection,
    doc_id: &str,
    hash: &[u8],
    device: Uuid,
    signature: &[u8],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO change_signatures (hash, doc_id, device, signature) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![hash, doc_id, device.to_string(), signature])?;
    Ok(())
}

/// Notes that this device keeps signatures of `device` in `space` (`signers`): the sync asks for
/// its certificate. Once per device and space of a page, not per signature.
pub(crate) fn keep_signer(conn: &Connection, space: Uuid, device: Uuid) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO signers (space_id, device) VALUES (?1, ?2)")?
        .execute(params![space.to_string(), device.to_string()])?;
    Ok(())
}

/// Whether this device holds a certificate of `device` in `space` (valid or not).
pub(crate) fn holds_certificate(conn: &Connection, device: Uuid, space: Uuid) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM certificates WHERE device = ?1 AND space_id = ?2")?
        .query_row(params![device.to_string(), space.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The kept signature of a change of `doc_id`: its device and signature.
pub(crate) fn signature_of(conn: &Connection, doc_id: &str, hash: &[u8]) -> Result<Option<(Uuid, Vec<u8>)>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT device, signature FROM change_signatures WHERE doc_id = ?1 AND hash = ?2")?
        .query_row(params![doc_id, hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(device, signature)| Ok((parse_stored_uuid(&device)?, signature)))
        .transpose()
}

use crate::error::parse_stored_uuid;

/// Whether this device keeps the signatures it needs to show documents from the server to peers
/// (`Store::set_peer_signatures`).
pub(crate) fn keeps_peer_signatures(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT peer_signatures FROM device WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(true))
}

impl crate::store::Store {
    /// Whether this device fetches the authors' signatures of what it syncs from the server
    /// whole (an initial sync's forms and snapshots), which it needs to show those documents to
    /// peers; on by default. They follow each space's content in pages of their own (about
    /// 100 bytes a document that do not compress: 0.8 MiB for 8 000 documents), so turning them
    /// off saves a data plan that much, and this device then shows peers only its own changes
    /// and those it got from peers or as single changes. Turned on again, the next sync fetches
    /// the signatures of everything already held (from a server that knows the stream).
    pub fn set_peer_signatures(&self, enabled: bool) -> Result<()> {
        self.write(|tx, _| {
            let was = keeps_peer_signatures(tx)?;
            tx.execute(
                "UPDATE device SET peer_signatures = ?1 WHERE singleton = 1",
                [enabled],
            )?;
            match (was, enabled) {
                // Everything held so far, from each space's start up to its cursor.
                (false, true) => tx.execute(
                    "UPDATE sync_spaces SET signatures_next = '' WHERE cursor IS NOT NULL",
                    [],
                )?,
                (true, false) => tx.execute("UPDATE sync_spaces SET signatures_next = NULL", [])?,
                _ => 0,
            };
            Ok(())
        })
    }

    /// See [`Self::set_peer_signatures`].
    pub fn peer_signatures(&self) -> Result<bool> {
        self.read(keeps_peer_signatures)
    }
}

/// A certificate this device holds of its own, as the app shows it ("can meet other devices in
/// this space as a volunteer until …").
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PeerCertificate {
    pub space: crate::model::SpaceId,
    pub role: crate::model::Role,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    /// Not expired and not revoked by the newest list this device holds.
    pub valid: bool,
}

impl crate::store::Store {
    /// This device's own certificates, by space (empty before the first sync with a server that
    /// issues them).
    pub fn peer_certificates(&self) -> Result<Vec<PeerCertificate>> {
        let now = crate::store::now_ms();
        self.read(|conn| {
            let Some(account) = crate::sync::load_account(conn)? else {
                return Ok(Vec::new());
            };
            let Some(key) = server_key(conn)? else {
                return Ok(Vec::new());
            };
            let spaces: Vec<String> = conn
                .prepare("SELECT space_id FROM certificates WHERE device = ?1 ORDER BY space_id")?
                .query_map([account.device.to_string()], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for space in spaces {
                let space = parse_stored_uuid(&space)?;
                let Some(signed) = certificate(conn, account.device, space)? else {
                    continue;
                };
                let Ok(cert) = signed.verify(&key) else { continue };
                let list = newest_list(conn, &key, space)?;
                out.push(PeerCertificate {
                    space: space.into(),
                    role: cert.role,
                    issued_at_ms: cert.issued_at_ms,
                    expires_at_ms: cert.expires_at_ms,
                    valid: cert.check_valid(now, list.as_ref()).is_ok(),
                });
            }
            Ok(out)
        })
    }
}
