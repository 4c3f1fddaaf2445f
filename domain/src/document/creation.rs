//! The creation form of a document: most documents of a space never change after they are
//! created, and their one change is fully determined by who made it (actor), when, its message
//! and the JSON it wrote. Sending those instead of the Automerge bytes lets an initial sync
//! carry about what the JSON of the content weighs; the receiver rebuilds the change bit for bit
//! through the same code as a local write ([`super::commit_target`]) and checks it against a
//! prefix of the original change hash. The sender only offers this form after rebuilding the
//! change itself and finding the same hash, so a document the rule cannot reproduce (edited,
//! written by another tool) simply travels as a snapshot.

use automerge::{ActorId, Automerge, Change};
use quartier_protocol::Record;
use serde_json::Value;

use super::{commit_target, read_json, DocKind};
use crate::error::{Error, Result};

/// Bytes of the change hash a creation carries to check the rebuilt change against: enough to
/// catch a sender whose rules differ from ours (the sender already verified the rebuild), few
/// enough not to weigh on a page, since hash bytes do not compress.
pub const CREATION_CHECK_LEN: usize = 4;

/// What rebuilds a document's only change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creation {
    pub actor: Vec<u8>,
    pub time_ms: i64,
    pub message: Option<String>,
    /// The document's JSON after the change, without its `id` (the record names the document;
    /// random bytes sent twice would be a fifth of an item's weight).
    pub state: String,
    /// The first [`CREATION_CHECK_LEN`] bytes of the change's hash.
    pub check: Vec<u8>,
}

impl Creation {
    /// The record that carries this creation of `doc` in `space`.
    pub fn into_record(self, space: uuid::Uuid, doc: uuid::Uuid, kind: DocKind) -> Record {
        Record::Created {
            space,
            doc,
            kind,
            actor: self.actor,
            time_ms: self.time_ms,
            message: self.message,
            state: self.state,
            check: self.check,
        }
    }
}

/// The creation form of `doc`, when its history is one change that [`rebuild_creation`]
/// reproduces exactly; `None` otherwise (the document then travels as a snapshot).
pub fn creation_of(doc: &Automerge, doc_id: &str, kind: DocKind) -> Result<Option<Creation>> {
    let changes =
        super::guarded::changes_since(doc, &[]).map_err(|e| Error::document(doc_id, e.to_string()))?;
    let [change] = changes.as_slice() else {
        return Ok(None);
    };
    let mut state = read_json(doc, doc_id)?;
    if let Value::Object(root) = &mut state {
        if root.get("id").and_then(Value::as_str) == Some(doc_id) {
            root.remove("id");
        }
    }
    let state =
        serde_json::to_string(&state).map_err(|e| Error::document(doc_id, format!("state as JSON: {e}")))?;
    let creation = Creation {
        actor: change.actor_id().to_bytes().to_vec(),
        time_ms: change.timestamp(),
        message: change.message().map(str::to_owned),
        state,
        check: change.hash().0[..CREATION_CHECK_LEN].to_vec(),
    };
    match rebuild_creation(&creation, doc_id, kind) {
        Ok(_) => Ok(Some(creation)),
        Err(_) => Ok(None),
    }
}

/// Rebuilds the change a [`Creation`] describes; refuses one whose rebuilt hash does not start
/// with its `check` (a sender whose rules differ from ours, or damaged data), or whose check is
/// not [`CREATION_CHECK_LEN`] bytes long.
pub fn rebuild_creation(creation: &Creation, doc_id: &str, kind: DocKind) -> Result<Change> {
    Ok(rebuild_creation_doc(creation, doc_id, kind)?.change)
}

/// A creation's change and the document it was built in, which holds exactly that change: a
/// store that loads the document for an edit or a merge takes it as it is instead of applying
/// the change to a new one (as much work again as the build).
pub struct BuiltCreation {
    pub change: Change,
    pub doc: Automerge,
}

/// [`rebuild_creation`], with the document it was built in.
pub fn rebuild_creation_doc(creation: &Creation, doc_id: &str, kind: DocKind) -> Result<BuiltCreation> {
    if creation.check.len() != CREATION_CHECK_LEN {
        return Err(Error::MalformedChange {
            doc: doc_id.to_owned(),
            reason: "creation: check of a wrong length".into(),
        });
    }
    let built = build_creation_doc(creation, doc_id, kind)?;
    if built.change.hash().0[..CREATION_CHECK_LEN] != creation.check[..] {
        return Err(Error::MalformedChange {
            doc: doc_id.to_owned(),
            reason: "the rebuilt creation does not match its hash (a sender with other rules?)".into(),
        });
    }
    Ok(built)
}

/// Builds the change a [`Creation`] describes without checking it against a hash: for a form
/// written on this device, whose change is built for the first time (its `check` is ignored).
pub fn build_creation(creation: &Creation, doc_id: &str, kind: DocKind) -> Result<Change> {
    Ok(build_creation_doc(creation, doc_id, kind)?.change)
}

/// [`build_creation`], with the document it was built in.
pub fn build_creation_doc(creation: &Creation, doc_id: &str, kind: DocKind) -> Result<BuiltCreation> {
    let malformed = |reason: String| Error::MalformedChange {
        doc: doc_id.to_owned(),
        reason,
    };
    if creation.actor.is_empty() || creation.actor.len() > 64 {
        return Err(malformed("creation: actor id of a wrong length".into()));
    }
    let mut target: Value = serde_json::from_str(&creation.state)
        .map_err(|e| malformed(format!("creation state is not JSON: {e}")))?;
    if let Value::Object(root) = &mut target {
        root.entry("id")
            .or_insert_with(|| Value::String(doc_id.to_owned()));
    }
    let mut doc = Automerge::new().with_actor(ActorId::from(creation.actor.as_slice()));
    let change = commit_target(
        &mut doc,
        doc_id,
        kind,
        None,
        &target,
        creation.message.clone(),
        creation.time_ms,
    )
    .map_err(|e| malformed(format!("creation: {e}")))?
    .ok_or_else(|| malformed("creation writes nothing".into()))?;
    Ok(BuiltCreation { change, doc })
}
