//! What becomes of a change the server does not take: a transient fault of the server keeps it
//! on the device (deferred, pushed again), and a refusal for good returns the document to what
//! the server accepted, makes the person's later allowed edits again on top, lists the refused
//! change as undelivered, and leaves both devices converged. Real server process, real HTTP.

use crate::common;

use common::*;
use quartier_core::model::*;
use rusqlite::Connection;

/// Makes every insert into the server's change log fail until the returned connection drops the
/// trigger: the server's database failing mid-push, as a full disk or an I/O error would.
fn break_the_change_log(server: &Server) -> Connection {
    let conn = Connection::open(server.data.path().join("quartier-server.db")).expect("open the server's db");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn.execute_batch(
        "CREATE TRIGGER injected_fault BEFORE INSERT ON log
         BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END;",
    )
    .expect("create the fault");
    conn
}

/// A place by `device`'s person at `location`.
fn place(device: &Device, space: SpaceId, title: &str, location: Location) -> quartier_core::Result<Item> {
    let content = ItemContent {
        location: Some(location),
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Place(Place::default()),
        )
    };
    device
        .store
        .create_item(NewItem::new(space, device.person, content))
}

/// A coordinator and a volunteer in a space, the volunteer made resident by the server while
/// their device still thinks them a volunteer (it learns at its next sync).
async fn a_volunteer_demoted_unawares(server: &Server) -> (Device, Device, SpaceId) {
    let (coordinator, space) = space_with_coordinator(&server.url).await;
    coordinator.sync().await;
    let volunteer = join(&server.url, &coordinator, space, Role::Volunteer, "Helfer").await;
    volunteer.sync().await;
    coordinator
        .client
        .set_role(&coordinator.store, space, volunteer.person, Role::Resident)
        .await
        .expect("demote");
    (coordinator, volunteer, space)
}

fn mend(conn: Connection) {
    conn.execute_batch("DROP TRIGGER injected_fault")
        .expect("drop the fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_fault_mid_push_keeps_the_change_and_it_is_delivered_afterwards() {
    let server = Server::start();
    let (coordinator, space) = space_with_coordinator(&server.url).await;
    coordinator.sync().await;
    let resident = join(&server.url, &coordinator, space, Role::Resident, "Anwohnerin").await;
    resident.sync().await;
    resident.post(space, "Suche Leiter", Audience::Everyone);

    let fault = break_the_change_log(&server);
    let report = resident.sync().await;
    assert_eq!(report.pushed, 0, "nothing can be stored while the database fails");
    assert!(
        report.rejected.is_empty(),
        "a server fault is not a refusal: {:?}",
        report.rejected
    );
    assert_eq!(report.deferred.len(), 1, "the change is reported as deferred");
    assert_eq!(report.deferred[0].reason, "server_fault");
    assert!(!report.deferred[0].overdue);
    assert_eq!(
        resident.store.sync_outbox_len().expect("outbox"),
        1,
        "the change is kept"
    );
    assert!(resident
        .store
        .undelivered_changes()
        .expect("undelivered")
        .is_empty());

    mend(fault);
    let report = resident.sync().await;
    assert_eq!(report.pushed, 1, "delivered once the server works again");
    assert!(report.deferred.is_empty());
    assert_eq!(resident.store.sync_outbox_len().expect("outbox"), 0);

    coordinator.sync().await;
    assert_eq!(
        titles(&coordinator.store, space, coordinator.viewer(Role::Coordinator)),
        vec!["Suche Leiter".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_change_waiting_past_the_bound_is_reported_overdue() {
    let server = Server::start();
    let (coordinator, space) = space_with_coordinator(&server.url).await;
    coordinator.sync().await;
    coordinator.post(space, "Sprechstunde", Audience::Everyone);
    let fault = break_the_change_log(&server);
    let impatient = coordinator
        .client
        .clone()
        .with_overdue_after(std::time::Duration::ZERO);
    let first = impatient
        .sync_now(&coordinator.store, |_| {})
        .await
        .expect("sync");
    assert_eq!(first.deferred.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = impatient
        .sync_now(&coordinator.store, |_| {})
        .await
        .expect("sync");
    assert_eq!(second.deferred.len(), 1);
    assert!(second.deferred[0].overdue, "{:?}", second.deferred);
    assert_eq!(
        second.deferred[0].since_ms, first.deferred[0].since_ms,
        "deferred since the first time, not the last"
    );
    mend(fault);
}

/// The sequence an outside tester found: a person whose role the server has lowered edits an
/// item offline (the device still holds the old role, so the local check lets it through), the
/// server refuses the edit, and the person's next allowed change of the same item must still
/// arrive instead of waiting forever on the refused one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_edit_does_not_wedge_the_next_allowed_change_of_the_item() {
    let server = Server::start();
    let (coordinator, space) = space_with_coordinator(&server.url).await;
    coordinator.sync().await;
    let volunteer = join(&server.url, &coordinator, space, Role::Volunteer, "Helfer").await;
    volunteer.sync().await;
    let place = place(
        &volunteer,
        space,
        "Bank am Spielplatz",
        Location::new(50.95, 6.95),
    )
    .expect("place");
    volunteer.sync().await;
    coordinator.sync().await;

    // The coordinator lowers the volunteer to resident; the volunteer's phone does not know yet.
    coordinator
        .client
        .set_role(&coordinator.store, space, volunteer.person, Role::Resident)
        .await
        .expect("demote");
    volunteer.retitle(place.id, "Bank (kaputt)");
    volunteer
        .store
        .delete_item(place.id, volunteer.person)
        .expect("an author may delete their place");

    let report = volunteer.sync().await;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let rejected = &report.rejected[0];
    assert_eq!(rejected.code, "forbidden", "the wire's snake_case code");
    assert_eq!(rejected.doc_id, place.id.to_string());
    assert_eq!(rejected.reapplied, 1, "the deletion is made again on top");
    assert_eq!(
        volunteer.store.sync_outbox_len().expect("outbox"),
        0,
        "nothing is left waiting"
    );
    assert!(report.deferred.is_empty(), "{:?}", report.deferred);

    let undelivered = volunteer.store.undelivered_changes().expect("undelivered");
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].code, "forbidden");
    assert_eq!(undelivered[0].fields, vec!["title".to_owned()]);
    assert!(
        undelivered[0]
            .content
            .as_deref()
            .is_some_and(|c| c.contains("Bank (kaputt)")),
        "what the person wrote can be copied"
    );

    coordinator.sync().await;
    assert_eq!(
        volunteer
            .store
            .document_heads(&place.id.to_string())
            .expect("heads"),
        coordinator
            .store
            .document_heads(&place.id.to_string())
            .expect("heads"),
        "both devices hold the same document"
    );
    let seen = stored_item(&coordinator.store, place.id).expect("the place");
    assert_eq!(
        seen.content.status,
        Status::Deleted,
        "the allowed deletion arrived"
    );
    assert_eq!(seen.content.title.get("de"), Some("Bank am Spielplatz"));
    let own = stored_item(&volunteer.store, place.id).expect("the place");
    assert_eq!(own.content, seen.content);

    volunteer
        .store
        .discard_undelivered(undelivered[0].id)
        .expect("discard");
    assert!(volunteer
        .store
        .undelivered_changes()
        .expect("undelivered")
        .is_empty());
    assert!(matches!(
        volunteer.store.discard_undelivered(undelivered[0].id),
        Err(quartier_core::Error::NotFound { .. })
    ));
}

/// A refused creation takes the item off the device (it never existed for anyone else), keeps
/// what was written for the person, and takes the edits made since with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_creation_leaves_the_device_and_is_kept_for_the_person() {
    let server = Server::start();
    let (_coordinator, volunteer, space) = a_volunteer_demoted_unawares(&server).await;
    let place = place(&volunteer, space, "Trinkbrunnen", Location::new(50.96, 6.94))
        .expect("place, allowed as far as the phone knows");
    volunteer.retitle(place.id, "Trinkbrunnen (Sommer)");
    let report = volunteer.sync().await;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].reapplied, 0);
    assert!(
        stored_item(&volunteer.store, place.id).is_none(),
        "the place left the device"
    );
    assert_eq!(volunteer.store.sync_outbox_len().expect("outbox"), 0);
    let undelivered = volunteer.store.undelivered_changes().expect("undelivered");
    assert_eq!(undelivered.len(), 1);
    assert_eq!(
        undelivered[0].fields,
        vec!["created".to_owned(), "title".to_owned()]
    );
    assert!(undelivered[0]
        .content
        .as_deref()
        .is_some_and(|c| c.contains("Trinkbrunnen (Sommer)")));
    // Nothing is wedged: a later allowed post goes through.
    volunteer.post(space, "Danke!", Audience::Everyone);
    let report = volunteer.sync().await;
    assert_eq!(report.pushed, 1);
    assert!(report.rejected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_photo_of_a_refused_creation_stays_on_the_device_while_its_record_does() {
    let server = Server::start();
    let (_coordinator, volunteer, space) = a_volunteer_demoted_unawares(&server).await;
    let mut pixels = image::RgbImage::new(64, 48);
    for (i, p) in pixels.pixels_mut().enumerate() {
        *p = image::Rgb([(i % 251) as u8, (i % 13) as u8, 90]);
    }
    let mut png = std::io::Cursor::new(Vec::new());
    pixels
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode");
    let photo = volunteer
        .store
        .import_media_bytes(png.get_ref(), &quartier_core::media::ImportOptions::default())
        .expect("import");
    let content = ItemContent {
        location: Some(Location::new(50.96, 6.94)),
        media: vec![photo.reference.clone()],
        ..ItemContent::new(
            LocalizedText::single("de", "Trinkbrunnen"),
            ItemDetails::Place(Place::default()),
        )
    };
    volunteer
        .store
        .create_item(NewItem::new(space, volunteer.person, content))
        .expect("place, allowed as far as the phone knows");
    let report = volunteer.sync().await;
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let undelivered = volunteer.store.undelivered_changes().expect("undelivered");
    assert!(undelivered[0]
        .content
        .as_deref()
        .is_some_and(|c| c.contains(&photo.reference.hash)));

    // The record offers the place to copy, photo included: the photo stays while it does.
    let gc = volunteer
        .store
        .collect_media_garbage(std::time::Duration::ZERO)
        .expect("collect");
    assert!(gc.removed.is_empty(), "removed {:?}", gc.removed);
    assert!(volunteer
        .store
        .media_file(&photo.reference.hash)
        .is_ok_and(|p| p.exists()));
    // Dismissed, it goes with the next collection.
    volunteer
        .store
        .discard_undelivered(undelivered[0].id)
        .expect("discard");
    let gc = volunteer
        .store
        .collect_media_garbage(std::time::Duration::ZERO)
        .expect("collect");
    assert!(gc.removed.contains(&photo.reference.hash), "{:?}", gc.removed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_note_published_later_reaches_the_space_as_it_is_then() {
    let server = Server::start();
    let (coordinator, space) = space_with_coordinator(&server.url).await;
    coordinator.sync().await;
    let resident = join(&server.url, &coordinator, space, Role::Resident, "Anwohnerin").await;
    resident.sync().await;
    // Written as a note to herself, worked on, then shared with the neighbourhood.
    let note = resident.post(space, "Idee: Tauschregal", Audience::AuthorOnly);
    resident.retitle(note.id, "Tauschregal im Hof");
    let report = resident.sync().await;
    assert_eq!(report.pushed, 0, "a private note stays on the device");
    resident
        .store
        .update_item(
            note.id,
            &ItemPatch {
                audience: Some(Audience::Everyone),
                ..Default::default()
            },
            resident.person,
        )
        .expect("publish");
    let report = resident.sync().await;
    assert!(report.rejected.is_empty(), "refused: {:?}", report.rejected);
    assert_eq!(report.pushed, 1, "one creation, as it is now");
    assert!(report.deferred.is_empty(), "{:?}", report.deferred);
    coordinator.sync().await;
    assert_eq!(
        titles(&coordinator.store, space, coordinator.viewer(Role::Coordinator)),
        vec!["Tauschregal im Hof".to_owned()]
    );
    assert!(
        stored_item(&resident.store, note.id).is_some(),
        "still on her device"
    );
    assert_eq!(
        resident
            .store
            .document_heads(&note.id.to_string())
            .expect("heads"),
        coordinator
            .store
            .document_heads(&note.id.to_string())
            .expect("heads"),
        "converged"
    );
    // Edited again afterwards: an ordinary edit.
    resident.retitle(note.id, "Tauschregal im Hof (ab Montag)");
    assert_eq!(resident.sync().await.pushed, 1);
}
