//! What each kind of item carries beyond the common fields. Offers follow Open Referral HSDS 3.0
//! (organization, service, location, schedule, contact, languages, accessibility); events and
//! opening hours follow iCalendar (RFC 5545) recurrence rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::access::string_enum;
use super::ids::{ItemId, PersonId};
use crate::error::{Error, Result};
use crate::schedule::{EventTiming, OpeningRule};
use chrono::NaiveDate;

// The maps of places and observations stay `BTreeMap`s in the model: items are also written as
// JSON text with `serde_json::to_string` (the store's projection), where a `HashMap` would
// give a different key order on every run. uniffi only knows `HashMap`, so across the FFI they
// are remote custom types converting to one (Kotlin `Map`, Swift dictionary, Python `dict`);
// crates that pass them across name them with `uniffi::use_remote_type!`.
/// String keys to string values, e.g. a place's accessibility facts.
pub type StringMap = BTreeMap<String, String>;
/// An observation's form: field name → value.
pub type FieldValues = BTreeMap<String, FieldValue>;

#[cfg(feature = "uniffi")]
uniffi::custom_type!(StringMap, std::collections::HashMap<String, String>, {
    remote,
    lower: |map| map.into_iter().collect(),
    try_lift: |map| Ok(map.into_iter().collect()),
});

#[cfg(feature = "uniffi")]
uniffi::custom_type!(FieldValues, std::collections::HashMap<String, FieldValue>, {
    remote,
    lower: |map| map.into_iter().collect(),
    try_lift: |map| Ok(map.into_iter().collect()),
});

string_enum!(
    /// The kinds of item. Stable names used in documents and the protocol.
    ItemKind, "kind" {
        Post = "post",
        Place = "place",
        Offer = "offer",
        Event = "event",
        Request = "request",
        Observation = "observation",
        Comment = "comment",
    }
);

impl ItemKind {
    /// Parses a kind name, with [`Error::UnknownKind`] for names this version does not know.
    pub fn parse(text: &str) -> Result<Self> {
        text.parse()
            .map_err(|_| Error::UnknownKind(text.chars().take(40).collect()))
    }
}

/// The kind-specific part of an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
// Offers are the largest variant; items are few in memory at a time (a page), so boxing would
// only make construction clumsier for apps.
#[allow(clippy::large_enum_variant)]
pub enum ItemDetails {
    Post(Post),
    Place(Place),
    Offer(Offer),
    Event(Event),
    Request(Request),
    Observation(Observation),
    Comment(Comment),
}

impl ItemDetails {
    pub fn kind(&self) -> ItemKind {
        match self {
            ItemDetails::Post(_) => ItemKind::Post,
            ItemDetails::Place(_) => ItemKind::Place,
            ItemDetails::Offer(_) => ItemKind::Offer,
            ItemDetails::Event(_) => ItemKind::Event,
            ItemDetails::Request(_) => ItemKind::Request,
            ItemDetails::Observation(_) => ItemKind::Observation,
            ItemDetails::Comment(_) => ItemKind::Comment,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            ItemDetails::Offer(offer) => {
                if offer.organization.name.trim().is_empty() {
                    return Err(Error::invalid(
                        "offer organization",
                        "an offer needs the organization's name",
                    ));
                }
                for rule in &offer.schedules {
                    rule.validate()?;
                }
                Ok(())
            }
            ItemDetails::Event(event) => Ok(event.timing.validate()?),
            ItemDetails::Request(request) if request.category.trim().is_empty() => Err(Error::invalid(
                "request category",
                "a help request needs a category",
            )),
            ItemDetails::Observation(obs) if obs.preset.trim().is_empty() => Err(Error::invalid(
                "observation preset",
                "an observation needs the survey preset it follows",
            )),
            _ => Ok(()),
        }
    }

    /// The parent item of a comment.
    pub fn parent(&self) -> Option<ItemId> {
        match self {
            ItemDetails::Comment(c) => Some(c.parent),
            _ => None,
        }
    }
}

string_enum!(
    /// News is dated reporting; a notice is a standing announcement (notice board).
    PostType, "post type" { News = "news", Notice = "notice", Audio = "audio" }
);

/// A news item or notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Post {
    pub post_type: PostType,
}

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Address {
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = ""))]
    pub street: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = ""))]
    pub postal_code: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = ""))]
    pub city: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = ""))]
    pub country: String,
}

/// A point of interest: a café, a bench, a playground, a meeting room.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Place {
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub category: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub address: Option<Address>,
    /// Accessibility facts, e.g. `step_free_entrance = "yes"`, `toilet = "no"`.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub accessibility: StringMap,
}

/// HSDS organization: who runs the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Organization {
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub url: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub email: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub phone: Option<String>,
}

/// HSDS location: where the service is delivered (the map position is the item's location).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ServiceLocation {
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub address: Option<Address>,
}

/// HSDS contact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Contact {
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub title: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub phone: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub email: Option<String>,
}

/// A service of an organisation (HSDS `service`): the item's title is the service name and its
/// body the description.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Offer {
    pub organization: Organization,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub category: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub service_url: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub fees: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub eligibility: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub location: Option<ServiceLocation>,
    /// Opening hours (HSDS `schedule`, RRULE based).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub schedules: Vec<OpeningRule>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub contacts: Vec<Contact>,
    /// BCP-47 tags of the languages the service is offered in.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub languages: Vec<String>,
    /// Accessibility facts of the service (HSDS `accessibility`).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub accessibility: Vec<String>,
    /// The day the offer's information was last checked (HSDS `assured_date`) and who checked
    /// it: residents see how recent it is, coordinators what is due for review.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub assured_date: Option<NaiveDate>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub assured_by: Option<PersonId>,
}

/// An event, possibly recurring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Event {
    pub timing: EventTiming,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub venue: Option<String>,
}

string_enum!(
    /// Biete (offering help) or Suche (looking for help).
    RequestDirection, "request direction" { Offer = "offer", Need = "need" }
);

string_enum!(
    /// Where a help request stands.
    RequestState, "request state" { Open = "open", Taken = "taken", Done = "done" }
);

/// A neighbourly help request or offer (Biete/Suche).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Request {
    pub direction: RequestDirection,
    pub category: String,
    pub state: RequestState,
}

/// A value in an observation's form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FieldValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// A field survey: a preset (form) with its field values; the position is the item's location
/// (GPS with accuracy, or placed by hand).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Observation {
    pub preset: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub category: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub fields: FieldValues,
}

/// A comment on another item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Comment {
    pub parent: ItemId,
}
