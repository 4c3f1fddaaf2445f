//! Sans-IO: one sync of a store with its server, as a state machine.
//!
//! [`SyncSession`] owns every decision of a sync — registering spaces created offline (and
//! deferring their changes when the server refuses), the rounds of request → apply → commit,
//! the windows of spaces, the page budget (`pacing`), when to stop, what a refusal or a
//! `Retry-After` means — and does no I/O. It is fed [`SessionEvent`]s (an answer, a transport
//! failure, each with the current time) and returns [`SessionEffect`]s (send this request,
//! hold every request until then, report progress, done). A driver carries the requests: the
//! core's is `SyncClient::sync_now` (reqwest and tokio); tests carry them to the server's logic
//! in the same process over a simulated network and a virtual clock
//! (`server/tests/simulated_sync.rs`); a device-to-device link can carry them too.
//!
//! The session reads and writes the store directly (SQLite, synchronous): each page is applied
//! and committed in `handle` before the next request is handed out, so an interrupted sync
//! loses at most the page in flight. Drivers on an async runtime call it on a blocking thread.

use std::time::{Duration, Instant};

use quartier_protocol::{CreateSpace, Membership, SyncResponse};

use super::exchange::{DeferredChange, PushedEntries, RejectedChange, SPACE_NOT_REGISTERED};
use super::http::{decode_answer, encode, HttpMethod, HttpRequest, HttpResponse, TransportError};
use super::pacing::{initial_page_budget, next_page_budget};
use crate::error::{Error, Result};
use crate::model::SpaceId;
use crate::store::Store;

/// The largest byte budget asked for per page; a sync starts smaller and sizes pages to about
/// a second of the link's measured throughput (`pacing`), up to this.
pub const DEFAULT_PAGE_BUDGET: u32 = 256 * 1024;
/// Outbox entries pushed per request.
pub const DEFAULT_PUSH_BATCH: usize = 500;
/// How long a deferred change may wait before a report calls it overdue.
pub const DEFAULT_OVERDUE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Requests one sync makes at most, so a misbehaving server cannot keep it busy forever.
const MAX_ROUNDS: usize = 10_000;

/// Progress of a running sync, reported after every committed page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncProgress {
    /// Requests made so far in this sync.
    pub rounds: usize,
    pub pushed: usize,
    pub received: usize,
    /// Local changes still waiting for the server.
    pub outbox_left: usize,
}

/// What a finished sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub rounds: usize,
    pub pushed: usize,
    pub received: usize,
    /// Changes the server refused for good in this sync, and pending changes that can no
    /// longer be delivered because the person left a space or may no longer read an item
    /// (listed since in [`Store::undelivered_changes`]).
    pub rejected: Vec<RejectedChange>,
    /// Changes the server has deferred and not taken yet (after this sync), with why and since
    /// when; `overdue` ones have waited longer than the client's bound.
    pub deferred: Vec<DeferredChange>,
    pub purged: Vec<String>,
    /// Bytes sent and received in bodies (compressed).
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl SyncReport {
    /// Adds a later session's report of the same sync: counts add up, the later one says what
    /// is still deferred.
    pub(crate) fn absorb(&mut self, later: SyncReport) {
        self.rounds += later.rounds;
        self.pushed += later.pushed;
        self.received += later.received;
        self.rejected.extend(later.rejected);
        self.deferred = later.deferred;
        self.purged.extend(later.purged);
        self.bytes_sent += later.bytes_sent;
        self.bytes_received += later.bytes_received;
    }
}

/// The settings a session runs with (`SyncClient::with_limits`, `with_overdue_after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// The largest page budget asked for.
    pub page_budget: u32,
    /// Outbox entries pushed per request (at least 1).
    pub push_batch: usize,
    /// How long a deferred change may wait before the report calls it overdue.
    pub overdue_after: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            page_budget: DEFAULT_PAGE_BUDGET,
            push_batch: DEFAULT_PUSH_BATCH,
            overdue_after: DEFAULT_OVERDUE_AFTER,
        }
    }
}

/// Names a request, so that its answer is matched to it: an answer to any other request (late,
/// or delivered twice by a link that duplicates) is ignored. Unique across the sessions of a
/// store as long as the driver never reuses a session number: an answer is applied against the
/// request it names (acknowledgements by position), so a late answer to an earlier session's
/// request taken for the current one would drop outbox entries the server never received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    /// The session's number, chosen by the driver.
    pub session: u64,
    /// The request's place in its session.
    pub seq: u64,
}

/// What happened to the request in flight.
#[derive(Clone, Debug)]
pub enum SessionEvent {
    /// The server answered (any status).
    Answered {
        request: RequestId,
        response: HttpResponse,
        now: Instant,
    },
    /// No whole answer came (no link, a timeout, cut off).
    Failed {
        request: RequestId,
        error: TransportError,
        now: Instant,
    },
}

/// What the driver is to do, in order.
#[derive(Debug)]
pub enum SessionEffect {
    /// Send this request and feed its answer back; at most one is in flight.
    Send { id: RequestId, request: HttpRequest },
    /// The server asked for a pause (`429` + `Retry-After`): no request to it may leave before
    /// this instant, from this session or any other call of the same client.
    HoldRequestsUntil(Instant),
    /// A page was committed.
    Progress(SyncProgress),
    /// The sync is over; the session answers nothing more.
    Done(Result<SyncReport>),
}

/// The request in flight and what its answer is applied against.
#[derive(Debug)]
enum InFlight {
    /// `POST /v1/spaces` for a space created on this device.
    Register(SpaceId),
    /// `POST /v1/sync`.
    Exchange {
        /// Boxed: what a request pushed is far larger than a registration.
        pushed: Box<PushedEntries>,
        sent_at: Instant,
        sent_bytes: u64,
    },
}

/// One sync of one store (see the module's documentation).
#[derive(Debug)]
pub struct SyncSession {
    options: SessionOptions,
    token: String,
    /// No request leaves before this (the server's last `Retry-After`).
    not_before: Option<Instant>,
    /// Spaces created on this device still to register, in order.
    to_register: Vec<SpaceId>,
    /// A device in more spaces than one request may name asks about them a window at a time:
    /// the spaces after this one (in id order); the next window once these are done.
    window: Option<uuid::Uuid>,
    /// The next page's budget: about a second of the link, up to the configured one.
    budget: u32,
    session: u64,
    next_seq: u64,
    in_flight: Option<(RequestId, InFlight)>,
    report: SyncReport,
    done: bool,
}

impl SyncSession {
    /// Starts a sync of `store`: the first effects (the first request, or `Done` when the
    /// device is not registered or requests are held back). `not_before` is the client's
    /// pause after a `429`, if one holds. `session` numbers this session's requests: the
    /// driver must not have used it for another session of the same store (a counter will do).
    pub fn start(
        store: &Store,
        options: SessionOptions,
        not_before: Option<Instant>,
        now: Instant,
        session: u64,
    ) -> (SyncSession, Vec<SessionEffect>) {
        let mut session = SyncSession {
            options: SessionOptions {
                push_batch: options.push_batch.max(1),
                ..options
            },
            token: String::new(),
            not_before,
            to_register: Vec::new(),
            window: None,
            budget: initial_page_budget(options.page_budget),
            session,
            next_seq: 0,
            in_flight: None,
            report: SyncReport::default(),
            done: false,
        };
        let account = match store.account().and_then(|a| a.ok_or(Error::NotRegistered)) {
            Ok(account) => account,
            // Nothing was attempted: no sync error to record.
            Err(e) => {
                session.done = true;
                return (session, vec![SessionEffect::Done(Err(e))]);
            }
        };
        session.token = account.token;
        let mut effects = Vec::new();
        let next = store.spaces_to_register().and_then(|spaces| {
            // Spaces created offline exist on the server before their documents are pushed.
            session.to_register = spaces;
            session.to_register.reverse();
            session.next_request(store, now, &mut effects)
        });
        session.settle(store, next, &mut effects);
        (session, effects)
    }

    /// Whether the session has said `Done`.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<RequestId> {
        self.in_flight.as_ref().map(|(id, _)| *id)
    }

    /// Feeds what happened to the request in flight; returns what to do next.
    pub fn handle(&mut self, store: &Store, event: SessionEvent) -> Vec<SessionEffect> {
        let mut effects = Vec::new();
        if self.done {
            return effects;
        }
        let (id, now) = match &event {
            SessionEvent::Answered { request, now, .. } | SessionEvent::Failed { request, now, .. } => {
                (*request, *now)
            }
        };
        let Some((current, _)) = &self.in_flight else {
            return effects;
        };
        if *current != id {
            // A late or duplicated answer to an earlier request: its acknowledgements are not
            // lost, the server answers `duplicate` when the change is pushed again.
            return effects;
        }
        let Some((_, in_flight)) = self.in_flight.take() else {
            return effects;
        };
        let next = match event {
            SessionEvent::Failed { error, .. } => Err(Error::from(error)),
            SessionEvent::Answered { response, .. } => self
                .answered(store, in_flight, response, now, &mut effects)
                .and_then(|go_on| {
                    if go_on {
                        self.next_request(store, now, &mut effects)
                    } else {
                        Ok(Step::Finished)
                    }
                }),
        };
        self.settle(store, next, &mut effects);
        effects
    }

    /// Ends the session on `Finished` or an error, with the report or the error recorded.
    fn settle(&mut self, store: &Store, step: Result<Step>, effects: &mut Vec<SessionEffect>) {
        let result = match step {
            Ok(Step::Sent) => return,
            Ok(Step::Finished) => self.finish(store),
            Err(e) => {
                let message = e.to_string();
                if let Err(record) = store.record_sync_error(&message) {
                    tracing::warn!(error = %record, "recording a failed sync failed");
                }
                Err(e)
            }
        };
        self.done = true;
        effects.push(SessionEffect::Done(result));
    }

    fn finish(&mut self, store: &Store) -> Result<SyncReport> {
        let bound = i64::try_from(self.options.overdue_after.as_millis()).unwrap_or(i64::MAX);
        let mut report = std::mem::take(&mut self.report);
        report.deferred = store.deferred_changes(bound)?;
        for overdue in report.deferred.iter().filter(|d| d.overdue) {
            tracing::warn!(doc = %overdue.doc_id, reason = %overdue.reason, "a change has waited too long for the server");
        }
        Ok(report)
    }

    /// Hands out the next request: a space to register, else the next exchange.
    fn next_request(
        &mut self,
        store: &Store,
        now: Instant,
        effects: &mut Vec<SessionEffect>,
    ) -> Result<Step> {
        if let Some(space) = self.to_register.pop() {
            let body = encode(&CreateSpace {
                space: space.as_uuid(),
            })?;
            let request = HttpRequest::wire(HttpMethod::Post, "/v1/spaces", Some(&self.token), body);
            self.send(request, InFlight::Register(space), now, effects)?;
            return Ok(Step::Sent);
        }
        if self.report.rounds >= MAX_ROUNDS {
            return Err(Error::Server {
                status: 0,
                code: "too_many_rounds".into(),
                message: "the server never finished".into(),
            });
        }
        let (request, pushed) =
            store.build_sync_request_after(self.budget, self.options.push_batch, self.window)?;
        let body = encode(&request)?;
        let sent_bytes = body.len() as u64;
        let request = HttpRequest::wire(HttpMethod::Post, "/v1/sync", Some(&self.token), body);
        self.send(
            request,
            InFlight::Exchange {
                pushed: Box::new(pushed),
                sent_at: now,
                sent_bytes,
            },
            now,
            effects,
        )?;
        Ok(Step::Sent)
    }

    /// Sends unless the server's pause holds.
    fn send(
        &mut self,
        request: HttpRequest,
        in_flight: InFlight,
        now: Instant,
        effects: &mut Vec<SessionEffect>,
    ) -> Result<()> {
        check_not_before(self.not_before, now)?;
        let id = RequestId {
            session: self.session,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.in_flight = Some((id, in_flight));
        effects.push(SessionEffect::Send { id, request });
        Ok(())
    }

    /// Applies an answer; `false` when the sync is complete.
    fn answered(
        &mut self,
        store: &Store,
        in_flight: InFlight,
        response: HttpResponse,
        now: Instant,
        effects: &mut Vec<SessionEffect>,
    ) -> Result<bool> {
        if response.status == 429 {
            let error = super::http::refusal(&response);
            if let Error::RateLimited { retry_after_secs } = error {
                let until = now + Duration::from_secs(retry_after_secs);
                self.not_before = Some(until);
                effects.push(SessionEffect::HoldRequestsUntil(until));
            }
            if let InFlight::Exchange { sent_bytes, .. } = in_flight {
                self.count(sent_bytes, &response);
            }
            return Err(error);
        }
        match in_flight {
            InFlight::Register(space) => {
                self.registered(store, space, &response)?;
                Ok(true)
            }
            InFlight::Exchange {
                pushed,
                sent_at,
                sent_bytes,
            } => {
                self.count(sent_bytes, &response);
                let answer: SyncResponse = decode_answer(&response)?;
                self.budget = next_page_budget(
                    self.budget,
                    response.body.len() as u64,
                    now.saturating_duration_since(sent_at),
                    self.options.page_budget,
                );
                self.exchanged(store, &pushed, answer, effects)
            }
        }
    }

    fn count(&mut self, sent_bytes: u64, response: &HttpResponse) {
        self.report.bytes_sent += sent_bytes;
        self.report.bytes_received += response.body.len() as u64;
    }

    /// A registration's answer: the membership is kept; a refusal (`403` restricted, …) defers
    /// the space's changes and the sync goes on; a server fault ends the sync, tried again.
    fn registered(&mut self, store: &Store, space: SpaceId, response: &HttpResponse) -> Result<()> {
        match decode_answer::<Membership>(response) {
            Ok(membership) => {
                store.record_membership(&membership)?;
                tracing::info!(%space, "registered a space created offline");
                Ok(())
            }
            Err(e @ Error::Server { status, .. }) if (400..500).contains(&status) && status != 429 => {
                tracing::warn!(%space, error = %e, "the server refused to register a space");
                store.defer_space_outbox(&space.to_string(), SPACE_NOT_REGISTERED)?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A sync exchange's answer, applied and committed; `false` when the sync is complete.
    fn exchanged(
        &mut self,
        store: &Store,
        pushed: &PushedEntries,
        response: SyncResponse,
        effects: &mut Vec<SessionEffect>,
    ) -> Result<bool> {
        let outcome = store.apply_sync_response(pushed, response)?;
        let report = &mut self.report;
        report.rounds += 1;
        report.pushed += outcome.acknowledged;
        report.received += outcome.received;
        report.rejected.extend(outcome.rejected.iter().cloned());
        report.purged.extend(outcome.purged.iter().cloned());
        let outbox_left = store.sync_outbox_len()?;
        effects.push(SessionEffect::Progress(SyncProgress {
            rounds: report.rounds,
            pushed: report.pushed,
            received: report.received,
            outbox_left,
        }));
        if outcome.more {
            return Ok(true);
        }
        if pushed.window_end.is_some() {
            self.window = pushed.window_end;
            return Ok(true);
        }
        // Done unless the server took some of a full push and more waits: then start again
        // from the first window. A push it took none of (all deferred) waits for a later sync.
        let pushed_everything =
            pushed.is_empty() || outbox_left == 0 || outcome.acknowledged + outcome.rejected.len() == 0;
        if pushed_everything {
            return Ok(false);
        }
        self.window = None;
        Ok(true)
    }
}

/// Where a step left the session.
enum Step {
    /// A request is in flight.
    Sent,
    /// The sync is complete.
    Finished,
}

/// `RateLimited` while the server's last `Retry-After` has not passed.
pub(crate) fn check_not_before(not_before: Option<Instant>, now: Instant) -> Result<()> {
    match not_before {
        Some(t) if t > now => {
            let left = t - now;
            Err(Error::RateLimited {
                retry_after_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::account::registered_store as registered;
    use crate::StoreOptions;

    fn sent(effects: &[SessionEffect]) -> Option<(RequestId, &HttpRequest)> {
        effects.iter().find_map(|e| match e {
            SessionEffect::Send { id, request } => Some((*id, request)),
            _ => None,
        })
    }

    #[test]
    fn an_unregistered_device_or_a_held_client_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).unwrap();
        let now = Instant::now();
        let (_, effects) = SyncSession::start(&store, SessionOptions::default(), None, now, 1);
        assert!(matches!(
            effects.as_slice(),
            [SessionEffect::Done(Err(Error::NotRegistered))]
        ));

        let (_dir, store) = registered();
        let held = Some(now + Duration::from_millis(2500));
        let (session, effects) = SyncSession::start(&store, SessionOptions::default(), held, now, 1);
        assert!(session.is_done());
        assert!(
            matches!(
                effects.as_slice(),
                [SessionEffect::Done(Err(Error::RateLimited {
                    retry_after_secs: 3
                }))]
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn a_429_holds_requests_for_its_retry_after_and_ends_the_sync() {
        let (_dir, store) = registered();
        let now = Instant::now();
        let (mut session, effects) = SyncSession::start(&store, SessionOptions::default(), None, now, 7);
        let (id, request) = sent(&effects).expect("a first request");
        assert_eq!(
            (request.method, request.path.as_str()),
            (HttpMethod::Post, "/v1/sync")
        );
        assert_eq!(id, RequestId { session: 7, seq: 0 });
        let later = now + Duration::from_secs(1);
        let effects = session.handle(
            &store,
            SessionEvent::Answered {
                request: id,
                response: HttpResponse {
                    status: 429,
                    retry_after: Some("7".into()),
                    ..Default::default()
                },
                now: later,
            },
        );
        assert!(
            matches!(
                effects.as_slice(),
                [
                    SessionEffect::HoldRequestsUntil(until),
                    SessionEffect::Done(Err(Error::RateLimited { retry_after_secs: 7 })),
                ] if *until == later + Duration::from_secs(7)
            ),
            "{effects:?}"
        );
    }

    #[test]
    fn an_answer_to_another_request_is_ignored() {
        let (_dir, store) = registered();
        let now = Instant::now();
        let (mut session, effects) = SyncSession::start(&store, SessionOptions::default(), None, now, 3);
        let (id, _) = sent(&effects).expect("a first request");
        for other in [RequestId { session: 2, seq: 0 }, RequestId { session: 3, seq: 1 }] {
            let effects = session.handle(
                &store,
                SessionEvent::Failed {
                    request: other,
                    error: TransportError("late".into()),
                    now,
                },
            );
            assert!(effects.is_empty(), "{effects:?}");
            assert_eq!(session.in_flight(), Some(id));
        }
        let effects = session.handle(
            &store,
            SessionEvent::Failed {
                request: id,
                error: TransportError("no link".into()),
                now,
            },
        );
        assert!(matches!(
            effects.as_slice(),
            [SessionEffect::Done(Err(Error::Offline(_)))]
        ));
    }
}
