//! The error apps see: [`QuartierError`], the public face of the core's rich error
//! (`quartier_core::Error`, which converts into it at one place, `From<quartier_core::Error>`).
//!
//! Why here, at the bottom layer, and not in the FFI crate: uniffi turns a value that fails to
//! cross the boundary (an id that is not a UUID, inside any record or argument) into a typed
//! error only if the conversion's error *is* the exported error type. The custom types for ids
//! are declared where the ids are (this crate), so the error they fail with must be nameable
//! here. The type is plain data; only with the `uniffi` feature does it derive `uniffi::Error`.
//!
//! The application-services pattern (`components/support/error`): the internal error stays
//! rich and precise for Rust callers and logs; the public one is small and stable — a variant
//! per case an app reacts to differently, a human-readable `reason` (never personal data), and
//! three structured facts every variant answers: [`error_code`](QuartierError::error_code) (a
//! stable snake_case string, the server's own code where it gave one),
//! [`http_status`](QuartierError::http_status) (the server's answer, where there was one) and
//! [`is_retryable`](QuartierError::is_retryable) (whether trying the same call again later can
//! succeed). An app tells "not a member" (`NotPermitted`/`Server` with code `not_a_member`,
//! not retryable) from "offline" (`Offline`, retryable) without parsing messages.

/// Everything that can go wrong, as apps see it (Kotlin `QuartierException.NotFound`, Swift
/// `QuartierError.NotFound(reason:)`, Python `QuartierError.NotFound`). Branch on the variant or
/// on [`error_code`](Self::error_code); show or log `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum QuartierError {
    /// A field failed validation (also: an id that is not a UUID, a malformed date or time).
    #[error("{reason}")]
    Invalid { reason: String },
    #[error("{reason}")]
    InvalidCoordinates { reason: String },
    #[error("{reason}")]
    UnknownKind { reason: String },
    /// JSON handed in (`create_item_json`) could not be read.
    #[error("{reason}")]
    MalformedInput { reason: String },
    #[error("{reason}")]
    DocumentTooLarge { reason: String },
    #[error("{reason}")]
    MalformedChange { reason: String },
    #[error("{reason}")]
    KindChange { reason: String },
    #[error("{reason}")]
    NotFound { reason: String },
    /// A write this person's role may not make (the store's copy of the memberships says so);
    /// `code` is the one the server would answer with (`forbidden`, `not_your_change`,
    /// `not_a_member`). Nothing was written. Ask `allowed_actions`/`may_create` first to grey
    /// such actions out.
    #[error("{reason}")]
    NotPermitted { reason: String, code: String },
    /// Opening hours or event timing that cannot be evaluated.
    #[error("{reason}")]
    Schedule { reason: String },
    /// A search string that cannot be searched.
    #[error("{reason}")]
    Search { reason: String },
    #[error("{reason}")]
    StorageFull { reason: String },
    #[error("{reason}")]
    Corrupt { reason: String },
    #[error("{reason}")]
    SchemaTooNew { reason: String },
    /// The store key handed to `open` does not open the store: another key, no key for an
    /// encrypted store, or not a store at all (an encrypted file and random bytes look alike).
    /// Nothing was read or written; open it again with the right key.
    #[error("{reason}")]
    WrongStoreKey { reason: String },
    #[error("{reason}")]
    Storage { reason: String },
    /// The server could not be reached; retry later.
    #[error("{reason}")]
    Offline { reason: String },
    /// The server asked this device to slow down: nothing is sent to it before
    /// `retry_after_secs` have passed.
    #[error("{reason}")]
    RateLimited { reason: String, retry_after_secs: i64 },
    #[error("{reason}")]
    Unauthorized { reason: String },
    #[error("{reason}")]
    DeviceRevoked { reason: String },
    #[error("{reason}")]
    NotRegistered { reason: String },
    /// The server refused a request or failed: `status` its HTTP status, `code` the protocol's
    /// error code (e.g. `forbidden` for "not a coordinator", `invite_expired`).
    #[error("{reason}")]
    Server {
        reason: String,
        status: i32,
        code: String,
    },
    #[error("{reason}")]
    ProtocolMismatch { reason: String },
    #[error("{reason}")]
    MalformedResponse { reason: String },
    /// The call was cancelled through its `CancelToken` (or the sync was stopped).
    #[error("{reason}")]
    Cancelled { reason: String },
    #[error("{reason}")]
    Document { reason: String },
    /// A media file that is unsupported, malformed, too large, does not match its hash, or
    /// could not be read or written; `code` says which (`unsupported_media`, `malformed_media`,
    /// `media_too_large`, `media_hash_mismatch`, `media_io`).
    #[error("{reason}")]
    Media { reason: String, code: String },
    /// Counselling's end-to-end encryption refused something: `code` says what
    /// (`wrong_passphrase`, `tampered`, `missing_key`, `replayed`, `misdirected`, `malformed`,
    /// `too_large`, `no_session`, `not_a_participant`).
    #[error("{reason}")]
    Counselling { reason: String, code: String },
    /// A device-to-device session stopped: the other device sent something not taken
    /// (`code`: `bad_signature`, `bad_certificate`, `not_your_change`, `other_server`,
    /// `unproven`, `not_shared`, `malformed`, `protocol`, `refused_by_peer`).
    #[error("{reason}")]
    Peer { reason: String, code: String },
    /// The store was closed with `close()`; open it again to go on.
    #[error("{reason}")]
    Closed { reason: String },
    /// A bug: a panic inside the library, caught at the boundary, or an error this version does
    /// not know. The library stays usable.
    #[error("{reason}")]
    Internal { reason: String },
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl QuartierError {
    /// A stable snake_case name of the case, for branching and analytics: the variant's name
    /// (`not_found`, `offline`, `closed`…), or the finer code the variant carries (the server's
    /// `code`, the permission rule's `forbidden`/`not_a_member`, the media case). Stable across
    /// versions, unlike the human-readable reason. Not called `code`: in Python a method of that
    /// name would be hidden by the `code` field of `Server`, `NotPermitted` and `Media`.
    pub fn error_code(&self) -> String {
        use QuartierError::*;
        let name = match self {
            NotPermitted { code, .. }
            | Server { code, .. }
            | Media { code, .. }
            | Counselling { code, .. }
            | Peer { code, .. } => return code.clone(),
            Invalid { .. } => "invalid",
            InvalidCoordinates { .. } => "invalid_coordinates",
            UnknownKind { .. } => "unknown_kind",
            MalformedInput { .. } => "malformed_input",
            DocumentTooLarge { .. } => "document_too_large",
            MalformedChange { .. } => "malformed_change",
            KindChange { .. } => "kind_change",
            NotFound { .. } => "not_found",
            Schedule { .. } => "schedule",
            Search { .. } => "search",
            StorageFull { .. } => "storage_full",
            Corrupt { .. } => "corrupt",
            SchemaTooNew { .. } => "schema_too_new",
            WrongStoreKey { .. } => "wrong_store_key",
            Storage { .. } => "storage",
            Offline { .. } => "offline",
            RateLimited { .. } => "rate_limited",
            Unauthorized { .. } => "unauthorized",
            DeviceRevoked { .. } => "device_revoked",
            NotRegistered { .. } => "not_registered",
            ProtocolMismatch { .. } => "protocol_mismatch",
            MalformedResponse { .. } => "malformed_response",
            Cancelled { .. } => "cancelled",
            Document { .. } => "document",
            Closed { .. } => "closed",
            Internal { .. } => "internal",
        };
        name.to_owned()
    }

    /// The HTTP status the server answered with, where the error is the server's answer
    /// (`Server`, `Unauthorized` 401, `RateLimited` 429); null for everything decided on the
    /// device, and for `Offline` (no answer at all).
    pub fn http_status(&self) -> Option<i32> {
        match self {
            QuartierError::Server { status, .. } => Some(*status),
            QuartierError::Unauthorized { .. } => Some(401),
            QuartierError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether the same call, unchanged, can succeed later: no link (`Offline`), the server
    /// busy or failing (`RateLimited`, `Server` with a 5xx, 408 or 429 status), the disk full
    /// (`StorageFull`, once space is freed). Everything else needs a different input, another
    /// role, a new registration or a fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            QuartierError::Offline { .. }
            | QuartierError::RateLimited { .. }
            | QuartierError::StorageFull { .. } => true,
            QuartierError::Server { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}

impl QuartierError {
    /// An input rejected at the boundary (ids, dates), in the core's wording.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        QuartierError::Invalid {
            reason: format!("invalid {field}: {reason}"),
        }
    }

    /// A call on a store that was closed.
    pub fn closed() -> Self {
        QuartierError::Closed {
            reason: "the store is closed".into(),
        }
    }

    /// A bug (a caught panic, a failed runtime start).
    pub fn internal(reason: impl Into<String>) -> Self {
        QuartierError::Internal {
            reason: reason.into(),
        }
    }
}

/// The domain's own errors, as apps see them; the core's conversion
/// (`From<quartier_core::Error>`) goes through its own error first, this one serves values
/// refused while crossing the boundary (ids) and the domain's callers.
impl From<crate::Error> for QuartierError {
    fn from(error: crate::Error) -> Self {
        use crate::Error as E;
        let reason = error.to_string();
        match error {
            E::Invalid { .. } => QuartierError::Invalid { reason },
            E::InvalidCoordinates { .. } => QuartierError::InvalidCoordinates { reason },
            E::UnknownKind(_) => QuartierError::UnknownKind { reason },
            E::MalformedInput { .. } => QuartierError::MalformedInput { reason },
            E::MalformedChange { .. } => QuartierError::MalformedChange { reason },
            E::KindChange { .. } => QuartierError::KindChange { reason },
            E::Schedule(_) => QuartierError::Schedule { reason },
            E::Document { .. } => QuartierError::Document { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_status_and_retry_tell_offline_from_not_a_member() {
        let offline = QuartierError::Offline { reason: "x".into() };
        assert_eq!(offline.error_code(), "offline");
        assert!(offline.is_retryable());
        assert_eq!(offline.http_status(), None);

        let refused = QuartierError::Server {
            reason: "the server answered 403 (not_a_member): …".into(),
            status: 403,
            code: "not_a_member".into(),
        };
        assert_eq!(refused.error_code(), "not_a_member");
        assert_eq!(refused.http_status(), Some(403));
        assert!(!refused.is_retryable());

        let failing = QuartierError::Server {
            reason: "x".into(),
            status: 503,
            code: "unavailable".into(),
        };
        assert!(failing.is_retryable());
        assert_eq!(QuartierError::closed().error_code(), "closed");
        assert_eq!(
            QuartierError::invalid("item id", "bad").to_string(),
            "invalid item id: bad"
        );
    }
}
