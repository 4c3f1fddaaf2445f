use automerge::{ActorId, Automerge};
use serde_json::json;

use super::*;
use crate::model::{ItemId, PersonId};

fn note() -> ChangeNote {
    ChangeNote::new(PersonId::new(), ["test"])
}

fn doc(actor: u8) -> Automerge {
    Automerge::new().with_actor(ActorId::from(vec![actor; 16]))
}

#[test]
fn writing_the_same_value_twice_makes_no_second_change() {
    let mut d = doc(1);
    let value = json!({"schema": 1, "title": {"de": "Hallo"}, "body": {"de": "Text"}, "n": 3, "f": 1.5});
    assert!(write_change(&mut d, "x", DocKind::Item, &value, &note(), 0)
        .unwrap()
        .is_some());
    assert!(write_change(&mut d, "x", DocKind::Item, &value, &note(), 0)
        .unwrap()
        .is_none());
    assert_eq!(read_json(&d, "x").unwrap(), value);
}

#[test]
fn body_is_text_and_concurrent_body_edits_merge_per_character() {
    let mut a = doc(1);
    let base = json!({"body": {"de": "Wir feiern im Hof."}});
    write_change(&mut a, "x", DocKind::Item, &base, &note(), 0).unwrap();
    let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
    write_change(
        &mut a,
        "x",
        DocKind::Item,
        &json!({"body": {"de": "Heute: Wir feiern im Hof."}}),
        &note(),
        0,
    )
    .unwrap();
    write_change(
        &mut b,
        "x",
        DocKind::Item,
        &json!({"body": {"de": "Wir feiern im Hof. Mit Kuchen."}}),
        &note(),
        0,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(
        read_json(&a, "x").unwrap(),
        json!({"body": {"de": "Heute: Wir feiern im Hof. Mit Kuchen."}})
    );
}

#[test]
fn concurrent_tag_additions_and_field_edits_both_survive() {
    let mut a = doc(1);
    write_change(
        &mut a,
        "x",
        DocKind::Item,
        &json!({"tags": {"fest": true}, "title": {"de": "A"}}),
        &note(),
        0,
    )
    .unwrap();
    let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
    write_change(
        &mut a,
        "x",
        DocKind::Item,
        &json!({"tags": {"fest": true, "hof": true}, "title": {"de": "A"}}),
        &note(),
        0,
    )
    .unwrap();
    write_change(
        &mut b,
        "x",
        DocKind::Item,
        &json!({"tags": {"fest": true, "kuchen": true}, "title": {"de": "B"}}),
        &note(),
        0,
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    let merged = read_json(&a, "x").unwrap();
    assert_eq!(merged["tags"], json!({"fest": true, "hof": true, "kuchen": true}));
    assert_eq!(merged["title"], json!({"de": "B"}));
}

#[test]
fn removed_keys_are_deleted_and_lists_replaced() {
    let mut d = doc(1);
    write_change(
        &mut d,
        "x",
        DocKind::Item,
        &json!({"a": 1, "l": [1, {"k": "v"}], "m": {"z": true}}),
        &note(),
        0,
    )
    .unwrap();
    write_change(
        &mut d,
        "x",
        DocKind::Item,
        &json!({"l": [2], "m": {}}),
        &note(),
        0,
    )
    .unwrap();
    assert_eq!(read_json(&d, "x").unwrap(), json!({"l": [2], "m": {}}));
}

/// A help request for food, as the model's JSON (not the document's).
fn food_request() -> serde_json::Value {
    json!({
        "id": ItemId::new(), "space": crate::model::SpaceId::new(), "author": PersonId::new(),
        "created_at": 1_700_000_000_000i64, "updated_at": 1_700_000_000_000i64,
        "title": {"de": "Tafel", "de-x-easy": "Essen für alle"}, "body": {"de": "Jeden Dienstag"},
        "tags": ["essen", "hilfe"], "location": {"lat": 50.95, "lon": 6.95, "source": "manual"},
        "media": [], "audience": "everyone", "status": "published",
        "details": {"kind": "request", "direction": "need", "category": "food", "state": "open"}
    })
}

#[test]
fn item_round_trips_through_its_document_and_note_travels_with_the_change() {
    let item: crate::model::Item = serde_json::from_value(food_request()).unwrap();
    let mut d = doc(1);
    let by = PersonId::new();
    let change = write_change(
        &mut d,
        "x",
        DocKind::Item,
        &item_to_json(&item).unwrap(),
        &ChangeNote::new(by, ["created"]),
        42,
    )
    .unwrap()
    .unwrap();
    assert_eq!(item_from_doc(&d, "x").unwrap(), item);
    let decoded = ChangeNote::decode(change.message()).unwrap();
    assert_eq!(decoded.by, by);
    assert_eq!(change.timestamp(), 42);
}

/// As the store edits: `before` is the item read from the document, as JSON. Edit after edit,
/// the document written by `write_edit` reads back as the one written whole.
#[test]
fn edits_written_from_the_item_read_back_end_where_whole_writes_end() {
    let mut model = food_request();
    let item = |model: &serde_json::Value| -> crate::model::Item {
        serde_json::from_value(model.clone()).expect("a valid item")
    };
    let mut whole = doc(1);
    write_change(
        &mut whole,
        "x",
        DocKind::Item,
        &item_to_json(&item(&model)).unwrap(),
        &note(),
        0,
    )
    .unwrap();
    let mut guided = whole.fork().with_actor(ActorId::from(vec![1; 16]));
    let edits: Vec<(&str, serde_json::Value)> = vec![
        (
            "title",
            json!({"de": "Tafel am Dienstag", "de-x-easy": "Essen für alle"}),
        ),
        ("title", json!({"de": "Tafel am Dienstag"})),
        (
            "body",
            json!({"de": "Jeden Dienstag und Donnerstag", "tr": "Her salı"}),
        ),
        ("tags", json!(["essen", "hilfe", "nachbarn"])),
        ("tags", json!(["nachbarn"])),
        ("location", json!({"lat": 50.96, "lon": 6.94, "source": "manual"})),
        ("location", serde_json::Value::Null),
        ("valid_until", json!(1_800_000_000_000i64)),
        ("audience", json!("volunteers")),
        (
            "details",
            json!({"kind": "request", "direction": "offer", "category": "food", "state": "open"}),
        ),
        ("updated_at", json!(1_700_000_100_000i64)),
        ("status", json!("deleted")),
    ];
    for (field, value) in edits {
        let before = item_to_json(&item_from_doc(&guided, "x").unwrap()).unwrap();
        model[field] = value;
        let target = item_to_json(&item(&model)).unwrap();
        let by_whole = write_change(&mut whole, "x", DocKind::Item, &target, &note(), 0).unwrap();
        let by_edit = write_edit(&mut guided, "x", DocKind::Item, &before, &target, &note(), 0).unwrap();
        assert_eq!(by_edit.is_some(), by_whole.is_some(), "{field}");
        assert_eq!(item_from_doc(&guided, "x").unwrap(), item(&model), "{field}");
        assert_eq!(
            read_json(&guided, "x").unwrap(),
            read_json(&whole, "x").unwrap(),
            "{field}"
        );
    }
}

/// The document a creation was built in stands for the creation applied to a new document:
/// the same value, the same heads, and the next edit makes byte for byte the same change.
#[test]
fn the_document_a_creation_was_built_in_is_the_creation_applied() {
    let mut d = doc(7);
    let value = json!({"schema": 1, "id": "x", "title": {"de": "Tafel"}, "body": {"de": "Ausgabe dienstags"},
        "tags": {"essen": true}, "location": {"lat": 52.52, "lon": 13.405}});
    write_change(&mut d, "x", DocKind::Item, &value, &note(), 1_700_000_000_123).unwrap();
    let creation = creation_of(&d, "x", DocKind::Item).unwrap().expect("a creation");
    let built = rebuild_creation_doc(&creation, "x", DocKind::Item).unwrap();
    let mut applied = Automerge::new();
    applied.apply_changes([built.change.clone()]).unwrap();
    let mut built_doc = built.doc;
    assert_eq!(
        read_json(&built_doc, "x").unwrap(),
        read_json(&applied, "x").unwrap()
    );
    assert_eq!(built_doc.get_heads(), applied.get_heads());
    let edit = json!({"schema": 1, "id": "x", "title": {"de": "Tafel am Dienstag"}, "body": {"de": "Ausgabe dienstags"},
        "tags": {"essen": true}, "location": {"lat": 52.52, "lon": 13.405}});
    let mut changes = Vec::new();
    for doc in [&mut built_doc, &mut applied] {
        doc.set_actor(ActorId::from(vec![9; 16]));
        let change = write_change(doc, "x", DocKind::Item, &edit, &note_at(), 1_700_000_100_000)
            .unwrap()
            .expect("an edit");
        changes.push(change.raw_bytes().to_vec());
    }
    assert_eq!(changes[0], changes[1]);
}

fn note_at() -> ChangeNote {
    ChangeNote::new(PersonId::from(uuid::Uuid::nil()), ["title"])
}

#[test]
fn documents_from_a_newer_schema_or_without_one_are_refused() {
    let mut d = doc(1);
    write_change(
        &mut d,
        "x",
        DocKind::Item,
        &json!({"schema": 99, "title": {}}),
        &note(),
        0,
    )
    .unwrap();
    assert!(item_from_doc(&d, "x")
        .unwrap_err()
        .to_string()
        .contains("schema 99"));
    let mut e = doc(1);
    write_change(&mut e, "y", DocKind::Item, &json!({"title": {}}), &note(), 0).unwrap();
    assert!(item_from_doc(&e, "y")
        .unwrap_err()
        .to_string()
        .contains("no schema"));
}

#[test]
fn a_creation_rebuilds_the_same_change_and_an_edited_document_has_none() {
    let mut d = doc(7);
    let value = json!({"schema": 1, "id": "x", "title": {"de": "Tafel", "tr": "Gıda bankası"},
        "body": {"de": "Ausgabe dienstags, Grüße ✓"}, "tags": {"essen": true},
        "location": {"lat": 52.52, "lon": 13.405}, "valid_until": null, "n": -3});
    let original = write_change(&mut d, "x", DocKind::Item, &value, &note(), 1_700_000_000_123)
        .unwrap()
        .unwrap();
    let creation = creation_of(&d, "x", DocKind::Item).unwrap().expect("a creation");
    assert_eq!(creation.check.len(), CREATION_CHECK_LEN);
    assert!(
        !creation.state.contains("\"id\""),
        "the record names the document"
    );
    let rebuilt = rebuild_creation(&creation, "x", DocKind::Item).unwrap();
    assert_eq!(rebuilt.hash(), original.hash());
    assert_eq!(rebuilt.raw_bytes(), original.raw_bytes());

    // Anything altered on the way is refused with a typed error, never applied.
    let mut tampered = creation.clone();
    tampered.state = tampered.state.replace("Tafel", "Tafe1");
    assert!(matches!(
        rebuild_creation(&tampered, "x", DocKind::Item),
        Err(Error::MalformedChange { .. })
    ));
    let mut garbage = creation.clone();
    garbage.state = "{not json".into();
    assert!(matches!(
        rebuild_creation(&garbage, "x", DocKind::Item),
        Err(Error::MalformedChange { .. })
    ));
    let mut no_actor = creation.clone();
    no_actor.actor.clear();
    assert!(rebuild_creation(&no_actor, "x", DocKind::Item).is_err());
    // Without its check a form is only built (a form written on this device), never rebuilt
    // as one that came from elsewhere.
    let mut no_check = creation.clone();
    no_check.check.clear();
    assert!(matches!(
        rebuild_creation(&no_check, "x", DocKind::Item),
        Err(Error::MalformedChange { .. })
    ));
    assert_eq!(
        build_creation(&no_check, "x", DocKind::Item).unwrap().hash(),
        original.hash()
    );

    // A second change: the history is no longer one creation, so it travels as a snapshot.
    let mut edited = value.clone();
    edited["title"]["de"] = json!("Tafel Nord");
    write_change(&mut d, "x", DocKind::Item, &edited, &note(), 1_700_000_000_999).unwrap();
    assert!(creation_of(&d, "x", DocKind::Item).unwrap().is_none());
}

#[test]
fn documents_made_without_a_store_read_back_and_travel_as_creations() {
    let item: crate::model::Item = serde_json::from_value(json!({
        "id": ItemId::new(), "space": crate::model::SpaceId::new(), "author": PersonId::new(),
        "created_at": 1_700_000_000_000i64, "updated_at": 1_700_000_000_000i64,
        "title": {"de": "Lesecafé"}, "body": {"de": "Donnerstags im Hof"}, "tags": ["lesen"],
        "media": [], "audience": "volunteers", "status": "published",
        "details": {"kind": "post", "post_type": "notice"}
    }))
    .unwrap();
    let actor = ActorId::from(vec![9; 16]);
    let change = new_item_change(&item, &actor).unwrap();
    assert_eq!(change.actor_id(), &actor);
    assert_eq!(change.timestamp(), 1_700_000_000_000);
    let note = ChangeNote::decode(change.message()).unwrap();
    assert_eq!(note.by, item.author);
    let mut d = Automerge::new();
    d.apply_changes([change.clone()]).unwrap();
    let doc_id = item.id.to_string();
    assert_eq!(item_from_doc(&d, &doc_id).unwrap(), item);
    let creation = creation_of(&d, &doc_id, DocKind::Item)
        .unwrap()
        .expect("a creation");
    assert_eq!(
        rebuild_creation(&creation, &doc_id, DocKind::Item)
            .unwrap()
            .hash(),
        change.hash()
    );

    let space = crate::model::Space {
        id: crate::model::SpaceId::new(),
        meta: serde_json::from_value(json!({
            "name": {"de": "Nippes"}, "description": {"de": "Unser Veedel"},
            "time_zone": "Europe/Berlin", "default_language": "de"
        }))
        .unwrap(),
    };
    let change = new_space_change(&space, item.author, &actor, 5).unwrap();
    let mut d = Automerge::new();
    d.apply_changes([change]).unwrap();
    assert_eq!(space_from_doc(&d, &space.id.to_string()).unwrap(), space);
}

/// Maps nested `levels` deep under the root key `deep` of an otherwise readable item, made by
/// one change of a few bytes per level (as another device could send).
fn nested_maps(levels: usize) -> Automerge {
    use automerge::transaction::Transactable;
    let mut d = doc(9);
    let mut tx = d.transaction();
    tx.put(automerge::ROOT, "schema", 1u64).unwrap();
    let mut obj = tx
        .put_object(automerge::ROOT, "deep", automerge::ObjType::Map)
        .unwrap();
    for _ in 1..levels {
        obj = tx.put_object(&obj, "d", automerge::ObjType::Map).unwrap();
    }
    tx.commit();
    d
}

#[test]
fn documents_nested_too_deep_are_refused_without_exhausting_the_stack() {
    // Deep enough to overflow any thread's stack when read by recursion (the server died of
    // ~180 levels): refused with a typed error, on a 1 MiB stack too.
    let deep = nested_maps(20_000);
    let result = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let item = item_from_doc(&deep, "x").map(|_| ());
            let space = space_from_doc(&deep, "x").map(|_| ());
            let creation = creation_of(&deep, "x", DocKind::Item).map(|_| ());
            (item, space, creation)
        })
        .unwrap()
        .join()
        .expect("reading a deep document does not crash");
    for outcome in [result.0, result.1, result.2] {
        let err = outcome.expect_err("a document nested 20 000 deep is refused");
        assert!(
            matches!(&err, Error::MalformedChange { reason, .. } if reason.contains("nested deeper")),
            "{err}"
        );
    }
    // The bound itself: MAX_NESTING levels read, one more refused.
    let at_limit = read_json(&nested_maps(MAX_NESTING), "x").expect("at the limit");
    assert!(at_limit.get("deep").is_some());
    assert!(matches!(
        read_json(&nested_maps(MAX_NESTING + 1), "x"),
        Err(Error::MalformedChange { .. })
    ));
}

#[test]
fn a_creation_record_nested_too_deep_is_refused() {
    // serde_json parses up to 128 levels; the writer must not recurse through them either.
    let mut state = String::from("{\"schema\":1,\"deep\":");
    for _ in 0..100 {
        state.push_str("{\"d\":");
    }
    state.push('1');
    for _ in 0..100 {
        state.push('}');
    }
    state.push('}');
    let creation = Creation {
        actor: vec![1; 16],
        time_ms: 0,
        message: None,
        state,
        check: vec![0; CREATION_CHECK_LEN],
    };
    let err = rebuild_creation(&creation, "x", DocKind::Item).expect_err("too deep");
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

/// JSON values as documents hold them: keys from a small set (so that two values share keys,
/// and `title`/`body` entries are collaborative text), scalars, lists and maps a few levels deep.
fn json_entries() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        (-3i64..3).prop_map(serde_json::Value::from),
        "[ab ]{0,5}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
            json_map(inner),
        ]
    })
}

fn json_map(
    values: impl proptest::strategy::Strategy<Value = serde_json::Value>,
) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let keys = prop::sample::select(vec!["title", "body", "de", "en", "n", "tags", "location"]);
    prop::collection::btree_map(keys, values, 0..4).prop_map(|entries| {
        serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

proptest::proptest! {
    /// An edit written from what the document reads back as (`write_edit`) leaves it exactly
    /// where writing the whole value (`write_change`) leaves it.
    #[test]
    fn an_edit_from_what_the_document_reads_as_ends_where_a_whole_write_ends(
        first in json_map(json_entries()),
        second in json_map(json_entries()),
    ) {
        let mut base = doc(1);
        write_change(&mut base, "x", DocKind::Item, &first, &note(), 0).unwrap();
        let before = read_json(&base, "x").unwrap();
        let mut whole = base.fork().with_actor(ActorId::from(vec![2; 16]));
        let mut guided = base.fork().with_actor(ActorId::from(vec![2; 16]));
        let by_whole = write_change(&mut whole, "x", DocKind::Item, &second, &note(), 0).unwrap();
        let by_edit = write_edit(&mut guided, "x", DocKind::Item, &before, &second, &note(), 0).unwrap();
        proptest::prop_assert_eq!(read_json(&guided, "x").unwrap(), read_json(&whole, "x").unwrap());
        proptest::prop_assert_eq!(by_edit.is_some(), by_whole.is_some());
    }
}

#[test]
fn an_edit_reads_and_writes_only_what_differs_and_keeps_what_it_does_not_know() {
    let mut d = doc(1);
    let stored = json!({"title": {"de": "Hoffest"}, "n": 1, "future": {"from": "a newer peer"}});
    write_change(&mut d, "x", DocKind::Item, &stored, &note(), 0).unwrap();
    // What this version's model reads back: it does not know `future`.
    let before = json!({"title": {"de": "Hoffest"}, "n": 1});
    let after = json!({"title": {"de": "Hoffest am Sonntag"}, "n": 1});
    let change = write_edit(&mut d, "x", DocKind::Item, &before, &after, &note(), 0)
        .unwrap()
        .expect("the title changed");
    assert_eq!(
        read_json(&d, "x").unwrap(),
        json!({"title": {"de": "Hoffest am Sonntag"}, "n": 1, "future": {"from": "a newer peer"}})
    );
    // Only the title's text: one splice of eleven characters (a whole write would also have
    // deleted `future`).
    assert_eq!(change.len(), 1);
    // Nothing differs, nothing is written.
    assert!(write_edit(&mut d, "x", DocKind::Item, &after, &after, &note(), 0)
        .unwrap()
        .is_none());
}

/// An edit kept as a merge patch builds, on the same document, the same change (same hash) as
/// the edit built at once from the whole new value: what lets a device store edits as patches.
#[test]
fn an_edit_built_from_its_merge_patch_is_the_edit_built_at_once() {
    let before = json!({
        "schema": 1,
        "title": {"de": "Flohmarkt im Hof", "en": "Flea market"},
        "body": {"de": "Am Samstag ab 10 Uhr."},
        "tags": ["markt", "hof"],
        "place": {"category": "market", "address": {"street": "Venloer Str. 1", "city": "Köln"}},
        "location": {"lat": 50.94, "lon": 6.93},
        "status": "published",
    });
    let afters = [
        json!({"schema": 1, "title": {"de": "Flohmarkt im Garten", "en": "Flea market"},
               "body": {"de": "Am Samstag ab 10 Uhr."}, "tags": ["markt", "hof"],
               "place": {"category": "market", "address": {"street": "Venloer Str. 1", "city": "Köln"}},
               "status": "published"}),
        json!({"schema": 1, "title": {"de": "Flohmarkt im Hof"}, "body": {"de": "Am Sonntag."},
               "tags": ["hof"], "place": {"category": "market", "address": null},
               "status": "deleted", "note": "neu"}),
        json!({"schema": 1, "title": {"de": "Flohmarkt im Hof", "en": "Flea market"},
               "body": {"de": "Am Samstag ab 10 Uhr."}, "tags": ["markt", "hof"],
               "place": {"category": "market", "address": {"street": "Venloer Str. 1", "city": "Köln"}},
               "location": {"lat": 50.95, "lon": 6.93}, "status": "published"}),
    ];
    for after in afters {
        let mut base = doc(1);
        write_change(&mut base, "x", DocKind::Item, &before, &note(), 5).unwrap();
        let note = note();
        let mut at_once = base.fork().with_actor(ActorId::from(vec![1; 16]));
        let mut from_patch = base.fork().with_actor(ActorId::from(vec![1; 16]));
        let read = read_json(&base, "x").unwrap();
        let direct = write_edit(&mut at_once, "x", DocKind::Item, &read, &after, &note, 9)
            .unwrap()
            .expect("a change");
        let patch = merge_patch::diff_document(DocKind::Item, &before, &after).expect("a difference");
        let mut target = read.clone();
        merge_patch::apply(&mut target, &patch);
        let patched = write_edit(&mut from_patch, "x", DocKind::Item, &read, &target, &note, 9)
            .unwrap()
            .expect("a change");
        assert_eq!(patched.hash(), direct.hash(), "{patch}");
    }
}
