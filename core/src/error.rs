//! The one error type of the core. Every failure a caller can see is a variant here with a
//! message that says what was wrong; personal data (texts, names) never goes into a message.

use crate::schedule::ScheduleError;
use crate::search::SearchSyntaxError;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core, typed so that apps can react per case.
#[derive(Debug, thiserror::Error)]
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

    /// A write would grow a document beyond the store's per-document budget.
    #[error("document too large: {size} bytes after this change, the budget is {budget} bytes")]
    DocumentTooLarge { size: usize, budget: usize },

    /// Change bytes from another store or the network that do not decode.
    #[error("malformed change for document {doc}: {reason}")]
    MalformedChange { doc: String, reason: String },

    /// An update that tries to turn an item into another kind.
    #[error("an item's kind cannot change (item is a {existing}, update is a {requested})")]
    KindChange {
        existing: &'static str,
        requested: &'static str,
    },

    /// A write the permission rule refuses to this person's role in the space (as the
    /// memberships the store holds say); `code` is the one the server would answer with
    /// (`forbidden`, `not_your_change`). Nothing was written.
    #[error("not permitted ({code}): {message}")]
    NotPermitted {
        code: quartier_protocol::RejectCode,
        message: String,
    },

    /// The requested item or space is not in this store (or not visible to the viewer).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    /// Opening hours or event timing that cannot be evaluated.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),

    /// A search string that cannot be searched.
    #[error(transparent)]
    Search(#[from] SearchSyntaxError),

    /// The device has no space left; nothing of the failed write was stored.
    #[error("the device storage is full; the write was not stored")]
    StorageFull,

    /// The database file is damaged or is not a Quartier store.
    #[error("the store is damaged or not a Quartier store: {0}")]
    Corrupt(String),

    /// The store was written by a newer version of the core.
    #[error("the store has schema version {found}, this core supports up to {supported}")]
    SchemaTooNew { found: i64, supported: i64 },

    /// The store key does not open the store (`key_given`: a key was handed in, and it is not
    /// the store's; otherwise the store is encrypted and no key was given). An encrypted store
    /// and a file of random bytes look alike, so a damaged file may also end here. Detected by
    /// a read-only look before anything is written: the file is not changed.
    #[error("{}", if *key_given {
        "the store key does not open this store (another key, or not a store); nothing was changed"
    } else {
        "the store is encrypted and no store key was given; nothing was changed"
    })]
    WrongStoreKey { key_given: bool },

    /// Any other SQLite failure.
    #[error("storage error: {0}")]
    Storage(rusqlite::Error),

    /// No link to the server (no network, DNS, refused, timed out, dropped mid-response).
    #[error("offline: the server could not be reached ({0})")]
    Offline(String),

    /// The server does not know this device's credentials.
    #[error("the server refused this device's credentials")]
    Unauthorized,

    /// This device was revoked (lost or removed); its spaces have been purged.
    #[error("this device has been revoked")]
    DeviceRevoked,

    /// The device has not registered with a server yet.
    #[error("this device is not registered with a server")]
    NotRegistered,

    /// The server refused a request or failed; `code` is the protocol's error code.
    #[error("the server answered {status} ({code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },

    /// The server asked this device to slow down (`429`); the client sends nothing to it
    /// before `retry_after_secs` have passed.
    #[error("the server is busy with this device or network; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },

    /// Client and server speak different protocol versions.
    #[error("protocol version mismatch: this device speaks {ours}, the server speaks {theirs:?}")]
    ProtocolMismatch { ours: u32, theirs: Vec<u32> },

    /// The server's answer could not be read.
    #[error("malformed answer from the server: {0}")]
    MalformedResponse(String),

    /// A sync was cancelled by the app.
    #[error("sync cancelled")]
    Cancelled,

    /// A media file of a kind the store does not take, or whose content could not be
    /// recognised; `mime_type` is what was sniffed from the content (`unknown` if nothing).
    #[error("unsupported media ({mime_type}): {reason}")]
    UnsupportedMedia { mime_type: String, reason: String },

    /// A media file whose content claims a known type but does not decode (truncated, damaged).
    #[error("malformed {mime_type}: {reason}")]
    MalformedMedia { mime_type: String, reason: String },

    /// A media file over a size limit of the store (bytes or pixels).
    #[error("media too large: {reason}")]
    MediaTooLarge { reason: String },

    /// A downloaded media file whose content does not have the hash it was fetched for.
    #[error("media content does not match its hash: expected {expected}, got {actual}")]
    MediaHashMismatch { expected: String, actual: String },

    /// A file-system failure in the media folder; `op` says what was being done.
    #[error("media file error while {op}: {reason}")]
    MediaIo { op: &'static str, reason: String },

    /// Counselling's end-to-end encryption refused a message, key or backup (tampered, for
    /// another conversation, a wrong passphrase …). Nothing of it was stored.
    #[error("counselling: {0}")]
    Counselling(#[from] quartier_counselling::CryptoError),

    /// An Automerge operation failed on a document held by this store.
    #[error("document error in {doc}: {reason}")]
    Document { doc: String, reason: String },

    /// A device-to-device session stopped: the other device sent something this one does not
    /// take (`code`: `bad_signature`, `bad_certificate`, `not_your_change`, `other_server`,
    /// `unproven`, `not_shared`, `malformed`, `protocol`, `refused_by_peer`). Nothing of the
    /// offending message was stored; what earlier messages brought stays.
    #[error("device to device: {message}")]
    Peer { code: &'static str, message: String },
}

/// The one conversion point from the domain layer's errors: each becomes the variant of the same
/// name, so a caller matches one error type whichever layer refused.
impl From<quartier_domain::Error> for Error {
    fn from(error: quartier_domain::Error) -> Self {
        use quartier_domain::Error as Domain;
        match error {
            Domain::Invalid { field, reason } => Error::Invalid { field, reason },
            Domain::InvalidCoordinates { lat, lon } => Error::InvalidCoordinates { lat, lon },
            Domain::UnknownKind(kind) => Error::UnknownKind(kind),
            Domain::MalformedInput { what, reason } => Error::MalformedInput { what, reason },
            Domain::MalformedChange { doc, reason } => Error::MalformedChange { doc, reason },
            Domain::KindChange { existing, requested } => Error::KindChange { existing, requested },
            Domain::Schedule(error) => Error::Schedule(error),
            Domain::Document { doc, reason } => Error::Document { doc, reason },
            // The domain's error is `non_exhaustive` to other crates: a variant added there
            // and not yet named here still reaches the app, as a document error.
            other => Error::Document {
                doc: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

/// The one conversion point from the core's rich error to the public one apps see
/// ([`QuartierError`](quartier_domain::QuartierError): a variant per case an app reacts to, a
/// stable `code()`, the server's `http_status()`, `is_retryable()`). The reason is this error's
/// message; the structured facts an app branches on are carried over, not parsed out of it.
impl From<Error> for quartier_domain::QuartierError {
    fn from(error: Error) -> Self {
        use quartier_domain::QuartierError as Public;
        let reason = error.to_string();
        match error {
            Error::Invalid { .. } => Public::Invalid { reason },
            Error::InvalidCoordinates { .. } => Public::InvalidCoordinates { reason },
            Error::UnknownKind(_) => Public::UnknownKind { reason },
            Error::MalformedInput { .. } => Public::MalformedInput { reason },
            Error::DocumentTooLarge { .. } => Public::DocumentTooLarge { reason },
            Error::MalformedChange { .. } => Public::MalformedChange { reason },
            Error::KindChange { .. } => Public::KindChange { reason },
            Error::NotFound { .. } => Public::NotFound { reason },
            Error::NotPermitted { code, .. } => Public::NotPermitted {
                reason,
                code: code.as_str().to_owned(),
            },
            Error::Schedule(_) => Public::Schedule { reason },
            Error::Search(_) => Public::Search { reason },
            Error::StorageFull => Public::StorageFull { reason },
            Error::Corrupt(_) => Public::Corrupt { reason },
            Error::SchemaTooNew { .. } => Public::SchemaTooNew { reason },
            Error::WrongStoreKey { .. } => Public::WrongStoreKey { reason },
            Error::Storage(_) => Public::Storage { reason },
            Error::Offline(_) => Public::Offline { reason },
            Error::RateLimited { retry_after_secs } => Public::RateLimited {
                reason,
                retry_after_secs: i64::try_from(retry_after_secs).unwrap_or(i64::MAX),
            },
            Error::Unauthorized => Public::Unauthorized { reason },
            Error::DeviceRevoked => Public::DeviceRevoked { reason },
            Error::NotRegistered => Public::NotRegistered { reason },
            Error::Server { status, code, .. } => Public::Server {
                reason,
                status: status.into(),
                code,
            },
            Error::ProtocolMismatch { .. } => Public::ProtocolMismatch { reason },
            Error::MalformedResponse(_) => Public::MalformedResponse { reason },
            Error::Cancelled => Public::Cancelled { reason },
            Error::Document { .. } => Public::Document { reason },
            Error::UnsupportedMedia { .. } => Public::Media {
                reason,
                code: "unsupported_media".into(),
            },
            Error::MalformedMedia { .. } => Public::Media {
                reason,
                code: "malformed_media".into(),
            },
            Error::MediaTooLarge { .. } => Public::Media {
                reason,
                code: "media_too_large".into(),
            },
            Error::MediaHashMismatch { .. } => Public::Media {
                reason,
                code: "media_hash_mismatch".into(),
            },
            Error::MediaIo { .. } => Public::Media {
                reason,
                code: "media_io".into(),
            },
            Error::Peer { code, .. } => Public::Peer {
                reason,
                code: code.to_owned(),
            },
            Error::Counselling(e) => Public::Counselling {
                reason,
                code: crate::counselling::error_code(&e).into(),
            },
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::StorageFull,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                Error::Corrupt(error.to_string())
            }
            _ => Error::Storage(error),
        }
    }
}

/// An id the store itself wrote, read back: text that is not a UUID means the file is damaged.
pub(crate) fn parse_stored_uuid(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|e| Error::Corrupt(format!("stored id {text:?}: {e}")))
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A file-system error in the media folder; a full disk is [`Error::StorageFull`].
    pub(crate) fn media_io(op: &'static str, error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Error::StorageFull,
            _ => Error::MediaIo {
                op,
                reason: error.to_string(),
            },
        }
    }

    pub(crate) fn document(doc: impl ToString, error: impl std::fmt::Display) -> Self {
        Error::Document {
            doc: doc.to_string(),
            reason: error.to_string(),
        }
    }
}
