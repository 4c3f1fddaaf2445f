//! Map viewport queries over 100 000 located items (the cached `map` store), with boxes the
//! size of a Köln district as a phone shows it, limit 200; and the same on the mixed store,
//! plus the first feed page there. Percentiles: `quartier-bench viewport`.

use std::time::Duration;

use criterion::Criterion;
use quartier_bench::{cached_dataset, district_viewports, only_space, resident_viewer, DatasetSpec};
use quartier_core::query::{FeedQuery, ViewportQuery};
use quartier_core::{Store, StoreOptions};

fn viewports(store: &Store) -> Vec<ViewportQuery> {
    let space = only_space(store).expect("space");
    district_viewports(500, 0xB0C5)
        .into_iter()
        .map(|(south, west, north, east)| ViewportQuery {
            space,
            viewer: resident_viewer(),
            south,
            west,
            north,
            east,
            kinds: Vec::new(),
            limit: 200.into(),
            at: None,
        })
        .collect()
}

fn bench_viewport(c: &mut Criterion) {
    let map = cached_dataset(DatasetSpec::map_large()).expect("bench data");
    let mixed = cached_dataset(DatasetSpec::mixed_large()).expect("bench data");
    let mut group = c.benchmark_group("viewport_100k");
    group
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    for (name, data) in [("map_store", &map), ("mixed_store", &mixed)] {
        let store = Store::open(&data.path, StoreOptions::default()).expect("open store");
        let queries = viewports(&store);
        let mut next = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                let q = &queries[next % queries.len()];
                next += 1;
                store.viewport(q).expect("viewport")
            })
        });
    }
    group.finish();

    let store = Store::open(&mixed.path, StoreOptions::default()).expect("open store");
    let feed = FeedQuery::new(only_space(&store).expect("space"), resident_viewer());
    let mut group = c.benchmark_group("feed_100k");
    group
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("first_page", |b| b.iter(|| store.feed(&feed).expect("feed")));
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_viewport(&mut c);
    c.final_summary();
}
