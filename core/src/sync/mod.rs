//! Sync with a Quartier server (protocol in `docs/protocol.md`, types in `quartier-protocol`).
//!
//! - `identity`: the device's Ed25519 key and change signatures;
//! - `account`: registration, the server's memberships (read-only copy), per-space status;
//! - `exchange`: sans-IO — the store's state into a request, a response into the store, one
//!   transaction per response;
//! - `pacing`: sans-IO — the next page's byte budget from the link's measured throughput;
//! - `client`: HTTP (reqwest, rustls) around the exchange;
//! - `background`: periodic sync with exponential backoff and jitter;
//! - `transfer`: the media transfer queue (chunked, resumable uploads and downloads by priority).

mod account;
mod background;
mod client;
mod exchange;
pub(crate) mod identity;
mod pacing;
mod transfer;

pub use account::{Account, SpaceMembership, SpaceSyncStatus};
pub use background::{BackgroundSync, BackoffPolicy, SyncEvent};
pub use client::{
    SharedSpace, SyncClient, SyncClientBuilder, SyncProgress, SyncReport, DEFAULT_OVERDUE_AFTER,
    DEFAULT_PAGE_BUDGET, DEFAULT_PUSH_BATCH,
};
pub use exchange::{DeferredChange, ExchangeOutcome, PushedEntries, RejectedChange, SPACE_NOT_REGISTERED};
pub use pacing::{next_page_budget, INITIAL_PAGE_BUDGET, MIN_PAGE_BUDGET, PAGE_TARGET};
pub use transfer::{
    Transfer, TransferDirection, TransferEvent, TransferPolicy, TransferQueue, TransferReport,
    TransferTraffic,
};
