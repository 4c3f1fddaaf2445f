//! The message every change carries: the person on whose behalf the device made it and the
//! top-level fields it touched. Being part of the change, it travels with it and is covered by
//! the change's hash (and, with sync, by the device's signature).

use serde::{Deserialize, Serialize};

use crate::model::PersonId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub by: PersonId,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl ChangeNote {
    pub fn new(by: PersonId, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            by,
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a note from a change message; changes from unknown tools have none.
    pub fn decode(message: Option<&str>) -> Option<Self> {
        message.and_then(|m| serde_json::from_str(m).ok())
    }
}
