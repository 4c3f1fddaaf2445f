//! `POST /v1/sync`: one batched exchange.

use std::sync::Arc;

use axum::extract::State;
use quartier_protocol::{
    SyncRequest, SyncResponse, MAX_CURSORS_PER_REQUEST as MAX_CURSORS, MAX_PUSH_PER_REQUEST as MAX_PUSH,
    PROTOCOL_VERSION,
};

use super::auth::Device;
use super::{blocking, Wire};
use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::spaces;

pub async fn sync(
    State(state): State<Arc<AppState>>,
    device: Device,
    Wire(req): Wire<SyncRequest>,
) -> Result<Wire<SyncResponse>, ServerError> {
    if req.protocol != PROTOCOL_VERSION {
        return Err(ServerError::ProtocolVersion(req.protocol));
    }
    if req.push.len() > MAX_PUSH || req.cursors.len() > MAX_CURSORS {
        return Err(ServerError::BadRequest(format!(
            "at most {MAX_PUSH} records and {MAX_CURSORS} spaces per request"
        )));
    }
    let device = device.0;
    // A revoked device learns that every space it asks about is gone, and nothing else.
    if device.revoked {
        return Ok(Wire(SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks: vec![],
            pages: vec![],
            memberships: vec![],
            revoked: req.cursors.iter().map(|c| c.space).collect(),
        }));
    }
    let response = blocking(move || {
        // The push takes and hands over the database lock itself (bounded work per hold).
        let acks = crate::sync::push(
            &state.db,
            &state.docs,
            device.person,
            &req.push,
            &crate::sync::PushLimits::default(),
        )?
        .acks;
        let conn = state.db.lock();
        let (pages, revoked) = crate::sync::pull(
            &conn,
            &state.docs,
            device.device,
            device.person,
            &req.cursors,
            req.budget_bytes as usize,
            quartier_protocol::accepts_created_v1(&req.accepts),
        )?;
        let memberships = spaces::memberships(&conn, device.person)?;
        Ok(SyncResponse {
            protocol: PROTOCOL_VERSION,
            acks,
            pages,
            memberships,
            revoked,
        })
    })
    .await?;
    Ok(Wire(response))
}
