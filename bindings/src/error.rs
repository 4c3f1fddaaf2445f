//! The one error type that crosses the boundary, [`QuartierError`], and [`guard`], which runs a
//! call with panics caught so that a panic arrives as `QuartierError::Internal` instead of
//! unwinding into foreign code.

use std::panic::{catch_unwind, AssertUnwindSafe};

use quartier_core::Error as CoreError;

/// Everything that can go wrong, one variant per case of the core's error plus the facade's
/// own (`Closed`, `Internal`). Flat: each variant carries the core's human-readable message
/// (Kotlin `QuartierException.NotFound(message)`, Swift `QuartierError.NotFound(message:)`,
/// Python `QuartierError.NotFound`), so apps branch on the type and show or log the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum QuartierError {
    /// A field failed validation (also: an id that is not a UUID, a malformed date or time).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidCoordinates(String),
    #[error("{0}")]
    UnknownKind(String),
    /// JSON handed in (`create_item_json`) could not be read.
    #[error("{0}")]
    MalformedInput(String),
    #[error("{0}")]
    DocumentTooLarge(String),
    #[error("{0}")]
    MalformedChange(String),
    #[error("{0}")]
    KindChange(String),
    #[error("{0}")]
    NotFound(String),
    /// A write this person's role may not make (the store's copy of the memberships says so);
    /// the message names the server's code, e.g. `not permitted (forbidden): …`. Nothing was
    /// written. Ask `allowed_actions`/`may_create` first to grey such actions out.
    #[error("{0}")]
    NotPermitted(String),
    /// Opening hours or event timing that cannot be evaluated.
    #[error("{0}")]
    Schedule(String),
    /// A search string that cannot be searched.
    #[error("{0}")]
    Search(String),
    #[error("{0}")]
    StorageFull(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    SchemaTooNew(String),
    #[error("{0}")]
    Storage(String),
    /// The server could not be reached; retry later.
    #[error("{0}")]
    Offline(String),
    /// The server asked this device to slow down; the message says when to try again.
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    DeviceRevoked(String),
    #[error("{0}")]
    NotRegistered(String),
    /// The server refused a request (e.g. not a coordinator, invite expired).
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    ProtocolMismatch(String),
    #[error("{0}")]
    MalformedResponse(String),
    /// The call was cancelled through its `CancelToken` (or the sync was stopped).
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Document(String),
    /// A media file that is unsupported, malformed, too large, does not match its hash, or
    /// could not be read or written.
    #[error("{0}")]
    Media(String),
    /// The store was closed with `close()`; open it again to go on.
    #[error("{0}")]
    Closed(String),
    /// A bug: a panic inside the library, caught at the boundary. The library stays usable.
    #[error("{0}")]
    Internal(String),
}

impl From<quartier_core::DomainError> for QuartierError {
    fn from(error: quartier_core::DomainError) -> Self {
        CoreError::from(error).into()
    }
}

impl From<CoreError> for QuartierError {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::Invalid { .. } => Self::Invalid(message),
            CoreError::InvalidCoordinates { .. } => Self::InvalidCoordinates(message),
            CoreError::UnknownKind(_) => Self::UnknownKind(message),
            CoreError::MalformedInput { .. } => Self::MalformedInput(message),
            CoreError::DocumentTooLarge { .. } => Self::DocumentTooLarge(message),
            CoreError::MalformedChange { .. } => Self::MalformedChange(message),
            CoreError::KindChange { .. } => Self::KindChange(message),
            CoreError::NotFound { .. } => Self::NotFound(message),
            CoreError::NotPermitted { .. } => Self::NotPermitted(message),
            CoreError::Schedule(_) => Self::Schedule(message),
            CoreError::Search(_) => Self::Search(message),
            CoreError::StorageFull => Self::StorageFull(message),
            CoreError::Corrupt(_) => Self::Corrupt(message),
            CoreError::SchemaTooNew { .. } => Self::SchemaTooNew(message),
            CoreError::Storage(_) => Self::Storage(message),
            CoreError::Offline(_) => Self::Offline(message),
            CoreError::RateLimited { .. } => Self::RateLimited(message),
            CoreError::Unauthorized => Self::Unauthorized(message),
            CoreError::DeviceRevoked => Self::DeviceRevoked(message),
            CoreError::NotRegistered => Self::NotRegistered(message),
            CoreError::Server { .. } => Self::Server(message),
            CoreError::ProtocolMismatch { .. } => Self::ProtocolMismatch(message),
            CoreError::MalformedResponse(_) => Self::MalformedResponse(message),
            CoreError::Cancelled => Self::Cancelled(message),
            CoreError::Document { .. } => Self::Document(message),
            CoreError::UnsupportedMedia { .. }
            | CoreError::MalformedMedia { .. }
            | CoreError::MediaTooLarge { .. }
            | CoreError::MediaHashMismatch { .. }
            | CoreError::MediaIo { .. } => Self::Media(message),
            // The core's error is non-exhaustive: a newer variant still arrives with its message.
            _ => Self::Internal(message),
        }
    }
}

impl QuartierError {
    /// An input the facade itself rejects (ids, dates), in the core's wording.
    pub(crate) fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("invalid {field}: {reason}"))
    }

    pub(crate) fn closed() -> Self {
        Self::Closed("the store is closed".into())
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(panic = %what, "a panic was caught at the FFI boundary");
        Self::Internal(format!(
            "internal error (a bug in quartier, please report it): {what}"
        ))
    }
}

/// Result of every exported call.
pub type FfiResult<T> = Result<T, QuartierError>;

/// Runs one exported call with panics caught: a panic becomes [`QuartierError::Internal`].
/// The core keeps its state consistent across a panic (SQLite transactions roll back on
/// unwind, its mutexes recover from poisoning), so the store stays usable afterwards.
pub(crate) fn guard<T>(f: impl FnOnce() -> FfiResult<T>) -> FfiResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(QuartierError::from_panic(&*payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_variant_and_message() {
        let e: QuartierError = CoreError::NotFound {
            what: "item",
            id: "abc".into(),
        }
        .into();
        assert_eq!(e, QuartierError::NotFound("item abc not found".into()));
        let e: QuartierError = CoreError::Cancelled.into();
        assert!(matches!(e, QuartierError::Cancelled(m) if m == "sync cancelled"));
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let result: FfiResult<()> = guard(|| panic!("boom"));
        match result {
            Err(QuartierError::Internal(message)) => assert!(message.contains("boom"), "{message}"),
            other => panic!("expected Internal, got {other:?}"),
        }
        assert_eq!(guard(|| Ok(3)), Ok(3));
    }
}
