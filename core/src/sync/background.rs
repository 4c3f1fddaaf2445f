//! Background sync: the tokio task around [`BackgroundSchedule`]. It syncs now, then sleeps
//! until the schedule says (or until `sync_soon`), reports each step to the app, and stops when
//! the schedule says so or the app does. Every decision — backoff, jitter, `Retry-After`, when
//! to give up, when media garbage is due — is the schedule's.

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::backoff::{BackgroundSchedule, BackoffPolicy, SyncEvent};
use super::client::SyncClient;
use crate::store::Store;

/// A running background sync; dropping it (or [`BackgroundSync::stop`]) stops it.
pub struct BackgroundSync {
    trigger: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl BackgroundSync {
    /// Starts syncing `store` with `client` on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        client: SyncClient,
        store: Store,
        policy: BackoffPolicy,
        on_event: impl Fn(SyncEvent) + Send + Sync + 'static,
    ) -> Self {
        let trigger = Arc::new(Notify::new());
        let (stop, mut stopped) = watch::channel(false);
        let wake = Arc::clone(&trigger);
        let task = runtime.spawn(async move {
            let mut schedule = BackgroundSchedule::new(policy);
            loop {
                on_event(SyncEvent::Started);
                let result = client
                    .sync_now(&store, |p| on_event(SyncEvent::Progress(p.clone())))
                    .await;
                let next = schedule.after(result, std::time::Instant::now(), jitter());
                on_event(next.event);
                if next.collect_media {
                    collect_media(&store).await;
                }
                let Some(at) = next.at else { return };
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = wake.notified() => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Self {
            trigger,
            stop,
            task: Some(task),
        }
    }

    /// Syncs as soon as the current pause allows (e.g. after a local write or when a link
    /// appears).
    pub fn sync_soon(&self) {
        self.trigger.notify_one();
    }

    /// Stops the task; a sync under way is abandoned at its next await point (its committed
    /// pages stay committed).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Media garbage collection after a sync (`Store::collect_media_garbage`), on a blocking
/// thread; a failure is logged, the sync itself succeeded.
async fn collect_media(store: &Store) {
    let store = store.clone();
    let run =
        tokio::task::spawn_blocking(move || store.collect_media_garbage(crate::media::MEDIA_GC_GRACE)).await;
    match run {
        Ok(Ok(report)) if !report.removed.is_empty() => tracing::info!(
            files = report.removed.len(),
            bytes = report.freed_bytes,
            "media no item uses any more removed"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "media garbage collection failed"),
        Err(e) => tracing::warn!(error = %e, "media garbage collection panicked"),
    }
}

/// A random fraction in `0.0..1.0` for jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_is_a_fraction() {
        let j = super::jitter();
        assert!((0.0..=1.0).contains(&j));
    }
}
