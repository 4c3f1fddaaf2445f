//! Malformed, hostile and unauthorised requests against a real `quartier-server` process: each
//! gets a 4xx with an `ErrorBody` (a stable code and a clear message), and the server keeps
//! serving everyone else.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_protocol::{
    CreateInvite, CreateSpace, ErrorBody, Record, RedeemInvite, RegisterDevice, SetRole, SpaceCursor,
    SyncRequest, PROTOCOL_VERSION,
};
use rand::{Rng, RngCore, SeedableRng};
use reqwest::Method;
use uuid::Uuid;

/// Default `max_body_bytes` of the server.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Collects every answer that is not the expected refusal, to report them all at once.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
    count: usize,
}

impl Checks {
    /// `answer` must have one of `statuses`, an `ErrorBody` with one of `codes` and a message.
    fn refused(
        &mut self,
        what: &str,
        answer: &RawAnswer,
        statuses: &[u16],
        codes: &[&str],
    ) -> Option<ErrorBody> {
        self.count += 1;
        if !statuses.contains(&answer.status) {
            self.failures.push(format!(
                "{what}: HTTP {} (expected {statuses:?}), body {:?}",
                answer.status,
                answer
                    .error_body()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .unwrap_or_else(
                        || String::from_utf8_lossy(&answer.body[..answer.body.len().min(120)]).into()
                    )
            ));
            return None;
        }
        let Some(error) = answer.error_body() else {
            self.failures.push(format!(
                "{what}: HTTP {} without an ErrorBody: {:?}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(120)])
            ));
            return None;
        };
        if !codes.contains(&error.code.as_str()) {
            self.failures.push(format!(
                "{what}: code {:?} (expected one of {codes:?}), message {:?}",
                error.code, error.message
            ));
        }
        if error.message.trim().is_empty() {
            self.failures
                .push(format!("{what}: code {} with an empty message", error.code));
        }
        Some(error)
    }
}

fn sync_request(protocol: u32, cursors: Vec<SpaceCursor>, push: Vec<Record>) -> SyncRequest {
    SyncRequest {
        protocol,
        cursors,
        push,
        budget_bytes: 64 * 1024,
        accepts: Vec::new(),
        counselling: None,
        credentials: None,
        moderation: None,
        help: None,
    }
}

fn encode<T: serde::Serialize>(message: &T) -> Vec<u8> {
    quartier_protocol::encode(message).expect("encode")
}

fn invite_request(role: Role, in_ms: i64, max_uses: u32) -> CreateInvite {
    CreateInvite {
        role,
        expires_at_ms: chrono::Utc::now().timestamp_millis() + in_ms,
        max_uses,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_clear_4xx_and_the_server_keeps_serving() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    owner.sync().await;
    let owner_token = owner
        .store
        .account()
        .expect("account")
        .expect("registered")
        .token()
        .to_owned();
    let volunteer = RawDevice::register(&url, "Helga").await;
    let code = owner.invite(space, Role::Volunteer).await;
    volunteer.redeem(&url, &code).await;
    let stranger = RawDevice::register(&url, "Fremd").await;
    let token = volunteer.token.clone();
    let mut checks = Checks::default();
    let valid_sync = encode(&sync_request(
        PROTOCOL_VERSION,
        vec![SpaceCursor {
            space: space.as_uuid(),
            after: None,
            members_after: None,
            signatures_after: None,
        }],
        vec![],
    ));
    assert_eq!(
        post_raw(&url, "/v1/sync", Some(&token), valid_sync.clone())
            .await
            .status,
        200,
        "the well-formed request the malformed ones derive from"
    );

    // ---- Bodies of /v1/sync (authorised, so the body is what is judged). ----
    let sync = |body: Vec<u8>| {
        let url = url.clone();
        let token = token.clone();
        async move { post_raw(&url, "/v1/sync", Some(&token), body).await }
    };
    let answer = sync(b"hello, this is not zstd".to_vec()).await;
    checks.refused(
        "sync: plain bytes (no compression)",
        &answer,
        &[400],
        &["malformed"],
    );
    let answer = sync(vec![]).await;
    checks.refused("sync: empty body", &answer, &[400], &["malformed"]);
    // The same space named many times (a first member list each, for nothing) is refused.
    let same = SpaceCursor {
        space: space.as_uuid(),
        after: None,
        members_after: Some(0),
        signatures_after: None,
    };
    let answer = sync(encode(&sync_request(PROTOCOL_VERSION, vec![same; 500], vec![]))).await;
    checks.refused(
        "sync: one space named 500 times",
        &answer,
        &[400],
        &["bad_request"],
    );
    for cut in [4, valid_sync.len() / 2, valid_sync.len() - 1] {
        let answer = sync(valid_sync[..cut].to_vec()).await;
        checks.refused(
            &format!("sync: zstd body truncated to {cut} bytes"),
            &answer,
            &[400],
            &["malformed"],
        );
    }
    let answer = sync(zstd::encode_all(&b"\xff\xfe\xfd garbage, not CBOR"[..], 3).expect("zstd")).await;
    checks.refused("sync: valid zstd of garbage", &answer, &[400], &["malformed"]);
    let answer = sync(encode(&"a CBOR string, not a request")).await;
    checks.refused(
        "sync: valid CBOR of the wrong shape",
        &answer,
        &[400],
        &["malformed"],
    );
    let answer = sync(encode(&RegisterDevice {
        public_key: vec![1; 32],
        display_name: None,
        challenge: None,
        signature: None,
        link_code: None,
        person: None,
    }))
    .await;
    checks.refused("sync: another message type", &answer, &[400], &["malformed"]);
    for version in [0, 2, u32::MAX] {
        let answer = sync(encode(&sync_request(version, vec![], vec![]))).await;
        if let Some(error) = checks.refused(
            &format!("sync: protocol version {version}"),
            &answer,
            &[409],
            &["protocol_version"],
        ) {
            if !error.protocol_versions.contains(&PROTOCOL_VERSION) {
                checks.failures.push(format!(
                    "sync: protocol version {version}: the answer names versions {:?}, not {PROTOCOL_VERSION}",
                    error.protocol_versions
                ));
            }
        }
    }
    let answer = sync(vec![0x28; MAX_BODY + 1]).await;
    checks.refused("sync: body over max_body_bytes", &answer, &[413], &["too_large"]);
    let bomb = zstd::encode_all(vec![0u8; 17 * 1024 * 1024].as_slice(), 19).expect("bomb");
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {} bytes", bomb.len());
    let answer = sync(bomb).await;
    checks.refused(
        "sync: zstd bomb (inflates past 16 MiB)",
        &answer,
        &[400, 413],
        &["malformed", "too_large"],
    );
    let cbor_bomb = encode(&RegisterDevice {
        public_key: vec![0; 17 * 1024 * 1024],
        display_name: None,
        challenge: None,
        signature: None,
        link_code: None,
        person: None,
    });
    let answer = sync(cbor_bomb).await;
    checks.refused(
        "sync: zstd bomb of valid CBOR",
        &answer,
        &[400, 413],
        &["malformed", "too_large"],
    );
    let answer = sync(encode(&sync_request(
        PROTOCOL_VERSION,
        vec![],
        vec![Record::Unknown; 5_001],
    )))
    .await;
    checks.refused(
        "sync: 5001 records in one push",
        &answer,
        &[400],
        &["bad_request"],
    );
    let many: Vec<SpaceCursor> = (0..501)
        .map(|_| SpaceCursor {
            space: Uuid::now_v7(),
            after: None,
            members_after: None,
            signatures_after: None,
        })
        .collect();
    let answer = sync(encode(&sync_request(PROTOCOL_VERSION, many, vec![]))).await;
    checks.refused("sync: 501 cursors", &answer, &[400], &["bad_request"]);
    let long = "c:".to_owned() + &"9".repeat(10_000);
    for cursor in [
        "",
        "x",
        "c:",
        "c:abc",
        "c:1.5",
        "s:1",
        "s:abc:",
        "s::x",
        "z:1",
        "c:5:admin",
        "c:5:resident:x",
        "s:1:x:nobody",
        long.as_str(),
    ] {
        let answer = sync(encode(&sync_request(
            PROTOCOL_VERSION,
            vec![SpaceCursor {
                space: space.as_uuid(),
                after: Some(cursor.to_owned()),
                members_after: None,
                signatures_after: None,
            }],
            vec![],
        )))
        .await;
        let shown: String = cursor.chars().take(20).collect();
        checks.refused(
            &format!("sync: cursor {shown:?}"),
            &answer,
            &[400],
            &["bad_request"],
        );
    }

    // ---- Credentials. ----
    let space_path = format!("/v1/spaces/{space}/invites");
    let member_path = format!("/v1/spaces/{space}/members/{}", volunteer.person);
    let device_path = format!("/v1/devices/{}", volunteer.device);
    let authed: Vec<(Method, String, Vec<u8>)> = vec![
        (Method::POST, "/v1/sync".into(), valid_sync.clone()),
        (
            Method::POST,
            "/v1/spaces".into(),
            encode(&CreateSpace {
                space: Uuid::now_v7(),
            }),
        ),
        (
            Method::POST,
            space_path.clone(),
            encode(&invite_request(Role::Resident, 60_000, 1)),
        ),
        (
            Method::POST,
            "/v1/invites/redeem".into(),
            encode(&RedeemInvite { code: "abc".into() }),
        ),
        (
            Method::PUT,
            member_path.clone(),
            encode(&SetRole {
                role: Role::Coordinator,
            }),
        ),
        (Method::DELETE, member_path.clone(), vec![]),
        (Method::DELETE, device_path.clone(), vec![]),
    ];
    let unknown = format!("Bearer {}", "0".repeat(64));
    let lowercase_garbage = "bearer nonsense".to_owned();
    let basic = "Basic dXNlcjpwYXNz".to_owned();
    let empty_bearer = "Bearer ".to_owned();
    let client = http();
    for (method, path, body) in &authed {
        for auth in [
            None,
            Some(unknown.as_str()),
            Some(basic.as_str()),
            Some(empty_bearer.as_str()),
            Some(lowercase_garbage.as_str()),
            Some(token.as_str()), // the token without its scheme
        ] {
            let answer = send_raw(
                &client,
                method.clone(),
                &format!("{url}{path}"),
                auth,
                body.clone(),
            )
            .await;
            let shown = auth.map(|a| a.chars().take(14).collect::<String>());
            checks.refused(
                &format!("{method} {path} with Authorization {shown:?}"),
                &answer,
                &[401],
                &["unauthorized"],
            );
        }
    }
    // A header value that is not even text.
    let answer = client
        .post(format!("{url}/v1/sync"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").expect("opaque header"),
        )
        .body(valid_sync.clone())
        .send()
        .await
        .expect("answer");
    let answer = RawAnswer {
        status: answer.status().as_u16(),
        body: answer.bytes().await.expect("body").to_vec(),
    };
    checks.refused(
        "sync with a non-text Authorization",
        &answer,
        &[401],
        &["unauthorized"],
    );

    // ---- Invites. ----
    let redeem = |token: String, code: String| {
        let url = url.clone();
        async move { post_msg(&url, "/v1/invites/redeem", Some(&token), &RedeemInvite { code }).await }
    };
    for code in [
        "",
        "nope",
        &"f".repeat(32),
        &"x".repeat(129),
        "../../etc/passwd",
        "'; DROP TABLE invites; --",
    ] {
        let answer = redeem(stranger.token.clone(), code.to_owned()).await;
        let shown: String = code.chars().take(20).collect();
        checks.refused(
            &format!("redeem bad invite code {shown:?}"),
            &answer,
            &[400, 404],
            &["bad_request", "not_found"],
        );
    }
    // Used up: one use, two people.
    let once = post_msg(
        &url,
        &space_path,
        Some(&owner_token),
        &invite_request(Role::Resident, 3_600_000, 1),
    )
    .await;
    assert_eq!(once.status, 200, "{:?}", once.error_body());
    let once: quartier_protocol::InviteCreated = once.decode();
    let late = RawDevice::register(&url, "Zu spät").await;
    let first = redeem(stranger.token.clone(), once.code.clone()).await;
    assert_eq!(first.status, 200, "the first use: {:?}", first.error_body());
    let answer = redeem(late.token.clone(), once.code.clone()).await;
    checks.refused("redeem a used-up invite", &answer, &[410], &["gone"]);
    // Expired.
    let brief = post_msg(
        &url,
        &space_path,
        Some(&owner_token),
        &invite_request(Role::Resident, 800, 5),
    )
    .await;
    assert_eq!(brief.status, 200, "{:?}", brief.error_body());
    let brief: quartier_protocol::InviteCreated = brief.decode();
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let answer = redeem(late.token.clone(), brief.code).await;
    checks.refused("redeem an expired invite", &answer, &[410], &["gone"]);
    // Only coordinators invite.
    let answer = post_msg(
        &url,
        &space_path,
        Some(&token),
        &invite_request(Role::Coordinator, 60_000, 1),
    )
    .await;
    checks.refused("a volunteer creates an invite", &answer, &[403], &["forbidden"]);
    let answer = post_msg(
        &url,
        &space_path,
        Some(&late.token),
        &invite_request(Role::Resident, 60_000, 1),
    )
    .await;
    checks.refused("a non-member creates an invite", &answer, &[403], &["forbidden"]);
    let answer = post_msg(
        &url,
        &format!("/v1/spaces/{}/invites", Uuid::now_v7()),
        Some(&owner_token),
        &invite_request(Role::Resident, 60_000, 1),
    )
    .await;
    checks.refused(
        "an invite to a space that does not exist",
        &answer,
        &[403, 404],
        &["forbidden", "not_found"],
    );
    for (what, request) in [
        ("expired already", invite_request(Role::Resident, -1_000, 1)),
        (
            "valid for a year",
            invite_request(Role::Resident, 365 * 86_400_000, 1),
        ),
        ("zero uses", invite_request(Role::Resident, 60_000, 0)),
        (
            "a million uses",
            invite_request(Role::Resident, 60_000, 1_000_000),
        ),
    ] {
        let answer = post_msg(&url, &space_path, Some(&owner_token), &request).await;
        checks.refused(&format!("an invite {what}"), &answer, &[400], &["bad_request"]);
    }
    let answer = post_raw(&url, &space_path, Some(&owner_token), b"not an invite".to_vec()).await;
    checks.refused(
        "an invite request that is not zstd",
        &answer,
        &[400],
        &["malformed"],
    );

    // ---- Devices, spaces, members. ----
    for (what, request) in [
        (
            "a 31-byte key",
            RegisterDevice {
                public_key: vec![9; 31],
                display_name: None,
                challenge: None,
                signature: None,
                link_code: None,
                person: None,
            },
        ),
        (
            "an empty key",
            RegisterDevice {
                public_key: vec![],
                display_name: None,
                challenge: None,
                signature: None,
                link_code: None,
                person: None,
            },
        ),
        (
            "a 300-byte name",
            RegisterDevice {
                public_key: volunteer.key.verifying_key().to_bytes().to_vec(),
                display_name: Some("n".repeat(300)),
                challenge: None,
                signature: None,
                link_code: None,
                person: None,
            },
        ),
    ] {
        let answer = post_msg(&url, "/v1/devices", None, &request).await;
        checks.refused(
            &format!("register with {what}"),
            &answer,
            &[400],
            &["bad_request"],
        );
    }
    let answer = post_raw(&url, "/v1/devices", None, vec![0xde, 0xad, 0xbe, 0xef]).await;
    checks.refused("register with garbage", &answer, &[400], &["malformed"]);
    let answer = send_raw(
        &client,
        Method::DELETE,
        &format!("{url}{device_path}"),
        Some(&format!("Bearer {}", stranger.token)),
        vec![],
    )
    .await;
    // The same answer as for a device that does not exist (no existence oracle).
    checks.refused("revoke another person's device", &answer, &[404], &["not_found"]);
    let answer = send_raw(
        &client,
        Method::DELETE,
        &format!("{url}/v1/devices/{}", Uuid::now_v7()),
        Some(&format!("Bearer {}", stranger.token)),
        vec![],
    )
    .await;
    checks.refused(
        "revoke a device that does not exist",
        &answer,
        &[404],
        &["not_found"],
    );
    let answer = post_msg(
        &url,
        "/v1/spaces",
        Some(&stranger.token),
        &CreateSpace {
            space: space.as_uuid(),
        },
    )
    .await;
    checks.refused("register someone else's space id", &answer, &[409], &["conflict"]);
    let answer = send_raw(
        &client,
        Method::PUT,
        &format!("{url}{member_path}"),
        Some(&format!("Bearer {token}")),
        encode(&SetRole {
            role: Role::Coordinator,
        }),
    )
    .await;
    checks.refused(
        "a volunteer makes themselves coordinator",
        &answer,
        &[403],
        &["forbidden"],
    );
    let answer = send_raw(
        &client,
        Method::PUT,
        &format!("{url}/v1/spaces/{space}/members/{}", late.person),
        Some(&format!("Bearer {owner_token}")),
        encode(&SetRole {
            role: Role::Volunteer,
        }),
    )
    .await;
    checks.refused("set the role of a non-member", &answer, &[404], &["not_found"]);
    let answer = send_raw(
        &client,
        Method::DELETE,
        &format!("{url}/v1/spaces/{space}/members/{}", owner.person),
        Some(&format!("Bearer {token}")),
        vec![],
    )
    .await;
    checks.refused(
        "a volunteer removes the coordinator",
        &answer,
        &[403],
        &["forbidden"],
    );
    // Ids in paths that are not ids.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/spaces/not-a-uuid/invites".to_owned(),
            encode(&invite_request(Role::Resident, 60_000, 1)),
        ),
        (
            Method::PUT,
            format!("/v1/spaces/{space}/members/42"),
            encode(&SetRole {
                role: Role::Volunteer,
            }),
        ),
        (Method::DELETE, "/v1/devices/%00%ff".to_owned(), vec![]),
    ] {
        let answer = send_raw(
            &client,
            method.clone(),
            &format!("{url}{path}"),
            Some(&format!("Bearer {owner_token}")),
            body,
        )
        .await;
        checks.refused(&format!("{method} {path}"), &answer, &[400], &["bad_request"]);
    }
    // Routes and methods that do not exist.
    let answer = send_raw(
        &client,
        Method::POST,
        &format!("{url}/v2/sync"),
        None,
        valid_sync.clone(),
    )
    .await;
    checks.refused("POST /v2/sync", &answer, &[404], &["not_found"]);
    let answer = send_raw(&client, Method::GET, &format!("{url}/v1/sync"), None, vec![]).await;
    checks.refused("GET /v1/sync", &answer, &[405], &["method_not_allowed"]);

    // ---- Random bytes, seeded: pure garbage, garbage behind a zstd magic number, and mutated
    // well-formed requests. ----
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5175_6172_7469_6572);
    let valid_invite = encode(&invite_request(Role::Resident, 60_000, 1));
    let targets: Vec<(&str, Option<&str>, &[u8])> = vec![
        ("/v1/sync", Some(token.as_str()), valid_sync.as_slice()),
        ("/v1/devices", None, &[]),
        ("/v1/invites/redeem", Some(token.as_str()), &[]),
        (
            space_path.as_str(),
            Some(owner_token.as_str()),
            valid_invite.as_slice(),
        ),
    ];
    let mut server_errors = Vec::new();
    for case in 0..200 {
        let (path, token, template) = targets[case % targets.len()];
        let mutated = case % 3 == 2 && !template.is_empty();
        let body: Vec<u8> = if mutated {
            let mut body = template.to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..body.len());
                body[i] = rng.random();
            }
            if rng.random_bool(0.3) {
                body.truncate(rng.random_range(0..body.len()));
            }
            body
        } else {
            let len = rng.random_range(0..2048);
            let mut body = vec![0u8; len];
            rng.fill_bytes(&mut body);
            if case % 3 == 1 && len >= 4 {
                body[..4].copy_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]);
            }
            body
        };
        let answer = post_raw(&url, path, token, body).await;
        if answer.status >= 500 {
            server_errors.push(format!("case {case} to {path}: HTTP {}", answer.status));
        } else if mutated {
            // A mutation may still be a valid message; it must then be answered normally.
            if answer.status != 200 {
                checks.refused(
                    &format!("random case {case} (mutated) to {path}"),
                    &answer,
                    &[400, 404, 409, 410, 413],
                    &[
                        "malformed",
                        "bad_request",
                        "not_found",
                        "protocol_version",
                        "gone",
                        "too_large",
                    ],
                );
            }
        } else {
            checks.refused(
                &format!("random case {case} to {path}"),
                &answer,
                &[400, 413],
                &["malformed", "too_large"],
            );
        }
    }
    checks.failures.extend(server_errors);

    // ---- The server still serves everyone. ----
    assert!(
        server_alive(&server),
        "the server process exited during the malformed requests"
    );
    let health = client.get(format!("{url}/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.expect("health body"), "ok");
    let reader = join(&url, &owner, space, Role::Resident, "Nach dem Sturm").await;
    let after = owner.post(space, "Alles wieder gut", Audience::Everyone);
    let report = owner.sync().await;
    assert!(report.rejected.is_empty());
    reader.sync().await;
    assert!(
        titles(&reader.store, space, reader.viewer(Role::Resident)).contains(&"Alles wieder gut".to_owned()),
        "a normal sync after the malformed requests delivers {}",
        after.id
    );

    eprintln!("{} malformed requests checked", checks.count);
    assert!(
        checks.failures.is_empty(),
        "{} of {} malformed requests were not refused as expected:\n{}",
        checks.failures.len(),
        checks.count,
        checks.failures.join("\n")
    );
}

fn server_alive(server: &Server) -> bool {
    // `try_wait` needs `&mut`; the process is alive if it answers on its port.
    std::net::TcpStream::connect(server.url.trim_start_matches("http://")).is_ok()
}
