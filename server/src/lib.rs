//! # quartier-server
//!
//! The sync service: device registration, spaces, invites and membership (the server is the
//! only authority on roles), and the batched, signed sync exchange of `docs/protocol.md`. The
//! embedded default keeps everything in one SQLite file in a data folder.
//!
//! - `config`: settings from defaults, file, environment, flags;
//! - `storage`: the database (accounts, spaces, the change log);
//! - `documents`: documents in memory (LRU) for permission checks and snapshots;
//! - `sync`: push checks and pull paging, under the core's permission table;
//! - `blobs`: media files (chunked uploads, ranged downloads, quotas, who may fetch what);
//! - `http`: routes and wire-format bodies.

pub mod blobs;
pub mod config;
pub mod documents;
pub mod error;
pub mod http;
pub mod state;
pub mod storage;
pub mod sync;

use std::sync::Arc;

pub use config::Config;
pub use error::ServerError;

/// Starts serving and returns when a shutdown signal has been handled and in-flight requests
/// have finished.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let db = storage::Db::open(&config.data_dir)?;
    let blob_store = blobs::fs::FsBlobStore::open(&config.data_dir.join("blobs"))
        .map_err(|e| ServerError::Startup(format!("blob folder: {e}")))?;
    let state = Arc::new(state::AppState {
        blobs: blobs::Blobs::new(
            Arc::new(blob_store),
            blobs::BlobLimits {
                max_blob_bytes: config.max_blob_bytes,
                space_quota_bytes: config.space_quota_bytes,
            },
        ),
        docs: documents::DocCache::new(config.doc_cache),
        db,
        config: config.clone(),
    });
    spawn_blob_gc(&state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("quartier-server listening on http://{local}");
    tracing::info!(%local, data = %config.data_dir.display(), "serving");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))
}

/// The periodic blob collection (`blobs::gc`): every `blob_gc_interval_secs`, on a blocking
/// thread; a failure is logged and the next run tries again.
fn spawn_blob_gc(state: &Arc<state::AppState>) {
    let interval = state.config.blob_gc_interval_secs;
    if interval == 0 {
        return;
    }
    let grace_ms = i64::try_from(state.config.blob_gc_grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(interval));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate: start one interval after startup
        loop {
            ticks.tick().await;
            let state = Arc::clone(&state);
            let run = tokio::task::spawn_blocking(move || {
                blobs::gc::collect(&state.db, &state.blobs, grace_ms, storage::now_ms())
            })
            .await;
            match run {
                Ok(Ok(report)) => tracing::info!(?report, "blob garbage collection"),
                Ok(Err(e)) => tracing::error!(error = %e, "blob garbage collection failed"),
                Err(e) => tracing::error!(error = %e, "blob garbage collection panicked"),
            }
        }
    });
}
