//! Background sync: a task that syncs now, then every `interval`, and after a failure retries
//! with exponential backoff and jitter (so a hundred phones coming back online at once do not
//! hit the server in step). Errors that retrying cannot fix (unknown credentials, protocol
//! mismatch, not registered) stop the task and are reported.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::client::{SyncClient, SyncProgress, SyncReport};
use crate::error::Error;
use crate::store::Store;

/// When to sync and how to back off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// Pause between successful syncs.
    pub interval: Duration,
    /// First pause after a failure; doubled after each further failure…
    pub initial: Duration,
    /// …up to this.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            initial: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl BackoffPolicy {
    /// The pause after `failures` consecutive failures, with `jitter` in `0.0..1.0` taking off up
    /// to half of it ("equal jitter").
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = self.initial.saturating_mul(
            1u32.checked_shl(failures.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX),
        );
        let capped = exp.min(self.max);
        capped.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What the background task reports to the app.
#[derive(Clone, Debug, PartialEq)]
pub enum SyncEvent {
    Started,
    Progress(SyncProgress),
    Finished(SyncReport),
    /// A failed attempt; the next follows after `retry_in`.
    Failed {
        error: String,
        retry_in: Duration,
    },
    /// A failure retrying cannot fix; the task has stopped.
    Stopped {
        error: String,
    },
}

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
            let mut failures = 0u32;
            let mut media_collected: Option<std::time::Instant> = None;
            loop {
                on_event(SyncEvent::Started);
                let result = client
                    .sync_now(&store, |p| on_event(SyncEvent::Progress(p.clone())))
                    .await;
                let pause = match result {
                    Ok(report) => {
                        failures = 0;
                        on_event(SyncEvent::Finished(report));
                        if media_collected.is_none_or(|at| at.elapsed() >= MEDIA_GC_EVERY) {
                            media_collected = Some(std::time::Instant::now());
                            collect_media(&store).await;
                        }
                        policy.interval
                    }
                    Err(
                        e @ (Error::Unauthorized
                        | Error::NotRegistered
                        | Error::ProtocolMismatch { .. }
                        | Error::DeviceRevoked),
                    ) => {
                        on_event(SyncEvent::Stopped { error: e.to_string() });
                        return;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let mut retry_in = policy.delay(failures, jitter());
                        // The server said when: never sooner than that.
                        if let Error::RateLimited { retry_after_secs } = e {
                            retry_in = retry_in.max(Duration::from_secs(retry_after_secs));
                        }
                        on_event(SyncEvent::Failed {
                            error: e.to_string(),
                            retry_in,
                        });
                        retry_in
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
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

/// A random fraction in `0.0..1.0` for jitter.
/// How often the background sync collects media no item references any more.
const MEDIA_GC_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

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

fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_takes_at_most_half() {
        let p = BackoffPolicy {
            interval: Duration::from_secs(60),
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay(4, 0.0), Duration::from_secs(16));
        assert_eq!(p.delay(10, 0.0), Duration::from_secs(60));
        assert_eq!(p.delay(1000, 0.0), Duration::from_secs(60));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(4));
        let j = jitter();
        assert!((0.0..=1.0).contains(&j));
    }
}
