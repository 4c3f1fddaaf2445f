//! Sync with a Quartier server: [`QuartierSync`] (async calls running on the library's own
//! tokio runtime), [`CancelToken`] (the cancel path: uniffi does not cancel a Rust future when
//! a Swift task is cancelled; a Kotlin coroutine's cancellation drops it, and `AbortOnDrop`
//! then aborts the task), progress and background-sync listeners.

use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use quartier_core::sync::{BackgroundSync, BackoffPolicy, InviteLink, SyncClient, TransferQueue};
use quartier_core::Error as CoreError;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::error::{non_negative, FfiResult, QuartierError};
use crate::store::{QuartierStore, StoreSlot};
use crate::types::*;

/// The library's runtime: two workers (phones and this machine have few cores) plus tokio's
/// blocking pool, where store work of a sync runs. Built on first use; taken down by
/// [`shutdown_runtime`], after which async calls fail as `Internal`.
static RUNTIME: LazyLock<Mutex<Option<Arc<Runtime>>>> = LazyLock::new(|| Mutex::new(None));

/// Set once the runtime was shut down: it is not built again.
static SHUT_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn runtime() -> FfiResult<Arc<Runtime>> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = slot.as_ref() {
        return Ok(runtime.clone());
    }
    if SHUT_DOWN.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(QuartierError::internal("the library's runtime was shut down"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("quartier-sync")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| QuartierError::internal(format!("cannot start the sync runtime: {e}")))?;
    *slot = Some(runtime.clone());
    Ok(runtime)
}

/// Stops the library's threads: running syncs, transfers and background syncs are cancelled
/// and the runtime's workers exit (waiting at most two seconds for them). Call it when the
/// process ends: an interpreter that is finalising (Python) ends any thread that calls back
/// into it (a waking future, a listener) with a forced unwind, which aborts the process when
/// it meets Rust frames. The Python module calls it from `atexit`. Async calls made afterwards
/// fail; the stores keep working.
#[uniffi::export]
pub fn shutdown_runtime() {
    SHUT_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    let taken = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(runtime) = taken {
        // Otherwise a call is spawning onto it right now; its clone shuts it down when dropped.
        if let Ok(runtime) = Arc::try_unwrap(runtime) {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// An invite as the text of a QR code, `quartier://join?s=<server>&c=<code>`
/// (`InviteLink(server = sync.serverUrl(), code = createInvite(…))`). `Invalid` if the server
/// is not an http(s) URL or the code not an invite code. No I/O.
#[uniffi::export]
pub fn format_invite_link(link: InviteLink) -> FfiResult<String> {
    link.to_uri().map_err(|e| CoreError::from(e).into())
}

/// Reads a scanned invite link back (surrounding whitespace ignored): the server to make a
/// `QuartierSync` for and the code to `redeemInvite`. Anything else — another app's QR code, a
/// damaged or overlong text — is `Invalid`, with the reason. No I/O.
#[uniffi::export]
pub fn parse_invite_link(text: String) -> FfiResult<InviteLink> {
    InviteLink::parse(&text).map_err(|e| CoreError::from(e).into())
}

/// Aborts the spawned task if the awaiting side lets go of the future.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on the library runtime, cancellable through `cancel`; a panic inside becomes
/// `Internal`, a cancellation `Cancelled`.
pub(crate) async fn on_runtime<T, F>(cancel: Option<Arc<CancelToken>>, work: F) -> FfiResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, CoreError>> + Send + 'static,
{
    let task = runtime()?.spawn(async move {
        match cancel {
            Some(token) => {
                let mut cancelled = token.receiver();
                tokio::select! {
                    // Cancellation first: a token cancelled before the call always wins.
                    biased;
                    _ = cancelled.wait_for(|c| *c) => Err(CoreError::Cancelled),
                    result = work => result,
                }
            }
            None => work.await,
        }
    });
    let mut task = AbortOnDrop(task);
    match (&mut task.0).await {
        Ok(result) => result.map_err(QuartierError::from),
        Err(e) if e.is_panic() => Err(crate::error::from_panic(&*e.into_panic())),
        Err(_) => Err(QuartierError::Cancelled {
            reason: "sync cancelled".into(),
        }),
    }
}

/// Cancels the async calls it is passed to. Create one per operation (or per screen), call
/// `cancel()` from any thread — e.g. from Kotlin's `invokeOnCancellation` or Swift's
/// `withTaskCancellationHandler` — and the call ends with `QuartierError.Cancelled` at its next
/// await point. Pages already committed stay committed.
#[derive(uniffi::Object)]
pub struct CancelToken {
    sender: watch::Sender<bool>,
}

#[uniffi::export]
impl CancelToken {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(CancelToken {
            sender: watch::Sender::new(false),
        })
    }

    /// Idempotent; calls started later with this token end at once.
    pub fn cancel(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.sender.borrow()
    }
}

impl CancelToken {
    fn receiver(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }
}

/// Implemented by the app; called on a library thread after every committed page.
#[uniffi::export(with_foreign)]
pub trait SyncProgressListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Implemented by the app; called on a library thread with everything background sync does.
#[uniffi::export(with_foreign)]
pub trait SyncEventListener: Send + Sync {
    fn on_event(&self, event: SyncEvent);
}

/// Sync of one store with one server. Every async method runs on the library's runtime and
/// may be awaited from any coroutine, task or thread; it takes an optional [`CancelToken`].
#[derive(uniffi::Object)]
pub struct QuartierSync {
    /// Shared with the `QuartierStore`, not the object itself: the sync does not keep the store
    /// open, and sees `Closed` once the store is closed or released.
    store: Arc<StoreSlot>,
    client: SyncClient,
    /// The media transfer queue of this server (its policy and traffic counters); `media.rs`.
    pub(crate) transfers: Arc<TransferQueue>,
}

impl QuartierSync {
    pub(crate) fn core(&self) -> FfiResult<quartier_core::Store> {
        self.store.core()
    }

    pub(crate) fn client(&self) -> &SyncClient {
        &self.client
    }
}

#[uniffi::export]
impl QuartierSync {
    /// A sync session for `store` with the server at `server_url`: `https://…`, or `http://`
    /// to this machine (loopback) only.
    #[uniffi::constructor]
    pub fn new(store: Arc<QuartierStore>, server_url: String) -> FfiResult<Arc<Self>> {
        Self::with_options(store, server_url, false)
    }

    /// As `new`; `allow_plain_http` also allows `http://` to other machines (a test network:
    /// the device's credential and content then travel unencrypted).
    #[uniffi::constructor]
    pub fn with_options(
        store: Arc<QuartierStore>,
        server_url: String,
        allow_plain_http: bool,
    ) -> FfiResult<Arc<Self>> {
        crate::error::guard(|| {
            if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
                return Err(QuartierError::invalid(
                    "server address",
                    format!("`{server_url}` must start with http:// or https://"),
                ));
            }
            let client = SyncClient::builder(&server_url)
                .allow_plain_http(allow_plain_http)
                .build()?;
            Ok(Arc::new(QuartierSync {
                store: store.slot(),
                transfers: Arc::new(TransferQueue::new(&client)?),
                client,
            }))
        })
    }

    pub fn server_url(&self) -> String {
        self.client.base_url().to_owned()
    }

    /// Per-space sync status from the store (no network).
    pub fn status(&self) -> FfiResult<Vec<SpaceSyncStatus>> {
        crate::error::guard(|| Ok(self.core()?.sync_status()?))
    }

    /// Registers this device; the account's `person_id` is the id to author content with.
    #[uniffi::method(default(display_name = None, cancel = None))]
    pub async fn register(
        &self,
        display_name: Option<String>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Account> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            let account = client.register(&store, display_name.as_deref()).await?;
            Ok(Account::from(&account))
        })
        .await
    }

    /// Changes (null or blank: removes) the display name of this device's person, the name
    /// every member of their spaces sees (pseudonyms welcome; one name for all spaces). At most
    /// 64 characters, no control or text-direction characters, trimmed: a refused name is
    /// `Invalid`, without a request. Returns the name as stored; `QuartierStore.members` shows
    /// it at once here, other members' devices after their next sync.
    #[uniffi::method(default(cancel = None))]
    pub async fn set_display_name(
        &self,
        display_name: Option<String>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Option<String>> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            client.set_display_name(&store, display_name.as_deref()).await
        })
        .await
    }

    /// Creates a space shared through this server in one call: stored on this device (this
    /// device's person its author and coordinator), registered with the server and pushed, so
    /// that invitees find it. Offline, the space is still created (`membership` is null) and
    /// the next sync registers and pushes it. `NotRegistered` before `register`.
    #[uniffi::method(default(cancel = None))]
    pub async fn create_space(
        &self,
        meta: SpaceMeta,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<SharedSpace> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            let shared = client.create_shared_space(&store, meta).await?;
            Ok(SharedSpace {
                space: shared.space,
                membership: shared.membership.as_ref().map(Membership::from),
            })
        })
        .await
    }

    /// Registers a space created earlier with `QuartierStore.create_space` (local only) with
    /// the server; this person becomes its coordinator. Push it with `sync_now` afterwards.
    #[uniffi::method(default(cancel = None))]
    pub async fn register_space(
        &self,
        space_id: SpaceId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Membership> {
        let (store, client) = (self.core()?, self.client.clone());
        let space = space_id;
        on_runtime(cancel, async move {
            Ok(Membership::from(&client.create_space(&store, space).await?))
        })
        .await
    }

    /// Creates an invite code for `role` (coordinators), valid until `expires_at_ms`, for at most
    /// `max_uses` people.
    #[uniffi::method(default(cancel = None))]
    pub async fn create_invite(
        &self,
        space_id: SpaceId,
        role: Role,
        expires_at_ms: i64,
        max_uses: i64,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<String> {
        let max_uses = non_negative("max uses", max_uses)?;
        let (store, client) = (self.core()?, self.client.clone());
        let space = space_id;
        on_runtime(cancel, async move {
            client
                .create_invite(&store, space, role, expires_at_ms, max_uses)
                .await
        })
        .await
    }

    /// The space's invites that can still be redeemed, oldest first (coordinators).
    #[uniffi::method(default(cancel = None))]
    pub async fn list_invites(
        &self,
        space_id: SpaceId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Vec<Invite>> {
        let (store, client) = (self.core()?, self.client.clone());
        let invites = on_runtime(cancel, async move { client.list_invites(&store, space_id).await }).await?;
        Ok(invites.into_iter().map(Invite::from).collect())
    }

    /// Withdraws an invite by its `id` (coordinators): its code redeems nothing from then on.
    #[uniffi::method(default(cancel = None))]
    pub async fn revoke_invite(
        &self,
        space_id: SpaceId,
        invite_id: i64,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<()> {
        let invite_id = non_negative("invite id", invite_id)?;
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            client.revoke_invite(&store, space_id, invite_id).await
        })
        .await
    }

    /// Joins the space of an invite code.
    #[uniffi::method(default(cancel = None))]
    pub async fn redeem_invite(
        &self,
        code: String,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Membership> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            Ok(Membership::from(&client.redeem_invite(&store, &code).await?))
        })
        .await
    }

    /// Confirms the offline invites this device was given face to face (joining offline): each
    /// becomes a membership, and what the device wrote in the space meanwhile goes with the
    /// next sync.
    #[uniffi::method(default(cancel = None))]
    pub async fn confirm_offline_invites(
        &self,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Vec<Membership>> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            Ok(client
                .confirm_offline_invites(&store)
                .await?
                .iter()
                .map(Membership::from)
                .collect())
        })
        .await
    }

    /// Changes a member's role (coordinators).
    #[uniffi::method(default(cancel = None))]
    pub async fn set_role(
        &self,
        space_id: SpaceId,
        person_id: PersonId,
        role: Role,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Membership> {
        let (store, client) = (self.core()?, self.client.clone());
        let (space, person) = (space_id, person_id);
        on_runtime(cancel, async move {
            Ok(Membership::from(
                &client.set_role(&store, space, person, role).await?,
            ))
        })
        .await
    }

    /// Removes a member (coordinators), effective at once.
    #[uniffi::method(default(cancel = None))]
    pub async fn remove_member(
        &self,
        space_id: SpaceId,
        person_id: PersonId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<()> {
        let (store, client) = (self.core()?, self.client.clone());
        let (space, person) = (space_id, person_id);
        on_runtime(cancel, async move {
            client.remove_member(&store, space, person).await
        })
        .await
    }

    /// This person's secret calendar feed of a space (its public events and opening hours, for
    /// the calendar app they already use). Each call gives a new address and ends the old one.
    #[uniffi::method(default(cancel = None))]
    pub async fn renew_calendar_feed(
        &self,
        space_id: SpaceId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<String> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            client.renew_calendar_feed(&store, space_id).await
        })
        .await
    }

    /// Ends this person's calendar feed of a space.
    #[uniffi::method(default(cancel = None))]
    pub async fn end_calendar_feed(
        &self,
        space_id: SpaceId,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<()> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(
            cancel,
            async move { client.end_calendar_feed(&store, space_id).await },
        )
        .await
    }

    /// Revokes one of this person's devices (a lost phone).
    #[uniffi::method(default(cancel = None))]
    pub async fn revoke_device(&self, device_id: String, cancel: Option<Arc<CancelToken>>) -> FfiResult<()> {
        let (store, client) = (self.core()?, self.client.clone());
        let device = parse_uuid("device id", &device_id)?;
        on_runtime(cancel, async move { client.revoke_device(&store, device).await }).await
    }

    /// Pushes the outbox and pulls everything new, page by page (each committed before the
    /// next is asked for). `progress` is called after each page, on a library thread.
    #[uniffi::method(default(progress = None, cancel = None))]
    pub async fn sync_now(
        &self,
        progress: Option<Arc<dyn SyncProgressListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<SyncReport> {
        let (store, client) = (self.core()?, self.client.clone());
        on_runtime(cancel, async move {
            let report = client
                .sync_now(&store, |p| {
                    if let Some(listener) = &progress {
                        listener.on_progress(p.clone());
                    }
                })
                .await?;
            Ok(SyncReport::from(report))
        })
        .await
    }

    /// Starts syncing in the background every `interval_ms` (and with exponential backoff
    /// after failures) until the returned handle is stopped or dropped.
    pub fn start_background(
        &self,
        interval_ms: i64,
        listener: Arc<dyn SyncEventListener>,
    ) -> FfiResult<Arc<BackgroundSyncHandle>> {
        crate::error::guard(|| {
            let interval_ms: u64 = non_negative("interval", interval_ms)?;
            let policy = BackoffPolicy {
                interval: Duration::from_millis(interval_ms.max(1_000)),
                ..BackoffPolicy::default()
            };
            let running = BackgroundSync::start(
                runtime()?.handle(),
                self.client.clone(),
                self.core()?,
                policy,
                move |event| listener.on_event((&event).into()),
            );
            Ok(Arc::new(BackgroundSyncHandle {
                inner: Mutex::new(Some(running)),
            }))
        })
    }
}

/// Background sync; `stop()` or dropping it stops it.
#[derive(uniffi::Object)]
pub struct BackgroundSyncHandle {
    inner: Mutex<Option<BackgroundSync>>,
}

#[uniffi::export]
impl BackgroundSyncHandle {
    /// Syncs as soon as the current pause allows (after a local write, when a link appears).
    pub fn sync_soon(&self) {
        if let Some(running) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            running.sync_soon();
        }
    }

    /// Stops background sync; a sync under way is abandoned (committed pages stay). Idempotent.
    pub fn stop(&self) {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(running) = taken {
            running.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test runtime")
            .block_on(f)
    }

    #[test]
    fn a_cancelled_token_ends_the_call_with_cancelled() {
        let token = CancelToken::new();
        token.cancel();
        let result = run(on_runtime(
            Some(token),
            std::future::pending::<Result<(), CoreError>>(),
        ));
        assert!(
            matches!(result, Err(QuartierError::Cancelled { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn cancelling_later_from_another_thread_ends_a_waiting_call() {
        let token = CancelToken::new();
        let canceller = Arc::clone(&token);
        let thread = std::thread::spawn(move || canceller.cancel());
        let result = run(on_runtime(
            Some(token),
            std::future::pending::<Result<(), CoreError>>(),
        ));
        assert!(
            matches!(result, Err(QuartierError::Cancelled { .. })),
            "{result:?}"
        );
        thread.join().expect("canceller thread");
    }

    #[test]
    fn a_panic_on_the_runtime_becomes_internal_and_the_runtime_lives_on() {
        let result = run(on_runtime(None, async {
            panic!("in a task") as Result<(), CoreError>
        }));
        assert!(
            matches!(&result, Err(QuartierError::Internal { reason }) if reason.contains("in a task")),
            "{result:?}"
        );
        assert_eq!(run(on_runtime(None, async { Ok::<_, CoreError>(7) })), Ok(7));
    }

    #[test]
    fn core_errors_keep_their_type() {
        let result = run(on_runtime(None, async { Err::<(), _>(CoreError::NotRegistered) }));
        assert!(matches!(result, Err(QuartierError::NotRegistered { .. })));
    }
}
