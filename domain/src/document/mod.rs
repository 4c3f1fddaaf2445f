//! Automerge documents: one per item, one per space. This module turns model values into
//! Automerge operations and documents back into model values, and describes each change (who
//! made it and which fields it touched) in the change message so that history can be shown
//! without replaying documents. It knows nothing of SQLite. The server uses the readers here to
//! check pushed changes against the permission table.

mod creation;
pub mod guarded;
mod json;
pub mod merge_patch;
mod note;
mod schema;

pub use creation::{
    build_creation, build_creation_doc, creation_of, rebuild_creation, rebuild_creation_doc, BuiltCreation,
    Creation, CREATION_CHECK_LEN,
};
pub use json::MAX_NESTING;
pub use note::ChangeNote;
pub use schema::DocKind;
pub use schema::{item_from_doc, item_from_json, space_from_doc, space_from_json};
pub use schema::{item_to_json, space_to_json};

use automerge::{transaction::CommitOptions, ActorId, Automerge, Change, ObjId};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Item, PersonId, Space};

/// Default per-document budget, the same on devices and the server: generous for text, photos
/// live outside documents.
pub const DEFAULT_DOCUMENT_BUDGET: usize = 1024 * 1024;

/// Brings the whole document to `target` in one change described by `note`; returns the new
/// change, or `None` when the document already was `target`.
pub fn write_change(
    doc: &mut Automerge,
    doc_id: &str,
    kind: DocKind,
    target: &Value,
    note: &ChangeNote,
    time_ms: i64,
) -> Result<Option<Change>> {
    commit_target(doc, doc_id, kind, None, target, Some(note.encode()), time_ms)
}

/// [`write_change`] for an edit: `before` is what the document reads back as now (the model
/// value read from it, as JSON), and only the entries where `before` and `target` differ are
/// read and written. The document reads back as the same model value as after
/// [`write_change`]; entries where `before` and `target` agree stay as the document holds them
/// (a newer peer's entries, or the form an older core wrote a value in).
pub fn write_edit(
    doc: &mut Automerge,
    doc_id: &str,
    kind: DocKind,
    before: &Value,
    target: &Value,
    note: &ChangeNote,
    time_ms: i64,
) -> Result<Option<Change>> {
    commit_target(
        doc,
        doc_id,
        kind,
        Some(before),
        target,
        Some(note.encode()),
        time_ms,
    )
}

/// Whether a change's stored checksum (bytes 4..8 of its chunk, the first four bytes of its hash)
/// matches its contents. `Change::from_bytes` does not check it, and neither the hash nor the
/// author's signature covers it: without this check anyone relaying a change could alter those
/// bytes unnoticed, and the altered copy would be the one passed on.
pub fn checksum_matches(bytes: &[u8], change: &Change) -> bool {
    bytes.get(4..8) == Some(&change.hash().0[..4])
}

/// The change that creates `item`'s document, as `quartier_core::Store::create_item` writes it, made
/// by the device whose Automerge actor is `actor`. For tools that write documents without a
/// device store: the server's load benches, importers.
pub fn new_item_change(item: &Item, actor: &ActorId) -> Result<Change> {
    let doc_id = item.id.to_string();
    let note = ChangeNote::new(item.author, ["created"]);
    created(
        DocKind::Item,
        &doc_id,
        &item_to_json(item)?,
        &note,
        actor,
        item.created_at.timestamp_millis(),
    )
}

/// The change that creates `space`'s document, as `quartier_core::Store::create_space` writes it, made
/// by `by` on the device whose Automerge actor is `actor`.
pub fn new_space_change(space: &Space, by: PersonId, actor: &ActorId, time_ms: i64) -> Result<Change> {
    let doc_id = space.id.to_string();
    let note = ChangeNote::new(by, ["created"]);
    created(
        DocKind::Space,
        &doc_id,
        &space_to_json(space.id, &space.meta)?,
        &note,
        actor,
        time_ms,
    )
}

fn created(
    kind: DocKind,
    doc_id: &str,
    target: &Value,
    note: &ChangeNote,
    actor: &ActorId,
    time_ms: i64,
) -> Result<Change> {
    let mut doc = Automerge::new().with_actor(actor.clone());
    write_change(&mut doc, doc_id, kind, target, note, time_ms)?
        .ok_or_else(|| Error::document(doc_id, "a new document must write something"))
}

/// The one way a document is brought to a JSON value: local writes and rebuilt creations
/// (`creation`) must produce the same operations from the same value.
fn commit_target(
    doc: &mut Automerge,
    doc_id: &str,
    kind: DocKind,
    before: Option<&Value>,
    target: &Value,
    message: Option<String>,
    time_ms: i64,
) -> Result<Option<Change>> {
    let Value::Object(root) = target else {
        return Err(Error::document(doc_id, "document root must be a map"));
    };
    if json::too_deep(target) {
        return Err(json_error(doc_id, json::JsonError::TooDeep));
    }
    let mut tx = doc.transaction();
    let policy = schema::path_policy(kind);
    let written = match before {
        Some(Value::Object(before)) => {
            json::reconcile_map_from(&mut tx, &ObjId::Root, before, root, &mut Vec::new(), policy)
        }
        _ => json::reconcile_map(&mut tx, &ObjId::Root, root, &mut Vec::new(), policy),
    };
    if let Err(e) = written {
        tx.rollback();
        return Err(json_error(doc_id, e));
    }
    let mut options = CommitOptions::default().with_time(time_ms);
    if let Some(message) = message {
        options = options.with_message(message);
    }
    let (hash, _) = tx.commit_with(options);
    if hash.is_none() {
        return Ok(None);
    }
    Ok(doc.get_last_local_change())
}

/// Reads a whole document as JSON; a document nested deeper than [`MAX_NESTING`] is refused as
/// a [`Error::MalformedChange`] (only changes from elsewhere can make one).
pub fn read_json(doc: &Automerge, doc_id: &str) -> Result<Value> {
    json::read_value(doc, &ObjId::Root).map_err(|e| json_error(doc_id, e))
}

fn json_error(doc_id: &str, e: json::JsonError) -> Error {
    match e {
        json::JsonError::TooDeep => Error::MalformedChange {
            doc: doc_id.to_owned(),
            reason: e.to_string(),
        },
        json::JsonError::Automerge(e) => Error::document(doc_id, e),
    }
}

#[cfg(test)]
mod tests;
