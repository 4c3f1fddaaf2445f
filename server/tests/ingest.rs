//! What a push does to the server's database and document cache, in process (the server's own
//! `Db`, `DocCache` and `sync::push`/`sync::pull`): a change is stored whole or not at all
//! (faults injected with TEMP triggers that abort the step's insert), signatures are verified
//! strictly, documents have a size budget, and a long push does bounded work per hold of the
//! database lock and per request. The nesting-depth attack runs against the real process.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use common::*;
use ed25519_dalek::SigningKey;
use quartier_core::model::*;
use quartier_core::{Store, StoreOptions};
use quartier_protocol::{AckOutcome, DocKind, Record, RejectCode, SpaceCursor};
use quartier_server::documents::{self, DocCache};
use quartier_server::storage::{accounts, spaces, Db, Snapshot};
use quartier_server::sync::{self, PushLimits, PushReport};
use uuid::Uuid;

/// A server database and cache, and a workbench store whose changes a registered device
/// (its key held here) pushes by hand.
struct Bench {
    _dir: tempfile::TempDir,
    db: Db,
    docs: DocCache,
    key: SigningKey,
    device: Uuid,
    person: PersonId,
    space: SpaceId,
    _store_dir: tempfile::TempDir,
    store: Store,
}

impl Bench {
    fn new() -> Bench {
        Self::with_budget(quartier_core::store::DEFAULT_DOCUMENT_BUDGET)
    }

    /// With a workbench that may write documents up to `budget` bytes.
    fn with_budget(budget: usize) -> Bench {
        let dir = tempfile::tempdir().expect("dir");
        let db = Db::open(dir.path()).expect("db");
        let key = SigningKey::from_bytes(&[7; 32]);
        let registered = accounts::register(
            &db.lock(),
            &key.verifying_key().to_bytes(),
            Some("Anna"),
            "token-a",
            None,
        )
        .expect("register");
        let person = PersonId::from(registered.person);
        let store_dir = tempfile::tempdir().expect("dir");
        let store = Store::open(
            store_dir.path().join("bench.db"),
            StoreOptions {
                document_budget: budget,
                ..StoreOptions::default()
            },
        )
        .expect("store");
        let space = store
            .create_space(space_meta("Nippes"), person)
            .expect("space")
            .id;
        spaces::create_space(&db.lock(), space.as_uuid(), registered.person).expect("space on the server");
        let bench = Bench {
            _dir: dir,
            db,
            docs: DocCache::new(100),
            key,
            device: registered.device,
            person,
            space,
            _store_dir: store_dir,
            store,
        };
        let space_doc = space.to_string();
        let changes: Vec<Vec<u8>> = bench.changes(&space_doc);
        let outcomes = bench.push(space.as_uuid(), DocKind::Space, changes);
        assert!(outcomes.iter().all(|o| *o == AckOutcome::Stored), "{outcomes:?}");
        bench
    }

    fn changes(&self, doc: &str) -> Vec<Vec<u8>> {
        self.store
            .document_changes(doc)
            .expect("changes")
            .into_iter()
            .map(|c| c.bytes)
            .collect()
    }

    fn record(&self, doc: Uuid, kind: DocKind, bytes: Vec<u8>) -> Record {
        Record::Change {
            space: self.space.as_uuid(),
            doc,
            kind,
            signature: sign_with(&self.key, &doc.to_string(), &bytes),
            bytes,
            device: self.device,
        }
    }

    fn push_with(&self, doc: Uuid, kind: DocKind, changes: Vec<Vec<u8>>, limits: &PushLimits) -> PushReport {
        let records: Vec<Record> = changes.into_iter().map(|b| self.record(doc, kind, b)).collect();
        sync::push(&self.db, &self.docs, self.person.as_uuid(), &records, limits).expect("push")
    }

    fn push(&self, doc: Uuid, kind: DocKind, changes: Vec<Vec<u8>>) -> Vec<AckOutcome> {
        self.push_with(doc, kind, changes, &PushLimits::default())
            .acks
            .into_iter()
            .map(|a| a.outcome)
            .collect()
    }

    fn push_one(&self, doc: Uuid, bytes: Vec<u8>) -> AckOutcome {
        self.push(doc, DocKind::Item, vec![bytes]).pop().expect("one ack")
    }

    /// A new device's pull of the bench's space through `conn`, after `after`, creation forms
    /// accepted (a form worked out on the way queued on `queue`).
    fn pull_space(
        &self,
        conn: &rusqlite::Connection,
        after: Option<String>,
        queue: Option<&quartier_server::storage::PendingCreations>,
    ) -> Vec<quartier_protocol::SpacePage> {
        let cursor = SpaceCursor {
            space: self.space.as_uuid(),
            after,
            members_after: None,
            signatures_after: None,
        };
        let (pages, _) = sync::pull(
            conn,
            &self.docs,
            Uuid::new_v4(),
            self.person.as_uuid(),
            std::slice::from_ref(&cursor),
            1024 * 1024,
            sync::CreationForms {
                accepted: true,
                queue,
                signatures: quartier_server::sync::SignatureForm::None,
            },
        )
        .expect("pull");
        pages
    }

    fn post(&self, title: &str, body: &str, media: Vec<MediaRef>) -> (ItemId, Vec<u8>) {
        self.post_text(title, LocalizedText::single("de", body), media)
    }

    fn post_text(&self, title: &str, body: LocalizedText, media: Vec<MediaRef>) -> (ItemId, Vec<u8>) {
        let content = ItemContent {
            body,
            media,
            ..ItemContent::new(
                LocalizedText::single("de", title),
                ItemDetails::Post(Post {
                    post_type: PostType::News,
                }),
            )
        };
        let item = self
            .store
            .create_item(NewItem::new(self.space, self.person, content))
            .expect("create");
        let changes = self.changes(&item.id.to_string());
        assert_eq!(changes.len(), 1);
        (item.id, changes.into_iter().next().expect("one"))
    }

    fn retitle(&self, item: ItemId, title: &str) -> Vec<u8> {
        new_change(&self.store, &item.to_string(), |s| {
            s.update_item(
                item,
                &ItemPatch {
                    title: Some(LocalizedText::single("de", title)),
                    ..Default::default()
                },
                self.person,
            )
            .expect("edit")
        })
        .1
    }

    fn count(&self, sql: &str, doc: Uuid) -> i64 {
        self.db
            .lock()
            .query_row(sql, [doc.to_string()], |r| r.get(0))
            .expect("count")
    }

    fn log_rows(&self, doc: Uuid) -> i64 {
        self.count("SELECT count(*) FROM log WHERE doc_id = ?1", doc)
    }

    /// The cache holds what the database holds: the same heads as a document loaded afresh.
    fn assert_cache_matches_database(&self, doc: Uuid, context: &str) {
        let conn = self.db.lock();
        let cached = self.docs.get(&conn, doc).expect("cached").doc.get_heads();
        let stored = documents::load(&conn, doc).expect("load").doc.get_heads();
        assert_eq!(cached, stored, "{context}: the cache differs from the database");
    }

    /// Installs a trigger that aborts `event` (e.g. `BEFORE INSERT ON log`) on the server's own
    /// connection.
    fn fail(&self, event: &str) {
        self.db
            .lock()
            .execute_batch(&format!(
                "CREATE TEMP TRIGGER injected_fault {event} BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            ))
            .expect("install fault");
    }

    fn heal(&self) {
        self.db
            .lock()
            .execute_batch("DROP TRIGGER temp.injected_fault")
            .expect("remove fault");
    }

    /// The page a new device of this person pulls for the space from these cursors, in pages of
    /// 64 KiB with creation forms and `signatures` as asked.
    fn pull_page(
        &self,
        conn: &rusqlite::Connection,
        after: Option<String>,
        signatures_after: Option<String>,
        signatures: quartier_server::sync::SignatureForm,
    ) -> quartier_protocol::SpacePage {
        let (pages, _) = sync::pull(
            conn,
            &self.docs,
            Uuid::new_v4(),
            self.person.as_uuid(),
            &[SpaceCursor {
                space: self.space.as_uuid(),
                after,
                members_after: None,
                signatures_after,
            }],
            64 * 1024,
            sync::CreationForms {
                accepted: true,
                queue: None,
                signatures,
            },
        )
        .expect("pull");
        pages.into_iter().next().expect("a page")
    }

    /// Every record a new device of this person pulls for the space, paged to the end.
    fn pull_all(&self) -> Vec<Record> {
        let mut cursor = None;
        let mut records = Vec::new();
        loop {
            let page = self.pull_page(
                &self.db.lock(),
                cursor.clone(),
                None,
                quartier_server::sync::SignatureForm::None,
            );
            records.extend(page.records);
            if !page.more {
                return records;
            }
            cursor = Some(page.next);
        }
    }
}

/// A pull looks at no more than 16 384 log rows per space, sent or not, in the content and in
/// the stream of signatures: where a device may read none of a long stretch of the log (here
/// rows of a document it has no metadata for), its cursors move on with `more`.
#[test]
fn a_pull_looks_at_a_bounded_number_of_rows_the_device_may_not_read() {
    let b = Bench::new();
    let conn = b.db.lock();
    let before = quartier_server::storage::log::last_seq(&conn, b.space.as_uuid()).expect("seq");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16400)
         INSERT INTO log (space_id, doc_id, record, device_id, received_at)
         SELECT ?1, ?2, 'change', ?3, 0 FROM n",
        rusqlite::params![
            b.space.as_uuid().to_string(),
            Uuid::new_v4().to_string(),
            Uuid::new_v4().to_string()
        ],
    )
    .expect("unreadable rows");
    let last = quartier_server::storage::log::last_seq(&conn, b.space.as_uuid()).expect("seq");
    let pull = |after: String, signatures_after: Option<String>| {
        b.pull_page(
            &conn,
            Some(after),
            signatures_after,
            quartier_server::sync::SignatureForm::Stream,
        )
    };
    let first = pull(format!("c:{before}:coordinator"), None);
    assert!(first.more && first.records.is_empty());
    assert_eq!(first.next, format!("c:{}:coordinator", before + 16_384));
    let second = pull(first.next.clone(), None);
    assert!(!second.more && second.records.is_empty());
    assert_eq!(second.next, format!("c:{last}:coordinator"));
    // The stream over the same stretch, once the content is all there.
    let streamed = pull(second.next.clone(), Some(format!("g:{before}:{last}")));
    assert!(streamed.more && streamed.signatures.is_empty());
    assert_eq!(
        streamed.signatures_next,
        Some(format!("g:{}:{last}", before + 16_384))
    );
    let done = pull(second.next, streamed.signatures_next);
    assert!(!done.more && done.signatures_next.is_none());
}

fn blob_hash(byte: char) -> String {
    std::iter::repeat_n(byte, 64).collect()
}

fn photo(hash: &str) -> MediaRef {
    MediaRef {
        hash: hash.into(),
        mime_type: "image/jpeg".into(),
        size: 1000,
        width: None,
        height: None,
        duration_ms: None,
        preview: None,
        thumbnail: None,
        alt_text: Default::default(),
        caption: Default::default(),
        transcript: Default::default(),
        language: None,
    }
}

fn not_stored(outcome: &AckOutcome) -> bool {
    !matches!(outcome, AckOutcome::Stored | AckOutcome::Duplicate)
}

#[test]
fn a_change_is_stored_whole_or_not_at_all_and_the_cache_never_differs_from_the_database() {
    let b = Bench::new();
    let mut stored: Vec<(Uuid, Vec<u8>)> = Vec::new();
    // Each step of storing a change, failing in turn: the change leaves no row behind, the
    // cache keeps the database's state, and the same change is stored once the fault is gone.
    let (a, first) = b.post("Hoffest", "Alle sind eingeladen", vec![]);
    let (photo_item, with_photo) = b.post("Fundstück", "Ein Schlüssel", vec![photo(&blob_hash('a'))]);
    let (c, third) = b.post("Flohmarkt", "Samstag", vec![]);
    let edit_of_a = b.retitle(a, "Hoffest am Samstag");
    let steps: Vec<(&str, Uuid, Vec<u8>)> = vec![
        ("BEFORE INSERT ON log", a.as_uuid(), first),
        ("BEFORE INSERT ON blob_refs", photo_item.as_uuid(), with_photo),
        // A new document's creation form is not written by the push (`sync::creations`), but
        // its queueing must not break the step either.
        ("BEFORE INSERT ON docs", c.as_uuid(), third),
        // An edit drops the document's creation form (recorded by the prover after each step).
        ("BEFORE DELETE ON doc_creations", a.as_uuid(), edit_of_a),
    ];
    for (event, doc, bytes) in steps {
        let rows_before = b.log_rows(doc);
        b.fail(event);
        let outcome = b.push_one(doc, bytes.clone());
        b.heal();
        assert!(not_stored(&outcome), "{event}: {outcome:?}");
        assert_eq!(
            b.log_rows(doc),
            rows_before,
            "{event}: the failed change left a log row"
        );
        b.assert_cache_matches_database(doc, event);
        assert_eq!(
            b.push_one(doc, bytes.clone()),
            AckOutcome::Stored,
            "{event}, again"
        );
        b.assert_cache_matches_database(doc, event);
        sync::creations::prove_pending(&b.db, usize::MAX).expect("prove");
        stored.push((doc, bytes));
    }
    // The rolled-back attempts left nothing the prover could record: the space's document and
    // the two items never edited have a form, the edited one none.
    assert_eq!(
        b.count(
            "SELECT count(*) FROM doc_creations WHERE doc_id != ?1",
            a.as_uuid()
        ),
        3
    );
    assert_eq!(
        b.count(
            "SELECT count(*) FROM doc_creations WHERE doc_id = ?1",
            a.as_uuid()
        ),
        0
    );
    assert_eq!(
        b.count(
            "SELECT count(*) FROM blob_refs WHERE doc_id = ?1",
            photo_item.as_uuid()
        ),
        1
    );
    // Compaction (the document's snapshot, every 64 changes) fails in turn.
    let mut edits = 1;
    loop {
        let bytes = b.retitle(a, &format!("Hoffest, Fassung {edits}"));
        edits += 1;
        let compacts = b.count("SELECT changes_since FROM docs WHERE doc_id = ?1", a.as_uuid()) + 1
            >= documents::SNAPSHOT_AFTER_CHANGES;
        if compacts {
            b.fail("BEFORE UPDATE OF snapshot ON docs");
            let outcome = b.push_one(a.as_uuid(), bytes.clone());
            b.heal();
            assert!(not_stored(&outcome), "compaction: {outcome:?}");
            b.assert_cache_matches_database(a.as_uuid(), "compaction");
        }
        assert_eq!(b.push_one(a.as_uuid(), bytes.clone()), AckOutcome::Stored);
        stored.push((a.as_uuid(), bytes));
        if compacts {
            break;
        }
    }
    assert_eq!(
        b.count(
            "SELECT count(*) FROM docs WHERE doc_id = ?1 AND snapshot IS NOT NULL",
            a.as_uuid()
        ),
        1,
        "compacted"
    );
    // A few more after the compaction, then a new device's pull holds every stored change.
    for n in 0..3 {
        let bytes = b.retitle(a, &format!("Hoffest, spät {n}"));
        assert_eq!(b.push_one(a.as_uuid(), bytes.clone()), AckOutcome::Stored);
        stored.push((a.as_uuid(), bytes));
    }
    b.assert_cache_matches_database(a.as_uuid(), "after compaction");
    let (_dir, fresh) = workbench();
    for record in b.pull_all() {
        match record {
            Record::Snapshot { doc, kind, bytes, .. } => {
                let loaded = automerge::Automerge::load(&bytes).expect("snapshot");
                let changes: Vec<quartier_core::IncomingChange> = loaded
                    .get_changes(&[])
                    .into_iter()
                    .map(|c| quartier_core::IncomingChange {
                        doc_id: doc.to_string(),
                        kind,
                        bytes: c.raw_bytes().to_vec(),
                    })
                    .collect();
                fresh.apply_changes(&changes).expect("apply snapshot");
            }
            Record::Change { doc, kind, bytes, .. } => {
                fresh
                    .apply_changes(&[quartier_core::IncomingChange {
                        doc_id: doc.to_string(),
                        kind,
                        bytes,
                    }])
                    .expect("apply change");
            }
            Record::Created { doc, .. } => {
                // Created records are rebuilt by the device; the workbench holds the original.
                copy_doc(&b.store, &fresh, &doc.to_string());
            }
            Record::Sealed { .. } | Record::ToDevice { .. } | Record::Unknown => {}
        }
    }
    for (doc, bytes) in &stored {
        let hash = automerge::Change::from_bytes(bytes.clone())
            .expect("change")
            .hash();
        assert!(
            change_hashes(&fresh, &doc.to_string()).contains(&hash),
            "a stored change of {doc} is missing from a new device's pull"
        );
    }
    assert_eq!(
        change_hashes(&fresh, &a.to_string()),
        change_hashes(&b.store, &a.to_string())
    );
}

#[test]
fn a_signature_made_without_a_private_key_against_a_weak_key_is_refused() {
    let b = Bench::new();
    // A device whose public key is the identity point (small order), registered behind the
    // registration endpoint's back: with the signature (R = identity, s = 0) every message
    // "verifies" under non-strict Ed25519.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let person = Uuid::now_v7();
    let device = Uuid::now_v7();
    {
        let conn = b.db.lock();
        conn.execute(
            "INSERT INTO persons (person_id, display_name, created_at) VALUES (?1, 'Mallory', 0)",
            [person.to_string()],
        )
        .expect("person");
        conn.execute(
            "INSERT INTO devices (device_id, person_id, public_key, token_hash, created_at) VALUES (?1, ?2, ?3, x'00', 0)",
            rusqlite::params![device.to_string(), person.to_string(), weak.to_vec()],
        )
        .expect("device");
        conn.execute(
            "INSERT INTO members (space_id, person_id, role) VALUES (?1, ?2, 'coordinator')",
            [b.space.as_uuid().to_string(), person.to_string()],
        )
        .expect("member");
    }
    let content = ItemContent::new(
        LocalizedText::single("de", "Gefälscht"),
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
    );
    let item = b
        .store
        .create_item(NewItem::new(b.space, PersonId::from(person), content))
        .expect("item");
    let bytes = b.changes(&item.id.to_string()).remove(0);
    let mut forged = weak.to_vec();
    forged.extend([0u8; 32]);
    let record = Record::Change {
        space: b.space.as_uuid(),
        doc: item.id.as_uuid(),
        kind: DocKind::Item,
        bytes,
        device,
        signature: forged,
    };
    let report = sync::push(&b.db, &b.docs, person, &[record], &PushLimits::default()).expect("push");
    assert!(
        matches!(
            &report.acks[0].outcome,
            AckOutcome::Rejected {
                code: RejectCode::BadSignature,
                ..
            }
        ),
        "{:?}",
        report.acks[0].outcome
    );
    assert_eq!(b.log_rows(item.id.as_uuid()), 0);
}

#[test]
fn a_document_may_not_grow_past_its_budget() {
    let b = Bench::with_budget(4 * 1024 * 1024);
    let limits = PushLimits {
        document_budget: 64 * 1024,
        ..PushLimits::default()
    };
    assert_eq!(
        PushLimits::default().document_budget,
        quartier_core::store::DEFAULT_DOCUMENT_BUDGET,
        "the server takes what a device may write"
    );
    let (item, first) = b.post("Lang", &letters(1, 20_000), vec![]);
    let report = b.push_with(item.as_uuid(), DocKind::Item, vec![first], &limits);
    assert_eq!(report.acks[0].outcome, AckOutcome::Stored);
    // Each edit adds the body in one more language, 20 000 letters each.
    let mut grew = Vec::new();
    let mut body = serde_json::Map::new();
    body.insert("de".into(), letters(1, 20_000).into());
    for (n, language) in ["en", "fr", "tr", "ar", "uk", "pl"].into_iter().enumerate() {
        body.insert(language.into(), letters(n as u64 + 2, 20_000).into());
        let text: LocalizedText =
            serde_json::from_value(serde_json::Value::Object(body.clone())).expect("text");
        grew.push(
            new_change(&b.store, &item.to_string(), |s| {
                s.update_item(
                    item,
                    &ItemPatch {
                        body: Some(text),
                        ..Default::default()
                    },
                    b.person,
                )
                .expect("grow")
            })
            .1,
        );
    }
    let outcomes: Vec<AckOutcome> = grew
        .into_iter()
        .map(|bytes| {
            b.push_with(item.as_uuid(), DocKind::Item, vec![bytes], &limits)
                .acks
                .remove(0)
                .outcome
        })
        .collect();
    let refused = outcomes
        .iter()
        .position(|o| {
            matches!(
                o,
                AckOutcome::Rejected {
                    code: RejectCode::TooLarge,
                    ..
                }
            )
        })
        .unwrap_or_else(|| panic!("a document of 140 000 letters is over a 64 KiB budget: {outcomes:?}"));
    assert!(refused >= 1, "{outcomes:?}");
    assert!(
        outcomes[..refused].iter().all(|o| *o == AckOutcome::Stored),
        "{outcomes:?}"
    );
    b.assert_cache_matches_database(item.as_uuid(), "after a refusal");
    let stored: Vec<u8> =
        b.db.lock()
            .query_row(
                "SELECT coalesce(length(snapshot), 0) FROM docs WHERE doc_id = ?1",
                [item.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| vec![0; n as usize])
            .expect("snapshot size");
    assert!(stored.len() <= limits.document_budget);
}

/// `len` pseudo-random lowercase letters (they do not compress away).
fn letters(seed: u64, len: usize) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// A big document (six languages of `letters` each) and a chain of `edits` edits of its
/// title (what held the lock for a minute: 300 chained edits of a big document). The edits are
/// written in Automerge directly, as a device would make them, without reading the body again.
fn big_document_and_edits(b: &Bench, letters_per_language: usize, edits: usize) -> (ItemId, Vec<Vec<u8>>) {
    let body: serde_json::Map<String, serde_json::Value> = ["de", "en", "fr", "tr", "ar", "uk"]
        .into_iter()
        .enumerate()
        .map(|(n, language)| {
            (
                language.to_owned(),
                letters(n as u64 + 3, letters_per_language).into(),
            )
        })
        .collect();
    let body: LocalizedText = serde_json::from_value(serde_json::Value::Object(body)).expect("text");
    let (item, first) = b.post_text("Roman", body, vec![]);
    assert_eq!(b.push_one(item.as_uuid(), first), AckOutcome::Stored);
    let mut doc = automerge_doc(&b.store, &item.to_string());
    let title = match automerge::ReadDoc::get(&doc, automerge::ROOT, "title").expect("title") {
        Some((automerge::Value::Object(automerge::ObjType::Map), id)) => id,
        other => panic!("title is a map: {other:?}"),
    };
    let changes = (0..edits)
        .map(|n| {
            let mut tx = doc.transaction();
            tx.put(&title, "de", format!("Roman, Kapitel {n}"))
                .expect("title");
            tx.commit_with(
                automerge::transaction::CommitOptions::default()
                    .with_message(quartier_core::document::ChangeNote::new(b.person, ["title"]).encode())
                    .with_time(1_700_000_000_000 + n as i64),
            );
            doc.get_last_local_change().expect("change").raw_bytes().to_vec()
        })
        .collect();
    (item, changes)
}

#[test]
fn a_long_push_hands_the_database_lock_over_between_bounded_steps() {
    let b = Arc::new(Bench::new());
    let (item, edits) = big_document_and_edits(&b, 10_000, 30);
    let total = edits.len() as i64 + 1;
    let limits = PushLimits {
        work_per_hold: 128 * 1024,
        ..PushLimits::default()
    };
    let pusher = {
        let b = b.clone();
        let limits = limits.clone();
        std::thread::spawn(move || b.push_with(item.as_uuid(), DocKind::Item, edits, &limits))
    };
    // Another request takes the lock again and again while the push runs: it gets it between
    // the push's steps and sees part of the chain stored (before, the push held the lock from
    // its first change to its last, so only none or all of it could be seen).
    let mut seen = std::collections::BTreeSet::new();
    while !pusher.is_finished() {
        seen.insert(b.log_rows(item.as_uuid()));
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = pusher.join().expect("push");
    assert!(
        report.acks.iter().all(|a| a.outcome == AckOutcome::Stored),
        "{report:?}"
    );
    assert!(
        seen.iter().any(|n| 1 < *n && *n < total),
        "another request saw only {seen:?} of {total} rows: it never got the lock during the push"
    );
    let largest_change = limits.document_budget + sync::MAX_CHANGE_BYTES + sync::MIN_WORK_PER_CHANGE;
    assert!(report.holds > 1, "{report:?}");
    assert!(
        report.max_hold_work <= limits.work_per_hold + largest_change,
        "work under one hold: {} (bound {})",
        report.max_hold_work,
        limits.work_per_hold + largest_change
    );
}

#[test]
fn one_request_does_bounded_work_and_defers_the_rest() {
    let b = Bench::new();
    let (item, edits) = big_document_and_edits(&b, 10_000, 40);
    let limits = PushLimits {
        work_per_request: 1024 * 1024,
        ..PushLimits::default()
    };
    let largest_change = limits.document_budget + sync::MAX_CHANGE_BYTES + sync::MIN_WORK_PER_CHANGE;
    let mut left = edits;
    let mut requests = 0;
    while !left.is_empty() {
        requests += 1;
        assert!(requests <= 40, "every request stores something");
        let report = b.push_with(item.as_uuid(), DocKind::Item, left.clone(), &limits);
        assert!(
            report.work <= limits.work_per_request + largest_change,
            "work of one request: {} (bound {})",
            report.work,
            limits.work_per_request + largest_change
        );
        let stored = report
            .acks
            .iter()
            .take_while(|a| a.outcome == AckOutcome::Stored)
            .count();
        assert!(stored > 0, "{report:?}");
        assert!(
            report.acks[stored..].iter().all(|a| matches!(
                a.outcome,
                AckOutcome::Deferred {
                    reason: quartier_protocol::DeferReason::Busy,
                    ..
                }
            )),
            "what is not done is deferred, not refused: {report:?}"
        );
        left.drain(..stored);
    }
    assert!(
        requests > 1,
        "40 edits of a 60 KB document are more than one request's work here"
    );
    assert_eq!(b.log_rows(item.as_uuid()), 41);
    b.assert_cache_matches_database(item.as_uuid(), "after the chain");
}

// ---- Against the real server process. ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_nested_hundreds_of_maps_deep_is_refused_and_the_server_keeps_serving() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    owner.sync().await;
    let attacker = RawDevice::register(&url, "Angreifer").await;
    attacker
        .redeem(&url, &owner.invite(space, Role::Volunteer).await)
        .await;
    // The attacker's own post, then one small change nesting 180 maps in it (under 1 KB).
    let (_dir, bench) = workbench();
    copy_doc(&owner.store, &bench, &space.to_string());
    let content = ItemContent::new(
        LocalizedText::single("de", "Harmlos"),
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
    );
    let item = bench
        .create_item(NewItem::new(space, attacker.person, content))
        .expect("item");
    let doc_id = item.id.to_string();
    let first = bench.document_changes(&doc_id).expect("changes").remove(0).bytes;
    let mut doc = automerge_doc(&bench, &doc_id);
    let mut tx = doc.transaction();
    let mut obj = tx
        .put_object(automerge::ROOT, "x", automerge::ObjType::Map)
        .expect("map");
    for _ in 0..180 {
        obj = tx.put_object(&obj, "x", automerge::ObjType::Map).expect("map");
    }
    tx.commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(quartier_core::document::ChangeNote::new(attacker.person, ["deep"]).encode()),
    );
    let deep = doc.get_last_local_change().expect("change").raw_bytes().to_vec();
    assert!(deep.len() < 1024, "{} bytes", deep.len());
    let outcomes = attacker
        .push(
            &url,
            vec![
                attacker.record(space, item.id.as_uuid(), DocKind::Item, first),
                attacker.record(space, item.id.as_uuid(), DocKind::Item, deep),
            ],
        )
        .await;
    assert_eq!(outcomes[0], AckOutcome::Stored);
    assert!(
        matches!(
            &outcomes[1],
            AckOutcome::Rejected {
                code: RejectCode::Malformed,
                message
            } if message.contains("nested")
        ),
        "{outcomes:?}"
    );
    // Still serving, and the member's sync is unaffected.
    owner.sync().await;
    assert!(
        stored_item(&owner.store, item.id).is_some(),
        "the member received the post"
    );
}

/// A pull reads one snapshot of the database through a reader connection; a push may commit
/// beside it and put the document's newer state into the shared cache. The pull must then send
/// the document as its snapshot holds it, not the cached newer state: that state would carry a
/// change the page's cursor does not cover (and, had the change narrowed the audience, content
/// the snapshot's permission check never saw). The change reaches the device with the next
/// page, and the pull does not put its older state into the cache.
#[test]
fn a_pull_sends_documents_as_its_snapshot_holds_them_not_as_cached_after_a_later_push() {
    let b = Bench::new();
    let (item, created) = b.post("Flohmarkt", "Samstag", vec![]);
    let first_edit = b.retitle(item, "Flohmarkt am Samstag");
    // Two changes: no creation form, so the item travels as a snapshot of its state.
    assert_eq!(
        b.push(item.as_uuid(), DocKind::Item, vec![created, first_edit]),
        vec![AckOutcome::Stored, AckOutcome::Stored]
    );

    // The pull's snapshot begins, then another request's push commits an edit of the item.
    let reader = b.db.read().expect("a reader");
    let snapshot = Snapshot::begin(&reader).expect("snapshot");
    let late_edit = b.retitle(item, "Flohmarkt fällt aus");
    let late_hash = automerge::Change::from_bytes(late_edit.clone())
        .expect("a change")
        .hash();
    assert_eq!(b.push_one(item.as_uuid(), late_edit.clone()), AckOutcome::Stored);
    let cached = b.docs.len();

    let pages = b.pull_space(&reader, None, None);
    drop(snapshot);
    drop(reader);
    let page = pages.into_iter().next().expect("a page");
    let sent = page
        .records
        .iter()
        .find_map(|r| match r {
            Record::Snapshot { doc, bytes, .. } if *doc == item.as_uuid() => Some(bytes.clone()),
            _ => None,
        })
        .expect("the item, as a snapshot");
    let sent = automerge::Automerge::load(&sent).expect("a document");
    assert!(
        sent.get_change_meta_by_hash(&late_hash).is_none(),
        "the page holds a change committed after its snapshot, which its cursor does not cover"
    );
    assert_eq!(sent.get_heads().len(), 1);
    assert_eq!(b.docs.len(), cached, "a reader put a document into the cache");

    // The next page, on a newer snapshot, delivers the late change.
    let pages = b.pull_space(&b.db.read().expect("a reader"), Some(page.next.clone()), None);
    let next = pages.into_iter().next().expect("a page");
    assert!(
        next.records
            .iter()
            .any(|r| matches!(r, Record::Change { bytes, .. } if *bytes == late_edit)),
        "the late change was never delivered: {:?}",
        next.records.len()
    );
    // And the cache still holds the newest state for the writer.
    b.assert_cache_matches_database(item.as_uuid(), "after pulls on snapshots");
}

/// A push is worked out and stored a window of changes at a time (the new documents of a
/// window worked out before the lock): the acknowledgements still answer every record at its
/// own index, in order, across windows, and a refusal in one window does not disturb the others.
#[test]
fn acknowledgements_keep_their_records_indices_across_windows() {
    let b = Bench::new();
    let mut records: Vec<Record> = (0..300)
        .map(|n| {
            let (item, bytes) = b.post(&format!("Angebot {n}"), "Mittwochs", vec![]);
            b.record(item.as_uuid(), DocKind::Item, bytes)
        })
        .collect();
    let forged = [5usize, 128, 255, 299];
    for &n in &forged {
        if let Record::Change { signature, .. } = &mut records[n] {
            signature[0] ^= 1;
        }
    }
    let report = sync::push(
        &b.db,
        &b.docs,
        b.person.as_uuid(),
        &records,
        &PushLimits::default(),
    )
    .expect("push");
    assert_eq!(report.acks.len(), records.len());
    for (n, ack) in report.acks.iter().enumerate() {
        assert_eq!(ack.index as usize, n, "acknowledgements out of order");
        if forged.contains(&n) {
            assert!(
                matches!(
                    &ack.outcome,
                    AckOutcome::Rejected {
                        code: RejectCode::BadSignature,
                        ..
                    }
                ),
                "record {n}: {:?}",
                ack.outcome
            );
        } else {
            assert_eq!(ack.outcome, AckOutcome::Stored, "record {n}");
        }
    }
    assert!(report.holds >= 3, "300 changes in one hold: {report:?}");
    // Recorded off the push path: none yet, every one once the prover has run.
    let none: i64 =
        b.db.lock()
            .query_row("SELECT count(*) FROM doc_creations", [], |r| r.get(0))
            .expect("creations");
    assert_eq!(none, 0, "proved at push time");
    sync::creations::prove_pending(&b.db, usize::MAX).expect("prove");
    let stored: i64 =
        b.db.lock()
            .query_row("SELECT count(*) FROM doc_creations", [], |r| r.get(0))
            .expect("creations");
    // The space's own document and every stored item have their creation form.
    assert_eq!(stored, 1 + 300 - forged.len() as i64);
}

/// Many pushes and pulls at once, as a busy server sees them: pushes take the gate, the writer
/// and a reader; pulls take readers and the cache. Nothing deadlocks (bounded time), every change
/// is stored once, and a new device's pull then holds every document.
#[test]
fn concurrent_pushes_and_pulls_finish_and_store_everything() {
    let b = Arc::new(Bench::new());
    let pushers = 12;
    let per_pusher = 40;
    let batches: Vec<Vec<Record>> = (0..pushers)
        .map(|p| {
            (0..per_pusher)
                .map(|n| {
                    let (item, bytes) = b.post(&format!("Treffen {p}/{n}"), "Donnerstag", vec![]);
                    b.record(item.as_uuid(), DocKind::Item, bytes)
                })
                .collect()
        })
        .collect();
    let (done, finished) = std::sync::mpsc::channel();
    let pushing = Arc::new(std::sync::atomic::AtomicUsize::new(pushers));
    for batch in batches {
        let (b, done, pushing) = (b.clone(), done.clone(), pushing.clone());
        std::thread::spawn(move || {
            let stored = sync::push(&b.db, &b.docs, b.person.as_uuid(), &batch, &PushLimits::default())
                .expect("push")
                .acks
                .iter()
                .filter(|a| a.outcome == AckOutcome::Stored)
                .count();
            pushing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            done.send(stored).expect("report");
        });
    }
    for _ in 0..6 {
        let (b, done, pushing) = (b.clone(), done.clone(), pushing.clone());
        std::thread::spawn(move || {
            while pushing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                let reader = b.db.read().expect("reader");
                sync::pull(
                    &reader,
                    &b.docs,
                    Uuid::new_v4(),
                    b.person.as_uuid(),
                    &[SpaceCursor {
                        space: b.space.as_uuid(),
                        after: None,
                        members_after: None,
                        signatures_after: None,
                    }],
                    64 * 1024,
                    sync::CreationForms {
                        accepted: true,
                        queue: None,
                        signatures: quartier_server::sync::SignatureForm::None,
                    },
                )
                .expect("pull");
            }
            done.send(0).expect("report");
        });
    }
    drop(done);
    let mut stored = 0;
    for _ in 0..pushers + 6 {
        stored += finished
            .recv_timeout(Duration::from_secs(120))
            .expect("pushes and pulls finish (a deadlock otherwise)");
    }
    assert_eq!(stored, pushers * per_pusher);
    // The space document and every item.
    assert_eq!(b.pull_all().len(), 1 + pushers * per_pusher);
}

/// A new document's creation form is proved off the push path (`sync::creations`): the push
/// only queues the document, the prover records the form of those still untouched since their
/// first change, and a failure while recording leaves every stored change as it was.
#[test]
fn creation_forms_are_recorded_off_the_push_path_for_untouched_documents_only() {
    let b = Bench::new();
    sync::creations::prove_pending(&b.db, usize::MAX).expect("prove the space's document");
    let forms = |doc: Uuid| b.count("SELECT count(*) FROM doc_creations WHERE doc_id = ?1", doc);
    let (kept, first_of_kept) = b.post("Tafel", "Dienstags", vec![]);
    let (edited, first_of_edited) = b.post("Café", "Freitags", vec![]);
    assert_eq!(b.push_one(kept.as_uuid(), first_of_kept), AckOutcome::Stored);
    assert_eq!(b.push_one(edited.as_uuid(), first_of_edited), AckOutcome::Stored);
    assert_eq!(
        (forms(kept.as_uuid()), forms(edited.as_uuid())),
        (0, 0),
        "not proved by the push"
    );
    assert_eq!(b.db.pending_creations().len(), 2);
    let edit = b.retitle(edited, "Café am Markt");
    assert_eq!(b.push_one(edited.as_uuid(), edit), AckOutcome::Stored);
    assert_eq!(b.db.pending_creations().len(), 2, "an edit queues nothing");

    assert_eq!(
        sync::creations::prove_pending(&b.db, usize::MAX).expect("prove"),
        1
    );
    assert_eq!((forms(kept.as_uuid()), forms(edited.as_uuid())), (1, 0));
    assert!(b.db.pending_creations().is_empty());

    // The next edit of a proved document drops its form, in the push's own transaction.
    let edit = b.retitle(kept, "Tafel Nord");
    assert_eq!(b.push_one(kept.as_uuid(), edit), AckOutcome::Stored);
    assert_eq!(forms(kept.as_uuid()), 0);

    // Recording fails: the error is reported, nothing is half-written, the log is intact.
    let (late, first_of_late) = b.post("Flohmarkt", "Samstag", vec![]);
    assert_eq!(b.push_one(late.as_uuid(), first_of_late), AckOutcome::Stored);
    let rows = b.log_rows(late.as_uuid());
    b.fail("BEFORE INSERT ON doc_creations");
    assert!(sync::creations::prove_pending(&b.db, usize::MAX).is_err());
    b.heal();
    assert_eq!(forms(late.as_uuid()), 0);
    assert_eq!(b.log_rows(late.as_uuid()), rows);
    b.assert_cache_matches_database(late.as_uuid(), "after a failed proof");
}

/// A form the prover never recorded (the queue lost in a restart, or full) is worked out by the
/// pull that needs it, and queued again: the next new member reads it instead of rebuilding it.
#[test]
fn a_form_worked_out_on_pull_is_queued_for_the_prover() {
    let b = Bench::new();
    let (item, first) = b.post("Tauschregal", "Im Hof", vec![]);
    assert_eq!(b.push_one(item.as_uuid(), first), AckOutcome::Stored);
    // Lost: as after a restart.
    let lost = b.db.pending_creations().take(usize::MAX, Duration::ZERO);
    assert_eq!(lost.len(), 2, "the space's document and the item");
    let pages = b.pull_space(
        &b.db.read().expect("reader"),
        None,
        Some(b.db.pending_creations()),
    );
    let created = pages
        .iter()
        .flat_map(|p| &p.records)
        .filter(|r| matches!(r, Record::Created { .. }))
        .count();
    assert_eq!(created, 2, "both sent in their creation form");
    assert_eq!(b.db.pending_creations().len(), 2, "and queued again");
    assert_eq!(
        sync::creations::prove_pending(&b.db, usize::MAX).expect("prove"),
        2
    );
    assert_eq!(
        b.count(
            "SELECT count(*) FROM doc_creations WHERE doc_id = ?1",
            item.as_uuid()
        ),
        1
    );
}
