//! A server on the open internet, tried from outside against the real `quartier-server`
//! process: slow and idle clients are cut off, oversized bodies are refused before they are
//! read, error bodies carry a request id and no internal text and are readable without a
//! decoder, rate limits answer `429` with `Retry-After`, registration proves possession of the
//! key, operator restrictions hold, and HTTPS works with a certificate reloaded on SIGHUP.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use quartier_bench::audio::wav_bytes;
use quartier_core::model::Role;
use quartier_core::sync::{SyncClient, TransferQueue};
use quartier_core::{Error, Store, StoreOptions};
use quartier_protocol::{CreateSpace, DeviceRegistered, ErrorBody, RegisterDevice, SetRole, CONTENT_TYPE};
use reqwest::Method;
use uuid::Uuid;

/// Host and port of a server URL (`http://127.0.0.1:1234` → `127.0.0.1:1234`).
fn host_port(url: &str) -> String {
    url.rsplit("//").next().expect("host").to_owned()
}

/// Reads from `stream` until the server closes it or `deadline` passes; true if it closed.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (408, 400) before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return true, // reset
        }
    }
}

#[test]
fn slow_idle_and_stalled_clients_are_cut_off() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            ("QUARTIER_HEADER_TIMEOUT_MS", "1000"),
            ("QUARTIER_BODY_TIMEOUT_MS", "1000"),
        ],
    );
    let addr = host_port(&server.url);
    let mut sockets = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        match i % 4 {
            // Nothing at all.
            0 => {}
            // Headers that never end.
            1 => s
                .write_all(b"POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: ")
                .expect("write"),
            // A body that never arrives.
            2 => s
                .write_all(
                    format!(
                        "POST /v1/devices HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 1000\r\n\r\n0123456789"
                    )
                    .as_bytes(),
                )
                .expect("write"),
            // One request, then idle on a kept-alive connection.
            _ => {
                s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            }
        }
        sockets.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    let open: Vec<usize> = sockets
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| (!closed_by_server(s, deadline)).then_some(i))
        .collect();
    assert!(open.is_empty(), "connections still open after 8 s: {open:?}");
    // And the server still serves.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_huge_content_length_is_refused_before_the_body_is_read() {
    // Default timeouts: the answer must come from the declared length, not from a timeout.
    let server = Server::start();
    let mut s = TcpStream::connect(host_port(&server.url)).expect("connect");
    s.write_all(
        format!(
            "POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 107374182400\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("an answer within 3 s");
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    assert!(closed_by_server(&mut s, Instant::now() + Duration::from_secs(3)));
}

/// A server process whose log (stderr) is collected.
struct LoggedServer {
    server: Server,
    log: Arc<Mutex<String>>,
}

fn start_logged(env: &[(&str, &str)]) -> LoggedServer {
    let data = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("QUARTIER_LOG", "info")
        .envs(TEST_SETTINGS.iter().copied())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let url = line.trim().rsplit(' ').next().expect("url").to_owned();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("log").push_str(&format!("{line}\n"));
        }
    });
    LoggedServer {
        server: Server { child, url, data },
        log,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_shows_a_request_id_and_no_internal_text() {
    let logged = start_logged(&[]);
    let url = logged.server.url.clone();
    // Another process holds SQLite's write lock: the server's write fails (after its 5 s busy
    // timeout) with "database is locked".
    let conn =
        rusqlite::Connection::open(logged.server.data.path().join("quartier-server.db")).expect("open");
    conn.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let key = SigningKey::from_bytes(&[7; 32]);
    let registration = signed_registration(&url, &key, Some("Nina")).await;
    let response = http()
        .post(format!("{url}/v1/devices"))
        .header("content-type", CONTENT_TYPE)
        .body(quartier_protocol::encode(&registration).expect("encode"))
        .send()
        .await
        .expect("answer");
    conn.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(response.status().as_u16(), 500);
    let id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .expect("text")
        .to_owned();
    let body: ErrorBody =
        quartier_protocol::decode(&response.bytes().await.expect("body"), 64 * 1024).expect("ErrorBody");
    assert_eq!(body.code, "internal");
    assert_eq!(body.request_id.as_deref(), Some(id.as_str()));
    let lower = body.message.to_lowercase();
    for leak in ["database", "locked", "sqlite", "rusqlite"] {
        assert!(!lower.contains(leak), "{leak:?} in {:?}", body.message);
    }
    assert!(body.message.contains(&id), "{}", body.message);
    // The operator finds the cause under the same id.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let log = logged.log.lock().expect("log");
            log.lines()
                .any(|l| l.contains(&id) && l.contains("database is locked"))
        }),
        "no log line with {id} and the cause:\n{}",
        logged.log.lock().expect("log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_readable_without_a_decoder() {
    let server = Server::start();
    let url = &server.url;
    let client = http();
    // A browser or curl (no credentials, no CBOR): plain text.
    let response = client
        .get(format!("{url}/v1/nothing-here"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 404);
    let id = response
        .headers()
        .get("x-request-id")
        .expect("id")
        .to_str()
        .expect("text")
        .to_owned();
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    let text = response.text().await.expect("text");
    assert!(text.contains("not_found") && text.contains(&id), "{text}");
    // Asking for JSON: JSON.
    let response = client
        .post(format!("{url}/v1/spaces"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    let json: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert_eq!(json["code"], "unauthorized");
    assert!(json["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    // A device (CBOR, or a bearer token): the protocol's ErrorBody.
    let answer = post_raw(url, "/v1/spaces", Some("nope"), b"x".to_vec()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error_body().expect("CBOR ErrorBody").code, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_another_content_type_are_refused_with_415() {
    let server = Server::start();
    let key = SigningKey::from_bytes(&[8; 32]);
    let registration =
        quartier_protocol::encode(&signed_registration(&server.url, &key, None).await).expect("encode");
    for content_type in ["application/json", "text/plain", "application/cbor"] {
        let response = http()
            .post(format!("{}/v1/devices", server.url))
            .header("content-type", content_type)
            .header("accept", CONTENT_TYPE)
            .body(registration.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 415, "{content_type}");
        let body: ErrorBody =
            quartier_protocol::decode(&response.bytes().await.expect("body"), 64 * 1024).expect("ErrorBody");
        assert_eq!(body.code, "unsupported_media_type");
    }
    let response = http()
        .post(format!("{}/v1/devices", server.url))
        .body(registration.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 415, "no content type");
    // The protocol's type (parameters allowed) still registers.
    let answer = post_raw(&server.url, "/v1/devices", None, registration).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error_body());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            ("QUARTIER_REGISTRATIONS_PER_HOUR", "2"),
            ("QUARTIER_REDEMPTIONS_PER_HOUR", "3"),
            ("QUARTIER_RATE_PER_DEVICE_PER_MINUTE", "30"),
        ],
    );
    let url = &server.url;
    let owner = RawDevice::register(url, "Owner").await;
    let guesser = RawDevice::register(url, "Guesser").await;
    // Registrations per address per hour.
    let key = SigningKey::from_bytes(&[9; 32]);
    let registration = signed_registration(url, &key, None).await;
    let response = http()
        .post(format!("{url}/v1/devices"))
        .header("content-type", CONTENT_TYPE)
        .body(quartier_protocol::encode(&registration).expect("encode"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!(
        (60..=1800).contains(&retry),
        "one registration refills in 30 min: {retry}"
    );
    let body: ErrorBody =
        quartier_protocol::decode(&response.bytes().await.expect("body"), 64 * 1024).expect("ErrorBody");
    assert_eq!(body.code, "rate_limited");

    // Invite guessing: three tries an hour, then 429, whatever the code.
    for _ in 0..3 {
        let answer = post_msg(
            url,
            "/v1/invites/redeem",
            Some(&guesser.token),
            &quartier_protocol::RedeemInvite {
                code: "00000000000000000000000000000000".into(),
            },
        )
        .await;
        assert_eq!(answer.status, 404);
    }
    let answer = post_msg(
        url,
        "/v1/invites/redeem",
        Some(&guesser.token),
        &quartier_protocol::RedeemInvite {
            code: "00000000000000000000000000000001".into(),
        },
    )
    .await;
    assert_eq!(answer.status, 429);

    // Every endpoint, per device: past 30 requests in a minute the owner is refused, the
    // guesser is not.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let answer = post_msg(
            url,
            "/v1/spaces",
            Some(&owner.token),
            &CreateSpace {
                space: Uuid::now_v7(),
            },
        )
        .await;
        statuses.push(answer.status);
    }
    assert!(statuses[..30].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[30..].contains(&429), "{statuses:?}");
    let answer = post_msg(
        url,
        "/v1/spaces",
        Some(&guesser.token),
        &CreateSpace {
            space: Uuid::now_v7(),
        },
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_waits_as_long_as_retry_after_says() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[("QUARTIER_RATE_PER_DEVICE_PER_MINUTE", "30")],
    );
    let device = Device::register(&server.url, "Eilig").await;
    let mut refused = None;
    for _ in 0..40 {
        match device.client.sync_now(&device.store, |_| {}).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let Some(Error::RateLimited { retry_after_secs }) = refused else {
        panic!("expected RateLimited, got {refused:?}");
    };
    assert!(
        (1..=2).contains(&retry_after_secs),
        "a token every 2 s: {retry_after_secs}"
    );
    // Until then the client sends nothing: even a request of another kind is held back.
    let started = Instant::now();
    let again = device
        .client
        .create_space(&device.store, quartier_core::model::SpaceId::new())
        .await;
    assert!(matches!(again, Err(Error::RateLimited { .. })), "{again:?}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "answered without asking the server"
    );
    // After the wait it syncs again.
    tokio::time::sleep(Duration::from_secs(retry_after_secs)).await;
    device
        .client
        .sync_now(&device.store, |_| {})
        .await
        .expect("sync after the wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_proves_possession_of_a_strong_key() {
    let server = Server::start();
    let url = &server.url;
    let register =
        |request: RegisterDevice| async move { post_msg(url, "/v1/devices", None, &request).await };

    // A device of before the challenge: a clear upgrade error.
    let key = SigningKey::from_bytes(&[1; 32]);
    let answer = register(RegisterDevice {
        public_key: key.verifying_key().to_bytes().to_vec(),
        display_name: None,
        challenge: None,
        signature: None,
        link_code: None,
        person: None,
    })
    .await;
    assert_eq!(answer.status, 426);
    let error = answer.error_body().expect("ErrorBody");
    assert_eq!(error.code, "upgrade_required");
    assert!(error.message.contains("challenge"), "{}", error.message);

    // The all-zero key and another small-order point: weak, refused.
    for weak in [[0u8; 32], {
        let mut k = [0u8; 32];
        k[0] = 1; // the identity point
        k
    }] {
        let challenge = challenge(url).await;
        let answer = register(RegisterDevice {
            public_key: weak.to_vec(),
            display_name: None,
            challenge: Some(challenge),
            signature: Some(vec![0; 64]),
            link_code: None,
            person: None,
        })
        .await;
        assert_eq!(answer.status, 400, "{:?}", answer.error_body());
        assert!(answer.error_body().expect("body").message.contains("weak"));
    }

    // Signed by another key than the one registered.
    let other = SigningKey::from_bytes(&[2; 32]);
    let mut request = signed_registration(url, &other, None).await;
    request.public_key = key.verifying_key().to_bytes().to_vec();
    assert_eq!(register(request).await.status, 403);

    // A challenge the server never gave, and one used twice.
    let mut request = signed_registration(url, &key, None).await;
    let mut forged = request.clone();
    forged.challenge = Some(vec![5; 32]);
    forged.signature = Some(
        key.sign(&quartier_protocol::signing::registration_signing_payload(
            &[5; 32],
            &forged.public_key,
        ))
        .to_bytes()
        .to_vec(),
    );
    assert_eq!(register(forged).await.status, 403);
    let first = register(request.clone()).await;
    assert_eq!(first.status, 200, "{:?}", first.error_body());
    let _: DeviceRegistered = first.decode();
    request.display_name = Some("again".into());
    assert_eq!(register(request).await.status, 403, "a challenge registers once");

    // The same public key, with a fresh challenge: refused.
    let answer = register(signed_registration(url, &key, None).await).await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.error_body().expect("body").code, "conflict");

    // Display names: no NUL, no controls, no direction overrides, bounded.
    for name in ["Nina\0", "Nina\u{202E}txt.exe", "a\nb", &"x".repeat(65)] {
        let key = SigningKey::from_bytes(&[3; 32]);
        let answer = register(signed_registration(url, &key, Some(name)).await).await;
        assert_eq!(answer.status, 400, "{name:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_tells_nothing_about_other_persons_devices() {
    let server = Server::start();
    let url = &server.url;
    let me = RawDevice::register(url, "Ich").await;
    let other = RawDevice::register(url, "Andere").await;
    let client = http();
    let mut answers = Vec::new();
    for device in [other.device, Uuid::now_v7()] {
        let answer = send_raw(
            &client,
            Method::DELETE,
            &format!("{url}/v1/devices/{device}"),
            Some(&format!("Bearer {}", me.token)),
            vec![],
        )
        .await;
        let body = answer.error_body().expect("ErrorBody");
        answers.push((answer.status, body.code, body.message));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 404);
    // The other device still works.
    other.sync(url, vec![], vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_coordinator_stays() {
    let server = Server::start();
    let url = &server.url;
    let (coordinator, space) = space_with_coordinator(url).await;
    let leave = coordinator
        .client
        .remove_member(&coordinator.store, space, coordinator.person)
        .await;
    assert!(
        matches!(&leave, Err(Error::Server { status: 409, code, .. }) if code == "conflict"),
        "{leave:?}"
    );
    let demote = coordinator
        .client
        .set_role(&coordinator.store, space, coordinator.person, Role::Resident)
        .await;
    assert!(
        matches!(&demote, Err(Error::Server { status: 409, .. })),
        "{demote:?}"
    );
    // With a second coordinator, the first may step down and leave.
    let second = join(url, &coordinator, space, Role::Coordinator, "Zweite").await;
    coordinator
        .client
        .set_role(&coordinator.store, space, coordinator.person, Role::Volunteer)
        .await
        .expect("step down");
    coordinator
        .client
        .remove_member(&coordinator.store, space, coordinator.person)
        .await
        .expect("leave");
    // Now the second is the last one and cannot be removed by anyone.
    let answer = second
        .client
        .remove_member(&second.store, space, second.person)
        .await;
    assert!(
        matches!(answer, Err(Error::Server { status: 409, .. })),
        "{answer:?}"
    );
    let _ = SetRole { role: Role::Resident };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_lets_only_approved_persons_register_spaces() {
    // A fresh server's own defaults for who may register spaces.
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[("QUARTIER_SPACE_CREATION", "approved")],
    );
    let url = &server.url;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).expect("store");
    let client = SyncClient::new(url).expect("client");
    let account = client.register(&store, Some("Neu")).await.expect("register");
    let space = store
        .create_space(space_meta("Ehrenfeld"), account.person)
        .expect("space")
        .id;
    let refused = client.create_space(&store, space).await;
    assert!(
        matches!(&refused, Err(Error::Server { status: 403, message, .. }) if message.contains("approved")),
        "{refused:?}"
    );
    let out = admin(server.data.path(), &["approve", &account.device.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = admin(server.data.path(), &["persons"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("{}\tapproved", account.person)),
        "{listed}"
    );
    client.create_space(&store, space).await.expect("approved now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_whose_registration_is_refused_reports_its_waiting_changes_until_it_is_approved() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[("QUARTIER_SPACE_CREATION", "approved")],
    );
    let url = &server.url;
    let device = Device::register(url, "Neu").await;
    // Created while offline, written in, then the server (restricted) refuses to register it.
    let offline = SyncClient::new("http://127.0.0.1:9").expect("client");
    let space = offline
        .create_shared_space(&device.store, space_meta("Ehrenfeld"))
        .await
        .expect("created offline")
        .space
        .id;
    device.post(space, "Erster Beitrag", quartier_core::model::Audience::Everyone);
    let report = device.sync().await;
    assert_eq!(report.pushed, 0);
    assert_eq!(
        report.deferred.len(),
        2,
        "the space and its post wait: {report:?}"
    );
    assert!(report
        .deferred
        .iter()
        .all(|d| d.reason == quartier_core::sync::SPACE_NOT_REGISTERED && !d.overdue));
    // Approved by the operator: the next sync registers the space and pushes both.
    let account = device.store.account().expect("account").expect("registered");
    let out = admin(server.data.path(), &["approve", &account.device.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = device.sync().await;
    assert_eq!(report.pushed, 2, "{report:?}");
    assert!(report.deferred.is_empty(), "{:?}", report.deferred);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_can_close_registration_and_restrict_invites() {
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[("QUARTIER_INVITE_CREATION", "approved")],
    );
    let url = &server.url;
    let (coordinator, space) = space_with_coordinator(url).await;
    let expires = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let refused = coordinator
        .client
        .create_invite(&coordinator.store, space, Role::Resident, expires, 1)
        .await;
    assert!(
        matches!(&refused, Err(Error::Server { status: 403, .. })),
        "{refused:?}"
    );
    let out = admin(server.data.path(), &["approve", &coordinator.person.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    coordinator.invite(space, Role::Resident).await;

    let closed = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[("QUARTIER_REGISTRATION", "closed")],
    );
    let answer = post_raw(&closed.url, "/v1/devices/challenge", None, vec![]).await;
    assert_eq!(answer.status, 403);
    assert!(answer
        .error_body()
        .expect("body")
        .message
        .contains("registration"));
}

#[test]
fn admin_on_a_mistyped_data_folder_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let typo = dir.path().join("quartier-dta");
    let out = admin(&typo, &["stats"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no quartier-server database"), "{stderr}");
    assert!(!typo.exists(), "admin created {}", typo.display());
}

#[test]
fn serve_help_shows_the_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_quartier-server"))
        .args(["serve", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    for default in [
        "[default: 127.0.0.1:8470]",
        "[default: quartier-data]",
        "[default: approved]",
    ] {
        assert!(help.contains(default), "{default} missing:\n{help}");
    }
}

/// A device whose client trusts `root` (PEM).
async fn tls_device(url: &str, root: &str, name: &str) -> Device {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).expect("store");
    let client = SyncClient::builder(url)
        .add_root_certificate_pem(root.as_bytes())
        .expect("root")
        .build()
        .expect("client");
    let account = client
        .register(&store, Some(name))
        .await
        .expect("register over HTTPS");
    Device {
        dir,
        store,
        client,
        person: account.person,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sync_over_https_and_a_renewed_certificate_is_loaded_on_sighup() {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let first = rcgen::generate_simple_self_signed(names.clone()).expect("certificate");
    let tls = tempfile::tempdir().expect("dir");
    let (cert, key) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    std::fs::write(&cert, first.cert.pem()).expect("write");
    std::fs::write(&key, first.signing_key.serialize_pem()).expect("write");
    let server = Server::start_with(
        tempfile::tempdir().expect("dir"),
        &[
            ("QUARTIER_TLS_CERT", cert.to_str().expect("path")),
            ("QUARTIER_TLS_KEY", key.to_str().expect("path")),
        ],
    );
    let url = server.url.clone();
    assert!(url.starts_with("https://"), "{url}");
    let root = first.cert.pem();

    // A coordinator posts, a resident joins and receives it, all over HTTPS.
    let coordinator = tls_device(&url, &root, "Koordination").await;
    let space = coordinator
        .store
        .create_space(space_meta("Kalk"), coordinator.person)
        .expect("space")
        .id;
    coordinator
        .client
        .create_space(&coordinator.store, space)
        .await
        .expect("register space");
    let post = coordinator.post(space, "Flohmarkt", quartier_core::model::Audience::Everyone);
    // With a recording: media moves over the same HTTPS, trusting the same root.
    let recording = coordinator
        .store
        .import_media_bytes(
            &wav_bytes(4_000, |data| data.fill(7)),
            &quartier_core::media::ImportOptions::default(),
        )
        .expect("import");
    coordinator
        .store
        .update_item(
            post.id,
            &quartier_core::model::ItemPatch {
                media: Some(vec![recording.reference.clone()]),
                ..Default::default()
            },
            coordinator.person,
        )
        .expect("attach");
    coordinator.sync().await;
    let uploaded = TransferQueue::new(&coordinator.client)
        .expect("queue")
        .run(&coordinator.store, |_| {})
        .await
        .expect("upload over HTTPS");
    assert_eq!(uploaded.uploaded, vec![recording.reference.hash.clone()]);
    let code = coordinator.invite(space, Role::Resident).await;
    let resident = tls_device(&url, &root, "Nachbarin").await;
    resident
        .client
        .redeem_invite(&resident.store, &code)
        .await
        .expect("redeem");
    resident.sync().await;
    assert_eq!(
        titles(&resident.store, space, resident.viewer(Role::Resident)),
        vec!["Flohmarkt".to_owned()]
    );
    let downloaded = TransferQueue::new(&resident.client)
        .expect("queue")
        .run(&resident.store, |_| {})
        .await
        .expect("download over HTTPS");
    assert_eq!(downloaded.downloaded, vec![recording.reference.hash.clone()]);
    // Plain HTTP to an HTTPS port gets nowhere.
    let plain = SyncClient::new(&url.replacen("https://", "http://", 1)).expect("loopback");
    assert!(plain.sync_now(&resident.store, |_| {}).await.is_err());

    // A renewed certificate: written over the files, loaded on SIGHUP.
    let second = rcgen::generate_simple_self_signed(names).expect("certificate");
    std::fs::write(&cert, second.cert.pem()).expect("write");
    std::fs::write(&key, second.signing_key.serialize_pem()).expect("write");
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let renewed = second.cert.pem();
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(10) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).expect("store");
        let client = SyncClient::builder(&url)
            .add_root_certificate_pem(renewed.as_bytes())
            .expect("root")
            .build()
            .expect("client");
        match client.register(&store, None).await {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.is_none(), "the renewed certificate was not served: {last:?}");
    // The server is the same process: the old devices' data is there, and a client that only
    // trusts the old certificate no longer connects.
    let stale = tls_device_result(&url, &root).await;
    assert!(matches!(stale, Err(Error::Offline(_))), "{stale:?}");
}

async fn tls_device_result(url: &str, root: &str) -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("phone.db"), StoreOptions::default()).expect("store");
    let client = SyncClient::builder(url)
        .add_root_certificate_pem(root.as_bytes())?
        .build()?;
    client.register(&store, None).await.map(|_| ())
}
