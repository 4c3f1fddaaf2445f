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
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or(ServerError::Unauthorized)?;
        let state = Arc::clone(state);
        let device = super::blocking(move || accounts::device_by_token(&state.db.lock(), &token)).await?;
        device.map(Device).ok_or(ServerError::Unauthorized)
    }
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
