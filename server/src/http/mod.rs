//! The HTTP surface (axum): routes, the authenticated-device extractor and the wire-format body
//! extractor. Handlers only translate; the work happens in `storage` and `sync`, on blocking
//! threads.

mod auth;
mod body;
mod devices;
mod spaces;
mod sync;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AppState;

pub use body::Wire;

/// The service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/devices", post(devices::register))
        .route("/v1/devices/{device}", delete(devices::revoke))
        .route("/v1/spaces", post(spaces::create))
        .route("/v1/spaces/{space}/invites", post(spaces::invite))
        .route("/v1/invites/redeem", post(spaces::redeem))
        .route(
            "/v1/spaces/{space}/members/{person}",
            put(spaces::set_role).delete(spaces::remove),
        )
        .route("/v1/sync", post(sync::sync))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Runs blocking database work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::error::ServerError> + Send + 'static,
) -> Result<T, crate::error::ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::error::ServerError::Internal(format!("worker failed: {e}")))?
}
