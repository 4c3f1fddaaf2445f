//! What a device signs: the document id and the change hash, under a domain-separation prefix
//! so a signature can never be replayed as a signature of anything else. The change hash covers
//! the change's bytes, its dependencies and its note (who made it), so signing the hash signs the
//! change.

/// Prefix of every signed payload (protocol name and version of the signing scheme).
pub const CHANGE_SIGNING_CONTEXT: &[u8] = b"quartier/change/v1\0";

/// The bytes a device signs with its Ed25519 key for one change of one document.
pub fn change_signing_payload(doc_id: &str, change_hash: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(CHANGE_SIGNING_CONTEXT.len() + doc_id.len() + 1 + change_hash.len());
    payload.extend_from_slice(CHANGE_SIGNING_CONTEXT);
    payload.extend_from_slice(doc_id.as_bytes());
    payload.push(0);
    payload.extend_from_slice(change_hash);
    payload
}

/// Prefix of the payload a device signs to register.
pub const REGISTRATION_SIGNING_CONTEXT: &[u8] = b"quartier/register/v1\0";

/// The bytes a device signs with its Ed25519 key to register: the server's challenge and the
/// public key it registers, so a signature proves possession of that key for that challenge.
pub fn registration_signing_payload(challenge: &[u8], public_key: &[u8]) -> Vec<u8> {
    let mut payload =
        Vec::with_capacity(REGISTRATION_SIGNING_CONTEXT.len() + challenge.len() + 1 + public_key.len());
    payload.extend_from_slice(REGISTRATION_SIGNING_CONTEXT);
    payload.extend_from_slice(challenge);
    payload.push(0);
    payload.extend_from_slice(public_key);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_separates_document_and_hash() {
        assert_ne!(
            change_signing_payload("ab", b"c"),
            change_signing_payload("a", b"bc")
        );
        assert!(change_signing_payload("d", &[1; 32]).starts_with(CHANGE_SIGNING_CONTEXT));
    }
}
