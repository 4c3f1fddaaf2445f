//! Whole-system sync figures against a real `quartier-server` process on loopback:
//! initial sync of a 10 000-item space (wall time, requests, bytes on the wire, against the
//! zstd-compressed JSON of the same content), one new change to a synced device, server ingest
//! rate, and server memory with many spaces.
//!
//! `cargo build --release -p quartier-server && cargo run --release -p quartier-server --example sync_bench`
//! Options: `--items N` (default 10000), `--spaces N --per-space M` (default 200 × 50).

use std::time::Instant;

use quartier_bench::{Generator, Mix};
use quartier_core::model::{ItemKind, Role};
use quartier_core::query::FeedQuery;
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};

mod support;

use support::{
    arg, proc_status_kib, scratch_dir as scratch, start_server, wait_for_creation_forms, BoxError,
};

fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS")
}

async fn device(
    url: &str,
    dir: &std::path::Path,
    name: &str,
) -> Result<(Store, SyncClient, quartier_core::model::PersonId), BoxError> {
    let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
    let client = SyncClient::new(url)?.with_limits(1024 * 1024, 1000);
    let account = client.register(&store, Some(name)).await?;
    Ok((store, client, account.person))
}

/// What the new member's process reports on its last line of output.
const JOIN_REPORT: &str = "join-report";

/// The new member's device in a process of its own (`--join-child URL CODE DIR`), so that its
/// peak memory is the device's alone: registers, redeems the invite, syncs the space's content,
/// then the signatures that let it show the content to peers (by default they follow the
/// content in the same sync: the same pages, in one run), and prints for each the wall time,
/// the sync report's figures and `VmHWM`.
async fn join_child(url: &str, code: &str, dir: &std::path::Path) -> Result<(), BoxError> {
    let (b, b_client, b_person) = device(url, dir, "b").await?;
    b_client.redeem_invite(&b, code).await?;
    let before = proc_status_kib(std::process::id(), "VmRSS").unwrap_or(0);
    let phase = async |signatures: bool| -> Result<String, BoxError> {
        b.set_peer_signatures(signatures)?;
        let started = Instant::now();
        let report = b_client.sync_now(&b, |_| {}).await?;
        let wall = started.elapsed();
        let peak = proc_status_kib(std::process::id(), "VmHWM").unwrap_or(0);
        // Where the resident memory is now: the heap, or pages of the binary and the store.
        eprintln!(
            "join: after the {} phase RssAnon {} KiB, RssFile {} KiB",
            if signatures { "signatures" } else { "content" },
            proc_status_kib(std::process::id(), "RssAnon").unwrap_or(0),
            proc_status_kib(std::process::id(), "RssFile").unwrap_or(0)
        );
        Ok(format!(
            "{} {} {} {} {peak}",
            wall.as_micros(),
            report.rounds,
            report.bytes_sent,
            report.bytes_received
        ))
    };
    let content = phase(false).await?;
    let signatures = phase(true).await?;
    b.close()?;
    println!("{JOIN_REPORT} {before} {b_person} {content} {signatures}");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--join-child") {
        let (Some(url), Some(code), Some(dir)) = (args.get(i + 1), args.get(i + 2), args.get(i + 3)) else {
            return Err("--join-child URL CODE DIR".into());
        };
        return join_child(url, code, std::path::Path::new(dir)).await;
    }
    let items = arg("--items", 10_000);
    let spaces = arg("--spaces", 200);
    let per_space = arg("--per-space", 50);
    let data = scratch()?;
    let server = start_server(data.path())?;
    let phones = scratch()?;
    println!(
        "server {} (pid {}), stores in {}",
        server.url,
        server.child.id(),
        phones.path().display()
    );

    // A coordinator fills a space offline.
    let (a, a_client, a_person) = device(&server.url, phones.path(), "a").await?;
    let space = a.create_space(Generator::space_meta(), a_person)?.id;
    a_client.create_space(&a, space).await?;
    let mut gen = Generator::new(0x5eed, Mix::Mixed);
    let mut parents = Vec::new();
    let started = Instant::now();
    // The generator's caseworker-only items are not a coordinator's to write (the store checks
    // the server's rule first); they are left out, as the resident would not see them anyway.
    let mut not_permitted = 0;
    for _ in 0..items {
        let mut new = gen.next_item(space, &parents);
        new.author = a_person;
        let item = match a.create_item(new) {
            Ok(item) => item,
            Err(quartier_core::Error::NotPermitted { .. }) => {
                not_permitted += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if item.kind() != ItemKind::Comment {
            parents.push(item.id);
        }
    }
    println!(
        "generated {items} items in {:.1} s ({not_permitted} caseworker-only ones left out: not a coordinator's to write)",
        started.elapsed().as_secs_f64()
    );

    // Ingest: the coordinator pushes everything.
    let started = Instant::now();
    let push = a_client.sync_now(&a, |_| {}).await?;
    let ingest = started.elapsed();
    println!(
        "ingest: {} changes in {:.2} s = {:.0} changes/s, {} requests, {} KiB sent",
        push.pushed,
        ingest.as_secs_f64(),
        push.pushed as f64 / ingest.as_secs_f64(),
        push.rounds,
        push.bytes_sent / 1024
    );

    // The creation forms, proved off the push path, are there by the time someone joins.
    let proving = wait_for_creation_forms(data.path(), std::time::Duration::from_secs(300))?;
    println!(
        "creation forms recorded {:.1} s after the push",
        proving.as_secs_f64()
    );

    // A new member's initial sync.
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let code = a_client
        .create_invite(&a, space, Role::Resident, expires, 1)
        .await?;
    // The new member is a process of its own, as a phone is: its peak memory is its own.
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--join-child", &server.url, &code])
        .arg(phones.path())
        .output()?;
    let report = String::from_utf8_lossy(&output.stdout);
    for line in String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("join: "))
    {
        println!("  {line}");
    }
    let Some(line) = report.lines().find(|l| l.starts_with(JOIN_REPORT)) else {
        return Err(format!(
            "the new member's process failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    };
    let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
    let number =
        |i: usize| -> Result<u64, BoxError> { Ok(fields.get(i).ok_or("short join report")?.parse()?) };
    let rss_before = number(0)?;
    let b_person: quartier_core::model::PersonId = fields.get(1).ok_or("short join report")?.parse()?;
    let phase = |at: usize| -> Result<_, BoxError> {
        let report = quartier_core::sync::SyncReport {
            rounds: number(at + 1)? as usize,
            bytes_sent: number(at + 2)?,
            bytes_received: number(at + 3)?,
            ..Default::default()
        };
        Ok((
            std::time::Duration::from_micros(number(at)?),
            report,
            number(at + 4)?,
        ))
    };
    let (wall, initial, peak) = phase(2)?;
    let (signatures_wall, signatures, signatures_peak) = phase(7)?;
    let b = Store::open(phones.path().join("b.db"), StoreOptions::default())?;
    let b_client = SyncClient::new(&server.url)?.with_limits(1024 * 1024, 1000);
    let viewer = quartier_core::model::Viewer::new(b_person, Role::Resident);
    let mut feed = FeedQuery::new(space, viewer);
    feed.limit = 1000.into();
    // The same content as JSON: every item the resident sees, with the comments on it (comments
    // are not in the feed).
    let mut json = Vec::new();
    let mut count = 0;
    loop {
        let page = b.feed(&feed)?;
        for item in &page.items {
            json.extend(serde_json::to_vec(item)?);
            json.push(b'\n');
            count += 1;
            for comment in b.item_detail(item.id, &viewer)?.comments {
                json.extend(serde_json::to_vec(&comment)?);
                json.push(b'\n');
                count += 1;
            }
        }
        match page.next {
            Some(next) => feed.after = Some(next),
            None => break,
        }
    }
    let docs = b.document_ids()?.len();
    let zstd_json = zstd::encode_all(json.as_slice(), 3)?.len() as u64;
    let wire = initial.bytes_sent + initial.bytes_received;
    let mib = initial.bytes_received as f64 / (1024.0 * 1024.0);
    println!(
        "initial sync: {docs} documents ({count} items and comments visible) in {:.2} s, {} requests, {:.2} MiB received, {} KiB sent",
        wall.as_secs_f64(),
        initial.rounds,
        mib,
        initial.bytes_sent / 1024
    );
    println!(
        "  bytes on the wire {wire} vs zstd JSON of the same items and comments {zstd_json}: ratio {:.2}",
        wire as f64 / zstd_json as f64
    );
    println!(
        "  requests per MiB page budget: {:.2}",
        initial.rounds as f64 / mib.max(1.0)
    );
    println!(
        "  the new member's process: {:.1} MiB resident before the sync, peak {:.1} MiB (VmHWM)",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let signatures_wire = signatures.bytes_sent + signatures.bytes_received;
    println!(
        "  then the signatures to show it to peers: {:.2} s, {} requests, {:.2} MiB received, peak {:.1} MiB; content and signatures together: ratio {:.2}",
        signatures_wall.as_secs_f64(),
        signatures.rounds,
        signatures.bytes_received as f64 / (1024.0 * 1024.0),
        signatures_peak as f64 / 1024.0,
        (wire + signatures_wire) as f64 / zstd_json as f64
    );

    // One new change to an already synced device.
    let mut new = gen.next_item(space, &[]);
    new.author = a_person;
    a.create_item(new)?;
    a_client.sync_now(&a, |_| {}).await?;
    let one = b_client.sync_now(&b, |_| {}).await?;
    println!(
        "one new change: {} request(s), {} bytes sent + {} bytes received = {} bytes",
        one.rounds,
        one.bytes_sent,
        one.bytes_received,
        one.bytes_sent + one.bytes_received
    );
    let pushed_one = {
        let mut new = gen.next_item(space, &[]);
        new.author = a_person;
        a.create_item(new)?;
        a_client.sync_now(&a, |_| {}).await?
    };
    println!(
        "pushing one change: {} request(s), {} bytes on the wire",
        pushed_one.rounds,
        pushed_one.bytes_sent + pushed_one.bytes_received
    );

    // Many spaces: server memory stays bounded by its document cache.
    let before = rss_kib(server.child.id());
    let (c, c_client, c_person) = device(&server.url, phones.path(), "c").await?;
    let started = Instant::now();
    for _ in 0..spaces {
        let s = c.create_space(Generator::space_meta(), c_person)?.id;
        c_client.create_space(&c, s).await?;
        for _ in 0..per_space {
            let mut new = gen.next_item(s, &[]);
            new.author = c_person;
            c.create_item(new)?;
        }
    }
    let pushed = c_client.sync_now(&c, |_| {}).await?;
    println!(
        "{spaces} spaces × {per_space} items: pushed {} changes in {:.1} s (incl. generation); server RSS {} KiB before, {} KiB after",
        pushed.pushed,
        started.elapsed().as_secs_f64(),
        before.unwrap_or(0),
        rss_kib(server.child.id()).unwrap_or(0)
    );
    Ok(())
}
