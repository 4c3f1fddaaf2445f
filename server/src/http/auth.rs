//! The authenticated device of a request, from its bearer token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::{accounts, DeviceRecord};

/// The device making the request (possibly revoked: handlers decide what a revoked device gets).
pub struct Device(pub DeviceRecord);

impl FromRequestParts<Arc<AppState>> for Device {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .map(str::to_owned)
            .ok_or(ServerError::Unauthorized)?;
        let state = Arc::clone(state);
        let device = super::blocking(move || accounts::device_by_token(&*state.db.read()?, &token)).await?;
        device.map(Device).ok_or(ServerError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110, 11.1).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Device {
    /// Refuses revoked devices.
    pub fn active(self) -> Result<DeviceRecord, ServerError> {
        if self.0.revoked {
            Err(ServerError::Revoked)
        } else {
            Ok(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_without_regard_to_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc", " Bearer abc"] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
