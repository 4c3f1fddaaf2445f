//! The errors of the domain layer: validation of what a person wrote, and documents that cannot
//! be read or written. The core maps each onto the variant of the same name of its own error
//! (`quartier_core::Error`), so apps see one error type; the server answers them as refusals.
//! Personal data (texts, names) never goes into a message.

use crate::schedule::ScheduleError;

/// Result alias used throughout the domain layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the domain layer, typed so that callers can react per case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a command failed validation; `field` names it, `reason` says why.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// Coordinates outside WGS84 ranges or not finite.
    #[error(
        "invalid coordinates: latitude {lat} must be within -90..=90 and longitude {lon} within -180..=180"
    )]
    InvalidCoordinates { lat: f64, lon: f64 },

    /// An item kind that this version does not know.
    #[error(
        "unknown item kind `{0}`; expected one of post, place, offer, event, request, observation, comment"
    )]
    UnknownKind(String),

    /// A JSON payload handed in by the app could not be read.
    #[error("malformed {what}: {reason}")]
    MalformedInput { what: &'static str, reason: String },

    /// Change bytes from another store or the network that do not decode.
    #[error("malformed change for document {doc}: {reason}")]
    MalformedChange { doc: String, reason: String },

    /// An update that tries to turn an item into another kind.
    #[error("an item's kind cannot change (item is a {existing}, update is a {requested})")]
    KindChange {
        existing: &'static str,
        requested: &'static str,
    },

    /// Opening hours or event timing that cannot be evaluated.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),

    /// An Automerge operation failed on a document.
    #[error("document error in {doc}: {reason}")]
    Document { doc: String, reason: String },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn document(doc: impl ToString, error: impl std::fmt::Display) -> Self {
        Error::Document {
            doc: doc.to_string(),
            reason: error.to_string(),
        }
    }
}
