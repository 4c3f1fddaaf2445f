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
pub const MAX_REVOCATION_LIST_BYTES: usize = 64 + MAX_REVOCATIONS * 40;

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
