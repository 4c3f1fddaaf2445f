//! Sync with a Quartier server (protocol in `docs/protocol.md`, types in `quartier-protocol`).
//!
//! Sans-IO, every decision:
//! - `exchange`: the store's state into a request, a response into the store, one transaction
//!   per response;
//! - `session`: one sync as a state machine — spaces to register, rounds, windows, pacing,
//!   when to stop, refusals and `Retry-After` — fed answers, returning requests;
//! - `pacing`: the next page's byte budget from the link's measured throughput;
//! - `transfer_session`: one run of the media queue — order, metered checks, announce → chunks →
//!   complete, resumed downloads — fed answers (downloads piece by piece), returning requests;
//! - `backoff`: when background sync tries again (exponential backoff with jitter, `Retry-After`);
//! - `http`: requests and answers as plain data, the [`HttpTransport`] trait that carries them,
//!   and the one reading of a refused answer.
//!
//! At the edges, I/O only:
//! - `reqwest_transport`: the core's carrier (reqwest, rustls);
//! - `client`: registration and account calls, and `sync_now`, the driver of a session;
//! - `background`: the periodic task (tokio) around the client and `backoff`;
//! - `transfer`: the media transfer queue's plan and driver.
//!
//! Also: `identity` (the device's Ed25519 key and change signatures), `account`
//! (registration, the server's memberships and member lists as a read-only copy, per-space
//! status) and `invite_link` (an invite as the text of a QR code, and back; sans-IO).

/// A count (of changes, rounds, requests): `usize` in the core, signed across the FFI (Java has
/// no unsigned types); saturating, as no real count reaches `i64::MAX`.
pub type Count = usize;

// A negative count from the app (counts only come back in records it built itself) is
// refused while crossing, as `QuartierError::Invalid`.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Count, i64, {
    remote,
    lower: |count| crate::saturating_i64(count),
    try_lift: |n| Ok(usize::try_from(n).map_err(|_| crate::QuartierError::Invalid {
        reason: format!("a count must be between 0 and its maximum, got {n}"),
    })?),
});

mod account;
mod background;
mod backoff;
mod client;
mod counselling;
mod exchange;
mod http;
pub(crate) mod identity;
mod invite_link;
mod pacing;
mod reqwest_transport;
pub(crate) mod server_log;
mod session;
mod transfer;
mod transfer_session;

pub(crate) use account::load_account;
pub use account::{Account, Member, SpaceMembership, SpaceSyncStatus};
pub use background::BackgroundSync;
pub use backoff::{BackgroundSchedule, BackoffPolicy, NextSync, SyncEvent, MEDIA_GC_EVERY};
pub use client::{SharedSpace, SyncClient, SyncClientBuilder};
pub use exchange::{DeferredChange, ExchangeOutcome, PushedEntries, RejectedChange, SPACE_NOT_REGISTERED};
pub use http::{
    BodyStream, HttpMethod, HttpRequest, HttpResponse, HttpTransport, PieceFuture, StreamedResponse,
    StreamingFuture, TransportError, TransportFuture, TransportResult,
};
pub use invite_link::{
    InviteLink, InviteLinkError, INVITE_LINK_PREFIX, MAX_INVITE_CODE_BYTES, MAX_INVITE_LINK_BYTES,
    MAX_INVITE_SERVER_BYTES,
};
pub use pacing::{next_page_budget, INITIAL_PAGE_BUDGET, MIN_PAGE_BUDGET, PAGE_TARGET};
pub use session::{
    RequestId, SessionEffect, SessionEvent, SessionOptions, SyncProgress, SyncReport, SyncSession,
    DEFAULT_OVERDUE_AFTER, DEFAULT_PAGE_BUDGET, DEFAULT_PUSH_BATCH,
};
pub use transfer::{
    Transfer, TransferDirection, TransferEvent, TransferPolicy, TransferQueue, TransferReport,
    TransferTraffic,
};
pub use transfer_session::{TransferEffect, TransferInput, TransferOutcome, TransferSession};
