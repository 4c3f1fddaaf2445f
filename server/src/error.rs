//! The server's error type and its HTTP answer: a status code and an [`ErrorBody`] with a
//! stable code and a clear message (never personal data). `http::guard` adds the request id,
//! replaces a server error's text (logged here, under the request's span) with a neutral one,
//! and writes the body as CBOR, JSON or text for whoever asked.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quartier_protocol::{ErrorBody, WireError, PROTOCOL_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("malformed body: {0}")]
    Wire(#[from] WireError),
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("missing or unknown credentials")]
    Unauthorized,
    #[error("this device has been revoked")]
    Revoked,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("too many requests; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("the request took too long (a body that stopped arriving, or a slow link)")]
    Timeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    UpgradeRequired(String),
    #[error("protocol version {0} is not spoken here")]
    ProtocolVersion(u32),
    #[error("cannot start: {0}")]
    Startup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for ServerError {
    fn from(e: rusqlite::Error) -> Self {
        ServerError::Internal(format!("database: {e}"))
    }
}

impl ServerError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ServerError::Wire(_) => (StatusCode::BAD_REQUEST, "malformed"),
            ServerError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ServerError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ServerError::Revoked => (StatusCode::FORBIDDEN, "revoked"),
            ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServerError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ServerError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ServerError::Gone(_) => (StatusCode::GONE, "gone"),
            ServerError::ProtocolVersion(_) => (StatusCode::CONFLICT, "protocol_version"),
            ServerError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ServerError::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ServerError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ServerError::UpgradeRequired(_) => (StatusCode::UPGRADE_REQUIRED, "upgrade_required"),
            ServerError::Startup(_) | ServerError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, code, "request refused");
        }
        let body = ErrorBody {
            code: code.into(),
            message: self.to_string(),
            protocol_versions: if matches!(self, ServerError::ProtocolVersion(_)) {
                vec![PROTOCOL_VERSION]
            } else {
                vec![]
            },
            request_id: None,
        };
        let bytes = quartier_protocol::encode(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(quartier_protocol::CONTENT_TYPE),
        );
        if let ServerError::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
