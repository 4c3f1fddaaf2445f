//! Writes a JSON tree into an Automerge object as a minimal set of operations (only what differs
//! is written), and reads documents back as JSON. This is the single bridge between the model's
//! serde representation and Automerge, so every document type uses the same rules:
//!
//! - objects become maps, keys missing from the new value are deleted; where the
//!   [`PathPolicy`] marks a map as one value ([`Shape::Atomic`]: a position, a consent record),
//!   it is written whole when it differs, so that concurrent edits pick one of them instead of
//!   mixing their fields;
//! - arrays become lists, rewritten only when they differ (lists here are short and rarely
//!   co-edited; per-key maps are used where concurrent edits must merge, e.g. tags);
//! - strings become scalar strings, except where the [`PathPolicy`] marks a path as
//!   collaborative text ([`Shape::Text`]): those become Automerge text and are edited with a
//!   character diff;
//! - numbers become `Int`, `Uint` or `F64`; `null` removes the key (so a value is compared with
//!   what is stored with its null entries left out).
//!
//! Documents come from other devices, so nothing here recurses deeper than [`MAX_NESTING`]
//! levels of maps and lists: a deeper document (a few hundred bytes of nested maps would
//! otherwise exhaust the stack) is refused with [`JsonError::TooDeep`] before anything reads it.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue};
use serde_json::{Map, Number, Value};

/// Deepest nesting of maps and lists (below the root) a document may have. The model's deepest
/// path is a handful of levels (`details` → `timing` → …); anything deeper was not written by a
/// core and is refused, never read by recursion an input could drive.
pub const MAX_NESTING: usize = 32;

/// Why a document could not be read or written as JSON.
#[derive(Debug)]
pub(crate) enum JsonError {
    Automerge(AutomergeError),
    /// Maps and lists nested deeper than [`MAX_NESTING`].
    TooDeep,
}

impl From<AutomergeError> for JsonError {
    fn from(e: AutomergeError) -> Self {
        JsonError::Automerge(e)
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Automerge(e) => e.fmt(f),
            JsonError::TooDeep => write!(f, "maps and lists nested deeper than {MAX_NESTING} levels"),
        }
    }
}

/// Whether a JSON value nests maps and lists deeper than [`MAX_NESTING`] (counted without
/// recursion: a value parsed from outside can be deep).
pub(crate) fn too_deep(value: &Value) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        for child in children {
            if matches!(child, Value::Object(_) | Value::Array(_)) {
                if depth + 1 > MAX_NESTING {
                    return true;
                }
                stack.push((child, depth + 1));
            }
        }
    }
    false
}

/// How the value at a path is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Maps merge per key, strings are scalars.
    Plain,
    /// A string that is collaborative text.
    Text,
    /// A map that is one value, replaced whole when it differs.
    Atomic,
}

/// Decides the [`Shape`] of each map entry. `path` is the list of keys from the root.
pub(crate) type PathPolicy = fn(path: &[&str]) -> Shape;

/// Makes the map `obj` equal to `target`, emitting operations only where they differ.
pub(crate) fn reconcile_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    target: &Map<String, Value>,
    path: &mut Vec<String>,
    policy: PathPolicy,
) -> Result<(), JsonError> {
    let existing: Vec<String> = tx.keys(obj).collect();
    for key in existing {
        if !matches!(target.get(&key), Some(v) if !v.is_null()) {
            tx.delete(obj, key.as_str())?;
        }
    }
    for (key, value) in target {
        if value.is_null() {
            continue;
        }
        path.push(key.clone());
        let shape = {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            policy(&refs)
        };
        reconcile_entry(tx, obj, key, value, path, shape, policy)?;
        path.pop();
    }
    Ok(())
}

/// [`reconcile_map`] guided by `before`, what the map reads back as now: only the entries where
/// `before` and `target` differ are read and written (an edit of one field of an item touches
/// that field, where the whole walk read every field through Automerge). Entries of the map that
/// `before` does not know (written by a newer peer) are left as they are.
pub(crate) fn reconcile_map_from<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    before: &Map<String, Value>,
    target: &Map<String, Value>,
    path: &mut Vec<String>,
    policy: PathPolicy,
) -> Result<(), JsonError> {
    for (key, old) in before {
        let gone = !old.is_null() && target.get(key).is_none_or(Value::is_null);
        if gone && tx.get(obj, key.as_str())?.is_some() {
            tx.delete(obj, key.as_str())?;
        }
    }
    for (key, value) in target {
        if value.is_null() || before.get(key) == Some(value) {
            continue;
        }
        path.push(key.clone());
        let shape = {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            policy(&refs)
        };
        match (before.get(key), value) {
            (Some(Value::Object(old)), Value::Object(new)) if shape != Shape::Atomic => {
                match tx.get(obj, key.as_str())? {
                    Some((AmValue::Object(ObjType::Map), id)) => {
                        reconcile_map_from(tx, &id, old, new, path, policy)?
                    }
                    _ => reconcile_entry(tx, obj, key, value, path, shape, policy)?,
                }
            }
            _ => reconcile_entry(tx, obj, key, value, path, shape, policy)?,
        }
        path.pop();
    }
    Ok(())
}

fn reconcile_entry<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &Value,
    path: &mut Vec<String>,
    shape: Shape,
    policy: PathPolicy,
) -> Result<(), JsonError> {
    let current = tx.get(obj, key)?;
    match value {
        Value::String(s) if shape == Shape::Text => {
            let text_obj = match current {
                Some((AmValue::Object(ObjType::Text), id)) => id,
                _ => tx.put_object(obj, key, ObjType::Text)?,
            };
            if tx.text(&text_obj)? != *s {
                tx.update_text(&text_obj, s)?;
            }
        }
        Value::Object(map) => match current {
            Some((AmValue::Object(ObjType::Map), id)) if shape != Shape::Atomic => {
                reconcile_map(tx, &id, map, path, policy)?
            }
            Some((AmValue::Object(ObjType::Map), id)) if read_value(tx, &id)? == stored_form(value) => {}
            _ if shape == Shape::Atomic => put_fresh(tx, obj, key, value)?,
            _ => {
                let child = tx.put_object(obj, key, ObjType::Map)?;
                reconcile_map(tx, &child, map, path, policy)?;
            }
        },
        Value::Array(items) => {
            // Compared as stored: null entries of maps in the list are not stored, and a list
            // written again at every change would undo concurrent edits of it.
            let same = match &current {
                Some((AmValue::Object(ObjType::List), id)) => read_value(tx, id)? == stored_form(value),
                _ => false,
            };
            if !same {
                let list = tx.put_object(obj, key, ObjType::List)?;
                for (index, item) in items.iter().enumerate() {
                    insert_into_list(tx, &list, index, item)?;
                }
            }
        }
        scalar => {
            let wanted = to_scalar(scalar);
            let same = matches!(&current, Some((AmValue::Scalar(v), _)) if v.as_ref() == &wanted);
            if !same {
                tx.put(obj, key, wanted)?;
            }
        }
    }
    Ok(())
}

fn insert_into_list<T: Transactable>(
    tx: &mut T,
    list: &ObjId,
    index: usize,
    value: &Value,
) -> Result<(), AutomergeError> {
    match value {
        Value::Object(map) => {
            let child = tx.insert_object(list, index, ObjType::Map)?;
            for (key, v) in map {
                if !v.is_null() {
                    put_fresh(tx, &child, key, v)?;
                }
            }
        }
        Value::Array(items) => {
            let child = tx.insert_object(list, index, ObjType::List)?;
            for (i, v) in items.iter().enumerate() {
                insert_into_list(tx, &child, i, v)?;
            }
        }
        scalar => tx.insert(list, index, to_scalar(scalar))?,
    }
    Ok(())
}

fn put_fresh<T: Transactable>(
    tx: &mut T,
    map: &ObjId,
    key: &str,
    value: &Value,
) -> Result<(), AutomergeError> {
    match value {
        Value::Object(inner) => {
            let child = tx.put_object(map, key, ObjType::Map)?;
            for (k, v) in inner {
                if !v.is_null() {
                    put_fresh(tx, &child, k, v)?;
                }
            }
        }
        Value::Array(items) => {
            let child = tx.put_object(map, key, ObjType::List)?;
            for (i, v) in items.iter().enumerate() {
                insert_into_list(tx, &child, i, v)?;
            }
        }
        scalar => tx.put(map, key, to_scalar(scalar))?,
    }
    Ok(())
}

/// A JSON value as it reads back once written: null entries of maps are not stored.
pub(crate) fn stored_form(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), stored_form(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(stored_form).collect()),
        other => other.clone(),
    }
}

fn to_scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => number_to_scalar(n),
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        _ => ScalarValue::Null,
    }
}

fn number_to_scalar(n: &Number) -> ScalarValue {
    if let Some(i) = n.as_i64() {
        ScalarValue::Int(i)
    } else if let Some(u) = n.as_u64() {
        ScalarValue::Uint(u)
    } else {
        ScalarValue::F64(n.as_f64().unwrap_or(0.0))
    }
}

/// Reads any object (or the root, with `ObjId::Root`) of a document as JSON. Text objects read
/// as strings; bytes, counters and timestamps as numbers or null. Refuses objects nested deeper
/// than [`MAX_NESTING`] below `obj`.
pub(crate) fn read_value<R: ReadDoc>(doc: &R, obj: &ObjId) -> Result<Value, JsonError> {
    read_at(doc, obj, 0)
}

fn read_at<R: ReadDoc>(doc: &R, obj: &ObjId, depth: usize) -> Result<Value, JsonError> {
    match doc.object_type(obj)? {
        ObjType::Map | ObjType::Table => {
            let mut map = Map::new();
            for key in doc.keys(obj) {
                if let Some((value, id)) = doc.get(obj, key.as_str())? {
                    map.insert(key, read_am(doc, value, &id, depth)?);
                }
            }
            Ok(Value::Object(map))
        }
        ObjType::List => {
            let mut items = Vec::new();
            for index in 0..doc.length(obj) {
                if let Some((value, id)) = doc.get(obj, index)? {
                    items.push(read_am(doc, value, &id, depth)?);
                }
            }
            Ok(Value::Array(items))
        }
        ObjType::Text => Ok(Value::String(doc.text(obj)?)),
    }
}

fn read_am<R: ReadDoc>(doc: &R, value: AmValue<'_>, id: &ObjId, depth: usize) -> Result<Value, JsonError> {
    Ok(match value {
        AmValue::Object(ObjType::Text) => Value::String(doc.text(id)?),
        AmValue::Object(_) if depth >= MAX_NESTING => return Err(JsonError::TooDeep),
        AmValue::Object(_) => read_at(doc, id, depth + 1)?,
        AmValue::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Value::String(s.to_string()),
            ScalarValue::Int(i) => Value::from(*i),
            ScalarValue::Uint(u) => Value::from(*u),
            ScalarValue::F64(f) => Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            ScalarValue::Counter(c) => Value::from(i64::from(c)),
            ScalarValue::Timestamp(t) => Value::from(*t),
            ScalarValue::Boolean(b) => Value::Bool(*b),
            _ => Value::Null,
        },
    })
}
