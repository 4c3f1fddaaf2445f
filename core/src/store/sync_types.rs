//! The change records that leave and enter a store: what the sync engine sends and receives.

use crate::document::DocKind;
use crate::model::SpaceId;

/// A change in the outbox, waiting for a server's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingChange {
    /// Position in the outbox; acknowledge with it.
    pub seq: i64,
    pub doc_id: String,
    pub kind: DocKind,
    pub space: SpaceId,
    /// Automerge change hash, hex.
    pub hash: String,
    /// Automerge change bytes.
    pub bytes: Vec<u8>,
}

/// A change arriving from elsewhere (a server, another device, another store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingChange {
    pub doc_id: String,
    pub kind: DocKind,
    pub bytes: Vec<u8>,
}

impl From<&OutgoingChange> for IncomingChange {
    fn from(change: &OutgoingChange) -> Self {
        Self {
            doc_id: change.doc_id.clone(),
            kind: change.kind,
            bytes: change.bytes.clone(),
        }
    }
}
