//! JSON merge patches (RFC 7386): what an edit changed in a document's JSON, kept small enough
//! to store in place of the edit's Automerge change until that change is built (an edit made on
//! a device is stored as a patch and built when it is first sent, merged or loaded; see
//! `quartier_core`'s `documents::PendingEdit`).
//!
//! A merge patch cannot tell a key set to `null` from a key removed; documents make no such
//! difference either ([`super::write_edit`] leaves `null` out), so building the edit from
//! `apply(before, diff(before, after))` writes exactly what building it from `after` writes.
//! The `json-patch` crate offers RFC 7386's apply but no diff, and RFC 6902 patches address
//! list entries by position, which a patch meant to be applied later should not; both
//! functions here are a few lines.

use serde_json::{Map, Value};

use super::json::{stored_form, Shape};
use super::DocKind;

/// The merge patch that takes `before` to `after`, or `None` when they are equal. Maps are
/// compared key by key (a removed key becomes `null`); any other value that differs is
/// replaced whole, lists included.
pub fn diff(before: &Value, after: &Value) -> Option<Value> {
    diff_at(before, after, &mut Vec::new(), &|_: &[&str]| false)
}

/// [`diff`] for a document of `kind`: a map the document keeps as one value (an item's
/// position, its consent record, an event's timing) is replaced whole when it differs, never
/// patched key by key, so that a patch applied without the ones before it (one that did not
/// build) can never make a value nobody set.
pub fn diff_document(kind: DocKind, before: &Value, after: &Value) -> Option<Value> {
    let policy = super::schema::path_policy(kind);
    diff_at(before, after, &mut Vec::new(), &|path: &[&str]| {
        matches!(policy(path), Shape::Atomic)
    })
}

fn diff_at(
    before: &Value,
    after: &Value,
    path: &mut Vec<String>,
    atomic: &dyn Fn(&[&str]) -> bool,
) -> Option<Value> {
    let whole = {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        !refs.is_empty() && atomic(&refs)
    };
    match (before, after) {
        (Value::Object(old), Value::Object(new)) if !whole => {
            let mut patch = Map::new();
            for (key, old_value) in old {
                if !new.contains_key(key) && !old_value.is_null() {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            for (key, new_value) in new {
                match old.get(key) {
                    Some(old_value) => {
                        path.push(key.clone());
                        let inner = diff_at(old_value, new_value, path, atomic);
                        path.pop();
                        if let Some(inner) = inner {
                            patch.insert(key.clone(), inner);
                        }
                    }
                    None if new_value.is_null() => {}
                    None => {
                        patch.insert(key.clone(), new_value.clone());
                    }
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        // A map that becomes another kind of value (or the other way round) is replaced; a
        // value that becomes a map is replaced by the whole map, with the `null`s it holds.
        _ if before == after => None,
        (_, Value::Object(_)) => Some(stored_form(after)),
        _ => Some(after.clone()),
    }
}

/// Applies a merge patch to `target` (RFC 7386, section 2).
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            apply(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(before: Value, after: Value) {
        let mut patched = before.clone();
        if let Some(patch) = diff(&before, &after) {
            apply(&mut patched, &patch);
        }
        assert_eq!(stored_form(&patched), stored_form(&after), "{before} -> {after}");
    }

    #[test]
    fn equal_values_need_no_patch() {
        let value = json!({"title": {"de": "Hof"}, "tags": ["a", "b"], "n": 1});
        assert_eq!(diff(&value, &value), None);
    }

    #[test]
    fn a_patch_holds_only_what_changed() {
        let before = json!({"title": {"de": "Hof", "en": "Yard"}, "tags": ["a"], "status": "published"});
        let after = json!({"title": {"de": "Garten", "en": "Yard"}, "tags": ["a"], "status": "published"});
        assert_eq!(diff(&before, &after), Some(json!({"title": {"de": "Garten"}})));
    }

    #[test]
    fn removed_keys_become_null_and_lists_are_replaced_whole() {
        let before =
            json!({"place": {"address": {"street": "Venloer Str."}, "category": "cafe"}, "tags": ["a", "b"]});
        let after = json!({"place": {"address": null}, "tags": ["b"]});
        assert_eq!(
            diff(&before, &after),
            Some(json!({"place": {"address": null, "category": null}, "tags": ["b"]}))
        );
        round_trip(before, after);
    }

    #[test]
    fn values_that_change_kind_round_trip() {
        round_trip(json!({"a": 1}), json!({"a": {"b": null, "c": [1, {"d": null}]}}));
        round_trip(json!({"a": {"b": 1}}), json!({"a": "text"}));
        round_trip(json!({"a": {"b": 1}}), json!({"a": null}));
        round_trip(json!({"a": null}), json!({"a": {"b": 2}}));
        round_trip(json!({"a": [1, 2]}), json!({"a": []}));
        round_trip(json!({}), json!({"new": {"deep": {"er": true}}}));
    }

    #[test]
    fn a_value_a_document_keeps_whole_is_replaced_whole() {
        let before = json!({"location": {"lat": 50.0, "lon": 7.0}, "details": {"timing": {"start": 1, "end": 2}, "venue": "Hof"}});
        let after = json!({"location": {"lat": 52.0, "lon": 7.0}, "details": {"timing": {"start": 1, "end": 3}, "venue": "Hof"}});
        assert_eq!(
            diff_document(DocKind::Item, &before, &after),
            Some(
                json!({"location": {"lat": 52.0, "lon": 7.0}, "details": {"timing": {"start": 1, "end": 3}}})
            )
        );
        assert_eq!(
            diff(&before, &after),
            Some(json!({"location": {"lat": 52.0}, "details": {"timing": {"end": 3}}}))
        );
        assert_eq!(diff_document(DocKind::Item, &before, &before), None);
    }

    #[test]
    fn nulls_that_a_document_leaves_out_make_no_patch() {
        assert_eq!(diff(&json!({"a": null}), &json!({})), None);
        assert_eq!(diff(&json!({}), &json!({"a": null})), None);
    }
}
