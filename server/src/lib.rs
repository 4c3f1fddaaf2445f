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
//! - `files`: the operator's file tasks (import, export, the printed guide);
//! - `import`: the operator's imports of the standards, pushed as an import device's changes;
//! - `public`: what the server shows outside the app (calendar feeds, item pages, exports);
//! - `http`: routes and wire-format bodies.

pub mod blobs;
pub mod config;
pub mod documents;
pub mod error;
pub mod files;
pub mod http;
pub mod import;
pub mod public;
pub mod state;
pub mod storage;
pub mod sync;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use error::ServerError;

/// Starts serving and returns when a shutdown signal has been handled and in-flight requests
/// have finished (or 30 s have passed).
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let db = storage::Db::open(&config.data_dir)?;
    // Held for as long as this serves: an import beside it would write documents it keeps in
    // memory (`files::DataLock`).
    let _lock = files::DataLock::acquire(&config.data_dir, "serving")?;
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
        limiters: http::guard::Limiters::new(&config.rate),
        challenges: http::devices::Challenges::default(),
        config: config.clone(),
    });
    spawn_blob_gc(&state);
    sync::creations::spawn_prover(&state)
        .map_err(|e| ServerError::Startup(format!("cannot start the creation prover: {e}")))?;
    // Rate-limit buckets of clients gone quiet are forgotten, so memory follows recent clients.
    let tidy = Arc::clone(&state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            tidy.limiters.forget_idle();
        }
    });
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load(cert, key).await?),
        (None, None) => None,
        _ => {
            return Err(ServerError::Startup(
                "HTTPS needs both tls_cert and tls_key".into(),
            ))
        }
    };
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| ServerError::Startup(format!("cannot listen on {}: {e}", config.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("quartier-server listening on {scheme}://{local}");
    tracing::info!(%local, data = %config.data_dir.display(), scheme, "serving");

    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_signal.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let header_timeout = Duration::from_millis(config.header_timeout_ms);
    let served = match tls {
        Some(tls_config) => {
            tls::reload_on_hangup(tls_config.clone(), &config);
            let mut server = axum_server::from_tcp_rustls(listener, tls_config)
                .map_err(|e| ServerError::Startup(e.to_string()))?
                .map(|acceptor| acceptor.handshake_timeout(header_timeout))
                .handle(handle)
                .first_request_timeout(header_timeout)
                .http1_only();
            slow_clients(server.http_builder(), header_timeout);
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map_err(|e| ServerError::Startup(e.to_string()))?
                .handle(handle)
                .first_request_timeout(header_timeout)
                .http1_only();
            slow_clients(server.http_builder(), header_timeout);
            server.serve(app).await
        }
    };
    served.map_err(|e| ServerError::Internal(e.to_string()))
}

/// A client has `header_timeout` to send a request's headers, counted from the connection or
/// from the previous answer: a connection that sends nothing (idle or slow) is closed.
fn slow_clients(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
}

/// The periodic blob collection (`blobs::gc`) and counselling retention (closed conversations
/// past their team's retention are erased): every `blob_gc_interval_secs`, on a blocking
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
            // Counselling retention runs on the same schedule, first: the collection after it deletes
            // the erased conversations' attachments.
            let db_state = Arc::clone(&state);
            let erased = tokio::task::spawn_blocking(move || {
                storage::counselling::erase_due(&db_state.db.lock(), storage::now_ms())
            })
            .await;
            match erased {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(conversations = n, "counselling retention erased conversations"),
                Ok(Err(e)) => tracing::error!(error = %e, "counselling retention failed"),
                Err(e) => tracing::error!(error = %e, "counselling retention panicked"),
            }
            let gc_state = Arc::clone(&state);
            let run = tokio::task::spawn_blocking(move || {
                blobs::gc::collect(&gc_state.db, &gc_state.blobs, grace_ms, storage::now_ms())
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
