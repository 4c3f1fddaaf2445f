//! The rest of neighbourhood life against a real `quartier-server`: items recorded by a
//! volunteer for an offliner (replies and responses on the volunteer's call-back list; the
//! neighbour's withdrawal of consent erases the item everywhere), the offers directory's upkeep
//! (checked offers, the review list, recency for residents), audio posts and alt text.

use crate::common;

use chrono::{Duration, Utc};
use common::*;
use quartier_core::model::*;
use quartier_core::notifications::NotificationKind;
use quartier_core::query::SearchRequest;
use quartier_core::Error;

fn recorded_for(neighbour: &str, reach: Option<Reach>) -> OnBehalfOf {
    OnBehalfOf {
        name: neighbour.into(),
        consent: ConsentMethod::Phone,
        consent_given_at: Utc::now(),
        witnessed_by: Some("Frau S. vom Stadtteilbüro".into()),
        reach,
    }
}

#[tokio::test]
async fn proxies_replies_reach_the_call_back_list_and_withdrawn_consent_erases() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    sync_each(&[&coord, &vera, &anna]).await;
    // Vera records a request for Herr M., who has no phone of his own.
    let content = ItemContent {
        on_behalf_of: Some(recorded_for("Herr M.", None)),
        ..ItemContent::new(
            LocalizedText::single("de", "Herr M. sucht Hilfe beim Einkaufen"),
            ItemDetails::Request(Request {
                direction: RequestDirection::Need,
                category: "einkauf".into(),
                state: RequestState::Open,
            }),
        )
    };
    let wanted = vera
        .store
        .create_item(NewItem::new(space, vera.person, content))
        .expect("recorded");
    // And a post for Frau K., who wants to be called directly: replies are not Vera's to pass on.
    let direct = ItemContent {
        on_behalf_of: Some(recorded_for(
            "Frau K.",
            Some(Reach::Phone {
                number: "0221 555".into(),
            }),
        )),
        ..ItemContent::new(
            LocalizedText::single("de", "Frau K. verschenkt Bücher"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    };
    let books = vera
        .store
        .create_item(NewItem::new(space, vera.person, direct))
        .expect("recorded");
    vera.sync().await;
    anna.sync().await;
    let reply = ItemContent::new(
        LocalizedText::single("de", "Ich kann Dienstag"),
        ItemDetails::Comment(Comment { parent: wanted.id }),
    );
    anna.store
        .create_item(NewItem::new(space, anna.person, reply))
        .expect("reply");
    anna.store
        .respond_to_request(wanted.id, "Ich fahre sowieso", "Anna, 0171 1")
        .expect("respond");
    let thanks = ItemContent::new(
        LocalizedText::single("de", "Ich nehme gern welche"),
        ItemDetails::Comment(Comment { parent: books.id }),
    );
    anna.store
        .create_item(NewItem::new(space, anna.person, thanks))
        .expect("reply");
    anna.sync().await;
    vera.sync().await;

    let list = vera.store.call_backs(false).expect("call-backs");
    assert_eq!(list.len(), 2, "the reply and the response for Herr M.: {list:?}");
    assert!(list
        .iter()
        .all(|c| c.neighbour.name == "Herr M." && c.notification.item == Some(wanted.id)));
    assert!(list.iter().any(|c| c.notification.person == Some(anna.person)));
    let kinds: Vec<_> = vera
        .store
        .notifications(false, 10)
        .expect("list")
        .iter()
        .map(|n| n.kind)
        .collect();
    assert!(
        kinds.contains(&NotificationKind::Reply),
        "Frau K.'s reply is an ordinary one: {kinds:?}"
    );
    // Passed on: off the list.
    vera.store
        .mark_notifications_read(&[list[0].notification.id])
        .expect("passed on");
    assert_eq!(vera.store.call_backs(false).expect("call-backs").len(), 1);
    assert_eq!(vera.store.call_backs(true).expect("call-backs").len(), 2);

    // Herr M. withdraws his consent: only Vera may erase it this way, and it goes everywhere.
    assert!(matches!(
        anna.store.withdraw_consent(wanted.id, ""),
        Err(Error::NotPermitted { .. })
    ));
    let plain = anna.post(space, "Kein Auftrag", Audience::Everyone);
    assert!(matches!(
        anna.store.withdraw_consent(plain.id, ""),
        Err(Error::Invalid { .. })
    ));
    vera.store
        .withdraw_consent(wanted.id, "Herr M. hat widerrufen")
        .expect("withdraw");
    vera.sync().await;
    sync_each(&[&coord, &anna, &vera]).await;
    for (d, role) in [
        (&coord, Role::Coordinator),
        (&anna, Role::Resident),
        (&vera, Role::Volunteer),
    ] {
        assert!(
            matches!(
                d.store.item_detail(wanted.id, &d.viewer(role)),
                Err(Error::NotFound { .. })
            ),
            "erased on every phone"
        );
    }
    let late = join(&url, &coord, space, Role::Volunteer, "Lea").await;
    late.sync().await;
    assert!(late
        .store
        .item_detail(wanted.id, &late.viewer(Role::Volunteer))
        .is_err());
    // Someone else's withdrawal with the local check off: the server refuses it.
    anna.store.set_local_permission_check(false);
    anna.store
        .moderate_item(books.id, quartier_core::moderation::ModerationAction::Erase, "")
        .expect("queued");
    anna.sync().await;
    let refused = anna.store.pending_moderation().expect("pending");
    assert_refused(&refused[0].refused, "forbidden");
}

#[tokio::test]
async fn offers_upkeep_checked_offers_leave_the_review_list_and_residents_see_how_recent() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    coord.sync().await;
    anna.sync().await;
    let offer = |title: &str, checked: Option<chrono::NaiveDate>| {
        let content = ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Offer(Offer {
                organization: Organization {
                    name: "Caritas".into(),
                    ..Default::default()
                },
                assured_date: checked,
                ..Default::default()
            }),
        );
        coord
            .store
            .create_item(NewItem::new(space, coord.person, content))
            .expect("offer")
    };
    let today = Utc::now().date_naive();
    let never = offer("Schuldnerberatung", None);
    let old = offer("Kleiderkammer", Some(today - Duration::days(400)));
    let fresh = offer("Tafel", Some(today - Duration::days(10)));
    let review = |device: &Device| -> Vec<ItemId> {
        device
            .store
            .offers_to_review(space, device.viewer(Role::Coordinator), today, 180)
            .expect("review")
            .iter()
            .map(|i| i.id)
            .collect()
    };
    assert_eq!(
        review(&coord),
        vec![never.id, old.id],
        "never checked first, then the oldest"
    );
    let checked = coord
        .store
        .confirm_offer(old.id, coord.person, today)
        .expect("checked");
    let ItemDetails::Offer(o) = &checked.content.details else {
        panic!("an offer")
    };
    assert_eq!((o.assured_date, o.assured_by), (Some(today), Some(coord.person)));
    assert_eq!(review(&coord), vec![never.id]);
    coord.sync().await;
    anna.sync().await;
    let seen = anna
        .store
        .item_detail(old.id, &anna.viewer(Role::Resident))
        .expect("offer");
    let ItemDetails::Offer(o) = seen.item.content.details else {
        panic!("an offer")
    };
    assert_eq!(
        o.assured_date,
        Some(today),
        "the resident sees when it was checked"
    );
    // A resident may not check an offer (it is an edit of the offer).
    assert!(matches!(
        anna.store.confirm_offer(fresh.id, anna.person, today),
        Err(Error::NotPermitted { .. })
    ));
    // A post is not an offer.
    let post = coord.post(space, "Neuigkeiten", Audience::Everyone);
    assert!(matches!(
        coord.store.confirm_offer(post.id, coord.person, today),
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn audio_posts_and_alt_text_warnings_and_search() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    coord.sync().await;
    anna.sync().await;
    let hash = "b".repeat(64);
    let audio_post = |media: Vec<MediaRef>| ItemContent {
        media,
        ..ItemContent::new(
            LocalizedText::single("de", "Sprachnachricht"),
            ItemDetails::Post(Post {
                post_type: PostType::Audio,
            }),
        )
    };
    // An audio post without a recording (or without its duration) is refused.
    let mut photo = MediaRef::new(hash.clone(), "image/jpeg", 1_000);
    assert!(matches!(
        anna.store
            .create_item(NewItem::new(space, anna.person, audio_post(vec![photo.clone()]))),
        Err(Error::Invalid { .. })
    ));
    let mut recording = MediaRef::new(hash.clone(), "audio/ogg", 50_000);
    assert!(matches!(
        anna.store.create_item(NewItem::new(
            space,
            anna.person,
            audio_post(vec![recording.clone()])
        )),
        Err(Error::Invalid { .. })
    ));
    recording.duration_ms = Some(42_000);
    recording.language = Some("tr".into());
    // The core warns of what the app should ask for, and refuses nothing for it.
    let warned = audio_post(vec![recording.clone(), photo.clone()]);
    assert_eq!(
        warned.warnings(),
        vec![
            ContentWarning::MissingTranscript { media: 0 },
            ContentWarning::MissingAltText { media: 1 }
        ]
    );
    recording.transcript = LocalizedText::single("de", "Wer hat Lust auf einen Spaziergang am Rhein?");
    photo.alt_text = LocalizedText::single("de", "Ein Dackel auf einer Parkbank");
    let fine = audio_post(vec![recording, photo]);
    assert!(fine.warnings().is_empty());
    anna.store
        .create_item(NewItem::new(space, anna.person, fine))
        .expect("audio post");
    anna.sync().await;
    coord.sync().await;
    for word in ["Spaziergang", "Dackel"] {
        let hits = coord
            .store
            .search(&SearchRequest::new(space, coord.viewer(Role::Coordinator), word))
            .expect("search");
        assert_eq!(hits.len(), 1, "transcripts and alt text are searchable: {word}");
    }
    let mut bad = MediaRef::new(hash, "audio/ogg", 1);
    bad.duration_ms = Some(1);
    bad.language = Some("not a tag!".into());
    assert!(matches!(
        anna.store
            .create_item(NewItem::new(space, anna.person, audio_post(vec![bad]))),
        Err(Error::Invalid { .. })
    ));
}

/// Found by an attacker's review: an author cannot mark an item recorded for someone after the
/// fact and then "withdraw consent" to erase other people's comments on it.
#[tokio::test]
async fn proxies_an_item_is_recorded_for_someone_when_it_is_made_or_never() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    let ben = join(&url, &coord, space, Role::Resident, "Ben").await;
    sync_each(&[&coord, &anna, &ben]).await;
    let post = anna.post(space, "Diskussion", Audience::Everyone);
    anna.sync().await;
    ben.sync().await;
    let reply = ItemContent::new(
        LocalizedText::single("de", "Kritik an Anna"),
        ItemDetails::Comment(Comment { parent: post.id }),
    );
    let comment = ben
        .store
        .create_item(NewItem::new(space, ben.person, reply))
        .expect("comment");
    ben.sync().await;
    anna.sync().await;
    let patch = ItemPatch {
        on_behalf_of: Some(recorded_for("niemand", None)),
        ..Default::default()
    };
    assert!(matches!(
        anna.store.update_item(post.id, &patch, anna.person),
        Err(Error::NotPermitted { .. })
    ));
    // With the local check off, the server refuses the edit, and then the erasure.
    anna.store.set_local_permission_check(false);
    anna.store
        .update_item(post.id, &patch, anna.person)
        .expect("queued");
    let report = anna.sync().await;
    assert!(
        report.rejected.iter().any(|r| r.code == "forbidden"),
        "{:?}",
        report.rejected
    );
    anna.store
        .moderate_item(post.id, quartier_core::moderation::ModerationAction::Erase, "")
        .expect("queued");
    anna.sync().await;
    ben.sync().await;
    assert!(
        ben.store
            .item_detail(comment.id, &ben.viewer(Role::Resident))
            .is_ok(),
        "Ben's comment stays"
    );
    // And a recorder's own withdrawal makes no notification for themselves.
    let recorded = ItemContent {
        on_behalf_of: Some(recorded_for("Herr M.", None)),
        ..ItemContent::new(
            LocalizedText::single("de", "Für Herrn M."),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        )
    };
    let mine = anna
        .store
        .create_item(NewItem::new(space, anna.person, recorded))
        .expect("recorded");
    anna.sync().await;
    anna.store
        .withdraw_consent(mine.id, "widerrufen")
        .expect("withdraw");
    anna.sync().await;
    anna.sync().await;
    assert!(
        anna.store
            .item_detail(mine.id, &anna.viewer(Role::Resident))
            .is_err(),
        "erased"
    );
    let told = anna.store.notifications(false, 20).expect("list");
    assert!(
        !told.iter().any(|n| n.kind == NotificationKind::Moderation),
        "{told:?}"
    );
}
