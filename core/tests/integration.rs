//! Integration tests of quartier-core, as one test binary: one link instead of one per file (each weighs
//! about as much as the whole crate and its dependencies). Every file of this folder is a
//! module; run one with `cargo test -p <package> --test integration <module>::`.

mod common;

mod convergence;
mod crash;
mod encryption;
mod live;
mod media;
mod media_metadata;
mod migrations;
mod queries;
mod standards;
mod store;
