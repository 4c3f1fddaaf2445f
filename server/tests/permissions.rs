//! The permission table of `quartier_core::model::permits`, enforced by a real `quartier-server`
//! process: every role × audience × kind × action, driven through real device stores, must be
//! accepted exactly when the table says so, and a refused change must change nothing on the
//! server. Then hand-forged changes (bad signatures, tampered bytes, someone else's name,
//! non-members, replays, changed authors and kinds, author-only items) must all be refused.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ReadDoc, ROOT};
use common::*;
use quartier_core::document::ChangeNote;
use quartier_core::model::*;
use quartier_core::sync::SyncReport;
use quartier_core::Store;
use quartier_protocol::{AckOutcome, DocKind, Record, RejectCode};
use uuid::Uuid;

const KINDS: [ItemKind; 7] = [
    ItemKind::Post,
    ItemKind::Offer,
    ItemKind::Place,
    ItemKind::Event,
    ItemKind::Observation,
    ItemKind::Request,
    ItemKind::Comment,
];

/// Audiences a server may accept; `AuthorOnly` is checked separately (it must never be).
const AUDIENCES: [Audience; 3] = [Audience::Everyone, Audience::Volunteers, Audience::Caseworkers];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Create,
    EditOwn,
    EditOthers,
    DeleteOwn,
    DeleteOthers,
    Read,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::Create => "create",
            Act::EditOwn => "edit own",
            Act::EditOthers => "edit other's",
            Act::DeleteOwn => "delete own",
            Act::DeleteOthers => "delete other's",
            Act::Read => "read",
        }
    }

    /// What the core's permission table says.
    fn permitted(self, role: Role, kind: ItemKind, audience: Audience) -> bool {
        match self {
            Act::Create => permits(role, Action::Create, kind, audience, true),
            Act::EditOwn => permits(role, Action::EditOwn, kind, audience, true),
            Act::EditOthers => permits(role, Action::EditOthers, kind, audience, false),
            Act::DeleteOwn => permits(role, Action::Delete, kind, audience, true),
            Act::DeleteOthers => permits(role, Action::Delete, kind, audience, false),
            Act::Read => permits(role, Action::Read, kind, audience, false),
        }
    }
}

type Cell = (Role, ItemKind, Audience, Act);

fn cell_name((role, kind, audience, act): Cell) -> String {
    format!("{role} × {kind} × {audience} × {}", act.name())
}

fn title_of(cell: Cell) -> String {
    cell_name(cell)
}

fn edited(title: &str) -> String {
    format!("{title} (edited)")
}

/// Valid content of every kind (comments hang under `parent`).
fn content(kind: ItemKind, title: &str, audience: Audience, parent: ItemId) -> ItemContent {
    let details = match kind {
        ItemKind::Post => ItemDetails::Post(Post {
            post_type: PostType::Notice,
        }),
        ItemKind::Offer => ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Caritas Köln".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ItemKind::Place => ItemDetails::Place(Place::default()),
        ItemKind::Event => {
            let day = chrono::NaiveDate::from_ymd_opt(2031, 5, 17).expect("date");
            ItemDetails::Event(Event {
                timing: quartier_core::schedule::EventTiming {
                    start: day.and_hms_opt(15, 0, 0).expect("start"),
                    end: day.and_hms_opt(18, 0, 0).expect("end"),
                    time_zone: "Europe/Berlin".into(),
                    rrule: None,
                    exdates: vec![],
                },
                venue: Some("Hinterhof".into()),
            })
        }
        ItemKind::Observation => ItemDetails::Observation(Observation {
            preset: "bench".into(),
            category: None,
            fields: Default::default(),
        }),
        ItemKind::Request => ItemDetails::Request(Request {
            direction: RequestDirection::Need,
            category: "moving".into(),
            state: RequestState::Open,
        }),
        ItemKind::Comment => ItemDetails::Comment(Comment { parent }),
    };
    let needs_location = matches!(kind, ItemKind::Place | ItemKind::Observation);
    ItemContent {
        audience,
        location: needs_location.then(|| Location::new(50.96, 6.95)),
        ..ItemContent::new(LocalizedText::single("de", title), details)
    }
}

fn create(
    device: &Device,
    space: SpaceId,
    kind: ItemKind,
    audience: Audience,
    title: &str,
    parent: ItemId,
) -> ItemId {
    device
        .store
        .create_item(NewItem::new(
            space,
            device.person,
            content(kind, title, audience, parent),
        ))
        .unwrap_or_else(|e| panic!("create {title}: {e}"))
        .id
}

fn retitle(title: &str) -> ItemPatch {
    ItemPatch {
        title: Some(LocalizedText::single("de", edited(title))),
        ..Default::default()
    }
}

fn has_doc(device: &Device, id: ItemId) -> bool {
    let id = id.to_string();
    device
        .store
        .document_ids()
        .expect("document ids")
        .iter()
        .any(|(d, _)| *d == id)
}

/// Syncs and requires that nothing was refused and nothing is left in the outbox.
async fn sync_clean(device: &Device, what: &str) -> SyncReport {
    let report = device.sync().await;
    assert!(
        report.rejected.is_empty(),
        "{what}: refused {:?}",
        report.rejected
    );
    assert_eq!(
        device.store.outbox_len().expect("outbox"),
        0,
        "{what}: outbox not empty"
    );
    report
}

/// Every item the witness holds (it reads every audience a server accepts) must have reached
/// exactly the readers whose role may read it: one failure line per disagreeing cell.
async fn check_reads(failures: &mut Vec<String>, readers: &[(Role, Device)], witness: &Device) {
    witness.sync().await;
    let items: Vec<Item> = witness
        .store
        .document_ids()
        .expect("ids")
        .into_iter()
        .filter(|(_, kind)| *kind == DocKind::Item)
        .filter_map(|(id, _)| stored_item(&witness.store, id.parse().expect("item id")))
        .collect();
    assert!(!items.is_empty(), "the witness holds items");
    let mut judged = BTreeSet::new();
    for (role, reader) in readers {
        reader.sync().await;
        for item in &items {
            let cell = (*role, item.kind(), item.content.audience, Act::Read);
            let expected = Act::Read.permitted(*role, item.kind(), item.content.audience);
            let got = has_doc(reader, item.id);
            if expected != got && judged.insert(cell) {
                failures.push(format!(
                    "{}: permits() says {expected}, the reader {} \"{}\"",
                    cell_name(cell),
                    if got { "received" } else { "did not receive" },
                    item.content.title.get("de").unwrap_or("")
                ));
            }
        }
    }
}

/// What the server said about one pushed change, per the pusher's sync report.
fn refusal_code(report: &SyncReport, id: ItemId) -> Option<String> {
    let id = id.to_string();
    report
        .rejected
        .iter()
        .find(|r| r.doc_id == id)
        .map(|r| format!("{} ({})", r.code, r.message))
}

/// Compares the server's answer to the table for every cell of one push.
fn judge_push(failures: &mut Vec<String>, report: &SyncReport, outbox_left: usize, cells: &[(Cell, ItemId)]) {
    if outbox_left != 0 {
        failures.push(format!(
            "{outbox_left} changes left in the outbox after a sync (refused changes must be dropped)"
        ));
    }
    for &(cell, id) in cells {
        let (role, kind, audience, act) = cell;
        let expected = act.permitted(role, kind, audience);
        match (expected, refusal_code(report, id)) {
            (true, Some(code)) => failures.push(format!(
                "{}: permits() allows it, the server refused it: {code}",
                cell_name(cell)
            )),
            (false, None) => failures.push(format!(
                "{}: permits() forbids it, the server accepted it",
                cell_name(cell)
            )),
            (false, Some(code)) if !code.starts_with("forbidden") => failures.push(format!(
                "{}: refused with {code}, expected forbidden",
                cell_name(cell)
            )),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_enforces_the_permission_table() {
    let started = std::time::Instant::now();
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    // The witness is a caseworker: it may read every audience a server accepts.
    let witness = join(&url, &owner, space, Role::Caseworker, "Zeugin").await;
    // Readers: one device per role that only reads (its role never changes).
    let mut readers = Vec::new();
    for &role in Role::ALL {
        readers.push((
            role,
            join(&url, &owner, space, role, &format!("reader {role}")).await,
        ));
    }
    let mut actors = Vec::new();
    for &role in Role::ALL {
        actors.push((
            role,
            join(&url, &owner, space, role, &format!("actor {role}")).await,
        ));
    }
    // The actors' own stores would refuse most of these changes before writing them (the local
    // check, `server/tests/local_permissions.rs`); switched off, the server's check is tested.
    for (_, actor) in &actors {
        actor.store.set_local_permission_check(false);
    }
    owner.post(space, "Aushang", Audience::Everyone);
    let parent: ItemId = owner
        .store
        .create_item(NewItem::new(
            space,
            owner.person,
            content(
                ItemKind::Post,
                "Eltern-Beitrag",
                Audience::Everyone,
                ItemId::new(),
            ),
        ))
        .expect("parent")
        .id;
    sync_clean(&owner, "owner").await;
    sync_clean(&witness, "witness").await;
    for (_, actor) in &actors {
        sync_clean(actor, "actor").await;
    }
    // Someone else's items, one per (role, kind, audience, action): by the coordinator for
    // everyone and volunteers, by the witness for caseworkers (coordinators may not write those).
    let mut others: BTreeMap<Cell, (ItemId, String)> = BTreeMap::new();
    for &role in Role::ALL {
        for kind in KINDS {
            for audience in AUDIENCES {
                for act in [Act::EditOthers, Act::DeleteOthers] {
                    let cell = (role, kind, audience, act);
                    let author = if audience == Audience::Caseworkers {
                        &witness
                    } else {
                        &owner
                    };
                    let title = title_of(cell);
                    others.insert(
                        cell,
                        (create(author, space, kind, audience, &title, parent), title),
                    );
                }
            }
        }
    }
    sync_clean(&owner, "owner's items").await;
    sync_clean(&witness, "witness's items").await;
    // Each actor's own items, created while the coordinator lends them a role that may create
    // them (coordinator, or caseworker for caseworker-only items), then back to their role.
    let mut owns: BTreeMap<Cell, (ItemId, String)> = BTreeMap::new();
    for (role, actor) in &actors {
        for (lent, audiences) in [
            (Role::Coordinator, &[Audience::Everyone, Audience::Volunteers][..]),
            (Role::Caseworker, &[Audience::Caseworkers][..]),
        ] {
            owner
                .client
                .set_role(&owner.store, space, actor.person, lent)
                .await
                .expect("lend a role");
            for kind in KINDS {
                for &audience in audiences {
                    for act in [Act::EditOwn, Act::DeleteOwn] {
                        let cell = (*role, kind, audience, act);
                        let title = title_of(cell);
                        owns.insert(
                            cell,
                            (create(actor, space, kind, audience, &title, parent), title),
                        );
                    }
                }
            }
            sync_clean(actor, &format!("{role}'s own items as {lent}")).await;
        }
        owner
            .client
            .set_role(&owner.store, space, actor.person, *role)
            .await
            .expect("back to the role");
        actor.sync().await;
    }
    let mut failures = Vec::new();

    // Read: what reaches each role's device.
    check_reads(&mut failures, &readers, &witness).await;

    // Create.
    let mut created: Vec<(Cell, ItemId)> = Vec::new();
    for (role, actor) in &actors {
        let mut cells = Vec::new();
        for kind in KINDS {
            for audience in AUDIENCES {
                let cell = (*role, kind, audience, Act::Create);
                cells.push((
                    cell,
                    create(actor, space, kind, audience, &title_of(cell), parent),
                ));
            }
        }
        let report = actor.sync().await;
        judge_push(
            &mut failures,
            &report,
            actor.store.outbox_len().expect("outbox"),
            &cells,
        );
        created.extend(cells);
    }

    // Edit own, delete own, edit other's, delete other's: one push per role and action.
    let mut changed: Vec<(Cell, ItemId, String)> = Vec::new();
    for act in [Act::EditOwn, Act::DeleteOwn, Act::EditOthers, Act::DeleteOthers] {
        for (role, actor) in &actors {
            let mut cells = Vec::new();
            for kind in KINDS {
                for audience in AUDIENCES {
                    let cell = (*role, kind, audience, act);
                    let (id, title) = match act {
                        Act::EditOwn | Act::DeleteOwn => owns[&cell].clone(),
                        _ => others[&cell].clone(),
                    };
                    if !has_doc(actor, id) {
                        // An item the device may not read: it got it out of band (another
                        // device, a backup), which must not let it write either.
                        let author = if audience == Audience::Caseworkers {
                            &witness
                        } else {
                            &owner
                        };
                        copy_doc(&author.store, &actor.store, &id.to_string());
                    }
                    match act {
                        Act::EditOwn | Act::EditOthers => {
                            actor
                                .store
                                .update_item(id, &retitle(&title), actor.person)
                                .unwrap_or_else(|e| panic!("{}: local edit: {e}", cell_name(cell)));
                        }
                        _ => actor
                            .store
                            .delete_item(id, actor.person)
                            .unwrap_or_else(|e| panic!("{}: local delete: {e}", cell_name(cell))),
                    }
                    cells.push((cell, id));
                    changed.push((cell, id, title));
                }
            }
            let report = actor.sync().await;
            judge_push(
                &mut failures,
                &report,
                actor.store.outbox_len().expect("outbox"),
                &cells,
            );
        }
    }

    // A refused change changed nothing: another device (the witness reads every audience)
    // syncing afterwards has exactly the accepted ones.
    witness.sync().await;
    for &(cell, id) in &created {
        let (role, kind, audience, act) = cell;
        if act.permitted(role, kind, audience) != has_doc(&witness, id) {
            failures.push(format!(
                "{}: after the push the witness {} the item",
                cell_name(cell),
                if has_doc(&witness, id) {
                    "received"
                } else {
                    "did not receive"
                }
            ));
        }
    }
    for (cell, id, title) in &changed {
        let (role, kind, audience, act) = *cell;
        let expected = act.permitted(role, kind, audience);
        let Some(item) = stored_item(&witness.store, *id) else {
            failures.push(format!("{}: the witness lost the item", cell_name(*cell)));
            continue;
        };
        let applied = match act {
            Act::EditOwn | Act::EditOthers => item.content.title.get("de") == Some(edited(title).as_str()),
            _ => item.content.status == Status::Deleted,
        };
        if applied != expected {
            failures.push(format!(
                "{}: permits() says {expected}, the witness {} the change",
                cell_name(*cell),
                if applied { "received" } else { "did not receive" }
            ));
        }
    }
    // Every item on the server now (the witness's copy) reached exactly the roles permits()
    // lets read it.
    check_reads(&mut failures, &readers, &witness).await;
    // And a device new to the space (snapshots, not the change log) sees the same: every
    // accepted creation, no refused one.
    let fresh = RawDevice::register(&url, "Neue Fallberatung").await;
    let code = owner.invite(space, Role::Caseworker).await;
    fresh.redeem(&url, &code).await;
    let visible = fresh.visible_docs(&url, space).await;
    for &(cell, id) in &created {
        let (role, kind, audience, act) = cell;
        if act.permitted(role, kind, audience) != visible.contains_key(&id.as_uuid()) {
            failures.push(format!(
                "{}: a new caseworker device {} the item in its snapshots",
                cell_name(cell),
                if visible.contains_key(&id.as_uuid()) {
                    "received"
                } else {
                    "did not receive"
                }
            ));
        }
    }
    let cells = Role::ALL.len() * KINDS.len() * AUDIENCES.len() * 6;
    eprintln!(
        "permission matrix: {cells} cells ({} roles × {} kinds × {} audiences × 6 actions) in {:?}",
        Role::ALL.len(),
        KINDS.len(),
        AUDIENCES.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} cells disagree with permits():\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- Forged changes: crafted by hand and POSTed with reqwest. ----

async fn member(url: &str, owner: &Device, space: SpaceId, role: Role, name: &str) -> RawDevice {
    let device = RawDevice::register(url, name).await;
    device.redeem(url, &owner.invite(space, role).await).await;
    device
}

/// For a caseworker, `owner` is first made an organisation admin (only those appoint them).
async fn set_role(owner: &Device, space: SpaceId, person: PersonId, role: Role) {
    if role == Role::Caseworker {
        grant_org_admin(owner.client.base_url(), owner.person);
    }
    owner
        .client
        .set_role(&owner.store, space, person, role)
        .await
        .expect("set role");
}

/// A workbench store holding `space` (copied from a member's store).
fn bench_with(from: &Store, space: SpaceId) -> (tempfile::TempDir, Store) {
    let (dir, bench) = workbench();
    copy_doc(from, &bench, &space.to_string());
    (dir, bench)
}

/// Creates an item on the workbench in the name of `author`; returns it and its one change.
fn bench_item(
    bench: &Store,
    space: SpaceId,
    author: PersonId,
    kind: ItemKind,
    audience: Audience,
    title: &str,
) -> (ItemId, Vec<u8>) {
    let item = bench
        .create_item(NewItem::new(
            space,
            author,
            content(kind, title, audience, ItemId::new()),
        ))
        .expect("bench item");
    let changes = bench.document_changes(&item.id.to_string()).expect("changes");
    assert_eq!(changes.len(), 1);
    (item.id, changes.into_iter().next().expect("one").bytes)
}

/// One change to an item made directly in Automerge (what no store would write), in the name
/// of `by`, on top of the workbench's copy.
fn forge(
    bench: &Store,
    id: ItemId,
    by: PersonId,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut doc = automerge_doc(bench, &id.to_string());
    let mut tx = doc.transaction();
    edit(&mut tx);
    let (hash, _) = tx.commit_with(
        CommitOptions::default()
            .with_message(ChangeNote::new(by, ["forged"]).encode())
            .with_time(chrono::Utc::now().timestamp_millis()),
    );
    assert!(hash.is_some(), "the forged edit changed something");
    doc.get_last_local_change().expect("change").raw_bytes().to_vec()
}

fn is_rejected(outcome: &AckOutcome, allowed: &[RejectCode]) -> Result<(), String> {
    match outcome {
        AckOutcome::Rejected { code, message } if allowed.contains(code) => {
            if message.trim().is_empty() {
                Err(format!("rejected with {code:?} but no message"))
            } else {
                Ok(())
            }
        }
        other => Err(format!(
            "expected a rejection with one of {allowed:?}, got {other:?}"
        )),
    }
}

fn change_record(
    space: SpaceId,
    doc: Uuid,
    kind: DocKind,
    bytes: Vec<u8>,
    device: Uuid,
    signature: Vec<u8>,
) -> Record {
    Record::Change {
        space: space.as_uuid(),
        doc,
        kind,
        bytes,
        device,
        signature,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_changes_are_refused_and_change_nothing() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    sync_clean(&owner, "owner").await;
    let f = member(&url, &owner, space, Role::Volunteer, "Fälscher").await;
    let g = member(&url, &owner, space, Role::Volunteer, "Gabi").await;
    let lost = member(&url, &owner, space, Role::Volunteer, "Verlorenes Handy").await;
    let n = RawDevice::register(&url, "Nicht-Mitglied").await;
    // A second space F is not in.
    let other_space = owner
        .store
        .create_space(space_meta("Ehrenfeld"), owner.person)
        .expect("space")
        .id;
    owner
        .client
        .create_space(&owner.store, other_space)
        .await
        .expect("register space");
    sync_clean(&owner, "owner").await;
    let (_bench_dir, bench) = bench_with(&owner.store, space);
    copy_doc(&owner.store, &bench, &other_space.to_string());

    // Baseline: a valid change is stored, and the owner receives it.
    let (p0, p0_bytes) = bench_item(
        &bench,
        space,
        f.person,
        ItemKind::Post,
        Audience::Everyone,
        "Echt",
    );
    let valid = f.record(space, p0.as_uuid(), DocKind::Item, p0_bytes.clone());
    assert_eq!(f.push(&url, vec![valid.clone()]).await, vec![AckOutcome::Stored]);
    owner.sync().await;
    assert!(has_doc(&owner, p0), "the valid change reached the owner");
    let heads_before = owner.store.document_heads(&p0.to_string()).expect("heads");
    // A change of a device that is revoked before it is relayed.
    let (lost_item, lost_bytes) = bench_item(
        &bench,
        space,
        lost.person,
        ItemKind::Post,
        Audience::Everyone,
        "Vom verlorenen Handy",
    );
    let lost_record = lost.record(space, lost_item.as_uuid(), DocKind::Item, lost_bytes);
    let revoked = send_raw(
        &http(),
        reqwest::Method::DELETE,
        &format!("{url}/v1/devices/{}", lost.device),
        Some(&format!("Bearer {}", lost.token)),
        vec![],
    )
    .await;
    assert_eq!(revoked.status, 204, "revoke: {:?}", revoked.error_body());
    let stats_before = admin_stats(server.data.path());

    // P1: a fresh, valid change of F that no forged variant may get stored.
    let (p1, p1_bytes) = bench_item(
        &bench,
        space,
        f.person,
        ItemKind::Post,
        Audience::Everyone,
        "Gefälscht",
    );
    let p1_doc = p1.as_uuid();
    let item = |bytes: Vec<u8>, device: Uuid, signature: Vec<u8>| {
        change_record(space, p1_doc, DocKind::Item, bytes, device, signature)
    };
    let signed_by_f = f.sign(p1_doc, &p1_bytes);
    let mut cases: Vec<(String, &RawDevice, Record, Vec<RejectCode>)> = vec![
        (
            "unsigned (empty signature)".into(),
            &f,
            item(p1_bytes.clone(), f.device, vec![]),
            vec![RejectCode::BadSignature],
        ),
        (
            "a signature of 64 zero bytes".into(),
            &f,
            item(p1_bytes.clone(), f.device, vec![0; 64]),
            vec![RejectCode::BadSignature],
        ),
        (
            "signed by another device's key".into(),
            &f,
            item(
                p1_bytes.clone(),
                f.device,
                sign_with(&g.key, &p1_doc.to_string(), &p1_bytes),
            ),
            vec![RejectCode::BadSignature],
        ),
        (
            "claims to be signed by another device".into(),
            &f,
            item(p1_bytes.clone(), g.device, signed_by_f.clone()),
            vec![RejectCode::BadSignature],
        ),
        (
            "signed by a device the server does not know".into(),
            &f,
            item(p1_bytes.clone(), Uuid::now_v7(), signed_by_f.clone()),
            vec![RejectCode::BadSignature],
        ),
        (
            "a signature over another document id".into(),
            &f,
            item(
                p1_bytes.clone(),
                f.device,
                sign_with(&f.key, &p0.to_string(), &p1_bytes),
            ),
            vec![RejectCode::BadSignature],
        ),
        (
            "a member's valid change pushed by a non-member".into(),
            &n,
            item(p1_bytes.clone(), f.device, signed_by_f.clone()),
            vec![RejectCode::NotAMember],
        ),
    ];
    // Bytes 0..4 are the magic number, 4..8 the checksum (covered by neither hash nor signature).
    for position in [0, 4, 5, 6, 7, 9, p1_bytes.len() / 2, p1_bytes.len() - 1] {
        let mut tampered = p1_bytes.clone();
        tampered[position] ^= 0x5a;
        cases.push((
            format!("a validly signed change with byte {position} flipped"),
            &f,
            item(tampered, f.device, signed_by_f.clone()),
            vec![RejectCode::Malformed, RejectCode::BadSignature],
        ));
    }
    // The same change re-addressed to another document, with a valid signature for that id.
    let elsewhere = Uuid::now_v7();
    cases.push((
        "a change sent as another document".into(),
        &f,
        change_record(
            space,
            elsewhere,
            DocKind::Item,
            p1_bytes.clone(),
            f.device,
            sign_with(&f.key, &elsewhere.to_string(), &p1_bytes),
        ),
        vec![RejectCode::Forbidden, RejectCode::Malformed],
    ));
    // A change whose note names another person than its signing device's.
    let (impersonated, impersonated_bytes) = bench_item(
        &bench,
        space,
        g.person,
        ItemKind::Post,
        Audience::Everyone,
        "Im Namen von Gabi",
    );
    cases.push((
        "a change whose note names another person".into(),
        &f,
        f.record(space, impersonated.as_uuid(), DocKind::Item, impersonated_bytes),
        vec![RejectCode::NotYourChange],
    ));
    // Non-members.
    let (outsider, outsider_bytes) = bench_item(
        &bench,
        space,
        n.person,
        ItemKind::Post,
        Audience::Everyone,
        "Von außen",
    );
    let outsider_record = n.record(space, outsider.as_uuid(), DocKind::Item, outsider_bytes);
    cases.push((
        "a non-member's own change".into(),
        &n,
        outsider_record.clone(),
        vec![RejectCode::NotAMember],
    ));
    cases.push((
        "a non-member's change relayed by a member".into(),
        &f,
        outsider_record,
        vec![RejectCode::NotAMember],
    ));
    let (foreign, foreign_bytes) = bench_item(
        &bench,
        other_space,
        f.person,
        ItemKind::Post,
        Audience::Everyone,
        "Anderer Raum",
    );
    cases.push((
        "a change for a space the device is not in".into(),
        &f,
        f.record(
            other_space,
            foreign.as_uuid(),
            DocKind::Item,
            foreign_bytes.clone(),
        ),
        vec![RejectCode::NotAMember],
    ));
    cases.push((
        "an item of another space pushed as this space's".into(),
        &f,
        f.record(space, foreign.as_uuid(), DocKind::Item, foreign_bytes),
        vec![RejectCode::Forbidden],
    ));
    cases.push((
        "a change signed by a revoked device".into(),
        &f,
        lost_record,
        vec![RejectCode::BadSignature],
    ));
    // Changes to F's own stored item that rewrite what may never change.
    let p0_doc = p0.as_uuid();
    let forged_edits: Vec<(&str, Vec<u8>)> = vec![
        (
            "changes the item's author",
            forge(&bench, p0, f.person, |tx| {
                tx.put(ROOT, "author", g.person.to_string()).expect("put");
            }),
        ),
        (
            "changes the item's kind",
            forge(&bench, p0, f.person, |tx| {
                let (_, details) = tx.get(ROOT, "details").expect("get").expect("details");
                tx.put(&details, "kind", "place").expect("put");
                tx.delete(&details, "post_type").expect("delete");
            }),
        ),
        (
            "changes the item's creation time",
            forge(&bench, p0, f.person, |tx| {
                tx.put(ROOT, "created_at", 1_000_i64).expect("put");
            }),
        ),
        (
            "changes the item's id",
            forge(&bench, p0, f.person, |tx| {
                tx.put(ROOT, "id", ItemId::new().to_string()).expect("put");
            }),
        ),
        (
            "moves the item to another space",
            forge(&bench, p0, f.person, |tx| {
                tx.put(ROOT, "space", other_space.to_string()).expect("put");
            }),
        ),
        (
            "makes the item author-only",
            forge(&bench, p0, f.person, |tx| {
                tx.put(ROOT, "audience", "author_only").expect("put");
            }),
        ),
    ];
    for (name, bytes) in forged_edits {
        cases.push((
            format!("a change that {name}"),
            &f,
            f.record(space, p0_doc, DocKind::Item, bytes),
            vec![RejectCode::Forbidden],
        ));
    }
    // The space document: only coordinators edit it, and it is no item.
    let (_, space_edit) = new_change(&bench, &space.to_string(), |b| {
        b.update_space(space, space_meta("Übernommen"), f.person)
            .expect("local space edit")
    });
    cases.push((
        "a volunteer's edit of the space document".into(),
        &f,
        f.record(space, space.as_uuid(), DocKind::Space, space_edit.clone()),
        vec![RejectCode::Forbidden],
    ));
    cases.push((
        "the space document sent as an item".into(),
        &f,
        f.record(space, space.as_uuid(), DocKind::Item, space_edit),
        vec![RejectCode::Forbidden],
    ));
    // Not changes at all.
    let garbage = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3];
    cases.push((
        "bytes that are no Automerge change".into(),
        &f,
        item(garbage.clone(), f.device, vec![0; 64]),
        vec![RejectCode::Malformed],
    ));
    cases.push((
        "a change larger than the server takes".into(),
        &f,
        item(vec![7; 600 * 1024], f.device, vec![0; 64]),
        vec![RejectCode::TooLarge],
    ));
    cases.push((
        "a snapshot pushed by a device".into(),
        &f,
        Record::Snapshot {
            space: space.as_uuid(),
            doc: p1_doc,
            kind: DocKind::Item,
            bytes: automerge_doc(&bench, &p1.to_string()).save(),
        },
        vec![RejectCode::Malformed],
    ));
    let creation = quartier_core::document::creation_of(
        &automerge_doc(&bench, &p1.to_string()),
        &p1.to_string(),
        DocKind::Item,
    )
    .expect("readable")
    .expect("an unedited item has a creation form");
    cases.push((
        "a creation pushed by a device".into(),
        &f,
        creation.into_record(space.as_uuid(), p1_doc, DocKind::Item),
        vec![RejectCode::Malformed],
    ));
    cases.push((
        "a record type the server does not know".into(),
        &f,
        Record::Unknown,
        vec![RejectCode::Malformed, RejectCode::Other],
    ));

    let mut failures = Vec::new();
    for (name, pusher, record, allowed) in &cases {
        let outcomes = pusher.push(&url, vec![record.clone()]).await;
        match outcomes.as_slice() {
            [outcome] => {
                if let Err(e) = is_rejected(outcome, allowed) {
                    failures.push(format!("{name}: {e}"));
                }
            }
            other => failures.push(format!("{name}: expected one ack, got {other:?}")),
        }
    }

    // Replays: the server keeps one copy and says so.
    let replay = f.push(&url, vec![valid.clone()]).await;
    if replay != vec![AckOutcome::Duplicate] {
        failures.push(format!("a replayed change: expected duplicate, got {replay:?}"));
    }
    // A stranger replaying a stored change learns nothing of it: not a member, not "duplicate".
    let probe = n.push(&url, vec![valid.clone()]).await;
    if !matches!(
        probe.as_slice(),
        [AckOutcome::Rejected {
            code: RejectCode::NotAMember,
            ..
        }]
    ) {
        failures.push(format!(
            "a stored change replayed by a non-member: expected not a member, got {probe:?}"
        ));
    }
    // Nor does one who replays it into a space of his own, under its document id or another
    // one: each probe gets the answer a change the server never saw gets, never `duplicate`.
    let m = member(&url, &owner, other_space, Role::Coordinator, "Eigener Raum").await;
    let (unseen, unseen_bytes) = bench_item(
        &bench,
        space,
        f.person,
        ItemKind::Post,
        Audience::Everyone,
        "Nie gesendet",
    );
    let fresh_doc = Uuid::now_v7();
    let probes = [
        (
            "under its own document id, with its author's signature",
            change_record(
                other_space,
                p0.as_uuid(),
                DocKind::Item,
                p0_bytes.clone(),
                f.device,
                f.sign(p0.as_uuid(), &p0_bytes),
            ),
            change_record(
                other_space,
                unseen.as_uuid(),
                DocKind::Item,
                unseen_bytes.clone(),
                f.device,
                f.sign(unseen.as_uuid(), &unseen_bytes),
            ),
        ),
        (
            "under a new document id, signed by the prober",
            change_record(
                other_space,
                fresh_doc,
                DocKind::Item,
                p0_bytes.clone(),
                m.device,
                m.sign(fresh_doc, &p0_bytes),
            ),
            change_record(
                other_space,
                fresh_doc,
                DocKind::Item,
                unseen_bytes.clone(),
                m.device,
                m.sign(fresh_doc, &unseen_bytes),
            ),
        ),
    ];
    for (how, stored, never_seen) in probes {
        let probe = m.push(&url, vec![stored]).await;
        let control = m.push(&url, vec![never_seen]).await;
        let code = |acks: &[AckOutcome]| match acks {
            [AckOutcome::Rejected { code, .. }] => Some(*code),
            _ => None,
        };
        if code(&probe).is_none() || code(&probe) != code(&control) {
            failures.push(format!(
                "a stored change replayed into the prober's own space {how}: got {probe:?}, \
                 a change never stored gets {control:?}"
            ));
        }
    }
    let (p2, p2_bytes) = bench_item(
        &bench,
        space,
        f.person,
        ItemKind::Post,
        Audience::Everyone,
        "Doppelt",
    );
    let p2_record = f.record(space, p2.as_uuid(), DocKind::Item, p2_bytes);
    let twice = f.push(&url, vec![p2_record.clone(), p2_record.clone()]).await;
    if twice != vec![AckOutcome::Stored, AckOutcome::Duplicate] {
        failures.push(format!(
            "a change pushed twice in one request: expected stored then duplicate, got {twice:?}"
        ));
    }
    let again = g.push(&url, vec![p2_record]).await;
    if again != vec![AckOutcome::Duplicate] {
        failures.push(format!(
            "a change replayed by another member: expected duplicate, got {again:?}"
        ));
    }
    // A member relaying another member's valid change is fine (devices relay for each other).
    let (relayed, relayed_bytes) = bench_item(
        &bench,
        space,
        g.person,
        ItemKind::Post,
        Audience::Everyone,
        "Weitergereicht",
    );
    let relay = f
        .push(
            &url,
            vec![g.record(space, relayed.as_uuid(), DocKind::Item, relayed_bytes)],
        )
        .await;
    if relay != vec![AckOutcome::Stored] {
        failures.push(format!(
            "a member's valid change relayed by another member: got {relay:?}"
        ));
    }

    // Nothing forged was stored: exactly two new log rows and documents (P2 and the relayed one).
    let stats_after = admin_stats(server.data.path());
    for table in ["log", "docs"] {
        if stats_after[table] != stats_before[table] + 2 {
            failures.push(format!(
                "admin stats {table}: {} before, {} after, expected +2 (the forged pushes stored something, or a replay was stored twice)",
                stats_before[table], stats_after[table]
            ));
        }
    }
    // And other devices receive none of it.
    owner.sync().await;
    for (name, doc) in [
        ("P1", p1),
        ("the impersonating item", impersonated),
        ("the non-member's item", outsider),
        ("the item of the other space", foreign),
        ("the revoked device's item", lost_item),
    ] {
        if has_doc(&owner, doc) {
            failures.push(format!("{name} reached another device"));
        }
    }
    if owner
        .store
        .document_ids()
        .expect("ids")
        .iter()
        .any(|(d, _)| *d == elsewhere.to_string())
    {
        failures.push("the re-addressed change reached another device".into());
    }
    if owner.store.document_heads(&p0.to_string()).expect("heads") != heads_before {
        failures.push("a forged edit of P0 reached another device".into());
    }
    let p0_now = stored_item(&owner.store, p0).expect("P0");
    assert_eq!(p0_now.author, f.person);
    assert_eq!(p0_now.kind(), ItemKind::Post);
    assert_eq!(p0_now.content.audience, Audience::Everyone);
    assert_eq!(
        owner.store.space(space).expect("space").meta.name.get("de"),
        Some("Nippes")
    );
    for doc in [p2, relayed] {
        if !has_doc(&owner, doc) {
            failures.push(format!("the valid change of {doc} did not reach another device"));
        }
    }
    // A pull from scratch (snapshots) holds each document once.
    let seen = g.visible_docs(&url, space).await;
    if !seen.contains_key(&p0_doc) || seen.contains_key(&p1_doc) {
        failures.push(format!(
            "a pull from scratch: {seen:?}, expected P0 {p0_doc} and not P1 {p1_doc}"
        ));
    }

    eprintln!("{} forged pushes checked", cases.len() + 4);
    assert!(
        failures.is_empty(),
        "{} forged pushes were not handled as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn author_only_is_never_accepted_and_authors_keep_reading_their_own() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    sync_clean(&owner, "owner").await;
    let me = member(&url, &owner, space, Role::Resident, "Ich").await;
    let neighbour = member(&url, &owner, space, Role::Resident, "Nachbar").await;
    let (_bench_dir, bench) = bench_with(&owner.store, space);
    let stats_before = admin_stats(server.data.path());
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    let mut published = Vec::new();
    for &role in Role::ALL {
        set_role(&owner, space, me.person, role).await;
        for kind in [ItemKind::Post, ItemKind::Offer, ItemKind::Request] {
            let (id, bytes) = bench_item(
                &bench,
                space,
                me.person,
                kind,
                Audience::AuthorOnly,
                &format!("Notiz {role} {kind}"),
            );
            let outcome = me
                .push(&url, vec![me.record(space, id.as_uuid(), DocKind::Item, bytes)])
                .await;
            if let Err(e) = is_rejected(&outcome[0], &[RejectCode::Forbidden]) {
                failures.push(format!("{role} × {kind} × author_only × create: {e}"));
            }
            refused.push(id);
        }
        // An item for everyone, then made author-only by its author.
        let (id, bytes) = bench_item(
            &bench,
            space,
            me.person,
            ItemKind::Post,
            Audience::Everyone,
            &format!("Öffentlich {role}"),
        );
        let outcome = me
            .push(&url, vec![me.record(space, id.as_uuid(), DocKind::Item, bytes)])
            .await;
        assert_eq!(outcome, vec![AckOutcome::Stored], "{role} publishes for everyone");
        published.push(id);
        let (_, hide) = new_change(&bench, &id.to_string(), |b| {
            b.update_item(
                id,
                &ItemPatch {
                    audience: Some(Audience::AuthorOnly),
                    ..Default::default()
                },
                me.person,
            )
            .expect("local edit")
        });
        let outcome = me
            .push(&url, vec![me.record(space, id.as_uuid(), DocKind::Item, hide)])
            .await;
        if let Err(e) = is_rejected(&outcome[0], &[RejectCode::Forbidden]) {
            failures.push(format!("{role} × post × author_only × edit own: {e}"));
        }
    }
    let stats_after = admin_stats(server.data.path());
    assert_eq!(
        stats_after["log"],
        stats_before["log"] + published.len() as i64,
        "only the items for everyone were logged"
    );
    owner.sync().await;
    for id in &refused {
        assert!(
            !has_doc(&owner, *id),
            "an author-only item reached another device"
        );
    }
    for id in &published {
        let item = stored_item(&owner.store, *id).expect("published item");
        assert_eq!(
            item.content.audience,
            Audience::Everyone,
            "the hiding edit was not stored"
        );
    }
    // A real device never even sends its author-only items: they wait in its outbox.
    let phone = join(&url, &owner, space, Role::Volunteer, "Telefon").await;
    phone.sync().await;
    let note = phone.post(space, "Nur für mich", Audience::AuthorOnly);
    let report = phone.sync().await;
    assert_eq!(report.pushed, 0);
    assert!(report.rejected.is_empty());
    assert_eq!(phone.store.outbox_len().expect("outbox"), 1);
    owner.sync().await;
    assert!(!has_doc(&owner, note.id));

    // Authors read their own items whatever their role: written as a caseworker for
    // caseworkers, still received as a resident; the neighbour and the coordinator never get it.
    set_role(&owner, space, me.person, Role::Caseworker).await;
    let (case_note, bytes) = bench_item(
        &bench,
        space,
        me.person,
        ItemKind::Post,
        Audience::Caseworkers,
        "Fallnotiz",
    );
    let outcome = me
        .push(
            &url,
            vec![me.record(space, case_note.as_uuid(), DocKind::Item, bytes)],
        )
        .await;
    assert_eq!(outcome, vec![AckOutcome::Stored]);
    set_role(&owner, space, me.person, Role::Resident).await;
    assert!(me
        .visible_docs(&url, space)
        .await
        .contains_key(&case_note.as_uuid()));
    assert!(!neighbour
        .visible_docs(&url, space)
        .await
        .contains_key(&case_note.as_uuid()));
    owner.sync().await;
    assert!(!has_doc(&owner, case_note));

    assert!(
        failures.is_empty(),
        "author-only items accepted:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_member_receives_what_the_new_role_may_read() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let caseworker = join(&url, &owner, space, Role::Caseworker, "Frau Weber").await;
    let member = join(&url, &owner, space, Role::Resident, "Bald Ehrenamt").await;
    owner.sync().await;
    caseworker.sync().await;
    member.sync().await;
    let for_volunteers = owner.post(space, "Für Ehrenamtliche", Audience::Volunteers).id;
    let for_caseworkers = caseworker
        .post(space, "Fallbesprechung", Audience::Caseworkers)
        .id;
    sync_clean(&owner, "owner").await;
    sync_clean(&caseworker, "caseworker").await;
    // As a resident the device skips both (its cursor moves past them)…
    member.sync().await;
    assert!(!has_doc(&member, for_volunteers) && !has_doc(&member, for_caseworkers));
    // …promoted, its next sync brings what the new role may read, and only that.
    set_role(&owner, space, member.person, Role::Volunteer).await;
    member.sync().await;
    assert!(
        has_doc(&member, for_volunteers),
        "a resident promoted to volunteer receives the items for volunteers written before"
    );
    assert!(!has_doc(&member, for_caseworkers));
    set_role(&owner, space, member.person, Role::Caseworker).await;
    member.sync().await;
    assert!(
        has_doc(&member, for_caseworkers),
        "a volunteer promoted to caseworker receives the items for caseworkers written before"
    );
    // Still in step afterwards: new items arrive as changes.
    let later = owner.post(space, "Später", Audience::Volunteers).id;
    owner.sync().await;
    member.sync().await;
    assert!(has_doc(&member, later));
}
