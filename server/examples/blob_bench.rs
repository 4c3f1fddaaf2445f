//! Media transfer figures against a real `quartier-server` process on loopback: a 5 MB photo
//! uploaded (and downloaded by a second device) by the core's transfer queue over a link that
//! drops every 500 KB, against the same transfer over a link that never drops. Time, bytes on
//! the wire in both directions (counted by a TCP proxy, headers included), chunk requests and
//! attempts, against the photo's size.
//!
//! The "photo" is a WAV file of 5 000 000 bytes of noise (as incompressible as a JPEG), which
//! the media store keeps as it is (no re-encoding, no derived files).
//!
//! `cargo build --release -p quartier-server && cargo run --release -p quartier-server --example blob_bench`
//! Options: `--size BYTES` (default 5000000), `--drop-every BYTES` (default 500000).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quartier_core::media::ImportOptions;
use quartier_core::model::*;
use quartier_core::sync::{SyncClient, TransferQueue};
use quartier_core::{Error, Store, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::{arg, start_server, BoxError};

/// Bytes through the proxy in each direction; the link drops whenever `every` more bytes (both
/// directions together) have passed since the last drop.
#[derive(Default)]
struct Link {
    up: u64,
    down: u64,
    since_drop: u64,
    every: Option<u64>,
    drops: u64,
}

impl Link {
    fn pass(&mut self, upstream: bool, n: u64) -> (u64, bool) {
        let (allowed, cut) = match self.every {
            Some(every) if self.since_drop + n >= every => (every - self.since_drop, true),
            _ => (n, false),
        };
        if upstream {
            self.up += allowed;
        } else {
            self.down += allowed;
        }
        self.since_drop = if cut { 0 } else { self.since_drop + allowed };
        self.drops += u64::from(cut);
        (allowed, cut)
    }
}

async fn proxy(target: SocketAddr, link: Arc<Mutex<Link>>) -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, target, Arc::clone(&link)));
        }
    });
    Ok(url)
}

async fn relay(client: TcpStream, target: SocketAddr, link: Arc<Mutex<Link>>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut a, mut b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let (upstream, n) = tokio::select! {
            r = cr.read(&mut a) => match r { Ok(n @ 1..) => (true, n), _ => break },
            r = sr.read(&mut b) => match r { Ok(n @ 1..) => (false, n), _ => break },
        };
        let (allowed, cut) = link
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pass(upstream, n as u64);
        let allowed = allowed as usize;
        let written = if upstream {
            sw.write_all(&a[..allowed]).await
        } else {
            cw.write_all(&b[..allowed]).await
        };
        if written.is_err() || cut {
            break;
        }
    }
}

struct Figures {
    seconds: f64,
    up: u64,
    down: u64,
    drops: u64,
    attempts: u32,
    chunks: u64,
}

/// Runs `queue` until a run finishes; counts attempts.
async fn until_done(queue: &TransferQueue, store: &Store) -> Result<u32, BoxError> {
    for attempt in 1..=1000 {
        match queue.run(store, |_| {}).await {
            Ok(report) if report.failed.is_empty() => return Ok(attempt),
            Ok(report) => return Err(format!("failed: {:?}", report.failed).into()),
            Err(Error::Offline(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err("never finished".into())
}

async fn device(
    url: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<(Store, SyncClient, PersonId), BoxError> {
    let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
    let client = SyncClient::new(url)?;
    let account = client.register(&store, Some(name)).await?;
    Ok((store, client, account.person))
}

/// One upload and one download of `photo` through a link dropping every `drop_every` bytes.
async fn round(photo: &[u8], drop_every: Option<u64>) -> Result<(Figures, Figures), BoxError> {
    let data = tempfile::tempdir()?;
    let server = start_server(data.path())?;
    let phones = tempfile::tempdir()?;
    let (a, a_client, a_person) = device(&server.url, phones.path(), "a").await?;
    let space = a
        .create_space(
            SpaceMeta {
                name: LocalizedText::single("de", "Nippes"),
                description: LocalizedText::single("de", "Veedel"),
                time_zone: "Europe/Berlin".into(),
                default_language: "de".into(),
                categories: Default::default(),
                layers: Default::default(),
            },
            a_person,
        )?
        .id;
    a_client.create_space(&a, space).await?;
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let code = a_client
        .create_invite(&a, space, Role::Resident, expires, 1)
        .await?;
    let (b, b_client, _) = device(&server.url, phones.path(), "b").await?;
    b_client.redeem_invite(&b, &code).await?;
    let imported = a.import_media_bytes(photo, &ImportOptions::default())?;
    let content = ItemContent {
        media: vec![imported.reference],
        ..ItemContent::new(
            LocalizedText::single("de", "Fassade"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    };
    a.create_item(NewItem::new(space, a_person, content))?;
    a_client.sync_now(&a, |_| {}).await?;

    let link = Arc::new(Mutex::new(Link {
        every: drop_every,
        ..Default::default()
    }));
    let target: SocketAddr = server.url.trim_start_matches("http://").parse()?;
    let via = proxy(target, Arc::clone(&link)).await?;
    let snapshot = |l: &Arc<Mutex<Link>>| {
        let l = l.lock().unwrap_or_else(|p| p.into_inner());
        (l.up, l.down, l.drops)
    };

    let queue = TransferQueue::new(&SyncClient::new(&via)?)?;
    let started = Instant::now();
    let attempts = until_done(&queue, &a).await?;
    let (up, down, drops) = snapshot(&link);
    let upload = Figures {
        seconds: started.elapsed().as_secs_f64(),
        up,
        down,
        drops,
        attempts,
        chunks: queue.traffic().chunks_sent,
    };

    b_client.sync_now(&b, |_| {}).await?;
    let queue = TransferQueue::new(&SyncClient::new(&via)?)?;
    let started = Instant::now();
    let attempts = until_done(&queue, &b).await?;
    let (up2, down2, drops2) = snapshot(&link);
    let download = Figures {
        seconds: started.elapsed().as_secs_f64(),
        up: up2 - up,
        down: down2 - down,
        drops: drops2 - drops,
        attempts,
        chunks: 0,
    };
    Ok((upload, download))
}

fn print(what: &str, size: u64, f: &Figures) {
    let wire = f.up + f.down;
    println!(
        "{what:<34} {:>7.3} s  up {:>9} B  down {:>9} B  wire/size {:.3}  drops {:>2}  attempts {:>2}  chunk requests {:>2}",
        f.seconds,
        f.up,
        f.down,
        wire as f64 / size as f64,
        f.drops,
        f.attempts,
        f.chunks
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let size = arg("--size", 5_000_000);
    let drop_every = arg("--drop-every", 500_000);
    let mut noise = Ok(());
    let photo = quartier_bench::audio::wav_bytes(size as usize, |data| noise = getrandom::fill(data));
    noise.map_err(|e| e.to_string())?;
    println!("photo: {size} random bytes; link drops every {drop_every} bytes (both directions counted)");
    let (up_clean, down_clean) = round(&photo, None).await?;
    let (up_flaky, down_flaky) = round(&photo, Some(drop_every)).await?;
    print("upload, link never drops", size, &up_clean);
    print("upload, link drops", size, &up_flaky);
    print("download, link never drops", size, &down_clean);
    print("download, link drops", size, &down_flaky);
    Ok(())
}
