//! Membership certificates and revocation lists: what the server signs so that two devices can
//! check each other's membership and role without it (device to device, `docs/protocol.md`).
//!
//! A certificate binds a device key to a person, a space and a role until it expires. A
//! revocation list, also signed by the server, voids every certificate of a device for a space
//! issued up to a time; a list always wins over a certificate it names. The signed bytes are kept
//! as they were signed (`body`), so checking needs no canonical re-encoding.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Role;

/// Prefix of the bytes the server signs for a certificate.
pub const CERTIFICATE_SIGNING_CONTEXT: &[u8] = b"quartier/certificate/v1\0";
/// Prefix of the bytes the server signs for a revocation list.
pub const REVOCATIONS_SIGNING_CONTEXT: &[u8] = b"quartier/revocations/v1\0";

/// Most bytes a certificate's or a list's body may have (a list names at most
/// [`MAX_REVOCATIONS`] devices).
pub const MAX_CERTIFICATE_BYTES: usize = 512;
pub const MAX_REVOCATIONS: usize = 4_096;
pub const MAX_REVOCATION_LIST_BYTES: usize = 128 + MAX_REVOCATIONS * 64;

/// What the server says about one device of one member of one space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub space: Uuid,
    pub person: Uuid,
    pub device: Uuid,
    /// The device's Ed25519 public key (32 bytes).
    #[serde(with = "serde_bytes")]
    pub device_key: Vec<u8>,
    pub role: Role,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A certificate as the server signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCertificate {
    /// CBOR of a [`Certificate`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// One revocation: every certificate of `device` for the list's space issued at or before
/// `since_ms` is void (a role changed, the member left, the device was revoked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub device: Uuid,
    pub since_ms: i64,
}

/// The revocations of one space, as of `issued_at_ms`: a later list replaces an earlier one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    pub space: Uuid,
    pub issued_at_ms: i64,
    pub revoked: Vec<Revocation>,
}

/// A revocation list as the server signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRevocationList {
    /// CBOR of a [`RevocationList`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// Why a certificate or a list is not taken. The messages name no person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate is not signed by this device's server")]
    BadSignature,
    #[error("the certificate cannot be read: {0}")]
    Malformed(String),
    #[error("the certificate expired")]
    Expired,
    #[error("the certificate was revoked")]
    Revoked,
    #[error("the certificate names another device or key")]
    WrongDevice,
}

fn signing_payload(context: &[u8], body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(context.len() + body.len());
    payload.extend_from_slice(context);
    payload.extend_from_slice(body);
    payload
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain structs into a Vec cannot fail.
    ciborium::into_writer(value, &mut out).expect("CBOR into memory");
    out
}

fn verify_signed(
    context: &[u8],
    body: &[u8],
    signature: &[u8],
    server_key: &VerifyingKey,
) -> Result<(), CertificateError> {
    let signature = <[u8; 64]>::try_from(signature).map_err(|_| CertificateError::BadSignature)?;
    server_key
        .verify_strict(
            &signing_payload(context, body),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| CertificateError::BadSignature)
}

impl Certificate {
    /// Signs the certificate with the server's key.
    pub fn sign(&self, server_key: &SigningKey) -> SignedCertificate {
        let body = cbor(self);
        let signature = server_key.sign(&signing_payload(CERTIFICATE_SIGNING_CONTEXT, &body));
        SignedCertificate {
            body,
            signature: signature.to_bytes().to_vec(),
        }
    }

    /// The device key it certifies, if it is a valid Ed25519 key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CertificateError> {
        let key =
            <[u8; 32]>::try_from(self.device_key.as_slice()).map_err(|_| CertificateError::WrongDevice)?;
        VerifyingKey::from_bytes(&key).map_err(|_| CertificateError::WrongDevice)
    }

    /// Whether `list` (of this certificate's space) voids it.
    pub fn is_revoked_by(&self, list: &RevocationList) -> bool {
        list.space == self.space
            && list
                .revoked
                .iter()
                .any(|r| r.device == self.device && self.issued_at_ms <= r.since_ms)
    }

    /// The checks that need a clock and the space's newest list: not expired, not revoked.
    pub fn check_valid(&self, now_ms: i64, list: Option<&RevocationList>) -> Result<(), CertificateError> {
        if now_ms >= self.expires_at_ms {
            return Err(CertificateError::Expired);
        }
        if list.is_some_and(|l| self.is_revoked_by(l)) {
            return Err(CertificateError::Revoked);
        }
        Ok(())
    }
}

impl SignedCertificate {
    /// The certificate, if the server's key signed exactly these bytes.
    pub fn verify(&self, server_key: &VerifyingKey) -> Result<Certificate, CertificateError> {
        if self.body.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::Malformed("too large".into()));
        }
        verify_signed(
            CERTIFICATE_SIGNING_CONTEXT,
            &self.body,
            &self.signature,
            server_key,
        )?;
        let certificate: Certificate = ciborium::from_reader(self.body.as_slice())
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        certificate.verifying_key()?;
        Ok(certificate)
    }
}

impl RevocationList {
    /// Signs the list with the server's key.
    pub fn sign(&self, server_key: &SigningKey) -> SignedRevocationList {
        let body = cbor(self);
        let signature = server_key.sign(&signing_payload(REVOCATIONS_SIGNING_CONTEXT, &body));
        SignedRevocationList {
            body,
            signature: signature.to_bytes().to_vec(),
        }
    }
}

impl SignedRevocationList {
    /// The list, if the server's key signed exactly these bytes.
    pub fn verify(&self, server_key: &VerifyingKey) -> Result<RevocationList, CertificateError> {
        if self.body.len() > MAX_REVOCATION_LIST_BYTES {
            return Err(CertificateError::Malformed(
                "the revocation list is too large".into(),
            ));
        }
        verify_signed(
            REVOCATIONS_SIGNING_CONTEXT,
            &self.body,
            &self.signature,
            server_key,
        )?;
        let list: RevocationList = ciborium::from_reader(self.body.as_slice())
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        if list.revoked.len() > MAX_REVOCATIONS {
            return Err(CertificateError::Malformed(
                "the revocation list is too large".into(),
            ));
        }
        Ok(list)
    }
}

/// Prefix of the bytes a coordinator's device signs for an offline invite.
pub const OFFLINE_INVITE_SIGNING_CONTEXT: &[u8] = b"quartier/offline-invite/v1\0";

/// An invite a coordinator's phone makes without the server (joining offline,
/// `docs/protocol.md`): shown as a QR code face to face, it lets the new device take the space's
/// public content from that phone at once, and is redeemed with the server at the new device's
/// first connection, which makes the membership real.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineInvite {
    pub id: Uuid,
    pub space: Uuid,
    /// The role the new member gets when the server confirms (resident or volunteer).
    pub role: Role,
    /// The coordinator's device that made it (and alone hosts the new device until then).
    pub issued_by: Uuid,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    /// Where and whom the new device trusts: the server's address and signing key.
    pub server: String,
    #[serde(with = "serde_bytes")]
    pub server_key: Vec<u8>,
    /// BLAKE3 of the invite's secret, which only the QR code carries: the invite alone (shown
    /// in a session, copied off a screen) neither lets its bearer be hosted nor redeems it.
    #[serde(with = "serde_bytes")]
    pub secret_hash: Vec<u8>,
}

/// An offline invite as the coordinator's device signed it, with that device's certificate
/// (which shows the server made it a coordinator of the space).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOfflineInvite {
    /// CBOR of an [`OfflineInvite`].
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    pub certificate: SignedCertificate,
}

/// Most bytes an offline invite's body may have.
pub const MAX_OFFLINE_INVITE_BYTES: usize = 1024;

impl OfflineInvite {
    /// Signs the invite with the coordinator device's key.
    pub fn sign(&self, device_key: &SigningKey, certificate: SignedCertificate) -> SignedOfflineInvite {
        let body = cbor(self);
        let signature = device_key.sign(&signing_payload(OFFLINE_INVITE_SIGNING_CONTEXT, &body));
        SignedOfflineInvite {
            body,
            signature: signature.to_bytes().to_vec(),
            certificate,
        }
    }
}

impl SignedOfflineInvite {
    /// The invite and its issuer's certificate, if the server's key signed the certificate, the
    /// certificate makes its device a coordinator of the invite's space, and that device signed
    /// the invite. Expiry is the caller's to check (with its clock).
    pub fn verify(
        &self,
        server_key: &VerifyingKey,
    ) -> Result<(OfflineInvite, Certificate), CertificateError> {
        if self.body.len() > MAX_OFFLINE_INVITE_BYTES {
            return Err(CertificateError::Malformed("the invite is too large".into()));
        }
        let certificate = self.certificate.verify(server_key)?;
        let invite: OfflineInvite = ciborium::from_reader(self.body.as_slice())
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        if certificate.role != Role::Coordinator
            || certificate.space != invite.space
            || certificate.device != invite.issued_by
            || invite.server_key != server_key.to_bytes()
        {
            return Err(CertificateError::WrongDevice);
        }
        verify_signed(
            OFFLINE_INVITE_SIGNING_CONTEXT,
            &self.body,
            &self.signature,
            &certificate.verifying_key()?,
        )?;
        Ok((invite, certificate))
    }

    /// The invite's own claims, read without checking anything (the new device reads the
    /// server key from it, then checks the rest with [`SignedOfflineInvite::verify`]).
    pub fn claims(&self) -> Result<OfflineInvite, CertificateError> {
        if self.body.len() > MAX_OFFLINE_INVITE_BYTES {
            return Err(CertificateError::Malformed("the invite is too large".into()));
        }
        ciborium::from_reader(self.body.as_slice()).map_err(|e| CertificateError::Malformed(e.to_string()))
    }
}

/// `POST /v1/invites/redeem-offline`: joins the space of an offline invite, with the secret
/// its QR code carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemOfflineInvite {
    pub invite: SignedOfflineInvite,
    #[serde(with = "serde_bytes")]
    pub secret: Vec<u8>,
}

/// Longest an offline invite may be good for, from its making.
pub const MAX_OFFLINE_INVITE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn certificate(role: Role) -> Certificate {
        Certificate {
            space: Uuid::from_u128(1),
            person: Uuid::from_u128(2),
            device: Uuid::from_u128(3),
            device_key: SigningKey::from_bytes(&[9; 32])
                .verifying_key()
                .to_bytes()
                .to_vec(),
            role,
            issued_at_ms: 1_000,
            expires_at_ms: 10_000,
        }
    }

    #[test]
    fn a_signed_certificate_verifies_and_a_forged_role_does_not() {
        let key = server();
        let signed = certificate(Role::Resident).sign(&key);
        assert_eq!(signed.verify(&key.verifying_key()).unwrap().role, Role::Resident);
        // The relay swaps the role in the body: the signature no longer matches.
        let forged = SignedCertificate {
            body: cbor(&certificate(Role::Coordinator)),
            signature: signed.signature.clone(),
        };
        assert_eq!(
            forged.verify(&key.verifying_key()),
            Err(CertificateError::BadSignature)
        );
        // Signed by someone else's key (a relay's own).
        let other = certificate(Role::Coordinator).sign(&SigningKey::from_bytes(&[8; 32]));
        assert_eq!(
            other.verify(&key.verifying_key()),
            Err(CertificateError::BadSignature)
        );
        // A list signature is no certificate signature (domain separation).
        let list = RevocationList {
            space: Uuid::from_u128(1),
            issued_at_ms: 5,
            revoked: vec![],
        }
        .sign(&key);
        let confused = SignedCertificate {
            body: list.body.clone(),
            signature: list.signature.clone(),
        };
        assert_eq!(
            confused.verify(&key.verifying_key()),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn an_offline_invite_needs_a_coordinator_certificate_and_its_device_signature() {
        let server = server();
        let coordinator_key = SigningKey::from_bytes(&[9; 32]);
        let certificate = certificate(Role::Coordinator);
        let invite = OfflineInvite {
            id: Uuid::from_u128(7),
            space: certificate.space,
            role: Role::Resident,
            issued_by: certificate.device,
            issued_at_ms: 1_500,
            expires_at_ms: 9_000,
            server: "https://quartier.example".into(),
            server_key: server.verifying_key().to_bytes().to_vec(),
            secret_hash: vec![5; 32],
        };
        let signed = invite.sign(&coordinator_key, certificate.sign(&server));
        assert_eq!(signed.verify(&server.verifying_key()).unwrap().0, invite);
        // A volunteer's certificate does not make invites.
        let volunteer = invite.sign(
            &coordinator_key,
            super::tests::certificate(Role::Volunteer).sign(&server),
        );
        assert_eq!(
            volunteer.verify(&server.verifying_key()),
            Err(CertificateError::WrongDevice)
        );
        // Signed by another key than the certified device's.
        let forged = invite.sign(&SigningKey::from_bytes(&[1; 32]), certificate.sign(&server));
        assert_eq!(
            forged.verify(&server.verifying_key()),
            Err(CertificateError::BadSignature)
        );
        // A role swapped in the body.
        let mut swapped = signed.clone();
        swapped.body = cbor(&OfflineInvite {
            role: Role::Coordinator,
            ..invite
        });
        assert_eq!(
            swapped.verify(&server.verifying_key()),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn expiry_and_revocation_void_a_certificate_but_a_later_one_stands() {
        let cert = certificate(Role::Volunteer);
        assert_eq!(cert.check_valid(2_000, None), Ok(()));
        assert_eq!(cert.check_valid(10_000, None), Err(CertificateError::Expired));
        let list = RevocationList {
            space: cert.space,
            issued_at_ms: 3_000,
            revoked: vec![Revocation {
                device: cert.device,
                since_ms: 1_000,
            }],
        };
        assert_eq!(
            cert.check_valid(2_000, Some(&list)),
            Err(CertificateError::Revoked)
        );
        let renewed = Certificate {
            issued_at_ms: 1_001,
            ..cert.clone()
        };
        assert_eq!(renewed.check_valid(2_000, Some(&list)), Ok(()));
        let elsewhere = RevocationList {
            space: Uuid::from_u128(99),
            ..list
        };
        assert_eq!(cert.check_valid(2_000, Some(&elsewhere)), Ok(()));
    }
}
