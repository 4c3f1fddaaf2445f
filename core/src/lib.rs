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
//! Modules, from the bottom up:
//! - [`model`]: plain data and validation;
//! - [`schedule`]: opening hours and event recurrence (RRULE), pure functions;
//! - [`search`]: text folding and search-query parsing, pure functions;
//! - [`document`]: model ↔ Automerge;
//! - [`store`]: SQLite persistence, writes, merges, live queries;
//! - [`media`]: the content-addressed media store: import, image processing, eviction;
//! - [`query`]: the read side, on projections only;
//! - [`sync`]: sync with a server: device key, sans-IO exchange, HTTP client, background task.

pub mod document;
pub mod error;
pub mod media;
pub mod model;
pub mod query;
pub mod schedule;
pub mod search;
pub mod store;
pub mod sync;

pub use document::DocKind;
pub use error::{Error, Result};
pub use store::{
    AllowedActions, IncomingChange, LiveQuery, LiveResult, MergeReport, OutgoingChange, Store, StoreOptions,
    Subscription, UndeliveredChange,
};
