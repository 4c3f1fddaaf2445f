//! End to end: a real `quartier-server` process on loopback, several device stores.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::Error;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_edit_offline_sync_in_any_order_and_converge() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let b = join(&server.url, &a, space, Role::Volunteer, "Helga").await;
    let c = join(&server.url, &a, space, Role::Resident, "Cem").await;
    // Everyone gets the space first.
    for d in [&a, &b, &c] {
        d.sync().await;
    }
    assert_eq!(
        b.store.space(space).expect("space on b").meta.name.get("de"),
        Some("Nippes")
    );
    // Offline edits on all three.
    let shared = a.post(space, "Hoffest", Audience::Everyone);
    a.post(space, "Sperrmüll", Audience::Everyone);
    b.post(space, "Repair-Café", Audience::Everyone);
    c.post(space, "Suche Leiter", Audience::Everyone);
    // Random-ish order of syncs, with repeats.
    for d in [&c, &a, &b, &c, &a] {
        d.sync().await;
    }
    // Concurrent edits of the same item on two devices.
    a.retitle(shared.id, "Großes Hoffest");
    for d in [&b, &a, &c, &b] {
        d.sync().await;
    }
    let viewer = |d: &Device| d.viewer(Role::Volunteer);
    let expected = vec!["Großes Hoffest", "Repair-Café", "Sperrmüll", "Suche Leiter"];
    for d in [&a, &b, &c] {
        assert_eq!(titles(&d.store, space, viewer(d)), expected);
        assert_eq!(
            d.store.outbox_len().expect("outbox"),
            0,
            "everything acknowledged"
        );
    }
    let doc = shared.id.to_string();
    assert_eq!(
        a.store.document_heads(&doc).expect("heads a"),
        b.store.document_heads(&doc).expect("heads b")
    );
    assert_eq!(
        a.store.document_heads(&doc).expect("heads a"),
        c.store.document_heads(&doc).expect("heads c")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiences_are_enforced_on_pull_and_drafts_never_leave_the_device() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let caseworker = join(&server.url, &a, space, Role::Caseworker, "Frau Weber").await;
    let resident = join(&server.url, &a, space, Role::Resident, "Ali").await;
    a.sync().await;
    caseworker.sync().await;
    caseworker.post(space, "Fallbesprechung", Audience::Caseworkers);
    caseworker.post(space, "Öffentlicher Hinweis", Audience::Everyone);
    let draft = caseworker
        .store
        .create_item(NewItem::new(
            space,
            caseworker.person,
            ItemContent {
                status: Status::Draft,
                ..ItemContent::new(
                    LocalizedText::single("de", "Entwurf"),
                    ItemDetails::Post(Post {
                        post_type: PostType::Notice,
                    }),
                )
            },
        ))
        .expect("draft");
    caseworker.sync().await;
    resident.sync().await;
    // The resident's store never received the caseworker-only item, nor the draft.
    let ids: Vec<String> = resident
        .store
        .document_ids()
        .expect("ids")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert!(!ids.contains(&draft.id.to_string()));
    assert_eq!(
        titles(&resident.store, space, resident.viewer(Role::Coordinator)),
        vec!["Öffentlicher Hinweis"]
    );
    // Another caseworker device would see it: the coordinator does not (professional secrecy).
    a.sync().await;
    assert_eq!(
        titles(&a.store, space, a.viewer(Role::Caseworker)),
        vec!["Öffentlicher Hinweis"]
    );
    // The draft is still waiting on its device.
    assert!(caseworker.store.outbox_len().expect("outbox") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_purged_at_the_next_sync() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let b = join(&server.url, &a, space, Role::Resident, "Bea").await;
    a.post(space, "Nachricht", Audience::Everyone);
    a.sync().await;
    b.sync().await;
    assert_eq!(
        titles(&b.store, space, b.viewer(Role::Resident)),
        vec!["Nachricht"]
    );
    a.client
        .remove_member(&a.store, space, b.person)
        .await
        .expect("remove");
    let report = b.sync().await;
    assert_eq!(report.purged, vec![space.to_string()]);
    assert!(b.store.document_ids().expect("ids").is_empty());
    assert!(matches!(b.store.space(space), Err(Error::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_purged_and_refused() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    a.post(space, "Nachricht", Audience::Everyone);
    a.sync().await;
    let account = a.store.account().expect("account").expect("registered");
    a.client
        .revoke_device(&a.store, account.device)
        .await
        .expect("revoke own device");
    let report = a.sync().await;
    assert_eq!(report.purged, vec![space.to_string()]);
    assert!(a.store.document_ids().expect("ids").is_empty());
    let err = a
        .client
        .create_space(&a.store, SpaceId::new())
        .await
        .expect_err("revoked");
    assert!(matches!(err, Error::DeviceRevoked), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sync_delivers_and_backs_off_when_the_server_is_gone() {
    use quartier_core::sync::{BackgroundSync, BackoffPolicy, SyncEvent};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let b = join(&server.url, &a, space, Role::Resident, "Bo").await;
    let events: Arc<Mutex<Vec<SyncEvent>>> = Arc::default();
    let policy = BackoffPolicy {
        interval: Duration::from_millis(100),
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    let sink = Arc::clone(&events);
    let background = BackgroundSync::start(
        &tokio::runtime::Handle::current(),
        b.client.clone(),
        b.store.clone(),
        policy,
        move |e| sink.lock().expect("events").push(e),
    );
    a.post(space, "Laternenumzug", Audience::Everyone);
    a.sync().await;
    background.sync_soon();
    let store = b.store.clone();
    let viewer = b.viewer(Role::Resident);
    let delivered = tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(10), || {
            titles(&store, space, viewer) == vec!["Laternenumzug".to_string()]
        })
    })
    .await
    .expect("wait");
    assert!(delivered, "background sync never delivered the item");
    let status = b.store.sync_status().expect("status");
    assert_eq!(status.len(), 1);
    assert!(status[0].last_success.is_some());
    assert_eq!(status[0].outbox, 0);
    // The server goes away: failures are reported with growing pauses, capped.
    drop(server);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    background.stop();
    let retries: Vec<Duration> = events
        .lock()
        .expect("events")
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Failed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert!(
        retries.len() >= 2,
        "expected several failed attempts, got {retries:?}"
    );
    assert!(
        retries.iter().all(|d| *d <= Duration::from_millis(400)),
        "{retries:?}"
    );
    let status = b.store.sync_status().expect("status");
    assert!(
        status[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("offline")),
        "{status:?}"
    );
    assert!(events
        .lock()
        .expect("events")
        .iter()
        .any(|e| matches!(e, SyncEvent::Progress(_))));
}

/// A device in more spaces than one request may name (a coordinator of a whole district's
/// groups) syncs them all, a window of spaces at a time, and a second device sees every post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_in_more_spaces_than_one_request_names_syncs_them_all() {
    let server = Server::start();
    let a = Device::register(&server.url, "Bezirk").await;
    let spaces_count = quartier_protocol::MAX_CURSORS_PER_REQUEST + 7;
    let mut spaces = Vec::new();
    for i in 0..spaces_count {
        let space = a
            .store
            .create_space(space_meta(&format!("Gruppe {i}")), a.person)
            .expect("space")
            .id;
        a.client
            .create_space(&a.store, space)
            .await
            .expect("register space");
        spaces.push(space);
    }
    // Posts in the first and in the last spaces by id: both windows must carry them.
    let mut by_id = spaces.clone();
    by_id.sort_by_key(|s| s.to_string());
    let (first, last) = (by_id[0], by_id[spaces_count - 1]);
    a.post(first, "Erste Gruppe", Audience::Everyone);
    a.post(last, "Letzte Gruppe", Audience::Everyone);
    let pushed = a.sync().await;
    assert!(pushed.pushed >= 2, "{pushed:?}");
    assert_eq!(a.store.sync_outbox_len().expect("outbox"), 0);

    // A second device of the same coordinator's team, invited to the last space only, and the
    // first device after a write in the last window: each sees what the other wrote.
    let b = join(&server.url, &a, last, Role::Volunteer, "Team").await;
    b.sync().await;
    assert_eq!(
        titles(&b.store, last, b.viewer(Role::Volunteer)),
        vec!["Letzte Gruppe"]
    );
    b.post(last, "Antwort", Audience::Everyone);
    b.sync().await;
    let report = a.sync().await;
    assert!(report.rounds >= 2, "two windows of spaces: {report:?}");
    assert_eq!(
        titles(&a.store, last, a.viewer(Role::Coordinator)),
        vec!["Antwort", "Letzte Gruppe"]
    );
    assert_eq!(
        titles(&a.store, first, a.viewer(Role::Coordinator)),
        vec!["Erste Gruppe"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_syncs_signatures_follow_its_content_in_pages_of_their_own() {
    use quartier_protocol::{ChangeSignature, SpaceCursor, SyncRequest, SyncResponse, PROTOCOL_VERSION};
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    for i in 0..250 {
        a.post(space, &format!("Aushang {i}"), Audience::Everyone);
    }
    let hidden = a.post(space, "Nur fürs Team", Audience::Volunteers);
    let edited = a.post(space, "Lesecafé", Audience::Everyone);
    a.retitle(edited.id, "Lesecafé im Hof");
    a.sync().await;
    let raw = RawDevice::register(&server.url, "Roh").await;
    raw.redeem(&server.url, &a.invite(space, Role::Resident).await)
        .await;
    let request =
        |after: Option<String>, signatures_after: Option<String>, accepts: &str, budget: u32| SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: vec![SpaceCursor {
                space: space.as_uuid(),
                after,
                members_after: None,
                signatures_after,
            }],
            push: vec![],
            budget_bytes: budget,
            accepts: vec![quartier_protocol::ACCEPTS_CREATED.into(), accepts.into()],
            counselling: None,
            credentials: None,
            moderation: None,
            help: None,
        };
    let key = |s: &ChangeSignature| (s.doc, s.hash.clone(), s.device, s.signature.clone());
    let send = async |after: Option<String>, signatures_after: Option<String>, accepts: &str, budget: u32| {
        let request = request(after, signatures_after, accepts, budget);
        post_msg(&server.url, "/v1/sync", Some(&raw.token), &request).await
    };

    // Beside the content, in one page (a device of before the stream).
    let inline: SyncResponse = send(None, None, quartier_protocol::ACCEPTS_SIGNATURES, 8 << 20)
        .await
        .decode();
    let inline_page = &inline.pages[0];
    assert!(!inline_page.more && inline_page.signatures_next.is_none());
    let expected: BTreeSet<_> = inline_page.signatures.iter().map(key).collect();
    // The space and 251 posts the resident may read, one of them edited: 253 changes.
    assert_eq!(expected.len(), 253, "{:?}", inline_page.signatures.len());

    // As a stream, in pages of the smallest budget: the content first, then the signatures.
    let (mut after, mut signatures_after) = (None, None);
    let (mut streamed, mut records, mut requests) = (BTreeSet::new(), 0, 0);
    let mut content_done = false;
    loop {
        requests += 1;
        assert!(requests < 50, "the stream ends");
        let answer = send(
            after.clone(),
            signatures_after.clone(),
            quartier_protocol::ACCEPTS_SIGNATURE_STREAM,
            16 * 1024,
        )
        .await;
        assert_eq!(answer.status, 200, "{:?}", answer.error_body());
        let response: SyncResponse = answer.decode();
        let page = &response.pages[0];
        if requests == 1 {
            assert!(
                page.more && page.signatures.is_empty(),
                "more content than one page"
            );
            assert!(
                page.signatures_next
                    .as_deref()
                    .is_some_and(|g| g.starts_with("g:0:")),
                "a new member's first page starts the stream: {:?}",
                page.signatures_next
            );
            // A device that began its snapshots under a core from before the stream (its
            // cursor is on snapshots, and it names no stream) is started on one too.
            let upgraded: SyncResponse = send(
                Some(page.next.clone()),
                None,
                quartier_protocol::ACCEPTS_SIGNATURE_STREAM,
                16 * 1024,
            )
            .await
            .decode();
            let upto = |g: Option<&String>| {
                g.and_then(|g| g.rsplit_once(':'))
                    .map(|(_, upto)| upto.to_owned())
            };
            assert!(
                upto(upgraded.pages[0].signatures_next.as_ref()).is_some()
                    && upto(upgraded.pages[0].signatures_next.as_ref())
                        == upto(page.signatures_next.as_ref()),
                "{:?}",
                upgraded.pages[0].signatures_next
            );
        }
        assert!(
            !content_done || page.records.is_empty(),
            "no content after the signatures began"
        );
        if !page.signatures.is_empty() {
            content_done = true;
        }
        records += page.records.len();
        streamed.extend(page.signatures.iter().map(key));
        after = Some(page.next.clone());
        signatures_after = page.signatures_next.clone();
        if !page.more {
            assert!(page.signatures_next.is_none(), "the stream is complete");
            break;
        }
    }
    assert_eq!(records, 252, "the space and the posts the resident may read");
    assert!(requests >= 4, "small pages: {requests}");
    assert_eq!(streamed, expected, "the same signatures as beside the content");
    assert!(!streamed.iter().any(|(doc, ..)| *doc == hidden.id.as_uuid()));

    // Asked again from the start (a device turning them on later): the same, and only those.
    let again: SyncResponse = send(
        after.clone(),
        Some(String::new()),
        quartier_protocol::ACCEPTS_SIGNATURE_STREAM,
        8 << 20,
    )
    .await
    .decode();
    let page = &again.pages[0];
    assert!(page.records.is_empty() && !page.more && page.signatures_next.is_none());
    assert_eq!(page.signatures.iter().map(key).collect::<BTreeSet<_>>(), expected);

    // A signatures cursor the server never gave out is a bad request, named as such.
    for bad in [
        "x",
        "g:1",
        "g:9:1",
        "g:-1:5",
        "g:a:b",
        "g:1:2:3",
        "g:0:99999999999999999999",
        "c:0:5",
    ] {
        let answer = send(
            after.clone(),
            Some(bad.into()),
            quartier_protocol::ACCEPTS_SIGNATURE_STREAM,
            16 * 1024,
        )
        .await;
        assert_eq!(answer.status, 400, "{bad}");
        let body = answer.error_body().expect("error body");
        assert!(body.message.contains("signatures cursor"), "{bad}: {body:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_never_edited_travel_as_creations_and_rebuild_to_the_same_history() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let kept = a.post(space, "Tafel", Audience::Everyone);
    let edited = a.post(space, "Lesecafé", Audience::Everyone);
    a.retitle(edited.id, "Lesecafé im Hof");
    a.sync().await;

    // What the server sends a new member that accepts creations, and one that does not.
    let raw = RawDevice::register(&server.url, "Roh").await;
    let code = a.invite(space, Role::Resident).await;
    raw.redeem(&server.url, &code).await;
    let cursor = || {
        vec![quartier_protocol::SpaceCursor {
            space: space.as_uuid(),
            after: None,
            members_after: None,
            signatures_after: None,
        }]
    };
    let form_of = |response: &quartier_protocol::SyncResponse, id: ItemId| {
        response.pages[0]
            .records
            .iter()
            .find_map(|r| match r {
                quartier_protocol::Record::Created { doc, .. } if *doc == id.as_uuid() => Some("created"),
                quartier_protocol::Record::Snapshot { doc, .. } if *doc == id.as_uuid() => Some("snapshot"),
                _ => None,
            })
            .expect("the document is in the page")
    };
    // As a device that accepts creations.
    let pull_accepting = async |url: &str| {
        raw.sync_accepting(
            url,
            cursor(),
            vec![],
            vec![quartier_protocol::ACCEPTS_CREATED.into()],
        )
        .await
    };
    let new = pull_accepting(&server.url).await;
    assert_eq!(form_of(&new, kept.id), "created");
    assert_eq!(form_of(&new, edited.id), "snapshot");
    let old = raw.sync(&server.url, cursor(), vec![]).await;
    assert_eq!(form_of(&old, kept.id), "snapshot");

    // A real device rebuilds the same changes: same heads, and its edit of a rebuilt document
    // applies on the author's device.
    let b = join(&server.url, &a, space, Role::Coordinator, "Helga").await;
    b.sync().await;
    for id in [kept.id, edited.id] {
        assert_eq!(
            a.store.document_heads(&id.to_string()).expect("heads a"),
            b.store.document_heads(&id.to_string()).expect("heads b")
        );
    }
    b.retitle(kept.id, "Tafel Nord");
    b.sync().await;
    a.sync().await;
    let viewer = a.viewer(Role::Coordinator);
    assert_eq!(
        titles(&a.store, space, viewer),
        titles(&b.store, space, b.viewer(Role::Coordinator))
    );
    assert!(titles(&a.store, space, a.viewer(Role::Coordinator)).contains(&"Tafel Nord".to_string()));

    // The form is recorded after a document's first change is stored, by the server's prover
    // thread (`sync::creations`, off the push path), and dropped with its next change.
    let untouched = a.post(space, "Kleiderkammer", Audience::Everyone);
    a.sync().await;
    let recorded_in = |dir: &std::path::Path| -> Vec<String> {
        let db = rusqlite::Connection::open(dir.join("quartier-server.db")).expect("db");
        let mut stmt = db.prepare("SELECT doc_id FROM doc_creations").expect("query");
        let rows = stmt.query_map([], |r| r.get(0)).expect("rows");
        rows.collect::<Result<_, _>>().expect("ids")
    };
    // Bounded wait for the prover (it runs at the lowest priority on a busy machine).
    for _ in 0..600 {
        if recorded_in(server.data.path()).contains(&untouched.id.to_string()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let data = server.kill();
    let recorded = || recorded_in(data.path());
    let rows = recorded();
    assert!(rows.contains(&untouched.id.to_string()));
    assert!(!rows.contains(&kept.id.to_string()), "edited since");
    assert!(!rows.contains(&edited.id.to_string()));
    // A database from before the forms were recorded has no rows: the server works them out
    // when pulled, and a new member gets the same forms.
    rusqlite::Connection::open(data.path().join("quartier-server.db"))
        .expect("db")
        .execute("DELETE FROM doc_creations", [])
        .expect("clear");
    assert!(recorded().is_empty());
    let server = Server::start_in(data);
    let again = pull_accepting(&server.url).await;
    assert_eq!(form_of(&again, untouched.id), "created");
    assert_eq!(form_of(&again, kept.id), "snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_of_one_store_at_once_push_the_outbox_once() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    a.sync().await;
    for n in 0..300 {
        a.post(space, &format!("Aushang {n}"), Audience::Everyone);
    }
    // Small batches, so that the first sync is still pushing when the second starts.
    let client = a.client.clone().with_limits(64 * 1024, 20);
    let (first, second) = tokio::join!(
        client.sync_now(&a.store, |_| {}),
        client.sync_now(&a.store, |_| {})
    );
    let (first, second) = (first.expect("first sync"), second.expect("second sync"));
    // One pushed everything; the other waited and then found nothing to push or fetch.
    assert_eq!(first.pushed + second.pushed, 300);
    let (busy, idle) = if first.pushed > 0 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert_eq!(busy.pushed, 300);
    assert_eq!((idle.pushed, idle.rounds), (0, 1), "the waiting sync: {idle:?}");
    assert!(
        idle.bytes_sent < 1024,
        "the waiting sync sent {} bytes: it pushed the outbox again",
        idle.bytes_sent
    );
    assert_eq!(a.store.outbox_len().expect("outbox"), 0);
}

/// Pages are sized to the link (`docs/protocol.md`, "Adaptive page budget"): a new member's
/// first page is small, so a cut on a slow link loses little, and on loopback the next page
/// takes everything left (the default budget of 256 KiB once held the whole space in one page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_starts_with_a_small_page_and_grows_with_the_link() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    // About 130 KB on the wire (zstd leaves about 60 % of random letters): 300 posts of 600.
    let mut state = 0x2_6u64;
    for i in 0..300 {
        let title: String = (0..600)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect();
        a.post(space, &format!("{i:03} {title}"), Audience::Everyone);
    }
    a.sync().await;
    let b = join(&server.url, &a, space, Role::Volunteer, "Bea").await;
    // Records received after each page (progress is reported per round, cumulatively).
    let seen = std::sync::Mutex::new(Vec::new());
    let report = b
        .client
        .sync_now(&b.store, |p| seen.lock().expect("lock").push(p.received))
        .await
        .expect("sync");
    let seen = seen.into_inner().expect("lock");
    let mut pages = Vec::new();
    let mut before = 0;
    for received in seen {
        if received > before {
            pages.push(received - before);
            before = received;
        }
    }
    // How many rounds the rest takes depends on the throughput the client measures, which a
    // loaded machine lowers; what must hold is a small first page and a larger next one.
    assert!(
        pages.len() >= 2,
        "a small page, then the rest: {pages:?} {report:?}"
    );
    let first = pages[0];
    assert!(
        first < report.received / 2,
        "the first page holds {first} of {} records",
        report.received
    );
    assert!(pages[1] > first, "the pages grow with the link: {pages:?}");
    assert!(report.bytes_received > 100_000, "{report:?}");
    let viewer = b.viewer(Role::Volunteer);
    assert_eq!(titles(&b.store, space, viewer).len(), 300);
}

/// A further device of a person (registered with a link code) knows none of the person's
/// spaces before its first sync; that one sync brings them and their content, not the next.
#[tokio::test]
async fn a_further_device_gets_its_spaces_and_their_content_in_its_first_sync() {
    let server = Server::start();
    let (phone, space) = space_with_coordinator(&server.url).await;
    phone.post(space, "Straßenfest", Audience::Everyone);
    phone.sync().await;
    let link = phone.client.create_device_link(&phone.store).await.expect("link");
    let dir = tempfile::tempdir().expect("dir");
    let tablet =
        quartier_core::Store::open(dir.path().join("tablet.db"), Default::default()).expect("tablet");
    let client = quartier_core::sync::SyncClient::new(&server.url).expect("client");
    client.register_linked(&tablet, &link.code).await.expect("linked");
    client.sync_now(&tablet, |_| {}).await.expect("first sync");
    assert_eq!(
        titles(&tablet, space, phone.viewer(Role::Coordinator)),
        ["Straßenfest"]
    );
}
