//! The people of a space, against the real server process: members see each other by the names
//! they chose, in a list by role that each sync keeps current on the device (offline too); a
//! name is checked on the device and on the server; only members may list a space's members.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::sync::Member;
use quartier_core::Error;
use quartier_protocol::{DisplayName, MemberInfo, MemberList};
use reqwest::Method;

fn listed(device: &Device, space: SpaceId) -> Vec<(Option<String>, Role)> {
    device
        .store
        .members(space)
        .expect("members")
        .into_iter()
        .map(|m| (m.display_name, m.role))
        .collect()
}

fn named(name: &str, role: Role) -> (Option<String>, Role) {
    (Some(name.to_owned()), role)
}

async fn get_members(url: &str, space: SpaceId, token: &str) -> RawAnswer {
    send_raw(
        &http(),
        Method::GET,
        &format!("{url}/v1/spaces/{space}/members"),
        Some(&format!("Bearer {token}")),
        vec![],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_each_other_by_their_names_and_a_new_name_reaches_them_on_their_next_sync() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    let resident = join(&url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let caseworker = join(&url, &coordinator, space, Role::Caseworker, "Beratung Nord").await;
    let volunteer = join(&url, &coordinator, space, Role::Volunteer, "Helfer").await;
    for device in [&coordinator, &resident, &caseworker, &volunteer] {
        device.sync().await;
    }
    let everyone = vec![
        named("Koordination", Role::Coordinator),
        named("Beratung Nord", Role::Caseworker),
        named("Helfer", Role::Volunteer),
        named("Nachbarin", Role::Resident),
    ];
    for device in [&coordinator, &resident, &caseworker, &volunteer] {
        assert_eq!(
            listed(device, space),
            everyone,
            "every member sees the list by role"
        );
    }
    // An item's author is shown by name.
    let post = resident.post(space, "Flohmarkt", Audience::Everyone);
    resident.sync().await;
    coordinator.sync().await;
    let author = coordinator
        .store
        .member(space, post.author)
        .expect("member")
        .expect("the author is a member");
    assert_eq!(author.display_name.as_deref(), Some("Nachbarin"));
    assert_eq!(author.role, Role::Resident);
    // A person who is not a member of this space is no member.
    let stranger = Device::register(&url, "Fremd").await;
    assert_eq!(
        coordinator.store.member(space, stranger.person).expect("member"),
        None
    );

    // A pseudonym, trimmed; the resident's own device shows it at once.
    let stored = resident
        .client
        .set_display_name(&resident.store, Some("  Mondkatze "))
        .await
        .expect("rename");
    assert_eq!(stored.as_deref(), Some("Mondkatze"));
    assert!(listed(&resident, space).contains(&named("Mondkatze", Role::Resident)));
    assert!(
        listed(&coordinator, space).contains(&named("Nachbarin", Role::Resident)),
        "others see it after their next sync, not before"
    );
    let report = coordinator.sync().await;
    assert_eq!(report.received, 0, "a new name is no document change");
    assert!(listed(&coordinator, space).contains(&named("Mondkatze", Role::Resident)));

    // A role change and a departure reach the list too; a removed name goes last in its role.
    coordinator
        .client
        .set_role(&coordinator.store, space, volunteer.person, Role::Coordinator)
        .await
        .expect("promote");
    coordinator
        .client
        .remove_member(&coordinator.store, space, caseworker.person)
        .await
        .expect("remove");
    let nameless = join(&url, &coordinator, space, Role::Resident, "Zeitweise").await;
    nameless
        .client
        .set_display_name(&nameless.store, None)
        .await
        .expect("no name");
    resident.sync().await;
    assert_eq!(
        listed(&resident, space),
        vec![
            named("Helfer", Role::Coordinator),
            named("Koordination", Role::Coordinator),
            named("Mondkatze", Role::Resident),
            (None, Role::Resident),
        ]
    );
    assert_eq!(
        resident.store.members(space).expect("members")[3],
        Member {
            person_id: nameless.person,
            display_name: None,
            role: Role::Resident
        }
    );

    // The list is the device's own copy: it stays when the server is gone.
    drop(server.kill());
    assert_eq!(listed(&resident, space).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_loses_the_list_with_the_space() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    let resident = join(&url, &coordinator, space, Role::Resident, "Nachbarin").await;
    resident.sync().await;
    assert_eq!(listed(&resident, space).len(), 2);
    coordinator
        .client
        .remove_member(&coordinator.store, space, resident.person)
        .await
        .expect("remove");
    resident.sync().await;
    assert!(listed(&resident, space).is_empty());
    coordinator.sync().await;
    assert_eq!(
        listed(&coordinator, space),
        vec![named("Koordination", Role::Coordinator)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_is_checked_on_the_device_and_on_the_server() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    coordinator.sync().await;
    for bad in [
        "zwei\nZeilen".to_owned(),
        "evil\u{202E}gnp.exe".to_owned(),
        "n".repeat(65),
    ] {
        let result = coordinator
            .client
            .set_display_name(&coordinator.store, Some(&bad))
            .await;
        assert!(
            matches!(
                result,
                Err(Error::Invalid {
                    field: "display_name",
                    ..
                })
            ),
            "{bad:?}: {result:?}"
        );
        // The server refuses it too, whoever sends it.
        let answer = send_raw(
            &http(),
            Method::PUT,
            &format!("{url}/v1/me/display-name"),
            Some(&format!(
                "Bearer {}",
                coordinator
                    .store
                    .account()
                    .expect("account")
                    .expect("registered")
                    .token()
            )),
            quartier_protocol::encode(&DisplayName {
                display_name: Some(bad.clone()),
            })
            .expect("encode"),
        )
        .await;
        assert_eq!(answer.status, 400, "{bad:?}");
        assert_eq!(answer.error_body().expect("error body").code, "bad_request");
    }
    // Also at registration, before any request.
    let dir = tempfile::tempdir().expect("dir");
    let store = quartier_core::Store::open(dir.path().join("p.db"), Default::default()).expect("store");
    let result = coordinator.client.register(&store, Some("a\0b")).await;
    assert!(matches!(result, Err(Error::Invalid { .. })), "{result:?}");
    // Nothing changed, and no credentials, no change.
    assert_eq!(
        listed(&coordinator, space),
        vec![named("Koordination", Role::Coordinator)]
    );
    let answer = send_raw(
        &http(),
        Method::PUT,
        &format!("{url}/v1/me/display-name"),
        None,
        quartier_protocol::encode(&DisplayName {
            display_name: Some("Hijack".into()),
        })
        .expect("encode"),
    )
    .await;
    assert_eq!(answer.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_list_a_space_and_they_see_names_and_roles_only() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    let resident = join(&url, &coordinator, space, Role::Resident, "Nachbarin").await;
    let caseworker = join(&url, &coordinator, space, Role::Caseworker, "Beratung").await;
    let token = |d: &Device| {
        d.store
            .account()
            .expect("account")
            .expect("registered")
            .token()
            .to_owned()
    };
    let answer = get_members(&url, space, &token(&resident)).await;
    assert_eq!(answer.status, 200);
    let list: MemberList = answer.decode();
    assert_eq!(
        list.members,
        vec![
            MemberInfo {
                person: coordinator.person.as_uuid(),
                display_name: Some("Koordination".into()),
                role: Role::Coordinator
            },
            MemberInfo {
                person: caseworker.person.as_uuid(),
                display_name: Some("Beratung".into()),
                role: Role::Caseworker
            },
            MemberInfo {
                person: resident.person.as_uuid(),
                display_name: Some("Nachbarin".into()),
                role: Role::Resident
            },
        ]
    );
    // A stranger, a space that does not exist (same answer: no existence oracle), a removed
    // member, no credentials.
    let stranger = Device::register(&url, "Fremd").await;
    let nowhere = SpaceId::new();
    for (what, answer, status) in [
        (
            "a stranger",
            get_members(&url, space, &token(&stranger)).await,
            403,
        ),
        (
            "an unknown space",
            get_members(&url, nowhere, &token(&resident)).await,
            403,
        ),
    ] {
        assert_eq!(answer.status, status, "{what}");
        assert_eq!(
            answer.error_body().expect("error body").code,
            "forbidden",
            "{what}"
        );
    }
    resident
        .client
        .remove_member(&resident.store, space, resident.person)
        .await
        .expect("leave");
    let answer = get_members(&url, space, &token(&resident)).await;
    assert_eq!(answer.status, 403, "a member who left");
    let answer = send_raw(
        &http(),
        Method::GET,
        &format!("{url}/v1/spaces/{space}/members"),
        None,
        vec![],
    )
    .await;
    assert_eq!(answer.status, 401);
}

/// An invite link naming another server than the one a device registered with never makes
/// the device hand that server its bearer token: redeeming is refused on the device, before any
/// request (the other server here sees nothing: a listener that accepts no connection), unless
/// the client declares that its address reaches the device's server (a proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_never_sends_its_credential_to_another_server() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    let code = coordinator.invite(space, Role::Resident).await;
    let resident = Device::register(&url, "Nachbarin").await;

    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    elsewhere.set_nonblocking(true).expect("nonblocking");
    let other = format!("http://{}", elsewhere.local_addr().expect("address"));
    let phishing = quartier_core::sync::SyncClient::new(&other).expect("client");
    let refused = |e: Error| matches!(e, Error::Invalid { field, .. } if field == "server address");
    let e = phishing
        .redeem_invite(&resident.store, &code)
        .await
        .expect_err("another server");
    assert!(refused(e), "redeem");
    assert!(elsewhere.accept().is_err(), "the other server was contacted");

    // Through a proxy declared to reach the device's server, the same code works.
    let proxy = common::proxy::Proxy::start(&url).await;
    let through = quartier_core::sync::SyncClient::builder(&proxy.url)
        .registered_at(&url)
        .build()
        .expect("client");
    through
        .redeem_invite(&resident.store, &code)
        .await
        .expect("redeem through the proxy");
}

/// Setting the name one already has changes nothing: no member change for every device of
/// every space the person is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_name_again_is_no_member_change() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, _space) = space_with_coordinator(&url).await;
    let roster = || -> i64 {
        rusqlite::Connection::open(server.data.path().join("quartier-server.db"))
            .expect("db")
            .query_row("SELECT coalesce(max(roster_seq), 0) FROM members", [], |r| {
                r.get(0)
            })
            .expect("roster")
    };
    let client = &coordinator.client;
    client
        .set_display_name(&coordinator.store, Some("Koordination Nord"))
        .await
        .expect("rename");
    let after_rename = roster();
    client
        .set_display_name(&coordinator.store, Some("Koordination Nord"))
        .await
        .expect("same name");
    assert_eq!(
        roster(),
        after_rename,
        "the same name again bumped the member list"
    );
}
