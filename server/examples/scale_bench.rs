//! Server memory at scale: a server holding 1 000 spaces of 1 000 items, then serving new
//! members' initial syncs and pushes (issue 3, "server memory with 1 000 spaces of 1 000 items").
//!
//! Seeding is in-process and reused: every space and item document is made by the core's
//! document code (`new_space_change`, `new_item_change`: the change a device store writes),
//! signed with a registered device's key, and stored through the server's own push checks
//! (`sync::push`: decode, checksum, signature, membership, permission table) in transactions of
//! 1 000 — what a push over HTTP does, without the wire and the per-request fsync, so that a
//! million changes take minutes rather than an hour of device-side item creation. One thread
//! generates, one ingests. The data folder is kept (`--data DIR`, default
//! `target/scale-bench-<spaces>x<items>`) and reused once complete.
//!
//! Measuring uses the real `quartier-server` release process on that folder: its resident
//! memory after start, then after each of `--residents` new devices (each invited to another
//! space) did a whole initial sync and pushed 10 items, and its peak.
//!
//! `cargo build --release -p quartier-server --examples && ./target/release/examples/scale_bench`
//! Options: `--spaces N` (1000), `--items N` per space (1000), `--residents N` (20),
//! `--data DIR`.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use quartier_bench::{Generator, Mix};
use quartier_core::model::{Role, SpaceId};
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
use quartier_protocol::Record;
use quartier_server::documents::DocCache;
use quartier_server::storage::{now_ms, random_token, spaces, Db};
use uuid::Uuid;

mod support;

use support::signed::Signer;
use support::{arg, proc_status_kib, start_server, BoxError};

/// Records per ingest transaction (what the client pushes per request by default).
const BATCH: usize = 1000;

/// What seeding leaves beside the database once complete: the spaces, in order.
const MARKER: &str = "scale-bench-spaces.txt";

fn main() -> Result<(), BoxError> {
    let space_count: usize = arg("--spaces", 1000);
    let items: usize = arg("--items", 1000);
    let residents: usize = arg("--residents", 20);
    let data: PathBuf = arg(
        "--data",
        PathBuf::from(format!("target/scale-bench-{space_count}x{items}")),
    );
    let (coordinator, space_ids) = match read_marker(&data) {
        Some(seeded) => {
            println!("reusing {} ({} spaces)", data.display(), seeded.1.len());
            seeded
        }
        None => seed(&data, space_count, items)?,
    };
    let db_bytes = std::fs::metadata(data.join("quartier-server.db"))?.len();
    println!("database {:.0} MiB", db_bytes as f64 / 1048576.0);

    // Invites for the measuring run, written before the server process opens the folder.
    let picked: Vec<Uuid> = space_ids
        .iter()
        .step_by((space_ids.len() / residents.max(1)).max(1))
        .take(residents)
        .copied()
        .collect();
    let codes = {
        let db = Db::open(&data)?;
        let conn = db.lock();
        picked
            .iter()
            .map(|&space| {
                let code = random_token(16)?;
                spaces::create_invite(
                    &conn,
                    space,
                    Role::Resident,
                    now_ms() + 3_600_000,
                    1,
                    &code,
                    coordinator,
                )?;
                Ok(code)
            })
            .collect::<Result<Vec<String>, BoxError>>()?
    };

    let server = start_server(&data)?;
    let pid = server.child.id();
    let rss = || proc_status_kib(pid, "VmRSS").unwrap_or(0) / 1024;
    println!("server {} (pid {pid}): {} MiB RSS after start", server.url, rss());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let phones = tempfile::tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "."
    })?;
    let mut gen = Generator::new(0x0c0ffee, Mix::Mixed);
    for (n, code) in codes.iter().enumerate() {
        let store = Store::open(phones.path().join(format!("r{n}.db")), StoreOptions::default())?;
        let client = SyncClient::new(&server.url)?;
        let started = Instant::now();
        let report = runtime.block_on(async {
            let account = client.register(&store, Some("Bewohnerin")).await?;
            let membership = client.redeem_invite(&store, code).await?;
            let initial = client.sync_now(&store, |_| {}).await?;
            let space = SpaceId::from(membership.space);
            for _ in 0..10 {
                let mut new = gen.next_item(space, &[]);
                new.author = account.person;
                store.create_item(new)?;
            }
            client.sync_now(&store, |_| {}).await?;
            Ok::<_, BoxError>(initial)
        })?;
        println!(
            "resident {n}: initial sync of {} documents in {} requests, {:.2} s, {} KiB; server {} MiB RSS",
            report.received,
            report.rounds,
            started.elapsed().as_secs_f64(),
            report.bytes_received / 1024,
            rss()
        );
    }
    println!(
        "server after {residents} residents: {} MiB RSS, peak {} MiB",
        rss(),
        proc_status_kib(pid, "VmHWM").unwrap_or(0) / 1024
    );
    Ok(())
}

fn read_marker(data: &std::path::Path) -> Option<(Uuid, Vec<Uuid>)> {
    let text = std::fs::read_to_string(data.join(MARKER)).ok()?;
    let mut lines = text.lines();
    let coordinator = lines.next()?.parse().ok()?;
    let spaces = lines.map(str::parse).collect::<Result<_, _>>().ok()?;
    Some((coordinator, spaces))
}

fn seed(data: &std::path::Path, space_count: usize, items: usize) -> Result<(Uuid, Vec<Uuid>), BoxError> {
    if data.exists() {
        std::fs::remove_dir_all(data)?;
    }
    let db = Db::open(data)?;
    let signer = Signer::register(&db.lock(), "Koordination")?;
    let person = signer.person.as_uuid();
    let (sender, receiver) = mpsc::sync_channel::<(Uuid, Vec<Record>)>(4);
    let generator = std::thread::spawn(move || -> Result<(), String> {
        for n in 0..space_count {
            let space = (|| -> Result<(Uuid, Vec<Record>), BoxError> {
                let (space, first) = signer.space()?;
                let mut gen = Generator::new(n as u64, Mix::Mixed);
                let mut records = vec![first];
                records.extend(signer.items(space, Role::Coordinator, &mut gen, &mut Vec::new(), items)?);
                Ok((space.as_uuid(), records))
            })()
            .map_err(|e| e.to_string())?;
            if sender.send(space).is_err() {
                break;
            }
        }
        Ok(())
    });
    let docs = DocCache::new(2000);
    let started = Instant::now();
    let mut stored = 0usize;
    let mut space_ids = Vec::new();
    // Seeding is not one request of a member: no work budget per request (the holds stay bounded).
    let limits = quartier_server::sync::PushLimits {
        work_per_request: usize::MAX,
        ..Default::default()
    };
    for (space, records) in receiver {
        spaces::create_space(&db.lock(), space, person)?;
        for batch in records.chunks(BATCH) {
            let acks = quartier_server::sync::push(&db, &docs, person, batch, &limits)?.acks;
            if let Some(refused) = acks
                .iter()
                .find(|a| !matches!(a.outcome, quartier_protocol::AckOutcome::Stored))
            {
                return Err(format!("seeding: a change was refused: {refused:?}").into());
            }
            stored += batch.len();
            // No prover thread in this process: record the creation forms here, as a running
            // server's prover does after a push (`sync::creations`).
            quartier_server::sync::creations::prove_pending(&db, usize::MAX)?;
        }
        space_ids.push(space);
        if space_ids.len() % 50 == 0 {
            println!(
                "seeded {} spaces, {stored} changes, {:.0} changes/s",
                space_ids.len(),
                stored as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    generator.join().map_err(|_| "generator panicked")??;
    println!(
        "seeded {} spaces × {items} items: {stored} changes in {:.0} s, {:.0} changes/s (generation and signing on a second thread)",
        space_ids.len(),
        started.elapsed().as_secs_f64(),
        stored as f64 / started.elapsed().as_secs_f64()
    );
    let mut marker = format!("{person}\n");
    for space in &space_ids {
        marker.push_str(&format!("{space}\n"));
    }
    std::fs::write(data.join(MARKER), marker)?;
    Ok((person, space_ids))
}
