//! Joining offline (`docs/protocol.md`, "Joining offline"): a coordinator's phone makes an
//! invite without the server and shows it as a QR code; the new device takes it, meets that
//! phone at once and receives the space's public content (what a resident reads); its own posts
//! wait in its outbox until its first connection, when the server confirms the invite
//! ([`crate::sync::SyncClient::confirm_offline_invites`]) and the membership becomes real.

use base64::Engine;
use ed25519_dalek::VerifyingKey;
use quartier_protocol::certificates::{OfflineInvite, SignedOfflineInvite};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::credentials;
use crate::error::{Error, Result};
use crate::model::{Role, SpaceId};
use crate::store::Store;

/// How an offline invite's text starts.
pub const OFFLINE_INVITE_PREFIX: &str = "quartier-offline:";
/// Most characters an offline invite's text may have (it fits a QR code).
pub const MAX_OFFLINE_INVITE_TEXT: usize = 2_048;
pub use quartier_protocol::certificates::MAX_OFFLINE_INVITE_MS;

/// What an offline invite's QR code carries: the signed invite and its secret (which never
/// travels in a session: the guest proves it knows it with a keyed hash of the session).
#[derive(serde::Serialize, serde::Deserialize)]
struct InviteCard {
    invite: SignedOfflineInvite,
    secret: quartier_protocol::peer::ByteBuf,
}

/// The secret of an invite this device made: derived from its key and the invite's id, so the
/// device need not keep a list of the invites it made.
pub(crate) fn invite_secret(device_key: &ed25519_dalek::SigningKey, invite: Uuid) -> [u8; 32] {
    let mut material = device_key.to_bytes().to_vec();
    material.extend_from_slice(invite.as_bytes());
    blake3::derive_key("quartier offline invite secret v1", &material)
}

/// What a guest sends as its proof in a session: a keyed hash of the proof payload.
pub(crate) fn guest_proof(secret: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    blake3::keyed_hash(secret, payload).as_bytes().to_vec()
}

/// An offline invite as the new device sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OfflineInviteInfo {
    pub space: SpaceId,
    pub role: Role,
    pub server: String,
    pub expires_at_ms: i64,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid("offline invite", reason)
}

fn encode(card: &InviteCard) -> Result<String> {
    let bytes = quartier_protocol::encode(card).map_err(|e| invalid(e.to_string()))?;
    Ok(format!(
        "{OFFLINE_INVITE_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

fn decode(text: &str) -> Result<InviteCard> {
    let text = text.trim();
    if text.len() > MAX_OFFLINE_INVITE_TEXT {
        return Err(invalid("the text is too long for an invite"));
    }
    let body = text
        .strip_prefix(OFFLINE_INVITE_PREFIX)
        .ok_or_else(|| invalid("this is not an offline invite"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| invalid("the invite is damaged"))?;
    quartier_protocol::decode(&bytes, 8 * MAX_OFFLINE_INVITE_TEXT)
        .map_err(|_| invalid("the invite is damaged"))
}

/// The invite's server key, if it is a valid key.
fn key_of(invite: &OfflineInvite) -> Result<VerifyingKey> {
    <[u8; 32]>::try_from(invite.server_key.as_slice())
        .ok()
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| invalid("the invite names no valid server key"))
}

/// An invite this device was given, with its secret.
pub(crate) struct HeldInvite {
    pub signed: SignedOfflineInvite,
    pub invite: OfflineInvite,
    pub secret: [u8; 32],
}

/// The unconfirmed, unexpired invites this device holds, read and checked.
pub(crate) fn held_invites(conn: &Connection, now: i64) -> Result<Vec<HeldInvite>> {
    let mut stmt = conn.prepare_cached(
        "SELECT invite, secret FROM guest_invites WHERE confirmed = 0 AND expires_at > ?1 ORDER BY space_id",
    )?;
    let rows = stmt.query_map([now], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (row, secret) = row?;
        let secret = <[u8; 32]>::try_from(secret.as_slice())
            .map_err(|_| Error::Corrupt("a kept offline invite's secret".into()))?;
        let signed: SignedOfflineInvite = quartier_protocol::decode(&row, 8 * MAX_OFFLINE_INVITE_TEXT)
            .map_err(|e| Error::Corrupt(format!("a kept offline invite: {e}")))?;
        let claims = signed.claims().map_err(|e| Error::Corrupt(e.to_string()))?;
        let (invite, _) = signed
            .verify(&key_of(&claims)?)
            .map_err(|e| Error::Corrupt(format!("a kept offline invite: {e}")))?;
        out.push(HeldInvite {
            signed,
            invite,
            secret,
        });
    }
    Ok(out)
}

/// Marks the invite of `space` confirmed by the server.
pub(crate) fn confirmed(conn: &Connection, space: Uuid) -> Result<()> {
    conn.execute(
        "UPDATE guest_invites SET confirmed = 1 WHERE space_id = ?1",
        [space.to_string()],
    )?;
    Ok(())
}

impl Store {
    /// Makes an invite to `space` for `role` (resident or volunteer), good for `valid_for_ms`
    /// (at most a week), without the server: the text of a QR code to show face to face. Needs
    /// this device's valid coordinator certificate for the space (from a sync).
    pub fn make_offline_invite(&self, space: SpaceId, role: Role, valid_for_ms: i64) -> Result<String> {
        if !matches!(role, Role::Resident | Role::Volunteer) {
            return Err(invalid("an offline invite makes residents or volunteers"));
        }
        if !(1..=MAX_OFFLINE_INVITE_MS).contains(&valid_for_ms) {
            return Err(invalid("an offline invite is good for at most a week"));
        }
        let now = crate::store::now_ms();
        let signed = self.read(|conn| {
            let account = crate::sync::load_account(conn)?.ok_or(Error::NotRegistered)?;
            let key =
                credentials::server_key(conn)?.ok_or_else(|| invalid("sync with the server once first"))?;
            let certificate =
                credentials::valid_certificate(conn, &key, account.device, space.as_uuid(), now)?
                    .map_err(|e| invalid(format!("this device's certificate: {e}")))?;
            if certificate.role != Role::Coordinator {
                return Err(Error::NotPermitted {
                    code: quartier_protocol::RejectCode::Forbidden,
                    message: "only coordinators make invites".into(),
                });
            }
            let signed_certificate = credentials::certificate(conn, account.device, space.as_uuid())?
                .ok_or_else(|| invalid("this device has no certificate for the space"))?;
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(|e| invalid(format!("no randomness: {e}")))?;
            let id = Uuid::from_bytes(id);
            let secret = invite_secret(self.signing_key(), id);
            let invite = OfflineInvite {
                id,
                space: space.as_uuid(),
                role,
                issued_by: account.device,
                issued_at_ms: now,
                expires_at_ms: (now + valid_for_ms).min(certificate.expires_at_ms),
                server: account.server,
                server_key: key.to_bytes().to_vec(),
                secret_hash: blake3::hash(&secret).as_bytes().to_vec(),
            };
            Ok(InviteCard {
                invite: invite.sign(self.signing_key(), signed_certificate),
                secret: quartier_protocol::peer::ByteBuf::from(secret.to_vec()),
            })
        })?;
        encode(&signed)
    }

    /// Takes an offline invite shown by a coordinator's phone: checks it (the server key it
    /// names signed the coordinator's certificate, that coordinator's device signed the invite,
    /// it has not expired) and keeps it, so this device can meet that phone
    /// ([`super::PeerSession`]) and confirm the invite at its first connection. A device
    /// registered with another server refuses it.
    pub fn accept_offline_invite(&self, text: &str) -> Result<OfflineInviteInfo> {
        let InviteCard {
            invite: signed,
            secret,
        } = decode(text)?;
        let claims = signed.claims().map_err(|e| invalid(e.to_string()))?;
        let key = key_of(&claims)?;
        let (invite, _) = signed.verify(&key).map_err(|e| invalid(e.to_string()))?;
        let now = crate::store::now_ms();
        if invite.expires_at_ms <= now {
            return Err(invalid("the invite has expired"));
        }
        if blake3::hash(&secret).as_bytes().as_slice() != invite.secret_hash.as_slice() {
            return Err(invalid("the invite is damaged"));
        }
        let stored = quartier_protocol::encode(&signed).map_err(|e| invalid(e.to_string()))?;
        self.write(|tx, _| {
            let account = crate::sync::load_account(tx)?;
            if let Some(account) = &account {
                let pinned = credentials::server_key(tx)?;
                let same_server = account.server.trim_end_matches('/') == invite.server.trim_end_matches('/')
                    && pinned.is_none_or(|p| p == key);
                if !same_server {
                    return Err(invalid("this device belongs to another server"));
                }
            }
            tx.execute(
                "INSERT INTO guest_invites (space_id, invite, secret, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (space_id) DO UPDATE SET invite = excluded.invite, secret = excluded.secret,
                     expires_at = excluded.expires_at, confirmed = 0",
                params![
                    invite.space.to_string(),
                    stored,
                    secret.as_slice(),
                    invite.expires_at_ms
                ],
            )?;
            Ok(())
        })?;
        Ok(OfflineInviteInfo {
            space: invite.space.into(),
            role: invite.role,
            server: invite.server,
            expires_at_ms: invite.expires_at_ms,
        })
    }

    /// The person id to write under before this device has registered (a new member joining
    /// offline writes at once): made once, kept, proposed to the server at registration, which
    /// takes it for the new person; after registration, the account's person (the same one,
    /// unless the device joined an existing person with a device link).
    pub fn provisional_person(&self) -> Result<crate::model::PersonId> {
        self.write(|tx, _| {
            if let Some(account) = crate::sync::load_account(tx)? {
                return Ok(account.person);
            }
            let kept: Option<String> = tx.query_row(
                "SELECT provisional_person FROM device WHERE singleton = 1",
                [],
                |r| r.get(0),
            )?;
            if let Some(person) = kept {
                return Ok(person.parse()?);
            }
            let person = crate::model::PersonId::new();
            tx.execute(
                "UPDATE device SET provisional_person = ?1 WHERE singleton = 1",
                [person.to_string()],
            )?;
            Ok(person)
        })
    }

    /// The offline invites this device holds that the server has not confirmed yet.
    pub fn offline_invites(&self) -> Result<Vec<OfflineInviteInfo>> {
        let now = crate::store::now_ms();
        self.read(|conn| {
            Ok(held_invites(conn, now)?
                .into_iter()
                .map(|HeldInvite { invite, .. }| OfflineInviteInfo {
                    space: invite.space.into(),
                    role: invite.role,
                    server: invite.server,
                    expires_at_ms: invite.expires_at_ms,
                })
                .collect())
        })
    }

    /// The first unconfirmed, unexpired invite this device holds: what a session without an
    /// account shows.
    pub(crate) fn guest_invite(&self, now: i64) -> Result<Option<HeldInvite>> {
        self.read(|conn| Ok(held_invites(conn, now)?.into_iter().next()))
    }
}

/// Whether this device has an account (otherwise a session is a guest's).
pub(crate) fn has_account(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM account WHERE singleton = 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}
