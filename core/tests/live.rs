//! Live queries through the public API: the initial result, a fresh result after each commit
//! that can change it (local writes and merges), silence for commits elsewhere, unsubscribing,
//! and listeners that panic, read or write.

use crate::common;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use quartier_core::model::*;
use quartier_core::query::{
    EventsQuery, FeedQuery, OpenOffersQuery, RadiusQuery, SearchRequest, ViewportQuery,
};
use quartier_core::{Error, LiveQuery, LiveResult, Result, Store, Subscription};

/// How long a result may take to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// How long we listen to be sure that nothing arrives.
const QUIET: Duration = Duration::from_millis(300);

type Results = Receiver<Result<LiveResult>>;

/// Subscribes `query` with a listener that forwards every result to the returned channel.
fn watch(store: &Store, query: LiveQuery) -> (Subscription, Results) {
    let (tx, rx) = mpsc::channel();
    let sub = store.subscribe(query, move |result| {
        let _ = tx.send(result);
    });
    (sub, rx)
}

/// The next result, which must come within [`WAIT`] and be a success.
fn next(rx: &Results) -> LiveResult {
    match rx.recv_timeout(WAIT) {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => panic!("the live query failed: {e}"),
        Err(e) => panic!("no live result within {WAIT:?}: {e}"),
    }
}

/// Results until one satisfies `done` (results may be coalesced, so intermediate states may
/// be skipped); fails after [`WAIT`].
fn wait_for(rx: &Results, what: &str, done: impl Fn(&LiveResult) -> bool) -> LiveResult {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(result)) if done(&result) => return result,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => panic!("the live query failed while waiting for {what}: {e}"),
            Err(_) => panic!("no live result with {what} within {WAIT:?}"),
        }
    }
}

/// Nothing arrives within [`QUIET`].
fn assert_quiet(rx: &Results, what: &str) {
    match rx.recv_timeout(QUIET) {
        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        Ok(result) => panic!("unexpected live result ({what}): {result:?}"),
    }
}

/// A call may come (the commit touched the query's space) but must show `expected`.
fn assert_unchanged_if_called(rx: &Results, expected: &[ItemId]) {
    match rx.recv_timeout(QUIET) {
        Ok(Ok(result)) => assert_eq!(feed_ids(&result), expected),
        Ok(Err(e)) => panic!("the live query failed: {e}"),
        Err(_) => {}
    }
}

fn feed_ids(result: &LiveResult) -> Vec<ItemId> {
    match result {
        LiveResult::Feed(page) => page.items.iter().map(|i| i.id).collect(),
        other => panic!("expected a feed result, got {other:?}"),
    }
}

fn feed_query(fx: &Fixture) -> LiveQuery {
    LiveQuery::Feed(FeedQuery::new(fx.space, fx.viewer(Role::Resident)))
}

#[test]
fn live_feed_gets_the_current_result_then_one_after_each_local_write() {
    let fx = Fixture::new();
    let first = fx.post("Hoffest", "Samstag");
    // Subscribed on a clone: clones share the notifier.
    let (sub, rx) = watch(&fx.store.clone(), feed_query(&fx));
    assert_eq!(feed_ids(&next(&rx)), vec![first.id]);
    assert_quiet(&rx, "no commit yet");

    let second = fx.post("Flohmarkt", "Sonntag");
    let result = next(&rx);
    assert_eq!(feed_ids(&result), vec![second.id, first.id]);
    assert_eq!(
        result,
        LiveResult::Feed(
            fx.store
                .feed(&FeedQuery::new(fx.space, fx.viewer(Role::Resident)))
                .unwrap()
        )
    );

    fx.store
        .update_item(
            first.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Großes Hoffest")),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    let LiveResult::Feed(page) = next(&rx) else {
        panic!("not a feed")
    };
    assert_eq!(page.items[1].content.title.get("de"), Some("Großes Hoffest"));

    fx.store.delete_item(second.id, fx.author).unwrap();
    assert_eq!(feed_ids(&next(&rx)), vec![first.id]);

    // A write that cannot be seen by this viewer still counts as a commit in the space: the
    // listener may be called, but the result is unchanged.
    fx.create(ItemContent {
        audience: Audience::Caseworkers,
        ..post("Fallbesprechung", "")
    });
    assert_unchanged_if_called(&rx, &[first.id]);

    // A no-op edit writes nothing and calls nobody.
    fx.store
        .update_item(
            first.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Großes Hoffest")),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    assert_quiet(&rx, "no-op edit");
    // Failed writes neither.
    assert!(fx
        .store
        .create_item(NewItem::new(fx.space, fx.author, post("", "")))
        .is_err());
    assert_quiet(&rx, "failed write");
    drop(sub);
}

#[test]
fn live_feed_follows_changes_merged_from_another_store() {
    let fx = Fixture::new();
    let local = fx.post("Hier geschrieben", "");
    let (_dir, phone) = fx.replica();
    let (_sub, rx) = watch(&fx.store, feed_query(&fx));
    assert_eq!(feed_ids(&next(&rx)), vec![local.id]);

    // Written on the phone, merged here.
    let remote = phone
        .create_item(NewItem::new(
            fx.space,
            PersonId::new(),
            post("Am Telefon geschrieben", ""),
        ))
        .unwrap();
    assert_quiet(&rx, "a write in another store is not a commit here");
    let changes = phone.document_changes(&remote.id.to_string()).unwrap();
    let report = fx.store.apply_changes(&changes).unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(feed_ids(&next(&rx)), vec![remote.id, local.id]);

    // An edit on the phone to the item written here.
    phone
        .update_item(
            local.id,
            &ItemPatch {
                body: Some(LocalizedText::single("de", "Am Telefon ergänzt")),
                ..Default::default()
            },
            PersonId::new(),
        )
        .unwrap();
    fx.store
        .apply_changes(&phone.document_changes(&local.id.to_string()).unwrap())
        .unwrap();
    let LiveResult::Feed(page) = next(&rx) else {
        panic!("not a feed")
    };
    assert_eq!(page.items[1].id, local.id);
    assert_eq!(page.items[1].content.body.get("de"), Some("Am Telefon ergänzt"));

    // Changes this store already has change nothing and call nobody.
    let report = fx.store.apply_changes(&changes).unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(report.duplicates, 1);
    assert_quiet(&rx, "duplicate changes");

    // A deletion merged from the phone.
    phone.delete_item(remote.id, PersonId::new()).unwrap();
    fx.store
        .apply_changes(&phone.document_changes(&remote.id.to_string()).unwrap())
        .unwrap();
    assert_eq!(feed_ids(&next(&rx)), vec![local.id]);
}

#[test]
fn live_queries_are_not_called_for_writes_to_another_space() {
    let fx = Fixture::new();
    let other = fx.other_space("Ehrenfeld");
    let (_here, rx_here) = watch(&fx.store, feed_query(&fx));
    let (_there, rx_there) = watch(
        &fx.store,
        LiveQuery::Feed(FeedQuery::new(other, fx.viewer(Role::Resident))),
    );
    let events = EventsQuery {
        space: fx.space,
        viewer: fx.viewer(Role::Resident),
        from: utc(2026, 1, 1, 0, 0),
        to: utc(2027, 1, 1, 0, 0),
        limit: 100.into(),
    };
    let (_events, rx_events) = watch(&fx.store, LiveQuery::Events(events));
    assert!(feed_ids(&next(&rx_here)).is_empty());
    assert!(feed_ids(&next(&rx_there)).is_empty());
    assert_eq!(next(&rx_events), LiveResult::Events(vec![]));

    let elsewhere = fx
        .store
        .create_item(NewItem::new(other, fx.author, post("In Ehrenfeld", "")))
        .unwrap();
    assert_eq!(feed_ids(&next(&rx_there)), vec![elsewhere.id]);
    assert_quiet(&rx_here, "a write to another space");
    assert_quiet(&rx_events, "a write to another space");

    // Merged into the other space: still quiet here.
    let (_dir, phone) = fx.replica();
    let merged = phone
        .create_item(NewItem::new(
            other,
            PersonId::new(),
            post("Auch in Ehrenfeld", ""),
        ))
        .unwrap();
    fx.store
        .apply_changes(&phone.document_changes(&merged.id.to_string()).unwrap())
        .unwrap();
    assert_eq!(feed_ids(&next(&rx_there)), vec![merged.id, elsewhere.id]);
    assert_quiet(&rx_here, "a merge into another space");

    // Editing the other space's metadata neither.
    fx.store
        .update_space(other, space_meta("Ehrenfeld-Nord"), fx.author)
        .unwrap();
    // (That space's own feed may be re-run: its result is unchanged.)
    assert_unchanged_if_called(&rx_there, &[merged.id, elsewhere.id]);
    assert_quiet(&rx_here, "another space's metadata");

    // A new space neither.
    fx.other_space("Sülz");
    assert_quiet(&rx_here, "a new space");

    // A write here is seen here, not there.
    let here = fx.post("In Nippes", "");
    assert_eq!(feed_ids(&next(&rx_here)), vec![here.id]);
    assert_quiet(&rx_there, "a write to this space");
}

#[test]
fn dropping_or_cancelling_a_subscription_stops_calls() {
    let fx = Fixture::new();
    let (dropped, rx_dropped) = watch(&fx.store, feed_query(&fx));
    let (cancelled, rx_cancelled) = watch(&fx.store, feed_query(&fx));
    let (kept, rx_kept) = watch(&fx.store, feed_query(&fx));
    for rx in [&rx_dropped, &rx_cancelled, &rx_kept] {
        assert!(feed_ids(&next(rx)).is_empty());
    }
    let a = fx.post("Eins", "");
    for rx in [&rx_dropped, &rx_cancelled, &rx_kept] {
        assert_eq!(feed_ids(&next(rx)), vec![a.id]);
    }

    drop(dropped);
    cancelled.cancel();
    let b = fx.post("Zwei", "");
    assert_eq!(feed_ids(&next(&rx_kept)), vec![b.id, a.id]);
    assert_quiet(&rx_dropped, "after drop");
    assert_quiet(&rx_cancelled, "after cancel");
    // The listeners themselves are released (their senders are gone).
    let deadline = Instant::now() + WAIT;
    for rx in [&rx_dropped, &rx_cancelled] {
        loop {
            match rx.try_recv() {
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => panic!("listener not released: {other:?}"),
            }
        }
    }
    let c = fx.post("Drei", "");
    assert_eq!(feed_ids(&next(&rx_kept)), vec![c.id, b.id, a.id]);
    drop(kept);
    fx.post("Vier", "");
    assert_quiet(&rx_kept, "after the last subscription was dropped");
}

#[test]
fn a_subscription_cancelled_while_another_listener_runs_is_not_called_again() {
    let fx = Fixture::new();
    // Both listeners block on their second call until released, and report who entered.
    let (entered_tx, entered_rx) = mpsc::channel::<usize>();
    let mut releases = Vec::new();
    let mut calls = Vec::new();
    let mut subs = Vec::new();
    for who in 0..2 {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let entered_tx = Mutex::new(entered_tx.clone());
        let (call_tx, call_rx) = mpsc::channel::<()>();
        let seen = Mutex::new(0);
        let sub = fx.store.subscribe(feed_query(&fx), move |_| {
            let _ = call_tx.send(());
            let mut seen = seen.lock().unwrap();
            *seen += 1;
            if *seen == 2 {
                let _ = entered_tx.lock().unwrap().send(who);
                let _ = release_rx.lock().unwrap().recv_timeout(WAIT);
            }
        });
        releases.push(release_tx);
        calls.push(call_rx);
        subs.push(Some(sub));
    }
    for rx in &calls {
        rx.recv_timeout(WAIT).expect("initial result");
    }
    fx.post("Neu", "");
    // One listener is now running (and blocked); the other one is cancelled meanwhile.
    let running = entered_rx.recv_timeout(WAIT).expect("a listener was called");
    let other = 1 - running;
    calls[running].recv_timeout(WAIT).unwrap();
    subs[other].take().unwrap().cancel();
    releases[running].send(()).unwrap();
    match calls[other].recv_timeout(QUIET) {
        Err(_) => {}
        Ok(()) => panic!("the listener was called after its subscription was cancelled"),
    }
    let _ = releases[other].send(());
}

#[test]
fn a_panicking_listener_does_not_stop_the_others() {
    let fx = Fixture::new();
    let (panics_tx, panics_rx) = mpsc::channel::<()>();
    let panics_tx = Mutex::new(panics_tx);
    let _panicky = fx.store.subscribe(feed_query(&fx), move |_| {
        let _ = panics_tx.lock().unwrap().send(());
        panic!("a listener bug");
    });
    let (_calm, rx) = watch(&fx.store, feed_query(&fx));
    panics_rx
        .recv_timeout(WAIT)
        .expect("the panicking listener was called");
    assert!(feed_ids(&next(&rx)).is_empty());

    for n in 0..3 {
        let item = fx.post(&format!("Beitrag {n}"), "");
        assert_eq!(feed_ids(&next(&rx))[0], item.id);
        // The panicking listener stays subscribed and is called again.
        panics_rx
            .recv_timeout(WAIT)
            .expect("the panicking listener was called again");
    }
    // New subscriptions still work.
    let (_late, rx_late) = watch(&fx.store, feed_query(&fx));
    assert_eq!(feed_ids(&next(&rx_late)).len(), 3);
    // Writes are unaffected.
    fx.post("Danach", "");
    assert_eq!(feed_ids(&next(&rx)).len(), 4);
    assert_eq!(feed_ids(&next(&rx_late)).len(), 4);
}

#[test]
fn every_kind_of_query_can_be_watched() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let parent = fx.post("Neue Bänke", "Im Park");
    let at = utc(2026, 3, 2, 9, 0); // Monday, 10:00 in Berlin

    let (_s1, search) = watch(
        &fx.store,
        LiveQuery::Search(SearchRequest::new(fx.space, resident, "flohmarkt")),
    );
    let (_s2, detail) = watch(
        &fx.store,
        LiveQuery::Detail {
            item: parent.id,
            viewer: resident,
        },
    );
    let (_s3, viewport) = watch(
        &fx.store,
        LiveQuery::Viewport(ViewportQuery {
            space: fx.space,
            viewer: resident,
            south: 50.93,
            west: 6.94,
            north: 50.95,
            east: 6.97,
            kinds: vec![],
            limit: 100.into(),
            at: None,
        }),
    );
    let (_s4, near) = watch(
        &fx.store,
        LiveQuery::Near(RadiusQuery {
            space: fx.space,
            viewer: resident,
            center: Location::new(50.9413, 6.9583),
            radius_m: 500.0,
            kinds: vec![],
            limit: 100.into(),
            at: None,
        }),
    );
    let (_s5, open) = watch(
        &fx.store,
        LiveQuery::OpenOffers(OpenOffersQuery {
            space: fx.space,
            viewer: resident,
            at: Some(at),
        }),
    );
    let (_s6, events) = watch(
        &fx.store,
        LiveQuery::Events(EventsQuery {
            space: fx.space,
            viewer: resident,
            from: utc(2026, 3, 1, 0, 0),
            to: utc(2026, 4, 1, 0, 0),
            limit: 100.into(),
        }),
    );

    assert_eq!(next(&search), LiveResult::Search(vec![]));
    match next(&detail) {
        LiveResult::Detail(d) => {
            assert_eq!(d.item, parent);
            assert!(d.comments.is_empty());
            assert_eq!(d.history.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&viewport), LiveResult::Viewport(vec![]));
    assert_eq!(next(&near), LiveResult::Near(vec![]));
    assert_eq!(next(&open), LiveResult::OpenOffers(vec![]));
    assert_eq!(next(&events), LiveResult::Events(vec![]));

    let flohmarkt = fx.post("Flohmarkt am Dom", "");
    wait_for(
        &search,
        "the new post",
        |r| matches!(r, LiveResult::Search(hits) if hits.len() == 1 && hits[0].item.id == flohmarkt.id),
    );

    let reply = fx.create_by(PersonId::new(), comment(parent.id, "Endlich!"));
    wait_for(
        &detail,
        "the comment",
        |r| matches!(r, LiveResult::Detail(d) if d.comments.iter().map(|c| c.id).collect::<Vec<_>>() == vec![reply.id]),
    );
    fx.store
        .update_item(
            parent.id,
            &ItemPatch {
                body: Some(LocalizedText::single("de", "Im Park, drei Stück")),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    wait_for(&detail, "the edit in the history", |r| {
        matches!(r, LiveResult::Detail(d) if d.history.len() == 2
            && d.item.content.body.get("de") == Some("Im Park, drei Stück"))
    });

    let dom = fx.create(place("Dom", 50.9413, 6.9583));
    let deutz = fx.create(place("Deutz", 50.9375, 6.9750));
    wait_for(
        &viewport,
        "the Dom",
        |r| matches!(r, LiveResult::Viewport(items) if items.iter().map(|i| i.id).collect::<Vec<_>>() == vec![dom.id]),
    );
    wait_for(
        &near,
        "the Dom",
        |r| matches!(r, LiveResult::Near(found) if found.iter().map(|n| n.item.id).collect::<Vec<_>>() == vec![dom.id]),
    );
    // Moving Deutz next to the Dom brings it into both.
    fx.store
        .update_item(
            deutz.id,
            &ItemPatch {
                location: Some(Location::new(50.9420, 6.9590)),
                ..Default::default()
            },
            fx.author,
        )
        .unwrap();
    wait_for(
        &viewport,
        "both places",
        |r| matches!(r, LiveResult::Viewport(items) if items.len() == 2),
    );
    wait_for(&near, "both places, nearest first", |r| {
        matches!(r, LiveResult::Near(found)
            if found.iter().map(|n| n.item.id).collect::<Vec<_>>() == vec![dom.id, deutz.id])
    });

    let beratung = fx.create(offer(
        "Beratung",
        vec![opening("FREQ=WEEKLY;BYDAY=MO", hm(9, 0), hm(12, 0), None)],
    ));
    fx.create(offer(
        "Dienstags",
        vec![opening("FREQ=WEEKLY;BYDAY=TU", hm(9, 0), hm(12, 0), None)],
    ));
    wait_for(
        &open,
        "the Monday offer",
        |r| matches!(r, LiveResult::OpenOffers(items) if items.iter().map(|i| i.id).collect::<Vec<_>>() == vec![beratung.id]),
    );

    let repair = fx.create(event(
        "Repair-Café",
        local(2026, 3, 5, 19, 0),
        local(2026, 3, 5, 21, 0),
        Some("FREQ=WEEKLY;BYDAY=TH;COUNT=3"),
        vec![],
    ));
    let result = wait_for(
        &events,
        "three occurrences",
        |r| matches!(r, LiveResult::Events(found) if found.len() == 3),
    );
    let LiveResult::Events(found) = result else {
        unreachable!()
    };
    assert!(found.iter().all(|o| o.item.id == repair.id));
    assert_eq!(
        found.iter().map(|o| o.start).collect::<Vec<_>>(),
        vec![
            utc(2026, 3, 5, 18, 0),
            utc(2026, 3, 12, 18, 0),
            utc(2026, 3, 19, 18, 0)
        ]
    );

    // Deleting the commented item makes the detail query fail with NotFound.
    fx.store.delete_item(parent.id, fx.author).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match detail.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Err(Error::NotFound { what: "item", .. })) => break,
            Ok(Ok(_)) => continue,
            other => panic!("expected NotFound after deletion, got {other:?}"),
        }
    }
}

#[test]
fn an_invalid_live_query_reports_its_typed_error() {
    let fx = Fixture::new();
    let (tx, rx) = mpsc::channel();
    let _sub = fx.store.subscribe(
        LiveQuery::Search(SearchRequest::new(fx.space, fx.viewer(Role::Resident), "  ")),
        move |r| {
            let _ = tx.send(r);
        },
    );
    match rx.recv_timeout(WAIT) {
        Ok(Err(Error::Search(_))) => {}
        other => panic!("expected a search error, got {other:?}"),
    }
    let (tx, rx) = mpsc::channel();
    let _sub2 = fx.store.subscribe(
        LiveQuery::Detail {
            item: ItemId::new(),
            viewer: fx.viewer(Role::Resident),
        },
        move |r| {
            let _ = tx.send(r);
        },
    );
    match rx.recv_timeout(WAIT) {
        Ok(Err(Error::NotFound { what: "item", .. })) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    // The notifier keeps working for valid queries.
    let (_ok, rx_ok) = watch(&fx.store, feed_query(&fx));
    assert!(feed_ids(&next(&rx_ok)).is_empty());
    let item = fx.post("Noch da", "");
    assert_eq!(feed_ids(&next(&rx_ok)), vec![item.id]);
}

#[test]
fn bursts_of_writes_end_with_the_latest_state() {
    let fx = Fixture::new();
    let (_sub, rx) = watch(&fx.store, feed_query(&fx));
    assert!(feed_ids(&next(&rx)).is_empty());
    let store = fx.store.clone();
    let space = fx.space;
    let author = fx.author;
    let writer = std::thread::spawn(move || {
        (0..40)
            .map(|n| {
                store
                    .create_item(NewItem::new(space, author, post(&format!("Beitrag {n}"), "")))
                    .unwrap()
                    .id
            })
            .collect::<Vec<_>>()
    });
    let written = writer.join().unwrap();
    let expected: Vec<ItemId> = written.iter().rev().copied().collect();
    let mut calls = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        let result = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the final state arrives")
            .unwrap();
        calls += 1;
        let ids = feed_ids(&result);
        // Every result is a consistent state: a prefix of the writes, newest first.
        assert_eq!(ids[..], expected[expected.len() - ids.len()..]);
        if ids == expected {
            break;
        }
    }
    assert!(calls <= 40, "{calls} calls for 40 commits");
    // The last commit's notice may run the query once more after a run that already saw that
    // commit: such a call shows the same final state, never an older one.
    assert_unchanged_if_called(&rx, &expected);
    assert_quiet(&rx, "after the burst");
}

#[test]
fn a_listener_may_read_and_write_the_store() {
    let fx = Fixture::new();
    let store = fx.store.clone();
    let space = fx.space;
    let author = fx.author;
    let viewer = fx.viewer(Role::Resident);
    let (tx, rx): (Sender<(usize, usize)>, _) = mpsc::channel();
    let wrote = Arc::new(Mutex::new(false));
    let sub = fx.store.subscribe(feed_query(&fx), move |result| {
        let live = feed_ids(&result.unwrap()).len();
        // Reading from inside a listener works ...
        let read = store.feed(&FeedQuery::new(space, viewer)).unwrap().items.len();
        // ... and so does writing, once (its commit calls this listener again).
        let mut wrote = wrote.lock().unwrap();
        if !*wrote && live == 1 {
            *wrote = true;
            store
                .create_item(NewItem::new(space, author, post("Antwort", "")))
                .unwrap();
        }
        let _ = tx.send((live, read));
    });
    let (live, read) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((live, read), (0, 0));
    fx.post("Frage", "");
    let (live, _) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(live, 1);
    let (live, read) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((live, read), (2, 2));
    // Dropping the subscription releases the store clone held by the listener.
    drop(sub);
    assert_quiet_pairs(&rx);
}

fn assert_quiet_pairs(rx: &Receiver<(usize, usize)>) {
    if let Ok(v) = rx.recv_timeout(QUIET) {
        panic!("unexpected call: {v:?}");
    }
}

#[test]
fn a_subscription_may_outlive_its_store() {
    let fx = Fixture::new();
    let (sub, rx) = watch(&fx.store, feed_query(&fx));
    assert!(feed_ids(&next(&rx)).is_empty());
    let Fixture { dir, store, .. } = fx;
    store.close().unwrap();
    // The notifier stops with the store; dropping the handle afterwards is harmless.
    assert_quiet(&rx, "after close");
    drop(sub);
    drop(dir);
}

#[test]
fn a_live_search_sees_writes_that_wait_for_the_search_index() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    // Written before anyone watched: pending when the live search starts. Its *first* result
    // already holds them (a pager takes the first result as its first page). Several rounds,
    // each with fresh pending items: the notifier's first run races the indexing.
    let mut found = Vec::new();
    for round in 0..12 {
        found.push(fx.post(&format!("Sperrmüll am Montag {round}"), "").id);
        let (sub, search) = watch(
            &fx.store,
            LiveQuery::Search(SearchRequest::new(fx.space, resident, "sperrmuell")),
        );
        let LiveResult::Search(hits) = next(&search) else {
            panic!("a live search gives search results");
        };
        let mut ids: Vec<ItemId> = hits.iter().map(|h| h.item.id).collect();
        ids.sort();
        let mut expected = found.clone();
        expected.sort();
        assert_eq!(
            ids, expected,
            "round {round}: the first result misses items written before"
        );
        drop(sub);
    }
    let early = found[0];
    let (_sub, search) = watch(
        &fx.store,
        LiveQuery::Search(SearchRequest::new(fx.space, resident, "sperrmuell")),
    );
    let _first = next(&search);
    // Written while it watches: one item, far from a batch of its own.
    let late = fx.post("Sperrmüll abholen", "");
    wait_for(
        &search,
        "the item written after",
        |r| matches!(r, LiveResult::Search(hits) if hits.len() == 13 && hits.iter().any(|h| h.item.id == late.id) && hits.iter().any(|h| h.item.id == early)),
    );
}

#[test]
fn a_live_search_that_cannot_index_what_waits_hears_why_and_recovers() {
    let fx = Fixture::new();
    let resident = fx.viewer(Role::Resident);
    let early = fx.post("Sperrmüll am Montag", "");
    // Another connection (another process, as far as SQLite can tell) holds the write lock past
    // the store's busy timeout: the live search cannot index the item that waits.
    let blocker = rusqlite::Connection::open(fx.store.path()).expect("open the store file");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let (_sub, search) = watch(
        &fx.store,
        LiveQuery::Search(SearchRequest::new(fx.space, resident, "sperrmuell")),
    );
    match search.recv_timeout(WAIT) {
        Ok(Err(e)) => assert!(matches!(e, Error::Storage(_)), "a storage error, got {e}"),
        other => panic!("the listener should hear why no result comes, got {other:?}"),
    }
    blocker.execute_batch("ROLLBACK").expect("release the write lock");
    drop(blocker);
    // The next write indexes both, and the search runs.
    let late = fx.post("Sperrmüll abholen", "");
    wait_for(
        &search,
        "both items",
        |r| matches!(r, LiveResult::Search(hits) if hits.len() == 2 && [early.id, late.id].iter().all(|id| hits.iter().any(|h| h.item.id == *id))),
    );
}
