//! Crafted changes on which Automerge 0.12 panics (`docs/fuzzing.md`, findings 1–3 and 7), pushed by
//! a member to a real server database and merged by a device: each is refused as malformed,
//! nothing of it is stored, and both sides go on working afterwards (the server's connection
//! is not left inside a transaction, the device's store still reads and merges).

use std::path::{Path, PathBuf};

use automerge::Change;
use quartier_core::model::{ItemId, ItemPatch, LocalizedText, PersonId};
use quartier_core::store::{IncomingChange, Store};
use quartier_core::Error;
use quartier_fuzz_targets::{document_of, fixtures};
use quartier_protocol::{AckOutcome, RejectCode, SpaceCursor};
use quartier_server::sync::{pull, push, CreationForms, PushLimits};
use uuid::Uuid;

const CRASHERS: [&str; 3] = [
    "automerge-batch-index",
    "automerge-collector-assert",
    "automerge-bundle-unwrap",
];

/// Bytes on which decoding itself panics (finding 7), so they name no document of their own:
/// they are sent as an edit of the first base item.
const DECODE_CRASHERS: [&str; 1] = ["automerge-decode-objid-overflow"];

fn crasher(name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../regressions/change_bytes")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A device's edit of the first base item, made by a store that holds the base documents.
fn honest_edit(store: &Store) -> (Uuid, Vec<u8>) {
    let id = fixtures::base_item_id(1);
    let before = store.document_changes(&id.to_string()).expect("history");
    let patch = ItemPatch {
        title: Some(LocalizedText::single("de", "Noch da")),
        ..Default::default()
    };
    store
        .update_item(ItemId::from(id), &patch, PersonId::from(fixtures::PERSON))
        .expect("edit");
    let after = store.document_changes(&id.to_string()).expect("history");
    assert_eq!(after.len(), before.len() + 1, "the edit is one new change");
    let newest = after
        .into_iter()
        .find(|c| !before.iter().any(|b| b.bytes == c.bytes))
        .expect("the edit");
    (id, newest.bytes)
}

#[test]
fn the_server_refuses_each_as_malformed_and_keeps_working() {
    let env = fixtures::server();
    for name in CRASHERS {
        let bytes = crasher(name);
        let change = Change::from_bytes(bytes.clone()).expect("the crasher decodes");
        let (doc, kind) = document_of(&change);
        let before = quartier_server::storage::log::last_seq(&env.db.lock(), fixtures::SPACE).expect("seq");
        let report = push(
            &env.db,
            &env.docs,
            fixtures::PERSON,
            &[fixtures::signed_record(doc, kind, &bytes)],
            &PushLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: the push fails as a whole: {e}"));
        match &report.acks[0].outcome {
            AckOutcome::Rejected { code, .. } => assert_eq!(*code, RejectCode::Malformed, "{name}"),
            other => panic!("{name}: answered {other:?}, not refused as malformed"),
        }
        let conn = env.db.lock();
        assert!(
            conn.is_autocommit(),
            "{name}: the connection is left inside a transaction"
        );
        assert_eq!(
            quartier_server::storage::log::last_seq(&conn, fixtures::SPACE).expect("seq"),
            before,
            "{name}: something of it was stored"
        );
        // The document it aimed at still pages out whole.
        let cursor = SpaceCursor {
            space: fixtures::SPACE,
            after: None,
            members_after: None,
            signatures_after: None,
        };
        pull(
            &conn,
            &env.docs,
            Uuid::from_u128(99),
            fixtures::PERSON,
            &[cursor],
            1 << 20,
            CreationForms {
                accepted: true,
                queue: None,
                signatures: quartier_server::sync::SignatureForm::None,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: a pull after it fails: {e}"));
    }
    for name in DECODE_CRASHERS {
        let doc = fixtures::base_item_id(1);
        let record = fixtures::signed_record(doc, quartier_core::document::DocKind::Item, &crasher(name));
        let report = push(
            &env.db,
            &env.docs,
            fixtures::PERSON,
            &[record],
            &PushLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: the push fails as a whole: {e}"));
        match &report.acks[0].outcome {
            AckOutcome::Rejected { code, .. } => assert_eq!(*code, RejectCode::Malformed, "{name}"),
            other => panic!("{name}: answered {other:?}, not refused as malformed"),
        }
        assert!(
            env.db.lock().is_autocommit(),
            "{name}: the connection is left inside a transaction"
        );
    }
    // An honest edit after all of them is stored.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fixtures::base_store(&dir.path().join("device.db"));
    let (doc, bytes) = honest_edit(&store);
    let report = push(
        &env.db,
        &env.docs,
        fixtures::PERSON,
        &[fixtures::signed_record(
            doc,
            quartier_core::document::DocKind::Item,
            &bytes,
        )],
        &PushLimits::default(),
    )
    .expect("push");
    assert_eq!(report.acks[0].outcome, AckOutcome::Stored);
}

#[test]
fn a_device_refuses_each_as_malformed_and_keeps_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fixtures::base_store(&dir.path().join("device.db"));
    for name in CRASHERS {
        let bytes = crasher(name);
        let change = Change::from_bytes(bytes.clone()).expect("the crasher decodes");
        let (doc, kind) = document_of(&change);
        let heads_before = store.document_heads(&doc.to_string()).ok();
        let result = store.apply_changes(&[IncomingChange {
            doc_id: doc.to_string(),
            kind,
            bytes,
        }]);
        match result {
            Err(Error::MalformedChange { .. }) => {}
            other => panic!("{name}: merged as {other:?}, not refused as malformed"),
        }
        assert_eq!(
            store.document_heads(&doc.to_string()).ok(),
            heads_before,
            "{name}: the document changed"
        );
    }
    for name in DECODE_CRASHERS {
        let doc = fixtures::base_item_id(1).to_string();
        let heads_before = store.document_heads(&doc).ok();
        let result = store.apply_changes(&[IncomingChange {
            doc_id: doc.clone(),
            kind: quartier_core::document::DocKind::Item,
            bytes: crasher(name),
        }]);
        match result {
            Err(Error::MalformedChange { .. }) => {}
            other => panic!("{name}: merged as {other:?}, not refused as malformed"),
        }
        assert_eq!(
            store.document_heads(&doc).ok(),
            heads_before,
            "{name}: the document changed"
        );
    }
    // The store still reads, writes and merges.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = fixtures::base_store(&other_dir.path().join("device.db"));
    let (doc, bytes) = honest_edit(&other);
    let report = store
        .apply_changes(&[IncomingChange {
            doc_id: doc.to_string(),
            kind: quartier_core::document::DocKind::Item,
            bytes,
        }])
        .expect("an honest change merges");
    assert_eq!(report.applied, 1);
    assert_eq!(
        store.document_heads(&doc.to_string()).expect("heads"),
        other.document_heads(&doc.to_string()).expect("heads"),
        "the two stores did not converge"
    );
}
