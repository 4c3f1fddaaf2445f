//! uniffi mirrors of types this crate hands out but does not define (only with the `uniffi`
//! feature): `uuid::Uuid` as a custom type, and the counselling types of `quartier-protocol`
//! (shared with the server) and `quartier-counselling` (the cryptography), neither of which
//! knows of uniffi. A `#[uniffi::remote]` definition is checked against the real type by the
//! compiler (every field and variant must match); it is implemented for this crate's tag, so
//! a crate that passes one across names it with `uniffi::use_remote_type!(quartier_core::…)`.

use quartier_counselling::attachment::FileKey;
use quartier_counselling::envelope::{AppointmentPlace, Body};
use quartier_protocol::counselling::{ChannelKind, Participant, Side, TeamInfo, TeamMembers, TeamSettings};
use quartier_protocol::DeviceLink;
use uuid::Uuid;

// The counselling API names conversations, teams and records by bare UUIDs (the protocol's):
// across the FFI they are UUID strings, as the id types are (`ItemId` …). A string that is not
// a UUID is refused while crossing, as `QuartierError::Invalid` (the exported error type).
uniffi::custom_type!(Uuid, String, {
    remote,
    lower: |id| id.hyphenated().to_string(),
    try_lift: |text| Ok(Uuid::parse_str(&text).map_err(|e| {
        crate::QuartierError::invalid(
            "id",
            format!("`{}` is not a UUID ({e})", text.chars().take(40).collect::<String>()),
        )
    })?),
});

/// A counselling team of a space, as members see it.
#[uniffi::remote(Record)]
pub struct TeamInfo {
    pub id: Uuid,
    pub name: String,
    pub topic: String,
    pub postcodes: Vec<String>,
    pub retention_days: Option<i32>,
}

/// What a coordinator names a team with.
#[uniffi::remote(Record)]
pub struct TeamSettings {
    pub name: String,
    pub topic: String,
    pub postcodes: Vec<String>,
    pub retention_days: Option<i32>,
}

/// A team's caseworkers after a change.
#[uniffi::remote(Record)]
pub struct TeamMembers {
    pub team: Uuid,
    pub caseworkers: Vec<Uuid>,
}

/// A device that reads a conversation.
#[uniffi::remote(Record)]
pub struct Participant {
    pub curve25519: String,
    pub ed25519: String,
    pub side: Side,
    pub person: Option<Uuid>,
}

#[uniffi::remote(Enum)]
pub enum Side {
    Resident,
    Team,
    Unknown,
}

#[uniffi::remote(Enum)]
pub enum ChannelKind {
    Conversation,
    TeamNotes,
    Unknown,
}

/// A one-use code with which another device registers as this device's person.
#[uniffi::remote(Record)]
pub struct DeviceLink {
    pub code: String,
    pub expires_at_ms: i64,
}

/// What a counselling record says.
#[uniffi::remote(Enum)]
pub enum Body {
    Message {
        text: String,
        attachments: Vec<FileKey>,
    },
    Note {
        about: Uuid,
        text: String,
    },
    Appointment {
        appointment: Uuid,
        starts_at_ms: i64,
        minutes: i32,
        place: AppointmentPlace,
        cancelled: bool,
    },
    Closed,
    Unknown,
}

#[uniffi::remote(Enum)]
pub enum AppointmentPlace {
    InPerson { address: String },
    Phone { number: String },
    Video { link: String },
}

/// What a reader needs to fetch and open one attachment.
#[uniffi::remote(Record)]
pub struct FileKey {
    pub hash: String,
    pub key: String,
    pub nonce: String,
    pub size: i64,
    pub mime: String,
}
