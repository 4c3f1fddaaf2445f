//! The data that crosses the boundary and is not derived where it is defined yet: uniffi records
//! for item content, patches, queries and their results, spaces and sync reports, with their
//! conversions (`into_core` / `From<core>`). The model's own types (item details and their parts,
//! opening rules and event timing, enums, locations, media references, addresses, viewers) and
//! the core's media records are derived in quartier-domain / quartier-core and only re-exported
//! here. Ids, instants, local dates and times and the model's maps are custom types there (UUID
//! strings, milliseconds, ISO strings, dictionaries); the `…_ms` fields of the records below are
//! converted here. Everything coming in is checked; a bad value is a typed error.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use quartier_core::model as m;
use quartier_core::query as q;
use quartier_core::sync as sy;

use crate::error::{non_negative, signed, FfiResult, QuartierError};

// ---------------------------------------------------------------------------------------------
// Scalars

pub(crate) fn parse_id<T>(text: &str) -> FfiResult<T>
where
    T: std::str::FromStr,
    quartier_core::Error: From<T::Err>,
{
    text.parse()
        .map_err(|e| QuartierError::from(quartier_core::Error::from(e)))
}

pub(crate) fn parse_uuid(field: &str, text: &str) -> FfiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|e| QuartierError::invalid(field, format!("not a UUID ({e})")))
}

pub(crate) fn instant(field: &str, ms: i64) -> FfiResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| QuartierError::invalid(field, format!("{ms} ms is outside the supported time range")))
}

fn opt_instant(field: &str, ms: Option<i64>) -> FfiResult<Option<DateTime<Utc>>> {
    ms.map(|ms| instant(field, ms)).transpose()
}

/// A text in several languages: BCP-47 tag → text (a map across the FFI; see quartier-domain).
pub use quartier_core::model::LocalizedText;

// ---------------------------------------------------------------------------------------------
// The model's own types, derived where they are defined (quartier-domain's `uniffi` feature)

pub use quartier_core::model::{
    Address, Audience, Category, ConsentMethod, Contact, ItemKind, Layer, Location, MediaRef,
    MediaVariantRef, OnBehalfOf, Organization, PositionSource, PostType, RequestDirection, RequestState,
    Role, ServiceLocation, Status, Timestamp, Viewer,
};
/// Ids cross as UUID strings (custom types of quartier-domain); a string that is not a UUID is
/// refused while crossing, as `Invalid`.
pub use quartier_core::model::{ItemId, PersonId, SpaceId};

// `Role` is `quartier_protocol::Role`, mirrored as a remote type in quartier-domain.
uniffi::use_remote_type!(quartier_domain::Role);
// Instants are chrono's `DateTime<Utc>`, milliseconds across the FFI (quartier-domain).
uniffi::use_remote_type!(quartier_domain::Timestamp);

// ---------------------------------------------------------------------------------------------
// Item parts

/// What an item carries beyond the common fields (the variant is the item's kind) and its parts:
/// the model's own types (quartier-domain). Local dates and times cross as ISO strings, the
/// maps as dictionaries (custom types there); a malformed date or time is `Invalid`.
pub use quartier_core::model::{
    Comment, Event, FieldValue, FieldValues, ItemDetails, Observation, Offer, Place, Post, Request, StringMap,
};
pub use quartier_core::schedule::{EventTiming, OpeningRule};

// The local dates and times of opening hours and events, and the maps of places and
// observations, are remote custom types of quartier-domain.
uniffi::use_remote_type!(quartier_domain::NaiveDate);
uniffi::use_remote_type!(quartier_domain::NaiveTime);
uniffi::use_remote_type!(quartier_domain::NaiveDateTime);
uniffi::use_remote_type!(quartier_domain::StringMap);
uniffi::use_remote_type!(quartier_domain::FieldValues);

/// Everything of an item its author sets.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ItemContent {
    pub title: LocalizedText,
    #[uniffi(default)]
    pub body: LocalizedText,
    #[uniffi(default = [])]
    pub tags: Vec<String>,
    /// Required for places and observations.
    #[uniffi(default = None)]
    pub location: Option<Location>,
    #[uniffi(default = [])]
    pub media: Vec<MediaRef>,
    pub audience: Audience,
    pub status: Status,
    #[uniffi(default = None)]
    pub valid_until_ms: Option<i64>,
    #[uniffi(default = None)]
    pub on_behalf_of: Option<OnBehalfOf>,
    pub details: ItemDetails,
}

impl ItemContent {
    pub(crate) fn into_core(self) -> FfiResult<m::ItemContent> {
        Ok(m::ItemContent {
            title: self.title,
            body: self.body,
            tags: self.tags.into_iter().collect(),
            location: self.location,
            media: self.media.into_iter().collect(),
            audience: self.audience,
            status: self.status,
            valid_until: opt_instant("valid until", self.valid_until_ms)?,
            on_behalf_of: self.on_behalf_of,
            details: self.details,
        })
    }
}

impl From<&m::ItemContent> for ItemContent {
    fn from(c: &m::ItemContent) -> Self {
        ItemContent {
            title: c.title.clone(),
            body: c.body.clone(),
            tags: c.tags.iter().cloned().collect(),
            location: c.location,
            media: c.media.clone(),
            audience: c.audience,
            status: c.status,
            valid_until_ms: c.valid_until.map(|t| t.timestamp_millis()),
            on_behalf_of: c.on_behalf_of.clone(),
            details: c.details.clone(),
        }
    }
}

/// An item as stored.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Item {
    pub id: ItemId,
    pub space_id: SpaceId,
    pub author: PersonId,
    pub kind: ItemKind,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub content: ItemContent,
}

impl From<&m::Item> for Item {
    fn from(i: &m::Item) -> Self {
        Item {
            id: i.id,
            space_id: i.space,
            author: i.author,
            kind: i.kind(),
            created_at_ms: i.created_at.timestamp_millis(),
            updated_at_ms: i.updated_at.timestamp_millis(),
            content: (&i.content).into(),
        }
    }
}

fn items(list: &[m::Item]) -> Vec<Item> {
    list.iter().map(Into::into).collect()
}

/// The command that creates an item.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewItem {
    pub space_id: SpaceId,
    /// The person id (from `QuartierSync.register`, or any id before registering).
    pub author: PersonId,
    pub content: ItemContent,
}

impl NewItem {
    pub(crate) fn into_core(self) -> FfiResult<m::NewItem> {
        Ok(m::NewItem::new(
            self.space_id,
            self.author,
            self.content.into_core()?,
        ))
    }
}

/// An edit: fields that are set change, the rest stays (and merges with concurrent edits of
/// other fields). `clear_*` removes an optional field.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ItemPatch {
    #[uniffi(default = None)]
    pub title: Option<LocalizedText>,
    #[uniffi(default = None)]
    pub body: Option<LocalizedText>,
    #[uniffi(default = None)]
    pub tags: Option<Vec<String>>,
    #[uniffi(default = None)]
    pub location: Option<Location>,
    #[uniffi(default = false)]
    pub clear_location: bool,
    #[uniffi(default = None)]
    pub media: Option<Vec<MediaRef>>,
    #[uniffi(default = None)]
    pub audience: Option<Audience>,
    #[uniffi(default = None)]
    pub status: Option<Status>,
    #[uniffi(default = None)]
    pub valid_until_ms: Option<i64>,
    #[uniffi(default = false)]
    pub clear_valid_until: bool,
    #[uniffi(default = None)]
    pub on_behalf_of: Option<OnBehalfOf>,
    #[uniffi(default = false)]
    pub clear_on_behalf_of: bool,
    /// Must be of the item's kind.
    #[uniffi(default = None)]
    pub details: Option<ItemDetails>,
}

/// `value` if set, `Some(None)` if cleared, `None` if neither; setting and clearing at once is
/// a contradiction and refused.
fn settable<T>(field: &str, value: Option<T>, clear: bool) -> FfiResult<Option<Option<T>>> {
    match (value, clear) {
        (Some(_), true) => Err(QuartierError::invalid(field, "set and cleared in the same patch")),
        (Some(v), false) => Ok(Some(Some(v))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

impl ItemPatch {
    pub(crate) fn into_core(self) -> FfiResult<m::ItemPatch> {
        Ok(m::ItemPatch {
            title: self.title,
            body: self.body,
            tags: self.tags.map(|t| t.into_iter().collect()),
            location: settable("location", self.location, self.clear_location)?,
            media: self.media.map(|v| v.into_iter().collect()),
            audience: self.audience,
            status: self.status,
            valid_until: settable(
                "valid until",
                opt_instant("valid until", self.valid_until_ms)?,
                self.clear_valid_until,
            )?,
            on_behalf_of: settable("on behalf of", self.on_behalf_of, self.clear_on_behalf_of)?,
            details: self.details,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Spaces

/// A space and its shared metadata: the model's own types (quartier-domain).
pub use quartier_core::model::{Categories, Layers, Space, SpaceMeta};

// The category and layer maps are remote custom types of quartier-domain (dictionaries).
uniffi::use_remote_type!(quartier_domain::Categories);
uniffi::use_remote_type!(quartier_domain::Layers);

// ---------------------------------------------------------------------------------------------
// Queries

fn kinds_in(kinds: Vec<ItemKind>) -> Vec<m::ItemKind> {
    kinds.into_iter().collect()
}

/// A page of a space's feed, newest first.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FeedQuery {
    pub space_id: SpaceId,
    pub viewer: Viewer,
    /// Empty: every kind but comments.
    #[uniffi(default = [])]
    pub kinds: Vec<ItemKind>,
    #[uniffi(default = None)]
    pub tag: Option<String>,
    #[uniffi(default = None)]
    pub author: Option<PersonId>,
    /// Empty: published only.
    #[uniffi(default = [])]
    pub statuses: Vec<Status>,
    /// Empty: every audience the viewer may see.
    #[uniffi(default = [])]
    pub audiences: Vec<Audience>,
    #[uniffi(default = 50)]
    pub limit: i32,
    /// `FeedPage.next` of the previous page.
    #[uniffi(default = None)]
    pub after: Option<String>,
    /// The moment validity is judged at; none = now.
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
}

impl FeedQuery {
    pub(crate) fn into_core(self) -> FfiResult<q::FeedQuery> {
        Ok(q::FeedQuery {
            space: self.space_id,
            viewer: self.viewer,
            kinds: kinds_in(self.kinds),
            tag: self.tag,
            author: self.author,
            statuses: self.statuses.into_iter().collect(),
            audiences: self.audiences.into_iter().collect(),
            limit: non_negative("limit", self.limit.into())?,
            after: self.after.as_deref().map(parse_id).transpose()?,
            at: opt_instant("at", self.at_ms)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FeedPage {
    pub items: Vec<Item>,
    /// Pass as `after` for the next page; none at the end. Opaque.
    pub next: Option<String>,
}

impl From<&q::FeedPage> for FeedPage {
    fn from(p: &q::FeedPage) -> Self {
        FeedPage {
            items: items(&p.items),
            next: p.next.map(|c| c.to_string()),
        }
    }
}

/// Full-text search (folds case and diacritics: `strasse` finds `Straße`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SearchRequest {
    /// None: every space in the store.
    #[uniffi(default = None)]
    pub space_id: Option<SpaceId>,
    pub viewer: Viewer,
    /// What the person typed.
    pub text: String,
    #[uniffi(default = [])]
    pub kinds: Vec<ItemKind>,
    #[uniffi(default = 20)]
    pub limit: i32,
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
}

impl SearchRequest {
    pub(crate) fn into_core(self) -> FfiResult<q::SearchRequest> {
        Ok(q::SearchRequest {
            space: self.space_id,
            viewer: self.viewer,
            text: self.text,
            kinds: kinds_in(self.kinds),
            limit: non_negative("limit", self.limit.into())?,
            at: opt_instant("at", self.at_ms)?,
        })
    }
}

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

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SearchHit {
    pub item: Item,
    /// BM25; lower is better.
    pub score: f64,
    pub title: Snippet,
    pub body: Snippet,
}

impl From<&q::SearchHit> for SearchHit {
    fn from(h: &q::SearchHit) -> Self {
        SearchHit {
            item: (&h.item).into(),
            score: h.score,
            title: (&h.title).into(),
            body: (&h.body).into(),
        }
    }
}

/// Items inside a map viewport; `west > east` crosses the antimeridian.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ViewportQuery {
    pub space_id: SpaceId,
    pub viewer: Viewer,
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
    #[uniffi(default = [])]
    pub kinds: Vec<ItemKind>,
    #[uniffi(default = 500)]
    pub limit: i32,
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
}

impl ViewportQuery {
    pub(crate) fn into_core(self) -> FfiResult<q::ViewportQuery> {
        Ok(q::ViewportQuery {
            space: self.space_id,
            viewer: self.viewer,
            south: self.south,
            west: self.west,
            north: self.north,
            east: self.east,
            kinds: kinds_in(self.kinds),
            limit: non_negative("limit", self.limit.into())?,
            at: opt_instant("at", self.at_ms)?,
        })
    }
}

/// Items within `radius_m` of `center`, nearest first.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RadiusQuery {
    pub space_id: SpaceId,
    pub viewer: Viewer,
    pub center: Location,
    pub radius_m: f64,
    #[uniffi(default = [])]
    pub kinds: Vec<ItemKind>,
    #[uniffi(default = 100)]
    pub limit: i32,
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
}

impl RadiusQuery {
    pub(crate) fn into_core(self) -> FfiResult<q::RadiusQuery> {
        Ok(q::RadiusQuery {
            space: self.space_id,
            viewer: self.viewer,
            center: self.center,
            radius_m: self.radius_m,
            kinds: kinds_in(self.kinds),
            limit: non_negative("limit", self.limit.into())?,
            at: opt_instant("at", self.at_ms)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NearbyItem {
    pub item: Item,
    pub distance_m: f64,
}

/// Offers open at a moment ("open now").
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct OpenOffersQuery {
    pub space_id: SpaceId,
    pub viewer: Viewer,
    /// None: now.
    #[uniffi(default = None)]
    pub at_ms: Option<i64>,
}

impl OpenOffersQuery {
    pub(crate) fn into_core(self) -> FfiResult<q::OpenOffersQuery> {
        Ok(q::OpenOffersQuery {
            space: self.space_id,
            viewer: self.viewer,
            at: opt_instant("at", self.at_ms)?.unwrap_or_else(Utc::now),
        })
    }
}

/// Event occurrences overlapping `[from_ms, to_ms)`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct EventsQuery {
    pub space_id: SpaceId,
    pub viewer: Viewer,
    pub from_ms: i64,
    pub to_ms: i64,
    #[uniffi(default = 200)]
    pub limit: i32,
}

impl EventsQuery {
    pub(crate) fn into_core(self) -> FfiResult<q::EventsQuery> {
        Ok(q::EventsQuery {
            space: self.space_id,
            viewer: self.viewer,
            from: instant("from", self.from_ms)?,
            to: instant("to", self.to_ms)?,
            limit: non_negative("limit", self.limit.into())?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct EventOccurrence {
    pub item: Item,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One change in an item's history.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct HistoryEntry {
    pub change: String,
    pub device: String,
    pub person: Option<String>,
    pub at_ms: i64,
    pub fields: Vec<String>,
}

/// An item with its history (oldest first) and the comments the viewer may see.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ItemDetail {
    pub item: Item,
    pub history: Vec<HistoryEntry>,
    pub comments: Vec<Item>,
}

impl From<&q::ItemDetail> for ItemDetail {
    fn from(d: &q::ItemDetail) -> Self {
        ItemDetail {
            item: (&d.item).into(),
            history: d
                .history
                .iter()
                .map(|h| HistoryEntry {
                    change: h.change.clone(),
                    device: h.device.clone(),
                    person: h.person.map(|p| p.to_string()),
                    at_ms: h.at.timestamp_millis(),
                    fields: h.fields.clone(),
                })
                .collect(),
            comments: items(&d.comments),
        }
    }
}

pub(crate) fn nearby(list: &[q::NearbyItem]) -> Vec<NearbyItem> {
    list.iter()
        .map(|n| NearbyItem {
            item: (&n.item).into(),
            distance_m: n.distance_m,
        })
        .collect()
}

pub(crate) fn occurrences(list: &[q::EventOccurrence]) -> Vec<EventOccurrence> {
    list.iter()
        .map(|o| EventOccurrence {
            item: (&o.item).into(),
            start_ms: o.start.timestamp_millis(),
            end_ms: o.end.timestamp_millis(),
        })
        .collect()
}

pub(crate) fn item_list(list: &[m::Item]) -> Vec<Item> {
    items(list)
}

// ---------------------------------------------------------------------------------------------
// Live queries

/// A query to watch with `QuartierStore.subscribe`.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum LiveQuery {
    Feed { query: FeedQuery },
    Search { query: SearchRequest },
    Viewport { query: ViewportQuery },
    Near { query: RadiusQuery },
    OpenOffers { query: OpenOffersQuery },
    Events { query: EventsQuery },
    Detail { item_id: ItemId, viewer: Viewer },
}

impl LiveQuery {
    pub(crate) fn into_core(self) -> FfiResult<quartier_core::LiveQuery> {
        use quartier_core::LiveQuery as L;
        Ok(match self {
            LiveQuery::Feed { query } => L::Feed(query.into_core()?),
            LiveQuery::Search { query } => L::Search(query.into_core()?),
            LiveQuery::Viewport { query } => L::Viewport(query.into_core()?),
            LiveQuery::Near { query } => L::Near(query.into_core()?),
            LiveQuery::OpenOffers { query } => L::OpenOffers(query.into_core()?),
            LiveQuery::Events { query } => L::Events(query.into_core()?),
            LiveQuery::Detail { item_id, viewer } => L::Detail {
                item: item_id,
                viewer,
            },
        })
    }
}

/// A fresh result of a live query, in the shape of the query.
// Passed by value across the FFI (uniffi enums cannot hold boxed fields); the size
// difference costs a copy per call, not per item.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum LiveResult {
    Feed { page: FeedPage },
    Search { hits: Vec<SearchHit> },
    Viewport { items: Vec<Item> },
    Near { items: Vec<NearbyItem> },
    OpenOffers { items: Vec<Item> },
    Events { occurrences: Vec<EventOccurrence> },
    Detail { detail: ItemDetail },
}

impl From<&quartier_core::LiveResult> for LiveResult {
    fn from(r: &quartier_core::LiveResult) -> Self {
        use quartier_core::LiveResult as L;
        match r {
            L::Feed(p) => LiveResult::Feed { page: p.into() },
            L::Search(h) => LiveResult::Search {
                hits: h.iter().map(Into::into).collect(),
            },
            L::Viewport(i) => LiveResult::Viewport { items: items(i) },
            L::Near(n) => LiveResult::Near { items: nearby(n) },
            L::OpenOffers(i) => LiveResult::OpenOffers { items: items(i) },
            L::Events(o) => LiveResult::Events {
                occurrences: occurrences(o),
            },
            L::Detail(d) => LiveResult::Detail {
                detail: d.as_ref().into(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sync

/// This device's registration with a server.
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

/// A membership as the server decided it.
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
/// only its hash). `id` is what `revoke_invite` takes.
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
/// it was registered (null while the server could not be reached).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SharedSpace {
    pub space: Space,
    pub membership: Option<Membership>,
}

/// A member of a space and an invite as a QR code's text: the core's own types.
pub use quartier_core::sync::{InviteLink, Member};

/// A space this device's person belongs to (the store's read-only copy).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SpaceMembership {
    pub space_id: SpaceId,
    pub role: Role,
}

/// Where one space's sync stands.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SpaceSyncStatus {
    pub space_id: SpaceId,
    pub role: Role,
    pub last_success_ms: Option<i64>,
    pub last_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Changes waiting to be pushed.
    pub outbox: i64,
}

impl From<&sy::SpaceSyncStatus> for SpaceSyncStatus {
    fn from(s: &sy::SpaceSyncStatus) -> Self {
        SpaceSyncStatus {
            space_id: s.space,
            role: s.role,
            last_success_ms: s.last_success.map(|t| t.timestamp_millis()),
            last_attempt_ms: s.last_attempt.map(|t| t.timestamp_millis()),
            last_error: s.last_error.clone(),
            outbox: signed(s.outbox),
        }
    }
}

/// Progress of a running sync, after every committed page.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SyncProgress {
    pub rounds: i64,
    pub pushed: i64,
    pub received: i64,
    pub outbox_left: i64,
}

impl From<&sy::SyncProgress> for SyncProgress {
    fn from(p: &sy::SyncProgress) -> Self {
        SyncProgress {
            rounds: signed(p.rounds),
            pushed: signed(p.pushed),
            received: signed(p.received),
            outbox_left: signed(p.outbox_left),
        }
    }
}

/// A change the server refused for good, with its reason. It is out of the outbox, its item
/// is back to what the server accepted (later edits made again on top), and it is listed by
/// `QuartierStore.undelivered_changes`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RejectedChange {
    pub doc_id: String,
    /// The protocol's code, snake_case: `forbidden`, `not_a_member`, `not_your_change`,
    /// `bad_signature`, `too_large`, `malformed`.
    pub code: String,
    pub message: String,
    /// Later edits of the item made again on top of what the server accepted.
    pub reapplied: i64,
}

/// A change the server asked to send again later; it stays queued.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DeferredChange {
    pub doc_id: String,
    /// `missing_dependency`, `server_fault` (or `unknown` from a newer server).
    pub reason: String,
    /// When the server first deferred it (ms since the epoch).
    pub since_ms: i64,
    /// Waited longer than the sync client's bound: tell the person.
    pub overdue: bool,
}

/// A change the server refused for good, kept for the person: show "not delivered: reason",
/// offer to copy `content` or to discard it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct UndeliveredChange {
    /// For `QuartierStore.discard_undelivered`.
    pub id: i64,
    pub doc_id: String,
    pub space_id: String,
    pub code: String,
    pub message: String,
    pub refused_at_ms: i64,
    /// Top-level fields the refused change set.
    pub fields: Vec<String>,
    /// The item's JSON as the person last saw it (null if it was gone).
    pub content: Option<String>,
}

impl From<&quartier_core::UndeliveredChange> for UndeliveredChange {
    fn from(u: &quartier_core::UndeliveredChange) -> Self {
        UndeliveredChange {
            id: u.id,
            doc_id: u.doc_id.clone(),
            space_id: u.space_id.clone(),
            code: u.code.clone(),
            message: u.message.clone(),
            refused_at_ms: u.refused_at_ms,
            fields: u.fields.clone(),
            content: u.content.clone(),
        }
    }
}

/// What a finished sync did.
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

impl From<&sy::SyncReport> for SyncReport {
    fn from(r: &sy::SyncReport) -> Self {
        SyncReport {
            rounds: signed(r.rounds),
            pushed: signed(r.pushed),
            received: signed(r.received),
            rejected: r
                .rejected
                .iter()
                .map(|c| RejectedChange {
                    doc_id: c.doc_id.clone(),
                    code: c.code.clone(),
                    message: c.message.clone(),
                    reapplied: signed(c.reapplied),
                })
                .collect(),
            deferred: r
                .deferred
                .iter()
                .map(|d| DeferredChange {
                    doc_id: d.doc_id.clone(),
                    reason: d.reason.clone(),
                    since_ms: d.since_ms,
                    overdue: d.overdue,
                })
                .collect(),
            purged: r.purged.clone(),
            bytes_sent: signed(r.bytes_sent),
            bytes_received: signed(r.bytes_received),
        }
    }
}

/// What background sync reports.
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
            sy::SyncEvent::Progress(p) => SyncEvent::Progress { progress: p.into() },
            sy::SyncEvent::Finished(r) => SyncEvent::Finished { report: r.into() },
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

/// A file the server refused (quota, hash mismatch, not allowed); the run went on.
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

    fn content(details: ItemDetails) -> ItemContent {
        ItemContent {
            title: LocalizedText::from([("de", "Titel"), ("de-x-easy", "Einfach")]),
            body: LocalizedText::from([("en", "Body")]),
            tags: vec!["a".into(), "b".into()],
            location: Some(Location {
                lat: 50.96,
                lon: 6.95,
                accuracy_m: Some(5.0),
                source: PositionSource::Gps,
            }),
            media: vec![MediaRef {
                hash: "a".repeat(64),
                mime_type: "image/jpeg".into(),
                size: 10,
                width: Some(4),
                height: Some(3),
                duration_ms: None,
                preview: None,
                thumbnail: Some(MediaVariantRef {
                    hash: "b".repeat(64),
                    mime_type: "image/webp".into(),
                    size: 2,
                    width: 2,
                    height: 1,
                }),
                alt_text: LocalizedText::from([("de", "Foto")]),
                caption: LocalizedText::new(),
            }],
            audience: Audience::Volunteers,
            status: Status::Draft,
            valid_until_ms: Some(1_800_000_000_000),
            on_behalf_of: Some(OnBehalfOf {
                name: "Frau K.".into(),
                consent: ConsentMethod::Verbal,
                consent_given_at: instant("at", 1_700_000_000_000).unwrap(),
            }),
            details,
        }
    }

    fn every_kind() -> Vec<ItemDetails> {
        let date = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date");
        let local = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").expect("a date-time");
        let time = |text: &str| NaiveTime::parse_from_str(text, "%H:%M").expect("a time");
        vec![
            ItemDetails::Post(Post {
                post_type: PostType::Notice,
            }),
            ItemDetails::Place(Place {
                category: Some("cafe".into()),
                address: Some(Address {
                    street: "Neusser Str. 250".into(),
                    ..Address::default()
                }),
                accessibility: StringMap::from([("toilet".into(), "no".into())]),
            }),
            ItemDetails::Offer(Offer {
                organization: Organization {
                    name: "Tafel".into(),
                    ..Organization::default()
                },
                schedules: vec![OpeningRule {
                    rrule: "FREQ=WEEKLY;BYDAY=TU".into(),
                    opens: time("10:00"),
                    closes: time("13:30"),
                    valid_from: Some(date("2026-01-01")),
                    valid_until: None,
                    closed_on: vec![date("2026-12-25")],
                    description: Some("Dienstags".into()),
                }],
                contacts: vec![Contact {
                    phone: Some("0221".into()),
                    ..Contact::default()
                }],
                languages: vec!["de".into(), "tr".into()],
                ..Offer::default()
            }),
            ItemDetails::Event(Event {
                timing: EventTiming {
                    start: local("2026-03-05T18:00"),
                    end: local("2026-03-05T21:00"),
                    time_zone: "Europe/Berlin".into(),
                    rrule: Some("FREQ=WEEKLY;COUNT=3".into()),
                    exdates: vec![local("2026-03-12T18:00")],
                },
                venue: None,
            }),
            ItemDetails::Request(Request {
                direction: RequestDirection::Offer,
                category: "shopping".into(),
                state: RequestState::Taken,
            }),
            ItemDetails::Observation(Observation {
                preset: "ramp".into(),
                category: None,
                fields: FieldValues::from([
                    ("ok".into(), FieldValue::Bool(true)),
                    ("cm".into(), FieldValue::Number(92.5)),
                    ("note".into(), FieldValue::Text("steil".into())),
                ]),
            }),
            ItemDetails::Comment(Comment {
                parent: "0190c0de-0000-7000-8000-000000000001".parse().expect("a UUID"),
            }),
        ]
    }

    #[test]
    fn item_content_of_every_kind_round_trips_through_the_core_model() {
        for details in every_kind() {
            let ffi = content(details);
            let core = ffi.clone().into_core().expect("valid content");
            core.validate().expect("the core accepts it");
            assert_eq!(ItemContent::from(&core), ffi);
        }
    }

    /// What the app's string becomes in Rust, as uniffi lifts it (the domain's custom types).
    fn lift<T>(text: &str) -> Result<T, QuartierError>
    where
        T: uniffi::Lift<crate::UniFfiTag, FfiType = uniffi::RustBuffer>,
    {
        T::try_lift(<String as uniffi::Lower<crate::UniFfiTag>>::lower(
            text.to_owned(),
        ))
        .map_err(|e| {
            e.downcast::<QuartierError>()
                .expect("the lift error is a QuartierError")
        })
    }

    /// What the app reads back.
    fn lower<T>(value: T) -> String
    where
        T: uniffi::Lower<crate::UniFfiTag, FfiType = uniffi::RustBuffer>,
    {
        <String as uniffi::Lift<crate::UniFfiTag>>::try_lift(T::lower(value)).expect("a string")
    }

    #[test]
    fn local_dates_and_times_cross_as_iso_strings_short_times_read_back_with_seconds() {
        let opens: NaiveTime = lift("09:30").expect("a short time");
        assert_eq!(lower(opens), "09:30:00");
        assert_eq!(lower(lift::<NaiveTime>("17:00:05").expect("a time")), "17:00:05");
        assert_eq!(
            lower(lift::<NaiveDate>("2026-02-28").expect("a date")),
            "2026-02-28"
        );
        let start: NaiveDateTime = lift("2026-03-05T18:00").expect("a short local date-time");
        assert_eq!(lower(start), "2026-03-05T18:00:00");
    }

    #[test]
    fn malformed_inputs_are_typed_errors_naming_what_was_wrong() {
        for (result, expected) in [
            (
                lift::<NaiveTime>("9 Uhr").map(|_| ()),
                "`9 Uhr` is not a time HH:MM[:SS]",
            ),
            (
                lift::<NaiveDate>("2026-02-30").map(|_| ()),
                "`2026-02-30` is not a date YYYY-MM-DD",
            ),
            (
                lift::<NaiveDateTime>("2026-03-05 18:00").map(|_| ()),
                "`2026-03-05 18:00` is not a local date-time YYYY-MM-DDTHH:MM[:SS]",
            ),
        ] {
            match result {
                Err(QuartierError::Invalid { reason }) => assert!(reason.contains(expected), "{reason}"),
                other => panic!("expected Invalid, got {other:?}"),
            }
        }
        assert!(matches!(
            parse_id::<m::SpaceId>("x"),
            Err(QuartierError::Invalid { reason: m }) if m.contains("space id")
        ));
        assert!(matches!(
            instant("at", i64::MAX),
            Err(QuartierError::Invalid { .. })
        ));
        let patch = ItemPatch {
            location: Some(Location {
                lat: 1.0,
                lon: 1.0,
                accuracy_m: None,
                source: PositionSource::Manual,
            }),
            clear_location: true,
            ..ItemPatch::default()
        };
        assert!(
            matches!(patch.into_core(), Err(QuartierError::Invalid { reason: m }) if m.contains("location"))
        );
    }

    #[test]
    fn patch_clears_and_sets_optional_fields() {
        let patch = ItemPatch {
            clear_valid_until: true,
            location: Some(Location {
                lat: 1.0,
                lon: 2.0,
                accuracy_m: None,
                source: PositionSource::Manual,
            }),
            ..ItemPatch::default()
        }
        .into_core()
        .expect("valid");
        assert_eq!(patch.valid_until, Some(None));
        assert_eq!(patch.location, Some(Some(m::Location::new(1.0, 2.0))));
        assert_eq!(patch.on_behalf_of, None);
        assert_eq!(patch.fields(), vec!["location", "valid_until"]);
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
