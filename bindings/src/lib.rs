//! # quartier-ffi
//!
//! The uniffi facade of `quartier-core` for Kotlin, Swift and Python. Thin by design: it holds
//! no logic of its own, and it does not copy the model: the domain's and the core's plain types
//! derive uniffi where they are defined (their `uniffi` feature, turned on here), with ids,
//! instants and texts as custom types. What stays here are real adapters. See
//! `docs/bindings.md`.
//!
//! - [`store`]: `QuartierStore` — open/close, identity, spaces, items, queries, subscriptions;
//! - [`live`]: the foreign `LiveQueryListener` and the `LiveSubscription` handle;
//! - [`sync`]: `QuartierSync` (async, on the library's tokio runtime), `CancelToken`,
//!   progress and background-sync listeners;
//! - [`counselling`]: conversations, notes, appointments, erasure on `QuartierStore`; teams,
//!   key backups and device links on `QuartierSync`; routing by topic and postcode;
//! - [`media`]: media import, files, budget on `QuartierStore`; transfers on `QuartierSync`;
//! - [`peer`]: device to device: the local-network opt-in, relay limits, carried changes and
//!   certificates on `QuartierStore`; `QuartierPeerSession` (sans-IO, for transports the app
//!   carries: Bluetooth, Wi-Fi Direct, QR codes); the local network (`QuartierPeerListener`,
//!   `meet_at`, `browse_nearby`, async) with the foreign `PeerProgressListener`;
//! - [`logging`]: `tracing` events forwarded to a foreign `Logger`, filtered by level;
//! - [`types`]: re-exports of the derived types, and the records that are adapters: search hits
//!   with UTF-16 snippet offsets, live results holding them, and sync reports whose core types
//!   cannot cross as they are (each with its reason);
//! - [`error`]: the panic guard around every call; `QuartierError` itself is quartier-domain's
//!   public error, filled from the core's error in `core/src/error.rs`.
//!
//! Every object is `Send + Sync`: any method may be called from any thread at once. Listeners
//! are called on library threads, never on the caller's thread.

pub mod counselling;
pub mod error;
pub mod live;
pub mod logging;
pub mod media;
pub mod peer;
pub mod store;
pub mod sync;
pub mod types;

pub use error::QuartierError;

uniffi::setup_scaffolding!();

/// The version of this library (the workspace version).
/// What an item should have before it is published and the core does not refuse: images
/// without alt text, recordings without a transcript (ask for them in the app's flow).
#[uniffi::export]
pub fn content_warnings(
    content: quartier_core::model::ItemContent,
) -> Vec<quartier_core::model::ContentWarning> {
    content.warnings()
}

/// Reads vCards (3.0 or 4.0, as contacts programs export them) into an offer's organization
/// and contacts, with the cards or properties not taken.
#[uniffi::export]
pub fn read_vcards(bytes: Vec<u8>) -> Result<quartier_core::standards::VcardContacts, QuartierError> {
    Ok(quartier_core::standards::read_vcards(&bytes)?)
}

#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
