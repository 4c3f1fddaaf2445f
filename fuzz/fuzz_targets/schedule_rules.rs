#![no_main]

libfuzzer_sys::fuzz_target!(
    init: quartier_fuzz_targets::init(),
    |data: &[u8]| quartier_fuzz_targets::schedule_rules(data)
);
