//! The client of one server: registration, spaces and invites as single calls, and
//! `sync_now`, the driver of a [`SyncSession`]. Every decision of a sync is the session's; this
//! file only carries its requests through an [`HttpTransport`] (reqwest unless the app brings
//! its own), runs its store work on blocking threads so the async runtime stays responsive, and
//! reports progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::Signer;
use quartier_protocol::{
    CreateInvite, CreateSpace, DeviceRegistered, DisplayName, InviteCreated, InviteInfo, InviteList,
    Membership, RedeemInvite, RegisterDevice, RegistrationChallenge, Role, SetRole,
};
use serde::{de::DeserializeOwned, Serialize};

use super::account::Account;
use super::http::{decode_answer, encode, refusal, HttpMethod, HttpRequest, HttpResponse, HttpTransport};
use super::reqwest_transport::ReqwestTransport;
use super::session::{
    check_not_before, SessionEffect, SessionEvent, SessionOptions, SyncProgress, SyncReport, SyncSession,
};
use crate::error::{Error, Result};
use crate::model::{PersonId, Space, SpaceId, SpaceMeta};
use crate::store::{Store, MAY_LEAVE_DEVICE};

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
#[derive(Clone)]
pub struct SyncClient {
    transport: Arc<dyn HttpTransport>,
    base: String,
    /// Other addresses of the server this client reaches ([`SyncClientBuilder::registered_at`]).
    registered_at: Vec<String>,
    options: SessionOptions,
    /// After a `429`, no request leaves before this instant (shared by clones).
    not_before: Arc<Mutex<Option<Instant>>>,
    media: MediaCarrier,
}

/// How a `TransferQueue` made from a client reaches its server.
#[derive(Clone)]
enum MediaCarrier {
    /// reqwest, trusting these certificate authorities besides the system's (as the sync does).
    Reqwest(Arc<[reqwest::Certificate]>),
    /// The app's own transport (`with_transport`), the sync's.
    Shared,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("base", &self.base)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`SyncClient`] before it is made.
#[derive(Clone, Debug)]
pub struct SyncClientBuilder {
    base: String,
    allow_plain_http: bool,
    roots: Vec<reqwest::Certificate>,
    registered_at: Vec<String>,
}

impl SyncClientBuilder {
    /// Allows `http://` to hosts other than loopback (a test network). Off by default: plain
    /// HTTP would carry the device's credential and its spaces' content unencrypted.
    pub fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Declares that this client's address reaches the server a device registered at `server`
    /// (a proxy, or a server that moved to a new name), so that invites are redeemed through
    /// it. Without this, [`SyncClient::redeem_invite`] refuses (`Invalid`) to send a device's
    /// credential to any address but the one that issued it.
    pub fn registered_at(mut self, server: &str) -> Self {
        self.registered_at.push(server.trim_end_matches('/').to_owned());
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
        let roots: Arc<[reqwest::Certificate]> = self.roots.into();
        let base = self.base.trim_end_matches('/').to_owned();
        let transport = ReqwestTransport::new(&base, &roots)?;
        Ok(SyncClient {
            transport: Arc::new(transport),
            base,
            registered_at: self.registered_at,
            options: SessionOptions::default(),
            not_before: Arc::default(),
            media: MediaCarrier::Reqwest(roots),
        })
    }
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
            registered_at: Vec::new(),
        }
    }

    /// A client whose requests an app carries over its own stack (its HTTP client, a relay):
    /// `server` is the address recorded with the registration; `transport` sends each request
    /// to it. Everything else — sessions, pacing, refusals, `Retry-After` — is the same as over
    /// the core's own reqwest transport, and `TransferQueue`s made from this client carry media
    /// over it too.
    pub fn with_transport(server: &str, transport: Arc<dyn HttpTransport>) -> Self {
        SyncClient {
            transport,
            base: server.trim_end_matches('/').to_owned(),
            registered_at: Vec::new(),
            options: SessionOptions::default(),
            not_before: Arc::default(),
            media: MediaCarrier::Shared,
        }
    }

    fn not_before(&self) -> Option<Instant> {
        *self.not_before.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds every request of this client (and its clones) until `until`.
    fn hold_until(&self, until: Instant) {
        *self.not_before.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }

    /// Sets the largest byte budget per page (pages start at most 32 KiB and grow with the
    /// link's throughput up to it) and the push batch size.
    pub fn with_limits(mut self, page_budget: u32, push_batch: usize) -> Self {
        self.options.page_budget = page_budget;
        self.options.push_batch = push_batch.max(1);
        self
    }

    /// Sets how long a deferred change may wait before reports call it overdue.
    pub fn with_overdue_after(mut self, overdue_after: Duration) -> Self {
        self.options.overdue_after = overdue_after;
        self
    }

    /// The carrier of a `TransferQueue` made from this client: the app's own, or reqwest
    /// trusting the same authorities but without the sync's overall timeout.
    pub(crate) fn media_transport(&self) -> Result<Arc<dyn HttpTransport>> {
        Ok(match &self.media {
            MediaCarrier::Reqwest(roots) => Arc::new(ReqwestTransport::for_media(&self.base, roots)?),
            MediaCarrier::Shared => Arc::clone(&self.transport),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request (unless the server's pause holds) and brings back its answer; a `429`
    /// holds every later request of this client until its `Retry-After` has passed.
    /// Like [`Self::send`] for a streamed answer: the body is read piece by piece, and more
    /// than `limit` bytes of it stop the read (a server cannot make the device buffer an
    /// endless body). A `429` holds later requests as with `send`.
    pub(crate) async fn send_bounded(&self, request: HttpRequest, limit: u64) -> Result<HttpResponse> {
        check_not_before(self.not_before(), Instant::now())?;
        let mut streamed = self.transport.send_streaming(request).await?;
        let mut body = Vec::new();
        while let Some(piece) = streamed.body.next_piece().await? {
            if (body.len() + piece.len()) as u64 > limit {
                return Err(Error::MalformedResponse(format!(
                    "the answer is longer than {limit} bytes"
                )));
            }
            body.extend_from_slice(&piece);
        }
        let response = HttpResponse {
            status: streamed.status,
            body,
            ..HttpResponse::default()
        };
        self.held_if_paused(response)
    }

    /// A `429` holds every later request of this client until its `Retry-After` has passed.
    fn held_if_paused(&self, response: HttpResponse) -> Result<HttpResponse> {
        if response.status != 429 {
            return Ok(response);
        }
        let error = refusal(&response);
        if let Error::RateLimited { retry_after_secs } = error {
            self.hold_until(Instant::now() + Duration::from_secs(retry_after_secs));
        }
        Err(error)
    }

    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        check_not_before(self.not_before(), Instant::now())?;
        let response = self.transport.send(request).await?;
        self.held_if_paused(response)
    }

    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: HttpMethod,
        path: &str,
        token: Option<&str>,
        body: &Req,
    ) -> Result<Resp> {
        let request = HttpRequest::wire(method, path, token, encode(body)?);
        decode_answer(&self.send(request).await?)
    }

    pub(crate) async fn account(&self, store: &Store) -> Result<Account> {
        blocking(store, |s| s.account())
            .await?
            .ok_or(Error::NotRegistered)
    }

    /// The store's account, if it is this client's server's: an invite link names a server,
    /// and a forged one must not make the device hand its bearer token to that server.
    async fn account_for_invite(&self, store: &Store) -> Result<Account> {
        let account = self.account(store).await?;
        self.check_same_server(&account)?;
        Ok(account)
    }

    fn check_same_server(&self, account: &Account) -> Result<()> {
        let ours = self.base.trim_end_matches('/');
        let issuer = account.server.trim_end_matches('/');
        let known = std::iter::once(ours)
            .chain(self.registered_at.iter().map(String::as_str))
            .any(|address| address.eq_ignore_ascii_case(issuer));
        if !known {
            return Err(Error::invalid(
                "server address",
                format!(
                    "this device is registered with {}, not {ours}: its credential is not sent to \
                     another server's invite (open a separate store to join a space there)",
                    account.server
                ),
            ));
        }
        Ok(())
    }

    /// Registers this device (its public key, proven by signing the server's challenge) and
    /// keeps the credential in the store. The person id it returns is the one to author
    /// content with.
    ///
    /// `display_name` is what other members see (pseudonyms welcome; changeable later with
    /// [`SyncClient::set_display_name`]); a name the server would refuse is `Error::Invalid`
    /// before any request.
    pub async fn register(&self, store: &Store, display_name: Option<&str>) -> Result<Account> {
        let display_name = quartier_protocol::names::check_display_name(display_name)
            .map_err(|e| Error::invalid("display_name", e.to_string()))?;
        self.register_device(store, display_name, None).await
    }

    /// Registers this device as a further device of the person whose device made `code`
    /// ([`SyncClient::create_device_link`], shown there as a QR code): it gets their spaces,
    /// roles and (for a caseworker) their counselling teams at its first sync.
    pub async fn register_linked(&self, store: &Store, code: &str) -> Result<Account> {
        let code = code.trim();
        if code.is_empty() || code.len() > 128 {
            return Err(Error::invalid("device link code", "not a link code"));
        }
        self.register_device(store, None, Some(code.to_owned())).await
    }

    /// A one-use code (valid for ten minutes) with which another phone registers as this
    /// device's person ([`SyncClient::register_linked`]).
    pub async fn create_device_link(&self, store: &Store) -> Result<quartier_protocol::DeviceLink> {
        let account = self.account(store).await?;
        let request = HttpRequest::bare(HttpMethod::Post, "/v1/me/device-links", Some(&account.token));
        decode_answer(&self.send(request).await?)
    }

    async fn register_device(
        &self,
        store: &Store,
        display_name: Option<String>,
        link_code: Option<String>,
    ) -> Result<Account> {
        let challenge: RegistrationChallenge = self
            .call(HttpMethod::Post, "/v1/devices/challenge", None, &())
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
        // What this device wrote before registering is authored by its provisional person id:
        // proposed, so that it is delivered as the new person's (a second phone of a person
        // joins that person instead).
        let person = match link_code {
            None => Some(blocking(store, |s| s.provisional_person()).await?.as_uuid()),
            Some(_) => None,
        };
        let request = RegisterDevice {
            public_key,
            display_name,
            challenge: Some(challenge.challenge),
            signature: Some(signature),
            link_code,
            person,
        };
        let registered: DeviceRegistered = self.call(HttpMethod::Post, "/v1/devices", None, &request).await?;
        let account = Account {
            server: self.base.clone(),
            device: registered.device,
            person: PersonId::from(registered.person),
            token: registered.token,
        };
        let saved = account.clone();
        blocking(store, move |s| s.save_account(&saved)).await?;
        Ok(account)
    }

    /// Creates a space shared through this server, in one call: stored on this device (its
    /// registered person the author and coordinator), registered with the server, and pushed
    /// so that invitees find it. Offline, the space is still created and `membership` is
    /// `None`; every later sync registers and pushes it before anything else. A refusal by the
    /// server (e.g. space creation restricted by the operator) is returned as an error; the
    /// space stays on the device and later syncs try its registration again.
    pub async fn create_shared_space(&self, store: &Store, meta: SpaceMeta) -> Result<SharedSpace> {
        let account = self.account(store).await?;
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

    /// Changes (or, with `None` or a blank name, removes) the display name of this device's
    /// person: the name every member of their spaces sees (pseudonyms welcome; one name for
    /// every space). Checked here first (at most 64 characters, no control or text-direction
    /// characters, trimmed): a refused name is `Error::Invalid` without a request. Returns the
    /// name as stored; this device's member lists show it at once, other members' devices after
    /// their next sync.
    pub async fn set_display_name(
        &self,
        store: &Store,
        display_name: Option<&str>,
    ) -> Result<Option<String>> {
        let display_name = quartier_protocol::names::check_display_name(display_name)
            .map_err(|e| Error::invalid("display_name", e.to_string()))?;
        let account = self.account(store).await?;
        let stored: DisplayName = self
            .call(
                HttpMethod::Put,
                "/v1/me/display-name",
                Some(&account.token),
                &DisplayName { display_name },
            )
            .await?;
        let (person, name) = (account.person, stored.display_name.clone());
        blocking(store, move |s| s.set_own_display_name(person, name.as_deref())).await?;
        Ok(stored.display_name)
    }

    /// Registers a space already created on this device (`Store::create_space`); its person
    /// becomes coordinator. [`SyncClient::create_shared_space`] creates and registers in one.
    pub async fn create_space(&self, store: &Store, space: SpaceId) -> Result<Membership> {
        let account = self.account(store).await?;
        let membership: Membership = self
            .call(
                HttpMethod::Post,
                "/v1/spaces",
                Some(&account.token),
                &CreateSpace {
                    space: space.as_uuid(),
                },
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
        let account = self.account(store).await?;
        let created: InviteCreated = self
            .call(
                HttpMethod::Post,
                &format!("/v1/spaces/{space}/invites"),
                Some(&account.token),
                &CreateInvite {
                    role,
                    expires_at_ms,
                    max_uses,
                },
            )
            .await?;
        Ok(created.code)
    }

    /// The space's invites that can still be redeemed, oldest first (coordinators): what each
    /// grants, until when, and how often it was used; never the codes.
    pub async fn list_invites(&self, store: &Store, space: SpaceId) -> Result<Vec<InviteInfo>> {
        let account = self.account(store).await?;
        let request = HttpRequest::bare(
            HttpMethod::Get,
            format!("/v1/spaces/{space}/invites"),
            Some(&account.token),
        );
        let list: InviteList = decode_answer(&self.send(request).await?)?;
        Ok(list.invites)
    }

    /// Withdraws an invite (coordinators): its code redeems nothing from then on. Whoever
    /// joined through it stays a member.
    pub async fn revoke_invite(&self, store: &Store, space: SpaceId, invite: u64) -> Result<()> {
        let account = self.account(store).await?;
        self.call_empty(
            HttpMethod::Delete,
            &format!("/v1/spaces/{space}/invites/{invite}"),
            &account.token,
        )
        .await
    }

    /// This person's secret calendar feed of `space`: an address calendar apps subscribe to,
    /// with the space's public events and offers' opening hours (docs/standards.md). Each call
    /// makes a new address; the one given before stops working.
    pub async fn renew_calendar_feed(&self, store: &Store, space: SpaceId) -> Result<String> {
        let account = self.account(store).await?;
        let request = HttpRequest::bare(
            HttpMethod::Post,
            format!("/v1/spaces/{space}/calendar-feed"),
            Some(&account.token),
        );
        let feed: quartier_protocol::CalendarFeed = decode_answer(&self.send(request).await?)?;
        Ok(format!("{}{}", self.base_url().trim_end_matches('/'), feed.path))
    }

    /// Ends this person's calendar feed of `space`: its address answers nothing any more.
    pub async fn end_calendar_feed(&self, store: &Store, space: SpaceId) -> Result<()> {
        let account = self.account(store).await?;
        self.call_empty(
            HttpMethod::Delete,
            &format!("/v1/spaces/{space}/calendar-feed"),
            &account.token,
        )
        .await
    }

    /// Joins the space of an invite code.
    pub async fn redeem_invite(&self, store: &Store, code: &str) -> Result<Membership> {
        let account = self.account_for_invite(store).await?;
        let membership: Membership = self
            .call(
                HttpMethod::Post,
                "/v1/invites/redeem",
                Some(&account.token),
                &RedeemInvite {
                    code: code.to_owned(),
                },
            )
            .await?;
        self.remember(store, membership).await
    }

    /// Confirms with the server the offline invites this device was given face to face
    /// (joining offline, `docs/protocol.md`): each becomes a membership, and what this device
    /// wrote in the space meanwhile goes with the next sync. An invite the server refuses for
    /// good (expired, used by someone else, its coordinator no longer one) is dropped and its
    /// error returned last; the others are still confirmed.
    pub async fn confirm_offline_invites(&self, store: &Store) -> Result<Vec<Membership>> {
        let account = self.account_for_invite(store).await?;
        let now = crate::store::now_ms();
        let invites = blocking(store, move |s| {
            s.read(|conn| crate::peer::guest::held_invites(conn, now))
        })
        .await?;
        let mut confirmed = Vec::new();
        let mut refused = None;
        for held in invites {
            let invite = held.invite;
            let answer: Result<Membership> = self
                .call(
                    HttpMethod::Post,
                    "/v1/invites/redeem-offline",
                    Some(&account.token),
                    &quartier_protocol::certificates::RedeemOfflineInvite {
                        invite: held.signed,
                        secret: held.secret.to_vec(),
                    },
                )
                .await;
            match answer {
                Ok(membership) => {
                    let space = invite.space;
                    blocking(store, move |s| {
                        s.write(|tx, _| crate::peer::guest::confirmed(tx, space))
                    })
                    .await?;
                    confirmed.push(self.remember(store, membership).await?);
                }
                // No link, or the server failing for a moment: the invite stays for next time.
                Err(e @ (Error::Offline(_) | Error::RateLimited { .. })) => return Err(e),
                Err(e @ Error::Server { status: 500.., .. }) => return Err(e),
                Err(e) => {
                    let space = invite.space;
                    blocking(store, move |s| {
                        s.write(|tx, _| crate::peer::guest::confirmed(tx, space))
                    })
                    .await?;
                    refused = Some(e);
                }
            }
        }
        match refused {
            Some(e) if confirmed.is_empty() => Err(e),
            _ => Ok(confirmed),
        }
    }

    /// Changes a member's role (coordinators).
    pub async fn set_role(
        &self,
        store: &Store,
        space: SpaceId,
        person: PersonId,
        role: Role,
    ) -> Result<Membership> {
        let account = self.account(store).await?;
        self.call(
            HttpMethod::Put,
            &format!("/v1/spaces/{space}/members/{person}"),
            Some(&account.token),
            &SetRole { role },
        )
        .await
    }

    /// Removes a member from a space (coordinators), effective at once.
    pub async fn remove_member(&self, store: &Store, space: SpaceId, person: PersonId) -> Result<()> {
        let account = self.account(store).await?;
        self.call_empty(
            HttpMethod::Delete,
            &format!("/v1/spaces/{space}/members/{person}"),
            &account.token,
        )
        .await
    }

    /// Revokes one of this person's devices (a lost phone), effective at once.
    pub async fn revoke_device(&self, store: &Store, device: uuid::Uuid) -> Result<()> {
        let account = self.account(store).await?;
        self.call_empty(
            HttpMethod::Delete,
            &format!("/v1/devices/{device}"),
            &account.token,
        )
        .await
    }

    pub(crate) async fn call_empty(&self, method: HttpMethod, path: &str, token: &str) -> Result<()> {
        let response = self.send(HttpRequest::bare(method, path, Some(token))).await?;
        if response.is_success() {
            return Ok(());
        }
        Err(refusal(&response))
    }

    async fn remember(&self, store: &Store, membership: Membership) -> Result<Membership> {
        let m = membership.clone();
        blocking(store, move |s| s.record_membership(&m)).await?;
        Ok(membership)
    }

    /// Syncs until the server has nothing more for this device and the outbox holds nothing
    /// the server would take. Each page is committed before the next request, so an
    /// interruption loses at most the page in flight. `progress` is called after every page.
    /// A second call for the same store while one runs waits for it, then syncs what is left.
    ///
    /// The driver of a [`SyncSession`]: it decides nothing, it carries requests and answers.
    pub async fn sync_now(&self, store: &Store, progress: impl Fn(&SyncProgress)) -> Result<SyncReport> {
        let _one_sync_at_a_time = store.sync_gate().lock().await;
        // Counselling attachments go before the messages that carry their keys: those of
        // conversations the server has first, then those of conversations this exchange opens
        // (and one more exchange for their messages).
        self.upload_counselling_files_quietly(store).await?;
        let mut report = self.run_session(store, &progress).await?;
        if self.upload_counselling_files_quietly(store).await? > 0 {
            report.absorb(self.run_session(store, &progress).await?);
        }
        // Files of conversations this sync erased or forgot, and an erasure's checkpoint a
        // reader held back.
        blocking(store, |s| {
            s.settle_owed_checkpoint();
            s.sweep_counselling_files()
        })
        .await?;
        Ok(report)
    }

    /// [`Self::upload_counselling_files`], where only a lost link (or the server's pause) stops
    /// the sync: any other failure of one file is logged and tried again at the next sync,
    /// and never holds up everything else.
    async fn upload_counselling_files_quietly(&self, store: &Store) -> Result<usize> {
        match self.upload_counselling_files(store).await {
            Ok(n) => Ok(n),
            Err(e @ (Error::Offline(_) | Error::RateLimited { .. } | Error::Cancelled)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "uploading counselling attachments failed; tried again at the next sync");
                Ok(0)
            }
        }
    }

    /// One sync session, driven to its end.
    async fn run_session(&self, store: &Store, progress: &impl Fn(&SyncProgress)) -> Result<SyncReport> {
        let (options, not_before) = (self.options, self.not_before());
        // Unique in the process, so an answer can never be taken for another session's.
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let number = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let (mut session, mut effects) = blocking(store, move |s| {
            Ok(SyncSession::start(s, options, not_before, Instant::now(), number))
        })
        .await?;
        loop {
            let mut send = None;
            for effect in effects {
                match effect {
                    SessionEffect::Send { id, request } => send = Some((id, request)),
                    SessionEffect::HoldRequestsUntil(until) => self.hold_until(until),
                    SessionEffect::Progress(p) => progress(&p),
                    SessionEffect::Done(result) => return result,
                }
            }
            let Some((request, http)) = send else {
                return Err(Error::invalid("sync", "the session neither sent nor finished"));
            };
            let event = match self.transport.send(http).await {
                Ok(response) => SessionEvent::Answered {
                    request,
                    response,
                    now: Instant::now(),
                },
                Err(error) => SessionEvent::Failed {
                    request,
                    error,
                    now: Instant::now(),
                },
            };
            (session, effects) = blocking(store, move |s| {
                let effects = session.handle(s, event);
                Ok((session, effects))
            })
            .await?;
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

/// Runs store work on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
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
