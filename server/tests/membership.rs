//! Leaving a space and losing a role, against the real server process: a removed member cannot
//! come back through an invite made before the removal, and a demoted member's device drops what
//! the new role may not read on its next sync.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::Error;

fn has_doc(device: &Device, id: ItemId) -> bool {
    let id = id.to_string();
    device
        .store
        .document_ids()
        .expect("document ids")
        .iter()
        .any(|(d, _)| *d == id)
}

fn refused_as_forbidden(result: quartier_core::Result<quartier_protocol::Membership>, what: &str) {
    match result {
        Err(Error::Server {
            status: 403, code, ..
        }) if code == "forbidden" => {}
        other => panic!("{what}: expected 403 forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_comes_back_only_through_an_invite_made_after_the_removal() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    // An invite for many (a QR code on the notice board), which the member redeemed, and a
    // one-use invite they were given as well and kept.
    let board = owner
        .client
        .create_invite(&owner.store, space, Role::Volunteer, in_an_hour, 10)
        .await
        .expect("invite");
    let kept = owner.invite(space, Role::Resident).await;
    let member = Device::register(&url, "Mara").await;
    member
        .client
        .redeem_invite(&member.store, &board)
        .await
        .expect("join");
    owner.post(space, "Hoffest", Audience::Everyone);
    owner.sync().await;
    member.sync().await;

    owner
        .client
        .remove_member(&owner.store, space, member.person)
        .await
        .expect("remove");
    let report = member.sync().await;
    assert_eq!(report.purged, vec![space.to_string()]);
    refused_as_forbidden(
        member.client.redeem_invite(&member.store, &board).await,
        "the invite they joined with",
    );
    refused_as_forbidden(
        member.client.redeem_invite(&member.store, &kept).await,
        "an invite made before the removal they never used",
    );
    assert!(member.store.memberships().expect("memberships").is_empty());
    // The board invite still works for others…
    let neighbour = Device::register(&url, "Nachbar").await;
    neighbour
        .client
        .redeem_invite(&neighbour.store, &board)
        .await
        .expect("someone else joins through the same invite");
    // …and a new invite lets the member back.
    let fresh = owner.invite(space, Role::Resident).await;
    let membership = member
        .client
        .redeem_invite(&member.store, &fresh)
        .await
        .expect("a new invite lets them back");
    assert_eq!(membership.role, Role::Resident);
    member.sync().await;
    assert_eq!(
        titles(&member.store, space, member.viewer(Role::Resident)),
        vec!["Hoffest"]
    );
    // Removed again: the invite that let them back is spent for them too.
    owner
        .client
        .remove_member(&owner.store, space, member.person)
        .await
        .expect("remove again");
    let again = owner
        .client
        .create_invite(&owner.store, space, Role::Resident, in_an_hour, 10)
        .await
        .expect("invite");
    // (Made after the second removal: it works.)
    member
        .client
        .redeem_invite(&member.store, &again)
        .await
        .expect("an invite made after the second removal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_member_drops_what_the_new_role_may_not_read() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let member = join(&url, &owner, space, Role::Volunteer, "Vera").await;
    let caseworker = join(&url, &owner, space, Role::Caseworker, "Frau Weber").await;
    let other_caseworker = join(&url, &owner, space, Role::Caseworker, "Herr Kaya").await;
    owner.sync().await;
    member.sync().await;
    caseworker.sync().await;
    other_caseworker.sync().await;
    let for_everyone = owner.post(space, "Für alle", Audience::Everyone).id;
    let for_volunteers = owner.post(space, "Für Ehrenamtliche", Audience::Volunteers).id;
    owner.sync().await;
    let own = member.post(space, "Meine Schicht", Audience::Volunteers).id;
    member.sync().await;
    assert!(has_doc(&member, for_everyone) && has_doc(&member, for_volunteers) && has_doc(&member, own));

    // Made a resident: the next sync drops the item for volunteers, keeps the rest (authors
    // always read their own items).
    owner
        .client
        .set_role(&owner.store, space, member.person, Role::Resident)
        .await
        .expect("demote");
    member.sync().await;
    assert!(
        !has_doc(&member, for_volunteers),
        "a volunteer made resident still holds an item for volunteers"
    );
    assert!(has_doc(&member, for_everyone), "what residents read stays");
    assert!(has_doc(&member, own), "the member's own item stays");
    assert_eq!(
        titles(&member.store, space, member.viewer(Role::Volunteer)),
        vec!["Für alle", "Meine Schicht"],
        "not even a query asked with the old role finds it"
    );
    // Made a volunteer again: it comes back.
    owner
        .client
        .set_role(&owner.store, space, member.person, Role::Volunteer)
        .await
        .expect("promote");
    member.sync().await;
    assert!(has_doc(&member, for_volunteers));

    // A caseworker made coordinator no longer reads items for caseworkers (professional
    // secrecy), except their own.
    let case_note = other_caseworker
        .post(space, "Fallnotiz", Audience::Caseworkers)
        .id;
    other_caseworker.sync().await;
    let own_note = caseworker.post(space, "Eigene Notiz", Audience::Caseworkers).id;
    caseworker.sync().await;
    assert!(has_doc(&caseworker, case_note));
    owner
        .client
        .set_role(&owner.store, space, caseworker.person, Role::Coordinator)
        .await
        .expect("make coordinator");
    caseworker.sync().await;
    assert!(
        !has_doc(&caseworker, case_note),
        "a coordinator does not read items for caseworkers"
    );
    assert!(has_doc(&caseworker, own_note));
    assert!(has_doc(&caseworker, for_volunteers));
}

/// A sync that pushes one change per request, so that the server's answer to the first (with
/// the removal or the new role) arrives while the others still wait in the outbox.
fn one_change_per_request(url: &str) -> quartier_core::sync::SyncClient {
    quartier_core::sync::SyncClient::new(url)
        .expect("client")
        .with_limits(256 * 1024, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_still_waiting_when_a_member_is_removed_are_listed_as_undelivered_without_the_spaces_content() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let resident = join(&url, &owner, space, Role::Resident, "Rosa").await;
    owner.sync().await;
    resident.sync().await;
    // Written offline, then the coordinator removes her.
    resident.post(space, "Flohmarkt am Samstag", Audience::Everyone);
    resident.post(space, "Suche eine Leiter", Audience::Everyone);
    owner
        .client
        .remove_member(&owner.store, space, resident.person)
        .await
        .expect("remove");
    let report = one_change_per_request(&url)
        .sync_now(&resident.store, |_| {})
        .await
        .expect("sync");
    assert_eq!(report.purged, vec![space.to_string()]);
    let undelivered = resident.store.undelivered_changes().expect("undelivered");
    assert_eq!(undelivered.len(), 2, "both posts are listed: {undelivered:?}");
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    for record in &undelivered {
        assert_eq!(record.space_id, space.to_string());
        assert!(
            !record.message.is_empty() && !record.fields.is_empty(),
            "{record:?}"
        );
        assert_eq!(record.content, None, "the space's content left the device");
    }
    assert!(undelivered.iter().any(|r| r.code == "not_a_member"));
    assert_eq!(resident.store.outbox_len().expect("outbox"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_still_waiting_when_a_member_is_demoted_are_listed_as_undelivered_with_what_they_wrote() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let helper = join(&url, &owner, space, Role::Coordinator, "Hans").await;
    let rota = owner.post(space, "Dienstplan", Audience::Volunteers).id;
    let keys = owner.post(space, "Schlüsselliste", Audience::Volunteers).id;
    owner.sync().await;
    helper.sync().await;
    // Edited offline as a coordinator; then made a resident, who may not read either item.
    helper.retitle(rota, "Dienstplan Dezember");
    helper.retitle(keys, "Schlüsselliste (neu)");
    owner
        .client
        .set_role(&owner.store, space, helper.person, Role::Resident)
        .await
        .expect("demote");
    let report = one_change_per_request(&url)
        .sync_now(&helper.store, |_| {})
        .await
        .expect("sync");
    let undelivered = helper.store.undelivered_changes().expect("undelivered");
    assert_eq!(undelivered.len(), 2, "both edits are listed: {undelivered:?}");
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    let keys_record = undelivered
        .iter()
        .find(|r| r.doc_id == keys.to_string())
        .expect("the edit that waited");
    assert_eq!(keys_record.code, "forbidden");
    assert_eq!(keys_record.fields, vec!["title".to_owned()]);
    let written: serde_json::Value =
        serde_json::from_str(keys_record.content.as_deref().expect("what they wrote")).expect("JSON");
    assert!(written.to_string().contains("Schlüsselliste (neu)"), "{written}");
    assert_eq!(
        written.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["title".to_owned()]),
        "only the fields they set, not the rest of the item"
    );
    assert!(!has_doc(&helper, keys) && !has_doc(&helper, rota));
    assert_eq!(helper.store.outbox_len().expect("outbox"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_space_again_tells_its_creator_the_role_they_have_now() {
    let server = Server::start();
    let url = server.url.clone();
    let (creator, space) = space_with_coordinator(&url).await;
    let other = join(&url, &creator, space, Role::Coordinator, "Zweite").await;
    // A retry of the registration: the creator is still coordinator.
    let again = creator
        .client
        .create_space(&creator.store, space)
        .await
        .expect("retry");
    assert_eq!(again.role, Role::Coordinator);
    other
        .client
        .set_role(&other.store, space, creator.person, Role::Resident)
        .await
        .expect("demote the creator");
    let again = creator
        .client
        .create_space(&creator.store, space)
        .await
        .expect("retry after demotion");
    assert_eq!(again.role, Role::Resident, "not told they coordinate");
    other
        .client
        .remove_member(&other.store, space, creator.person)
        .await
        .expect("remove the creator");
    refused_as_forbidden(
        creator.client.create_space(&creator.store, space).await,
        "registering a space one was removed from",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_list_the_open_invites_and_a_withdrawn_code_redeems_nothing() {
    let server = Server::start();
    let url = server.url.clone();
    let (owner, space) = space_with_coordinator(&url).await;
    let (_, elsewhere) = space_with_coordinator(&url).await;
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let once = owner
        .client
        .create_invite(&owner.store, space, Role::Resident, in_an_hour, 1)
        .await
        .expect("invite");
    let board = owner
        .client
        .create_invite(&owner.store, space, Role::Volunteer, in_an_hour, 25)
        .await
        .expect("invite");
    let listed = owner
        .client
        .list_invites(&owner.store, space)
        .await
        .expect("list");
    let seen: Vec<_> = listed
        .iter()
        .map(|i| (i.role, i.max_uses, i.uses, i.expires_at_ms, i.created_by))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Role::Resident, 1, 0, in_an_hour, owner.person.as_uuid()),
            (Role::Volunteer, 25, 0, in_an_hour, owner.person.as_uuid()),
        ]
    );
    // Used up: the one-use invite leaves the list; the board invite counts its use.
    let resident = Device::register(&url, "Nachbarin").await;
    resident
        .client
        .redeem_invite(&resident.store, &once)
        .await
        .expect("join");
    let volunteer = Device::register(&url, "Helfer").await;
    volunteer
        .client
        .redeem_invite(&volunteer.store, &board)
        .await
        .expect("join");
    let listed = owner
        .client
        .list_invites(&owner.store, space)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].role, listed[0].uses), (Role::Volunteer, 1));
    // Only coordinators see or withdraw invites, and only their own space's.
    for result in [
        volunteer
            .client
            .list_invites(&volunteer.store, space)
            .await
            .map(|_| ()),
        volunteer
            .client
            .revoke_invite(&volunteer.store, space, listed[0].id)
            .await,
    ] {
        assert!(
            matches!(result, Err(Error::Server { status: 403, .. })),
            "{result:?}"
        );
    }
    let other_space = owner
        .client
        .revoke_invite(&owner.store, elsewhere, listed[0].id)
        .await;
    assert!(
        matches!(other_space, Err(Error::Server { status: 403, .. })),
        "{other_space:?}"
    );
    // Withdrawn: the flyer's code lets nobody in, and whoever joined through it stays.
    owner
        .client
        .revoke_invite(&owner.store, space, listed[0].id)
        .await
        .expect("withdraw");
    assert!(owner
        .client
        .list_invites(&owner.store, space)
        .await
        .expect("list")
        .is_empty());
    let late = Device::register(&url, "Zu spät").await;
    let refused = late.client.redeem_invite(&late.store, &board).await;
    assert!(
        matches!(refused, Err(Error::Server { status: 404, .. })),
        "{refused:?}"
    );
    let again = owner
        .client
        .revoke_invite(&owner.store, space, listed[0].id)
        .await;
    assert!(
        matches!(again, Err(Error::Server { status: 404, .. })),
        "{again:?}"
    );
    assert_eq!(
        volunteer.store.memberships().expect("memberships").len(),
        1,
        "who joined through the invite stays a member"
    );
}

/// Caseworkers read what is for caseworkers only, which not even coordinators may: so the
/// organisation appoints them, never a space's coordinator — who could otherwise invite a
/// second account of their own as caseworker and read it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_organisation_admin_appoints_caseworkers_not_a_coordinator() {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    coordinator.sync().await;
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let refused = coordinator
        .client
        .create_invite(&coordinator.store, space, Role::Caseworker, in_an_hour, 1)
        .await;
    assert!(
        matches!(&refused, Err(Error::Server { status: 403, message, .. }) if message.contains("organisation admin")),
        "{refused:?}"
    );
    // Their second account joins as a resident and is refused the promotion.
    let second = join(&url, &coordinator, space, Role::Resident, "Zweitkonto").await;
    refused_as_forbidden(
        coordinator
            .client
            .set_role(&coordinator.store, space, second.person, Role::Caseworker)
            .await,
        "a coordinator making a member caseworker",
    );
    // So nothing for caseworkers reaches it.
    let admin_device = Device::register(&url, "Träger").await;
    grant_org_admin(&url, admin_device.person);
    let caseworker = Device::register(&url, "Frau Weber").await;
    let code = admin_device
        .client
        .create_invite(&admin_device.store, space, Role::Caseworker, in_an_hour, 1)
        .await
        .expect("an organisation admin invites a caseworker, member of the space or not");
    caseworker
        .client
        .redeem_invite(&caseworker.store, &code)
        .await
        .expect("join as caseworker");
    caseworker.sync().await;
    let secret = caseworker
        .post(space, "Fallbesprechung", Audience::Caseworkers)
        .id;
    caseworker.sync().await;
    second.sync().await;
    coordinator.sync().await;
    assert!(
        !has_doc(&second, secret),
        "a coordinator's second account reads caseworker items"
    );
    assert!(!has_doc(&coordinator, secret));
    // The organisation admin may make a member caseworker; a coordinator may still give the
    // other roles and take the caseworker role away.
    admin_device
        .client
        .set_role(&admin_device.store, space, second.person, Role::Caseworker)
        .await
        .expect("an organisation admin appoints");
    coordinator
        .client
        .set_role(&coordinator.store, space, second.person, Role::Volunteer)
        .await
        .expect("a coordinator takes the role away");
    // An organisation admin from outside the space does not change a coordinator's role.
    refused_as_forbidden(
        admin_device
            .client
            .set_role(&admin_device.store, space, coordinator.person, Role::Caseworker)
            .await,
        "an organisation admin demoting a coordinator",
    );
    // Withdrawn, the organisation admin appoints no one any more, and the invites they made
    // and nobody used redeem nothing.
    let unused = admin_device
        .client
        .create_invite(&admin_device.store, space, Role::Caseworker, in_an_hour, 5)
        .await
        .expect("an invite not used yet");
    let out = admin(
        server.data.path(),
        &["revoke-org-admin", &admin_device.person.to_string()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused_as_forbidden(
        admin_device
            .client
            .set_role(&admin_device.store, space, second.person, Role::Caseworker)
            .await,
        "a former organisation admin",
    );
    let late = Device::register(&url, "Zu spät").await;
    let redeemed = late.client.redeem_invite(&late.store, &unused).await;
    assert!(
        matches!(&redeemed, Err(Error::Server { status: 404, .. })),
        "{redeemed:?}"
    );
    let listed = admin(server.data.path(), &["persons"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&format!("{}\t-\t-", admin_device.person)));
}
