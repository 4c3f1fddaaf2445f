//! End-to-end fixtures: a real `quartier-server` process on loopback, and devices (stores in
//! temporary folders) that register with it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quartier_core::model::*;
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
use tempfile::TempDir;

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_quartier-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env("QUARTIER_LOG", "warn")
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
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        Server { child, url, data }
    }

    /// Kills the process (SIGKILL) and returns its data folder.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().expect("temp dir"));
        data
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
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).expect("open store");
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
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let code = coordinator
        .client
        .create_invite(&coordinator.store, space, role, expires, 1)
        .await
        .expect("invite");
    let device = Device::register(url, name).await;
    device
        .client
        .redeem_invite(&device.store, &code)
        .await
        .expect("redeem");
    device
}

/// Feed titles as `viewer` sees them, sorted.
pub fn titles(store: &Store, space: SpaceId, viewer: Viewer) -> Vec<String> {
    let mut q = quartier_core::query::FeedQuery::new(space, viewer);
    q.limit = 1000;
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
