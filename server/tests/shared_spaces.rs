//! Creating a shared space is one call (`SyncClient::create_shared_space`): the space is stored
//! on the device, registered with a real `quartier-server` and pushed, so that an invitee finds
//! it at once. Offline, the space is still created and the next sync registers and pushes it.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::sync::SyncClient;
use quartier_core::Error;

#[tokio::test]
async fn an_invitee_finds_a_space_created_in_one_call() {
    let server = Server::start();
    let coordinator = Device::register(&server.url, "Koordination").await;
    let shared = coordinator
        .client
        .create_shared_space(&coordinator.store, space_meta("Nippes"))
        .await
        .expect("create a shared space");
    let space = shared.space.id;
    let membership = shared.membership.expect("registered with the server");
    assert_eq!(
        (membership.space, membership.person, membership.role),
        (space.as_uuid(), coordinator.person.as_uuid(), Role::Coordinator)
    );
    assert_eq!(
        coordinator.store.outbox_len().expect("outbox"),
        0,
        "the space was pushed"
    );
    // The invitee joins before the coordinator syncs again: the space is there.
    let resident = join(&server.url, &coordinator, space, Role::Resident, "Nachbarin").await;
    resident.sync().await;
    let found = resident.store.space(space).expect("the invitee has the space");
    assert_eq!(found.meta.name.get("de"), Some("Nippes"));
    resident.post(space, "Hallo Nachbarschaft", Audience::Everyone);
    assert_eq!(resident.sync().await.pushed, 1);
}

#[tokio::test]
async fn a_space_created_offline_is_registered_and_pushed_by_the_next_sync() {
    let server = Server::start();
    let coordinator = Device::register(&server.url, "Koordination").await;
    // The same account, the server out of reach (nothing listens on port 9 of loopback).
    let offline = SyncClient::new("http://127.0.0.1:9").expect("client");
    let shared = offline
        .create_shared_space(&coordinator.store, space_meta("Offline"))
        .await
        .expect("created offline");
    let space = shared.space.id;
    assert_eq!(shared.membership, None);
    assert!(coordinator.store.memberships().expect("memberships").is_empty());
    coordinator.post(space, "Offline geschrieben", Audience::Everyone);
    match offline.sync_now(&coordinator.store, |_| {}).await {
        Err(Error::Offline(_)) => {}
        other => panic!("expected Offline, got {other:?}"),
    }
    // Back online: the next sync registers the space, then pushes it with its item.
    let report = coordinator.sync().await;
    assert_eq!(report.pushed, 2, "{report:?}");
    let memberships = coordinator.store.memberships().expect("memberships");
    assert_eq!(memberships.len(), 1);
    assert_eq!(
        (memberships[0].space, memberships[0].role),
        (space, Role::Coordinator)
    );
    let resident = join(&server.url, &coordinator, space, Role::Resident, "Nachbarin").await;
    resident.sync().await;
    assert_eq!(
        titles(&resident.store, space, resident.viewer(Role::Resident)),
        ["Offline geschrieben"]
    );
    // Registered once: later syncs do not register again.
    assert_eq!(coordinator.sync().await.pushed, 0);
}

#[tokio::test]
async fn creating_a_shared_space_needs_a_registered_device() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = quartier_core::Store::open(dir.path().join("phone.db"), Default::default()).expect("store");
    let client = SyncClient::new(&server.url).expect("client");
    match client.create_shared_space(&store, space_meta("Nippes")).await {
        Err(Error::NotRegistered) => {}
        other => panic!("expected NotRegistered, got {other:?}"),
    }
    assert!(store.spaces().expect("spaces").is_empty(), "nothing was created");
}
