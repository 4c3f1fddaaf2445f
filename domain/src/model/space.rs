//! A space's shared metadata (one Automerge document per space): name, description, time zone,
//! categories and layers. Membership and roles are not here: the server decides them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::SpaceId;
use super::text::LocalizedText;
use crate::error::{Error, Result};

/// A category of items (e.g. `food` → "Lebensmittel"), with labels per language.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Category {
    pub label: LocalizedText,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub icon: Option<String>,
}

/// A map layer: a named selection of kinds and tags that a person switches on or off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Layer {
    pub label: LocalizedText,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub kinds: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub tags: Vec<String>,
}

/// A space's categories by key, e.g. `food`.
pub type Categories = BTreeMap<String, Category>;
/// A space's map layers by key.
pub type Layers = BTreeMap<String, Layer>;

// Like the maps of item details (see `StringMap` in `details.rs`): `BTreeMap`s in the model for a
// stable order in JSON, dictionaries across the FFI (uniffi only knows `HashMap`).
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Categories, std::collections::HashMap<String, Category>, {
    remote,
    lower: |map| map.into_iter().collect(),
    try_lift: |map| Ok(map.into_iter().collect()),
});

#[cfg(feature = "uniffi")]
uniffi::custom_type!(Layers, std::collections::HashMap<String, Layer>, {
    remote,
    lower: |map| map.into_iter().collect(),
    try_lift: |map| Ok(map.into_iter().collect()),
});

/// What a space's members share about the space itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SpaceMeta {
    pub name: LocalizedText,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub description: LocalizedText,
    /// IANA time zone in which opening hours are read, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// BCP-47 tag of the language most members read.
    pub default_language: String,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub categories: Categories,
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub layers: Layers,
}

impl SpaceMeta {
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::invalid("space name", "a space needs a name"));
        }
        self.name.validate("space name", 1024)?;
        self.description.validate("space description", 16 * 1024)?;
        crate::schedule::parse_time_zone(&self.time_zone)?;
        super::text::validate_language_tag(&self.default_language)
            .map_err(|reason| Error::invalid("default language", reason))?;
        for key in self.categories.keys().chain(self.layers.keys()) {
            if key.is_empty() || key.len() > 64 {
                return Err(Error::invalid(
                    "space keys",
                    "category and layer keys must have 1 to 64 bytes",
                ));
            }
        }
        Ok(())
    }
}

/// A space as read from the projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Space {
    pub id: SpaceId,
    #[serde(flatten)]
    pub meta: SpaceMeta,
}
