//! Identifiers: UUIDv7 for everything the core creates, so ids sort by creation time and never
//! collide between devices that were offline when they made them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        // Across the FFI an id is its UUID string. A string that is not a UUID is refused while
        // crossing, as `QuartierError::Invalid` (uniffi hands that error to the call as its
        // own result, because it is the exported error type), never as a crash.
        #[cfg(feature = "uniffi")]
        uniffi::custom_type!($name, String, {
            lower: |id| id.to_string(),
            try_lift: |text| Ok(text.parse::<$name>().map_err(crate::QuartierError::from)?),
        });

        impl FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self, Error> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|e| Error::invalid($what, format!("`{}` is not a UUID ({e})", text.chars().take(40).collect::<String>())))
            }
        }
    };
}

uuid_id!(
    /// An item (post, place, offer, …): one Automerge document each.
    ItemId,
    "item id"
);
uuid_id!(
    /// A space (street, district, group): one metadata document plus its items.
    SpaceId,
    "space id"
);
uuid_id!(
    /// A person. Assigned by the server at registration; a shared phone serves several.
    PersonId,
    "person id"
);
