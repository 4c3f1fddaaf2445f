//! Request and response bodies in the protocol's wire format (CBOR + zstd).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::ServerError;
use crate::state::AppState;

/// A message in the wire format, as a request body or a response.
pub struct Wire<T>(pub T);

impl<T: DeserializeOwned> FromRequest<std::sync::Arc<AppState>> for Wire<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &std::sync::Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // `application/vnd.quartier.sync+cbor`, parameters allowed; nothing else is read.
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case(quartier_protocol::CONTENT_TYPE) {
            return Err(ServerError::UnsupportedMediaType(format!(
                "the body must be `{}` (zstd-compressed CBOR), not `{content_type}`",
                quartier_protocol::CONTENT_TYPE
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ServerError::BodyTooLarge { limit }
            } else if timed_out(&e) {
                ServerError::Timeout
            } else {
                ServerError::BadRequest(format!("the body could not be read: {e}"))
            }
        })?;
        Ok(Wire(quartier_protocol::decode(
            &bytes,
            quartier_protocol::MAX_DECODED_BYTES,
        )?))
    }
}

/// Whether reading a body failed because it stopped arriving (`RequestBodyTimeoutLayer`).
pub(crate) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

impl<T: Serialize> IntoResponse for Wire<T> {
    fn into_response(self) -> Response {
        match quartier_protocol::encode(&self.0) {
            Ok(bytes) => {
                let mut response = bytes.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(quartier_protocol::CONTENT_TYPE),
                );
                response
            }
            Err(e) => ServerError::Internal(e.to_string()).into_response(),
        }
    }
}
