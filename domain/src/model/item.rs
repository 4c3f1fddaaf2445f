//! An item as apps see it, the command that creates one and the patch that edits one.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::access::{Audience, Status};
use super::details::{ItemDetails, ItemKind, Post, PostType};
use super::geo::Location;
use super::ids::{ItemId, PersonId, SpaceId};
use super::media::MediaRef;
use super::text::LocalizedText;
use crate::error::{Error, Result};

/// Longest title variant, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest body variant, in bytes (the document budget bounds the whole item too).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most tags on one item, and the longest tag.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_CHARS: usize = 64;
/// Most media references on one item.
pub const MAX_MEDIA: usize = 32;

/// An item's tags: a set, so they come back sorted and without duplicates.
pub type Tags = BTreeSet<String>;

// A set is a list of strings across the FFI (uniffi has no set type); duplicates from the app
// collapse, as they would in the set.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Tags, Vec<String>, {
    remote,
    lower: |tags| tags.into_iter().collect(),
    try_lift: |tags| Ok(tags.into_iter().collect()),
});

/// How the consent of a person recorded by someone else was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// Spoken, face to face.
    Verbal,
    /// A signed paper.
    Written,
    ByProxy,
    /// On the phone.
    Phone,
}

/// How a neighbour recorded by someone else wants to be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case", tag = "via")]
pub enum Reach {
    /// Through the person who recorded the item (replies reach their call-back list).
    ThroughRecorder,
    /// At this phone number.
    Phone { number: String },
    /// At this desk (the community centre's, a counselling office).
    Desk { name: String },
}

/// Content a volunteer recorded on behalf of a neighbour, with that neighbour's consent noted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct OnBehalfOf {
    /// Name or pseudonym of the neighbour, as they wish to appear.
    pub name: String,
    pub consent: ConsentMethod,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub consent_given_at: DateTime<Utc>,
    /// Who witnessed the consent (another volunteer, the desk), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub witnessed_by: Option<String>,
    /// How the neighbour wants to be reached (`None`: through the person who recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub reach: Option<Reach>,
}

/// An item of any kind, as stored and as read from the projections. Its kind is its
/// `content.details`' variant (also `kind()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Item {
    pub id: ItemId,
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    pub author: PersonId,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub content: ItemContent,
}

/// Everything of an item that its author sets (and may later edit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemContent {
    pub title: LocalizedText,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub body: LocalizedText,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub tags: Tags,
    /// Required for places and observations.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub location: Option<Location>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub media: Vec<MediaRef>,
    pub audience: Audience,
    pub status: Status,
    #[serde(default, with = "chrono::serde::ts_milliseconds_option")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub on_behalf_of: Option<OnBehalfOf>,
    pub details: ItemDetails,
}

// The kind is no field of its own (the details' variant is), so apps read it with this method.
#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Item {
    /// The item's kind: the variant of its details.
    pub fn kind(&self) -> ItemKind {
        self.content.details.kind()
    }
}

impl Item {
    /// Status as a reader sees it at `now`: a published item past its validity is expired.
    pub fn effective_status(&self, now: DateTime<Utc>) -> Status {
        match (self.content.status, self.content.valid_until) {
            (Status::Published, Some(until)) if until < now => Status::Expired,
            (status, _) => status,
        }
    }
}

impl ItemContent {
    /// A published item for everyone with just a title; set the rest with struct update syntax.
    pub fn new(title: LocalizedText, details: ItemDetails) -> Self {
        Self {
            title,
            body: LocalizedText::new(),
            tags: BTreeSet::new(),
            location: None,
            media: Vec::new(),
            audience: Audience::Everyone,
            status: Status::Published,
            valid_until: None,
            on_behalf_of: None,
            details,
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<()> {
        if self.title.is_empty() || self.title.iter().all(|(_, t)| t.trim().is_empty()) {
            return Err(Error::invalid(
                "title",
                "an item needs a title in at least one language",
            ));
        }
        self.title.validate("title", MAX_TITLE_BYTES)?;
        self.body.validate("body", MAX_BODY_BYTES)?;
        if self.tags.len() > MAX_TAGS {
            return Err(Error::invalid(
                "tags",
                format!("{} tags, at most {MAX_TAGS} are allowed", self.tags.len()),
            ));
        }
        for tag in &self.tags {
            let chars = tag.chars().count();
            if chars == 0 || chars > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "tags",
                    format!("a tag must have 1 to {MAX_TAG_CHARS} printable characters"),
                ));
            }
        }
        if let Some(location) = &self.location {
            location.validate()?;
        }
        if self.media.len() > MAX_MEDIA {
            return Err(Error::invalid(
                "media",
                format!(
                    "{} media references, at most {MAX_MEDIA} are allowed",
                    self.media.len()
                ),
            ));
        }
        for media in &self.media {
            media.validate()?;
        }
        if let Some(behalf) = &self.on_behalf_of {
            if behalf.name.trim().is_empty() || behalf.name.len() > 200 {
                return Err(Error::invalid(
                    "on behalf of",
                    "the neighbour's name or pseudonym must have 1 to 200 bytes",
                ));
            }
            let reach = match &behalf.reach {
                Some(Reach::Phone { number }) => Some(number),
                Some(Reach::Desk { name }) => Some(name),
                _ => None,
            };
            if behalf.witnessed_by.as_ref().is_some_and(|w| w.len() > 200)
                || reach.is_some_and(|r| r.trim().is_empty() || r.len() > 200)
            {
                return Err(Error::invalid(
                    "on behalf of",
                    "a witness, phone number or desk has at most 200 bytes (and a number or desk at least one)",
                ));
            }
        }
        // An audio post's main content is its first media: a recording with its play time.
        if let ItemDetails::Post(Post {
            post_type: PostType::Audio,
        }) = &self.details
        {
            if !self
                .media
                .first()
                .is_some_and(|m| m.is_audio() && m.duration_ms.is_some())
            {
                return Err(Error::invalid(
                    "media",
                    "an audio post starts with an audio recording whose duration is known",
                ));
            }
        }
        for media in &self.media {
            media.transcript.validate("transcript", MAX_BODY_BYTES)?;
            if let Some(language) = &media.language {
                super::text::validate_language_tag(language).map_err(|e| Error::invalid("media", e))?;
            }
        }
        let kind = self.details.kind();
        if matches!(kind, ItemKind::Place | ItemKind::Observation) && self.location.is_none() {
            return Err(Error::invalid("location", format!("a {kind} needs a location")));
        }
        if self.status == Status::Deleted {
            return Err(Error::invalid("status", "use delete to delete an item"));
        }
        self.details.validate()
    }
}

/// Something an item should have before it is published, which the core does not refuse:
/// the app asks for it in its flow (`ItemContent::warnings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ContentWarning {
    /// An image without alt text, for people who cannot see it (`media`: its position).
    MissingAltText { media: i32 },
    /// An audio or video recording without a transcript or summary, for people who cannot
    /// listen.
    MissingTranscript { media: i32 },
}

impl ItemContent {
    /// What the app should ask for before publishing (see [`ContentWarning`]).
    pub fn warnings(&self) -> Vec<ContentWarning> {
        let mut out = Vec::new();
        for (i, media) in self.media.iter().enumerate() {
            let media_index = i32::try_from(i).unwrap_or(i32::MAX);
            if media.is_image() && media.alt_text.iter().all(|(_, t)| t.trim().is_empty()) {
                out.push(ContentWarning::MissingAltText { media: media_index });
            }
            let recording = media.is_audio() || media.mime_type.starts_with("video/");
            if recording && media.transcript.iter().all(|(_, t)| t.trim().is_empty()) {
                out.push(ContentWarning::MissingTranscript { media: media_index });
            }
        }
        out
    }
}

/// The command that creates an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewItem {
    #[cfg_attr(feature = "uniffi", uniffi(name = "space_id"))]
    pub space: SpaceId,
    /// The person id (from registering with a server, or any id before that).
    pub author: PersonId,
    #[serde(flatten)]
    pub content: ItemContent,
}

impl NewItem {
    pub fn new(space: SpaceId, author: PersonId, content: ItemContent) -> Self {
        Self {
            space,
            author,
            content,
        }
    }

    /// The item this command creates, with a new id, made at `at`: how a store makes one, and
    /// tools that write documents without a store (importers, benches).
    pub fn into_item(self, at: DateTime<Utc>) -> Item {
        Item {
            id: ItemId::new(),
            space: self.space,
            author: self.author,
            created_at: at,
            updated_at: at,
            content: self.content,
        }
    }

    /// Reads a creation command from JSON (imports, tooling, bindings), with
    /// [`Error::UnknownKind`] for a kind this version does not know.
    pub fn from_json(json: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::MalformedInput {
            what: "item JSON",
            reason: e.to_string(),
        })?;
        if let Some(details) = value.get("details") {
            match details.get("kind").and_then(|k| k.as_str()) {
                Some(kind) => {
                    ItemKind::parse(kind)?;
                }
                None => {
                    return Err(Error::MalformedInput {
                        what: "item JSON",
                        reason: "details.kind is missing or not a string".into(),
                    })
                }
            }
        }
        serde_json::from_value(value).map_err(|e| Error::MalformedInput {
            what: "item JSON",
            reason: e.to_string(),
        })
    }
}

/// An edit: every field that is `Some` is set, the rest stays as it is, so that concurrent edits
/// of different fields merge without loss. Bodies are merged per character. `clear_*` removes an
/// optional field (setting and clearing one at once is refused). `details` must be of the item's
/// kind.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ItemPatch {
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub title: Option<LocalizedText>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub body: Option<LocalizedText>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub tags: Option<Tags>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub location: Option<Location>,
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub clear_location: bool,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub media: Option<Vec<MediaRef>>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub audience: Option<Audience>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub status: Option<Status>,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub valid_until: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub clear_valid_until: bool,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub on_behalf_of: Option<OnBehalfOf>,
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    pub clear_on_behalf_of: bool,
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub details: Option<ItemDetails>,
}

/// What a patch does to an optional field: `Some(value)` sets, `Some(None)` clears, `None`
/// leaves it; setting and clearing at once is a contradiction and refused.
fn settable<T: Clone>(field: &'static str, value: &Option<T>, clear: bool) -> Result<Option<Option<T>>> {
    match (value, clear) {
        (Some(_), true) => Err(Error::invalid(field, "set and cleared in the same patch")),
        (Some(v), false) => Ok(Some(Some(v.clone()))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

impl ItemPatch {
    /// Refuses a patch that sets and clears the same field.
    pub fn validate(&self) -> Result<()> {
        settable("location", &self.location, self.clear_location)?;
        settable("valid until", &self.valid_until, self.clear_valid_until)?;
        settable("on behalf of", &self.on_behalf_of, self.clear_on_behalf_of)?;
        Ok(())
    }

    /// Applies the patch to a copy of `content`.
    pub fn apply_to(&self, content: &ItemContent) -> Result<ItemContent> {
        let mut next = content.clone();
        if let Some(details) = &self.details {
            if details.kind() != content.details.kind() {
                return Err(Error::KindChange {
                    existing: content.details.kind().as_str(),
                    requested: details.kind().as_str(),
                });
            }
            next.details = details.clone();
        }
        if let Some(v) = &self.title {
            next.title = v.clone();
        }
        if let Some(v) = &self.body {
            next.body = v.clone();
        }
        if let Some(v) = &self.tags {
            next.tags = v.clone();
        }
        if let Some(v) = settable("location", &self.location, self.clear_location)? {
            next.location = v;
        }
        if let Some(v) = &self.media {
            next.media = v.clone();
        }
        if let Some(v) = self.audience {
            next.audience = v;
        }
        if let Some(v) = self.status {
            next.status = v;
        }
        if let Some(v) = settable("valid until", &self.valid_until, self.clear_valid_until)? {
            next.valid_until = v;
        }
        if let Some(v) = settable("on behalf of", &self.on_behalf_of, self.clear_on_behalf_of)? {
            next.on_behalf_of = v;
        }
        Ok(next)
    }

    /// Names of the fields this patch sets, for the history.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let flags = [
            (self.title.is_some(), "title"),
            (self.body.is_some(), "body"),
            (self.tags.is_some(), "tags"),
            (self.location.is_some() || self.clear_location, "location"),
            (self.media.is_some(), "media"),
            (self.audience.is_some(), "audience"),
            (self.status.is_some(), "status"),
            (
                self.valid_until.is_some() || self.clear_valid_until,
                "valid_until",
            ),
            (
                self.on_behalf_of.is_some() || self.clear_on_behalf_of,
                "on_behalf_of",
            ),
            (self.details.is_some(), "details"),
        ];
        for (set, name) in flags {
            if set {
                f.push(name);
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_sets_or_clears_optional_fields_but_never_both() {
        let patch = ItemPatch {
            clear_valid_until: true,
            location: Some(Location::new(1.0, 2.0)),
            ..ItemPatch::default()
        };
        patch.validate().expect("valid");
        assert_eq!(patch.fields(), vec!["location", "valid_until"]);
        let mut content = ItemContent::new(
            LocalizedText::from([("de", "Titel")]),
            ItemDetails::Post(super::super::details::Post {
                post_type: super::super::details::PostType::News,
            }),
        );
        content.valid_until = DateTime::from_timestamp_millis(1_800_000_000_000);
        let next = patch.apply_to(&content).expect("applies");
        assert_eq!(
            (next.location, next.valid_until),
            (Some(Location::new(1.0, 2.0)), None)
        );

        let both = ItemPatch {
            location: Some(Location::new(1.0, 1.0)),
            clear_location: true,
            ..ItemPatch::default()
        };
        for result in [both.validate(), both.apply_to(&content).map(|_| ())] {
            assert!(
                matches!(&result, Err(Error::Invalid { field: "location", reason }) if reason.contains("set and cleared")),
                "{result:?}"
            );
        }
    }
}
