//! Sans-IO: when background sync runs next. After a sync, [`BackgroundSchedule::after`] says
//! what to tell the app, how long to pause (the interval after a success; exponential backoff
//! with jitter after a failure, so that a hundred phones coming back online at once do not hit
//! the server in step; never sooner than a `Retry-After`), whether to stop (errors retrying
//! cannot fix) and whether media garbage is due. The clock and the jitter are passed in; the
//! tokio task in `background` only sleeps and wakes.

use std::time::{Duration, Instant};

use super::session::{SyncProgress, SyncReport};
use crate::error::{Error, Result};

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

/// How often the background sync collects media no item references any more.
pub const MEDIA_GC_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// What follows a sync.
#[derive(Clone, Debug, PartialEq)]
pub struct NextSync {
    /// For the app: `Finished`, `Failed` or `Stopped`.
    pub event: SyncEvent,
    /// Sync again at this instant (or sooner when asked); `None`: stop.
    pub at: Option<Instant>,
    /// Collect media garbage now (`Store::collect_media_garbage`), once a day after a success.
    pub collect_media: bool,
}

/// The state between background syncs: consecutive failures and the last media collection.
#[derive(Clone, Debug)]
pub struct BackgroundSchedule {
    policy: BackoffPolicy,
    failures: u32,
    media_collected: Option<Instant>,
}

impl BackgroundSchedule {
    pub fn new(policy: BackoffPolicy) -> Self {
        BackgroundSchedule {
            policy,
            failures: 0,
            media_collected: None,
        }
    }

    /// What follows a sync that ended with `result` at `now`; `jitter` is a random fraction in
    /// `0.0..1.0`.
    pub fn after(&mut self, result: Result<SyncReport>, now: Instant, jitter: f64) -> NextSync {
        match result {
            Ok(report) => {
                self.failures = 0;
                let collect_media = self
                    .media_collected
                    .is_none_or(|at| now.saturating_duration_since(at) >= MEDIA_GC_EVERY);
                if collect_media {
                    self.media_collected = Some(now);
                }
                NextSync {
                    event: SyncEvent::Finished(report),
                    at: Some(now + self.policy.interval),
                    collect_media,
                }
            }
            Err(
                e @ (Error::Unauthorized
                | Error::NotRegistered
                | Error::ProtocolMismatch { .. }
                | Error::DeviceRevoked),
            ) => NextSync {
                event: SyncEvent::Stopped { error: e.to_string() },
                at: None,
                collect_media: false,
            },
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let mut retry_in = self.policy.delay(self.failures, jitter);
                // The server said when: never sooner than that.
                if let Error::RateLimited { retry_after_secs } = e {
                    retry_in = retry_in.max(Duration::from_secs(retry_after_secs));
                }
                NextSync {
                    event: SyncEvent::Failed {
                        error: e.to_string(),
                        retry_in,
                    },
                    at: Some(now + retry_in),
                    collect_media: false,
                }
            }
        }
    }
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
    }

    #[test]
    fn the_schedule_backs_off_respects_retry_after_stops_and_collects_media_daily() {
        let policy = BackoffPolicy {
            interval: Duration::from_secs(60),
            initial: Duration::from_secs(2),
            max: Duration::from_secs(600),
        };
        let mut schedule = BackgroundSchedule::new(policy);
        let t0 = Instant::now();
        let ok = schedule.after(Ok(SyncReport::default()), t0, 0.0);
        assert_eq!(ok.at, Some(t0 + Duration::from_secs(60)));
        assert!(ok.collect_media, "the first success collects media");
        let again = schedule.after(Ok(SyncReport::default()), t0 + Duration::from_secs(60), 0.0);
        assert!(!again.collect_media, "not twice a day");
        let offline = || Err(Error::Offline("no link".into()));
        assert_eq!(
            schedule.after(offline(), t0, 0.0).at,
            Some(t0 + Duration::from_secs(2))
        );
        assert_eq!(
            schedule.after(offline(), t0, 0.0).at,
            Some(t0 + Duration::from_secs(4))
        );
        let limited = schedule.after(
            Err(Error::RateLimited {
                retry_after_secs: 300,
            }),
            t0,
            0.0,
        );
        assert_eq!(
            limited.at,
            Some(t0 + Duration::from_secs(300)),
            "never sooner than Retry-After"
        );
        assert!(matches!(limited.event, SyncEvent::Failed { .. }));
        let day = t0 + MEDIA_GC_EVERY;
        assert!(schedule.after(Ok(SyncReport::default()), day, 0.0).collect_media);
        assert_eq!(
            schedule.after(offline(), day, 0.0).at,
            Some(day + Duration::from_secs(2)),
            "a success resets the backoff"
        );
        let stopped = schedule.after(Err(Error::Unauthorized), day, 0.0);
        assert_eq!(stopped.at, None);
        assert!(matches!(stopped.event, SyncEvent::Stopped { .. }));
    }
}
