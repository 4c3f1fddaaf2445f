//! # quartier-bench
//!
//! Benchmarks of `quartier-core` on realistic, seeded content: a generator of neighbourhood
//! items of every kind in German, English, Turkish, Arabic and Ukrainian (with easy-language
//! variants) placed around Köln, stores of 100 000 such items cached between runs, and the
//! measuring helpers that the criterion benches (`benches/`) and the whole-process bench binary
//! (`src/bin/quartier-bench.rs`) share. See `docs/benchmarks.md`.

pub mod audio;
mod gen;
pub mod geo;
pub mod words;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use automerge::ActorId;
use quartier_core::model::{Item, ItemId, ItemKind, NewItem, PersonId, Role, SpaceId, Viewer};
use quartier_core::store::SCHEMA_VERSION;
use quartier_core::{DocKind, IncomingCreation};
use quartier_core::{Store, StoreOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use gen::{Generator, Mix, AUTHORS};

/// Version of the generated content: bump it whenever the generator's output changes, so that
/// cached stores made by an older generator are not reused.
pub const GENERATOR_VERSION: u32 = 2;

/// The seed of every data set unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x5EED_C0E1;

/// Items in the large data sets.
pub const LARGE: usize = 100_000;

/// Where generated stores are kept: `$QUARTIER_BENCH_DATA`, else `bench-data` in the cargo
/// target directory (`$CARGO_TARGET_DIR` or the workspace's `target`).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUARTIER_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("bench-data")
}

/// A data set: which mix, how many items, which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    pub mix: Mix,
    pub items: usize,
    pub seed: u64,
}

impl DatasetSpec {
    /// 100 000 items of every kind.
    pub fn mixed_large() -> Self {
        Self {
            mix: Mix::Mixed,
            items: LARGE,
            seed: DEFAULT_SEED,
        }
    }

    /// 100 000 located items (places, offers, events, observations, …).
    pub fn map_large() -> Self {
        Self {
            mix: Mix::Located,
            items: LARGE,
            seed: DEFAULT_SEED,
        }
    }

    /// The file name, stamped with everything that makes the content differ.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-seed{:x}-gen{}-schema{}.db",
            self.mix.name(),
            self.items,
            self.seed,
            GENERATOR_VERSION,
            SCHEMA_VERSION
        )
    }
}

/// A generated store on disk.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub spec: DatasetSpec,
    /// What the stamp file says about the content (items per kind, located items, …).
    pub stamp: serde_json::Value,
}

impl Dataset {
    /// Items with a position.
    pub fn located(&self) -> u64 {
        self.stamp["located"].as_u64().unwrap_or(0)
    }
}

/// The store for `spec`, generated now unless a complete one from the same generator and
/// schema version is cached in [`data_dir`]. Generation prints progress to stderr.
pub fn cached_dataset(spec: DatasetSpec) -> quartier_core::Result<Dataset> {
    let dir = data_dir();
    fs::create_dir_all(&dir).map_err(io_error)?;
    let path = dir.join(spec.file_name());
    let stamp_path = stamp_path(&path);
    if let Ok(text) = fs::read_to_string(&stamp_path) {
        if let Ok(stamp) = serde_json::from_str::<serde_json::Value>(&text) {
            if path.exists() {
                return Ok(Dataset { path, spec, stamp });
            }
        }
    }
    // Generate into a scratch name, renamed once complete, so that an interrupted run is never
    // taken for a complete data set.
    let partial = dir.join(format!("{}.partial", spec.file_name()));
    remove_db(&partial);
    remove_db(&path);
    let _ = fs::remove_file(&stamp_path);
    eprintln!(
        "quartier-bench: generating {} ({} items, seed {:#x}) in {}",
        spec.file_name(),
        spec.items,
        spec.seed,
        dir.display()
    );
    let started = Instant::now();
    let stats = {
        let store = Store::open(&partial, StoreOptions::default())?;
        let stats = fill_store(&store, spec, |done, total, elapsed| {
            if done % 10_000 == 0 || done == total {
                let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
                let eta = (total - done) as f64 / rate.max(1e-9);
                eprint!("\r  {done:>7}/{total} items, {rate:>6.0} items/s, about {eta:>4.0} s left   ");
                let _ = std::io::stderr().flush();
            }
        })?;
        eprintln!();
        store.close()?;
        stats
    };
    remove_sidecars(&partial);
    fs::rename(&partial, &path).map_err(io_error)?;
    let stamp = serde_json::json!({
        "generator_version": GENERATOR_VERSION,
        "schema_version": SCHEMA_VERSION,
        "mix": spec.mix.name(),
        "seed": spec.seed,
        "items": spec.items,
        "located": stats.located,
        "per_kind": stats.per_kind,
        "generation_seconds": started.elapsed().as_secs_f64(),
        "bulk_apply_seconds": stats.apply.as_secs_f64(),
        "bulk_apply_items_per_second": spec.items as f64 / stats.apply.as_secs_f64().max(1e-9),
    });
    fs::write(
        &stamp_path,
        serde_json::to_string_pretty(&stamp).unwrap_or_default(),
    )
    .map_err(io_error)?;
    eprintln!(
        "quartier-bench: generated {} in {:.0} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Dataset { path, spec, stamp })
}

fn stamp_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".stamp.json");
    PathBuf::from(name)
}

fn remove_sidecars(db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
}

fn remove_db(db: &Path) {
    let _ = fs::remove_file(db);
    remove_sidecars(db);
}

fn io_error(e: std::io::Error) -> quartier_core::Error {
    quartier_core::Error::Corrupt(format!("bench data: {e}"))
}

/// What [`fill_store`] created.
#[derive(Clone, Debug, Default)]
pub struct FillStats {
    pub space: Option<SpaceId>,
    pub located: u64,
    /// Items per kind name.
    pub per_kind: std::collections::BTreeMap<String, u64>,
    /// Time spent in [`Store::apply_creations`] alone (the store's bulk path), not building forms.
    pub apply: Duration,
}

/// Items applied per [`Store::apply_creations`] call (one transaction each), as an initial
/// sync's page of about a megabyte holds.
pub const FILL_BATCH: usize = 1_000;

/// The creation form of a new item written by the device whose actor is `actor`, as the server
/// would send it in an initial sync.
pub fn creation_form(item: &Item, actor: &ActorId) -> quartier_core::Result<IncomingCreation> {
    let doc_id = item.id.to_string();
    let change = quartier_core::document::new_item_change(item, actor)?;
    let mut doc = automerge::Automerge::new();
    doc.apply_changes([change])
        .map_err(|e| quartier_core::Error::Corrupt(format!("bench item {doc_id}: {e}")))?;
    let creation = quartier_core::document::creation_of(&doc, &doc_id, DocKind::Item)?
        .ok_or_else(|| quartier_core::Error::Corrupt(format!("bench item {doc_id} has no creation form")))?;
    Ok(IncomingCreation {
        doc_id,
        kind: DocKind::Item,
        space: Some(item.space),
        creation,
    })
}

/// Generated items in creation form, batch by batch, as a new member's initial sync brings
/// them: written by the generator's authors on devices of their own (one actor each).
pub struct FormSource {
    gen: Generator,
    space: SpaceId,
    actors: std::collections::HashMap<PersonId, ActorId>,
    parents: Vec<ItemId>,
    /// What the batches so far held.
    pub stats: FillStats,
}

impl FormSource {
    /// Forms of items in `space`, from the generator of `spec`.
    pub fn new(spec: DatasetSpec, space: SpaceId) -> Self {
        let gen = Generator::new(spec.seed, spec.mix);
        let actors = gen.authors().iter().map(|a| (*a, ActorId::random())).collect();
        Self {
            gen,
            space,
            actors,
            parents: Vec::new(),
            stats: FillStats {
                space: Some(space),
                ..FillStats::default()
            },
        }
    }

    /// The next `count` items' forms, built on every core.
    pub fn next_batch(&mut self, count: usize) -> quartier_core::Result<Vec<IncomingCreation>> {
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let item = self
                .gen
                .next_item(self.space, &self.parents)
                .into_item(chrono::Utc::now());
            let kind = item.kind();
            if item.content.location.is_some() {
                self.stats.located += 1;
            }
            *self.stats.per_kind.entry(kind.as_str().to_owned()).or_default() += 1;
            if kind != ItemKind::Comment {
                self.parents.push(item.id);
            }
            items.push(item);
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = count.div_ceil(threads).max(1);
        let actors = &self.actors;
        let forms = std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|item| creation_form(item, &actors[&item.author]))
                            .collect::<quartier_core::Result<Vec<_>>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("form builder"))
                .collect::<quartier_core::Result<Vec<Vec<_>>>>()
        })?;
        Ok(forms.into_iter().flatten().collect())
    }
}

/// Creates a space and `spec.items` generated items in it through the bulk path: forms from a
/// [`FormSource`], [`FILL_BATCH`] per transaction through [`Store::apply_creations`].
/// `progress(done, total, elapsed)` is called after every batch.
pub fn fill_store(
    store: &Store,
    spec: DatasetSpec,
    mut progress: impl FnMut(usize, usize, Duration),
) -> quartier_core::Result<FillStats> {
    let owner = Generator::new(spec.seed, spec.mix).authors()[0];
    let space = store.create_space(Generator::space_meta(), owner)?.id;
    let mut source = FormSource::new(spec, space);
    let started = Instant::now();
    let mut done = 0;
    while done < spec.items {
        let count = FILL_BATCH.min(spec.items - done);
        let forms = source.next_batch(count)?;
        let applying = Instant::now();
        store.apply_creations(forms)?;
        source.stats.apply += applying.elapsed();
        done += count;
        progress(done, spec.items, started.elapsed());
    }
    Ok(source.stats)
}

/// A resident who did not write any of the content: what most people see.
pub fn resident_viewer() -> Viewer {
    Viewer::new(
        PersonId::from(uuid::Uuid::from_u128(0x0bad_cafe_0000_4000_8000_0000_0000_0001)),
        Role::Resident,
    )
}

/// The one space of a generated store.
pub fn only_space(store: &Store) -> quartier_core::Result<SpaceId> {
    store
        .spaces()?
        .first()
        .map(|s| s.id)
        .ok_or_else(|| quartier_core::Error::Corrupt("bench store without a space".into()))
}

/// Search strings as people type them, in several languages, most with a prefix still being
/// typed: (language, text).
pub const SEARCH_QUERIES: &[(&str, &str)] = &[
    ("de", "nachbar"),
    ("de", "Nachbarschaftscafé"),
    ("de", "spielpl"),
    ("de", "Tafel"),
    ("de", "beratung"),
    ("de", "deutschk"),
    ("de", "fahrrad werk"),
    ("de", "flohmarkt ehrenfeld"),
    ("de", "kinder"),
    ("de", "sprachcaf"),
    ("de", "hausaufg"),
    ("de", "straßenfest nippes"),
    ("de", "senioren"),
    ("de", "mieterber"),
    ("de", "kostenlos"),
    ("de", "barrierefrei"),
    ("de", "garten"),
    ("de", "Kaffee Kuchen"),
    ("de", "venloer"),
    ("de", "Strasse"),
    ("de", "kalk"),
    ("de", "Sülz"),
    ("de", "\"Repair-Café\""),
    ("de", "hilfe -umzug"),
    ("de", "Hier gibt es"),
    ("en", "bike repair"),
    ("en", "food bank"),
    ("en", "playgr"),
    ("en", "homework"),
    ("en", "language caf"),
    ("en", "volunteer"),
    ("en", "free"),
    ("tr", "komşu"),
    ("tr", "çay"),
    ("tr", "kahve"),
    ("tr", "danışman"),
    ("tr", "çocuk"),
    ("tr", "mahalle"),
    ("tr", "bisiklet"),
    ("ar", "الحي"),
    ("ar", "مقهى"),
    ("ar", "استشارة"),
    ("ar", "الأطفال"),
    ("ar", "الجيران"),
    ("ar", "شاي"),
    ("uk", "сусід"),
    ("uk", "кав"),
    ("uk", "консультац"),
    ("uk", "діти"),
    ("uk", "волонтер"),
    ("uk", "майданчик"),
];

/// A viewport as (south, west, north, east).
pub type Bbox = (f64, f64, f64, f64);

/// `n` map boxes of a district's size (about 2.5 × 1.8 km, a phone map at zoom 14–15) centred
/// around Köln's districts, seeded.
pub fn district_viewports(n: usize, seed: u64) -> Vec<Bbox> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let w = rng.random_range(1_800.0..3_000.0);
            let h = w * 0.7;
            geo::district_box(&mut rng, w, h)
        })
        .collect()
}

/// Opens a database like the store opens its writer (WAL, synchronous FULL) with one table for
/// JSON rows: the baseline a store write is compared with.
pub fn open_bare_db(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, json TEXT NOT NULL)")?;
    Ok(conn)
}

/// The baseline write: `new` as JSON, inserted in its own transaction, durable on return.
pub fn bare_insert(conn: &mut rusqlite::Connection, new: &NewItem) -> rusqlite::Result<()> {
    let json = serde_json::to_string(new).expect("items serialise");
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.prepare_cached("INSERT INTO items (json) VALUES (?1)")?
        .execute([json])?;
    tx.commit()
}

/// Where criterion writes its results: `$CRITERION_HOME`, else `criterion` in the cargo
/// target directory (as criterion itself decides).
pub fn criterion_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
        .join("criterion")
}

/// The median criterion estimated for `group/function` in its latest run, in nanoseconds.
pub fn criterion_median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let text = fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

/// Percentile (0–100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summary of timing samples.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let total: Duration = sorted.iter().sum();
        Summary {
            n: sorted.len(),
            mean: total / sorted.len().max(1) as u32,
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Peak and current resident memory of this process in KiB (`VmHWM`, `VmRSS` of
/// `/proc/self/status`), when the system tells.
pub fn resident_memory_kib() -> (Option<u64>, Option<u64>) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time this process has used so far, every thread's (user and system; `utime` and
/// `stime` of `/proc/self/stat`, in clock ticks of 10 ms), when the system tells: what a
/// figure costs on a phone with fewer free cores than its wall time on this machine shows.
pub fn process_cpu() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which may itself hold spaces, closed by its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quartier_core::model::SpaceId;

    fn items(seed: u64, mix: Mix, n: usize) -> Vec<NewItem> {
        let mut gen = Generator::new(seed, mix);
        let space = SpaceId::from(uuid::Uuid::from_u128(1));
        let parents = [ItemId::from(uuid::Uuid::from_u128(2))];
        (0..n).map(|_| gen.next_item(space, &parents)).collect()
    }

    /// The bench stores are filled through the bulk path: every generated item is there, in
    /// creation form, readable, searchable and buildable.
    #[test]
    fn fill_store_applies_every_item_in_creation_form() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fill.db"), StoreOptions::default()).unwrap();
        let spec = DatasetSpec {
            mix: Mix::Mixed,
            items: FILL_BATCH + 150,
            seed: 7,
        };
        let mut batches = 0;
        let stats = fill_store(&store, spec, |_, _, _| batches += 1).unwrap();
        assert_eq!(batches, 2);
        assert_eq!(stats.per_kind.values().sum::<u64>(), spec.items as u64);
        let docs = store.document_ids().unwrap();
        assert_eq!(docs.len(), spec.items + 1, "every item and the space");
        let (item_doc, _) = docs.iter().find(|(_, k)| *k == DocKind::Item).unwrap();
        assert_eq!(
            store.document_heads(item_doc).unwrap().len(),
            1,
            "builds on demand"
        );
        // Every generated item's form leaves its state to the projection.
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let (largest, forms): (i64, i64) = conn
            .query_row(
                "SELECT max(length(creation)), count(creation) FROM documents WHERE kind = 'item'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(forms, spec.items as i64);
        assert!(
            largest < 250,
            "a stored form without its state: {largest} bytes at most"
        );
        let space = only_space(&store).unwrap();
        let mut feed = quartier_core::query::FeedQuery::new(space, resident_viewer());
        feed.limit = 1000.into();
        assert!(!store.feed(&feed).unwrap().items.is_empty());
        let hits = store
            .search(&quartier_core::query::SearchRequest::new(
                space,
                resident_viewer(),
                "nachbar",
            ))
            .unwrap();
        assert!(!hits.is_empty(), "the generated German content is searchable");
    }

    #[test]
    fn same_seed_same_items() {
        assert_eq!(items(7, Mix::Mixed, 300), items(7, Mix::Mixed, 300));
        assert_ne!(items(7, Mix::Mixed, 50), items(8, Mix::Mixed, 50));
    }

    #[test]
    fn every_generated_item_is_valid() {
        for mix in [Mix::Mixed, Mix::Located] {
            for (i, new) in items(42, mix, 3_000).iter().enumerate() {
                if let Err(e) = new.content.validate() {
                    panic!("item {i} of {mix:?} is invalid: {e}\n{new:#?}");
                }
            }
        }
    }

    #[test]
    fn every_kind_and_language_occurs() {
        let all = items(3, Mix::Mixed, 3_000);
        for kind in ItemKind::ALL {
            assert!(all.iter().any(|n| n.content.details.kind() == *kind), "no {kind}");
        }
        for lang in words::LANGS.iter().chain([&words::EASY_TAG]) {
            assert!(
                all.iter().any(|n| n.content.title.get(lang).is_some()),
                "no title in {lang}"
            );
        }
        let map = items(3, Mix::Located, 1_000);
        assert!(map.iter().all(|n| n.content.location.is_some()));
    }

    #[test]
    fn positions_cluster_around_koeln() {
        for new in items(5, Mix::Located, 2_000) {
            let loc = new.content.location.expect("located");
            let d = quartier_core::model::haversine_m(geo::CENTRE.0, geo::CENTRE.1, loc.lat, loc.lon);
            assert!(d < 20_000.0, "{loc:?} is {d} m from the centre");
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
    }

    #[test]
    fn every_search_query_parses() {
        for (_, q) in SEARCH_QUERIES {
            quartier_core::search::SearchQuery::parse(q).expect("query parses");
        }
    }
}
