//! Writes the seed corpus and the regression inputs made by hand (`src/seeds.rs`). Run by hand:
//!
//! ```sh
//! cargo test -p quartier-fuzz-targets --test integration seeds:: -- --ignored
//! ```

#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    quartier_fuzz_targets::seeds::write_corpus();
}

#[test]
#[ignore = "writes regression inputs; run by hand"]
fn write_nested_maps_regressions() {
    quartier_fuzz_targets::seeds::write_nested_maps_regressions();
}
