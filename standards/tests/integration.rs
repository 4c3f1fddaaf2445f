//! Integration tests of quartier-standards, as one test binary: one link instead of one per file (each weighs
//! about as much as the whole crate and its dependencies). Every file of this folder is a
//! module; run one with `cargo test -p <package> --test integration <module>::`.

mod common;

mod geojson;
mod hsds;
mod ical;
mod vcard;
