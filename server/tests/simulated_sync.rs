//! Sync over a simulated network, in one process: three devices and a real server database
//! (`sim`), random schedules of writes, syncs, timeouts and a network that delays, drops,
//! duplicates, reorders and refuses (`429` with `Retry-After`, `503`) messages, under a virtual
//! clock. Properties, for every schedule:
//!
//! - it converges: once the network is perfect again, every device and the server hold the
//!   same documents with the same heads, and no outbox holds anything;
//! - nothing acknowledged is lost: every change whose acknowledgement a device applied is on
//!   the server and on every device;
//! - no change is sent twice once acknowledged: a device never pushes a change again after
//!   applying its acknowledgement (a duplicate the network makes is the network's).
//!
//! The schedule comes from proptest. The RNG seed is printed at the start (shown on failure);
//! rerun a failure with `PROPTEST_RNG_SEED=<seed>`, and raise the number of schedules with
//! `PROPTEST_CASES=<n>`.

mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use quartier_core::sync::SyncReport;
use sim::{Fate, Step, World};

const DEVICES: usize = 3;
const SLOTS: usize = 4;

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Deliver),
        2 => Just(Fate::Drop),
        2 => Just(Fate::Duplicate),
        1 => (1u8..30).prop_map(Fate::RateLimit),
        1 => Just(Fate::Unavailable),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..DEVICES, 0..SLOTS, 0usize..16).prop_map(|(device, slot, word)| Step::Write { device, slot, word }),
        3 => (0..DEVICES).prop_map(|device| Step::Sync { device }),
        8 => (any::<usize>(), fate()).prop_map(|(pick, fate)| Step::Network { pick, fate }),
        1 => (0..DEVICES).prop_map(|device| Step::Timeout { device }),
        1 => (0u16..5000).prop_map(|ms| Step::Tick { ms }),
    ]
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
    eprintln!("simulated sync: {cases} schedules, rerun with PROPTEST_RNG_SEED={seed}");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // The seed above reproduces a run; no regression files in the source tree.
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

#[test]
fn every_schedule_converges_loses_nothing_acknowledged_and_never_resends_it() {
    let mut runner = TestRunner::new(config());
    let strategy = prop::collection::vec(step(), 1..60);
    // What the schedules did, so that a run that tested nothing shows.
    let acknowledged = AtomicUsize::new(0);
    let result = runner.run(&strategy, |steps| {
        let mut world = World::new(DEVICES, SLOTS);
        for step in &steps {
            world.run(step);
        }
        acknowledged.fetch_add(world.acknowledged.len(), Ordering::Relaxed);
        let last = world.settle();
        check(&world, &last)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "simulated sync: {} acknowledgements applied under faults",
        acknowledged.load(Ordering::Relaxed)
    );
}

/// The three properties, on a settled world (`last`: the sync that ended settling).
fn check(world: &World, last: &SyncReport) -> Result<(), TestCaseError> {
    prop_assert!(
        last.pushed == 0 && last.received == 0,
        "a sync after settling still moved changes: {:?}",
        last
    );
    prop_assert!(
        world.sent_after_ack.is_empty(),
        "changes pushed again after their acknowledgement: {:?}",
        world.sent_after_ack
    );
    let server = world.server.heads(world.space);
    for device in 0..DEVICES {
        prop_assert_eq!(
            world.devices[device].store.sync_outbox_len().expect("outbox"),
            0,
            "device {} still has changes to push",
            device
        );
        prop_assert_eq!(
            &world.device_heads(device),
            &server,
            "device {} differs from the server",
            device
        );
    }
    for (doc, hash) in &world.acknowledged {
        prop_assert!(
            world.server.has_change(hash),
            "acknowledged change of {} missing on the server",
            doc
        );
    }
    for device in 0..DEVICES {
        let held = world.device_changes(device);
        for (doc, hash) in &world.acknowledged {
            prop_assert!(
                held.contains(hash),
                "acknowledged change of {} missing on device {}",
                doc,
                device
            );
        }
    }
    Ok(())
}

/// Found by the property above: a device's answer from an earlier session, still in the
/// network, was taken for the answer to the first request of its next session (both were
/// request 0), whose outbox entries its acknowledgements then removed although the server never
/// had them. Request ids now carry the session's number.
#[test]
fn a_late_answer_from_an_earlier_session_acknowledges_nothing_of_the_next() {
    use Fate::*;
    use Step::*;
    let steps = [
        Write {
            device: 2,
            slot: 0,
            word: 0,
        },
        Sync { device: 2 },
        // The server gets the request twice: two answers.
        Network {
            pick: 0,
            fate: Duplicate,
        },
        Network {
            pick: 0,
            fate: Deliver,
        },
        // One answer ends the session; the other stays in the network.
        Network {
            pick: 0,
            fate: Deliver,
        },
        Write {
            device: 2,
            slot: 0,
            word: 1,
        },
        Sync { device: 2 },
        // The new session's request is lost; the old answer arrives.
        Network { pick: 1, fate: Drop },
        Network {
            pick: 0,
            fate: Deliver,
        },
    ];
    let mut world = World::new(DEVICES, SLOTS);
    for step in &steps {
        world.run(step);
    }
    let last = world.settle();
    if let Err(e) = check(&world, &last) {
        panic!("{e}");
    }
}
