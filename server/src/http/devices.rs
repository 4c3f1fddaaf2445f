//! Device registration and revocation.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use quartier_protocol::{DeviceRegistered, RegisterDevice};
use uuid::Uuid;

use super::auth::Device;
use super::{blocking, Ids, Wire};
use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::{accounts, random_token};

pub async fn register(
    State(state): State<Arc<AppState>>,
    Wire(req): Wire<RegisterDevice>,
) -> Result<Wire<DeviceRegistered>, ServerError> {
    if req.public_key.len() != 32
        || ed25519_dalek::VerifyingKey::from_bytes(&req.public_key.as_slice().try_into().unwrap_or([0; 32]))
            .is_err()
    {
        return Err(ServerError::BadRequest(
            "public_key must be a 32-byte Ed25519 key".into(),
        ));
    }
    if req.display_name.as_ref().is_some_and(|n| n.len() > 200) {
        return Err(ServerError::BadRequest(
            "display_name may have at most 200 bytes".into(),
        ));
    }
    let token = random_token(32)?;
    let registered = blocking(move || {
        let record = accounts::register(
            &state.db.lock(),
            &req.public_key,
            req.display_name.as_deref(),
            &token,
        )?;
        Ok(DeviceRegistered {
            device: record.device,
            person: record.person,
            token,
        })
    })
    .await?;
    tracing::info!(device = %registered.device, "device registered");
    Ok(Wire(registered))
}

/// Revokes a device of the caller's own person (a lost phone), effective at once.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Device,
    Ids(device): Ids<Uuid>,
) -> Result<StatusCode, ServerError> {
    let caller = caller.active()?;
    blocking(move || {
        let conn = state.db.lock();
        let target =
            accounts::device(&conn, device)?.ok_or_else(|| ServerError::NotFound("no such device".into()))?;
        if target.person != caller.person {
            return Err(ServerError::Forbidden(
                "only the device's own person may revoke it".into(),
            ));
        }
        accounts::revoke_device(&conn, device)?;
        Ok(())
    })
    .await?;
    tracing::info!(%device, "device revoked");
    Ok(StatusCode::NO_CONTENT)
}
