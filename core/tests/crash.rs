//! Durability under `kill -9`: a child process writes in a loop and is killed with SIGKILL at
//! random moments, many times. After each kill the store must open, pass `integrity_check`, and
//! hold every write whose call had returned (the child reports each write on stdout only after
//! the call returned), the last acknowledged update of each item exactly.
//!
//! The child is this test binary itself, re-run on the ignored test `child_writer` with the
//! store's path in an environment variable.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use quartier_core::model::*;
use quartier_core::query::FeedQuery;
use quartier_core::{Store, StoreOptions};

const STORE_ENV: &str = "QUARTIER_CRASH_STORE";
const SPACE_ENV: &str = "QUARTIER_CRASH_SPACE";
const AUTHOR_ENV: &str = "QUARTIER_CRASH_AUTHOR";
const SEED_ENV: &str = "QUARTIER_CRASH_SEED";
const ROUNDS: usize = 25;
/// A child that has not written anything after this long is a failure, not a slow machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn title_of(n: u64) -> LocalizedText {
    LocalizedText::single("de", format!("Stand {n}"))
}

fn number_in(item: &Item) -> u64 {
    item.content
        .title
        .get("de")
        .and_then(|t| t.strip_prefix("Stand "))
        .and_then(|n| n.parse().ok())
        .expect("a title written by the child")
}

/// Every item of the space with the author as viewer (drafts and all).
fn all_items(store: &Store, space: SpaceId, author: PersonId) -> Vec<Item> {
    let mut q = FeedQuery::new(space, Viewer::new(author, Role::Coordinator));
    q.statuses = Status::ALL.to_vec();
    q.limit = 1000.into();
    let mut out = Vec::new();
    loop {
        let page = store.feed(&q).expect("feed");
        out.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return out,
        }
    }
}

/// The writer, run in a child process: creates items and updates their titles with increasing
/// numbers, forever, and reports each write on stdout after it returned. Does nothing in a
/// normal test run.
#[test]
#[ignore = "run by `killed_writers_lose_no_acknowledged_write` in a child process"]
fn child_writer() {
    let Ok(path) = std::env::var(STORE_ENV) else {
        return;
    };
    let env = |name: &str| std::env::var(name).expect("child environment");
    let space: SpaceId = env(SPACE_ENV).parse().expect("space id");
    let author: PersonId = env(AUTHOR_ENV).parse().expect("person id");
    let mut seed: u64 = env(SEED_ENV).parse().expect("seed");
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test child_writer ... " without a line end.
    let mut report = |line: String| {
        writeln!(out, "{line}").and_then(|_| out.flush()).expect("stdout");
    };
    report(String::new());
    let store = Store::open(&path, StoreOptions::default()).expect("child opens the store");
    let mut items: Vec<(ItemId, u64)> = all_items(&store, space, author)
        .iter()
        .map(|i| (i.id, number_in(i)))
        .collect();
    report("ready".into());
    loop {
        if items.is_empty() || random() % 3 == 0 {
            report("begin create".into());
            let mut content = post("Stand 0", "Ein Beitrag, der einen Absturz überleben soll.");
            content.title = title_of(0);
            let item = store
                .create_item(NewItem::new(space, author, content))
                .expect("create");
            report(format!("created {}", item.id));
            items.push((item.id, 0));
        } else {
            let pick = (random() % items.len() as u64) as usize;
            let (id, n) = items[pick];
            let next = n + 1;
            report(format!("begin update {id} {next}"));
            let patch = ItemPatch {
                title: Some(title_of(next)),
                body: Some(LocalizedText::single("de", format!("Fassung {next} des Textes"))),
                ..Default::default()
            };
            store.update_item(id, &patch, author).expect("update");
            report(format!("updated {id} {next}"));
            items[pick].1 = next;
        }
    }
}

/// What the child acknowledged, and the write it had begun but not acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// Item → last acknowledged title number.
    items: BTreeMap<ItemId, u64>,
    in_flight: Option<InFlight>,
    ready: bool,
    writes: usize,
}

enum InFlight {
    Create,
    Update(ItemId, u64),
}

impl Acknowledged {
    fn read(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ready"] => self.ready = true,
            ["begin", "create"] => self.in_flight = Some(InFlight::Create),
            ["begin", "update", id, n] => {
                self.in_flight = Some(InFlight::Update(
                    id.parse().expect("item id"),
                    n.parse().expect("number"),
                ))
            }
            ["created", id] => {
                self.items.insert(id.parse().expect("item id"), 0);
                self.in_flight = None;
                self.writes += 1;
            }
            ["updated", id, n] => {
                let id: ItemId = id.parse().expect("item id");
                let n: u64 = n.parse().expect("number");
                let before = self.items.insert(id, n);
                assert_eq!(before, Some(n - 1), "the child updated an unknown item");
                self.in_flight = None;
                self.writes += 1;
            }
            // libtest's own lines ("running 1 test", "test child_writer ...").
            _ => {}
        }
    }
}

/// Runs the child until it is killed after `delay` (counted from its first write when
/// `after_ready`, from its start otherwise) and returns its complete stdout lines.
fn run_child(
    path: &Path,
    space: SpaceId,
    author: PersonId,
    seed: u64,
    delay: Duration,
    after_ready: bool,
) -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash::child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STORE_ENV, path)
        .env(SPACE_ENV, space.to_string())
        .env(AUTHOR_ENV, author.to_string())
        .env(SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // A last line without its end was cut by the kill: not acknowledged.
                Ok(_) if buf.last() != Some(&b'\n') => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    let _ = tx.send(line.clone());
                    lines.push(line);
                }
            }
        }
        lines
    });
    let start = Instant::now();
    if after_ready {
        // Wait for the first acknowledged write, so that every round kills a writing child.
        loop {
            match rx.recv_timeout(READY_TIMEOUT.saturating_sub(start.elapsed())) {
                Ok(line) if line.starts_with("created") || line.starts_with("updated") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the child wrote nothing within {READY_TIMEOUT:?}");
                }
            }
        }
    }
    std::thread::sleep(delay);
    // SIGKILL on Unix. The child never exits by itself, so it is still running here unless it
    // failed; a failed child shows in its exit status.
    child.kill().expect("kill the child");
    let status = child.wait().expect("wait for the child");
    let lines = reader.join().expect("reader thread");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child ended by itself ({status}): {lines:?}"
        );
    }
    #[cfg(not(unix))]
    let _ = status;
    lines
}

#[test]
fn killed_writers_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let author = PersonId::new();
    let space = {
        let store = Store::open(&path, StoreOptions::default()).expect("open");
        let space = store.create_space(space_meta("Kalk"), author).expect("space").id;
        store.close().expect("close");
        space
    };
    let mut seed: u64 = std::env::var("QUARTIER_CRASH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1
        });
    eprintln!("crash test seed: {seed} (rerun with QUARTIER_CRASH_TEST_SEED={seed})");
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    let mut acked = Acknowledged::default();
    // Kills that hit a write between its start and its acknowledgement, and how many of those
    // writes had committed.
    let (mut cut, mut cut_committed) = (0, 0);
    for round in 0..ROUNDS {
        let delay = Duration::from_millis(5 + random() % 146);
        // One round in five may be killed before the first write (during open or recovery).
        let after_ready = round % 5 != 4;
        let lines = run_child(&path, space, author, random() | 1, delay, after_ready);
        acked.in_flight = None;
        for line in &lines {
            acked.read(line);
        }

        let store = Store::open(&path, StoreOptions::default()).expect("the store opens after a kill");
        store.integrity_check().expect("integrity after a kill");
        let found: BTreeMap<ItemId, u64> = all_items(&store, space, author)
            .iter()
            .map(|i| (i.id, number_in(i)))
            .collect();
        for (id, n) in &acked.items {
            let Some(have) = found.get(id) else {
                panic!("round {round}: acknowledged item {id} is missing");
            };
            match acked.in_flight {
                Some(InFlight::Update(busy, next)) if busy == *id => assert!(
                    *have == *n || *have == next,
                    "round {round}: item {id} has update {have}, expected {n} (or {next} in flight)"
                ),
                _ => assert_eq!(
                    have, n,
                    "round {round}: item {id} does not show its last acknowledged update"
                ),
            }
        }
        let unacknowledged: Vec<&ItemId> = found.keys().filter(|id| !acked.items.contains_key(id)).collect();
        match acked.in_flight {
            Some(InFlight::Create) => assert!(
                unacknowledged.len() <= 1,
                "round {round}: more than one unacknowledged item"
            ),
            _ => assert!(
                unacknowledged.is_empty(),
                "round {round}: items nobody wrote: {unacknowledged:?}"
            ),
        }
        if acked.in_flight.is_some() {
            cut += 1;
            let committed = match acked.in_flight {
                Some(InFlight::Update(id, next)) => found.get(&id) == Some(&next),
                _ => !unacknowledged.is_empty(),
            };
            cut_committed += usize::from(committed);
        }
        // An item whose creation committed without being acknowledged is real: adopt it, as
        // the next child will.
        for id in unacknowledged {
            acked.items.insert(*id, found[id]);
        }
        if let Some(InFlight::Update(id, next)) = acked.in_flight {
            if found.get(&id) == Some(&next) {
                acked.items.insert(id, next);
            }
        }
        let detail = acked
            .items
            .keys()
            .next()
            .map(|id| store.item_detail(*id, &Viewer::new(author, Role::Coordinator)));
        if let Some(detail) = detail {
            let detail = detail.expect("detail of an acknowledged item");
            assert_eq!(
                detail.history.len() as u64,
                1 + acked.items[&detail.item.id],
                "history lost a change"
            );
        }
        drop(store);
    }
    assert!(
        acked.writes >= ROUNDS / 2,
        "too few acknowledged writes ({}) to test anything",
        acked.writes
    );
    eprintln!(
        "crash test: {ROUNDS} kills ({cut} during a write, {cut_committed} of those committed), \
         {} acknowledged writes, {} items, {:?}",
        acked.writes,
        acked.items.len(),
        started.elapsed()
    );
}
