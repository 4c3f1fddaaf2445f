//! Creating an item, durable on return: `Store::create_item` against a bare rusqlite insert of
//! the same content as JSON into a database with the same pragmas (WAL, synchronous=FULL), one
//! transaction each, in the same run. Prints the ratio of the medians at the end.

use std::time::Duration;

use criterion::{BatchSize, Criterion};
use quartier_bench::{
    bare_insert, criterion_median_ns, data_dir, open_bare_db, Generator, Mix, DEFAULT_SEED,
};
use quartier_core::model::ItemId;
use quartier_core::{Store, StoreOptions};

const GROUP: &str = "create_item";

fn bench_create(c: &mut Criterion) {
    let root = data_dir().join("tmp");
    std::fs::create_dir_all(&root).expect("bench data dir");
    // Both databases in one directory of the same file system as the cached stores.
    let dir = tempfile::tempdir_in(&root).expect("temp dir");
    let store = Store::open(dir.path().join("store.db"), StoreOptions::default()).expect("open store");
    let mut bare = open_bare_db(&dir.path().join("bare.db")).expect("open bare db");

    // Two generators with one seed: both sides write the same sequence of items.
    let mut gen_store = Generator::new(DEFAULT_SEED, Mix::Mixed);
    let mut gen_bare = Generator::new(DEFAULT_SEED, Mix::Mixed);
    let space = store
        .create_space(Generator::space_meta(), gen_store.authors()[0])
        .expect("space")
        .id;
    // Items that comments can answer, created before measuring.
    let mut seeder = Generator::new(DEFAULT_SEED ^ 1, Mix::Located);
    let parents: Vec<ItemId> = (0..200)
        .map(|_| {
            store
                .create_item(seeder.next_item(space, &[]))
                .expect("create")
                .id
        })
        .collect();

    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("store_create_item", |b| {
        b.iter_batched(
            || gen_store.next_item(space, &parents),
            |new| store.create_item(new).expect("create"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("bare_insert_json", |b| {
        b.iter_batched(
            || gen_bare.next_item(space, &parents),
            |new| bare_insert(&mut bare, &new).expect("insert"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_create(&mut c);
    c.final_summary();
    let store = criterion_median_ns(GROUP, "store_create_item");
    let bare = criterion_median_ns(GROUP, "bare_insert_json");
    if let (Some(store), Some(bare)) = (store, bare) {
        println!(
            "create_item: median Store::create_item {:.3} ms, bare insert {:.3} ms, ratio {:.2}× \
             (targets: ≤ 0.5 ms, ≤ 3×)",
            store / 1e6,
            bare / 1e6,
            store / bare
        );
    }
}
