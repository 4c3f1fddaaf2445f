//! The data model: identifiers, items of every kind, spaces, access rules. Plain data with
//! validation; it knows nothing of Automerge or SQLite.

mod access;
mod details;
mod geo;
mod ids;
mod item;
mod media;
mod space;
mod text;

/// An instant, UTC. Across the FFI it is milliseconds since the Unix epoch (Kotlin `Long`, Swift
/// `Int64`, Python `int`): what every platform's clock gives, without a date library.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

// `DateTime` is chrono's, so this is a remote custom type: crates that pass it across name it
// with `uniffi::use_remote_type!(quartier_domain::Timestamp)`. A value outside chrono's range is
// refused while crossing, as `QuartierError::Invalid`.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Timestamp, i64, {
    remote,
    lower: |time| time.timestamp_millis(),
    try_lift: |ms| Ok(chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        crate::QuartierError::invalid("time", format!("{ms} ms is outside the supported time range"))
    })?),
});

pub use access::{
    judge_item, judge_space_edit, permits, Action, Audience, Refusal, RejectCode, Role, Status, Viewer,
};
pub use details::{
    Address, Comment, Contact, Event, FieldValue, FieldValues, ItemDetails, ItemKind, Observation, Offer,
    Organization, Place, Post, PostType, Request, RequestDirection, RequestState, ServiceLocation, StringMap,
};
pub use geo::{haversine_m, validate_coordinates, Location, PositionSource};
pub use ids::{ItemId, PersonId, SpaceId};
pub use item::{
    ConsentMethod, ContentWarning, Item, ItemContent, ItemPatch, NewItem, OnBehalfOf, Reach, Tags,
    MAX_BODY_BYTES, MAX_MEDIA, MAX_TAGS, MAX_TAG_CHARS, MAX_TITLE_BYTES,
};
pub use media::validate_hash;
pub use media::{MediaRef, MediaVariantRef};
pub use space::{Categories, Category, Layer, Layers, Space, SpaceMeta};
pub use text::{validate_language_tag, LocalizedText, EASY_LANGUAGE_SUBTAG};
