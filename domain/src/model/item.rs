//! An item as apps see it, the command that creates one and the patch that edits one.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::access::{Audience, Status};
use super::details::{ItemDetails, ItemKind};
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

/// How the consent of a person recorded by someone else was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    Verbal,
    Written,
    ByProxy,
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
}

/// An item of any kind, as stored and as read from the projections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
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
pub struct ItemContent {
    pub title: LocalizedText,
    #[serde(default)]
    pub body: LocalizedText,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub media: Vec<MediaRef>,
    pub audience: Audience,
    pub status: Status,
    #[serde(default, with = "chrono::serde::ts_milliseconds_option")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub on_behalf_of: Option<OnBehalfOf>,
    pub details: ItemDetails,
}

impl Item {
    pub fn kind(&self) -> ItemKind {
        self.content.details.kind()
    }

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

/// The command that creates an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewItem {
    pub space: SpaceId,
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
/// of different fields merge without loss. Bodies are merged per character.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemPatch {
    pub title: Option<LocalizedText>,
    pub body: Option<LocalizedText>,
    pub tags: Option<BTreeSet<String>>,
    pub location: Option<Option<Location>>,
    pub media: Option<Vec<MediaRef>>,
    pub audience: Option<Audience>,
    pub status: Option<Status>,
    pub valid_until: Option<Option<DateTime<Utc>>>,
    pub on_behalf_of: Option<Option<OnBehalfOf>>,
    pub details: Option<ItemDetails>,
}

impl ItemPatch {
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
        if let Some(v) = &self.location {
            next.location = *v;
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
        if let Some(v) = self.valid_until {
            next.valid_until = v;
        }
        if let Some(v) = &self.on_behalf_of {
            next.on_behalf_of = v.clone();
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
            (self.location.is_some(), "location"),
            (self.media.is_some(), "media"),
            (self.audience.is_some(), "audience"),
            (self.status.is_some(), "status"),
            (self.valid_until.is_some(), "valid_until"),
            (self.on_behalf_of.is_some(), "on_behalf_of"),
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
