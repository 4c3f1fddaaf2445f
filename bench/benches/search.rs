//! Full-text search over the cached 100 000-item store: realistic queries in German, English,
//! Turkish, Arabic and Ukrainian, most of them prefixes still being typed. Each iteration runs
//! the next query of the set. Percentiles: `quartier-bench search`.

use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use quartier_bench::{cached_dataset, only_space, resident_viewer, DatasetSpec, SEARCH_QUERIES};
use quartier_core::query::SearchRequest;
use quartier_core::{Store, StoreOptions};

fn bench_search(c: &mut Criterion) {
    let data = cached_dataset(DatasetSpec::mixed_large()).expect("bench data");
    let store = Store::open(&data.path, StoreOptions::default()).expect("open store");
    let space = only_space(&store).expect("space");
    let viewer = resident_viewer();

    let mut group = c.benchmark_group("search_100k");
    // Flat sampling: iterations take milliseconds to a tenth of a second, and every sample
    // should run a good part of the query set.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let sets: Vec<(&str, Vec<SearchRequest>)> = std::iter::once("all")
        .chain(quartier_bench::words::LANGS)
        .map(|lang| {
            let requests = SEARCH_QUERIES
                .iter()
                .filter(|(l, _)| lang == "all" || *l == lang)
                .map(|(_, q)| SearchRequest::new(space, viewer, *q))
                .collect();
            (lang, requests)
        })
        .collect();
    for (name, requests) in &sets {
        let mut next = 0usize;
        group.bench_function(*name, |b| {
            b.iter(|| {
                let request = &requests[next % requests.len()];
                next += 1;
                store.search(request).expect("search")
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_search(&mut c);
    c.final_summary();
}
