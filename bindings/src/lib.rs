//! # quartier-ffi
//!
//! The uniffi facade of `quartier-core` for Kotlin, Swift and Python. Thin by design: it
//! converts types and errors and holds no logic of its own. See `docs/bindings.md`.
//!
//! - [`store`]: `QuartierStore` — open/close, identity, spaces, items, queries, subscriptions;
//! - [`live`]: the foreign `LiveQueryListener` and the `LiveSubscription` handle;
//! - [`sync`]: `QuartierSync` (async, on the library's tokio runtime), `CancelToken`,
//!   progress and background-sync listeners;
//! - [`media`]: media import, files, budget on `QuartierStore`; transfers on `QuartierSync`;
//! - [`logging`]: `tracing` events forwarded to a foreign `Logger`, filtered by level;
//! - [`types`]: records and enums mirroring the core's model, queries and sync types;
//! - [`error`]: `QuartierError`, and the panic guard around every call.
//!
//! Every object is `Send + Sync`: any method may be called from any thread at once. Listeners
//! are called on library threads, never on the caller's thread.

pub mod error;
pub mod live;
pub mod logging;
pub mod media;
pub mod store;
pub mod sync;
pub mod types;

pub use error::QuartierError;

uniffi::setup_scaffolding!();

/// The version of this library (the workspace version).
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
