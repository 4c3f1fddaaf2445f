//! Device to device (`docs/protocol.md`, "Device to device"; `quartier_core::peer`): two
//! devices of the same server sync with no infrastructure, and a device carries others' signed
//! changes to the server.
//!
//! - on [`QuartierStore`]: the opt-in per space for the local network, the relay limits, what
//!   this device carries, its certificates (all local, no I/O);
//! - [`QuartierPeerSession`]: the sans-IO session for transports the app carries (Bluetooth,
//!   Wi-Fi Direct, QR codes): frames in, frames out;
//! - the local network, async on the library's runtime like [`QuartierSync`]:
//!   [`QuartierPeerListener`] (a TCP listener, announced with mDNS on request), [`meet_at`],
//!   [`browse_nearby`]; progress through the foreign [`PeerProgressListener`] after every frame.
//!
//! Conversions only: the records are the core's (derived there), the behaviour is the core's.
//!
//! [`QuartierSync`]: crate::sync::QuartierSync

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use quartier_core::peer::{
    self as core_peer, Nearby, PeerOptions, PeerSession, DEFAULT_FRAME_BYTES, QR_FRAME_BYTES,
};
use quartier_core::{Error as CoreError, Store};
use tokio::net::TcpListener;

use crate::error::{guard, non_negative, signed, FfiResult, QuartierError};
use crate::store::{QuartierStore, StoreSlot};
use crate::sync::{on_runtime, runtime, CancelToken};
use crate::types::*;

/// Frame size for a transport that carries little at a time: one QR code (2 000 bytes of
/// binary). Pass it to `QuartierPeerSession` for codes shown and scanned.
#[uniffi::export]
pub fn qr_frame_bytes() -> i64 {
    signed(QR_FRAME_BYTES)
}

/// Frame size for a stream (a Bluetooth or Wi-Fi Direct socket): 256 KiB, the session's
/// default.
#[uniffi::export]
pub fn default_frame_bytes() -> i64 {
    signed(DEFAULT_FRAME_BYTES)
}

// The constructor's default below is a literal (uniffi's defaults are): keep it the core's.
const _: () = assert!(DEFAULT_FRAME_BYTES == 262_144);

#[uniffi::export]
impl QuartierStore {
    /// Opts a space in (or out) of meeting devices on the local network: only opted-in spaces
    /// are announced, found and synced there. Out by default.
    pub fn set_nearby(&self, space_id: SpaceId, enabled: bool) -> FfiResult<()> {
        self.with(|s| Ok(s.set_nearby(space_id, enabled)?))
    }

    /// The spaces opted in for the local network.
    pub fn nearby_spaces(&self) -> FfiResult<Vec<SpaceId>> {
        self.with(|s| Ok(s.nearby_spaces()?))
    }

    /// Sets what this device carries for others at most (store-and-forward: changes taken from
    /// a peer wait in the outbox for the next sync). Negative limits are `Invalid`; changes
    /// already carried beyond a lower byte limit stay until delivered.
    pub fn set_relay_limits(&self, limits: RelayLimits) -> FfiResult<()> {
        self.with(|s| Ok(s.set_relay_limits(limits)?))
    }

    /// What this device carries for others at most (32 MiB for 14 days unless set).
    pub fn relay_limits(&self) -> FfiResult<RelayLimits> {
        self.with(|s| Ok(s.relay_limits()?))
    }

    /// What this device carries for others now: changes and bytes waiting for a sync.
    pub fn carried_changes(&self) -> FfiResult<CarriedChanges> {
        self.with(|s| Ok(s.carried_changes()?))
    }

    /// Whether this device fetches the signatures it needs to show documents it got whole from
    /// the server (a new member's first sync) to other devices. On by default; they follow each
    /// space's content, about 100 bytes a document. Off saves a data plan that much, and the
    /// device then shows peers only its own changes and those it got from peers or one by
    /// one. Turned on again, the next sync fetches them for everything already held.
    pub fn set_peer_signatures(&self, enabled: bool) -> FfiResult<()> {
        self.with(|s| Ok(s.set_peer_signatures(enabled)?))
    }

    /// See `set_peer_signatures`.
    pub fn peer_signatures(&self) -> FfiResult<bool> {
        self.with(|s| Ok(s.peer_signatures()?))
    }

    /// This device's own certificates by space (space, role, issued, expires, valid): which
    /// spaces it can meet other devices in, as what, until when. Empty before the first sync
    /// with a server that issues them.
    pub fn peer_certificates(&self) -> FfiResult<Vec<PeerCertificate>> {
        self.with(|s| Ok(s.peer_certificates()?))
    }

    /// Joining offline, on a coordinator's phone: an invite to `space_id` for `role` (resident
    /// or volunteer), good for `valid_for_ms` (a week at most), as the text of a QR code.
    pub fn make_offline_invite(&self, space_id: SpaceId, role: Role, valid_for_ms: i64) -> FfiResult<String> {
        self.with(|s| Ok(s.make_offline_invite(space_id, role, valid_for_ms)?))
    }

    /// Joining offline, on the new device: takes an invite's QR text; the device can then meet
    /// the inviting phone (a session started without an account) and confirm the invite with
    /// `QuartierSync.confirm_offline_invites` at its first connection.
    pub fn accept_offline_invite(&self, text: String) -> FfiResult<OfflineInviteInfo> {
        self.with(|s| Ok(s.accept_offline_invite(&text)?))
    }

    /// The offline invites this device holds that no server confirmed yet.
    pub fn offline_invites(&self) -> FfiResult<Vec<OfflineInviteInfo>> {
        self.with(|s| Ok(s.offline_invites()?))
    }

    /// The person id to write under before this device registered (joining offline); the
    /// account's person once it has.
    pub fn provisional_person(&self) -> FfiResult<PersonId> {
        self.with(|s| Ok(s.provisional_person()?))
    }
}

/// Implemented by the app; called on a library thread after every frame a local-network
/// session received, with what the session did so far. An exception thrown here fails the
/// session with `Internal` (what earlier frames brought stays).
#[uniffi::export(with_foreign)]
pub trait PeerProgressListener: Send + Sync {
    fn on_progress(&self, report: PeerReport);
}

fn tell(progress: &Option<Arc<dyn PeerProgressListener>>, report: &PeerReport) {
    if let Some(listener) = progress {
        listener.on_progress(report.clone());
    }
}

/// Runs blocking work (mDNS discovery waits on a channel) on the runtime's blocking pool; a
/// panic there goes on as a panic of the calling task (`on_runtime` makes it `Internal`).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, CoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(CoreError::Cancelled),
    }
}

fn parse_address(text: &str) -> FfiResult<SocketAddr> {
    text.trim().parse().map_err(|e| {
        QuartierError::invalid(
            "address",
            format!("`{text}` is not an address with a port (192.168.1.20:45123, [fe80::1]:45123): {e}"),
        )
    })
}

/// One device-to-device session over a transport the app carries (Bluetooth, Wi-Fi Direct,
/// QR codes shown and scanned): the core's sans-IO session. The initiator sends
/// `first_frame()`; then each side passes every frame it gets to `receive` and sends back the
/// frame it returns, until `receive` returns null (the session is finished: `is_finished()`).
/// Every page of changes is checked and committed as it arrives, so a session cut anywhere is
/// simply started again. Thread-safe (one call at a time inside); keeps the store's file no
/// more open than a `QuartierSync` does.
#[derive(uniffi::Object)]
pub struct QuartierPeerSession {
    store: Arc<StoreSlot>,
    state: Mutex<SessionState>,
}

struct SessionState {
    session: PeerSession,
    first: Option<Vec<u8>>,
}

impl QuartierPeerSession {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[uniffi::export]
impl QuartierPeerSession {
    /// Starts a session of `store` in `role`: frames of at most `frame_bytes` (at least 128;
    /// `qr_frame_bytes()` for QR codes, `default_frame_bytes()` for sockets), carrying the
    /// peer's changes of others to the server if `carry` (within the relay limits). Every space
    /// both devices hold a valid certificate of is synced. `NotRegistered` before registering;
    /// `Peer` (code `bad_certificate`) before the first sync brought a certificate.
    #[uniffi::constructor(default(frame_bytes = 262144, carry = true))]
    pub fn new(
        store: Arc<QuartierStore>,
        role: PeerRole,
        frame_bytes: i64,
        carry: bool,
    ) -> FfiResult<Arc<Self>> {
        guard(|| {
            let frame_bytes: usize = non_negative("frame bytes", frame_bytes)?;
            let options = PeerOptions {
                frame_bytes,
                carry,
                ..PeerOptions::default()
            };
            let (session, first) = PeerSession::start(&store.core()?, role, options)?;
            Ok(Arc::new(QuartierPeerSession {
                store: store.slot(),
                state: Mutex::new(SessionState { session, first }),
            }))
        })
    }

    /// The initiator's first frame, once (null afterwards, and always for the responder, who
    /// waits for it).
    pub fn first_frame(&self) -> Option<Vec<u8>> {
        self.lock().first.take()
    }

    /// Takes one frame from the other device; returns the frame to send back, or null when the
    /// session is finished. An error (`Peer` with its code: `malformed`, `bad_signature`,
    /// `bad_certificate`, `unproven`, `protocol` …) stops the session: send nothing more, start
    /// a new one. What earlier frames brought stays.
    pub fn receive(&self, frame: Vec<u8>) -> FfiResult<Option<Vec<u8>>> {
        guard(|| {
            let store = self.store.core()?;
            Ok(self.lock().session.receive(&store, &frame)?)
        })
    }

    /// What the session did so far.
    pub fn report(&self) -> PeerReport {
        self.lock().session.report().clone()
    }

    /// Whether both sides said done.
    pub fn is_finished(&self) -> bool {
        self.lock().session.is_finished()
    }
}

/// This device, listening for devices nearby on the local network (TCP on every interface,
/// `0.0.0.0`), and — once `announce` is called — announced there with mDNS for its opted-in
/// spaces. Sessions run inside an encrypted channel bound into both devices' proofs, for the
/// opted-in spaces only (`QuartierStore.set_nearby`). Releasing the object stops listening and
/// announcing. Thread-safe.
#[derive(uniffi::Object)]
pub struct QuartierPeerListener {
    store: Arc<StoreSlot>,
    listener: Arc<TcpListener>,
    port: u16,
    /// Made on the first `announce` or `browse`: nothing goes on the network before.
    nearby: Arc<Mutex<Option<Nearby>>>,
}

impl QuartierPeerListener {
    fn core(&self) -> FfiResult<Store> {
        self.store.core()
    }
}

fn lock_nearby(nearby: &Mutex<Option<Nearby>>) -> MutexGuard<'_, Option<Nearby>> {
    nearby.lock().unwrap_or_else(|p| p.into_inner())
}

#[uniffi::export]
impl QuartierPeerListener {
    /// Listens on `port` of every interface (0, the default: a free port, see `port()`).
    /// `Offline` if the port cannot be had (taken, not allowed).
    #[uniffi::constructor(default(port = 0))]
    pub fn new(store: Arc<QuartierStore>, port: i32) -> FfiResult<Arc<Self>> {
        guard(|| {
            let port: u16 = non_negative("port", i64::from(port))?;
            let listen_error =
                |e: std::io::Error| CoreError::Offline(format!("cannot listen on port {port}: {e}"));
            let bound = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).map_err(listen_error)?;
            bound.set_nonblocking(true).map_err(listen_error)?;
            let runtime = runtime()?;
            let listener = {
                let _entered = runtime.enter();
                TcpListener::from_std(bound).map_err(listen_error)?
            };
            let port = listener.local_addr().map_err(listen_error)?.port();
            Ok(Arc::new(QuartierPeerListener {
                store: store.slot(),
                listener: Arc::new(listener),
                port,
                nearby: Arc::new(Mutex::new(None)),
            }))
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> i32 {
        i32::from(self.port)
    }

    /// Announces this device with mDNS at `ip` (the phone's Wi-Fi address) and the listener's
    /// port, for its opted-in spaces: the announcement names no person, device or space (a
    /// random name, a tag per space that changes daily and only members can compute). Returns
    /// false, announcing nothing, when no space is opted in. Call it again after opting a space
    /// in or out, or when the address changes.
    pub fn announce(&self, ip: String) -> FfiResult<bool> {
        guard(|| {
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|e| QuartierError::invalid("ip address", format!("`{ip}`: {e}")))?;
            let store = self.core()?;
            let mut nearby = lock_nearby(&self.nearby);
            let nearby = match nearby.as_mut() {
                Some(nearby) => nearby,
                None => nearby.insert(Nearby::new()?),
            };
            Ok(nearby.announce(&store, SocketAddr::new(ip, self.port))?)
        })
    }

    /// Stops announcing (listening goes on). Idempotent.
    pub fn withdraw(&self) {
        if let Some(nearby) = lock_nearby(&self.nearby).as_mut() {
            nearby.withdraw();
        }
    }

    /// Devices nearby sharing an opted-in space, as `browse_nearby` finds them, leaving out
    /// this device's own announcement: browse through the listener while announcing.
    #[uniffi::method(default(cancel = None))]
    pub async fn browse(
        &self,
        wait_ms: i64,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<Vec<NearbyDevice>> {
        let wait: u64 = non_negative("wait", wait_ms)?;
        let (store, nearby) = (self.core()?, Arc::clone(&self.nearby));
        on_runtime(cancel, async move {
            blocking(move || {
                let mut nearby = lock_nearby(&nearby);
                let nearby = match nearby.as_mut() {
                    Some(nearby) => nearby,
                    None => nearby.insert(Nearby::new()?),
                };
                nearby.browse(&store, Duration::from_millis(wait))
            })
            .await
        })
        .await
    }

    /// Waits for the next device to connect and syncs with it (this device responds), for the
    /// opted-in spaces; `progress` is called after every frame. A cancelled token stops the
    /// waiting (or the session, at its next frame).
    #[uniffi::method(default(carry = true, progress = None, cancel = None))]
    pub async fn meet_next(
        &self,
        carry: bool,
        progress: Option<Arc<dyn PeerProgressListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> FfiResult<PeerReport> {
        let (store, listener) = (self.core()?, Arc::clone(&self.listener));
        on_runtime(cancel, async move {
            let report_progress = |report: &PeerReport| tell(&progress, report);
            core_peer::meet_next(&store, &listener, carry, &report_progress).await
        })
        .await
    }
}

/// Connects to a device nearby at `address` (`ip:port`, from `NearbyDevice.addresses`) and
/// syncs with it (this device initiates), for the opted-in spaces; `progress` is called after
/// every frame. `Invalid` for text that is not an address with a port; `Offline` when the
/// device cannot be reached or stops answering (30 s); `Peer` when the session stops.
#[uniffi::export(default(carry = true, progress = None, cancel = None))]
pub async fn meet_at(
    store: Arc<QuartierStore>,
    address: String,
    carry: bool,
    progress: Option<Arc<dyn PeerProgressListener>>,
    cancel: Option<Arc<CancelToken>>,
) -> FfiResult<PeerReport> {
    let address = parse_address(&address)?;
    let store = store.core()?;
    on_runtime(cancel, async move {
        let report_progress = |report: &PeerReport| tell(&progress, report);
        core_peer::meet_at(&store, address, carry, &report_progress).await
    })
    .await
}

/// Devices on the local network announcing one of this device's opted-in spaces (mDNS):
/// waits up to `wait_ms` for the first, then half a second for others answering at about the
/// same time. Empty when none answered or no space is opted in. A device that announces
/// itself browses through its `QuartierPeerListener` instead, which leaves it out.
#[uniffi::export(default(cancel = None))]
pub async fn browse_nearby(
    store: Arc<QuartierStore>,
    wait_ms: i64,
    cancel: Option<Arc<CancelToken>>,
) -> FfiResult<Vec<NearbyDevice>> {
    let wait: u64 = non_negative("wait", wait_ms)?;
    let store = store.core()?;
    on_runtime(cancel, async move {
        blocking(move || Nearby::new()?.browse(&store, Duration::from_millis(wait))).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test runtime")
            .block_on(f)
    }

    fn store(dir: &tempfile::TempDir, name: &str) -> Arc<QuartierStore> {
        QuartierStore::open(dir.path().join(format!("{name}.db")).display().to_string()).expect("store")
    }

    #[test]
    fn frame_sizes_are_the_cores() {
        assert_eq!(qr_frame_bytes(), 2_000);
        assert_eq!(default_frame_bytes(), 262_144);
    }

    #[test]
    fn an_unregistered_store_cannot_start_a_session() {
        let dir = tempfile::tempdir().expect("dir");
        let result = QuartierPeerSession::new(store(&dir, "a"), PeerRole::Initiator, qr_frame_bytes(), true);
        assert!(
            matches!(result, Err(QuartierError::NotRegistered { .. })),
            "{:?}",
            result.err()
        );
        let result = QuartierPeerSession::new(store(&dir, "b"), PeerRole::Responder, -1, true);
        assert!(
            matches!(result, Err(QuartierError::Invalid { .. })),
            "{:?}",
            result.err()
        );
    }

    #[test]
    fn nearby_spaces_and_relay_limits_round_trip() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(&dir, "a");
        let space = SpaceId::new();
        assert_eq!(store.nearby_spaces(), Ok(vec![]));
        store.set_nearby(space, true).expect("opt in");
        assert_eq!(store.nearby_spaces(), Ok(vec![space]));
        store.set_nearby(space, false).expect("opt out");
        assert_eq!(store.nearby_spaces(), Ok(vec![]));
        let limits = RelayLimits {
            max_bytes: 1024,
            max_age_ms: 60_000,
        };
        store.set_relay_limits(limits).expect("limits");
        assert_eq!(store.relay_limits(), Ok(limits));
        let negative = store.set_relay_limits(RelayLimits {
            max_bytes: -1,
            max_age_ms: 0,
        });
        assert!(
            matches!(negative, Err(QuartierError::Invalid { .. })),
            "{negative:?}"
        );
        assert_eq!(
            store.carried_changes(),
            Ok(CarriedChanges { changes: 0, bytes: 0 })
        );
        assert_eq!(store.peer_certificates(), Ok(vec![]));
    }

    #[test]
    fn addresses_are_checked_and_a_refused_connection_is_offline() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store(&dir, "a");
        for bad in ["", "127.0.0.1", "nearby:80", "127.0.0.1:99999"] {
            let result = run(meet_at(Arc::clone(&store), bad.into(), true, None, None));
            assert!(
                matches!(result, Err(QuartierError::Invalid { .. })),
                "{bad}: {result:?}"
            );
        }
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let result = run(meet_at(store, format!("127.0.0.1:{port}"), true, None, None));
        assert!(matches!(result, Err(QuartierError::Offline { .. })), "{result:?}");
    }

    #[test]
    fn a_listener_reports_its_port_and_a_cancelled_wait_ends() {
        let dir = tempfile::tempdir().expect("dir");
        let kept = store(&dir, "a");
        let listener = QuartierPeerListener::new(Arc::clone(&kept), 0).expect("listener");
        assert!(listener.port() > 0);
        let taken = QuartierPeerListener::new(store(&dir, "b"), listener.port());
        assert!(
            matches!(taken, Err(QuartierError::Offline { .. })),
            "{:?}",
            taken.err()
        );
        let token = CancelToken::new();
        token.cancel();
        let result = run(listener.meet_next(true, None, Some(token)));
        assert!(
            matches!(result, Err(QuartierError::Cancelled { .. })),
            "{result:?}"
        );
        assert!(matches!(
            listener.announce("not an ip".into()),
            Err(QuartierError::Invalid { .. })
        ));
        // The listener does not keep the store open (as a `QuartierSync`).
        kept.close().expect("close");
        let result = run(listener.meet_next(true, None, None));
        assert!(matches!(result, Err(QuartierError::Closed { .. })), "{result:?}");
    }
}
