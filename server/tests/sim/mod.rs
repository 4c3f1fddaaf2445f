//! An in-process world for sync: a real server database in a temporary folder answering
//! requests through the server's own functions (`quartier_server::sync::exchange`, the
//! `storage` calls behind the account endpoints), device stores syncing with it through
//! `quartier_core::sync::SyncSession`, and between them a simulated network that delays, drops,
//! duplicates, reorders and refuses messages under a virtual clock. No sockets, no sleeps, no
//! runtime but a current-thread one for the one-time setup calls of `SyncClient`.
//!
//! Everything the schedule does is a [`Step`]; `World::run` applies one. The world records what
//! the properties need: every change a device pushed, every acknowledgement a device accepted,
//! and any change sent again after its acknowledgement.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quartier_core::media::ImportOptions;
use quartier_core::model::*;
use quartier_core::sync::{
    HttpMethod, HttpRequest, HttpResponse, HttpTransport, RequestId, SessionEffect, SessionEvent,
    SessionOptions, SyncClient, SyncReport, SyncSession, TransferEffect, TransferInput, TransferQueue,
    TransferReport, TransferSession, TransportError, TransportFuture,
};
use quartier_core::{Store, StoreOptions};
use quartier_protocol::blobs::AnnounceBlob;
use quartier_protocol::{
    AckOutcome, CreateInvite, CreateSpace, DeviceRegistered, ErrorBody, InviteCreated, Record, RedeemInvite,
    RegisterDevice, RegistrationChallenge, SyncRequest, SyncResponse,
};
use quartier_server::blobs::{fs::FsBlobStore, service, BlobLimits, Blobs};
use quartier_server::documents::{self, DocCache};
use quartier_server::storage::accounts::DeviceRecord;
use quartier_server::storage::{accounts, log, spaces, Db};
use tempfile::TempDir;
use uuid::Uuid;

/// A real server database behind a function from request to answer.
pub struct InProcessServer {
    db: Db,
    docs: DocCache,
    blobs: Blobs,
    /// Downloads answered from a byte other than the first (a cut download resumed).
    pub resumed_downloads: std::sync::atomic::AtomicUsize,
}

impl InProcessServer {
    /// The server whose data folder is `dir` (made if missing).
    pub fn open(dir: &Path) -> Self {
        let store = FsBlobStore::open(&dir.join("blobs")).expect("blob folder");
        InProcessServer {
            db: Db::open(dir).expect("server database"),
            docs: DocCache::new(64),
            blobs: Blobs::new(
                Arc::new(store),
                BlobLimits {
                    max_blob_bytes: 64 * 1024 * 1024,
                    space_quota_bytes: 1024 * 1024 * 1024,
                },
            ),
            resumed_downloads: Default::default(),
        }
    }

    /// Answers one request as the HTTP server would for the endpoints the harness uses. Faults
    /// of the server's own are test failures: nothing here is expected to fail.
    pub fn handle(&self, request: &HttpRequest) -> HttpResponse {
        let path = request.path.as_str();
        match (request.method, path) {
            (HttpMethod::Post, "/v1/devices/challenge") => answer(&RegistrationChallenge {
                challenge: vec![0; 32],
                expires_at_ms: i64::MAX,
            }),
            (HttpMethod::Post, "/v1/devices") => {
                let req: RegisterDevice = decode(&request.body);
                let token = Uuid::new_v4().simple().to_string();
                let conn = self.db.lock();
                let device = accounts::register_as(
                    &conn,
                    &req.public_key,
                    req.display_name.as_deref(),
                    &token,
                    None,
                    req.person,
                )
                .expect("register");
                answer(&DeviceRegistered {
                    device: device.device,
                    person: device.person,
                    token,
                })
            }
            _ => {
                let token = request.bearer.as_deref().unwrap_or("");
                let device = {
                    let conn = self.db.lock();
                    accounts::device_by_token(&conn, token).expect("device by token")
                };
                let Some(device) = device else {
                    return refused(401, "unauthorized");
                };
                if let Some(answer) = self.blob_request(&device, request) {
                    return answer;
                }
                if path == "/v1/sync" {
                    let req: SyncRequest = decode(&request.body);
                    return match quartier_server::sync::exchange(&self.db, &self.docs, &device, &req) {
                        Ok(response) => answer(&response),
                        Err(e) => as_http(e),
                    };
                }
                let conn = self.db.lock();
                if path == "/v1/spaces" {
                    let req: CreateSpace = decode(&request.body);
                    return answer(
                        &spaces::create_space(&conn, req.space, device.person).expect("create space"),
                    );
                }
                if path == "/v1/invites/redeem" {
                    let req: RedeemInvite = decode(&request.body);
                    return answer(&spaces::redeem_invite(&conn, &req.code, device.person).expect("redeem"));
                }
                if path == "/v1/invites/redeem-offline" {
                    let req: quartier_protocol::certificates::RedeemOfflineInvite = decode(&request.body);
                    return match spaces::redeem_offline_invite(
                        &conn,
                        self.db.signing_key(),
                        &req,
                        device.person,
                        false,
                    ) {
                        Ok(membership) => answer(&membership),
                        Err(e) => as_http(e),
                    };
                }
                if let Some(space) = path
                    .strip_prefix("/v1/spaces/")
                    .and_then(|rest| rest.strip_suffix("/invites"))
                {
                    let req: CreateInvite = decode(&request.body);
                    let code = Uuid::new_v4().simple().to_string();
                    let space = Uuid::parse_str(space).expect("space id");
                    spaces::create_invite(
                        &conn,
                        space,
                        req.role,
                        req.expires_at_ms,
                        req.max_uses,
                        &code,
                        device.person,
                    )
                    .expect("invite");
                    return answer(&InviteCreated { code });
                }
                panic!("the harness does not serve {:?} {path}", request.method);
            }
        }
    }

    /// The blob endpoints, through the server's own logic (`blobs::service`); `None` for any
    /// other path.
    fn blob_request(&self, device: &DeviceRecord, request: &HttpRequest) -> Option<HttpResponse> {
        let path = request.path.as_str();
        let (db, blobs) = (&self.db, &self.blobs);
        let result = if let Some(space) = path
            .strip_prefix("/v1/spaces/")
            .and_then(|rest| rest.strip_suffix("/blobs"))
        {
            let space = Uuid::parse_str(space).expect("space id");
            let announced: AnnounceBlob = decode(&request.body);
            service::announce(db, blobs, device, space, &announced).map(|state| answer(&state))
        } else {
            let rest = path.strip_prefix("/v1/blobs/")?;
            match rest.split('/').collect::<Vec<_>>().as_slice() {
                [hash, "chunks", index] => {
                    let index = index.parse().expect("chunk index");
                    service::put_chunk(db, blobs, device.person, hash, index, &request.body)
                        .map(|state| answer(&state))
                }
                [hash, "complete"] => {
                    service::complete(db, blobs, device.person, hash).map(|state| answer(&state))
                }
                [hash] => {
                    let range = request.range_from.map(|from| format!("bytes={from}-"));
                    let head_only = request.method == HttpMethod::Head;
                    service::download(
                        db,
                        blobs,
                        device,
                        hash,
                        range.as_deref().map(str::as_bytes),
                        head_only,
                    )
                    .map(|download| {
                        let mut body = Vec::new();
                        if let Some(mut reader) = download.reader {
                            std::io::Read::read_to_end(&mut reader, &mut body).expect("blob bytes");
                        }
                        let (start, end) = download.range.unwrap_or((0, download.row.size));
                        if start > 0 && !head_only {
                            self.resumed_downloads
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        HttpResponse {
                            status: if download.range.is_some() { 206 } else { 200 },
                            content_length: Some(end - start),
                            body,
                            ..Default::default()
                        }
                    })
                }
                _ => return None,
            }
        };
        Some(result.unwrap_or_else(as_http))
    }

    /// Whether the server holds the verified blob `hash`.
    pub fn has_blob(&self, hash: &str) -> bool {
        self.blobs.store.exists(hash).expect("blob store")
    }

    /// Every document of `space` on the server, with its heads.
    pub fn heads(&self, space: SpaceId) -> BTreeMap<String, BTreeSet<String>> {
        let conn = self.db.lock();
        let mut out = BTreeMap::new();
        for (doc, _) in log::docs_after(&conn, space.as_uuid(), "", i64::MAX).expect("docs") {
            let loaded = documents::load(&conn, doc).expect("load");
            let heads = loaded.doc.get_heads().iter().map(|h| h.to_string()).collect();
            out.insert(doc.to_string(), heads);
        }
        out
    }

    /// A coordinator's change of a member's role, through the server's membership logic.
    pub fn set_role(&self, space: SpaceId, person: PersonId, role: Role) {
        // A removed member has no role to change (the server answers "no such member").
        let _ = spaces::set_role(&self.db.lock(), space.as_uuid(), person.as_uuid(), role);
    }

    /// A coordinator removes a member, through the server's membership logic.
    pub fn remove(&self, space: SpaceId, person: PersonId) {
        spaces::remove_member(&self.db.lock(), space.as_uuid(), person.as_uuid()).expect("remove member");
    }

    /// The device the server recorded as a change's signer (its author's), if it holds it.
    pub fn signer_of(&self, hash: &[u8]) -> Option<String> {
        self.db
            .lock()
            .query_row("SELECT device_id FROM log WHERE hash = ?1", [hash], |r| r.get(0))
            .ok()
    }

    /// Registers a device key for a person id it proposes, through the server's account logic.
    pub fn register_proposing(
        &self,
        public_key: &[u8],
        person: Uuid,
    ) -> Result<Uuid, quartier_server::ServerError> {
        accounts::register_as(
            &self.db.lock(),
            public_key,
            None,
            &Uuid::new_v4().to_string(),
            None,
            Some(person),
        )
        .map(|record| record.person)
    }

    /// Revokes a device, through the server's account logic.
    pub fn revoke(&self, device: Uuid) {
        accounts::revoke_device(&self.db.lock(), device).expect("revoke device");
    }

    /// Whether the server holds a change.
    pub fn has_change(&self, hash: &[u8]) -> bool {
        log::document_of_change(&self.db.lock(), hash)
            .expect("document of change")
            .is_some()
    }
}

/// A server error as the HTTP layer answers it (its own `IntoResponse`): status and body.
fn as_http(error: impl axum::response::IntoResponse) -> HttpResponse {
    use futures_util::FutureExt;
    let response = error.into_response();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .now_or_never()
        .expect("an error body is in memory")
        .expect("error body");
    HttpResponse {
        status,
        body: body.to_vec(),
        ..Default::default()
    }
}

/// A write the store refuses itself: its role (as the server last stated it) does not allow
/// it, or the space is gone from it (the person was removed).
fn is_local_refusal(error: &quartier_core::Error) -> bool {
    matches!(
        error,
        quartier_core::Error::NotPermitted { .. } | quartier_core::Error::NotFound { what: "space", .. }
    )
}

fn answer<T: serde::Serialize>(message: &T) -> HttpResponse {
    HttpResponse {
        status: 200,
        body: quartier_protocol::encode(message).expect("encode"),
        ..Default::default()
    }
}

fn refused(status: u16, code: &str) -> HttpResponse {
    HttpResponse {
        status,
        body: quartier_protocol::encode(&ErrorBody {
            code: code.into(),
            message: code.into(),
            protocol_versions: Vec::new(),
            request_id: None,
        })
        .expect("encode"),
        ..Default::default()
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> T {
    quartier_protocol::decode(body, quartier_protocol::MAX_DECODED_BYTES).expect("decode")
}

/// The setup calls of `SyncClient` (register, spaces, invites), carried without a network.
pub struct Loopback(pub Arc<InProcessServer>);

impl HttpTransport for Loopback {
    fn send(&self, request: HttpRequest) -> TransportFuture<'_> {
        let answer = self.0.handle(&request);
        Box::pin(std::future::ready(Ok(answer)))
    }
}

/// What the network does with the message it hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Delivered, and a copy stays in the network.
    Duplicate,
    /// A request is answered `429` with this `Retry-After` (seconds) without reaching the
    /// server's logic (an answer is delivered as usual).
    RateLimit(u8),
    /// A request is answered `503` (an answer is delivered as usual).
    Unavailable,
}

/// One step of a schedule.
#[derive(Clone, Debug)]
pub enum Step {
    /// A device writes: creates the item of a slot, or edits it if it has it, else creates
    /// another item.
    Write { device: usize, slot: usize, word: usize },
    /// A device starts a sync (if none runs).
    Sync { device: usize },
    /// The network hands over one of its messages (picked by index: any order).
    Network { pick: usize, fate: Fate },
    /// A device gives up on its request in flight (a timeout).
    Timeout { device: usize },
    /// Time passes.
    Tick { ms: u16 },
    /// The server changes the role of a device's person in the space, as a coordinator's call
    /// would (through the server's membership logic); the device learns it at its next sync,
    /// and until then writes what its old role allowed.
    SetRole { device: usize, role: Role },
    /// The server removes a device's person from the space.
    Remove { device: usize },
    /// A device writes what the server refuses whatever the role: an item created in another
    /// person's name, its own permission check off (a forged or faulty client).
    Forge { device: usize, word: usize },
    /// A device imports a small recording and puts it on the item of a slot (if it has it).
    Attach { device: usize, slot: usize, seed: u16 },
    /// A device starts a run of its media transfer queue (if none runs): uploads of what it
    /// attached, downloads of what items reference, over the same network as sync.
    Transfer { device: usize },
}

/// Which session a message belongs to: a device runs a sync and a media transfer at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Sync,
    /// A transfer request answered whole (announce, chunk, complete, a size check).
    Transfer,
    /// A download, answered as a stream of pieces (which the network can cut).
    Fetch,
}

enum Message {
    Request {
        device: usize,
        channel: Channel,
        id: RequestId,
        request: HttpRequest,
    },
    Answer {
        device: usize,
        channel: Channel,
        id: RequestId,
        response: HttpResponse,
    },
}

pub struct Device {
    pub store: Store,
    pub person: PersonId,
    session: Option<SyncSession>,
    /// The media transfer run in progress.
    transfer: Option<TransferSession>,
    /// The server's pause after a `429` (the client keeps it across sessions).
    not_before: Option<Instant>,
    /// (doc, change hash) pushed by each request of the running sessions.
    pushed: HashMap<RequestId, Vec<(String, Vec<u8>)>>,
    /// Change hashes whose acknowledgement this device applied.
    acked: HashSet<Vec<u8>>,
    /// Change hashes whose refusal (`rejected`) this device applied.
    refused: HashSet<Vec<u8>>,
    /// Whether the server removed this device's person from the space.
    pub removed: bool,
}

const WORDS: &[&str] = &[
    "hof",
    "kuchen",
    "fahrrad",
    "garten",
    "flohmarkt",
    "nachbar",
    "bäckerei",
    "schule",
];
/// Small pushes, so that an outbox takes several rounds.
const OPTIONS: SessionOptions = SessionOptions {
    page_budget: 16 * 1024,
    push_batch: 2,
    overdue_after: Duration::from_secs(24 * 60 * 60),
};

pub struct World {
    pub server: Arc<InProcessServer>,
    pub devices: Vec<Device>,
    pub space: SpaceId,
    network: Vec<Message>,
    epoch: Instant,
    clock_ms: u64,
    /// Sessions started so far: each one's number, so that request ids never repeat.
    sessions: u64,
    /// The item of each slot, once some device has created it.
    slots: Vec<Option<ItemId>>,
    /// (doc, change hash) of every acknowledgement a device applied.
    pub acknowledged: BTreeSet<(String, Vec<u8>)>,
    /// Changes a device pushed again after it had applied their acknowledgement.
    pub sent_after_ack: Vec<String>,
    /// (device, doc, change hash) of every refusal a device applied.
    pub refused: BTreeSet<(usize, String, Vec<u8>)>,
    /// Changes a device pushed again after it had applied their refusal.
    pub sent_after_refusal: Vec<String>,
    /// (importing device, hash) of every file a device attached.
    pub attached: BTreeSet<(usize, String)>,
    /// What the transfer runs moved, all devices together.
    pub transferred: TransferReport,
    /// Plans transfer runs (its own transport is never used: requests go through the network).
    planner: TransferQueue,
    /// The server's data folder and the devices' stores.
    _dir: TempDir,
}

/// A world after its setup, closed: the folder every world of the process starts as a copy of
/// (registering devices and making a space costs more than a schedule; copying costs little).
struct Template {
    dir: TempDir,
    devices: usize,
    space: SpaceId,
}

/// A temporary folder, in RAM where there is one (`/dev/shm`): every write of a store and of
/// the server is durable, and on a disk those syncs cost more than a whole schedule.
fn scratch_dir() -> TempDir {
    let ram = Path::new("/dev/shm");
    if ram.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(ram) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

fn server_dir(root: &Path) -> std::path::PathBuf {
    root.join("server")
}

fn store_path(root: &Path, device: usize) -> std::path::PathBuf {
    let dir = root.join(format!("device{device}"));
    std::fs::create_dir_all(&dir).expect("device folder");
    dir.join("phone.db")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

impl Template {
    /// Registers the devices through `SyncClient` (carried in-process), makes the space, invites
    /// the others, syncs everyone once, and closes it all.
    fn new(devices: usize) -> Template {
        let dir = scratch_dir();
        let server = Arc::new(InProcessServer::open(&server_dir(dir.path())));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let client = SyncClient::with_transport("sim://server", Arc::new(Loopback(Arc::clone(&server))));
        let mut stores = Vec::new();
        for i in 0..devices {
            let store = Store::open(store_path(dir.path(), i), StoreOptions::default()).expect("store");
            runtime
                .block_on(client.register(&store, Some(&format!("device {i}"))))
                .expect("register");
            stores.push(store);
        }
        let first = &stores[0];
        let person = first.account().expect("account").expect("registered").person;
        let space = first
            .create_space(
                SpaceMeta {
                    name: LocalizedText::single("de", "Nippes"),
                    description: LocalizedText::single("de", "Veedel"),
                    time_zone: "Europe/Berlin".into(),
                    default_language: "de".into(),
                    categories: Default::default(),
                    layers: Default::default(),
                },
                person,
            )
            .expect("space")
            .id;
        runtime
            .block_on(client.create_space(first, space))
            .expect("register space");
        for store in &stores[1..] {
            let code = runtime
                .block_on(client.create_invite(first, space, Role::Coordinator, i64::MAX, 1))
                .expect("invite");
            runtime
                .block_on(client.redeem_invite(store, &code))
                .expect("redeem");
        }
        // The space document reaches the server, then every member.
        for store in &stores {
            runtime
                .block_on(client.sync_now(store, |_| {}))
                .expect("first sync");
        }
        drop(stores);
        drop(client);
        drop(server);
        Template { dir, devices, space }
    }
}

impl World {
    /// A server, and `devices` devices in one space (the first created it, the others joined
    /// as coordinators, who may edit each other's items), each having synced once: a copy of the process's template.
    pub fn new(devices: usize, slots: usize) -> World {
        static TEMPLATE: OnceLock<Template> = OnceLock::new();
        let template = TEMPLATE.get_or_init(|| Template::new(devices));
        assert_eq!(template.devices, devices, "one template per process");
        let dir = scratch_dir();
        copy_tree(template.dir.path(), dir.path());
        World::open(dir, devices, slots, template.space)
    }

    fn open(dir: TempDir, devices: usize, slots: usize, space: SpaceId) -> World {
        let server = Arc::new(InProcessServer::open(&server_dir(dir.path())));
        let client = SyncClient::with_transport("sim://server", Arc::new(Loopback(Arc::clone(&server))));
        let planner = TransferQueue::new(&client).expect("transfer queue");
        let devices = (0..devices)
            .map(|i| {
                let store = Store::open(store_path(dir.path(), i), StoreOptions::default()).expect("store");
                let person = store.account().expect("account").expect("registered").person;
                Device {
                    store,
                    person,
                    session: None,
                    transfer: None,
                    not_before: None,
                    pushed: HashMap::new(),
                    acked: HashSet::new(),
                    refused: HashSet::new(),
                    removed: false,
                }
            })
            .collect();
        World {
            server,
            devices,
            space,
            network: Vec::new(),
            epoch: Instant::now(),
            clock_ms: 0,
            sessions: 0,
            slots: vec![None; slots],
            acknowledged: BTreeSet::new(),
            sent_after_ack: Vec::new(),
            refused: BTreeSet::new(),
            sent_after_refusal: Vec::new(),
            attached: BTreeSet::new(),
            transferred: TransferReport::default(),
            planner,
            _dir: dir,
        }
    }

    fn now(&self) -> Instant {
        self.epoch + Duration::from_millis(self.clock_ms)
    }

    pub fn run(&mut self, step: &Step) {
        match *step {
            Step::Write { device, slot, word } => self.write(device % self.devices.len(), slot, word),
            Step::Sync { device } => self.start_sync(device % self.devices.len()),
            Step::Network { pick, fate } => {
                if !self.network.is_empty() {
                    let message = self.network.remove(pick % self.network.len());
                    self.hand_over(message, fate);
                }
            }
            Step::Timeout { device } => {
                let device = device % self.devices.len();
                if let Some(id) = self.devices[device]
                    .transfer
                    .as_ref()
                    .and_then(TransferSession::in_flight)
                {
                    self.feed_transfer(
                        device,
                        TransferInput::Failed {
                            request: id,
                            error: TransportError("timed out".into()),
                        },
                    );
                }
                let in_flight = self.devices[device]
                    .session
                    .as_ref()
                    .and_then(SyncSession::in_flight);
                if let Some(id) = in_flight {
                    let now = self.now();
                    self.feed(
                        device,
                        SessionEvent::Failed {
                            request: id,
                            error: TransportError("timed out".into()),
                            now,
                        },
                    );
                }
            }
            Step::Tick { ms } => self.clock_ms += u64::from(ms),
            Step::SetRole { device, role } => {
                let d = &self.devices[device % self.devices.len()];
                self.server.set_role(self.space, d.person, role);
            }
            Step::Remove { device } => {
                let count = self.devices.len();
                let d = &mut self.devices[device % count];
                if !d.removed {
                    d.removed = true;
                    self.server.remove(self.space, d.person);
                }
            }
            Step::Forge { device, word } => self.forge(device % self.devices.len(), word),
            Step::Attach { device, slot, seed } => self.attach(device % self.devices.len(), slot, seed),
            Step::Transfer { device } => self.start_transfer(device % self.devices.len()),
        }
    }

    /// A recording of a few kilobytes (a WAV file whose samples follow `seed`, so that two
    /// attachments differ), imported and put on the slot's item next to what it carries.
    fn attach(&mut self, device: usize, slot: usize, seed: u16) {
        let Some(id) = self.slots[slot % self.slots.len()] else {
            return;
        };
        let d = &self.devices[device];
        if d.removed {
            return;
        }
        let Ok(detail) = d.store.item_detail(id, &Viewer::new(d.person, Role::Coordinator)) else {
            return; // not on this device yet
        };
        let imported = d
            .store
            .import_media_bytes(&wav(device, seed), &ImportOptions::default())
            .expect("import a recording");
        let mut media = detail.item.content.media.clone();
        media.push(imported.reference.clone());
        let patch = ItemPatch {
            media: Some(media),
            ..ItemPatch::default()
        };
        match d.store.update_item(id, &patch, d.person) {
            Ok(_) => {
                for file in &imported.stored {
                    self.attached.insert((device, file.hash.clone()));
                }
            }
            Err(e) if is_local_refusal(&e) => {}
            Err(e) => panic!("attach: {e}"),
        }
    }

    fn start_transfer(&mut self, device: usize) {
        if self.devices[device].transfer.is_some() {
            return;
        }
        self.sessions += 1;
        let d = &mut self.devices[device];
        let (plan, deferred) = self.planner.plan(&d.store).expect("plan");
        let (session, effects) = TransferSession::run(&d.store, plan, deferred, false, self.sessions);
        d.transfer = Some(session);
        self.transfer_effects(device, effects);
    }

    fn feed_transfer(&mut self, device: usize, input: TransferInput) {
        let d = &mut self.devices[device];
        let Some(session) = d.transfer.as_mut() else {
            return;
        };
        let effects = session.handle(&d.store, input);
        self.transfer_effects(device, effects);
    }

    fn transfer_effects(&mut self, device: usize, effects: Vec<TransferEffect>) {
        for effect in effects {
            match effect {
                TransferEffect::Send { id, request } => self.network.push(Message::Request {
                    device,
                    channel: Channel::Transfer,
                    id,
                    request,
                }),
                TransferEffect::Fetch { id, request } => self.network.push(Message::Request {
                    device,
                    channel: Channel::Fetch,
                    id,
                    request,
                }),
                TransferEffect::Progress(_) => {}
                TransferEffect::Done(result) => {
                    self.devices[device].transfer = None;
                    // A dropped link ends a run with an error; the next run resumes.
                    if let Ok(outcome) = result {
                        self.note_transferred(&outcome.report);
                    }
                }
            }
        }
    }

    fn note_transferred(&mut self, report: &TransferReport) {
        self.transferred.uploaded.extend(report.uploaded.iter().cloned());
        self.transferred
            .downloaded
            .extend(report.downloaded.iter().cloned());
        self.transferred.failed.extend(report.failed.iter().cloned());
    }

    /// An answer to a download, handed over as the transport would: the status, the body in
    /// pieces, the end; `cut` ends it half-way through the body instead (a dropped link).
    fn deliver_fetch(&mut self, device: usize, id: RequestId, response: HttpResponse, cut: bool) {
        self.feed_transfer(
            device,
            TransferInput::Started {
                request: id,
                status: response.status,
            },
        );
        let body = response.body;
        let half = body.len() / 2;
        let (first, second) = body.split_at(half);
        for piece in [first, second] {
            if !piece.is_empty() {
                self.feed_transfer(
                    device,
                    TransferInput::Piece {
                        request: id,
                        bytes: piece.to_vec(),
                    },
                );
            }
            if cut {
                self.feed_transfer(
                    device,
                    TransferInput::Failed {
                        request: id,
                        error: TransportError("cut off".into()),
                    },
                );
                return;
            }
        }
        self.feed_transfer(device, TransferInput::Ended { request: id });
    }

    /// A post created in the next device's person's name, the permission check off.
    fn forge(&mut self, device: usize, word: usize) {
        let other = self.devices[(device + 1) % self.devices.len()].person;
        let d = &self.devices[device];
        let content = ItemContent::new(
            LocalizedText::single("de", WORDS[word % WORDS.len()]),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        d.store.set_local_permission_check(false);
        let made = d.store.create_item(NewItem::new(self.space, other, content));
        d.store.set_local_permission_check(true);
        match made {
            Ok(_) => {}
            // A device that knows it left the space writes nothing there.
            Err(e) if self.devices[device].removed && is_local_refusal(&e) => {}
            Err(e) => panic!("forged write: {e}"),
        }
    }

    /// A new post of a device's own, synced over a perfect link: whether the server took it
    /// (after refusals, a device's later allowed edits must still go through).
    pub fn write_own_and_sync(&mut self, device: usize) -> (SyncReport, bool) {
        let d = &self.devices[device];
        let content = ItemContent::new(
            LocalizedText::single("de", "später"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        );
        let item = d
            .store
            .create_item(NewItem::new(self.space, d.person, content))
            .expect("an own post");
        let report = self.sync_fully(device);
        let doc = item.id.to_string();
        let held = self.devices[device].store.document_heads(&doc).expect("heads");
        let on_server = self
            .server
            .heads(self.space)
            .get(&doc)
            .map(|h| h.iter().cloned().collect::<Vec<_>>());
        (report, on_server == Some(held))
    }

    fn write(&mut self, device: usize, slot: usize, word: usize) {
        let slot = slot % self.slots.len();
        let text = WORDS[word % WORDS.len()];
        let d = &self.devices[device];
        let has = |id: ItemId| {
            d.store
                .document_ids()
                .expect("ids")
                .iter()
                .any(|(doc, _)| *doc == id.to_string())
        };
        match self.slots[slot] {
            Some(id) if has(id) => {
                let patch = if word.is_multiple_of(2) {
                    ItemPatch {
                        title: Some(LocalizedText::single("de", text)),
                        ..ItemPatch::default()
                    }
                } else {
                    ItemPatch {
                        body: Some(LocalizedText::single("de", format!("{text} {word}"))),
                        ..ItemPatch::default()
                    }
                };
                match d.store.update_item(id, &patch, d.person) {
                    Ok(_) => {}
                    Err(e) if is_local_refusal(&e) => {}
                    Err(e) => panic!("update: {e}"),
                }
            }
            known => {
                let content = ItemContent::new(
                    LocalizedText::single("de", text),
                    ItemDetails::Post(Post {
                        post_type: PostType::News,
                    }),
                );
                match d.store.create_item(NewItem::new(self.space, d.person, content)) {
                    Ok(item) if known.is_none() => self.slots[slot] = Some(item.id),
                    Ok(_) => {}
                    Err(e) if is_local_refusal(&e) => {}
                    Err(e) => panic!("create: {e}"),
                }
            }
        }
    }

    fn start_sync(&mut self, device: usize) {
        if self.devices[device].session.is_some() {
            return;
        }
        let now = self.now();
        self.sessions += 1;
        let d = &mut self.devices[device];
        let (session, effects) = SyncSession::start(&d.store, OPTIONS, d.not_before, now, self.sessions);
        d.session = Some(session);
        self.effects(device, effects);
    }

    fn hand_over(&mut self, message: Message, fate: Fate) {
        self.clock_ms += 5;
        match (message, fate) {
            // A download the network drops is cut off half-way through its body.
            (
                Message::Answer {
                    device,
                    channel: Channel::Fetch,
                    id,
                    response,
                },
                Fate::Drop,
            ) => self.deliver_fetch(device, id, response, true),
            (_, Fate::Drop) => {}
            (
                Message::Request {
                    device,
                    channel,
                    id,
                    request,
                },
                fate,
            ) => {
                let response = match fate {
                    Fate::RateLimit(secs) => HttpResponse {
                        retry_after: Some(secs.to_string()),
                        ..refused(429, "rate_limited")
                    },
                    Fate::Unavailable => refused(503, "internal"),
                    Fate::Duplicate => {
                        self.network.push(Message::Request {
                            device,
                            channel,
                            id,
                            request: request.clone(),
                        });
                        self.server.handle(&request)
                    }
                    Fate::Deliver | Fate::Drop => self.server.handle(&request),
                };
                self.network.push(Message::Answer {
                    device,
                    channel,
                    id,
                    response,
                });
            }
            (
                Message::Answer {
                    device,
                    channel,
                    id,
                    response,
                },
                fate,
            ) => {
                if fate == Fate::Duplicate {
                    self.network.push(Message::Answer {
                        device,
                        channel,
                        id,
                        response: response.clone(),
                    });
                }
                match channel {
                    Channel::Sync => {}
                    Channel::Transfer => {
                        return self.feed_transfer(
                            device,
                            TransferInput::Answered {
                                request: id,
                                response,
                            },
                        );
                    }
                    Channel::Fetch => return self.deliver_fetch(device, id, response, false),
                }
                let now = self.now();
                self.feed(
                    device,
                    SessionEvent::Answered {
                        request: id,
                        response,
                        now,
                    },
                );
            }
        }
    }

    /// Feeds an event to a device's session, noting the acknowledgements it applies.
    fn feed(&mut self, device: usize, event: SessionEvent) {
        let d = &mut self.devices[device];
        let Some(session) = d.session.as_mut() else {
            return;
        };
        let current = session.in_flight();
        let (id, acks) = match &event {
            SessionEvent::Answered {
                request, response, ..
            } if response.is_success() => {
                let acks = quartier_protocol::decode::<SyncResponse>(
                    &response.body,
                    quartier_protocol::MAX_DECODED_BYTES,
                )
                .map(|r| r.acks)
                .unwrap_or_default();
                (*request, acks)
            }
            SessionEvent::Answered { request, .. } | SessionEvent::Failed { request, .. } => {
                (*request, Vec::new())
            }
        };
        let effects = session.handle(&d.store, event);
        let failed = effects.iter().any(|e| matches!(e, SessionEffect::Done(Err(_))));
        if current == Some(id) && !failed {
            let pushed = d.pushed.remove(&id).unwrap_or_default();
            for ack in acks {
                let Some(change) = pushed.get(ack.index as usize) else {
                    continue;
                };
                match ack.outcome {
                    AckOutcome::Stored | AckOutcome::Duplicate => {
                        d.acked.insert(change.1.clone());
                        self.acknowledged.insert(change.clone());
                    }
                    AckOutcome::Rejected { .. } => {
                        d.refused.insert(change.1.clone());
                        self.refused.insert((device, change.0.clone(), change.1.clone()));
                    }
                    AckOutcome::Deferred { .. } | AckOutcome::Unknown => {}
                }
            }
        }
        self.effects(device, effects);
    }

    fn effects(&mut self, device: usize, effects: Vec<SessionEffect>) {
        for effect in effects {
            let d = &mut self.devices[device];
            match effect {
                SessionEffect::Send { id, request } => {
                    if request.path == "/v1/sync" {
                        let sync: SyncRequest = decode(&request.body);
                        let mut pushed = Vec::new();
                        for record in &sync.push {
                            if let Record::Change { doc, bytes, .. } = record {
                                let change =
                                    quartier_core::document::guarded::decode(bytes.clone()).expect("change");
                                let hash = change.hash().as_ref().to_vec();
                                if d.acked.contains(&hash) {
                                    self.sent_after_ack.push(change.hash().to_string());
                                }
                                if d.refused.contains(&hash) {
                                    self.sent_after_refusal.push(change.hash().to_string());
                                }
                                pushed.push((doc.to_string(), hash));
                            }
                        }
                        d.pushed.insert(id, pushed);
                    }
                    self.network.push(Message::Request {
                        device,
                        channel: Channel::Sync,
                        id,
                        request,
                    });
                }
                SessionEffect::HoldRequestsUntil(until) => d.not_before = Some(until),
                SessionEffect::Progress(_) => {}
                SessionEffect::Done(_) => {
                    d.session = None;
                    d.pushed.clear();
                }
            }
        }
    }

    /// Ends the schedule: the network hands over what it holds, sessions still waiting time
    /// out, the clock passes every `Retry-After`, then the devices sync over a perfect link in
    /// turn until every device has synced since the last sync that pushed something (a whole
    /// sync leaves its device holding what the server holds), and one more sync must move
    /// nothing at all. Returns the report of that last sync (a schedule's check looks at it).
    pub fn settle(&mut self) -> SyncReport {
        while !self.network.is_empty() {
            let message = self.network.remove(0);
            self.hand_over(message, Fate::Deliver);
        }
        for device in 0..self.devices.len() {
            self.run(&Step::Timeout { device });
        }
        self.clock_ms += 3_600_000;
        let devices = self.devices.len();
        // Devices holding what the server holds, counted since the last push.
        let mut current = 0;
        for turn in 0..8 * devices {
            if current == devices {
                return self.sync_fully(turn % devices);
            }
            let report = self.sync_fully(turn % devices);
            current = if report.pushed > 0 { 1 } else { current + 1 };
        }
        panic!("{} perfect syncs did not settle", 8 * devices);
    }

    /// Ends a schedule's media: the runs in flight time out, then every device runs its
    /// transfer queue over a perfect link until a whole round of runs moves nothing (uploads
    /// first reach the server, then the others' downloads find them). Call after
    /// [`World::settle`], which brings every reference to every device. Returns the reports of
    /// every run over the perfect link (none may have refused a file).
    pub fn settle_media(&mut self) -> Vec<TransferReport> {
        for device in 0..self.devices.len() {
            self.run(&Step::Timeout { device });
        }
        let mut all = Vec::new();
        for _ in 0..4 {
            let reports: Vec<TransferReport> =
                (0..self.devices.len()).map(|d| self.transfer_fully(d)).collect();
            let quiet = reports
                .iter()
                .all(|r| r.uploaded.is_empty() && r.downloaded.is_empty());
            all.extend(reports);
            if quiet {
                return all;
            }
        }
        panic!("four rounds of perfect transfer runs did not settle");
    }

    /// Messages the network holds.
    pub fn in_network(&self) -> usize {
        self.network.len()
    }

    /// The files a device's next transfer run would move (the hashes).
    pub fn waiting_transfers(&self, device: usize) -> Vec<String> {
        let (plan, _) = self.planner.plan(&self.devices[device].store).expect("plan");
        plan.into_iter().map(|t| t.media.hash).collect()
    }

    /// One whole transfer run over a perfect link.
    fn transfer_fully(&mut self, device: usize) -> TransferReport {
        self.sessions += 1;
        let d = &mut self.devices[device];
        let (plan, deferred) = self.planner.plan(&d.store).expect("plan");
        let (session, mut effects) = TransferSession::run(&d.store, plan, deferred, false, self.sessions);
        d.transfer = Some(session);
        loop {
            let mut next = None;
            for effect in effects {
                match effect {
                    TransferEffect::Send { id, request } => next = Some((id, request, false)),
                    TransferEffect::Fetch { id, request } => next = Some((id, request, true)),
                    TransferEffect::Progress(_) => {}
                    TransferEffect::Done(result) => {
                        self.devices[device].transfer = None;
                        let report = result
                            .expect("a transfer run over a perfect link succeeds")
                            .report;
                        self.note_transferred(&report);
                        return report;
                    }
                }
            }
            let (id, request, streamed) = next.expect("the run sent or finished");
            let response = self.server.handle(&request);
            let d = &mut self.devices[device];
            let session = d.transfer.as_mut().expect("transfer");
            effects = if streamed {
                let mut effects = session.handle(
                    &d.store,
                    TransferInput::Started {
                        request: id,
                        status: response.status,
                    },
                );
                if !response.body.is_empty() {
                    effects.extend(session.handle(
                        &d.store,
                        TransferInput::Piece {
                            request: id,
                            bytes: response.body,
                        },
                    ));
                }
                effects.extend(session.handle(&d.store, TransferInput::Ended { request: id }));
                effects
            } else {
                session.handle(
                    &d.store,
                    TransferInput::Answered {
                        request: id,
                        response,
                    },
                )
            };
        }
    }

    /// One whole sync over a perfect link.
    fn sync_fully(&mut self, device: usize) -> SyncReport {
        let now = self.now();
        self.sessions += 1;
        let d = &mut self.devices[device];
        let (session, mut effects) = SyncSession::start(&d.store, OPTIONS, d.not_before, now, self.sessions);
        d.session = Some(session);
        loop {
            let mut send = None;
            for effect in effects {
                match effect {
                    SessionEffect::Send { id, request } => send = Some((id, request)),
                    SessionEffect::Done(result) => {
                        self.devices[device].session = None;
                        return result.expect("a sync over a perfect link succeeds");
                    }
                    SessionEffect::HoldRequestsUntil(_) | SessionEffect::Progress(_) => {}
                }
            }
            let (id, request) = send.expect("the session sent or finished");
            self.clock_ms += 5;
            let response = self.server.handle(&request);
            let now = self.now();
            let d = &mut self.devices[device];
            let session = d.session.as_mut().expect("session");
            effects = session.handle(
                &d.store,
                SessionEvent::Answered {
                    request: id,
                    response,
                    now,
                },
            );
        }
    }

    /// What a device holds: every document of the space with its heads, and the hashes of every
    /// change (one pass over its documents, each loaded once: the checks ask about many
    /// changes, and this runs after every schedule).
    pub fn device_holding(&self, device: usize) -> Holding {
        let store = &self.devices[device].store;
        let mut holding = Holding::default();
        for (doc, _) in store.document_ids().expect("ids") {
            let mut hashes = Vec::new();
            let mut depended_on = HashSet::new();
            for change in store.document_changes(&doc).expect("changes") {
                let change = quartier_core::document::guarded::decode(change.bytes).expect("change");
                depended_on.extend(change.deps().iter().copied());
                hashes.push(change.hash());
            }
            // The heads: the changes no other change depends on.
            let heads = hashes
                .iter()
                .filter(|h| !depended_on.contains(*h))
                .map(|h| h.to_string())
                .collect();
            holding.heads.insert(doc, heads);
            holding.changes.extend(hashes.iter().map(|h| h.as_ref().to_vec()));
        }
        holding
    }
}

/// What a device holds ([`World::device_holding`]).
#[derive(Default)]
pub struct Holding {
    pub heads: BTreeMap<String, BTreeSet<String>>,
    pub changes: HashSet<Vec<u8>>,
}

/// A WAV recording whose samples depend on the device and `seed` (the project's test audio,
/// `quartier_bench::audio`): mostly a few kilobytes, one in eight more than one upload chunk.
fn wav(device: usize, seed: u16) -> Vec<u8> {
    let size = if seed.is_multiple_of(8) {
        quartier_protocol::blobs::BLOB_CHUNK_BYTES as usize + 64 * 1024
    } else {
        2044
    };
    quartier_bench::audio::wav_bytes(size, |data| {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = ((i as u32)
                .wrapping_mul(u32::from(seed) + 7)
                .wrapping_add(device as u32 * 31)
                % 251) as u8;
        }
    })
}
