//! Automerge calls on data that came from outside this process, guarded against panics.
//!
//! Automerge 0.12 panics on some crafted changes that decode and carry a valid checksum and
//! signature (`docs/fuzzing.md`, findings 1–3): `apply_changes` itself (an actor looked up and
//! unwrapped), or `get_changes` afterwards (an assertion on the merged history). Decoding
//! itself panics on some bytes (finding 7: an object's counter beyond `u32` unwrapped while the
//! change's operations are verified), before any checksum or signature is looked at, so anyone
//! who can send bytes can reach it. A member can
//! sign such a change, so on the server one would take down a request's worker and leave the
//! database inside a transaction, and on every device of the space the merge would crash the
//! app each time the page arrives. Every place that decodes or applies changes from outside,
//! loads a snapshot from outside, or reads the history of a document that holds outside changes goes
//! through this module: a panic becomes a [`Unsound`] the caller answers as malformed.
//!
//! After a panic the document's state is unknown: a caller whose [`apply`] failed must throw
//! the document away (reload it from its store), never keep using or saving it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{Automerge, Change, ChangeHash};

/// Why Automerge would not take (or read back) data from outside. The message names no content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsound(pub String);

/// A change from bytes that came from outside (or were stored after coming from outside).
pub fn decode(bytes: Vec<u8>) -> Result<Change, Unsound> {
    guard("decode the change", || {
        Change::from_bytes(bytes).map_err(|e| Unsound(format!("not an Automerge change: {e}")))
    })
}

/// Applies `changes` to `doc`, then reads back the history they added, so that a change which
/// applies but makes the document's history unreadable is refused here, at the door, before it
/// is stored or passed on. On an error, throw `doc` away.
pub fn apply(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), Unsound> {
    let before = doc.get_heads();
    guard("apply the change", || {
        doc.apply_changes(changes)
            .map_err(|e| Unsound(format!("the change does not apply: {e}")))?;
        drop(doc.get_changes(&before));
        Ok(())
    })
}

/// Applies changes read back from this process's own store. Each passed [`apply`] (history read
/// back) or was made here before it was stored, so reading the history back again on every
/// load would only repeat that work, on every edit's path (a document is loaded for each
/// write): only a panic is guarded against. On an error, throw `doc` away.
pub fn apply_stored(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), Unsound> {
    guard("apply the stored changes", || {
        doc.apply_changes(changes)
            .map_err(|e| Unsound(format!("the stored changes do not apply: {e}")))
    })
}

/// A document from snapshot bytes this process saved itself (see [`apply_stored`]): not read
/// back.
pub fn load_stored(bytes: &[u8]) -> Result<Automerge, Unsound> {
    guard("load the stored snapshot", || {
        Automerge::load(bytes).map_err(|e| Unsound(format!("not a snapshot: {e}")))
    })
}

/// The changes of `doc` that `heads` do not include (all of them for no heads).
pub fn changes_since(doc: &Automerge, heads: &[ChangeHash]) -> Result<Vec<Change>, Unsound> {
    guard("read the document's history", || Ok(doc.get_changes(heads)))
}

/// A document from snapshot bytes that came from outside, its history read back once (see
/// [`apply`]).
pub fn load(bytes: &[u8]) -> Result<Automerge, Unsound> {
    guard("load the snapshot", || {
        let doc = Automerge::load(bytes).map_err(|e| Unsound(format!("not a snapshot: {e}")))?;
        drop(doc.get_changes(&[]));
        Ok(doc)
    })
}

/// The document saved whole (Automerge's `save` walks the same history).
pub fn save(doc: &Automerge) -> Result<Vec<u8>, Unsound> {
    guard("save the document", || Ok(doc.save()))
}

fn guard<T>(what: &str, call: impl FnOnce() -> Result<T, Unsound>) -> Result<T, Unsound> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        tracing::warn!("Automerge panicked trying to {what}; refused as malformed");
        Err(Unsound(format!(
            "Automerge cannot {what}: the change is malformed"
        )))
    })
}
