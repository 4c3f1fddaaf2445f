//! `POST /v1/sync`: one batched exchange (`crate::sync::exchange`) carried over HTTP.

use std::sync::Arc;

use axum::extract::State;
use quartier_protocol::{SyncRequest, SyncResponse};

use super::auth::Device;
use super::{blocking, Wire};
use crate::error::ServerError;
use crate::state::AppState;

pub async fn sync(
    State(state): State<Arc<AppState>>,
    device: Device,
    Wire(req): Wire<SyncRequest>,
) -> Result<Wire<SyncResponse>, ServerError> {
    let device = device.0;
    let response = blocking(move || crate::sync::exchange(&state.db, &state.docs, &device, &req)).await?;
    Ok(Wire(response))
}
