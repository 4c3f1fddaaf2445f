//! Integration tests of quartier-server, as one test binary: one link instead of one per file (each weighs
//! about as much as the whole crate and its dependencies). Every file of this folder is a
//! module; run one with `cargo test -p <package> --test integration <module>::`.

mod common;
mod sim;

mod blobs;
mod counselling;
mod e2e_sync;
mod faults;
mod help_board;
mod ingest;
mod local_permissions;
mod malformed;
mod membership;
mod moderation;
mod neighbourhood_life;
mod notifications;
mod open_internet;
mod peers;
mod people;
mod permissions;
mod refusals;
mod shared_spaces;
mod simulated_sync;
mod standards;
