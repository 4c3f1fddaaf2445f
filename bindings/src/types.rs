//! Adapters for the data that crosses the boundary, and re-exports of what is derived where it
//! is defined. Items, patches, queries and their results, spaces, media records and the model's
//! parts derive uniffi in quartier-domain / quartier-core (ids, instants, tags, limits, local
//! dates and times and the model's maps are custom types there). What stays here, and why:
//! - search hits: their snippets' ranges are UTF-16 offsets (what Kotlin/Java and `NSString`
//!   index by), the core's are UTF-8 byte ranges;
//! - [`LiveResult`]: it holds those search hits (the core's holds byte ranges);
//! - sync and transfer records whose core types cannot cross as they are: [`SyncReport`] and
//!   [`TransferReport`] (`u64` byte counts; a transfer's failures are tuples), [`SyncEvent`] (a
//!   `Duration`), [`Account`] (the core's holds the bearer token), [`Membership`], [`Invite`]
//!   and [`SharedSpace`] (the protocol's types, shared with the server: bare UUIDs, unsigned
//!   wire fields).
//!
//! Everything coming in is checked while crossing; a bad value is a typed error.

use quartier_core::sync as sy;

use crate::error::{signed, FfiResult, QuartierError};

pub(crate) fn parse_uuid(field: &str, text: &str) -> FfiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|e| QuartierError::invalid(field, format!("not a UUID ({e})")))
}

// ---------------------------------------------------------------------------------------------
// Derived where they are defined (quartier-domain's and quartier-core's `uniffi` feature)

pub use quartier_core::counselling::{CounsellingChannel, CounsellingRecord, KeyBackup, RecordState};
pub use quartier_core::model::{
    Address, Audience, Categories, Category, Comment, ConsentMethod, Contact, Event, FieldValue, FieldValues,
    Item, ItemContent, ItemDetails, ItemId, ItemKind, ItemPatch, Layer, Layers, LocalizedText, Location,
    MediaRef, MediaVariantRef, NewItem, Observation, Offer, OnBehalfOf, Organization, PersonId, Place,
    PositionSource, Post, PostType, Request, RequestDirection, RequestState, Role, ServiceLocation, Space,
    SpaceId, SpaceMeta, Status, StringMap, Tags, Timestamp, Viewer,
};
pub use quartier_core::peer::{
    CarriedChanges, NearbyDevice, OfflineInviteInfo, PeerCertificate, PeerRefusal, PeerReport, PeerRole,
    RelayLimits,
};
pub use quartier_core::query::{
    EventOccurrence, EventsQuery, FeedCursor, FeedPage, FeedQuery, HistoryEntry, ItemDetail, Limit, MapPin,
    NearbyItem, OpenOffersQuery, RadiusQuery, SearchRequest, ViewportQuery,
};
pub use quartier_core::schedule::{EventTiming, OpeningRule};
pub use quartier_core::sync::{
    Count, DeferredChange, InviteLink, Member, RejectedChange, SpaceMembership, SpaceSyncStatus, SyncProgress,
};
pub use quartier_core::{LiveQuery, UndeliveredChange};

// `Role` is `quartier_protocol::Role`, mirrored as a remote type in quartier-domain; instants
// are chrono's `DateTime<Utc>`. The records below hold them.
uniffi::use_remote_type!(quartier_domain::Role);
uniffi::use_remote_type!(quartier_domain::Timestamp);

// ---------------------------------------------------------------------------------------------
// Search hits: snippet ranges in UTF-16

/// A span of a snippet's text, in UTF-16 code units (Kotlin/Java `String`, `NSString`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TextRange {
    pub start: i32,
    pub end: i32,
}

/// A piece of text around the matches, with the matched words' ranges.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Snippet {
    pub text: String,
    pub matches: Vec<TextRange>,
}

fn utf16_offset(text: &str, byte: usize) -> i32 {
    let byte = byte.min(text.len());
    // Ranges come from the core on char boundaries; a stray one is clamped to the previous.
    let mut at = byte;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    i32::try_from(text[..at].encode_utf16().count()).unwrap_or(i32::MAX)
}

impl From<&quartier_core::search::Snippet> for Snippet {
    fn from(s: &quartier_core::search::Snippet) -> Self {
        Snippet {
            text: s.text.clone(),
            matches: s
                .matches
                .iter()
                .map(|r| TextRange {
                    start: utf16_offset(&s.text, r.start),
                    end: utf16_offset(&s.text, r.end),
                })
                .collect(),
        }
    }
}

/// One search result: the core's, with snippet ranges in UTF-16.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SearchHit {
    pub item: Item,
    /// BM25; lower is better.
    pub score: f64,
    pub title: Snippet,
    pub body: Snippet,
}

impl From<&quartier_core::query::SearchHit> for SearchHit {
    fn from(h: &quartier_core::query::SearchHit) -> Self {
        SearchHit {
            item: h.item.clone(),
            score: h.score,
            title: (&h.title).into(),
            body: (&h.body).into(),
        }
    }
}

/// A fresh result of a live query, in the shape of the query: the core's, with search hits
/// as above.
// Passed by value across the FFI (uniffi enums cannot hold boxed fields); the size
// difference costs a copy per call, not per item.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum LiveResult {
    Feed {
        page: FeedPage,
    },
    Search {
        hits: Vec<SearchHit>,
    },
    Viewport {
        items: Vec<Item>,
    },
    Near {
        items: Vec<NearbyItem>,
    },
    OpenOffers {
        items: Vec<Item>,
    },
    Events {
        occurrences: Vec<EventOccurrence>,
    },
    Detail {
        detail: ItemDetail,
    },
    /// `LiveQuery.Counselling`: the channel's records (empty once it is erased).
    Counselling {
        records: Vec<CounsellingRecord>,
    },
    /// `LiveQuery.CounsellingChannels`.
    CounsellingChannels {
        channels: Vec<CounsellingChannel>,
    },
    /// `LiveQuery.ModerationQueue`: items with open reports (coordinators).
    ModerationQueue {
        entries: Vec<quartier_core::moderation::ModerationQueueEntry>,
    },
    /// `LiveQuery.HelpBoard`: the open requests and offers of help.
    HelpBoard {
        items: Vec<Item>,
    },
    /// `LiveQuery.Notifications`: the person's notifications, newest first.
    Notifications {
        notifications: Vec<quartier_core::notifications::Notification>,
    },
}

impl From<quartier_core::LiveResult> for LiveResult {
    fn from(r: quartier_core::LiveResult) -> Self {
        use quartier_core::LiveResult as L;
        match r {
            L::Feed(page) => LiveResult::Feed { page },
            L::Search(hits) => LiveResult::Search {
                hits: hits.iter().map(Into::into).collect(),
            },
            L::Viewport(items) => LiveResult::Viewport { items },
            L::Near(items) => LiveResult::Near { items },
            L::OpenOffers(items) => LiveResult::OpenOffers { items },
            L::Events(occurrences) => LiveResult::Events { occurrences },
            L::Detail(detail) => LiveResult::Detail { detail: *detail },
            L::Counselling(records) => LiveResult::Counselling { records },
            L::CounsellingChannels(channels) => LiveResult::CounsellingChannels { channels },
            L::ModerationQueue(entries) => LiveResult::ModerationQueue { entries },
            L::HelpBoard(items) => LiveResult::HelpBoard { items },
            L::Notifications(notifications) => LiveResult::Notifications { notifications },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sync

/// This device's registration with a server. Kept here: the core's holds the device's bearer
/// token, which never crosses.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Account {
    pub server: String,
    pub device_id: String,
    /// The person to author content as.
    pub person_id: PersonId,
}

impl From<&sy::Account> for Account {
    fn from(a: &sy::Account) -> Self {
        Account {
            server: a.server.clone(),
            device_id: a.device.to_string(),
            person_id: a.person,
        }
    }
}

/// A membership as the server decided it. Kept here: the protocol's (shared with the server,
/// no uniffi) has bare UUIDs; these are typed ids.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Membership {
    pub space_id: SpaceId,
    pub person_id: PersonId,
    pub role: Role,
}

impl From<&quartier_protocol::Membership> for Membership {
    fn from(m: &quartier_protocol::Membership) -> Self {
        Membership {
            space_id: m.space.into(),
            person_id: m.person.into(),
            role: m.role,
        }
    }
}

/// An open invite of a space, as its coordinators see it (never the code: the server keeps
/// only its hash). `id` is what `revoke_invite` takes. Kept here: the protocol's has unsigned
/// wire fields (`u64` id, `u32` uses).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Invite {
    pub id: i64,
    pub role: Role,
    pub expires_at_ms: i64,
    pub max_uses: i64,
    pub uses: i64,
    pub created_by: PersonId,
}

impl From<quartier_protocol::InviteInfo> for Invite {
    fn from(i: quartier_protocol::InviteInfo) -> Self {
        Invite {
            id: signed(i.id),
            role: i.role,
            expires_at_ms: i.expires_at_ms,
            max_uses: signed(i.max_uses),
            uses: signed(i.uses),
            created_by: i.created_by.into(),
        }
    }
}

/// A space made by `QuartierSync.create_space`: the space, and the server's membership once
/// it was registered (null while the server could not be reached). Kept here: it holds the
/// [`Membership`] above.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SharedSpace {
    pub space: Space,
    pub membership: Option<Membership>,
}

/// What a finished sync did. Kept here: the core counts bytes in `u64`, signed here.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SyncReport {
    pub rounds: i64,
    pub pushed: i64,
    pub received: i64,
    /// Refused for good in this sync.
    pub rejected: Vec<RejectedChange>,
    /// Still deferred by the server after this sync.
    pub deferred: Vec<DeferredChange>,
    /// Spaces purged from this device (membership ended).
    pub purged: Vec<String>,
    pub bytes_sent: i64,
    pub bytes_received: i64,
}

impl From<sy::SyncReport> for SyncReport {
    fn from(r: sy::SyncReport) -> Self {
        SyncReport {
            rounds: signed(r.rounds),
            pushed: signed(r.pushed),
            received: signed(r.received),
            rejected: r.rejected,
            deferred: r.deferred,
            purged: r.purged,
            bytes_sent: signed(r.bytes_sent),
            bytes_received: signed(r.bytes_received),
        }
    }
}

/// What background sync reports. Kept here: the core's delay is a `Duration` (milliseconds
/// here) and its report is the one above.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum SyncEvent {
    Started,
    Progress {
        progress: SyncProgress,
    },
    Finished {
        report: SyncReport,
    },
    /// A failed attempt; the next follows after `retry_in_ms`.
    Failed {
        error: String,
        retry_in_ms: i64,
    },
    /// A failure retrying cannot fix (not registered, revoked…); background sync has stopped.
    Stopped {
        error: String,
    },
}

impl From<&sy::SyncEvent> for SyncEvent {
    fn from(e: &sy::SyncEvent) -> Self {
        match e {
            sy::SyncEvent::Started => SyncEvent::Started,
            sy::SyncEvent::Progress(p) => SyncEvent::Progress { progress: p.clone() },
            sy::SyncEvent::Finished(r) => SyncEvent::Finished {
                report: r.clone().into(),
            },
            sy::SyncEvent::Failed { error, retry_in } => SyncEvent::Failed {
                error: error.clone(),
                retry_in_ms: signed(retry_in.as_millis()),
            },
            sy::SyncEvent::Stopped { error } => SyncEvent::Stopped { error: error.clone() },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Media

/// The core's own media and transfer types, derived where they are defined (quartier-core's
/// `uniffi` feature).
pub use quartier_core::media::{EvictionReport, ImportOptions, ImportedMedia, LocalMedia, MediaVariant};
pub use quartier_core::sync::{TransferDirection, TransferEvent, TransferPolicy};
pub use quartier_core::AllowedActions;

/// A file the server refused (quota, hash mismatch, not allowed); the run went on. Kept here
/// with the report below: the core lists failures as `(hash, message)` tuples, which uniffi
/// cannot carry, and counts in `u64`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct FailedTransfer {
    pub hash: String,
    pub message: String,
}

/// What a transfer run moved.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TransferReport {
    pub uploaded: Vec<String>,
    pub downloaded: Vec<String>,
    /// Files the policy held back (originals on a metered link).
    pub deferred: i64,
    pub failed: Vec<FailedTransfer>,
    pub chunks_sent: i64,
    pub bytes_sent: i64,
    pub bytes_received: i64,
}

impl From<&sy::TransferReport> for TransferReport {
    fn from(r: &sy::TransferReport) -> Self {
        TransferReport {
            uploaded: r.uploaded.clone(),
            downloaded: r.downloaded.clone(),
            deferred: signed(r.deferred),
            failed: r
                .failed
                .iter()
                .map(|(hash, message)| FailedTransfer {
                    hash: hash.clone(),
                    message: message.clone(),
                })
                .collect(),
            chunks_sent: signed(r.chunks_sent),
            bytes_sent: signed(r.bytes_sent),
            bytes_received: signed(r.bytes_received),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

    /// The chrono types are the domain's remote custom types, implemented for the core's tag.
    type Core = quartier_core::UniFfiTag;
    type Ffi = crate::UniFfiTag;

    /// What the app's value becomes in Rust, as uniffi lifts it (the custom types).
    fn lift<UT, T, F>(value: F) -> Result<T, QuartierError>
    where
        T: uniffi::Lift<UT, FfiType = F::FfiType>,
        F: uniffi::Lower<UT>,
    {
        T::try_lift(F::lower(value)).map_err(|e| {
            e.downcast::<QuartierError>()
                .expect("the lift error is a QuartierError")
        })
    }

    /// What the app reads back.
    fn lower<T: uniffi::Lower<Core, FfiType = uniffi::RustBuffer>>(value: T) -> String {
        <String as uniffi::Lift<Core>>::try_lift(T::lower(value)).expect("a string")
    }

    #[test]
    fn local_dates_and_times_cross_as_iso_strings_short_times_read_back_with_seconds() {
        let opens: NaiveTime = lift::<Core, _, _>("09:30".to_owned()).expect("a short time");
        assert_eq!(lower(opens), "09:30:00");
        let time: NaiveTime = lift::<Core, _, _>("17:00:05".to_owned()).expect("a time");
        assert_eq!(lower(time), "17:00:05");
        let date: NaiveDate = lift::<Core, _, _>("2026-02-28".to_owned()).expect("a date");
        assert_eq!(lower(date), "2026-02-28");
        let start: NaiveDateTime =
            lift::<Core, _, _>("2026-03-05T18:00".to_owned()).expect("a short local date-time");
        assert_eq!(lower(start), "2026-03-05T18:00:00");
    }

    #[test]
    fn malformed_inputs_are_typed_errors_naming_what_was_wrong() {
        for (result, expected) in [
            (
                lift::<Core, NaiveTime, _>("9 Uhr".to_owned()).map(|_| ()),
                "`9 Uhr` is not a time HH:MM[:SS]",
            ),
            (
                lift::<Core, NaiveDate, _>("2026-02-30".to_owned()).map(|_| ()),
                "`2026-02-30` is not a date YYYY-MM-DD",
            ),
            (
                lift::<Core, NaiveDateTime, _>("2026-03-05 18:00".to_owned()).map(|_| ()),
                "`2026-03-05 18:00` is not a local date-time YYYY-MM-DDTHH:MM[:SS]",
            ),
            (lift::<Ffi, SpaceId, _>("x".to_owned()).map(|_| ()), "space id"),
            (
                lift::<Ffi, FeedCursor, _>("x".to_owned()).map(|_| ()),
                "feed cursor",
            ),
            (
                lift::<Ffi, Timestamp, _>(i64::MAX).map(|_| ()),
                "outside the supported time range",
            ),
            (
                lift::<Ffi, Limit, _>(-1_i32).map(|_| ()),
                "limit must be between 0 and its maximum, got -1",
            ),
            (
                lift::<Core, Count, _>(-1_i64).map(|_| ()),
                "a count must be between 0",
            ),
        ] {
            match result {
                Err(QuartierError::Invalid { reason }) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("expected Invalid, got {other:?}"),
            }
        }
        assert_eq!(lift::<Ffi, Limit, _>(20_i32), Ok(Limit(20)));
    }

    #[test]
    fn snippet_ranges_are_utf16_offsets() {
        // "Straße ü 😀 Fest": 'ß', 'ü' are 2 bytes / 1 UTF-16 unit; the emoji 4 bytes / 2 units.
        let text = "Straße ü 😀 Fest";
        let start = text.find("Fest").expect("in text");
        let snippet = quartier_core::search::Snippet {
            text: text.into(),
            matches: std::iter::once(start..start + 4).collect(),
        };
        let ffi = Snippet::from(&snippet);
        let units: Vec<u16> = text.encode_utf16().collect();
        let r = ffi.matches[0];
        assert_eq!(
            String::from_utf16_lossy(&units[r.start as usize..r.end as usize]),
            "Fest"
        );
    }
}
