//! Writes, edits, merges, deletion and erasure through the public API.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::{Error, IncomingChange, Store, StoreOptions};

#[test]
fn created_item_reads_back_from_feed_and_survives_reopen() {
    let fx = Fixture::new();
    let item = fx.post("Flohmarkt am Samstag", "Auf dem Leipziger Platz");
    let page = fx
        .store
        .feed(&FeedQuery::new(fx.space, fx.viewer(Role::Resident)))
        .unwrap();
    assert_eq!(page.items, vec![item.clone()]);
    let path = fx.store.path().to_path_buf();
    let viewer = fx.viewer(Role::Resident);
    let space = fx.space;
    drop(fx.store);
    let reopened = Store::open(&path, StoreOptions::default()).unwrap();
    let page = reopened.feed(&FeedQuery::new(space, viewer)).unwrap();
    assert_eq!(page.items, vec![item]);
    reopened.integrity_check().unwrap();
}

#[test]
fn update_changes_only_patched_fields_and_records_history() {
    let fx = Fixture::new();
    let item = fx.post("Sperrmüll", "Bitte nichts auf den Gehweg stellen");
    let editor = PersonId::new();
    let patch = ItemPatch {
        title: Some(LocalizedText::single("de", "Sperrmüll am Montag")),
        ..Default::default()
    };
    let updated = fx.store.update_item(item.id, &patch, editor).unwrap();
    assert_eq!(updated.content.title.get("de"), Some("Sperrmüll am Montag"));
    assert_eq!(updated.content.body, item.content.body);
    let detail = fx.store.item_detail(item.id, &fx.viewer(Role::Resident)).unwrap();
    assert_eq!(detail.item, updated);
    assert_eq!(detail.history.len(), 2);
    assert_eq!(detail.history[0].fields, vec!["created"]);
    assert_eq!(detail.history[0].person, Some(fx.author));
    assert_eq!(detail.history[1].fields, vec!["title"]);
    assert_eq!(detail.history[1].person, Some(editor));
    assert_eq!(detail.history[1].device, fx.store.device_actor());
}

#[test]
fn concurrent_edits_from_two_stores_merge() {
    let a = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let b = Store::open(dir.path().join("b.db"), StoreOptions::default()).unwrap();
    let item = a.post("Hoffest", "Wir feiern im Hof.");
    // b receives everything a has.
    for (doc, _) in a.store.document_ids().unwrap() {
        b.apply_changes(&a.store.document_changes(&doc).unwrap()).unwrap();
    }
    // Both edit concurrently: a the title, b the body.
    a.store
        .update_item(
            item.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Großes Hoffest")),
                ..Default::default()
            },
            a.author,
        )
        .unwrap();
    b.update_item(
        item.id,
        &ItemPatch {
            body: Some(LocalizedText::single(
                "de",
                "Wir feiern im Hof. Bringt Kuchen mit!",
            )),
            ..Default::default()
        },
        a.author,
    )
    .unwrap();
    let doc = item.id.to_string();
    let from_a = a.store.document_changes(&doc).unwrap();
    let from_b = b.document_changes(&doc).unwrap();
    a.store.apply_changes(&from_b).unwrap();
    b.apply_changes(&from_a).unwrap();
    assert_eq!(
        a.store.document_heads(&doc).unwrap(),
        b.document_heads(&doc).unwrap()
    );
    let viewer = a.viewer(Role::Resident);
    let on_a = a.store.item_detail(item.id, &viewer).unwrap().item;
    let on_b = b.item_detail(item.id, &viewer).unwrap().item;
    assert_eq!(on_a.content, on_b.content);
    assert_eq!(on_a.content.title.get("de"), Some("Großes Hoffest"));
    assert_eq!(
        on_a.content.body.get("de"),
        Some("Wir feiern im Hof. Bringt Kuchen mit!")
    );
}

#[test]
fn malformed_change_bytes_are_rejected_and_nothing_is_stored() {
    let fx = Fixture::new();
    let good = fx.post("Gut", "Text");
    let before = fx.store.document_ids().unwrap();
    let mut changes = fx.store.document_changes(&good.id.to_string()).unwrap();
    let garbage = IncomingChange {
        doc_id: ItemId::new().to_string(),
        kind: quartier_core::DocKind::Item,
        bytes: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
    };
    changes.push(garbage);
    let err = fx.store.apply_changes(&changes).unwrap_err();
    assert!(matches!(err, Error::MalformedChange { .. }), "{err}");
    assert_eq!(fx.store.document_ids().unwrap(), before);
    let err = fx
        .store
        .apply_changes(&[IncomingChange {
            doc_id: "not-a-uuid".into(),
            kind: quartier_core::DocKind::Item,
            bytes: vec![],
        }])
        .unwrap_err();
    assert!(err.to_string().contains("not a UUID"), "{err}");
}

#[test]
fn a_relayed_change_with_an_altered_checksum_is_refused() {
    // Bytes 4..8 of a change are its checksum, covered by neither its hash nor its signature:
    // a relay could alter them unnoticed, and the store would pass the altered copy on.
    let fx = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let other = Store::open(dir.path().join("other.db"), StoreOptions::default()).unwrap();
    let item = fx.post("Weitergereicht", "Text");
    let mut genuine = fx.store.document_changes(&fx.space.to_string()).unwrap();
    genuine.extend(fx.store.document_changes(&item.id.to_string()).unwrap());
    let last = genuine.len() - 1;
    for position in 4..8 {
        let mut altered = genuine.clone();
        altered[last].bytes[position] ^= 0x5a;
        let err = other.apply_changes(&altered).unwrap_err();
        assert!(
            matches!(&err, Error::MalformedChange { reason, .. } if reason.contains("checksum")),
            "byte {position}: {err}"
        );
        assert!(other.document_ids().unwrap().is_empty(), "nothing stored");
    }
    other.apply_changes(&genuine).unwrap();
    assert_eq!(other.document_ids().unwrap().len(), 2);
}

#[test]
fn delete_hides_and_erase_removes_everything() {
    let fx = Fixture::new();
    let item = fx.post("Geheimnis", "Dieser Text soll verschwinden: Zauberwort");
    let comment = fx.create(ItemContent::new(
        LocalizedText::single("de", "Kommentar"),
        ItemDetails::Comment(Comment { parent: item.id }),
    ));
    let viewer = fx.viewer(Role::Resident);
    fx.store.delete_item(comment.id, fx.author).unwrap();
    assert!(fx
        .store
        .item_detail(item.id, &viewer)
        .unwrap()
        .comments
        .is_empty());
    assert!(matches!(
        fx.store.item_detail(comment.id, &viewer),
        Err(Error::NotFound { .. })
    ));
    let erased = fx.store.erase_item(item.id).unwrap();
    assert_eq!(erased, 2);
    assert!(fx
        .store
        .document_ids()
        .unwrap()
        .iter()
        .all(|(d, _)| *d != item.id.to_string()));
    assert!(matches!(
        fx.store.item_detail(item.id, &viewer),
        Err(Error::NotFound { .. })
    ));
    assert!(fx
        .store
        .pending_changes(100)
        .unwrap()
        .iter()
        .all(|c| c.doc_id != item.id.to_string()));
    assert!(
        !store_file_holds(&fx.store, b"Zauberwort"),
        "erased text still in the database file"
    );
}

#[test]
fn invalid_input_is_rejected_with_typed_errors_and_nothing_stored() {
    let fx = Fixture::new();
    let outbox = fx.store.outbox_len().unwrap();
    let bad_place = place("Bank", 91.0, 6.9);
    assert!(matches!(
        fx.store.create_item(NewItem::new(fx.space, fx.author, bad_place)),
        Err(Error::InvalidCoordinates { .. })
    ));
    let nan_place = place("Bank", f64::NAN, 6.9);
    assert!(matches!(
        fx.store.create_item(NewItem::new(fx.space, fx.author, nan_place)),
        Err(Error::InvalidCoordinates { .. })
    ));
    let no_title = post("", "");
    assert!(matches!(
        fx.store.create_item(NewItem::new(fx.space, fx.author, no_title)),
        Err(Error::Invalid { field: "title", .. })
    ));
    let mut bad_lang = post("Titel", "");
    bad_lang.title = LocalizedText::single("deutsch!", "Titel");
    assert!(matches!(
        fx.store.create_item(NewItem::new(fx.space, fx.author, bad_lang)),
        Err(Error::Invalid { .. })
    ));
    let unknown_space = NewItem::new(SpaceId::new(), fx.author, post("Titel", ""));
    assert!(matches!(
        fx.store.create_item(unknown_space),
        Err(Error::NotFound { what: "space", .. })
    ));
    let json = r#"{"space":"0190f5a0-0000-7000-8000-000000000000","author":"0190f5a0-0000-7000-8000-000000000001",
        "title":{"de":"x"},"audience":"everyone","status":"published","details":{"kind":"spaceship"}}"#;
    assert!(
        matches!(NewItem::from_json(json).map_err(Error::from), Err(Error::UnknownKind(k)) if k == "spaceship")
    );
    assert!(matches!(
        NewItem::from_json("{not json").map_err(Error::from),
        Err(Error::MalformedInput { .. })
    ));
    assert!(matches!(
        ItemKind::parse("gossip").map_err(Error::from),
        Err(Error::UnknownKind(_))
    ));
    assert_eq!(fx.store.outbox_len().unwrap(), outbox);
    assert!(fx
        .store
        .feed(&FeedQuery::new(fx.space, fx.viewer(Role::Coordinator)))
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn oversize_document_is_refused_and_the_item_stays_as_it_was() {
    let fx = Fixture::with_options(StoreOptions {
        document_budget: 16 * 1024,
        ..StoreOptions::default()
    });
    let item = fx.post("Chronik", "Anfang.");
    let mut text = String::new();
    let mut last_ok = item.clone();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let err = loop {
        // Varied words, so that compression in snapshots cannot hide the growth.
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push(char::from(b'a' + (seed % 26) as u8));
            if seed.is_multiple_of(7) {
                text.push(' ');
            }
        }
        let patch = ItemPatch {
            body: Some(LocalizedText::single("de", text.clone())),
            ..Default::default()
        };
        match fx.store.update_item(item.id, &patch, fx.author) {
            Ok(i) => last_ok = i,
            Err(e) => break e,
        }
        assert!(text.len() < 64 * 1024, "budget never enforced");
    };
    assert!(
        matches!(err, Error::DocumentTooLarge { budget: 16384, .. }),
        "{err}"
    );
    let now = fx
        .store
        .item_detail(item.id, &fx.viewer(Role::Resident))
        .unwrap()
        .item;
    assert_eq!(now, last_ok);
}

/// The change of an item created here, from the pushed bytes.
fn pushed_change(store: &Store, item: &Item) -> (quartier_core::OutgoingChange, automerge::Change) {
    let pending = store.pending_changes(100).unwrap();
    let entry = pending
        .into_iter()
        .find(|c| c.doc_id == item.id.to_string())
        .expect("the creation is in the outbox");
    let change = automerge::Change::from_bytes(entry.bytes.clone()).expect("a change");
    (entry, change)
}

#[test]
fn a_created_item_is_pushed_as_exactly_the_change_a_store_write_makes() {
    let fx = Fixture::new();
    let item = fx.post("Tauschregal", "Im Hausflur: Bücher und Spiele");
    let viewer = fx.viewer(Role::Resident);
    // Not built yet: its history row has no hash until the change is built.
    let before = fx.store.item_detail(item.id, &viewer).unwrap().history;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].change, "");
    assert_eq!(before[0].fields, vec!["created"]);

    let (entry, change) = pushed_change(&fx.store, &item);
    assert_eq!(entry.hash, change.hash().to_string());
    let expected = quartier_core::document::new_item_change(&item, change.actor_id()).unwrap();
    assert_eq!(
        change.raw_bytes(),
        expected.raw_bytes(),
        "the write path's own change"
    );
    assert_eq!(change.actor_id().to_hex_string(), fx.store.device_actor());

    // Built once: asking again gives the same entry, and history names the change (by the
    // prefix a form received shows, until the document is edited).
    let (again, _) = pushed_change(&fx.store, &item);
    assert_eq!(again, entry);
    let after = fx.store.item_detail(item.id, &viewer).unwrap().history;
    assert_eq!(after[0].change, entry.hash[..8]);
    assert_eq!((after[0].person, after[0].at), (before[0].person, before[0].at));
    let stored = fx.store.document_changes(&item.id.to_string()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].bytes, entry.bytes);
    fx.store.integrity_check().unwrap();
}

#[test]
fn an_item_edited_before_its_first_push_sends_its_creation_then_the_edit_across_a_reopen() {
    let fx = Fixture::new();
    let item = fx.post("Hofflohmarkt", "Samstag ab 10");
    let path = fx.store.path().to_path_buf();
    let (space, viewer, author) = (fx.space, fx.viewer(Role::Resident), fx.author);
    drop(fx.store);
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let patch = ItemPatch {
        body: Some(LocalizedText::single("de", "Samstag ab 11")),
        ..Default::default()
    };
    let edited = store.update_item(item.id, &patch, author).unwrap();
    let ours: Vec<_> = store
        .pending_changes(100)
        .unwrap()
        .into_iter()
        .filter(|c| c.doc_id == item.id.to_string())
        .collect();
    assert_eq!(ours.len(), 2, "the creation and the edit, in order");
    let creation = automerge::Change::from_bytes(ours[0].bytes.clone()).unwrap();
    assert_eq!(
        creation.raw_bytes(),
        quartier_core::document::new_item_change(&item, creation.actor_id())
            .unwrap()
            .raw_bytes()
    );
    // Another store that takes the two in order reads the edited item.
    let dir = tempfile::tempdir().unwrap();
    let other = Store::open(dir.path().join("other.db"), StoreOptions::default()).unwrap();
    for (doc, _) in store.document_ids().unwrap() {
        if doc == space.to_string() {
            other
                .apply_changes(&store.document_changes(&doc).unwrap())
                .unwrap();
        }
    }
    let incoming: Vec<IncomingChange> = ours
        .iter()
        .map(|c| IncomingChange {
            doc_id: c.doc_id.clone(),
            kind: c.kind,
            bytes: c.bytes.clone(),
        })
        .collect();
    other.apply_changes(&incoming).unwrap();
    assert_eq!(other.item_detail(item.id, &viewer).unwrap().item, edited);
    let history = store.item_detail(item.id, &viewer).unwrap().history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].change, creation.hash().to_string());
}

/// A field that a newer version of the app added to a document stays when this version edits
/// the item or the space: an edit writes only the fields that differ from what it read.
#[test]
fn an_edit_keeps_the_fields_a_newer_version_added() {
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::ReadDoc;
    let fx = Fixture::new();
    let item = fx.post("Hoffest", "Am Sonntag");
    let docs = [item.id.to_string(), fx.space.to_string()];
    let read = |doc_id: &str| {
        let mut doc = automerge::Automerge::new();
        let changes = fx.store.document_changes(doc_id).unwrap();
        doc.apply_changes(
            changes
                .iter()
                .map(|c| automerge::Change::from_bytes(c.bytes.clone()).unwrap()),
        )
        .unwrap();
        (doc, changes[0].kind)
    };
    let mut newer = Vec::new();
    for doc_id in &docs {
        let (mut doc, kind) = read(doc_id);
        doc.set_actor(automerge::ActorId::random());
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "step_free_entrance", "ramp at the back")
            .unwrap();
        let note = quartier_core::document::ChangeNote::new(fx.author, ["step_free_entrance"]);
        tx.commit_with(CommitOptions::default().with_message(note.encode()));
        let change = doc.get_last_local_change().unwrap();
        newer.push(IncomingChange {
            doc_id: doc_id.clone(),
            kind,
            bytes: change.raw_bytes().to_vec(),
        });
    }
    let report = fx.store.apply_changes(&newer).unwrap();
    assert_eq!(report.applied, 2, "{report:?}");
    let title = fx.retitle(item.id, "Hoffest am Sonntag").content.title;
    let mut meta = fx.store.space(fx.space).unwrap().meta;
    meta.name = LocalizedText::single("de", "Ehrenfeld-Süd");
    fx.store.update_space(fx.space, meta.clone(), fx.author).unwrap();
    for doc_id in &docs {
        let (doc, _) = read(doc_id);
        let kept = doc
            .get(automerge::ROOT, "step_free_entrance")
            .unwrap()
            .map(|(value, _)| value.to_string());
        assert_eq!(kept.as_deref(), Some("\"ramp at the back\""), "{doc_id}");
    }
    let viewer = fx.viewer(Role::Resident);
    assert_eq!(
        fx.store.item_detail(item.id, &viewer).unwrap().item.content.title,
        title
    );
    assert_eq!(fx.store.space(fx.space).unwrap().meta, meta);
}

/// From its first built edit on, an item's document is kept as a snapshot with the later edits
/// beside it (loading a saved document is faster than applying the changes that made it), and
/// reads, edits and syncs as before. Edits are kept as patches until the document is next
/// needed (here: built for sending).
#[test]
fn an_edited_item_is_kept_as_a_snapshot_and_its_later_edits() {
    let fx = Fixture::new();
    let item = fx.post("Hoffest", "Am Sonntag im Hof");
    let stored = |store: &Store| -> (bool, i64) {
        rusqlite::Connection::open(store.path())
            .unwrap()
            .query_row(
                "SELECT d.snapshot IS NOT NULL, (SELECT count(*) FROM doc_changes c WHERE c.doc_id = d.doc_id)
                 FROM documents d WHERE d.doc_id = ?1",
                [item.id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    assert_eq!(
        stored(&fx.store),
        (false, 0),
        "a new item is kept in creation form"
    );
    fx.retitle(item.id, "Hoffest am Sonntag");
    assert_eq!(stored(&fx.store), (false, 0), "an edit is kept as a patch");
    fx.store.pending_changes(10).unwrap();
    assert_eq!(
        stored(&fx.store),
        (true, 0),
        "the first built edit leaves a snapshot"
    );
    fx.retitle(item.id, "Hoffest am Sonntag, 15 Uhr");
    fx.retitle(item.id, "Hoffest am Sonntag, 16 Uhr");
    fx.store.pending_changes(10).unwrap();
    assert_eq!(stored(&fx.store), (true, 2), "later edits are kept beside it");
    let viewer = fx.viewer(Role::Resident);
    let detail = fx.store.item_detail(item.id, &viewer).unwrap();
    assert_eq!(
        detail.item.content.title.get("de"),
        Some("Hoffest am Sonntag, 16 Uhr")
    );
    assert_eq!(detail.history.len(), 4);
    // Another store that takes every change reads the same item.
    let (_dir, other) = fx.replica();
    assert_eq!(other.item_detail(item.id, &viewer).unwrap().item, detail.item);
}

#[test]
fn an_oversize_new_item_is_refused_before_anything_is_stored() {
    let fx = Fixture::with_options(StoreOptions {
        document_budget: 2048,
        ..StoreOptions::default()
    });
    let outbox = fx.store.outbox_len().unwrap();
    let docs = fx.store.document_ids().unwrap().len();
    let err = fx
        .store
        .create_item(NewItem::new(
            fx.space,
            fx.author,
            post("Lang", &"Text ".repeat(600)),
        ))
        .expect_err("over the budget");
    assert!(
        matches!(err, Error::DocumentTooLarge { budget: 2048, .. }),
        "{err}"
    );
    assert_eq!(fx.store.outbox_len().unwrap(), outbox);
    assert_eq!(fx.store.document_ids().unwrap().len(), docs);
}

/// Runs `sql` on the closed store at `path` and opens it again.
fn tamper(store: Store, sql: &str) -> Store {
    let path = store.path().to_path_buf();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    Store::open(&path, StoreOptions::default()).unwrap()
}

#[test]
fn an_item_made_here_survives_a_damaged_projection_before_and_after_it_is_built() {
    let fx = Fixture::new();
    let (viewer, author) = (fx.viewer(Role::Coordinator), fx.author);
    let unsent = fx.post("Noch nicht gesendet", "steht nur hier");
    let sent = fx.post("Schon vorbereitet", "liegt im Postausgang");
    let (_, built) = pushed_change(&fx.store, &sent);
    // Both projections damaged: the unsent form builds from the state it keeps, the built one
    // comes from its outbox entry; neither is set aside.
    let store = tamper(fx.store, "UPDATE item_json SET json = x'00'");
    let pending = store.pending_changes(100).unwrap();
    let unsent_change = pending
        .iter()
        .find(|c| c.doc_id == unsent.id.to_string())
        .expect("the unsent item is pushed");
    let unsent_change = automerge::Change::from_bytes(unsent_change.bytes.clone()).unwrap();
    assert_eq!(
        unsent_change.raw_bytes(),
        quartier_core::document::new_item_change(&unsent, unsent_change.actor_id())
            .unwrap()
            .raw_bytes()
    );
    for (item, title) in [(&unsent, "Gesendet"), (&sent, "Bearbeitet")] {
        let patch = ItemPatch {
            title: Some(LocalizedText::single("de", title)),
            ..Default::default()
        };
        let edited = store.update_item(item.id, &patch, author).expect("edit");
        assert_eq!(edited.content.body, item.content.body);
        assert_eq!(store.item_detail(item.id, &viewer).unwrap().item, edited);
    }
    let sent_changes = store.document_changes(&sent.id.to_string()).unwrap();
    assert_eq!(sent_changes[0].bytes, built.raw_bytes());
}

#[test]
fn an_item_whose_change_cannot_be_built_is_reported_and_does_not_stop_the_others() {
    let fx = Fixture::new();
    let broken = fx.post("Kaputt", "Form beschädigt");
    let fine = fx.post("Heil", "geht raus");
    let store = tamper(
        fx.store,
        &format!(
            "UPDATE documents SET creation = x'00ff00ff' WHERE doc_id = '{}'",
            broken.id
        ),
    );
    let pending = store.pending_changes(100).expect("not an error for every sync");
    assert!(pending.iter().any(|c| c.doc_id == fine.id.to_string()));
    assert!(!pending.iter().any(|c| c.doc_id == broken.id.to_string()));
    let reason: Option<String> = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row(
            "SELECT defer_reason FROM outbox WHERE doc_id = ?1",
            [broken.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reason.is_some_and(|r| r.contains("could not be prepared")));
    // Still on the device for the person to copy: never set aside.
    assert!(store
        .document_ids()
        .unwrap()
        .iter()
        .any(|(d, _)| *d == broken.id.to_string()));
    let detail = store.item_detail(broken.id, &fx_viewer(&fine)).unwrap();
    assert_eq!(detail.item.content.title, broken.content.title);
    // Asking again does not try (and log) it again, and still gives the others.
    assert_eq!(store.pending_changes(100).unwrap(), pending);
}

fn fx_viewer(item: &Item) -> Viewer {
    Viewer::new(item.author, Role::Coordinator)
}

#[test]
fn a_projection_rebuild_keeps_what_only_this_device_has() {
    let fx = Fixture::new();
    let unsent = fx.post("Nur hier", "noch nicht gesendet");
    let broken = fx.post("Kaputt", "Form beschädigt");
    fx.store.rebuild_projections().unwrap();
    // After the rebuild the unsent form still keeps its state: its projection may go.
    let store = tamper(
        fx.store,
        &format!(
            "UPDATE item_json SET json = x'00';
             UPDATE documents SET creation = x'00ff00ff' WHERE doc_id = '{}';
             INSERT INTO projection_rebuild (singleton, owed_since) VALUES (1, 0);",
            broken.id
        ),
    );
    // The owed rebuild ran at open and did not fail over the damaged form.
    let (_, change) = pushed_change(&store, &unsent);
    assert_eq!(
        change.raw_bytes(),
        quartier_core::document::new_item_change(&unsent, change.actor_id())
            .unwrap()
            .raw_bytes()
    );
    let viewer = Viewer::new(unsent.author, Role::Coordinator);
    assert_eq!(store.item_detail(unsent.id, &viewer).unwrap().item, unsent);
    assert!(store
        .document_ids()
        .unwrap()
        .iter()
        .any(|(d, _)| *d == broken.id.to_string()));
}

/// A checkpoint a reader's snapshot holds back does not report success (an erasure's old pages
/// would stay in the WAL): it waits a little, then says busy; once the reader is done it works.
#[test]
fn a_checkpoint_held_back_by_a_reader_says_so() {
    let fx = Fixture::new();
    fx.post("Vorher", "geschrieben");
    let reader = rusqlite::Connection::open(fx.store.path()).expect("a second connection");
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
        .expect("a snapshot");
    fx.post("Nachher", "während der Leser liest");
    match fx.store.checkpoint() {
        Err(Error::Storage(e)) => assert!(e.to_string().contains("try again"), "{e}"),
        other => panic!("a held-back checkpoint must not succeed: {other:?}"),
    }
    reader.execute_batch("COMMIT").expect("end of the snapshot");
    fx.store.checkpoint().expect("folded once the reader is done");
}

/// An erasure whose checkpoint a reader holds back owes it: settling fails while the reader
/// stays, and succeeds (clearing the debt) once it is gone.
#[test]
fn an_erasure_held_back_by_a_reader_owes_its_checkpoint_until_it_is_settled() {
    let fx = Fixture::new();
    let item = fx.post("Geheim", "wird gelöscht");
    assert!(fx.store.settle_owed_checkpoint(), "nothing owed at first");
    let reader = rusqlite::Connection::open(fx.store.path()).expect("a second connection");
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
        .expect("a snapshot");
    fx.store.erase_item(item.id).expect("erase");
    assert!(!fx.store.settle_owed_checkpoint(), "still held back");
    reader.execute_batch("COMMIT").expect("end of the snapshot");
    assert!(
        fx.store.settle_owed_checkpoint(),
        "settled once the reader is done"
    );
    assert!(fx.store.settle_owed_checkpoint(), "and nothing owed after");
}

/// An edit is kept as a patch until its document is needed: the history names it by its outbox
/// position, reading the document builds it (the same heads before and after it is stored), and
/// building it for sending gives the chain of changes the edits made, one on the other.
#[test]
fn edits_are_kept_as_patches_until_they_are_sent() {
    let fx = Fixture::new();
    let item = fx.post("Hoffest", "Am Sonntag");
    fx.retitle(item.id, "Hoffest im Garten");
    let body = ItemPatch {
        body: Some(LocalizedText::single("de", "Am Sonntag ab 15 Uhr")),
        ..Default::default()
    };
    fx.store.update_item(item.id, &body, fx.author).unwrap();
    let viewer = fx.viewer(Role::Coordinator);
    let history = fx.store.item_detail(item.id, &viewer).unwrap().history;
    let fields: Vec<_> = history.iter().map(|h| h.fields.join(",")).collect();
    assert_eq!(fields, ["created", "title", "body"]);
    assert!(
        history[1..].iter().all(|h| h.change.starts_with("pending-")
            && h.person == Some(fx.author)
            && h.device == fx.store.device_actor()),
        "{history:#?}"
    );
    let heads = fx.store.document_heads(&item.id.to_string()).unwrap();

    let ours = sent_changes_of(&fx.store, item.id);
    assert_eq!(ours.len(), 3);
    assert_eq!(ours[1].deps(), vec![ours[0].hash()]);
    assert_eq!(ours[2].deps(), vec![ours[1].hash()]);
    assert_eq!(
        fx.store.document_heads(&item.id.to_string()).unwrap(),
        heads,
        "built the same when read and when stored"
    );
    assert_eq!(heads, vec![ours[2].hash().to_string()]);
    assert_eq!(
        history_keys(&fx.store, item.id),
        hashes_of(&ours),
        "the history names the built changes"
    );
    let (_dir, other) = fx.replica();
    let there = other.item_detail(item.id, &viewer).unwrap().item;
    assert_eq!(there.content.title.get("de"), Some("Hoffest im Garten"));
    assert_eq!(there.content.body.get("de"), Some("Am Sonntag ab 15 Uhr"));
}

/// A burst of edits (an import, a script, a person typing fast) often falls within one
/// millisecond: the history keeps them in the order they were made, as patches and once built,
/// and the title is the last one's.
#[test]
fn a_burst_of_edits_shows_in_history_in_the_order_it_was_made() {
    let fx = Fixture::new();
    let item = fx.post("Flohmarkt", "Im Hof");
    let titles: Vec<String> = (1..=12).map(|n| format!("Flohmarkt {n}")).collect();
    for title in &titles {
        fx.retitle(item.id, title);
    }
    let pending: Vec<i64> = history_keys(&fx.store, item.id)
        .iter()
        .skip(1)
        .map(|key| key.strip_prefix("pending-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(pending.len(), titles.len());
    assert!(
        pending.windows(2).all(|w| w[0] < w[1]),
        "in the order made: {pending:?}"
    );

    let ours = sent_changes_of(&fx.store, item.id);
    assert_eq!(ours.len(), titles.len() + 1);
    assert_eq!(
        history_keys(&fx.store, item.id),
        hashes_of(&ours),
        "the built chain, in order"
    );
    let shown = fx
        .store
        .item_detail(item.id, &fx.viewer(Role::Coordinator))
        .unwrap()
        .item;
    assert_eq!(shown.content.title.get("de"), titles.last().map(String::as_str));
}

/// Changes from elsewhere merged while edits wait as patches: the edits are built on the
/// document as it was when they were made (not on top of what arrived), both edits show, and
/// both stores end with the same document.
#[test]
fn edits_kept_as_patches_are_built_on_the_state_they_were_made_on() {
    let fx = Fixture::new();
    let item = fx.post("Repair-Café", "Jeden Monat");
    let creation = fx.store.pending_changes(10).unwrap();
    let creation = automerge::Change::from_bytes(creation.last().unwrap().bytes.clone())
        .unwrap()
        .hash();
    let (_dir, phone) = fx.replica();
    let body = ItemPatch {
        body: Some(LocalizedText::single("de", "Jeden ersten Samstag")),
        ..Default::default()
    };
    phone.update_item(item.id, &body, fx.author).unwrap();
    fx.retitle(item.id, "Repair-Café Nippes");
    fx.store
        .apply_changes(&phone.document_changes(&item.id.to_string()).unwrap())
        .unwrap();
    let viewer = fx.viewer(Role::Resident);
    let merged = fx.store.item_detail(item.id, &viewer).unwrap().item;
    assert_eq!(merged.content.title.get("de"), Some("Repair-Café Nippes"));
    assert_eq!(merged.content.body.get("de"), Some("Jeden ersten Samstag"));
    let sent = fx.store.pending_changes(10).unwrap();
    let edit = automerge::Change::from_bytes(sent.last().unwrap().bytes.clone()).unwrap();
    assert_eq!(edit.deps(), vec![creation], "built where it was made");
    phone
        .apply_changes(&fx.store.document_changes(&item.id.to_string()).unwrap())
        .unwrap();
    assert_eq!(
        phone.document_heads(&item.id.to_string()).unwrap(),
        fx.store.document_heads(&item.id.to_string()).unwrap()
    );
    assert_eq!(phone.item_detail(item.id, &viewer).unwrap().item, merged);
}

/// Erasing an item takes its edits kept as patches with it: nothing waits to be sent, and the
/// words they wrote are gone from the file.
#[test]
fn erasing_an_item_erases_its_edits_kept_as_patches() {
    let fx = Fixture::new();
    let waiting = fx.store.outbox_len().unwrap();
    let item = fx.post("Sprechstunde", "Dienstags");
    fx.retitle(item.id, "Sprechstunde Zimmer Qwertzuiop");
    fx.retitle(item.id, "Sprechstunde Zimmer 12");
    assert_eq!(fx.store.outbox_len().unwrap(), waiting + 3);
    fx.store.erase_item(item.id).unwrap();
    assert_eq!(fx.store.outbox_len().unwrap(), waiting);
    assert!(!store_file_holds(&fx.store, b"Qwertzuiop"));
}

/// A projection rebuild builds the edits kept as patches with their documents: the items read
/// as edited and their history names the built changes.
#[test]
fn a_projection_rebuild_builds_the_edits_kept_as_patches() {
    let fx = Fixture::new();
    let item = fx.post("Flohmarkt", "Samstag");
    fx.retitle(item.id, "Flohmarkt im Hof");
    fx.store.rebuild_projections().unwrap();
    let viewer = fx.viewer(Role::Resident);
    let detail = fx.store.item_detail(item.id, &viewer).unwrap();
    assert_eq!(detail.item.content.title.get("de"), Some("Flohmarkt im Hof"));
    assert_eq!(detail.history.len(), 2);
    assert!(
        detail.history.iter().all(|h| h.change.len() == 64),
        "{:#?}",
        detail.history
    );
    let sent = fx.store.pending_changes(10).unwrap();
    assert_eq!(sent.iter().filter(|c| c.doc_id == item.id.to_string()).count(), 2);
}

/// An author-only item edited as a patch and then shared is created afresh, as it is: one
/// change, its creation, with the last title.
#[test]
fn an_author_only_item_edited_then_shared_leaves_as_one_creation() {
    let fx = Fixture::new();
    let mut content = post("Notiz", "nur für mich");
    content.audience = Audience::AuthorOnly;
    let item = fx.create(content);
    fx.retitle(item.id, "Notiz für alle");
    let share = ItemPatch {
        audience: Some(Audience::Everyone),
        ..Default::default()
    };
    fx.store.update_item(item.id, &share, fx.author).unwrap();
    let sent: Vec<_> = fx
        .store
        .pending_changes(10)
        .unwrap()
        .into_iter()
        .filter(|c| c.doc_id == item.id.to_string())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let change = automerge::Change::from_bytes(sent[0].bytes.clone()).unwrap();
    assert!(change.deps().is_empty(), "a creation");
    let (_dir, other) = fx.replica();
    let there = other
        .item_detail(item.id, &fx.viewer(Role::Resident))
        .unwrap()
        .item;
    assert_eq!(there.content.title.get("de"), Some("Notiz für alle"));
}

/// `n` title edits by another device (actor `11…`), all made in the millisecond `at_ms`, built
/// on `store`'s copy of the item's document: a burst from a script or an import elsewhere.
fn burst_from_elsewhere(
    store: &Store,
    id: ItemId,
    by: PersonId,
    at_ms: i64,
    n: usize,
) -> Vec<IncomingChange> {
    use quartier_core::document::{item_from_doc, item_to_json, write_edit, ChangeNote, DocKind};
    let doc_id = id.to_string();
    let mut doc = automerge::Automerge::new();
    let base: Vec<automerge::Change> = store
        .document_changes(&doc_id)
        .unwrap()
        .into_iter()
        .map(|c| automerge::Change::from_bytes(c.bytes).unwrap())
        .collect();
    doc.apply_changes(base).unwrap();
    doc.set_actor(automerge::ActorId::from([0x11u8; 16]));
    let mut out = Vec::new();
    for k in 1..=n {
        let mut item = item_from_doc(&doc, &doc_id).unwrap();
        let before = item_to_json(&item).unwrap();
        item.content.title = LocalizedText::single("de", format!("Burst {k}"));
        let target = item_to_json(&item).unwrap();
        let note = ChangeNote::new(by, ["title"]);
        let change = write_edit(&mut doc, &doc_id, DocKind::Item, &before, &target, &note, at_ms)
            .unwrap()
            .unwrap();
        out.push(IncomingChange {
            doc_id: doc_id.clone(),
            kind: DocKind::Item,
            bytes: change.raw_bytes().to_vec(),
        });
    }
    out
}

/// The item's changes the store sends next (built now if they were kept as patches), in order.
fn sent_changes_of(store: &Store, id: ItemId) -> Vec<automerge::Change> {
    store
        .pending_changes(1000)
        .unwrap()
        .iter()
        .filter(|c| c.doc_id == id.to_string())
        .map(|c| automerge::Change::from_bytes(c.bytes.clone()).unwrap())
        .collect()
}

fn hashes_of(changes: &[automerge::Change]) -> Vec<String> {
    changes.iter().map(|c| c.hash().to_string()).collect()
}

/// The keys of an item's history, in order.
fn history_keys(store: &Store, id: ItemId) -> Vec<String> {
    history_of(store, id).into_iter().map(|h| h.3).collect()
}

/// An item's history as (time, device, fields, key).
fn history_of(store: &Store, id: ItemId) -> Vec<(i64, String, Vec<String>, String)> {
    let viewer = Viewer::new(PersonId::new(), Role::Coordinator);
    store
        .item_detail(id, &viewer)
        .unwrap()
        .history
        .into_iter()
        .map(|h| (h.at.timestamp_millis(), h.device, h.fields, h.change))
        .collect()
}

/// Bursts within one millisecond on two devices: this one's edits kept as patches, a replica
/// holding them built, and another device's burst in the same millisecond merged into both.
/// Both show one order, keys included once merged.
#[test]
fn bursts_within_one_millisecond_show_in_one_order_on_every_device() {
    let fx = Fixture::new();
    let item = fx.post("Flohmarkt", "Im Hof");
    for n in 1..=6 {
        fx.retitle(item.id, &format!("Flohmarkt {n}"));
    }
    let here = history_of(&fx.store, item.id);
    assert!(here.iter().skip(1).all(|h| h.3.starts_with("pending-")));
    let (_dir, there) = fx.replica();
    let without_keys = |h: &[(i64, String, Vec<String>, String)]| -> Vec<(i64, String, Vec<String>)> {
        h.iter()
            .map(|(at, device, fields, _)| (*at, device.clone(), fields.clone()))
            .collect()
    };
    assert_eq!(without_keys(&here), without_keys(&history_of(&there, item.id)));
    let at = here.last().unwrap().0;
    let burst = burst_from_elsewhere(&there, item.id, fx.author, at, 8);
    there.apply_changes(&burst).unwrap();
    fx.store.apply_changes(&burst).unwrap();
    let merged = history_of(&fx.store, item.id);
    assert_eq!(merged, history_of(&there, item.id));
    let theirs: Vec<&str> = merged
        .iter()
        .filter(|h| h.1 == "11".repeat(16))
        .map(|h| h.3.as_str())
        .collect();
    let made: Vec<automerge::Change> = burst
        .iter()
        .map(|c| automerge::Change::from_bytes(c.bytes.clone()).unwrap())
        .collect();
    assert_eq!(theirs, hashes_of(&made), "in the order made");
}

/// A burst within one millisecond stored before schema 30 (no sequence numbers) shows, once the
/// store is upgraded, in the order made, as on a device that received it since.
#[test]
fn a_burst_stored_before_schema_30_shows_in_the_order_made_after_the_upgrade() {
    let fx = Fixture::new();
    let item = fx.post("Flohmarkt", "Im Hof");
    let burst = burst_from_elsewhere(&fx.store, item.id, fx.author, 1_700_000_000_000, 8);
    fx.store.apply_changes(&burst).unwrap();
    let (_there_dir, there) = fx.replica();
    let expected = history_of(&there, item.id);
    let path = fx.store.path().to_path_buf();
    let Fixture { dir: _dir, store, .. } = fx;
    store.close().unwrap();
    // Back to schema 29, as `migrations.rs` takes stores back.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE signers;
             ALTER TABLE sync_spaces DROP COLUMN signatures_next;
             ALTER TABLE device DROP COLUMN peer_signatures;
             DELETE FROM items_fts_config WHERE k = 'deletemerge';
             ALTER TABLE item_history DROP COLUMN seq;
             PRAGMA user_version = 29;",
        )
        .unwrap();
    let upgraded = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(history_of(&upgraded, item.id), expected);
}

/// The bulk path reads and encodes a large page's forms on other threads while it stores the
/// ones before (`store::parallel`): the outcome is the same as the forms stored one per call,
/// in order, which never leaves the writer's thread.
#[test]
fn a_large_page_of_creation_forms_stores_as_the_same_forms_one_at_a_time() {
    let fx = Fixture::new();
    for i in 0..150 {
        let content = match i % 3 {
            0 => post(
                &format!("Flohmarkt Nummer {i}"),
                "Am Leipziger Platz, bitte Taschen mitbringen",
            ),
            1 => place(&format!("Bank {i}"), 50.95 + i as f64 * 1e-4, 6.93),
            _ => request(&format!("Hilfe beim Umzug {i}"), "moving"),
        };
        fx.create(content);
    }
    let (forms, rest) = creation_forms(&fx.store);
    assert!(rest.is_empty(), "every document is one change: {rest:?}");
    assert_eq!(forms.len(), 151, "the space and its items");
    let mut page = forms.clone();
    // The same form twice in a page (the second is merged as a change of the first) and a form
    // this core cannot read (kept, not shown).
    page.insert(90, forms[40].clone());
    let mut unreadable = forms[7].clone();
    unreadable.doc_id = ItemId::new().to_string();
    unreadable.creation.state = r#"{"schema": 999, "title": {"de": "Aus der Zukunft"}}"#.into();
    page.insert(120, unreadable.clone());

    let whole = tempfile::tempdir().unwrap();
    let whole = Store::open(whole.path().join("whole.db"), StoreOptions::default()).unwrap();
    let report = whole.apply_creations(page.clone()).unwrap();
    let singly_dir = tempfile::tempdir().unwrap();
    let singly = Store::open(singly_dir.path().join("singly.db"), StoreOptions::default()).unwrap();
    let mut one_by_one = quartier_core::MergeReport::default();
    for form in page {
        let r = singly.apply_creations(vec![form]).unwrap();
        one_by_one.applied += r.applied;
        one_by_one.duplicates += r.duplicates;
        one_by_one.waiting += r.waiting;
        one_by_one.unreadable.extend(r.unreadable);
    }
    assert_eq!(report, one_by_one);
    assert_eq!(report.applied, 152, "{report:?}");
    assert_eq!(report.duplicates, 1, "{report:?}");
    assert_eq!(report.unreadable, vec![unreadable.doc_id.clone()]);

    let viewer = fx.viewer(Role::Resident);
    let feed = FeedQuery {
        limit: 1000.into(),
        ..FeedQuery::new(fx.space, viewer)
    };
    let original = fx.store.feed(&feed).unwrap().items;
    assert_eq!(original.len(), 150);
    for store in [&whole, &singly] {
        assert_eq!(store.feed(&feed).unwrap().items, original);
        assert_eq!(store.document_ids().unwrap(), singly.document_ids().unwrap());
        for text in ["flohmarkt", "umzug 14", "leipziger"] {
            let hits = |s: &Store| -> Vec<ItemId> {
                s.search(&quartier_core::query::SearchRequest::new(fx.space, viewer, text))
                    .unwrap()
                    .into_iter()
                    .map(|h| h.item.id)
                    .collect()
            };
            assert!(!hits(&fx.store).is_empty(), "{text}");
            assert_eq!(hits(store), hits(&fx.store), "{text}");
        }
        for form in &forms {
            assert_eq!(
                store.document_heads(&form.doc_id).unwrap(),
                fx.store.document_heads(&form.doc_id).unwrap()
            );
        }
        store.integrity_check().unwrap();
    }
}

/// A creation form's state must parse as JSON in full: a value the item reader cannot take
/// (an unpaired surrogate, a number beyond f64, nesting deeper than the parser's limit) is a
/// malformed form, refused with its whole page, not a form kept as unreadable whose content is
/// later dropped. The check runs where the page's forms are read (on other threads for a large
/// page): nothing of the page is stored.
#[test]
fn a_form_whose_state_does_not_parse_refuses_its_whole_page() {
    let fx = Fixture::new();
    for i in 0..80 {
        fx.post(&format!("Flohmarkt {i}"), "Am Platz");
    }
    let (forms, _) = creation_forms(&fx.store);
    let item = forms
        .iter()
        .find(|f| f.kind == quartier_core::DocKind::Item)
        .unwrap();
    let deep = format!(r#"{{"t":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for state in [r#"{"t":"\ud800"}"#.to_owned(), r#"{"t":1e400}"#.to_owned(), deep] {
        let mut form = item.clone();
        form.doc_id = ItemId::new().to_string();
        form.creation.state = state.clone();
        assert!(
            matches!(form.validate(), Err(Error::MalformedChange { .. })),
            "{state}"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), StoreOptions::default()).unwrap();
        let mut page = forms.clone();
        page.insert(70, form);
        assert!(
            matches!(store.apply_creations(page), Err(Error::MalformedChange { .. })),
            "{state}"
        );
        assert!(
            store.document_ids().unwrap().is_empty(),
            "{state}: nothing stored"
        );
    }
}
