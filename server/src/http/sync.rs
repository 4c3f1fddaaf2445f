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
    let response = blocking(move || {
        let response = crate::sync::exchange(&state.db, &state.docs, &device, &req)?;
        let erasing = req.counselling.as_ref().is_some_and(|c| !c.erase.is_empty());
        if erasing {
            // The erased conversations' attachments: their bytes go now, not at the next
            // collection. The erasure itself is committed; a failure here is only logged.
            if let Err(e) = crate::blobs::gc::drop_erased(&state.db, &state.blobs) {
                tracing::error!(error = %e, "deleting erased attachments failed");
            }
        }
        Ok(response)
    })
    .await?;
    Ok(Wire(response))
}
