//! Notifications against a real `quartier-server` with four phones: a reply to my item, a
//! response to my request, my response chosen (and not chosen), a followed tag and category, a
//! followed event starting within the hour, a moderation decision about my content — each made
//! exactly once, whatever the order of the syncs (seeded), after re-syncs and after a response
//! applied twice; nothing for one's own doing, for muted people, or for a kind turned off.
//! `cargo test notif`.

use crate::common;

use std::collections::BTreeMap;

use chrono::{Duration, Timelike, Utc};
use common::*;
use quartier_core::model::*;
use quartier_core::moderation::ModerationAction;
use quartier_core::notifications::{FollowTarget, NotificationKind};
use quartier_core::schedule::EventTiming;

fn item(device: &Device, space: SpaceId, title: &str, details: ItemDetails, tags: &[&str]) -> Item {
    let content = ItemContent {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..ItemContent::new(LocalizedText::single("de", title), details)
    };
    device
        .store
        .create_item(NewItem::new(space, device.person, content))
        .expect("item")
}

fn kinds(device: &Device) -> BTreeMap<NotificationKind, usize> {
    let mut out = BTreeMap::new();
    for n in device.store.notifications(false, 1_000).expect("notifications") {
        *out.entry(n.kind).or_default() += 1;
    }
    out
}

/// Tiny deterministic shuffle (xorshift), so a failing order can be replayed from its seed.
fn shuffled<T>(mut items: Vec<T>, state: &mut u64) -> Vec<T> {
    for i in (1..items.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        items.swap(i, (*state % (i as u64 + 1)) as usize);
    }
    items
}

#[tokio::test]
async fn notifications_are_made_once_per_event_whatever_the_order_of_syncs() {
    let mut state = seed("notifications") | 1;
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    let ben = join(&url, &coord, space, Role::Resident, "Ben").await;
    let phones = [&coord, &vera, &anna, &ben];
    for p in phones {
        p.sync().await;
    }
    anna.store
        .follow(FollowTarget::Tag {
            tag: "Flohmarkt".into(),
        })
        .expect("follow");
    anna.store
        .follow(FollowTarget::Category {
            name: "Einkauf".into(),
        })
        .expect("follow");
    ben.store
        .set_notifications_enabled(NotificationKind::NotChosen, false)
        .expect("opt out");

    // Anna's post and request; a comment of her own makes nothing.
    let post = anna.post(space, "Wer hat meinen Schirm?", Audience::Everyone);
    let wanted = item(
        &anna,
        space,
        "Wer kauft für mich ein?",
        ItemDetails::Request(Request {
            direction: RequestDirection::Need,
            category: "einkauf".into(),
            state: RequestState::Open,
        }),
        &[],
    );
    item(
        &anna,
        space,
        "Danke!",
        ItemDetails::Comment(Comment { parent: post.id }),
        &[],
    );
    anna.sync().await;
    for p in shuffled(vec![&coord, &vera, &ben], &mut state) {
        p.sync().await;
    }

    // What the others do, in any order.
    item(
        &ben,
        space,
        "Liegt im Hausflur",
        ItemDetails::Comment(Comment { parent: post.id }),
        &[],
    );
    vera.store
        .respond_to_request(wanted.id, "Ich kann", "Vera")
        .expect("respond");
    ben.store
        .respond_to_request(wanted.id, "Ich auch", "Ben")
        .expect("respond");
    item(
        &coord,
        space,
        "Flohmarkt im Hof",
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
        &["flohmarkt"],
    );
    item(
        &coord,
        space,
        "Lieferdienst der Tafel",
        ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Tafel".into(),
                ..Default::default()
            },
            category: Some("einkauf".into()),
            ..Default::default()
        }),
        &[],
    );
    for _ in 0..2 {
        for p in shuffled(phones.to_vec(), &mut state) {
            p.sync().await;
        }
    }
    anna.store
        .agree_to_help(wanted.id, vera.person, "Anna")
        .expect("agree");
    coord
        .store
        .moderate_item(post.id, ModerationAction::Hide, "Fundsachen bitte ans Brett")
        .expect("hide");
    for _ in 0..3 {
        for p in shuffled(phones.to_vec(), &mut state) {
            p.sync().await;
        }
    }

    let expected_anna = BTreeMap::from([
        (NotificationKind::Reply, 1),
        (NotificationKind::Response, 2),
        (NotificationKind::Followed, 2),
        (NotificationKind::Moderation, 1),
    ]);
    assert_eq!(kinds(&anna), expected_anna);
    assert_eq!(kinds(&vera), BTreeMap::from([(NotificationKind::Agreed, 1)]));
    assert!(
        kinds(&ben).is_empty(),
        "Ben turned `not chosen` off: {:?}",
        kinds(&ben)
    );
    assert!(kinds(&coord).is_empty(), "nothing concerned the coordinator");
    let reply = anna
        .store
        .notifications(false, 100)
        .expect("list")
        .into_iter()
        .find(|n| n.kind == NotificationKind::Reply)
        .expect("reply");
    assert_eq!((reply.item, reply.person), (Some(post.id), Some(ben.person)));
    let moderation = anna
        .store
        .notifications(false, 100)
        .expect("list")
        .into_iter()
        .find(|n| n.kind == NotificationKind::Moderation)
        .expect("moderation");
    assert_eq!(moderation.detail.as_deref(), Some("hide"));

    // A response applied twice (a replayed page) makes nothing new.
    let before = anna.store.notifications(false, 1_000).expect("list").len();
    let account = anna.store.account().expect("account").expect("registered");
    let (request, pushed) = anna.store.build_sync_request(1 << 20, 10).expect("request");
    let mut rewound = request.clone();
    for cursor in &mut rewound.cursors {
        cursor.after = None;
    }
    if let Some(m) = &mut rewound.moderation {
        for c in &mut m.cursors {
            c.after = 0;
        }
    }
    if let Some(h) = &mut rewound.help {
        for c in &mut h.cursors {
            c.after = 0;
        }
    }
    let answer = post_msg(&url, "/v1/sync", Some(account.token()), &rewound).await;
    assert_eq!(answer.status, 200);
    let response: quartier_protocol::SyncResponse = answer.decode();
    for _ in 0..2 {
        anna.store
            .apply_sync_response(&pushed, response.clone())
            .expect("apply");
    }
    anna.sync().await;
    assert_eq!(
        anna.store.notifications(false, 1_000).expect("list").len(),
        before
    );

    // Read state.
    assert_eq!(anna.store.unread_notifications().expect("unread"), before as u32);
    let first = anna.store.notifications(true, 1).expect("list")[0].id;
    anna.store.mark_notifications_read(&[first]).expect("read");
    assert_eq!(
        anna.store.unread_notifications().expect("unread"),
        before as u32 - 1
    );
    anna.store.mark_notifications_read(&[]).expect("read all");
    assert_eq!(anna.store.unread_notifications().expect("unread"), 0);
    assert!(anna.store.notifications(true, 100).expect("list").is_empty());
}

#[tokio::test]
async fn notifications_remind_of_a_followed_event_once_and_skip_muted_people() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    let ben = join(&url, &coord, space, Role::Resident, "Ben").await;
    sync_each(&[&coord, &anna, &ben]).await;
    // An event starting in about 30 minutes.
    let start = (Utc::now() + Duration::minutes(30)).naive_utc();
    let start = start
        .with_second(0)
        .expect("second")
        .with_nanosecond(0)
        .expect("nanos");
    let event = item(
        &coord,
        space,
        "Nachbarschaftscafé",
        ItemDetails::Event(Event {
            timing: EventTiming {
                start,
                end: start + Duration::hours(2),
                time_zone: "UTC".into(),
                rrule: None,
                exdates: vec![],
            },
            venue: None,
        }),
        &[],
    );
    coord.sync().await;
    anna.sync().await;
    anna.store
        .follow(FollowTarget::Item { item: event.id })
        .expect("follow");
    assert_eq!(anna.store.check_reminders(Utc::now()).expect("remind"), 1);
    assert_eq!(anna.store.check_reminders(Utc::now()).expect("remind"), 0, "once");
    anna.sync().await;
    assert_eq!(kinds(&anna), BTreeMap::from([(NotificationKind::EventSoon, 1)]));
    // Far before: nothing yet.
    let other = join(&url, &coord, space, Role::Resident, "Lea").await;
    other.sync().await;
    other
        .store
        .follow(FollowTarget::Item { item: event.id })
        .expect("follow");
    assert_eq!(
        other
            .store
            .check_reminders(Utc::now() - Duration::hours(3))
            .expect("remind"),
        0
    );

    // Anna mutes Ben: his comment on her item makes nothing.
    let post = anna.post(space, "Suche Leiter", Audience::Everyone);
    anna.sync().await;
    ben.sync().await;
    anna.store.set_muted(ben.person, true).expect("mute");
    item(
        &ben,
        space,
        "Hab eine",
        ItemDetails::Comment(Comment { parent: post.id }),
        &[],
    );
    ben.sync().await;
    anna.sync().await;
    assert_eq!(kinds(&anna), BTreeMap::from([(NotificationKind::EventSoon, 1)]));
    assert!(matches!(
        anna.store.follow(FollowTarget::Tag { tag: " ".into() }),
        Err(quartier_core::Error::Invalid { .. })
    ));
}

/// Follows and the kinds turned off are the person's, kept by the server for all their devices:
/// set on the phone, they hold on the tablet after its sync, and the other way round.
#[tokio::test]
async fn notifications_follows_and_opt_outs_are_kept_per_person() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    coord.sync().await;
    anna.sync().await;
    let link = anna.client.create_device_link(&anna.store).await.expect("link");
    let dir = tempfile::tempdir().expect("dir");
    let tablet =
        quartier_core::Store::open(dir.path().join("tablet.db"), Default::default()).expect("tablet");
    let client = quartier_core::sync::SyncClient::new(&url).expect("client");
    client.register_linked(&tablet, &link.code).await.expect("linked");

    anna.store
        .follow(FollowTarget::Tag {
            tag: "Flohmarkt".into(),
        })
        .expect("follow");
    anna.store
        .set_notifications_enabled(NotificationKind::Followed, false)
        .expect("off");
    anna.sync().await;
    client.sync_now(&tablet, |_| {}).await.expect("tablet sync");
    assert_eq!(
        tablet.follows().expect("follows"),
        vec![FollowTarget::Tag {
            tag: "flohmarkt".into()
        }]
    );
    assert_eq!(
        tablet.disabled_notifications().expect("off"),
        vec![NotificationKind::Followed]
    );
    // Changed on the tablet: back on the phone.
    tablet
        .unfollow(FollowTarget::Tag {
            tag: "flohmarkt".into(),
        })
        .expect("unfollow");
    tablet
        .set_notifications_enabled(NotificationKind::Followed, true)
        .expect("on");
    client.sync_now(&tablet, |_| {}).await.expect("tablet sync");
    anna.sync().await;
    assert!(anna.store.follows().expect("follows").is_empty());
    assert!(anna.store.disabled_notifications().expect("off").is_empty());
}

/// A followed place: a new item within 150 m of it is news, one further away is not; a
/// followed item: a comment on it is news.
#[tokio::test]
async fn notifications_for_a_followed_place_and_a_followed_item() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    sync_each(&[&coord, &anna, &vera]).await;
    let at = |title: &str, lat: f64, lon: f64, details: ItemDetails| {
        let content = ItemContent {
            location: Some(Location::new(lat, lon)),
            ..ItemContent::new(LocalizedText::single("de", title), details)
        };
        vera.store
            .create_item(NewItem::new(space, vera.person, content))
            .expect("item")
    };
    let place = at(
        "Bürgerzentrum",
        50.9680,
        6.9520,
        ItemDetails::Place(Place::default()),
    );
    let news = item(
        &vera,
        space,
        "Neues vom Hof",
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
        &[],
    );
    vera.sync().await;
    anna.sync().await;
    anna.store
        .follow(FollowTarget::Item { item: place.id })
        .expect("follow place");
    anna.store
        .follow(FollowTarget::Item { item: news.id })
        .expect("follow item");
    // About 60 m away, and about 2 km away.
    let near = at(
        "Flohmarkt vor dem Bürgerzentrum",
        50.9685,
        6.9525,
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
    );
    at(
        "Flohmarkt am Dom",
        50.9413,
        6.9583,
        ItemDetails::Post(Post {
            post_type: PostType::News,
        }),
    );
    item(
        &vera,
        space,
        "Und noch etwas",
        ItemDetails::Comment(Comment { parent: news.id }),
        &[],
    );
    vera.sync().await;
    anna.sync().await;
    let told: Vec<_> = anna
        .store
        .notifications(false, 10)
        .expect("list")
        .into_iter()
        .map(|n| (n.kind, n.item))
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told.contains(&(NotificationKind::Followed, Some(near.id))),
        "{told:?}"
    );
    assert!(
        told.contains(&(NotificationKind::Followed, Some(news.id))),
        "the comment on a followed item: {told:?}"
    );
}
