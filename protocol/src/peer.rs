//! The device-to-device session's messages (`docs/protocol.md`, "Device to device").
//!
//! Two devices of the same server take turns: each sends a [`Hello`] (its certificates, the
//! newest revocation lists it holds, a fresh nonce), then [`Turn`]s until both say `done`. A
//! turn carries the proof that the sender holds its certified key, a page of the sender's
//! inventory (documents and their heads), and a page of signed changes the other lacks, each as
//! a [`crate::Record::Change`] signed by its author's device, with that device's certificate.
//! Every message travels in frames of at most the session's frame size ([`frame`]), so a
//! transport as small as a QR code carries it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::certificates::{SignedCertificate, SignedRevocationList};
use crate::Record;
/// A byte string on the wire (a head).
pub use serde_bytes::ByteBuf;

/// Version of the device-to-device session.
pub const PEER_PROTOCOL_VERSION: u32 = 1;

/// Prefix of the bytes a device signs to prove, in a session, that it holds its key.
pub const PEER_PROOF_CONTEXT: &[u8] = b"quartier/peer-proof/v1\0";

/// The bytes a device signs in a session: both nonces (the initiator's first), its own device id,
/// the server key both trust and the transport's channel binding (the Noise handshake hash of the
/// local-network transport; empty where the transport has none), so a proof is good for this
/// session, this device and this encrypted channel only: a machine in the middle that runs two
/// channels cannot pass one side's proof to the other.
pub fn peer_proof_payload(
    initiator_nonce: &[u8],
    responder_nonce: &[u8],
    device: Uuid,
    server_key: &[u8],
    channel: &[u8],
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(PEER_PROOF_CONTEXT.len() + 96);
    payload.extend_from_slice(PEER_PROOF_CONTEXT);
    payload.extend_from_slice(initiator_nonce);
    payload.push(0);
    payload.extend_from_slice(responder_nonce);
    payload.push(0);
    payload.extend_from_slice(device.as_bytes());
    payload.extend_from_slice(server_key);
    payload.push(0);
    payload.extend_from_slice(channel);
    payload
}

/// One message of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMessage {
    Hello(Hello),
    Turn(Turn),
    /// The sender stops the session, and says why (`code` as in [`crate::ErrorBody`]).
    Refused {
        code: String,
        message: String,
    },
    #[serde(other)]
    Unknown,
}

/// The first message of each side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The Ed25519 key of the server whose certificates the sender carries and trusts.
    #[serde(with = "serde_bytes")]
    pub server_key: Vec<u8>,
    pub device: Uuid,
    /// 16 fresh random bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The sender's own certificates, one per space it offers.
    pub certificates: Vec<SignedCertificate>,
    /// The newest revocation list the sender holds of each space it offers.
    pub revocations: Vec<SignedRevocationList>,
    /// The responder's proof (it has the initiator's nonce already); `None` from the initiator.
    #[serde(default, with = "serde_bytes")]
    pub proof: Option<Vec<u8>>,
    /// A new device without certificates (joining offline): the invite the other device made,
    /// and the key its proof is checked with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Guest>,
}

/// What a new device shows instead of certificates: the offline invite it was given by the
/// other device, and its own device key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub invite: crate::certificates::SignedOfflineInvite,
    #[serde(with = "serde_bytes")]
    pub device_key: Vec<u8>,
}

/// One turn after the hellos.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// The initiator's proof, in its first turn.
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub proof: Option<Vec<u8>>,
    /// A page of the sender's inventory of the spaces both share, as the receiver may read it.
    #[serde(default)]
    pub inventory: Vec<InventoryEntry>,
    /// The sender's inventory is complete with this page.
    #[serde(default)]
    pub inventory_done: bool,
    /// Changes the receiver lacks, each a [`Record::Change`] in an order that puts every change
    /// after those it depends on.
    #[serde(default)]
    pub changes: Vec<Record>,
    /// The certificates of the devices that signed `changes`, those not sent before.
    #[serde(default)]
    pub certificates: Vec<SignedCertificate>,
    /// The sender has nothing more to send.
    #[serde(default)]
    pub done: bool,
}

/// A document the sender holds, and its heads (Automerge change hashes, 32 bytes each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub space: Uuid,
    pub doc: Uuid,
    pub heads: Vec<serde_bytes::ByteBuf>,
}

impl InventoryEntry {
    /// Approximate bytes on the wire, for page budgets.
    pub fn weight(&self) -> usize {
        40 + self.heads.len() * 34
    }
}

/// After a session over the local network: thumbnails (and small files) of the items the
/// session brought, asked for and sent one file per message (`docs/protocol.md`, "Media").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMedia {
    /// Files the sender wants (BLAKE3 hashes, hex); `last`: its wants end with this batch.
    Wants { hashes: Vec<String>, last: bool },
    /// One wanted file.
    File {
        hash: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A wanted file the sender does not have, or will not send (not readable for the asker).
    Missing { hash: String },
    /// Every file of the last batch of wants was answered.
    End,
    #[serde(other)]
    Unknown,
}

/// Most hashes in one [`PeerMedia::Wants`].
pub const MAX_WANTS_PER_BATCH: usize = 500;

/// Frames: a message split into pieces of at most a frame size, each with one header byte.
pub mod frame {
    /// Header byte of a frame that more frames of the same message follow.
    pub const MORE: u8 = 0;
    /// Header byte of a message's last frame.
    pub const LAST: u8 = 1;
    /// Header byte of the one-byte frame that asks for the next frame of a message (turns
    /// alternate, so a frame that is not a message's last is answered with this).
    pub const CONTINUE: u8 = 2;
    /// The smallest frame size a session takes.
    pub const MIN_FRAME_BYTES: usize = 128;

    /// Splits `message` into frames of at most `frame_bytes` (header included).
    pub fn split(message: &[u8], frame_bytes: usize) -> Vec<Vec<u8>> {
        let room = frame_bytes.max(MIN_FRAME_BYTES) - 1;
        let pieces: Vec<&[u8]> = if message.is_empty() {
            vec![&[]]
        } else {
            message.chunks(room).collect()
        };
        let last = pieces.len() - 1;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| {
                let mut frame = Vec::with_capacity(piece.len() + 1);
                frame.push(if i == last { LAST } else { MORE });
                frame.extend_from_slice(piece);
                frame
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_rejoin_into_the_message_and_respect_the_size() {
        let message: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let frames = frame::split(&message, 300);
        assert!(frames.iter().all(|f| f.len() <= 300));
        assert_eq!(frames.last().unwrap()[0], frame::LAST);
        assert!(frames[..frames.len() - 1].iter().all(|f| f[0] == frame::MORE));
        let joined: Vec<u8> = frames.iter().flat_map(|f| f[1..].to_vec()).collect();
        assert_eq!(joined, message);
        assert_eq!(frame::split(&[], 300), vec![vec![frame::LAST]]);
    }

    #[test]
    fn a_proof_is_bound_to_both_nonces_and_the_device() {
        let a = peer_proof_payload(b"n1", b"n2", Uuid::from_u128(1), &[0; 32], b"");
        assert_ne!(
            a,
            peer_proof_payload(b"n2", b"n1", Uuid::from_u128(1), &[0; 32], b"")
        );
        assert_ne!(
            a,
            peer_proof_payload(b"n1", b"n2", Uuid::from_u128(2), &[0; 32], b"")
        );
        assert_ne!(
            a,
            peer_proof_payload(b"n1", b"n2", Uuid::from_u128(1), &[0; 32], b"channel")
        );
    }
}
