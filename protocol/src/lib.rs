//! # quartier-protocol
//!
//! The one place where the messages between a Quartier device and a Quartier server are
//! defined, shared by `quartier-core` (client) and `quartier-server`. Specified in
//! `docs/protocol.md`.
//!
//! - [`messages`]: requests and responses, plain serde types;
//! - [`wire`]: their encoding on the wire (CBOR, zstd-compressed) with size limits and typed
//!   errors for anything malformed;
//! - [`signing`]: what a device signs for each change it pushes;
//! - [`blobs`]: media transfer (announce, chunk, download), `docs/blobs.md`;
//! - [`counselling`]: the counselling part of a sync: conversations, to-device inboxes, keys;
//! - [`certificates`]: membership certificates and revocation lists the server signs;
//! - [`peer`]: the device-to-device session's messages and frames;
//! - [`names`]: the rule for display names, enforced by the server and checked by devices.
//!
//! Nothing here does I/O.

pub mod blobs;
pub mod certificates;
pub mod counselling;
pub mod help;
pub mod messages;
pub mod moderation;
pub mod names;
pub mod peer;
pub mod signing;
pub mod wire;

pub use messages::*;
pub use wire::{decode, decode_compact, encode, encode_compact, WireError, MAX_DECODED_BYTES};

/// Version of the protocol this crate speaks. A server answers requests of another version
/// with `409` and [`messages::ErrorBody`] naming the versions it speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Media type of request and response bodies.
pub const CONTENT_TYPE: &str = "application/vnd.quartier.sync+cbor";
