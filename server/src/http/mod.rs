//! The HTTP surface (axum): routes, the authenticated-device extractor and the wire-format body
//! extractor. Handlers only translate; the work happens in `storage` and `sync`, on blocking
//! threads.

mod auth;
mod blobs;
mod body;
pub mod devices;
pub mod guard;
mod public;
mod spaces;
mod sync;
mod teams;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AppState;

pub use blobs::parse_range;
pub use body::Wire;

/// The service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/devices", post(devices::register))
        .route("/v1/devices/challenge", post(devices::challenge))
        .route("/v1/devices/{device}", delete(devices::revoke))
        .route("/v1/me/display-name", put(devices::set_display_name))
        .route("/v1/me/device-links", post(devices::create_link))
        .route("/v1/spaces", post(spaces::create))
        .route(
            "/v1/spaces/{space}/invites",
            post(spaces::invite).get(spaces::list_invites),
        )
        .route(
            "/v1/spaces/{space}/invites/{invite}",
            delete(spaces::revoke_invite),
        )
        .route("/v1/invites/redeem", post(spaces::redeem))
        .route("/v1/invites/redeem-offline", post(spaces::redeem_offline))
        .route("/v1/spaces/{space}/members", get(spaces::members))
        .route(
            "/v1/spaces/{space}/members/{person}",
            put(spaces::set_role).delete(spaces::remove),
        )
        .route("/v1/sync", post(sync::sync))
        .route("/v1/spaces/{space}/teams", post(teams::create).get(teams::list))
        .route("/v1/spaces/{space}/teams/{team}", put(teams::update))
        .route("/v1/spaces/{space}/teams/{team}/members", get(teams::members))
        .route(
            "/v1/spaces/{space}/teams/{team}/members/{person}",
            put(teams::add_member).delete(teams::remove_member),
        )
        .route(
            "/v1/counselling/backups/{backup}",
            put(teams::put_backup).get(teams::get_backup),
        )
        .route(
            "/v1/counselling/{conversation}/attachments",
            post(blobs::announce_attachment),
        )
        .route(
            "/v1/counselling/{conversation}/attachments/{hash}/chunks/{index}",
            put(blobs::put_attachment_chunk),
        )
        .route(
            "/v1/counselling/{conversation}/attachments/{hash}/complete",
            post(blobs::complete_attachment),
        )
        .route(
            "/v1/counselling/{conversation}/attachments/{hash}",
            get(blobs::download_attachment),
        )
        .route("/v1/spaces/{space}/blobs", post(blobs::announce))
        .route("/v1/blobs/{hash}/chunks/{index}", put(blobs::put_chunk))
        .route("/v1/blobs/{hash}/complete", post(blobs::complete))
        .route("/v1/blobs/{hash}", get(blobs::download))
        .route(
            "/v1/spaces/{space}/calendar-feed",
            post(public::renew_feed).delete(public::revoke_feed),
        )
        .route("/calendar/{file}", get(public::feed))
        .route("/i/{item}", get(public::item_page))
        // Every refusal carries an `ErrorBody`, unknown routes and methods included.
        .fallback(|| async { crate::error::ServerError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            crate::error::ServerError::MethodNotAllowed("this endpoint does not take this method".into())
        })
        .layer(DefaultBodyLimit::max(limit))
        // A body that stops arriving ends the request (and its connection).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_millis(state.config.body_timeout_ms),
        ))
        .layer(from_fn_with_state(Arc::clone(&state), guard::guard))
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

/// Ids in the path (`{space}`, `{person}`, `{device}`). A malformed id is refused like every
/// other request, `400` with an `ErrorBody`, not with axum's plain-text rejection.
pub(crate) struct Ids<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Ids<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = crate::error::ServerError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(ids)| Ids(ids))
            .map_err(|e| crate::error::ServerError::BadRequest(e.body_text()))
    }
}
