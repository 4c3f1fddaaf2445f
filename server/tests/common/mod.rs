//! End-to-end fixtures: a real `quartier-server` process on loopback, and devices (stores in
//! temporary folders) that register with it.
#![allow(dead_code)]

pub mod proxy;
pub mod scan;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quartier_core::model::*;
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
use tempfile::TempDir;

/// Settings of test servers that the defaults of a fresh server would get in the way of: spaces
/// by any device (not only approved ones), no rate limits.
pub const TEST_SETTINGS: &[(&str, &str)] = &[
    ("QUARTIER_SPACE_CREATION", "anyone"),
    ("QUARTIER_RATE_PER_ADDRESS_PER_MINUTE", "0"),
    ("QUARTIER_RATE_PER_DEVICE_PER_MINUTE", "0"),
    ("QUARTIER_REGISTRATIONS_PER_HOUR", "0"),
    ("QUARTIER_REDEMPTIONS_PER_HOUR", "0"),
];

/// The data folder of every server started here, by URL: fixtures that act as the operator
/// (`quartier-server admin`) find it from a device's server URL.
static DATA_FOLDERS: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Runs `quartier-server admin --data <data> <args>`, as the operator would.
pub fn admin(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .env("QUARTIER_LOG", "warn")
        .output()
        .expect("run admin")
}

/// Makes `person` an organisation admin of the server at `url` (started by [`Server`]), who may
/// then appoint caseworkers.
pub fn grant_org_admin(url: &str, person: PersonId) {
    let data = DATA_FOLDERS
        .lock()
        .expect("data folders")
        .as_ref()
        .and_then(|folders| folders.get(url).cloned())
        .expect("a server started by these fixtures");
    let out = admin(&data, &["grant-org-admin", &person.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: TempDir,
}

impl Server {
    pub fn start() -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        Self::start_in(data)
    }

    /// Starts on a fresh port with an existing data folder (for restarts).
    pub fn start_in(data: TempDir) -> Server {
        Self::start_with(data, &[])
    }

    /// Starts with extra environment variables (settings such as `QUARTIER_SPACE_QUOTA_BYTES`).
    /// Tests run with every device allowed to register spaces and without rate limits
    /// ([`TEST_SETTINGS`]); `env` comes after them, so a test may set its own.
    pub fn start_with(data: TempDir, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quartier-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env("QUARTIER_LOG", "warn")
            .envs(TEST_SETTINGS.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quartier-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line.trim().rsplit(' ').next().expect("url").to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        DATA_FOLDERS
            .lock()
            .expect("data folders")
            .get_or_insert_with(HashMap::new)
            .insert(url.clone(), data.path().to_path_buf());
        Server { child, url, data }
    }

    /// Kills the process (SIGKILL) and returns its data folder.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.data, tempfile::tempdir().expect("temp dir"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A phone: a store and a client of the server.
pub struct Device {
    pub dir: TempDir,
    pub store: Store,
    pub client: SyncClient,
    pub person: PersonId,
}

impl Device {
    pub async fn register(url: &str, name: &str) -> Device {
        Device::register_with(url, name, StoreOptions::default()).await
    }

    /// A phone whose store is encrypted at rest with `key`.
    pub async fn register_encrypted(url: &str, name: &str, key: quartier_core::StoreKey) -> Device {
        let options = StoreOptions {
            store_key: Some(key),
            ..StoreOptions::default()
        };
        Device::register_with(url, name, options).await
    }

    pub async fn register_with(url: &str, name: &str, options: StoreOptions) -> Device {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("phone.db"), options).expect("open store");
        let client = SyncClient::new(url).expect("client");
        let account = client.register(&store, Some(name)).await.expect("register");
        Device {
            dir,
            store,
            client,
            person: account.person,
        }
    }

    pub fn viewer(&self, role: Role) -> Viewer {
        Viewer::new(self.person, role)
    }

    pub async fn sync(&self) -> quartier_core::sync::SyncReport {
        self.client.sync_now(&self.store, |_| {}).await.expect("sync")
    }

    /// A one-use invite to `space` for `role`, valid for an hour (this device must coordinate).
    /// For a caseworker, this device's person is first made an organisation admin (only those
    /// appoint caseworkers), as the organisation's operator would.
    pub async fn invite(&self, space: SpaceId, role: Role) -> String {
        if role == Role::Caseworker {
            grant_org_admin(self.client.base_url(), self.person);
        }
        let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
        self.client
            .create_invite(&self.store, space, role, expires, 1)
            .await
            .expect("invite")
    }

    /// Sets the German title of `item`, in this device's person's name.
    pub fn retitle(&self, item: ItemId, title: &str) {
        self.store
            .update_item(
                item,
                &ItemPatch {
                    title: Some(LocalizedText::single("de", title)),
                    ..Default::default()
                },
                self.person,
            )
            .expect("edit title");
    }

    pub fn post(&self, space: SpaceId, title: &str, audience: Audience) -> Item {
        let content = ItemContent {
            body: LocalizedText::single("de", format!("{title} — Text")),
            audience,
            ..ItemContent::new(
                LocalizedText::single("de", title),
                ItemDetails::Post(Post {
                    post_type: PostType::News,
                }),
            )
        };
        self.store
            .create_item(NewItem::new(space, self.person, content))
            .expect("create post")
    }
}

pub fn space_meta(name: &str) -> SpaceMeta {
    SpaceMeta {
        name: LocalizedText::single("de", name),
        description: LocalizedText::single("de", "Veedel"),
        time_zone: "Europe/Berlin".into(),
        default_language: "de".into(),
        categories: Default::default(),
        layers: Default::default(),
    }
}

/// A coordinator's device with a registered space, and an invite code for `role`.
pub async fn space_with_coordinator(url: &str) -> (Device, SpaceId) {
    let coordinator = Device::register(url, "Koordination").await;
    let space = coordinator
        .store
        .create_space(space_meta("Nippes"), coordinator.person)
        .expect("space")
        .id;
    coordinator
        .client
        .create_space(&coordinator.store, space)
        .await
        .expect("register space");
    (coordinator, space)
}

pub async fn join(url: &str, coordinator: &Device, space: SpaceId, role: Role, name: &str) -> Device {
    let code = coordinator.invite(space, role).await;
    let device = Device::register(url, name).await;
    device
        .client
        .redeem_invite(&device.store, &code)
        .await
        .expect("redeem");
    device
}

/// Feed titles as `viewer` sees them, sorted.
/// Syncs each phone once, in the order given.
pub async fn sync_each(devices: &[&Device]) {
    for device in devices {
        device.sync().await;
    }
}

/// Asserts that a pending step (a report, a decision, a help step) came back refused with
/// `code` (`not_allowed_now`, `blocked`, …).
#[track_caller]
pub fn assert_refused(refused: &Option<String>, code: &str) {
    assert!(
        refused.as_deref().is_some_and(|r| r.starts_with(code)),
        "expected a refusal `{code}`, got {refused:?}"
    );
}

pub fn titles(store: &Store, space: SpaceId, viewer: Viewer) -> Vec<String> {
    let mut q = quartier_core::query::FeedQuery::new(space, viewer);
    q.limit = 1000.into();
    let mut t: Vec<String> = store
        .feed(&q)
        .expect("feed")
        .items
        .iter()
        .map(|i| i.content.title.get("de").unwrap_or("").to_owned())
        .collect();
    t.sort();
    t
}

pub fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

// ---- Raw protocol access: hand-made requests and devices that hold their own key and token
// (permissions.rs, malformed.rs). ----

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey};
use quartier_core::IncomingChange;
use quartier_protocol::{
    DeviceRegistered, DocKind, ErrorBody, Membership, Record, RedeemInvite, RegisterDevice,
    RegistrationChallenge, SpaceCursor, SyncRequest, SyncResponse, CONTENT_TYPE, MAX_DECODED_BYTES,
    PROTOCOL_VERSION,
};
use uuid::Uuid;

/// One HTTP answer, as received.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The body as a protocol message (panics with the status if it is not one).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        quartier_protocol::decode(&self.body, MAX_DECODED_BYTES).unwrap_or_else(|e| {
            panic!(
                "HTTP {}: the body is not the expected message ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }

    /// The body as an [`ErrorBody`], if it is one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        quartier_protocol::decode(&self.body, 64 * 1024).ok()
    }
}

/// A plain HTTP client for hand-made requests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Sends `body` as is (any method), with `Authorization` set to `auth` verbatim when given.
pub async fn send_raw(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> RawAnswer {
    let mut request = client
        .request(method, url)
        .header("content-type", CONTENT_TYPE)
        .body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("the answer arrives").to_vec();
    RawAnswer { status, body }
}

/// POSTs raw bytes to `base + path`, with a bearer token when given.
pub async fn post_raw(base: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> RawAnswer {
    let auth = token.map(|t| format!("Bearer {t}"));
    send_raw(
        &http(),
        reqwest::Method::POST,
        &format!("{base}{path}"),
        auth.as_deref(),
        body,
    )
    .await
}

/// POSTs a protocol message.
pub async fn post_msg<T: serde::Serialize>(
    base: &str,
    path: &str,
    token: Option<&str>,
    msg: &T,
) -> RawAnswer {
    post_raw(base, path, token, quartier_protocol::encode(msg).expect("encode")).await
}

/// A device made by hand: its own Ed25519 key, device id, person id and bearer token, so tests
/// can sign (or mis-sign) changes and send requests no well-behaved store would.
pub struct RawDevice {
    pub key: SigningKey,
    pub device: Uuid,
    pub person: PersonId,
    pub token: String,
}

impl RawDevice {
    pub async fn register(url: &str, name: &str) -> RawDevice {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("randomness");
        let key = SigningKey::from_bytes(&secret);
        let answer = post_msg(
            url,
            "/v1/devices",
            None,
            &signed_registration(url, &key, Some(name)).await,
        )
        .await;
        assert_eq!(answer.status, 200, "register {name}: {:?}", answer.error_body());
        let registered: DeviceRegistered = answer.decode();
        RawDevice {
            key,
            device: registered.device,
            person: PersonId::from(registered.person),
            token: registered.token,
        }
    }

    /// Redeems an invite code.
    pub async fn redeem(&self, url: &str, code: &str) -> Membership {
        let answer = post_msg(
            url,
            "/v1/invites/redeem",
            Some(&self.token),
            &RedeemInvite { code: code.into() },
        )
        .await;
        assert_eq!(answer.status, 200, "redeem: {:?}", answer.error_body());
        answer.decode()
    }

    /// Signs one change of `doc` with this device's key.
    pub fn sign(&self, doc: Uuid, bytes: &[u8]) -> Vec<u8> {
        sign_with(&self.key, &doc.to_string(), bytes)
    }

    /// A change record signed by this device.
    pub fn record(&self, space: SpaceId, doc: Uuid, kind: DocKind, bytes: Vec<u8>) -> Record {
        Record::Change {
            space: space.as_uuid(),
            doc,
            kind,
            signature: self.sign(doc, &bytes),
            bytes,
            device: self.device,
        }
    }

    /// One `POST /v1/sync` pushing `push`, with `cursors`; panics unless it is answered 200.
    /// Sent as a device of before creation records: it must still get every document.
    pub async fn sync(&self, url: &str, cursors: Vec<SpaceCursor>, push: Vec<Record>) -> SyncResponse {
        self.sync_accepting(url, cursors, push, Vec::new()).await
    }

    /// As [`RawDevice::sync`], listing the record forms `accepts` in the request.
    pub async fn sync_accepting(
        &self,
        url: &str,
        cursors: Vec<SpaceCursor>,
        push: Vec<Record>,
        accepts: Vec<String>,
    ) -> SyncResponse {
        let answer = post_msg(
            url,
            "/v1/sync",
            Some(&self.token),
            &SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursors,
                push,
                budget_bytes: 8 * 1024 * 1024,
                accepts,
                counselling: None,
                credentials: None,
                moderation: None,
                help: None,
            },
        )
        .await;
        assert_eq!(answer.status, 200, "sync: {:?}", answer.error_body());
        answer.decode()
    }

    /// One `POST /v1/sync` with only a counselling part (and `push`): what a hand-made client
    /// may ask of counselling; panics unless it is answered 200.
    pub async fn sync_counselling(
        &self,
        url: &str,
        counselling: quartier_protocol::counselling::CounsellingRequest,
        push: Vec<Record>,
    ) -> SyncResponse {
        let answer = post_msg(
            url,
            "/v1/sync",
            Some(&self.token),
            &SyncRequest {
                protocol: PROTOCOL_VERSION,
                cursors: vec![],
                push,
                budget_bytes: 8 * 1024 * 1024,
                accepts: vec![],
                counselling: Some(counselling),
                credentials: None,
                moderation: None,
                help: None,
            },
        )
        .await;
        assert_eq!(answer.status, 200, "sync: {:?}", answer.error_body());
        answer.decode()
    }

    /// Pushes records without asking for any page; returns the acks' outcomes.
    pub async fn push(&self, url: &str, push: Vec<Record>) -> Vec<quartier_protocol::AckOutcome> {
        let response = self.sync(url, vec![], push).await;
        response.acks.into_iter().map(|a| a.outcome).collect()
    }

    /// Every document of `space` this device may see now, read from scratch (no cursor) and
    /// paged to the end: doc id → kind.
    pub async fn visible_docs(&self, url: &str, space: SpaceId) -> BTreeMap<Uuid, DocKind> {
        let mut docs = BTreeMap::new();
        let mut after = None;
        loop {
            let response = self
                .sync(
                    url,
                    vec![SpaceCursor {
                        space: space.as_uuid(),
                        after: after.clone(),
                        members_after: None,
                        signatures_after: None,
                    }],
                    vec![],
                )
                .await;
            let Some(page) = response.pages.into_iter().next() else {
                return docs;
            };
            for record in page.records {
                match record {
                    Record::Change { doc, kind, .. }
                    | Record::Snapshot { doc, kind, .. }
                    | Record::Created { doc, kind, .. } => {
                        docs.insert(doc, kind);
                    }
                    Record::Sealed { .. } | Record::ToDevice { .. } | Record::Unknown => {}
                }
            }
            if !page.more {
                return docs;
            }
            after = Some(page.next);
        }
    }
}

/// A fresh registration challenge of the server.
pub async fn challenge(url: &str) -> Vec<u8> {
    let answer = post_raw(url, "/v1/devices/challenge", None, Vec::new()).await;
    assert_eq!(answer.status, 200, "challenge: {:?}", answer.error_body());
    answer.decode::<RegistrationChallenge>().challenge
}

/// A registration of `key`, signed over a fresh challenge of the server.
pub async fn signed_registration(url: &str, key: &SigningKey, name: Option<&str>) -> RegisterDevice {
    let challenge = challenge(url).await;
    let public_key = key.verifying_key().to_bytes().to_vec();
    let signature = key
        .sign(&quartier_protocol::signing::registration_signing_payload(
            &challenge,
            &public_key,
        ))
        .to_bytes()
        .to_vec();
    RegisterDevice {
        public_key,
        display_name: name.map(str::to_owned),
        challenge: Some(challenge),
        signature: Some(signature),
        link_code: None,
        person: None,
    }
}

/// Signs a change (its Automerge hash) for `doc_id` with `key`, as a device does.
pub fn sign_with(key: &SigningKey, doc_id: &str, bytes: &[u8]) -> Vec<u8> {
    let hash = automerge::Change::from_bytes(bytes.to_vec())
        .expect("an Automerge change")
        .hash();
    key.sign(&quartier_protocol::signing::change_signing_payload(
        doc_id,
        hash.as_ref(),
    ))
    .to_bytes()
    .to_vec()
}

/// A scratch store nobody syncs: a workbench to author changes that are then pushed by hand.
pub fn workbench() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("bench.db"), StoreOptions::default()).expect("open store");
    (dir, store)
}

/// Copies a document from one store to another (device to device, out of band).
pub fn copy_doc(from: &Store, to: &Store, doc_id: &str) {
    let changes = from.document_changes(doc_id).expect("changes to copy");
    to.apply_changes(&changes).expect("apply copied changes");
}

/// Hashes of a document's changes in a store (empty if the store does not have it).
pub fn change_hashes(store: &Store, doc_id: &str) -> BTreeSet<automerge::ChangeHash> {
    store
        .document_changes(doc_id)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            automerge::Change::from_bytes(c.bytes.clone())
                .expect("change")
                .hash()
        })
        .collect()
}

/// Runs `f` on `store` and returns the bytes of the one change it made to `doc_id`.
pub fn new_change<T>(store: &Store, doc_id: &str, f: impl FnOnce(&Store) -> T) -> (T, Vec<u8>) {
    let before = change_hashes(store, doc_id);
    let value = f(store);
    let fresh: Vec<IncomingChange> = store
        .document_changes(doc_id)
        .expect("changes")
        .into_iter()
        .filter(|c| {
            !before.contains(
                &automerge::Change::from_bytes(c.bytes.clone())
                    .expect("change")
                    .hash(),
            )
        })
        .collect();
    assert_eq!(fresh.len(), 1, "expected exactly one new change of {doc_id}");
    (value, fresh.into_iter().next().expect("one").bytes)
}

/// The document as Automerge, from a store's changes.
pub fn automerge_doc(store: &Store, doc_id: &str) -> automerge::Automerge {
    let mut doc = automerge::Automerge::new();
    let changes = store
        .document_changes(doc_id)
        .expect("document")
        .into_iter()
        .map(|c| automerge::Change::from_bytes(c.bytes).expect("change"));
    doc.apply_changes(changes).expect("apply");
    doc
}

/// An item as a store holds it (any status, deleted included), read from its document.
pub fn stored_item(store: &Store, id: ItemId) -> Option<Item> {
    let doc_id = id.to_string();
    store.document_changes(&doc_id).ok()?;
    quartier_core::document::item_from_doc(&automerge_doc(store, &doc_id), &doc_id).ok()
}

/// Counts of `quartier-server admin stats` on a data folder (persons, devices, spaces, members,
/// docs, log); readable while the server runs (SQLite WAL).
pub fn admin_stats(data: &std::path::Path) -> BTreeMap<String, i64> {
    let out = Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(["admin", "--data"])
        .arg(data)
        .arg("stats")
        .env("QUARTIER_LOG", "warn")
        .output()
        .expect("run admin stats");
    assert!(
        out.status.success(),
        "admin stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The seed of a randomised test: `QUARTIER_FAULT_SEED` to replay one, else the clock. Printed,
/// so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("QUARTIER_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("{test}: seed {seed} (replay with QUARTIER_FAULT_SEED={seed})");
    seed
}
