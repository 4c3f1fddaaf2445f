//! Counselling figures against a real `quartier-server` process on loopback
//! (`docs/benchmarks.md`, "Counselling"):
//! - sending a message on the device: encrypt, store, queue (per call, p50/p99);
//! - receiving 1 000 messages in one sync (a caseworker's device: wall time, rounds, bytes);
//! - a caseworker joining a team with 100 open conversations: the new device's first sync, the
//!   resident side's next sync (which gives it the keys), and the sync in which the new device
//!   reads a new message in each of the 100.
//!
//! `cargo build --release -p quartier-server --bin quartier-server --example counselling_bench`
//! then `target/release/examples/counselling_bench`. Options: `--messages N` (default 1000),
//! `--conversations N` (default 100).

use std::time::{Duration, Instant};

use quartier_core::counselling::Body;
use quartier_core::model::{LocalizedText, PersonId, Role, SpaceId, SpaceMeta};
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
use quartier_protocol::counselling::TeamSettings;

mod support;

use support::{arg, scratch_dir, server_binary, start_server, BoxError};

struct Phone {
    store: Store,
    client: SyncClient,
    person: PersonId,
}

async fn phone(url: &str, dir: &std::path::Path, name: &str) -> Result<Phone, BoxError> {
    let store = Store::open(dir.join(format!("{name}.db")), StoreOptions::default())?;
    let client = SyncClient::new(url)?.with_limits(1024 * 1024, 1000);
    let account = client.register(&store, Some(name)).await?;
    Ok(Phone {
        store,
        client,
        person: account.person,
    })
}

async fn invite(coordinator: &Phone, space: SpaceId, role: Role) -> Result<String, BoxError> {
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    Ok(coordinator
        .client
        .create_invite(&coordinator.store, space, role, expires, 1)
        .await?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let messages: usize = arg("--messages", 1000);
    let conversations: usize = arg("--conversations", 100);
    let data = tempfile::tempdir()?;
    let server = start_server(data.path())?;
    let url = server.url.clone();
    let phones = scratch_dir()?;

    // A space, a team, a caseworker in it (appointed by an organisation admin), a resident.
    let coordinator = phone(&url, phones.path(), "coordinator").await?;
    let space = coordinator
        .store
        .create_space(
            SpaceMeta {
                name: LocalizedText::single("de", "Nippes"),
                description: LocalizedText::single("de", "Veedel"),
                time_zone: "Europe/Berlin".into(),
                default_language: "de".into(),
                categories: Default::default(),
                layers: Default::default(),
            },
            coordinator.person,
        )?
        .id;
    coordinator.client.create_space(&coordinator.store, space).await?;
    let granted = std::process::Command::new(server_binary()?)
        .args(["admin", "--data"])
        .arg(data.path())
        .args(["grant-org-admin", &coordinator.person.to_string()])
        .output()?;
    if !granted.status.success() {
        return Err(format!("grant-org-admin: {}", String::from_utf8_lossy(&granted.stderr)).into());
    }
    let team = coordinator
        .client
        .create_counselling_team(
            &coordinator.store,
            space,
            &TeamSettings {
                name: "Schuldnerberatung".into(),
                topic: "debt".into(),
                postcodes: vec![],
                retention_days: None,
            },
        )
        .await?
        .id;
    let anna = phone(&url, phones.path(), "anna").await?;
    anna.client
        .redeem_invite(&anna.store, &invite(&coordinator, space, Role::Caseworker).await?)
        .await?;
    coordinator
        .client
        .add_team_member(&coordinator.store, space, team, anna.person)
        .await?;
    anna.client.sync_now(&anna.store, |_| {}).await?;
    let resident = phone(&url, phones.path(), "resident").await?;
    resident
        .client
        .redeem_invite(
            &resident.store,
            &invite(&coordinator, space, Role::Resident).await?,
        )
        .await?;
    let conversation = resident.store.open_conversation(space, team)?;
    resident
        .store
        .send_counselling_message(conversation, "Guten Tag")?;
    resident.client.sync_now(&resident.store, |_| {}).await?;
    anna.client.sync_now(&anna.store, |_| {}).await?;

    // 1. Sending.
    let mut sends = Vec::with_capacity(messages);
    for n in 0..messages {
        let text = format!("Nachricht {n}: Ich habe eine Frage zu meinem Bescheid vom Jobcenter.");
        let started = Instant::now();
        resident.store.send_counselling_message(conversation, &text)?;
        sends.push(started.elapsed());
    }
    sends.sort();
    println!(
        "send a message (encrypt + store + outbox), {messages} calls: p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&sends, 0.5)),
        ms(percentile(&sends, 0.99))
    );

    // 2. Receiving them in one sync.
    let started = Instant::now();
    let pushed = resident.client.sync_now(&resident.store, |_| {}).await?;
    println!(
        "push {messages} messages: {:.0} ms, {} rounds, {} bytes sent",
        ms(started.elapsed()),
        pushed.rounds,
        pushed.bytes_sent
    );
    let started = Instant::now();
    let received = anna.client.sync_now(&anna.store, |_| {}).await?;
    let wall = started.elapsed();
    let readable = anna
        .store
        .counselling_records(conversation)?
        .iter()
        .filter(|r| matches!(r.body, Some(Body::Message { .. })))
        .count();
    println!(
        "receive {messages} messages in one sync: {:.0} ms ({:.3} ms per message), {} rounds, {} bytes received; {readable} readable",
        ms(wall),
        ms(wall) / messages as f64,
        received.rounds,
        received.bytes_received
    );

    // 3. A caseworker joining a team with open conversations.
    let mut open = Vec::with_capacity(conversations);
    for n in 0..conversations {
        let id = resident.store.open_conversation(space, team)?;
        resident
            .store
            .send_counselling_message(id, &format!("Anliegen {n}"))?;
        open.push(id);
    }
    resident.client.sync_now(&resident.store, |_| {}).await?;
    anna.client.sync_now(&anna.store, |_| {}).await?;
    let ben = phone(&url, phones.path(), "ben").await?;
    ben.client
        .redeem_invite(&ben.store, &invite(&coordinator, space, Role::Caseworker).await?)
        .await?;
    coordinator
        .client
        .add_team_member(&coordinator.store, space, team, ben.person)
        .await?;
    let started = Instant::now();
    let first = ben.client.sync_now(&ben.store, |_| {}).await?;
    let first_wall = started.elapsed();
    let channels = ben.store.counselling_channels()?.len();
    for id in &open {
        resident.store.send_counselling_message(*id, "Neue Frage")?;
    }
    let started = Instant::now();
    let shares = resident.client.sync_now(&resident.store, |_| {}).await?;
    let shares_wall = started.elapsed();
    let started = Instant::now();
    let read = ben.client.sync_now(&ben.store, |_| {}).await?;
    let read_wall = started.elapsed();
    let mut reads = 0;
    for id in &open {
        if ben
            .store
            .counselling_records(*id)?
            .iter()
            .any(|r| matches!(&r.body, Some(Body::Message { text, .. }) if text == "Neue Frage"))
        {
            reads += 1;
        }
    }
    println!(
        "a caseworker joins a team with {conversations} open conversations: first sync {:.0} ms ({} rounds, {} bytes received, {channels} channels); the resident side's next sync (key shares) {:.0} ms ({} rounds); the sync that reads a new message in each {:.0} ms ({} rounds); {reads}/{conversations} read",
        ms(first_wall),
        first.rounds,
        first.bytes_received,
        ms(shares_wall),
        shares.rounds,
        ms(read_wall),
        read.rounds
    );
    drop(server);
    Ok(())
}
