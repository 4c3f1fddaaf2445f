//! The layout of item and space documents and its version.
//!
//! Item document root: `schema` (version), `id`, `space`, `author`, `created_at`,
//! `updated_at` (ms since epoch), `title` (map language → string), `body` (map language →
//! Automerge text), `tags` (map tag → true, so concurrent additions merge), `location`,
//! `media` (list), `audience`, `status`, `valid_until`, `on_behalf_of`, `details` (map with
//! `kind` and the kind's fields). Space document root: `schema`, `id`, `name`, `description`
//! (map language → text), `time_zone`, `default_language`, `categories`, `layers`.

use automerge::Automerge;
use serde_json::{Map, Value};

use super::json::{PathPolicy, Shape};
use super::read_json;
use crate::error::{Error, Result};
use crate::model::{Item, Space, SpaceId, SpaceMeta};

/// Version of the document layout written by this core.
pub(crate) const DOC_SCHEMA_VERSION: u64 = 1;

pub use quartier_protocol::DocKind;

// Mirrored for the FFI as `Role` is (`model::access`); crates that pass it across name it with
// `uniffi::use_remote_type!(quartier_domain::DocKind)`.
#[cfg(feature = "uniffi")]
#[uniffi::remote(Enum)]
pub enum DocKind {
    Item,
    Space,
}

/// How each path of a document is written: item bodies and space descriptions are
/// collaborative text; an item's position and its consent record are single values, never a
/// mix of two concurrent edits.
pub(super) fn path_policy(kind: DocKind) -> PathPolicy {
    match kind {
        DocKind::Item => |path| match path {
            ["body", _] => Shape::Text,
            // One value each: merging their fields could make a place nobody set, a consent
            // nobody gave, or an event that ends before it starts.
            ["location"] | ["on_behalf_of"] | ["details", "timing"] => Shape::Atomic,
            _ => Shape::Plain,
        },
        DocKind::Space => |path| match path {
            ["description", _] => Shape::Text,
            _ => Shape::Plain,
        },
    }
}

/// The document JSON of an item.
pub fn item_to_json(item: &Item) -> Result<Value> {
    let mut value = to_object(item, "item")?;
    if let Some(Value::Array(tags)) = value.remove("tags") {
        let set: Map<String, Value> = tags
            .into_iter()
            .filter_map(|t| t.as_str().map(|s| (s.to_owned(), Value::Bool(true))))
            .collect();
        value.insert("tags".into(), Value::Object(set));
    }
    value.insert("schema".into(), Value::from(DOC_SCHEMA_VERSION));
    Ok(Value::Object(value))
}

/// Reads an item back from its document.
pub fn item_from_doc(doc: &Automerge, doc_id: &str) -> Result<Item> {
    item_from_json(read_json(doc, doc_id)?, doc_id)
}

/// Reads an item from its document's JSON, as [`read_json`] gives it (or as a creation form
/// carries it, with the `id` put back): how a document kept in creation form is projected
/// without building it.
pub fn item_from_json(json: Value, doc_id: &str) -> Result<Item> {
    let mut root = root_of(json, doc_id)?;
    if let Some(Value::Object(tags)) = root.remove("tags") {
        let list = tags
            .into_iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| Value::String(k))
            .collect();
        root.insert("tags".into(), Value::Array(list));
    }
    serde_json::from_value(Value::Object(root))
        .map_err(|e| Error::document(doc_id, format!("not a readable item: {e}")))
}

/// The document JSON of a space.
pub fn space_to_json(id: SpaceId, meta: &SpaceMeta) -> Result<Value> {
    let mut value = to_object(meta, "space")?;
    value.insert("id".into(), Value::String(id.to_string()));
    value.insert("schema".into(), Value::from(DOC_SCHEMA_VERSION));
    Ok(Value::Object(value))
}

/// Reads a space back from its document.
pub fn space_from_doc(doc: &Automerge, doc_id: &str) -> Result<Space> {
    space_from_json(read_json(doc, doc_id)?, doc_id)
}

/// Reads a space from its document's JSON (see [`item_from_json`]).
pub fn space_from_json(json: Value, doc_id: &str) -> Result<Space> {
    let root = root_of(json, doc_id)?;
    serde_json::from_value(Value::Object(root))
        .map_err(|e| Error::document(doc_id, format!("not a readable space: {e}")))
}

fn to_object<T: serde::Serialize>(value: &T, what: &str) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::document(what, "did not serialize to a map")),
        Err(e) => Err(Error::document(what, e)),
    }
}

fn root_of(json: Value, doc_id: &str) -> Result<Map<String, Value>> {
    let Value::Object(mut root) = json else {
        return Err(Error::document(doc_id, "root is not a map"));
    };
    match root.remove("schema").and_then(|v| v.as_u64()) {
        Some(v) if v <= DOC_SCHEMA_VERSION => Ok(root),
        Some(v) => Err(Error::document(
            doc_id,
            format!("written with document schema {v}, this core reads up to {DOC_SCHEMA_VERSION}"),
        )),
        None => Err(Error::document(
            doc_id,
            "has no schema version (empty or foreign document)",
        )),
    }
}
