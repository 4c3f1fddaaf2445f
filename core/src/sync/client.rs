//! The HTTP half of sync (reqwest, rustls): registration, spaces and invites, and `sync_now`,
//! which loops request → apply → commit until the server has nothing more and the outbox is
//! empty. Store work runs on blocking threads so the async runtime stays responsive.

use std::time::Duration;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ed25519_dalek::Signer;
use quartier_protocol::{
    CreateInvite, CreateSpace, DeviceRegistered, ErrorBody, InviteCreated, Membership, RedeemInvite,
    RegisterDevice, RegistrationChallenge, Role, SetRole, SyncResponse, CONTENT_TYPE, MAX_DECODED_BYTES,
    PROTOCOL_VERSION,
};
use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use super::account::{record_membership, save_account, Account};
use super::exchange::ExchangeOutcome;
use crate::error::{Error, Result};
use crate::model::{PersonId, Space, SpaceId, SpaceMeta};
use crate::store::{Store, MAY_LEAVE_DEVICE};

/// The largest byte budget asked for per page; `sync_now` starts smaller and sizes pages to
/// about a second of the link's measured throughput (`pacing`), up to this.
pub const DEFAULT_PAGE_BUDGET: u32 = 256 * 1024;
/// Outbox entries pushed per request.
pub const DEFAULT_PUSH_BATCH: usize = 500;
/// How long a deferred change may wait before a report calls it overdue.
pub const DEFAULT_OVERDUE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Requests one `sync_now` makes at most, so a misbehaving server cannot keep it busy forever.
const MAX_ROUNDS: usize = 10_000;

/// Progress of a running sync, reported after every committed page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Requests made so far in this sync.
    pub rounds: usize,
    pub pushed: usize,
    pub received: usize,
    /// Local changes still waiting for the server.
    pub outbox_left: usize,
}

/// What a finished `sync_now` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub rounds: usize,
    pub pushed: usize,
    pub received: usize,
    /// Changes the server refused for good in this sync, and pending changes that can no
    /// longer be delivered because the person left a space or may no longer read an item
    /// (listed since in [`Store::undelivered_changes`]).
    pub rejected: Vec<super::exchange::RejectedChange>,
    /// Changes the server has deferred and not taken yet (after this sync), with why and since
    /// when; `overdue` ones have waited longer than the client's bound.
    pub deferred: Vec<super::exchange::DeferredChange>,
    pub purged: Vec<String>,
    /// Bytes sent and received in bodies (compressed).
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A space made by [`SyncClient::create_shared_space`].
#[derive(Clone, Debug, PartialEq)]
pub struct SharedSpace {
    /// The space, stored on this device.
    pub space: Space,
    /// The server's statement that this person coordinates it, or `None` when the server
    /// could not be reached: then the next sync registers the space and pushes it.
    pub membership: Option<Membership>,
}

/// A connection to one Quartier server.
#[derive(Clone, Debug)]
pub struct SyncClient {
    http: reqwest::Client,
    base: String,
    page_budget: u32,
    push_batch: usize,
    overdue_after: Duration,
    /// After a `429`, no request leaves before this instant (shared by clones).
    not_before: Arc<Mutex<Option<Instant>>>,
    /// Certificate authorities trusted besides the system's, for every connection to this
    /// server (sync and media transfers alike).
    roots: Arc<[reqwest::Certificate]>,
}

/// Settings of a [`SyncClient`] before it is made.
#[derive(Clone, Debug)]
pub struct SyncClientBuilder {
    base: String,
    allow_plain_http: bool,
    roots: Vec<reqwest::Certificate>,
}

impl SyncClientBuilder {
    /// Allows `http://` to hosts other than loopback (a test network). Off by default: plain
    /// HTTP would carry the device's credential and its spaces' content unencrypted.
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Also trusts this certificate authority (PEM), e.g. a community's own, besides the
    /// system's roots.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self> {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(|e| Error::invalid("root certificate", e.to_string()))?;
        self.roots.push(certificate);
        Ok(self)
    }

    pub fn build(self) -> Result<SyncClient> {
        check_server_address(&self.base, self.allow_plain_http)?;
        let mut accept = reqwest::header::HeaderMap::new();
        accept.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        let roots: Arc<[reqwest::Certificate]> = self.roots.into();
        let http = http_builder(&roots)
            .timeout(Duration::from_secs(120))
            .default_headers(accept)
            .build()
            .map_err(|e| Error::invalid("server address", e.to_string()))?;
        Ok(SyncClient {
            http,
            base: self.base.trim_end_matches('/').to_owned(),
            page_budget: DEFAULT_PAGE_BUDGET,
            push_batch: DEFAULT_PUSH_BATCH,
            overdue_after: DEFAULT_OVERDUE_AFTER,
            not_before: Arc::default(),
            roots,
        })
    }
}

/// How every connection to a server is made: its connect timeout and the certificate
/// authorities trusted besides the system's.
fn http_builder(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(20));
    for root in roots {
        http = http.add_root_certificate(root.clone());
    }
    http
}

/// `https://` to anyone; `http://` only to loopback unless `allow_plain_http`.
fn check_server_address(base: &str, allow_plain_http: bool) -> Result<()> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| Error::invalid("server address", format!("`{base}` is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = url.host_str().unwrap_or("");
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback || allow_plain_http {
                Ok(())
            } else {
                Err(Error::invalid(
                    "server address",
                    format!(
                        "`{base}` is plain HTTP to another machine: the device's credential and its spaces' \
                         content would travel unencrypted; use https:// (or allow plain HTTP explicitly)"
                    ),
                ))
            }
        }
        other => Err(Error::invalid(
            "server address",
            format!("`{base}` must start with https:// (not {other}://)"),
        )),
    }
}

impl SyncClient {
    /// A client for the server at `base_url` (`https://…`, or `http://` to loopback, e.g.
    /// `http://127.0.0.1:8470`); [`SyncClient::builder`] allows plain HTTP elsewhere.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::builder(base_url).build()
    }

    /// A client to configure before use.
    pub fn builder(base_url: &str) -> SyncClientBuilder {
        SyncClientBuilder {
            base: base_url.to_owned(),
            allow_plain_http: false,
            roots: Vec::new(),
        }
    }

    /// `RateLimited` while the server's last `Retry-After` has not passed.
    fn check_not_before(&self) -> Result<()> {
        let not_before = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        match not_before {
            Some(t) if t > Instant::now() => {
                let left = t - Instant::now();
                Err(Error::RateLimited {
                    retry_after_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                })
            }
            _ => Ok(()),
        }
    }

    /// The error of a refused answer; a `429` also holds back every request of this client
    /// until its `Retry-After` has passed.
    fn refused(&self, status: StatusCode, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Error {
        let error = error_from(status, body);
        if let Error::RateLimited { .. } = error {
            let secs = retry_after(headers);
            *self.not_before.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + Duration::from_secs(secs));
            return Error::RateLimited {
                retry_after_secs: secs,
            };
        }
        error
    }

    /// Sets the largest byte budget per page (pages start at most 32 KiB and grow with the
    /// link's throughput up to it) and the push batch size.
    pub fn with_limits(mut self, page_budget: u32, push_batch: usize) -> Self {
        self.page_budget = page_budget;
        self.push_batch = push_batch.max(1);
        self
    }

    /// Sets how long a deferred change may wait before reports call it overdue.
    pub fn with_overdue_after(mut self, overdue_after: Duration) -> Self {
        self.overdue_after = overdue_after;
        self
    }

    /// The server's base URL.
    /// A builder for another HTTP client to the same server (the media transfer queue, which
    /// needs other timeouts), trusting what this one trusts.
    pub(crate) fn http_builder(&self) -> reqwest::ClientBuilder {
        http_builder(&self.roots)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Req,
        traffic: Option<&mut (u64, u64)>,
    ) -> Result<Resp> {
        self.check_not_before()?;
        let bytes = quartier_protocol::encode(body).map_err(|e| Error::MalformedResponse(e.to_string()))?;
        let sent = bytes.len() as u64;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", CONTENT_TYPE)
            .body(bytes);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| Error::Offline(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Offline(format!("the answer was cut off: {e}")))?;
        if let Some(traffic) = traffic {
            traffic.0 += sent;
            traffic.1 += body.len() as u64;
        }
        if status.is_success() {
            return quartier_protocol::decode(&body, MAX_DECODED_BYTES)
                .map_err(|e| Error::MalformedResponse(e.to_string()));
        }
        Err(self.refused(status, &headers, &body))
    }

    async fn account(store: &Store) -> Result<Account> {
        blocking(store, |s| s.account())
            .await?
            .ok_or(Error::NotRegistered)
    }

    /// Registers this device (its public key, proven by signing the server's challenge) and
    /// keeps the credential in the store. The person id it returns is the one to author
    /// content with.
    pub async fn register(&self, store: &Store, display_name: Option<&str>) -> Result<Account> {
        let challenge: RegistrationChallenge = self
            .call(Method::POST, "/v1/devices/challenge", None, &(), None)
            .await?;
        let public_key = store.device_public_key().to_vec();
        let signature = store
            .signing_key()
            .sign(&quartier_protocol::signing::registration_signing_payload(
                &challenge.challenge,
                &public_key,
            ))
            .to_bytes()
            .to_vec();
        let request = RegisterDevice {
            public_key,
            display_name: display_name.map(str::to_owned),
            challenge: Some(challenge.challenge),
            signature: Some(signature),
        };
        let registered: DeviceRegistered = self
            .call(Method::POST, "/v1/devices", None, &request, None)
            .await?;
        let account = Account {
            server: self.base.clone(),
            device: registered.device,
            person: PersonId::from(registered.person),
            token: registered.token,
        };
        let saved = account.clone();
        blocking(store, move |s| s.write(|tx, _| save_account(tx, &saved))).await?;
        Ok(account)
    }

    /// Creates a space shared through this server, in one call: stored on this device (its
    /// registered person the author and coordinator), registered with the server, and pushed
    /// so that invitees find it. Offline, the space is still created and `membership` is
    /// `None`; every later sync registers and pushes it before anything else. A refusal by the
    /// server (e.g. space creation restricted by the operator) is returned as an error; the
    /// space stays on the device and later syncs try its registration again.
    pub async fn create_shared_space(&self, store: &Store, meta: SpaceMeta) -> Result<SharedSpace> {
        let account = Self::account(store).await?;
        let person = account.person;
        let space = blocking(store, move |s| s.create_space_with(meta, person, true)).await?;
        let membership = match self.create_space(store, space.id).await {
            Ok(membership) => membership,
            Err(Error::Offline(reason)) => {
                tracing::info!(space = %space.id, %reason, "space created offline; the next sync registers it");
                return Ok(SharedSpace {
                    space,
                    membership: None,
                });
            }
            Err(e) => return Err(e),
        };
        match self.sync_now(store, |_| {}).await {
            Ok(_) => {}
            Err(Error::Offline(reason)) => {
                tracing::info!(space = %space.id, %reason, "space registered; the next sync pushes it");
            }
            Err(e) => return Err(e),
        }
        Ok(SharedSpace {
            space,
            membership: Some(membership),
        })
    }

    /// Registers spaces created for sharing while the server could not be reached. Offline
    /// ends the sync; a refusal is tried again at the next sync, and meanwhile the space's
    /// changes are reported as deferred ([`super::exchange::SPACE_NOT_REGISTERED`]).
    async fn register_pending_spaces(&self, store: &Store) -> Result<()> {
        for space in blocking(store, |s| s.spaces_to_register()).await? {
            match self.create_space(store, space).await {
                Ok(_) => tracing::info!(%space, "registered a space created offline"),
                // Refused (403 restricted, …): the rest of the sync goes on.
                Err(e @ Error::Server { status, .. }) if (400..500).contains(&status) && status != 429 => {
                    tracing::warn!(%space, error = %e, "the server refused to register a space");
                    let id = space.to_string();
                    blocking(store, move |s| {
                        s.defer_space_outbox(&id, super::exchange::SPACE_NOT_REGISTERED)
                    })
                    .await?;
                }
                // Offline, rate limited, a server fault: the sync ends and is tried again.
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Registers a space already created on this device (`Store::create_space`); its person
    /// becomes coordinator. [`SyncClient::create_shared_space`] creates and registers in one.
    pub async fn create_space(&self, store: &Store, space: SpaceId) -> Result<Membership> {
        let account = Self::account(store).await?;
        let membership: Membership = self
            .call(
                Method::POST,
                "/v1/spaces",
                Some(&account.token),
                &CreateSpace {
                    space: space.as_uuid(),
                },
                None,
            )
            .await?;
        self.remember(store, membership).await
    }

    /// Creates an invite code (coordinators) for a role, valid until `expires_at_ms`.
    pub async fn create_invite(
        &self,
        store: &Store,
        space: SpaceId,
        role: Role,
        expires_at_ms: i64,
        max_uses: u32,
    ) -> Result<String> {
        let account = Self::account(store).await?;
        let created: InviteCreated = self
            .call(
                Method::POST,
                &format!("/v1/spaces/{space}/invites"),
                Some(&account.token),
                &CreateInvite {
                    role,
                    expires_at_ms,
                    max_uses,
                },
                None,
            )
            .await?;
        Ok(created.code)
    }

    /// Joins the space of an invite code.
    pub async fn redeem_invite(&self, store: &Store, code: &str) -> Result<Membership> {
        let account = Self::account(store).await?;
        let membership: Membership = self
            .call(
                Method::POST,
                "/v1/invites/redeem",
                Some(&account.token),
                &RedeemInvite {
                    code: code.to_owned(),
                },
                None,
            )
            .await?;
        self.remember(store, membership).await
    }

    /// Changes a member's role (coordinators).
    pub async fn set_role(
        &self,
        store: &Store,
        space: SpaceId,
        person: PersonId,
        role: Role,
    ) -> Result<Membership> {
        let account = Self::account(store).await?;
        self.call(
            Method::PUT,
            &format!("/v1/spaces/{space}/members/{person}"),
            Some(&account.token),
            &SetRole { role },
            None,
        )
        .await
    }

    /// Removes a member from a space (coordinators), effective at once.
    pub async fn remove_member(&self, store: &Store, space: SpaceId, person: PersonId) -> Result<()> {
        let account = Self::account(store).await?;
        self.call_empty(
            Method::DELETE,
            &format!("/v1/spaces/{space}/members/{person}"),
            &account.token,
        )
        .await
    }

    /// Revokes one of this person's devices (a lost phone), effective at once.
    pub async fn revoke_device(&self, store: &Store, device: uuid::Uuid) -> Result<()> {
        let account = Self::account(store).await?;
        self.call_empty(Method::DELETE, &format!("/v1/devices/{device}"), &account.token)
            .await
    }

    async fn call_empty(&self, method: Method, path: &str, token: &str) -> Result<()> {
        self.check_not_before()?;
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Error::Offline(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(self.refused(status, &headers, &body))
    }

    async fn remember(&self, store: &Store, membership: Membership) -> Result<Membership> {
        let m = membership.clone();
        blocking(store, move |s| s.write(|tx, _| record_membership(tx, &m))).await?;
        Ok(membership)
    }

    /// Syncs until the server has nothing more for this device and the outbox holds nothing
    /// the server would take. Each page is committed before the next request, so an
    /// interruption loses at most the page in flight. `progress` is called after every page.
    /// A second call for the same store while one runs waits for it, then syncs what is left.
    pub async fn sync_now(&self, store: &Store, progress: impl Fn(&SyncProgress)) -> Result<SyncReport> {
        let _one_sync_at_a_time = store.sync_gate().lock().await;
        let account = Self::account(store).await?;
        let mut report = SyncReport::default();
        let mut traffic = (0u64, 0u64);
        // A device in more spaces than one request may name asks about them a window at a
        // time: the spaces after `window` (in id order), the next window once these are done.
        let mut window: Option<uuid::Uuid> = None;
        // Pages sized to the link: about a second each, up to the configured budget.
        let mut budget = super::pacing::initial_page_budget(self.page_budget);
        let result = async {
            // Spaces created offline exist on the server before their documents are pushed.
            self.register_pending_spaces(store).await?;
            loop {
                if report.rounds >= MAX_ROUNDS {
                    return Err(Error::Server {
                        status: 0,
                        code: "too_many_rounds".into(),
                        message: "the server never finished".into(),
                    });
                }
                let batch = self.push_batch;
                let (request, pushed) =
                    blocking(store, move |s| s.build_sync_request_after(budget, batch, window)).await?;
                let pushed_count = pushed.len();
                let window_end = pushed.window_end;
                let (received_before, started) = (traffic.1, std::time::Instant::now());
                let response: SyncResponse = self
                    .call(
                        Method::POST,
                        "/v1/sync",
                        Some(&account.token),
                        &request,
                        Some(&mut traffic),
                    )
                    .await?;
                budget = super::pacing::next_page_budget(
                    budget,
                    traffic.1 - received_before,
                    started.elapsed(),
                    self.page_budget,
                );
                let outcome: ExchangeOutcome =
                    blocking(store, move |s| s.apply_sync_response(&pushed, &response)).await?;
                report.rounds += 1;
                report.pushed += outcome.acknowledged;
                report.received += outcome.received;
                report.rejected.extend(outcome.rejected.iter().cloned());
                report.purged.extend(outcome.purged.iter().cloned());
                let outbox_left = blocking(store, |s| s.sync_outbox_len()).await?;
                progress(&SyncProgress {
                    rounds: report.rounds,
                    pushed: report.pushed,
                    received: report.received,
                    outbox_left,
                });
                let pushed_everything = pushed_count == 0
                    || (outbox_left == 0)
                    || outcome.acknowledged + outcome.rejected.len() == 0;
                if !outcome.more {
                    if window_end.is_some() {
                        window = window_end;
                        continue;
                    }
                    if pushed_everything {
                        return Ok(());
                    }
                    // More to push: start again from the first window.
                    window = None;
                }
            }
        }
        .await;
        report.bytes_sent = traffic.0;
        report.bytes_received = traffic.1;
        match result {
            Ok(()) => {
                let bound = i64::try_from(self.overdue_after.as_millis()).unwrap_or(i64::MAX);
                report.deferred = blocking(store, move |s| s.deferred_changes(bound)).await?;
                for overdue in report.deferred.iter().filter(|d| d.overdue) {
                    tracing::warn!(doc = %overdue.doc_id, reason = %overdue.reason, "a change has waited too long for the server");
                }
                Ok(report)
            }
            Err(e) => {
                let message = e.to_string();
                let _ = blocking(store, move |s| s.record_sync_error(&message)).await;
                Err(e)
            }
        }
    }
}

impl Store {
    /// Outbox entries the server would take now (of spaces it knows this device in, not held
    /// back as drafts or author-only).
    pub fn sync_outbox_len(&self) -> Result<usize> {
        self.read(|conn| {
            Ok(conn.query_row(
                &format!("SELECT count(*) FROM outbox o JOIN memberships m ON m.space_id = o.space_id {MAY_LEAVE_DEVICE}"),
                [],
                |r| r.get::<_, i64>(0),
            )? as usize)
        })
    }
}

/// Wait after a `429` without a readable `Retry-After`.
const DEFAULT_RETRY_AFTER_SECS: u64 = 60;
/// Longest wait a `Retry-After` may impose (a server asking for more is asked again then).
const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// Seconds of a `Retry-After` header (delay-seconds, what Quartier servers send), bounded.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_RETRY_AFTER_SECS)
        .clamp(1, MAX_RETRY_AFTER_SECS)
}

/// The typed error for a refused request, from its status and `ErrorBody` (if it has one).
pub(super) fn error_from(status: StatusCode, body: &[u8]) -> Error {
    let error: Option<ErrorBody> = quartier_protocol::decode(body, 64 * 1024).ok();
    let (code, message) = error
        .as_ref()
        .map(|e| (e.code.clone(), e.message.clone()))
        .unwrap_or_else(|| ("unknown".into(), format!("HTTP {status}")));
    match (status, code.as_str()) {
        (StatusCode::UNAUTHORIZED, _) => Error::Unauthorized,
        (StatusCode::TOO_MANY_REQUESTS, _) => Error::RateLimited {
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        },
        (_, "revoked") => Error::DeviceRevoked,
        (_, "protocol_version") => Error::ProtocolMismatch {
            ours: PROTOCOL_VERSION,
            theirs: error.map(|e| e.protocol_versions).unwrap_or_default(),
        },
        _ => Error::Server {
            status: status.as_u16(),
            code,
            message,
        },
    }
}

/// Runs store work on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Error::invalid("sync", format!("worker failed: {e}")))?
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for fine in [
            "https://quartier.example.org",
            "http://127.0.0.1:8470",
            "http://127.8.9.1",
            "http://[::1]:8470/",
            "http://localhost:8470",
        ] {
            assert!(SyncClient::new(fine).is_ok(), "{fine}");
        }
        for refused in [
            "http://quartier.example.org",
            "http://192.168.1.20:8470",
            "ftp://x",
            "nonsense",
        ] {
            let e = SyncClient::new(refused).expect_err(refused);
            assert!(matches!(e, Error::Invalid { .. }), "{refused}: {e:?}");
        }
        assert!(SyncClient::builder("http://192.168.1.20:8470")
            .allow_plain_http(true)
            .build()
            .is_ok());
    }
}
