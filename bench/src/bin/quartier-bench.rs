//! Whole-process figures of quartier-core on the seeded 100 000-item stores: cold and warm
//! start to the first feed page with resident memory, search and viewport latency
//! percentiles, and durable item creation against a bare SQLite insert.
//!
//! ```text
//! cargo run --release -p quartier-bench -- all
//! cargo run --release -p quartier-bench -- open --runs 10 [--cold]
//! cargo run --release -p quartier-bench -- search --rounds 20
//! cargo run --release -p quartier-bench -- viewport --queries 2000
//! cargo run --release -p quartier-bench -- create --items 2000
//! cargo run --release -p quartier-bench -- breakdown
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quartier_bench::{
    bare_insert, cached_dataset, district_viewports, ms, only_space, open_bare_db, resident_memory_kib,
    resident_viewer, Dataset, DatasetSpec, Generator, Mix, Summary, SEARCH_QUERIES,
};
use quartier_core::model::ItemId;
use quartier_core::query::{FeedQuery, SearchRequest, ViewportQuery};
use quartier_core::search::SearchQuery;
use quartier_core::{Store, StoreOptions};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: quartier-bench <command> [options]

commands:
  generate                       make (or reuse) the cached 100 000-item stores
  open [--runs N] [--cold]       fresh processes: open the mixed store, read the first feed page
                                 (--cold drops the OS page cache before each run; needs root)
  search [--rounds N]            search latency over the query set, N rounds (default 20)
  viewport [--queries N]         viewport latency over N district boxes (default 2000)
  open-child PATH [--encrypted]  one open of the store at PATH to its first feed page, in this
                                 process (--encrypted: with a fixed bench store key; a plain
                                 store is encrypted by the first such open)
  create [--items N] [--encrypted]
                                 durable create vs bare insert, N each (default 2000);
                                 --encrypted: also into a store with a store key (SQLCipher)
  update [--items N]             one field edited, durable, vs a bare UPDATE of the JSON row;
                                 N items, each edited twice (default 1000)
  bulk [--items N]               the bulk-apply path alone: N generated creation forms into a
                                 fresh store, 1 000 per transaction (default 20 000)
  ranking                        top 5 of ten queries, bounded vs full BM25 ranking
  breakdown                      where search (and viewport) time goes
  breakdown-viewport             where viewport time goes
  breakdown-create [--items N]   CPU cost of the parts of a create (Automerge, JSON, folding)
  all                            everything, with a summary table
";

fn main() {
    let process_start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("open-child") => open_child(
            process_start,
            args.get(1).map(PathBuf::from),
            args.iter().any(|a| a == "--encrypted"),
        ),
        Some("generate") => generate().map(|_| ()),
        Some("open") => open(flag(&args, "--runs", 10), args.iter().any(|a| a == "--cold")).map(|_| ()),
        Some("search") => search(flag(&args, "--rounds", 20)).map(|_| ()),
        Some("viewport") => viewport(flag(&args, "--queries", 2000)).map(|_| ()),
        Some("create") => create(
            flag(&args, "--items", 2000),
            args.iter().any(|a| a == "--encrypted"),
        )
        .map(|_| ()),
        Some("bulk") => bulk(flag(&args, "--items", 20_000)).map(|_| ()),
        Some("update") => update(flag(&args, "--items", 1000)).map(|_| ()),
        Some("breakdown") => breakdown(),
        Some("ranking") => ranking(),
        Some("breakdown-viewport") => viewport_breakdown(),
        Some("breakdown-create") => create_breakdown(flag(&args, "--items", 1000)),
        Some("all") => all(),
        _ => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("quartier-bench: {e}");
        std::process::exit(1);
    }
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate() -> Res<(Dataset, Dataset)> {
    let mixed = cached_dataset(DatasetSpec::mixed_large())?;
    let map = cached_dataset(DatasetSpec::map_large())?;
    for d in [&mixed, &map] {
        let size = std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{}: {} items, {} located, {:.0} MB, per kind {}",
            d.path.display(),
            d.spec.items,
            d.located(),
            size as f64 / 1e6,
            d.stamp["per_kind"]
        );
    }
    Ok((mixed, map))
}

// ---- open: a fresh process to the first feed page ----

/// One run: the child's own figures and the parent's wall time.
struct OpenRun {
    wall: Duration,
    in_process: Duration,
    hwm_kib: u64,
    rss_kib: u64,
    items: usize,
}

struct OpenResult {
    warm: Vec<OpenRun>,
    cold: Vec<OpenRun>,
    cold_possible: bool,
}

/// The child: opens the store, reads the first page, reports, exits.
/// The store key of `open-child --encrypted` (bench data only: a fixed key, so that a store
/// encrypted by one run opens in the next).
const BENCH_STORE_KEY: [u8; 32] = [0x42; 32];

/// One open to the first feed page, in this process. `--encrypted`: with [`BENCH_STORE_KEY`]
/// (a plain store at `path` is encrypted by the first such open).
fn open_child(process_start: Instant, path: Option<PathBuf>, encrypted: bool) -> Res<()> {
    let path = path.ok_or("open-child needs the store path")?;
    let options = StoreOptions {
        store_key: encrypted.then(|| quartier_core::StoreKey::new(BENCH_STORE_KEY)),
        ..StoreOptions::default()
    };
    let store = Store::open(&path, options)?;
    let space = only_space(&store)?;
    let page = store.feed(&FeedQuery::new(space, resident_viewer()))?;
    let in_process = process_start.elapsed();
    let (hwm, rss) = resident_memory_kib();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "first_page in_process_us={} items={} hwm_kib={} rss_kib={}",
        in_process.as_micros(),
        page.items.len(),
        hwm.unwrap_or(0),
        rss.unwrap_or(0)
    )?;
    out.flush()?;
    Ok(())
}

fn drop_caches() -> bool {
    // SAFETY-free and harmless: sync, then ask the kernel to drop clean page-cache pages.
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn open_once(exe: &Path, store: &Path) -> Res<OpenRun> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .arg("open-child")
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let wall = started.elapsed();
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("child failed: {status}").into());
    }
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(OpenRun {
        wall,
        in_process: Duration::from_micros(field("in_process_us=")),
        hwm_kib: field("hwm_kib="),
        rss_kib: field("rss_kib="),
        items: field("items=") as usize,
    })
}

fn open(runs: usize, cold: bool) -> Res<OpenResult> {
    let data = cached_dataset(DatasetSpec::mixed_large())?;
    let exe = std::env::current_exe()?;
    // One throw-away run so that the binary and the store are in the page cache.
    open_once(&exe, &data.path)?;
    let mut result = OpenResult {
        warm: Vec::new(),
        cold: Vec::new(),
        cold_possible: false,
    };
    for _ in 0..runs {
        result.warm.push(open_once(&exe, &data.path)?);
    }
    if cold {
        for _ in 0..runs.min(5) {
            if !drop_caches() {
                eprintln!("cannot drop the page cache here (not root?): cold runs skipped");
                break;
            }
            result.cold_possible = true;
            result.cold.push(open_once(&exe, &data.path)?);
        }
    }
    println!("\n### Open the 100 000-item store and read the first feed page (fresh process)\n");
    println!("| cache | runs | wall p50 ms | wall max ms | in-process p50 ms | VmHWM max MB | VmRSS max MB | items on page |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, runs) in [("warm", &result.warm), ("cold", &result.cold)] {
        if runs.is_empty() {
            continue;
        }
        let wall = Summary::of(&runs.iter().map(|r| r.wall).collect::<Vec<_>>());
        let inp = Summary::of(&runs.iter().map(|r| r.in_process).collect::<Vec<_>>());
        let hwm = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
        let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            runs.len(),
            ms(wall.p50),
            ms(wall.max),
            ms(inp.p50),
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0,
            runs[0].items
        );
    }
    for (name, runs) in [("warm", &result.warm), ("cold", &result.cold)] {
        let walls: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.1}/{:.1}", ms(r.wall), ms(r.in_process)))
            .collect();
        if !walls.is_empty() {
            println!("\n{name} runs, wall/in-process ms: {}", walls.join(", "));
        }
    }
    Ok(result)
}

// ---- search ----

struct SearchResult {
    all: Summary,
    per_lang: Vec<(String, Summary)>,
    worst: Vec<(String, Summary, usize)>,
}

fn search(rounds: usize) -> Res<SearchResult> {
    let (_data, store, space) = mixed_store()?;
    let viewer = resident_viewer();
    let request = |text: &str| SearchRequest::new(space, viewer, text);
    let mut hits = Vec::new();
    for (_, q) in SEARCH_QUERIES {
        hits.push(store.search(&request(q))?.len());
    }
    let mut per_query: Vec<Vec<Duration>> = vec![Vec::new(); SEARCH_QUERIES.len()];
    for _ in 0..rounds {
        for (i, (_, q)) in SEARCH_QUERIES.iter().enumerate() {
            let req = request(q);
            let t = Instant::now();
            let found = store.search(&req)?;
            per_query[i].push(t.elapsed());
            std::hint::black_box(found);
        }
    }
    let all: Vec<Duration> = per_query.iter().flatten().copied().collect();
    let mut per_lang = Vec::new();
    for lang in quartier_bench::words::LANGS {
        let samples: Vec<Duration> = SEARCH_QUERIES
            .iter()
            .zip(&per_query)
            .filter(|((l, _), _)| *l == lang)
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        per_lang.push((lang.to_owned(), Summary::of(&samples)));
    }
    let mut worst: Vec<(String, Summary, usize)> = SEARCH_QUERIES
        .iter()
        .zip(&per_query)
        .zip(&hits)
        .map(|(((_, q), s), h)| ((*q).to_owned(), Summary::of(s), *h))
        .collect();
    worst.sort_by_key(|(_, s, _)| std::cmp::Reverse(s.p50));
    worst.truncate(8);
    let result = SearchResult {
        all: Summary::of(&all),
        per_lang,
        worst,
    };
    println!(
        "\n### Search over 100 000 items ({} queries × {rounds} rounds, limit 20)\n",
        SEARCH_QUERIES.len()
    );
    println!("| queries | n | mean ms | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    print_row("all", &result.all);
    for (lang, s) in &result.per_lang {
        print_row(lang, s);
    }
    println!("\nSlowest queries (by p50):\n");
    println!("| query | hits | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (q, s, h) in &result.worst {
        println!("| `{q}` | {h} | {:.2} | {:.2} |", ms(s.p50), ms(s.p99));
    }
    Ok(result)
}

fn print_row(name: &str, s: &Summary) {
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        s.n,
        ms(s.mean),
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max)
    );
}

// ---- viewport ----

struct ViewportResult {
    map: Summary,
    mixed: Summary,
    /// `Store::map_pins` on the map store: what a map draws.
    pins: Summary,
    located_map: u64,
    located_mixed: u64,
    mean_returned: f64,
}

fn viewport(queries: usize) -> Res<ViewportResult> {
    let (mixed, map) = (
        cached_dataset(DatasetSpec::mixed_large())?,
        cached_dataset(DatasetSpec::map_large())?,
    );
    let boxes = district_viewports(queries, 0xB0C5);
    let run = |data: &Dataset, pins: bool| -> Res<(Summary, f64)> {
        let store = Store::open(&data.path, StoreOptions::default())?;
        let space = only_space(&store)?;
        let query = |&(south, west, north, east): &(f64, f64, f64, f64)| ViewportQuery {
            space,
            viewer: resident_viewer(),
            south,
            west,
            north,
            east,
            kinds: Vec::new(),
            limit: 200.into(),
            at: None,
        };
        for b in boxes.iter().take(50) {
            store.viewport(&query(b))?;
        }
        let mut samples = Vec::with_capacity(boxes.len());
        let mut returned = 0usize;
        for b in &boxes {
            let q = query(b);
            let t = Instant::now();
            let found = if pins {
                store.map_pins(&q)?.len()
            } else {
                store.viewport(&q)?.len()
            };
            samples.push(t.elapsed());
            returned += found;
        }
        Ok((Summary::of(&samples), returned as f64 / boxes.len() as f64))
    };
    let (map_summary, mean_returned) = run(&map, false)?;
    let (mixed_summary, _) = run(&mixed, false)?;
    let (pins_summary, _) = run(&map, true)?;
    let result = ViewportResult {
        map: map_summary,
        mixed: mixed_summary,
        pins: pins_summary,
        located_map: map.located(),
        located_mixed: mixed.located(),
        mean_returned,
    };
    println!("\n### Viewport queries ({queries} district-sized boxes, limit 200)\n");
    println!("| store | n | mean ms | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    print_row(&format!("map: {} located items", result.located_map), &result.map);
    print_row(
        &format!("mixed: {} located of 100 000", result.located_mixed),
        &result.mixed,
    );
    print_row(
        &format!(
            "map pins (`Store::map_pins`): {} located items",
            result.located_map
        ),
        &result.pins,
    );
    println!(
        "\nItems returned per box on the map store: {:.0} on average.",
        result.mean_returned
    );
    Ok(result)
}

// ---- create ----

struct CreateResult {
    store: Summary,
    bare: Summary,
}

/// The cached 100 000-item mixed store, open, with its one space.
fn mixed_store() -> Res<(Dataset, Store, quartier_core::model::SpaceId)> {
    let data = cached_dataset(DatasetSpec::mixed_large())?;
    let store = Store::open(&data.path, StoreOptions::default())?;
    let space = only_space(&store)?;
    Ok((data, store, space))
}

/// A fresh store in a scratch folder under the bench data (removed when the folder is dropped).
fn scratch_store() -> Res<(tempfile::TempDir, Store)> {
    let dir_root = quartier_bench::data_dir().join("tmp");
    std::fs::create_dir_all(&dir_root)?;
    let dir = tempfile::tempdir_in(&dir_root)?;
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default())?;
    Ok((dir, store))
}

/// A fresh store encrypted at rest (a random store key), beside the plain one of
/// [`scratch_store`] in `dir`.
fn scratch_encrypted_store(dir: &std::path::Path) -> Res<Store> {
    let options = StoreOptions {
        store_key: Some(quartier_core::StoreKey::generate()?),
        ..StoreOptions::default()
    };
    Ok(Store::open(dir.join("encrypted.db"), options)?)
}

/// Editing one field of an item (its title), durable on return, against a bare `UPDATE` of the
/// same JSON row in its own transaction, interleaved; `items` items are created first (not
/// timed), each edited once.
fn update(items: usize) -> Res<()> {
    let (dir, store) = scratch_store()?;
    let mut bare = open_bare_db(&dir.path().join("bare.db"))?;
    let mut gen = Generator::new(quartier_bench::DEFAULT_SEED, Mix::Mixed);
    let space = store.create_space(Generator::space_meta(), gen.authors()[0])?.id;
    let mut created = Vec::with_capacity(items);
    for _ in 0..items {
        let mut new = gen.next_item(space, &[]);
        if new.content.details.parent().is_some() {
            continue;
        }
        new.content.status = quartier_core::model::Status::Published;
        let copy = new.clone();
        let item = store.create_item(new)?;
        bare_insert(&mut bare, &copy)?;
        created.push((item, copy));
    }
    // Two edits of each item: the first also builds the change its creation deferred (an
    // item created here and edited before any sync); the second is an edit in steady state.
    let mut first = (Vec::new(), Vec::new());
    let mut later = (Vec::new(), Vec::new());
    for round in 0..2 {
        let (store_samples, bare_samples) = if round == 0 { &mut first } else { &mut later };
        for (row, (item, copy)) in created.iter_mut().enumerate() {
            let title = quartier_core::model::LocalizedText::single("de", format!("Titel {round} {row}"));
            let patch = quartier_core::model::ItemPatch {
                title: Some(title.clone()),
                ..Default::default()
            };
            let t = Instant::now();
            store.update_item(item.id, &patch, item.author)?;
            store_samples.push(t.elapsed());
            copy.content.title = title;
            let json = serde_json::to_string(&*copy)?;
            let t = Instant::now();
            let tx = bare.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.prepare_cached("UPDATE items SET json = ?1 WHERE id = ?2")?
                .execute(rusqlite::params![json, row as i64 + 1])?;
            tx.commit()?;
            bare_samples.push(t.elapsed());
        }
    }
    // The edits are kept as patches and built when they are first sent: the cost moved there.
    let edits = created.len() * 2;
    let t = Instant::now();
    let sent = store.pending_changes(created.len() * 3 + 1)?;
    let built = t.elapsed();
    println!("\n### Update one field (the title), durable on return\n");
    println!("| write | n | mean ms | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut ratios = Vec::new();
    for (what, (ours, theirs)) in [("first edit after create", &first), ("a later edit", &later)] {
        let (ours, theirs) = (Summary::of(ours), Summary::of(theirs));
        print_row(&format!("Store::update_item (title), {what}"), &ours);
        print_row(&format!("bare UPDATE of the JSON row, {what}"), &theirs);
        ratios.push((what, ours.p50.as_secs_f64() / theirs.p50.as_secs_f64()));
    }
    for (what, ratio) in ratios {
        println!("\nRatio of medians, {what}: {ratio:.2}×");
    }
    println!(
        "\nBuilding them for sending afterwards (`pending_changes`, one transaction, {} changes): \
         {:.0} ms, {:.3} ms per edit (creations included)",
        sent.len(),
        ms(built),
        ms(built) / edits as f64
    );
    Ok(())
}

/// The bulk path alone: `items` generated forms (built first, not timed) applied to a fresh
/// store [`quartier_bench::FILL_BATCH`] per transaction, as an initial sync's pages are.
fn bulk(items: usize) -> Res<f64> {
    let (_dir, store) = scratch_store()?;
    let spec = quartier_bench::DatasetSpec {
        mix: Mix::Mixed,
        items,
        seed: quartier_bench::DEFAULT_SEED,
    };
    let space = store
        .create_space(
            Generator::space_meta(),
            Generator::new(spec.seed, spec.mix).authors()[0],
        )?
        .id;
    let mut source = quartier_bench::FormSource::new(spec, space);
    let mut batches = Vec::new();
    let mut left = items;
    while left > 0 {
        let count = quartier_bench::FILL_BATCH.min(left);
        batches.push(source.next_batch(count)?);
        left -= count;
    }
    let started = Instant::now();
    let cpu_before = quartier_bench::process_cpu();
    let mut samples = Vec::new();
    for batch in batches {
        let t = Instant::now();
        store.apply_creations(batch)?;
        samples.push(t.elapsed());
    }
    let wall = started.elapsed();
    let cpu = quartier_bench::process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let rate = items as f64 / wall.as_secs_f64();
    let batch = Summary::of(&samples);
    println!(
        "\n### Bulk apply: {items} mixed items in creation form, {} per transaction\n",
        quartier_bench::FILL_BATCH
    );
    println!(
        "{rate:.0} items/s ({:.2} s; CPU {}, every thread); per batch p50 {:.1} ms, p99 {:.1} ms; store {:.0} bytes per item",
        wall.as_secs_f64(),
        cpu.map_or("unknown".to_owned(), |cpu| format!("{:.2} s", cpu.as_secs_f64())),
        ms(batch.p50),
        ms(batch.p99),
        std::fs::metadata(store.path())?.len() as f64 / items as f64
    );
    Ok(rate)
}

fn create(items: usize, encrypted: bool) -> Res<CreateResult> {
    let (dir, store) = scratch_store()?;
    let mut bare = open_bare_db(&dir.path().join("bare.db"))?;
    // With a key, the same items also go into an encrypted store, interleaved in the same run.
    let keyed = if encrypted {
        Some(scratch_encrypted_store(dir.path())?)
    } else {
        None
    };
    let mut gen = Generator::new(quartier_bench::DEFAULT_SEED, Mix::Mixed);
    let space = store.create_space(Generator::space_meta(), gen.authors()[0])?.id;
    let keyed_space = match &keyed {
        Some(k) => Some(k.create_space(Generator::space_meta(), gen.authors()[0])?.id),
        None => None,
    };
    let mut parents: Vec<ItemId> = Vec::new();
    let mut keyed_parents: Vec<ItemId> = Vec::new();
    let mut store_samples = Vec::with_capacity(items);
    let mut keyed_samples = Vec::with_capacity(items);
    let mut bare_samples = Vec::with_capacity(items);
    let warm_up = 100;
    for i in 0..warm_up + items {
        let new = gen.next_item(space, &parents);
        let copy = new.clone();
        // Alternate which goes first, so neither always follows the other's fsync.
        let (ts, tb, item) = if i % 2 == 0 {
            let t = Instant::now();
            let item = store.create_item(new)?;
            let ts = t.elapsed();
            let t = Instant::now();
            bare_insert(&mut bare, &copy)?;
            (ts, t.elapsed(), item)
        } else {
            let t = Instant::now();
            bare_insert(&mut bare, &copy)?;
            let tb = t.elapsed();
            let t = Instant::now();
            let item = store.create_item(new)?;
            (t.elapsed(), tb, item)
        };
        if let (Some(keyed), Some(keyed_space)) = (&keyed, keyed_space) {
            // The same item in the encrypted store (its parent is the same position there).
            let mut new = copy.clone();
            new.space = keyed_space;
            if let (Some(at), quartier_core::model::ItemDetails::Comment(comment)) =
                (parents_index(&parents, &copy), &mut new.content.details)
            {
                comment.parent = keyed_parents[at];
            }
            let t = Instant::now();
            let item = keyed.create_item(new)?;
            if i >= warm_up {
                keyed_samples.push(t.elapsed());
            }
            if item.kind() != quartier_core::model::ItemKind::Comment {
                keyed_parents.push(item.id);
            }
        }
        if item.kind() != quartier_core::model::ItemKind::Comment {
            parents.push(item.id);
        }
        if i >= warm_up {
            store_samples.push(ts);
            bare_samples.push(tb);
        }
    }
    let result = CreateResult {
        store: Summary::of(&store_samples),
        bare: Summary::of(&bare_samples),
    };
    println!(
        "\n### Create an item, durable on return ({items} each, interleaved, after {warm_up} warm-up)\n"
    );
    println!("| write | n | mean ms | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    print_row("Store::create_item", &result.store);
    if encrypted {
        print_row(
            "Store::create_item, encrypted store (store key)",
            &Summary::of(&keyed_samples),
        );
    }
    print_row("bare insert of the JSON", &result.bare);
    println!(
        "\nRatio of medians: {:.2}×",
        result.store.p50.as_secs_f64() / result.bare.p50.as_secs_f64()
    );
    if encrypted {
        println!(
            "Encrypted / plain store, medians: {:.2}×",
            Summary::of(&keyed_samples).p50.as_secs_f64() / result.store.p50.as_secs_f64()
        );
    }
    Ok(result)
}

/// The position among `parents` of the parent of `new` (a comment), if it has one.
fn parents_index(parents: &[ItemId], new: &quartier_core::model::NewItem) -> Option<usize> {
    let parent = new.content.details.parent()?;
    parents.iter().position(|p| *p == parent)
}

// ---- breakdown ----

/// The store's search filters for a resident (see `query::Filter`), `?2` space, `?3` viewer,
/// `?4` now.
const STORE_FILTERS: &str = "i.space_id = ?2 AND i.status != 'deleted'
    AND (i.author = ?3 OR (i.status IN ('published', 'expired') AND i.audience IN ('everyone')))
    AND i.kind != 'comment'
    AND (CASE WHEN i.status = 'published' AND i.valid_until < ?4 THEN 'expired' ELSE i.status END) IN ('published')";

/// The bounded ranking against a full BM25 ranking of every match, same filters, same store:
/// the top 5 titles of ten queries (common words, where the bound applies, and rarer ones).
fn ranking() -> Res<()> {
    let (data, store, space) = mixed_store()?;
    let viewer = resident_viewer();
    let conn = rusqlite::Connection::open_with_flags(&data.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let full = format!(
        "SELECT i.item_id FROM items_fts CROSS JOIN items i ON i.id = items_fts.rowid
         WHERE items_fts MATCH ?1 AND {STORE_FILTERS}
         ORDER BY bm25(items_fts, 8.0, 1.0, 3.0), i.id DESC LIMIT 5"
    );
    let title = |item: &quartier_core::model::Item| {
        item.content
            .title
            .iter()
            .next()
            .map(|(_, t)| t.to_owned())
            .unwrap_or_default()
    };
    let now = chrono::Utc::now().timestamp_millis();
    println!("\n### Top 5: full BM25 ranking of every match vs the bounded ranking (newest 500)\n");
    for q in [
        "nachbar",
        "kinder",
        "Strasse",
        "Hier gibt es",
        "beratung",
        "spielpl",
        "komşu",
        "сусід",
        "الحي",
        "Repair-Café",
    ] {
        let fts = SearchQuery::parse(q)?.fts5_match();
        let matches: i64 = conn.query_row(
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1",
            [&fts],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&full)?;
        // The items through the store (their rows are compressed and split over two tables).
        let before = stmt
            .query_map(
                rusqlite::params![fts, space.to_string(), viewer.person.to_string(), now],
                |r| r.get::<_, String>(0),
            )?
            .map(|id| -> Res<String> {
                let id: quartier_core::model::ItemId = id?.parse()?;
                Ok(title(&store.item_detail(id, &viewer)?.item))
            })
            .collect::<Res<Vec<String>>>()?;
        let mut request = SearchRequest::new(space, viewer, q);
        request.limit = 5.into();
        let after: Vec<String> = store.search(&request)?.iter().map(|h| title(&h.item)).collect();
        println!("`{q}` ({matches} matches):\n");
        println!("| # | full ranking | bounded ranking |\n| ---: | --- | --- |");
        for i in 0..before.len().max(after.len()) {
            println!(
                "| {} | {} | {} |",
                i + 1,
                before.get(i).map_or("", String::as_str),
                after.get(i).map_or("", String::as_str)
            );
        }
        println!();
    }
    Ok(())
}

/// Where search time goes, per query: matches, the FTS5 match alone, BM25 ranking alone, ranking
/// with the store's filters (reader page cache of 1 MB as the store sets it, 64 MB, or
/// memory-mapped), ranking only the newest 2 000 matches, and the full `Store::search`.
fn breakdown() -> Res<()> {
    let (data, store, space) = mixed_store()?;
    let viewer = resident_viewer();
    let open = |pragmas: &str| -> Res<rusqlite::Connection> {
        let conn =
            rusqlite::Connection::open_with_flags(&data.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.execute_batch(pragmas)?;
        Ok(conn)
    };
    let small = open("PRAGMA cache_size = -1024; PRAGMA temp_store = MEMORY;")?;
    let large = open("PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")?;
    let mapped =
        open("PRAGMA cache_size = -1024; PRAGMA mmap_size = 1073741824; PRAGMA temp_store = MEMORY;")?;
    let ranked_filtered = format!(
        "SELECT i.id, bm25(items_fts, 8.0, 1.0, 3.0) AS score
         FROM items_fts JOIN items i ON i.id = items_fts.rowid
         WHERE items_fts MATCH ?1 AND {STORE_FILTERS} ORDER BY score LIMIT 20"
    );
    // Ranks only the newest matches: FTS5 walks its doclists newest first and stops; CROSS
    // JOIN keeps SQLite from scanning `items` first.
    let newest = |n: usize| {
        format!(
            "SELECT i.id, f.score FROM
               (SELECT rowid, bm25(items_fts, 8.0, 1.0, 3.0) AS score FROM items_fts
                WHERE items_fts MATCH ?1 ORDER BY rowid DESC LIMIT {n}) f
             CROSS JOIN items i ON i.id = f.rowid
             WHERE {STORE_FILTERS} ORDER BY f.score LIMIT 20"
        )
    };
    let variants: Vec<(&str, &rusqlite::Connection, String)> = vec![
        (
            "count(*) MATCH",
            &small,
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1".to_owned(),
        ),
        (
            "BM25 top 20, no filters",
            &small,
            "SELECT rowid, bm25(items_fts, 8.0, 1.0, 3.0) AS score FROM items_fts
             WHERE items_fts MATCH ?1 ORDER BY score LIMIT 20"
                .to_owned(),
        ),
        ("BM25 + filters, cache 1 MB", &small, ranked_filtered.clone()),
        ("BM25 + filters, cache 64 MB", &large, ranked_filtered.clone()),
        ("BM25 + filters, mmap", &mapped, ranked_filtered),
        ("newest 2000 ranked + filters", &small, newest(2000)),
        ("newest 500 ranked + filters", &small, newest(500)),
    ];
    let runs = 7;
    let median = |f: &mut dyn FnMut() -> Res<()>| -> Res<Duration> {
        f()?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            f()?;
            samples.push(t.elapsed());
        }
        Ok(Summary::of(&samples).p50)
    };
    println!("\n### Search breakdown (median of {runs} runs per query, ms)\n");
    let mut header = "| query | matches |".to_owned();
    for (name, _, _) in &variants {
        header.push_str(&format!(" {name} |"));
    }
    println!("{header} Store::search |");
    println!("| --- | ---: |{} ---: |", " ---: |".repeat(variants.len()));
    let mut columns: Vec<Vec<Duration>> = vec![Vec::new(); variants.len() + 1];
    let now = chrono::Utc::now().timestamp_millis();
    for (_, q) in SEARCH_QUERIES {
        let fts = SearchQuery::parse(q)?.fts5_match();
        let params = [
            rusqlite::types::Value::Text(fts.clone()),
            rusqlite::types::Value::Text(space.to_string()),
            rusqlite::types::Value::Text(viewer.person.to_string()),
            rusqlite::types::Value::Integer(now),
        ];
        let matches: i64 = small.query_row(
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1",
            [&fts],
            |r| r.get(0),
        )?;
        let mut row = format!("| `{q}` | {matches} |");
        for (i, (_, conn, sql)) in variants.iter().enumerate() {
            let t = median(&mut || {
                let mut stmt = conn.prepare_cached(sql)?;
                let n = stmt.parameter_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params.iter().take(n)), |r| {
                    r.get::<_, i64>(0)
                })?;
                std::hint::black_box(rows.count());
                Ok(())
            })?;
            columns[i].push(t);
            row.push_str(&format!(" {:.2} |", ms(t)));
        }
        let t = median(&mut || {
            std::hint::black_box(store.search(&SearchRequest::new(space, viewer, *q))?);
            Ok(())
        })?;
        columns[variants.len()].push(t);
        println!("{row} {:.2} |", ms(t));
    }
    print_percentiles(&columns, 1);
    viewport_breakdown()
}

/// Rows of p50 and p99 (over queries, boxes or items) per column, after `blank` empty cells.
fn print_percentiles(columns: &[Vec<Duration>], blank: usize) {
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        let mut row = format!("| **{label}** |{}", " |".repeat(blank));
        for c in columns {
            let mut sorted = c.clone();
            sorted.sort();
            row.push_str(&format!(
                " **{:.2}** |",
                ms(quartier_bench::percentile(&sorted, p))
            ));
        }
        println!("{row}");
    }
}

/// Where viewport time goes on the map store: the R*Tree and filter SQL reading ids only,
/// reading the JSON too, and the full `Store::viewport` (JSON decoded into items).
fn viewport_breakdown() -> Res<()> {
    let data = cached_dataset(DatasetSpec::map_large())?;
    let store = Store::open(&data.path, StoreOptions::default())?;
    let space = only_space(&store)?;
    let viewer = resident_viewer();
    let conn = rusqlite::Connection::open_with_flags(&data.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.execute_batch("PRAGMA cache_size = -1024;")?;
    // The JSON lives in `item_json` since schema 14 (light rows).
    let sql = |columns: &str| {
        format!(
            "SELECT {columns} FROM items_geo g CROSS JOIN items i ON i.id = g.id
             LEFT JOIN item_json j ON j.id = i.id
             WHERE g.min_lat <= ?5 AND g.max_lat >= ?6 AND g.min_lon <= ?7 AND g.max_lon >= ?8
               AND {} LIMIT 200",
            STORE_FILTERS.replace("i.kind != 'comment'", "i.kind != 'comment' AND ?1 IS NOT NULL")
        )
    };
    let (ids, json) = (sql("i.id"), sql("j.json"));
    let boxes = district_viewports(300, 0xB0C5);
    let mut columns: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    let now = chrono::Utc::now().timestamp_millis();
    for round in 0..2 {
        for &(south, west, north, east) in &boxes {
            let params = rusqlite::params![
                1,
                space.to_string(),
                viewer.person.to_string(),
                now,
                north,
                south,
                east,
                west
            ];
            let mut times = Vec::new();
            for sql in [&ids, &json] {
                let t = Instant::now();
                let mut stmt = conn.prepare_cached(sql)?;
                let n = stmt
                    .query_map(params, |r| r.get::<_, rusqlite::types::Value>(0))?
                    .count();
                std::hint::black_box(n);
                times.push(t.elapsed());
            }
            let q = ViewportQuery {
                space,
                viewer,
                south,
                west,
                north,
                east,
                kinds: Vec::new(),
                limit: 200.into(),
                at: None,
            };
            let t = Instant::now();
            std::hint::black_box(store.viewport(&q)?);
            times.push(t.elapsed());
            if round == 1 {
                for (c, t) in columns.iter_mut().zip(times) {
                    c.push(t);
                }
            }
        }
    }
    println!(
        "\n### Viewport breakdown, map store ({} boxes, limit 200, ms)\n",
        boxes.len()
    );
    println!("| | SQL, ids only | SQL, with JSON | Store::viewport |");
    println!("| --- | ---: | ---: | ---: |");
    print_percentiles(&columns, 0);
    Ok(())
}

// ---- create breakdown ----

/// Writes a JSON value into a fresh Automerge map one operation per node, as the core's
/// `document::json` does for a new document (item bodies as text objects).
fn am_put(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &automerge::ObjId,
    key: &str,
    value: &serde_json::Value,
    in_body: bool,
) -> Res<()> {
    use automerge::transaction::Transactable;
    use automerge::ObjType;
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            let child = tx.put_object(obj, key, ObjType::Map)?;
            for (k, v) in map {
                am_put(tx, &child, k, v, key == "body" && obj == &automerge::ROOT)?;
            }
        }
        serde_json::Value::Array(items) => {
            let list = tx.put_object(obj, key, ObjType::List)?;
            for (i, v) in items.iter().enumerate() {
                match v {
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        let child = tx.insert_object(&list, i, ObjType::Map)?;
                        if let serde_json::Value::Object(map) = v {
                            for (k, v) in map {
                                am_put(tx, &child, k, v, false)?;
                            }
                        }
                    }
                    scalar => tx.insert(&list, i, am_scalar(scalar))?,
                }
            }
        }
        serde_json::Value::String(text) if in_body => {
            let t = tx.put_object(obj, key, ObjType::Text)?;
            tx.update_text(&t, text)?;
        }
        scalar => tx.put(obj, key, am_scalar(scalar))?,
    }
    Ok(())
}

fn am_scalar(value: &serde_json::Value) -> automerge::ScalarValue {
    match value {
        serde_json::Value::Bool(b) => automerge::ScalarValue::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => automerge::ScalarValue::Int(i),
            None => automerge::ScalarValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => automerge::ScalarValue::Str(s.as_str().into()),
        _ => automerge::ScalarValue::Null,
    }
}

/// The same JSON as a hydrate value, for `init_root_from_hydrate` (one batch for the document).
fn hydrate(value: &serde_json::Value, body: bool) -> Option<automerge::hydrate::Value> {
    use automerge::hydrate::Value as H;
    Some(match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Object(map) => H::Map(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), hydrate(v, k == "body")?)))
                .collect::<std::collections::HashMap<String, H>>()
                .into(),
        ),
        serde_json::Value::Array(items) => H::List(
            items
                .iter()
                .filter_map(|v| hydrate(v, false))
                .collect::<Vec<_>>()
                .into(),
        ),
        serde_json::Value::String(s) if body => H::text(automerge::TextEncoding::platform_default(), s),
        scalar => H::Scalar(am_scalar(scalar)),
    })
}

/// CPU cost of the parts of `Store::create_item`, on generated items, without the disk: the
/// Automerge change built one operation per JSON node (as the core does) or in one batch, the
/// change read back, the projection JSON and the text folding for FTS.
fn create_breakdown(items: usize) -> Res<()> {
    use automerge::transaction::{CommitOptions, Transactable};
    let mut gen = Generator::new(quartier_bench::DEFAULT_SEED, Mix::Mixed);
    let space = quartier_core::model::SpaceId::new();
    let parents = [ItemId::new()];
    let news: Vec<_> = (0..items).map(|_| gen.next_item(space, &parents)).collect();
    let mut cols: Vec<Vec<Duration>> = vec![Vec::new(); 6];
    for new in &news {
        let t = Instant::now();
        let json = serde_json::to_value(new)?;
        cols[0].push(t.elapsed());

        let t = Instant::now();
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        if let serde_json::Value::Object(map) = &json {
            for (k, v) in map {
                am_put(&mut tx, &automerge::ROOT, k, v, false)?;
            }
        }
        tx.commit_with(CommitOptions::default().with_message("created".to_owned()));
        cols[1].push(t.elapsed());
        let t = Instant::now();
        let change = doc.get_last_local_change().ok_or("no change")?;
        cols[2].push(t.elapsed());
        std::hint::black_box(change.raw_bytes().len());

        let t = Instant::now();
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        if let Some(automerge::hydrate::Value::Map(map)) = hydrate(&json, false) {
            tx.init_root_from_hydrate(&map)?;
        }
        tx.commit_with(CommitOptions::default().with_message("created".to_owned()));
        cols[3].push(t.elapsed());
        std::hint::black_box(doc.get_last_local_change().map(|c| c.raw_bytes().len()));

        let t = Instant::now();
        std::hint::black_box(serde_json::to_string(new)?);
        cols[4].push(t.elapsed());

        let t = Instant::now();
        let c = &new.content;
        std::hint::black_box(quartier_core::search::fold(&c.title.joined()));
        std::hint::black_box(quartier_core::search::fold(&c.body.joined()));
        cols[5].push(t.elapsed());
    }
    println!("\n### Create breakdown: CPU per item, no disk ({items} generated items, ms)\n");
    println!(
        "| | to JSON value | Automerge, op per node | get_last_local_change | Automerge, init_root_from_hydrate | projection JSON | fold title+body |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    print_percentiles(&cols, 0);
    wal_pages_per_write()
}

/// WAL frames (pages) one durable write appends: `Store::create_item` against the bare insert,
/// read from the growth of the `-wal` files over the first writes (before any checkpoint).
fn wal_pages_per_write() -> Res<()> {
    let root = quartier_bench::data_dir().join("tmp");
    std::fs::create_dir_all(&root)?;
    let dir = tempfile::tempdir_in(&root)?;
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default())?;
    let mut bare = open_bare_db(&dir.path().join("bare.db"))?;
    let mut gen = Generator::new(quartier_bench::DEFAULT_SEED, Mix::Mixed);
    let space = store.create_space(Generator::space_meta(), gen.authors()[0])?.id;
    let wal = |name: &str| std::fs::metadata(dir.path().join(format!("{name}-wal"))).map_or(0, |m| m.len());
    let frame = 4096 + 24;
    let (store_before, bare_before) = (wal("store.db"), wal("bare.db"));
    let n = 40;
    let mut parents: Vec<ItemId> = Vec::new();
    for _ in 0..n {
        let new = gen.next_item(space, &parents);
        bare_insert(&mut bare, &new)?;
        parents.push(store.create_item(new)?.id);
    }
    let store_pages = (wal("store.db") - store_before) as f64 / frame as f64 / n as f64;
    let bare_pages = (wal("bare.db") - bare_before) as f64 / frame as f64 / n as f64;
    println!(
        "\nWAL pages written per durable write (first {n} writes): Store::create_item {store_pages:.1}, \
         bare insert {bare_pages:.1}"
    );
    Ok(())
}

// ---- all ----

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn all() -> Res<()> {
    generate()?;
    let create = create(2000, false)?;
    let search = search(20)?;
    let viewport = viewport(2000)?;
    let open = open(10, true)?;
    let ratio = create.store.p50.as_secs_f64() / create.bare.p50.as_secs_f64();
    let warm_wall = Summary::of(&open.warm.iter().map(|r| r.wall).collect::<Vec<_>>());
    let cold_wall = Summary::of(&open.cold.iter().map(|r| r.wall).collect::<Vec<_>>());
    let hwm = open
        .warm
        .iter()
        .chain(&open.cold)
        .map(|r| r.hwm_kib)
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    println!("\n## Summary\n");
    println!("| target | measured | verdict |");
    println!("| --- | --- | --- |");
    println!(
        "| create an item: median ≤ 0.5 ms | median {:.3} ms (p99 {:.2} ms) | {} |",
        ms(create.store.p50),
        ms(create.store.p99),
        verdict(ms(create.store.p50) <= 0.5)
    );
    println!(
        "| create an item: ≤ 2× bare insert | bare median {:.3} ms, ratio {ratio:.2}× | {} |",
        ms(create.bare.p50),
        verdict(ratio <= 2.0)
    );
    println!(
        "| search 100 000 items: p50 ≤ 3 ms | p50 {:.2} ms | {} |",
        ms(search.all.p50),
        verdict(ms(search.all.p50) <= 3.0)
    );
    println!(
        "| search 100 000 items: p99 ≤ 15 ms | p99 {:.2} ms | {} |",
        ms(search.all.p99),
        verdict(ms(search.all.p99) <= 15.0)
    );
    println!(
        "| map pins over 100 000 places: p50 ≤ 1.5 ms, p99 ≤ 5 ms | p50 {:.2} ms, p99 {:.2} ms (whole items: p50 {:.2} ms) | {} |",
        ms(viewport.pins.p50),
        ms(viewport.pins.p99),
        ms(viewport.map.p50),
        verdict(ms(viewport.pins.p50) <= 1.5 && ms(viewport.pins.p99) <= 5.0)
    );
    let cold_text = if open.cold_possible {
        format!(", cold p50 {:.1} ms", ms(cold_wall.p50))
    } else {
        ", cold not measurable".to_owned()
    };
    println!(
        "| open + first feed page: ≤ 100 ms | warm p50 {:.1} ms{cold_text} | {} |",
        ms(warm_wall.p50),
        verdict(ms(warm_wall.p50) <= 100.0 && (!open.cold_possible || ms(cold_wall.p50) <= 100.0))
    );
    println!(
        "| open + first feed page: resident memory ≤ 60 MB | VmHWM max {hwm:.1} MB | {} |",
        verdict(hwm <= 60.0)
    );
    Ok(())
}
