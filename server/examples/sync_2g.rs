//! The design brief's 2G figure, through a user-space fault proxy on loopback (this kernel has
//! no `netem`): toxiproxy with 150 ± 30 ms of latency and 31 KB/s each way, and cuts.
//!
//! Measures a new member's join of a space of N items (wall time, pages, bytes), then the same
//! join with cuts (a `limit_data` toxic added at a random moment, closing the connection a
//! random number of bytes later), and what the cuts wasted: bytes on the link beyond those of
//! the clean join, per cut.
//!
//! Installs toxiproxy with `go install` (the recipe in `docs/benchmarks.md`, section "2G link")
//! and skips with a message where Go is missing. Not a CI test: a run takes a few minutes.
//!
//! `cargo build -p quartier-server --examples && target/debug/examples/sync_2g`
//! Options: `--items N` (default 1000), `--cuts N` (default 4), `--seed N`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quartier_bench::{Generator, Mix};
use quartier_core::model::{ItemKind, Role};
use quartier_core::sync::{SyncClient, SyncReport};
use quartier_core::{Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod support;

use support::{arg, scratch_dir as scratch, start_server, BoxError};

const TOXIPROXY: &str = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0";

/// toxiproxy's binary, installed with `go install` when it is not there yet; `None` without Go.
fn toxiproxy_binary() -> Result<Option<PathBuf>, BoxError> {
    let gopath = match Command::new("go").args(["env", "GOPATH"]).output() {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout)?.trim().to_owned(),
        _ => return Ok(None),
    };
    let binary = PathBuf::from(gopath).join("bin").join("server");
    if !binary.is_file() {
        println!("installing toxiproxy: go install {TOXIPROXY} (about a minute)");
        let status = Command::new("go").args(["install", TOXIPROXY]).status()?;
        if !status.success() {
            return Err(format!("go install {TOXIPROXY} failed ({status})").into());
        }
    }
    Ok(Some(binary))
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A toxiproxy server, killed when dropped, and its HTTP API.
struct Toxiproxy {
    child: Child,
    api: String,
    http: reqwest::Client,
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Toxiproxy {
    async fn start(binary: &std::path::Path) -> Result<Self, BoxError> {
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["-host", "127.0.0.1", "-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let proxy = Self {
            child,
            api: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if proxy
                .http
                .get(format!("{}/version", proxy.api))
                .send()
                .await
                .is_ok()
            {
                return Ok(proxy);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("toxiproxy did not answer within 10 s".into())
    }

    async fn post(&self, path: &str, body: String) -> Result<(), BoxError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api))
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("toxiproxy {path}: {}", response.text().await?).into());
        }
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<(), BoxError> {
        self.http.delete(format!("{}{path}", self.api)).send().await?;
        Ok(())
    }

    /// A proxy to `upstream` with the 2G profile; returns its address.
    async fn link_2g(&self, upstream: SocketAddr) -> Result<SocketAddr, BoxError> {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        self.post(
            "/proxies",
            format!(r#"{{"name":"q","listen":"{listen}","upstream":"{upstream}"}}"#),
        )
        .await?;
        for stream in ["downstream", "upstream"] {
            self.post("/proxies/q/toxics", format!(r#"{{"name":"lat_{stream}","type":"latency","stream":"{stream}","attributes":{{"latency":150,"jitter":30}}}}"#)).await?;
            self.post("/proxies/q/toxics", format!(r#"{{"name":"bw_{stream}","type":"bandwidth","stream":"{stream}","attributes":{{"rate":31}}}}"#)).await?;
        }
        Ok(listen)
    }

    /// Closes connections after `bytes` more bytes towards the device.
    async fn cut_after(&self, bytes: u64) -> Result<(), BoxError> {
        self.post("/proxies/q/toxics", format!(r#"{{"name":"cut","type":"limit_data","stream":"downstream","attributes":{{"bytes":{bytes}}}}}"#)).await
    }

    async fn heal(&self) -> Result<(), BoxError> {
        self.delete("/proxies/q/toxics/cut").await
    }
}

/// A relay in front of the proxy counting every byte towards the device (headers included,
/// and what a cut connection carried before it broke).
struct Counter {
    url: String,
    down: Arc<AtomicU64>,
}

impl Counter {
    /// Plain threads: the relay must not depend on the runtime it measures.
    fn start(upstream: SocketAddr) -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let down = Arc::new(AtomicU64::new(0));
        let total = down.clone();
        std::thread::spawn(move || {
            for device in listener.incoming() {
                let (Ok(device), Ok(proxy)) = (device, TcpStream::connect(upstream)) else {
                    continue;
                };
                let (Ok(mut device_in), Ok(mut proxy_out)) = (device.try_clone(), proxy.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut device_in, &mut proxy_out);
                    let _ = proxy_out.shutdown(Shutdown::Both);
                });
                let total = total.clone();
                std::thread::spawn(move || {
                    let (mut device, mut proxy) = (device, proxy);
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = proxy.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        total.fetch_add(n as u64, Ordering::Relaxed);
                        if device.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = device.shutdown(Shutdown::Both);
                    let _ = proxy.shutdown(Shutdown::Both);
                });
            }
        });
        Ok(Self { url, down })
    }

    fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }
}

async fn device(
    url: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<(Store, SyncClient, quartier_core::model::PersonId), BoxError> {
    let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
    // The client's defaults: what a phone gets.
    let client = SyncClient::new(url)?;
    let account = client.register(&store, Some(name)).await?;
    Ok((store, client, account.person))
}

/// A new member (registered and invited on the direct link) whose sync goes through `url`.
async fn member(
    server: &str,
    url: &str,
    dir: &std::path::Path,
    name: &str,
    coordinator: (&Store, &SyncClient),
    space: quartier_core::model::SpaceId,
) -> Result<(Store, SyncClient), BoxError> {
    let (store, direct, _) = device(server, dir, name).await?;
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let code = coordinator
        .1
        .create_invite(coordinator.0, space, Role::Resident, expires, 1)
        .await?;
    direct.redeem_invite(&store, &code).await?;
    Ok((store, SyncClient::new(url)?))
}

fn summary(report: &SyncReport) -> String {
    format!(
        "{} pages, {} changes, {:.1} KiB received, {:.1} KiB sent",
        report.rounds,
        report.received,
        report.bytes_received as f64 / 1024.0,
        report.bytes_sent as f64 / 1024.0
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let items = arg("--items", 1000);
    let cuts = arg("--cuts", 4u32);
    let seed = arg("--seed", 0x2_6u64);
    let Some(binary) = toxiproxy_binary()? else {
        println!("SKIPPED: Go is not installed (needed to `go install {TOXIPROXY}`); nothing measured");
        return Ok(());
    };
    let data = scratch()?;
    let server = start_server(data.path())?;
    let upstream: SocketAddr = server.url.trim_start_matches("http://").parse()?;
    let toxiproxy = Toxiproxy::start(&binary).await?;
    let link = toxiproxy.link_2g(upstream).await?;
    let phones = scratch()?;
    println!(
        "server {}, 2G proxy {link} (150 ± 30 ms and 31 KB/s each way)",
        server.url
    );

    // A coordinator fills a space on the direct link.
    let (a, a_client, a_person) = device(&server.url, phones.path(), "a").await?;
    let space = a.create_space(Generator::space_meta(), a_person)?.id;
    a_client.create_space(&a, space).await?;
    let mut gen = Generator::new(0x5eed, Mix::Mixed);
    let mut parents = Vec::new();
    for _ in 0..items {
        let mut new = gen.next_item(space, &parents);
        new.author = a_person;
        let item = a.create_item(new)?;
        if item.kind() != ItemKind::Comment {
            parents.push(item.id);
        }
    }
    a_client.sync_now(&a, |_| {}).await?;
    println!("{items} items pushed on the direct link");

    // A clean join through the 2G link.
    let counter = Counter::start(link)?;
    let (b, b_client) = member(
        &server.url,
        &counter.url,
        phones.path(),
        "b",
        (&a, &a_client),
        space,
    )
    .await?;
    let started = Instant::now();
    let clean = b_client.sync_now(&b, |_| {}).await?;
    let clean_wall = started.elapsed();
    let clean_down = counter.down();
    println!(
        "clean join: {:.1} s, {}; {:.1} KiB on the link towards the device",
        clean_wall.as_secs_f64(),
        summary(&clean),
        clean_down as f64 / 1024.0
    );

    // The same join with cuts at random moments.
    let counter = Counter::start(link)?;
    let (c, c_client) = member(
        &server.url,
        &counter.url,
        phones.path(),
        "c",
        (&a, &a_client),
        space,
    )
    .await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut made = 0u32;
    let mut attempts = 0u32;
    let mut committed = 0u64;
    let mut pages = 0usize;
    loop {
        attempts += 1;
        if made < cuts {
            // A cut somewhere in the next stretch of the join, a random number of bytes later.
            let stretch = clean_wall.as_secs_f64() / f64::from(cuts + 1);
            let delay = Duration::from_secs_f64(rng.random_range(0.2..=stretch.max(0.3)));
            let bytes = rng.random_range(1..=48 * 1024u64);
            let sync = c_client.sync_now(&c, |_| {});
            tokio::pin!(sync);
            let result = tokio::select! {
                r = &mut sync => Some(r),
                _ = tokio::time::sleep(delay) => None,
            };
            let result = match result {
                Some(r) => r,
                None => {
                    toxiproxy.cut_after(bytes).await?;
                    sync.await
                }
            };
            toxiproxy.heal().await?;
            match result {
                Ok(report) => {
                    committed += report.bytes_received;
                    pages += report.rounds;
                    break;
                }
                Err(e) => {
                    made += 1;
                    println!(
                        "  cut {made} ({bytes} bytes after {:.1} s): {e}",
                        delay.as_secs_f64()
                    );
                }
            }
        } else {
            let report = c_client.sync_now(&c, |_| {}).await?;
            committed += report.bytes_received;
            pages += report.rounds;
            break;
        }
    }
    let cut_wall = started.elapsed();
    let cut_down = counter.down();
    let same = c.document_ids()?.len() == b.document_ids()?.len();
    let waste = cut_down.saturating_sub(clean_down);
    println!(
        "join with {made} cuts: {:.1} s in {attempts} attempts, {:.1} KiB on the link towards the device \
         ({:.1} KiB more than the clean join: {:.1} KiB per cut); last attempt {pages} pages, {:.1} KiB; \
         same documents as the clean join: {same}",
        cut_wall.as_secs_f64(),
        cut_down as f64 / 1024.0,
        waste as f64 / 1024.0,
        waste as f64 / 1024.0 / f64::from(made.max(1)),
        committed as f64 / 1024.0
    );
    if !same {
        return Err("the cut join did not end with the same documents".into());
    }
    Ok(())
}
