//! The local permission check: a device refuses, before writing anything, what the server would
//! refuse (the same rule, `quartier_core::model::judge_item`, from the memberships the store
//! holds), with the server's code; apps ask `allowed_actions`/`may_create` to grey out what is
//! not allowed. Against a real `quartier-server`: the allowed writes still sync and converge.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::{AllowedActions, Error};

fn offer(space: SpaceId, author: PersonId, title: &str) -> NewItem {
    NewItem::new(
        space,
        author,
        ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Offer(Offer {
                organization: Organization {
                    name: "Caritas Köln".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        ),
    )
}

fn retitle(title: &str) -> ItemPatch {
    ItemPatch {
        title: Some(LocalizedText::single("de", title)),
        ..Default::default()
    }
}

fn refused_with(result: Result<impl std::fmt::Debug, Error>, code: RejectCode, what: &str) {
    match result {
        Err(Error::NotPermitted { code: got, message }) => {
            assert_eq!(got, code, "{what}: {message}");
            assert!(!message.is_empty(), "{what}");
        }
        other => panic!("{what}: expected NotPermitted({code:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_resident_cannot_edit_a_coordinators_offer_and_nothing_wedges() {
    let server = Server::start();
    let url = server.url.clone();
    let coordinator = Device::register(&url, "Koordination").await;
    let space = coordinator
        .client
        .create_shared_space(&coordinator.store, space_meta("Nippes"))
        .await
        .expect("space")
        .space
        .id;
    let offer_id = coordinator
        .store
        .create_item(offer(space, coordinator.person, "Sozialberatung"))
        .expect("offer")
        .id;
    coordinator.sync().await;
    let resident = join(&url, &coordinator, space, Role::Resident, "Nachbarin").await;
    resident.sync().await;
    let store = &resident.store;

    // What the app greys out.
    assert_eq!(
        store.allowed_actions(offer_id, resident.person).expect("allowed"),
        AllowedActions {
            edit: false,
            delete: false
        }
    );
    assert!(!store
        .may_create(space, ItemKind::Offer, Audience::Everyone, resident.person)
        .expect("may create"));
    assert!(!store
        .may_create(space, ItemKind::Post, Audience::Caseworkers, resident.person)
        .expect("may create"));
    assert!(store
        .may_create(space, ItemKind::Post, Audience::Everyone, resident.person)
        .expect("may create"));
    assert!(store
        .may_create(space, ItemKind::Offer, Audience::AuthorOnly, resident.person)
        .expect("a note for oneself never leaves the device"));

    // What the store refuses, with the server's codes; nothing is written.
    refused_with(
        store.update_item(offer_id, &retitle("Meine Beratung"), resident.person),
        RejectCode::Forbidden,
        "edit someone else's offer",
    );
    refused_with(
        store.delete_item(offer_id, resident.person),
        RejectCode::Forbidden,
        "delete someone else's offer",
    );
    refused_with(
        store.create_item(offer(space, resident.person, "Eigenes Angebot")),
        RejectCode::Forbidden,
        "create an offer",
    );
    refused_with(
        store.update_item(
            offer_id,
            &retitle("Im Namen der Koordination"),
            coordinator.person,
        ),
        RejectCode::NotYourChange,
        "write in someone else's name",
    );
    refused_with(
        store.update_space(space, space_meta("Umbenannt"), resident.person),
        RejectCode::Forbidden,
        "rename the space",
    );
    assert_eq!(
        store.outbox_len().expect("outbox"),
        0,
        "refused writes stored nothing"
    );
    let shown = store
        .item_detail(offer_id, &resident.viewer(Role::Resident))
        .expect("detail");
    assert_eq!(shown.item.content.title.get("de"), Some("Sozialberatung"));

    // The resident's next allowed edits go through and reach the coordinator.
    let post = resident.post(space, "Flohmarkt", Audience::Everyone);
    resident.retitle(post.id, "Flohmarkt am Samstag");
    let note = store
        .create_item(NewItem {
            content: ItemContent {
                audience: Audience::AuthorOnly,
                ..offer(space, resident.person, "Notiz").content
            },
            ..offer(space, resident.person, "Notiz")
        })
        .expect("an author-only note of any kind stays on the device");
    let report = resident.sync().await;
    assert_eq!((report.pushed, report.rejected.len()), (2, 0), "{report:?}");
    assert_eq!(store.sync_outbox_len().expect("outbox"), 0);
    coordinator.sync().await;
    let coordinator_sees = titles(&coordinator.store, space, coordinator.viewer(Role::Coordinator));
    assert_eq!(coordinator_sees, ["Flohmarkt am Samstag", "Sozialberatung"]);
    assert_eq!(
        titles(store, space, resident.viewer(Role::Resident)),
        ["Flohmarkt am Samstag", "Notiz", "Sozialberatung"]
    );
    assert!(
        store
            .allowed_actions(note.id, resident.person)
            .expect("allowed")
            .edit
    );

    // A coordinator may moderate the resident's post (edit and delete someone else's).
    assert_eq!(
        coordinator
            .store
            .allowed_actions(post.id, coordinator.person)
            .expect("allowed"),
        AllowedActions {
            edit: true,
            delete: true
        }
    );
    coordinator.retitle(post.id, "Flohmarkt (verschoben)");
    assert_eq!(coordinator.sync().await.rejected.len(), 0);
}

#[tokio::test]
async fn a_store_without_memberships_is_permissive() {
    // Never synced: the store cannot know the role; the server decides on push.
    let (_dir, store) = workbench();
    let me = PersonId::new();
    let space = store.create_space(space_meta("Nur hier"), me).expect("space").id;
    let mine = store.create_item(offer(space, me, "Angebot")).expect("an offer");
    let someone = PersonId::new();
    assert_eq!(
        store.allowed_actions(mine.id, someone).expect("allowed"),
        AllowedActions {
            edit: true,
            delete: true
        }
    );
    assert!(store
        .may_create(space, ItemKind::Offer, Audience::Caseworkers, me)
        .expect("may create"));
    store
        .update_item(mine.id, &retitle("Von jemand anderem"), someone)
        .expect("no membership: permissive");
}
