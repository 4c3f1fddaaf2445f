//! Many devices syncing at once against a real `quartier-server` process on loopback (issue 13,
//! "a server that reads in parallel"): for 1, 8 and 64 devices, each sends `--requests` sync
//! requests one after the other, each pushing `--batch` new items (signed changes made without a
//! device store, `support::signed`) and pulling its space after its cursor (the other devices'
//! changes). Reports requests/s, changes ingested/s, and latency percentiles per request.
//!
//! Each round starts a fresh server on a fresh data folder (on `/dev/shm` where there is one, as
//! `sync_bench`), seeded in-process before the server starts: the devices are registered and
//! members (coordinators) of spaces of `--per-space` devices each. Changes are generated and
//! signed before the clock starts, so the bench's own CPU use while measuring is the HTTP client
//! (CBOR, zstd) only; on a small machine it still shares the cores with the server.
//!
//! ```sh
//! cargo build --release -p quartier-server --bin quartier-server --example load_bench
//! ./target/release/examples/load_bench                      # --devices 1,8,64 --requests 10 --batch 100
//! ./target/release/examples/load_bench --server /path/to/other/quartier-server   # compare builds
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use quartier_bench::{Generator, Mix};
use quartier_core::model::{ItemId, Role, SpaceId};
use quartier_protocol::{
    AckOutcome, Record, SpaceCursor, SyncRequest, SyncResponse, CONTENT_TYPE, PROTOCOL_VERSION,
};
use quartier_server::storage::{now_ms, random_token, spaces, Db};

mod support;

use support::signed::Signer;
use support::{arg, proc_status_kib, scratch_dir, server_binary, start_server_at, BoxError};

/// CPU time a process has used so far, in seconds (user + system, `/proc/<pid>/stat`), where
/// the system has it. On a shared machine throughput follows the CPU the server gets; the CPU
/// it spends per change does not.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

/// The 1-minute load average, to say how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// One device of the bench: its token, space and pre-made requests' records.
struct Device {
    token: String,
    space: SpaceId,
    batches: Vec<Vec<Record>>,
}

/// Each device's requests' records, by device number.
type Made = Vec<(usize, Vec<Vec<Record>>)>;

/// What one device measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    stored: usize,
    refused: usize,
    received: usize,
}

fn main() -> Result<(), BoxError> {
    let rounds: Vec<usize> = arg("--devices", "1,8,64".to_owned())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let requests: usize = arg("--requests", 10);
    let batch: usize = arg("--batch", 100);
    let per_space: usize = arg("--per-space", 8);
    let binary = match arg("--server", String::new()) {
        path if path.is_empty() => server_binary()?,
        path => path.into(),
    };
    println!(
        "server binary {}; {requests} requests per device, {batch} new items each, {per_space} devices per space",
        binary.display()
    );
    println!("| devices | requests | changes stored | wall s | requests/s | changes/s | p50 ms | p90 ms | p99 ms | max ms | server CPU s | CPU ms/change | server peak RSS MiB | load before → after |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for devices in rounds {
        round(&binary, devices, requests, batch, per_space.max(1))?;
    }
    Ok(())
}

fn round(
    binary: &std::path::Path,
    count: usize,
    requests: usize,
    batch: usize,
    per_space: usize,
) -> Result<(), BoxError> {
    let data = scratch_dir()?;
    let devices = seed(data.path(), count, requests, batch, per_space)?;
    let server = start_server_at(binary, data.path())?;
    let url = format!("{}/v1/sync", server.url);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(count)
        .build()?;
    let pid = server.child.id();
    let load_before = load_average();
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    let tallies = runtime.block_on(async {
        let url = Arc::new(url);
        let tasks: Vec<_> = devices
            .into_iter()
            .map(|device| tokio::spawn(run_device(client.clone(), Arc::clone(&url), device)))
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(tallies)
    })?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let peak_mib = proc_status_kib(pid, "VmHWM").unwrap_or(0) / 1024;
    let mut latencies: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect();
    latencies.sort();
    let stored: usize = tallies.iter().map(|t| t.stored).sum();
    let refused: usize = tallies.iter().map(|t| t.refused).sum();
    let received: usize = tallies.iter().map(|t| t.received).sum();
    let ms = |q: f64| {
        let at = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "| {count} | {} | {stored} | {wall:.2} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {cpu:.1} | {:.2} | {peak_mib} | {load_before} → {} |",
        latencies.len(),
        latencies.len() as f64 / wall,
        stored as f64 / wall,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0),
        cpu * 1000.0 / stored.max(1) as f64,
        load_average(),
    );
    if refused > 0 {
        println!("  ({refused} changes not stored: the figures above count stored ones only)");
    }
    println!("  (records received by pulls: {received})");
    drop(server);
    Ok(())
}

/// One device: its requests in order, each pushing a batch and pulling after its cursor.
async fn run_device(client: reqwest::Client, url: Arc<String>, device: Device) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut after = None;
    for push in device.batches {
        let request = SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: vec![SpaceCursor {
                space: device.space.as_uuid(),
                after: after.clone(),
                members_after: None,
                signatures_after: None,
            }],
            push,
            budget_bytes: 1024 * 1024,
            accepts: vec![quartier_protocol::ACCEPTS_CREATED.to_owned()],
            counselling: None,
            credentials: None,
            moderation: None,
            help: None,
        };
        let body = quartier_protocol::encode(&request).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let answer = client
            .post(url.as_str())
            .header("content-type", CONTENT_TYPE)
            .header("authorization", format!("Bearer {}", device.token))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
        tally.latencies.push(started.elapsed());
        if !status.is_success() {
            return Err(format!("sync answered {status}"));
        }
        let response: SyncResponse =
            quartier_protocol::decode(&bytes, 64 * 1024 * 1024).map_err(|e| e.to_string())?;
        for ack in &response.acks {
            match ack.outcome {
                AckOutcome::Stored => tally.stored += 1,
                _ => tally.refused += 1,
            }
        }
        if let Some(page) = response.pages.into_iter().next() {
            tally.received += page.records.len();
            after = Some(page.next);
        }
    }
    Ok(tally)
}

/// A data folder with `count` registered devices, members of spaces of `per_space` each, and
/// every device's requests made and signed.
fn seed(
    data: &std::path::Path,
    count: usize,
    requests: usize,
    batch: usize,
    per_space: usize,
) -> Result<Vec<Device>, BoxError> {
    let db = Db::open(data)?;
    let conn = db.lock();
    let mut signers = Vec::with_capacity(count);
    for n in 0..count {
        signers.push(Signer::register(&conn, &format!("Gerät {n}"))?);
    }
    // The first device of each group starts the space and invites the others as coordinators
    // (they may write every kind of item the generator makes).
    let mut space_of = Vec::with_capacity(count);
    let mut first_records = Vec::new();
    for group in signers.chunks(per_space) {
        let (space, record) = group[0].space()?;
        spaces::create_space(&conn, space.as_uuid(), group[0].person.as_uuid())?;
        for member in &group[1..] {
            let code = random_token(16)?;
            spaces::create_invite(
                &conn,
                space.as_uuid(),
                Role::Coordinator,
                now_ms() + 3_600_000,
                1,
                &code,
                group[0].person.as_uuid(),
            )?;
            spaces::redeem_invite(&conn, &code, member.person.as_uuid())?;
        }
        first_records.push(Some(record));
        space_of.extend(std::iter::repeat_n(space, group.len()));
    }
    drop(conn);
    drop(db);
    // Generating and signing is most of the seeding time: one thread per core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let made: Vec<Vec<Vec<Record>>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..threads)
            .map(|t| {
                let signers = &signers;
                let space_of = &space_of;
                scope.spawn(move || -> Result<Made, String> {
                    let mut out = Vec::new();
                    for n in (t..signers.len()).step_by(threads) {
                        let mut gen = Generator::new(n as u64, Mix::Mixed);
                        let mut parents: Vec<ItemId> = Vec::new();
                        let mut batches = Vec::with_capacity(requests);
                        for _ in 0..requests {
                            batches.push(
                                signers[n]
                                    .items(space_of[n], Role::Coordinator, &mut gen, &mut parents, batch)
                                    .map_err(|e| e.to_string())?,
                            );
                        }
                        out.push((n, batches));
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all: Made = Vec::new();
        for job in jobs {
            all.extend(job.join().map_err(|_| "a generator panicked".to_owned())??);
        }
        all.sort_by_key(|(n, _)| *n);
        Ok::<_, String>(all.into_iter().map(|(_, b)| b).collect())
    })?;
    let mut devices = Vec::with_capacity(count);
    for (n, (signer, mut batches)) in signers.into_iter().zip(made).enumerate() {
        // The space's own document goes with its first device's first push.
        if n % per_space == 0 {
            if let (Some(first), Some(record)) = (batches.first_mut(), first_records[n / per_space].take()) {
                first.insert(0, record);
            }
        }
        devices.push(Device {
            token: signer.token,
            space: space_of[n],
            batches,
        });
    }
    Ok(devices)
}
