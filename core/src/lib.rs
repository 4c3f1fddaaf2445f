//! # quartier-core
//!
//! The offline-first core of Quartier: the data model of a neighbourhood's hybrid social space,
//! one Automerge document per item and per space, a SQLite store with projections for every
//! query the apps need, and live queries.
//!
//! Data flows one way: **command → Automerge change → one SQLite transaction (document change +
//! outbox + projection) → live-query listeners**. Reads never touch Automerge: they query the
//! projection tables. Merging changes from elsewhere goes through the same path.
//!
//! The domain layer under it, `quartier-domain` (shared with the server), is re-exported as
//! [`model`] (plain data and validation), [`schedule`] (opening hours and event recurrence) and
//! [`document`] (model ↔ Automerge). This crate's own modules, from the bottom up:
//! - [`search`]: text folding and search-query parsing, pure functions;
//! - [`store`]: SQLite persistence, writes, merges, live queries;
//! - [`media`]: the content-addressed media store: import, image processing, eviction;
//! - [`query`]: the read side, on projections only;
//! - [`sync`]: sync with a server: device key, sans-IO exchange, HTTP client, background task;
//! - [`peer`]: device to device: certificates, the sans-IO peer session, store-and-forward;
//! - [`counselling`]: end-to-end encrypted counselling kept in the store and moved by the sync.

pub mod counselling;
pub mod error;
pub mod guide;
pub mod help;
pub mod media;
pub mod moderation;
pub mod notifications;
pub mod offers;
pub mod peer;
pub mod query;
#[cfg(feature = "uniffi")]
mod remote;
pub mod search;
pub mod standards;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
pub use media::saturating_i64;

// With the `uniffi` feature (enabled by `quartier-ffi` only) the core's own plain types (media,
// transfers, allowed actions) derive uniffi traits where they are defined: namespace
// `quartier_core`, generated next to `quartier_domain` and `quartier_ffi`.
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

// The domain's remote custom types (chrono's and std's types, the protocol's `Role`) are
// implemented for its own tag only; the core's records that hold them name them here, once.
#[cfg(feature = "uniffi")]
mod remote_types {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
    use quartier_domain::model::{Categories, FieldValues, Layers, Role, StringMap, Tags, Timestamp};
    use quartier_domain::DocKind;

    uniffi::use_remote_type!(quartier_domain::Role);
    uniffi::use_remote_type!(quartier_domain::Timestamp);
    uniffi::use_remote_type!(quartier_domain::NaiveDate);
    uniffi::use_remote_type!(quartier_domain::NaiveTime);
    uniffi::use_remote_type!(quartier_domain::NaiveDateTime);
    uniffi::use_remote_type!(quartier_domain::StringMap);
    uniffi::use_remote_type!(quartier_domain::FieldValues);
    uniffi::use_remote_type!(quartier_domain::Categories);
    uniffi::use_remote_type!(quartier_domain::Layers);
    uniffi::use_remote_type!(quartier_domain::Tags);
    uniffi::use_remote_type!(quartier_domain::DocKind);
}
pub use quartier_domain::{document, model, schedule, DocKind, Error as DomainError, QuartierError};
pub use store::{
    AllowedActions, IncomingChange, IncomingCreation, LiveQuery, LiveResult, MergeReport, OutgoingChange,
    Store, StoreKey, StoreOptions, Subscription, UndeliveredChange,
};
