//! # quartier-domain
//!
//! What a neighbourhood's data *is*, independent of where it is kept or how it travels: the
//! bottom layer that the device core (`quartier-core`) and the server (`quartier-server`) both
//! stand on, so that both apply the same rules to the same bytes. Nothing here does I/O: no
//! SQLite, no network, no files, no clock but the times it is handed.
//!
//! Modules, from the bottom up:
//! - [`model`]: plain data and validation; roles and the permission rule;
//! - [`schedule`]: opening hours and event recurrence (RRULE), pure functions;
//! - [`document`]: model ↔ Automerge: one document per item and per space, the creation rule,
//!   checksums, and the guarded calls through which outside bytes reach Automerge;
//! - [`error`]: the errors of the above, which the core maps onto its own one error type;
//! - [`public_error`]: [`QuartierError`], the error apps see (the core converts into it).

pub mod document;
pub mod error;
pub mod model;
pub mod public_error;
pub mod schedule;

pub use document::DocKind;

// The `uniffi` feature (enabled by `quartier-ffi` only) makes the model's types cross the FFI as
// they are: every crate that derives uniffi traits needs its own scaffolding (namespace
// `quartier_domain`); the bindings import it next to `quartier_ffi`.
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();
pub use error::{Error, Result};
pub use public_error::QuartierError;
