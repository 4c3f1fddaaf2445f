//! Faults between devices and a real `quartier-server` process: connections cut in the middle of
//! a response (or of a request), the server killed (SIGKILL) and restarted on its data folder in
//! the middle of a sync, the same response delivered twice or out of order. Every time the sync
//! resumes, nothing is lost and everything converges.
//!
//! The faults come from a small TCP proxy between the devices and the server (loopback only)
//! that forwards bytes and closes both sides once a planned number of bytes has passed. All
//! randomness is seeded; the seed is printed, and `QUARTIER_FAULT_SEED=<n>` replays a run.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::*;
use common::*;
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::sync::{SyncClient, SyncReport};
use quartier_core::{Error, Store};
use quartier_protocol::{AckOutcome, SyncRequest, SyncResponse, CONTENT_TYPE, MAX_DECODED_BYTES};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

/// The smallest page budget the server grants, so that an initial sync takes many pages.
const BUDGET: u32 = 16 * 1024;
const BATCH: usize = 50;
/// A's posts before the initial syncs, and words per body: about 13 pages of [`BUDGET`]
/// (snapshots weigh a quarter of their uncompressed size, `SNAPSHOT_WIRE_RATIO`).
const A_POSTS: usize = 150;
const A_WORDS: usize = 720;
/// Attempts one resumed sync may take before the test gives up (every planned cut ends one
/// attempt; there are fewer planned cuts than this).
const MAX_ATTEMPTS: usize = 100;
/// Longest one `sync_now` may take before the test fails instead of hanging.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

// The cutting proxy lives in `common/proxy.rs` (shared with `blobs.rs`).

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A post for everyone in `space`.
fn post(store: &Store, space: SpaceId, author: PersonId, title: &str, body: &str) -> Item {
    let content = ItemContent {
        body: LocalizedText::single("de", body),
        audience: Audience::Everyone,
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    };
    store
        .create_item(NewItem::new(space, author, content))
        .expect("create post")
}

/// `words` random words (with numbers, so that bodies do not compress to nothing).
fn body(rng: &mut StdRng, words: usize) -> String {
    const WORDS: &[&str] = &[
        "Hof",
        "Fest",
        "Leiter",
        "Nachbarschaft",
        "Kaffee",
        "Garten",
        "Fahrrad",
        "Werkzeug",
        "Kinder",
        "Markt",
        "Sonntag",
        "Treffpunkt",
        "Bücher",
        "Tausch",
        "Hilfe",
        "Umzug",
        "Kuchen",
        "Straße",
        "Brunnen",
        "Spielplatz",
        "Müll",
        "Reparatur",
        "Musik",
        "Abend",
        "Küche",
        "Keller",
    ];
    let mut text = String::new();
    for i in 0..words {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS.choose(rng).expect("a word"));
        if rng.random_range(0..4) == 0 {
            text.push_str(&rng.random_range(0..100_000u32).to_string());
        }
    }
    text
}

/// Everything a device shows of a space: every document's heads and the whole feed.
#[derive(Debug, PartialEq)]
struct View {
    heads: BTreeMap<String, Vec<String>>,
    feed: Vec<Item>,
}

fn view(store: &Store, space: SpaceId, viewer: Viewer) -> View {
    let heads = store
        .document_ids()
        .expect("ids")
        .into_iter()
        .map(|(id, _)| {
            let heads = store.document_heads(&id).expect("heads");
            (id, heads)
        })
        .collect();
    let mut q = FeedQuery::new(space, viewer);
    q.limit = 1000.into();
    let feed = store.feed(&q).expect("feed").items;
    assert!(feed.len() < 1000, "the feed fits one page");
    View { heads, feed }
}

fn sorted_titles(v: &View) -> Vec<String> {
    let mut t: Vec<String> = v
        .feed
        .iter()
        .map(|i| i.content.title.get("de").unwrap_or("").to_owned())
        .collect();
    t.sort();
    t
}

/// The cursor the device would send for `space` now.
fn cursor_of(store: &Store, space: SpaceId) -> Option<String> {
    let (request, _) = store.build_sync_request(BUDGET, 0).expect("request");
    request
        .cursors
        .into_iter()
        .find(|c| c.space == space.as_uuid())
        .and_then(|c| c.after)
}

/// A cursor's place in the server's paging order (snapshots by document id, then changes by
/// log position; `s:<upto>:<doc>[:<role>]`, `c:<position>[:<role>]`). Cursors are opaque to
/// devices; the test knows this server's.
fn cursor_rank(cursor: &Option<String>) -> (u8, String, i64) {
    let Some(cursor) = cursor.as_deref() else {
        return (0, String::new(), 0);
    };
    let parts: Vec<&str> = cursor.split(':').collect();
    match parts.as_slice() {
        ["s", _upto, doc, ..] => (1, (*doc).to_owned(), 0),
        ["c", position, ..] => (2, String::new(), position.parse().expect("c:<position>")),
        _ => panic!("a cursor this test does not know: {cursor}"),
    }
}

/// What one resumed sync took: the final report, failed attempts, and pages committed over all
/// attempts.
struct Resumed {
    report: SyncReport,
    failures: usize,
    pages: usize,
}

/// Syncs, starting again after every dropped link (`Error::Offline`), until a sync succeeds.
/// Any other error fails the test. `after_failure` runs after each failed attempt.
async fn sync_until_ok(store: &Store, client: &SyncClient, mut after_failure: impl FnMut(&Error)) -> Resumed {
    let pages = Arc::new(AtomicUsize::new(0));
    let mut failures = 0;
    loop {
        assert!(
            failures < MAX_ATTEMPTS,
            "no successful sync after {failures} attempts"
        );
        let counter = Arc::clone(&pages);
        let result = tokio::time::timeout(
            SYNC_TIMEOUT,
            client.sync_now(store, move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .await
        .expect("a sync hung");
        match result {
            Ok(report) => {
                assert!(
                    report.rejected.is_empty(),
                    "changes rejected: {:?}",
                    report.rejected
                );
                return Resumed {
                    report,
                    failures,
                    pages: pages.load(Ordering::SeqCst),
                };
            }
            Err(e @ Error::Offline(_)) => {
                failures += 1;
                after_failure(&e);
            }
            Err(e) => panic!("sync failed with something else than a dropped link: {e:?}"),
        }
    }
}

/// `quartier-server admin stats` on a data folder: row counts by table.
fn server_stats(data: &Path) -> BTreeMap<String, i64> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(["admin", "--data"])
        .arg(data)
        .arg("stats")
        .env("QUARTIER_LOG", "warn")
        .output()
        .expect("run admin stats");
    assert!(out.status.success(), "admin stats: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Changes of every document a store holds (to compare with the server's log).
fn change_count(store: &Store) -> usize {
    store
        .document_ids()
        .expect("ids")
        .iter()
        .map(|(id, _)| store.document_changes(id).expect("changes").len())
        .sum()
}

fn limited(url: &str, batch: usize) -> SyncClient {
    SyncClient::new(url).expect("client").with_limits(BUDGET, batch)
}

// ---------------------------------------------------------------------------------------------
// 1. Connections dropped in the middle of responses and requests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_resume_where_they_stopped_without_loss_or_duplicates() {
    let seed = seed("dropped_connections");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let mut b = join(&server.url, &a, space, Role::Volunteer, "Bea").await;
    let mut c = join(&server.url, &a, space, Role::Volunteer, "Cem").await;
    let viewer = Viewer::new(a.person, Role::Coordinator);
    for i in 0..A_POSTS {
        post(
            &a.store,
            space,
            a.person,
            &format!("A{i:03}"),
            &body(&mut rng, A_WORDS),
        );
    }
    a.sync().await;

    // C: the yardstick, a clean initial sync through a proxy that never cuts.
    let clean = Proxy::start(&server.url).await;
    c.client = limited(&clean.url, BATCH);
    let clean_sync = sync_until_ok(&c.store, &c.client, |_| {}).await;
    assert_eq!(clean_sync.failures, 0);
    let clean_down = clean.down();
    let clean_rounds = clean_sync.report.rounds;
    assert!(
        clean_rounds >= 10,
        "the initial sync takes many pages ({clean_rounds})"
    );
    assert_eq!(view(&c.store, space, viewer), view(&a.store, space, viewer));

    // B: the same initial sync through a proxy that cuts answers in the middle, 5 times, at
    // random offsets 10–35 % of a whole sync apart.
    let flaky = Proxy::start(&server.url).await;
    let gaps: Vec<u64> = (0..5)
        .map(|_| rng.random_range(clean_down / 10..=clean_down * 35 / 100))
        .collect();
    flaky.plan_cuts(&gaps, &[]);
    b.client = limited(&flaky.url, BATCH);
    let mut cursors = vec![cursor_of(&b.store, space)];
    let resumed = sync_until_ok(&b.store, &b.client, |e| {
        assert!(matches!(e, Error::Offline(_)));
        cursors.push(cursor_of(&b.store, space));
    })
    .await;
    cursors.push(cursor_of(&b.store, space));
    let b_down = flaky.down();
    let cuts = flaky.cuts();
    eprintln!(
        "initial sync: clean {clean_down} B down in {clean_rounds} rounds; through cuts {b_down} B \
         down, {cuts} cuts, {} failed attempts, {} pages committed in all",
        resumed.failures, resumed.pages
    );
    assert!(cuts >= 2, "several answers were cut ({cuts})");
    // Every cut ends one attempt (unless it happened to fall exactly at the end of an answer).
    assert!(
        resumed.failures <= cuts && resumed.failures + 1 >= cuts,
        "{} failed attempts for {cuts} cuts",
        resumed.failures
    );
    // The cursor only ever moves forward, and attempts after a cut started where the last
    // committed page ended, not from zero.
    for pair in cursors.windows(2) {
        assert!(
            cursor_rank(&pair[0]) <= cursor_rank(&pair[1]),
            "the cursor went back: {cursors:?}"
        );
    }
    assert!(
        cursors[1..cursors.len() - 1].iter().any(Option::is_some),
        "a cut attempt left committed pages behind: {cursors:?}"
    );
    // Each cut loses at most the answer in flight (one page: the budget plus framing).
    let lost_bound = cuts as u64 * (u64::from(BUDGET) + 8 * 1024);
    assert!(
        b_down <= clean_down + lost_bound,
        "{b_down} B downloaded, clean {clean_down}, {cuts} cuts"
    );
    assert!(b_down * 10 < clean_down * 25);
    assert_eq!(view(&b.store, space, viewer), view(&a.store, space, viewer));
    assert_eq!(b.store.outbox_len().expect("outbox"), 0);

    // B pushes 120 posts through the same proxy, requests and answers cut at random.
    let b_titles: Vec<String> = (0..120).map(|i| format!("B{i:03}")).collect();
    for t in &b_titles {
        post(&b.store, space, b.person, t, &body(&mut rng, 60));
    }
    // Answers to pushes are small (acknowledgements; the server does not echo a device's own
    // changes): cut them after a few hundred bytes, when the server has already stored the push.
    let down_gaps: Vec<u64> = (0..6).map(|_| rng.random_range(50..800)).collect();
    let up_gaps: Vec<u64> = (0..3).map(|_| rng.random_range(2_000..30_000)).collect();
    let cuts_before = flaky.cuts();
    let up_before = flaky.up();
    flaky.plan_cuts(&down_gaps, &up_gaps);
    let pushed = sync_until_ok(&b.store, &b.client, |_| {}).await;
    let push_cuts = flaky.cuts() - cuts_before;
    eprintln!(
        "push of 120 posts: {push_cuts} cuts, {} failed attempts, {} B up, final attempt {} \
         rounds, {} acknowledged in it",
        pushed.failures,
        flaky.up() - up_before,
        pushed.report.rounds,
        pushed.report.pushed
    );
    assert!(push_cuts >= 1);
    assert_eq!(b.store.outbox_len().expect("outbox"), 0, "outbox drained");

    // A sees each of B's posts exactly once; the server logged every change exactly once.
    a.sync().await;
    let a_view = view(&a.store, space, viewer);
    let mut expected: Vec<String> = (0..A_POSTS).map(|i| format!("A{i:03}")).collect();
    expected.extend(b_titles.iter().cloned());
    expected.sort();
    assert_eq!(sorted_titles(&a_view), expected);
    assert_eq!(view(&b.store, space, viewer), a_view);
    let stats = server_stats(server.data.path());
    assert_eq!(
        stats.get("log").copied(),
        Some(change_count(&a.store) as i64),
        "the server's log holds every change once: {stats:?}"
    );
    c.sync().await;
    assert_eq!(view(&c.store, space, viewer), a_view);
}

// ---------------------------------------------------------------------------------------------
// 2. The server killed in the middle of syncs and restarted on the same data folder.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_restarts_and_loses_nothing_it_acknowledged() {
    let seed = seed("server_killed");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Some(Server::start());
    let proxy = Proxy::start(&server.as_ref().expect("server").url).await;
    let url = proxy.url.clone();
    let (mut a, space) = space_with_coordinator(&url).await;
    a.client = limited(&url, BATCH);
    let viewer = Viewer::new(a.person, Role::Coordinator);
    let mut written: Vec<String> = Vec::new();
    for i in 0..A_POSTS {
        let title = format!("A{i:03}");
        post(&a.store, space, a.person, &title, &body(&mut rng, A_WORDS));
        written.push(title);
    }
    a.sync().await;

    let mut acknowledged: Vec<String> = written.clone();
    let mut joined: Vec<Device> = Vec::new();
    let mut killed_mid_sync = 0;
    for cycle in 0..3 {
        let mut d = join(&url, &a, space, Role::Volunteer, &format!("D{cycle}")).await;
        d.client = limited(&url, BATCH);
        // Kill after the d's `kill_after`-th committed page and a random pause, while A writes
        // and syncs one post at a time.
        let kill_after = rng.random_range(1..=6usize);
        let pause = Duration::from_micros(rng.random_range(0..6_000));
        let pages = Arc::new(AtomicUsize::new(0));
        let reached = Arc::new(tokio::sync::Notify::new());
        let victim = server.take().expect("a running server");
        let killer = {
            let reached = Arc::clone(&reached);
            tokio::spawn(async move {
                reached.notified().await;
                tokio::time::sleep(pause).await;
                tokio::task::spawn_blocking(move || victim.kill())
                    .await
                    .expect("kill")
            })
        };
        let (p, r) = (Arc::clone(&pages), Arc::clone(&reached));
        let d_sync = async {
            let result = d
                .client
                .sync_now(&d.store, move |_| {
                    if p.fetch_add(1, Ordering::SeqCst) + 1 == kill_after {
                        r.notify_one();
                    }
                })
                .await;
            // A sync shorter than `kill_after` pages: kill after it, then.
            reached.notify_one();
            result
        };
        let a_writes = async {
            let mut acked = Vec::new();
            let mut pending = Vec::new();
            for i in 0..200 {
                let title = format!("A{cycle}-{i:03}");
                post(&a.store, space, a.person, &title, &body(&mut rng, 40));
                pending.push(title);
                match a.client.sync_now(&a.store, |_| {}).await {
                    Ok(_) => acked.append(&mut pending),
                    Err(Error::Offline(_)) => break,
                    Err(e) => panic!("A's sync: {e:?}"),
                }
            }
            (acked, pending)
        };
        let (d_result, (acked, pending)) = tokio::join!(d_sync, a_writes);
        let data = killer.await.expect("killer");
        let d_pages = pages.load(Ordering::SeqCst);
        match &d_result {
            Err(Error::Offline(_)) => killed_mid_sync += 1,
            Ok(_) => {}
            Err(e) => panic!("D's sync: {e:?}"),
        }
        eprintln!(
            "cycle {cycle}: killed after page {kill_after} (+{pause:?}); D committed {d_pages} \
             pages, {}; A had {} posts acknowledged, {} not",
            if d_result.is_ok() { "finished" } else { "was cut" },
            acked.len(),
            pending.len()
        );
        written.extend(acked.iter().cloned());
        written.extend(pending.iter().cloned());
        acknowledged.extend(acked);

        // The same data folder, another port, the same URL for the devices.
        let restarted = tokio::task::spawn_blocking(move || Server::start_in(data))
            .await
            .expect("restart");
        proxy.set_upstream(&restarted.url);
        server = Some(restarted);

        // D resumes; before A pushes again, everything acknowledged before the kill is there.
        let resumed = sync_until_ok(&d.store, &d.client, |_| {}).await;
        let d_titles = sorted_titles(&view(&d.store, space, viewer));
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|t| d_titles.binary_search(t).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged before the kill but lost: {missing:?}"
        );
        eprintln!(
            "cycle {cycle}: D resumed in {} rounds after {} failed attempts",
            resumed.report.rounds, resumed.failures
        );
        sync_until_ok(&a.store, &a.client, |_| {}).await;
        assert_eq!(a.store.outbox_len().expect("outbox"), 0);
        joined.push(d);
    }
    assert!(killed_mid_sync >= 1, "at least one kill cut a sync");

    // Everyone converges on everything written, each post once.
    for d in &joined {
        sync_until_ok(&d.store, &d.client, |_| {}).await;
    }
    let a_view = view(&a.store, space, viewer);
    written.sort();
    assert_eq!(sorted_titles(&a_view), written);
    for d in &joined {
        assert_eq!(view(&d.store, space, viewer), a_view);
        assert_eq!(d.store.outbox_len().expect("outbox"), 0);
    }
    let server = server.expect("server");
    let stats = server_stats(server.data.path());
    assert_eq!(
        stats.get("log").copied(),
        Some(change_count(&a.store) as i64),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The same response delivered twice, and an older one after a newer one.

async fn post_sync(http: &reqwest::Client, url: &str, token: &str, request: &SyncRequest) -> SyncResponse {
    let response = http
        .post(format!("{url}/v1/sync"))
        .header("content-type", CONTENT_TYPE)
        .bearer_auth(token)
        .body(quartier_protocol::encode(request).expect("encode"))
        .send()
        .await
        .expect("send");
    assert!(response.status().is_success(), "status {}", response.status());
    let bytes = response.bytes().await.expect("body");
    quartier_protocol::decode(&bytes, MAX_DECODED_BYTES).expect("decode")
}

/// What must not move when a response is applied again.
#[derive(Debug, PartialEq)]
struct Snapshot {
    view: View,
    outbox: usize,
    pending: Vec<String>,
}

fn snapshot(store: &Store, space: SpaceId, viewer: Viewer) -> Snapshot {
    Snapshot {
        view: view(store, space, viewer),
        outbox: store.outbox_len().expect("outbox"),
        pending: store
            .pending_changes(1000)
            .expect("pending")
            .into_iter()
            .map(|c| c.hash)
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_response_twice_or_an_older_one_after_a_newer_one_changes_nothing() {
    let seed = seed("same_page_twice");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let b = join(&server.url, &a, space, Role::Volunteer, "Bea").await;
    let viewer = Viewer::new(a.person, Role::Coordinator);
    // B has the space (and a cursor), then A writes 60 posts: B's next pages carry changes.
    a.sync().await;
    b.sync().await;
    for i in 0..60 {
        post(
            &a.store,
            space,
            a.person,
            &format!("A{i:02}"),
            &body(&mut rng, 90),
        );
    }
    a.sync().await;
    for i in 0..3 {
        post(&b.store, space, b.person, &format!("B{i}"), &body(&mut rng, 20));
    }
    let account = b.store.account().expect("account").expect("registered");
    let token = account.token().to_owned();
    let http = reqwest::Client::new();

    // Page 1 (with B's three pushes), applied once, then again.
    let (request1, pushed1) = b.store.build_sync_request(BUDGET, BATCH).expect("request");
    assert_eq!(pushed1.len(), 3);
    let response1 = post_sync(&http, &server.url, &token, &request1).await;
    assert!(response1.pages[0].more, "60 posts take several pages");
    let first = b
        .store
        .apply_sync_response(&pushed1, response1.clone())
        .expect("apply");
    assert_eq!(first.acknowledged, 3);
    assert!(first.received > 0);
    let after1 = snapshot(&b.store, space, viewer);
    let cursor1 = cursor_of(&b.store, space);
    assert_eq!(after1.outbox, 0);
    let again = b
        .store
        .apply_sync_response(&pushed1, response1.clone())
        .expect("apply again");
    assert_eq!(again.acknowledged, 0);
    assert!(again.stale, "the cursor has moved past the request");
    assert_eq!(snapshot(&b.store, space, viewer), after1);
    assert_eq!(cursor_of(&b.store, space), cursor1);

    // The same request delivered twice to the server: every push is a duplicate, the page the
    // same.
    let replayed = post_sync(&http, &server.url, &token, &request1).await;
    assert!(replayed.acks.iter().all(|a| a.outcome == AckOutcome::Duplicate));
    assert_eq!(replayed.acks.len(), 3);
    assert_eq!(replayed.pages.len(), response1.pages.len());
    assert_eq!(replayed.pages[0].next, response1.pages[0].next);
    b.store
        .apply_sync_response(&pushed1, replayed.clone())
        .expect("apply replay");
    assert_eq!(snapshot(&b.store, space, viewer), after1);

    // Page 2, then a new local post, then page 1 once more (an old, late delivery).
    let (request2, pushed2) = b.store.build_sync_request(BUDGET, BATCH).expect("request");
    assert!(pushed2.is_empty());
    let response2 = post_sync(&http, &server.url, &token, &request2).await;
    let second = b
        .store
        .apply_sync_response(&pushed2, response2.clone())
        .expect("apply 2");
    assert!(second.received > 0);
    post(&b.store, space, b.person, "B-late", "noch nicht gesendet");
    let after2 = snapshot(&b.store, space, viewer);
    let cursor2 = cursor_of(&b.store, space);
    assert_ne!(cursor2, cursor1);
    assert_eq!(after2.outbox, 1);
    let stale = b
        .store
        .apply_sync_response(&pushed1, response1.clone())
        .expect("apply old");
    assert_eq!(stale.acknowledged, 0, "old acks do not drop newer entries");
    assert!(stale.stale);
    assert_eq!(snapshot(&b.store, space, viewer), after2);
    assert_eq!(
        cursor_of(&b.store, space),
        cursor2,
        "an old page does not move the cursor back"
    );
    let twice = b
        .store
        .apply_sync_response(&pushed2, response2.clone())
        .expect("apply 2 again");
    assert!(twice.stale);
    assert_eq!(snapshot(&b.store, space, viewer), after2);
    assert_eq!(cursor_of(&b.store, space), cursor2);

    // A normal sync afterwards converges.
    let report = b.sync().await;
    assert!(report.pushed >= 1);
    assert_eq!(b.store.outbox_len().expect("outbox"), 0);
    a.sync().await;
    let a_view = view(&a.store, space, viewer);
    assert_eq!(view(&b.store, space, viewer), a_view);
    let mut expected: Vec<String> = (0..60).map(|i| format!("A{i:02}")).collect();
    expected.extend(["B0", "B1", "B2", "B-late"].map(String::from));
    expected.sort();
    assert_eq!(sorted_titles(&a_view), expected);
}

// ---------------------------------------------------------------------------------------------
// 4. Three devices editing concurrently, syncing through a flaky link in random orders.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_editing_through_a_flaky_link_in_random_orders_converge() {
    let seed = seed("flaky_three_devices");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let server = Server::start();
    let proxy = Proxy::start(&server.url).await;
    let url = proxy.url.clone();
    let (mut a, space) = space_with_coordinator(&url).await;
    let mut b = join(&url, &a, space, Role::Coordinator, "Bea").await;
    let mut c = join(&url, &a, space, Role::Volunteer, "Cem").await;
    for d in [&mut a, &mut b, &mut c] {
        d.client = limited(&url, 8);
    }
    let down_gaps: Vec<u64> = (0..40).map(|_| rng.random_range(200..12_000)).collect();
    let up_gaps: Vec<u64> = (0..20).map(|_| rng.random_range(200..12_000)).collect();
    proxy.plan_cuts(&down_gaps, &up_gaps);
    let devices = [&a, &b, &c];
    let roles = [Role::Coordinator, Role::Coordinator, Role::Volunteer];
    let names = ["A", "B", "C"];
    for d in devices {
        sync_until_ok(&d.store, &d.client, |_| {}).await;
    }
    let mut created: Vec<String> = Vec::new();
    let (mut edits, mut deletes, mut syncs, mut failures) = (0, 0, 0, 0);
    for round in 0..12 {
        for (i, d) in devices.iter().enumerate() {
            for k in 0..rng.random_range(0..=4) {
                let feed = view(&d.store, space, d.viewer(roles[i])).feed;
                // Volunteers edit only their own items; coordinators anyone's.
                let editable: Vec<&Item> = feed
                    .iter()
                    .filter(|it| roles[i] == Role::Coordinator || it.author == d.person)
                    .collect();
                let choice = rng.random_range(0..10);
                if choice < 4 || editable.is_empty() {
                    let title = format!("{}-{round}-{k}", names[i]);
                    let item = post(&d.store, space, d.person, &title, &body(&mut rng, 30));
                    created.push(item.id.to_string());
                    continue;
                }
                let target = (*editable.choose(&mut rng).expect("an item")).clone();
                let patch = match choice {
                    4..=5 => ItemPatch {
                        title: Some(LocalizedText::single(
                            "de",
                            format!(
                                "{} ({}{round})",
                                names[i],
                                target.content.title.get("de").unwrap_or("")
                            ),
                        )),
                        ..Default::default()
                    },
                    6..=7 => ItemPatch {
                        body: Some(LocalizedText::single("de", body(&mut rng, 25))),
                        ..Default::default()
                    },
                    8 => ItemPatch {
                        tags: Some([format!("t{}", rng.random_range(0..5))].into_iter().collect()),
                        ..Default::default()
                    },
                    _ => {
                        d.store.delete_item(target.id, d.person).expect("delete");
                        deletes += 1;
                        continue;
                    }
                };
                d.store.update_item(target.id, &patch, d.person).expect("edit");
                edits += 1;
            }
        }
        // A random number of devices sync, in a random order, some more than once.
        let mut order: Vec<usize> = (0..rng.random_range(1..=4))
            .map(|_| rng.random_range(0..3))
            .collect();
        order.shuffle(&mut rng);
        for i in order {
            let r = sync_until_ok(&devices[i].store, &devices[i].client, |_| {}).await;
            syncs += 1;
            failures += r.failures;
        }
    }
    // Everyone comes online at the end, twice round.
    for i in [0, 1, 2, 0, 1, 2] {
        let r = sync_until_ok(&devices[i].store, &devices[i].client, |_| {}).await;
        syncs += 1;
        failures += r.failures;
    }
    eprintln!(
        "{} posts, {edits} edits, {deletes} deletions; {syncs} syncs, {failures} failed attempts, \
         {} cuts; {} B down, {} B up; {:?}",
        created.len(),
        proxy.cuts(),
        proxy.down(),
        proxy.up(),
        started.elapsed()
    );
    assert!(proxy.cuts() >= 5, "the link was flaky ({} cuts)", proxy.cuts());
    let viewer = Viewer::new(a.person, Role::Coordinator);
    let reference = view(&a.store, space, viewer);
    for d in devices {
        assert_eq!(d.store.outbox_len().expect("outbox"), 0);
        assert_eq!(view(&d.store, space, viewer), reference);
    }
    for id in &created {
        assert!(reference.heads.contains_key(id), "{id} was lost");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The background task rides out a flaky link and a server restart on its own.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sync_rides_out_cuts_and_a_restart_and_converges() {
    use quartier_core::sync::{BackgroundSync, BackoffPolicy, SyncEvent};

    let seed = seed("background_sync");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = Server::start();
    let proxy = Proxy::start(&server.url).await;
    let url = proxy.url.clone();
    let (mut a, space) = space_with_coordinator(&url).await;
    a.client = limited(&url, BATCH);
    let b = join(&url, &a, space, Role::Volunteer, "Bea").await;
    let viewer = Viewer::new(a.person, Role::Coordinator);
    for i in 0..60 {
        post(
            &a.store,
            space,
            a.person,
            &format!("A{i:02}"),
            &body(&mut rng, A_WORDS),
        );
    }
    a.sync().await;
    let down_gaps: Vec<u64> = (0..8).map(|_| rng.random_range(2_000..20_000)).collect();
    let up_gaps: Vec<u64> = (0..4).map(|_| rng.random_range(300..5_000)).collect();
    proxy.plan_cuts(&down_gaps, &up_gaps);

    #[derive(Default)]
    struct Seen {
        failed: usize,
        finished: usize,
        stopped: Vec<String>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let events = Arc::clone(&seen);
    let background = BackgroundSync::start(
        &tokio::runtime::Handle::current(),
        limited(&url, BATCH),
        b.store.clone(),
        BackoffPolicy {
            interval: Duration::from_millis(100),
            initial: Duration::from_millis(10),
            max: Duration::from_millis(200),
        },
        move |event| {
            let mut seen = events.lock().unwrap();
            match event {
                SyncEvent::Failed { .. } => seen.failed += 1,
                SyncEvent::Finished(_) => seen.finished += 1,
                SyncEvent::Stopped { error } => seen.stopped.push(error),
                _ => {}
            }
        },
    );
    // B writes while its background sync is under way; then the server dies and comes back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut b_titles = Vec::new();
    while seen.lock().unwrap().finished == 0 {
        assert!(Instant::now() < deadline, "no background sync finished");
        // B can write in the space once it has received it.
        if b_titles.len() < 10 && b.store.space(space).is_ok() {
            let title = format!("B{:02}", b_titles.len());
            post(&b.store, space, b.person, &title, &body(&mut rng, 30));
            b_titles.push(title);
            background.sync_soon();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data = tokio::task::spawn_blocking(move || server.kill())
        .await
        .expect("kill");
    for i in 10..20 {
        let title = format!("B{i:02}");
        post(&b.store, space, b.person, &title, &body(&mut rng, 30));
        b_titles.push(title);
    }
    background.sync_soon();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let server = tokio::task::spawn_blocking(move || Server::start_in(data))
        .await
        .expect("restart");
    proxy.set_upstream(&server.url);
    background.sync_soon();

    // Converges without anyone calling `sync_now` on B.
    let mut expected: Vec<String> = (0..60).map(|i| format!("A{i:02}")).collect();
    expected.extend(b_titles.iter().cloned());
    expected.sort();
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(
            Instant::now() < deadline,
            "no convergence by the deadline (seed {seed})"
        );
        sync_until_ok(&a.store, &a.client, |_| {}).await;
        let a_view = view(&a.store, space, viewer);
        if sorted_titles(&a_view) == expected
            && b.store.outbox_len().expect("outbox") == 0
            && view(&b.store, space, viewer) == a_view
        {
            break;
        }
        background.sync_soon();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    background.stop();
    let seen = seen.lock().unwrap();
    eprintln!(
        "background: {} finished, {} failed attempts, {} cuts, converged after {polls} polls",
        seen.finished,
        seen.failed,
        proxy.cuts()
    );
    assert!(seen.stopped.is_empty(), "stopped: {:?}", seen.stopped);
    assert!(seen.failed >= 1, "the link and the restart made attempts fail");
}

// ---------------------------------------------------------------------------------------------
// 6. A late answer (two syncs of one store racing) after the member was removed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_response_does_not_bring_back_a_space_purged_since() {
    let server = Server::start();
    let (a, space) = space_with_coordinator(&server.url).await;
    let b = join(&server.url, &a, space, Role::Volunteer, "Bea").await;
    a.post(space, "Nachricht", Audience::Everyone);
    a.sync().await;
    let account = b.store.account().expect("account").expect("registered");
    let http = reqwest::Client::new();
    // Two syncs of the same store racing: the first request's answer arrives last.
    let (old_request, old_pushed) = b.store.build_sync_request(BUDGET, BATCH).expect("request");
    let old = post_sync(&http, &server.url, account.token(), &old_request).await;
    assert!(!old.pages[0].records.is_empty());
    a.client
        .remove_member(&a.store, space, b.person)
        .await
        .expect("remove");
    let (new_request, new_pushed) = b.store.build_sync_request(BUDGET, BATCH).expect("request");
    let new = post_sync(&http, &server.url, account.token(), &new_request).await;
    let purged = b
        .store
        .apply_sync_response(&new_pushed, new.clone())
        .expect("apply");
    assert_eq!(purged.purged, vec![space.to_string()]);
    let late = b
        .store
        .apply_sync_response(&old_pushed, old.clone())
        .expect("apply late");
    assert!(late.stale);
    assert!(b.store.document_ids().expect("ids").is_empty());
    assert!(b.store.memberships().expect("memberships").is_empty());
    assert!(matches!(b.store.space(space), Err(Error::NotFound { .. })));
}
