//! Moderation against a real `quartier-server` with four phones (a coordinator, a volunteer,
//! two residents): report → queue → hide → gone from every other phone; restore; erase (the
//! item and its comments gone from the server and every phone); block (pending changes refused
//! with `blocked`); mute (on this person's phones only); bad input. `cargo test moderat`.

use crate::common;

use common::*;
use quartier_core::model::*;
use quartier_core::moderation::{ModerationAction, ReportReason};
use quartier_core::query::SearchRequest;
use quartier_core::Error;
use quartier_protocol::moderation::{Decision, ModerationCursor, ModerationRequest, Report};
use quartier_protocol::{SyncRequest, SyncResponse, PROTOCOL_VERSION};
use uuid::Uuid;

struct Neighbourhood {
    _server: Server,
    url: String,
    space: SpaceId,
    coordinator: Device,
    volunteer: Device,
    anna: Device,
    ben: Device,
}

impl Neighbourhood {
    async fn new() -> Self {
        let server = Server::start();
        let url = server.url.clone();
        let (coordinator, space) = space_with_coordinator(&url).await;
        let volunteer = join(&url, &coordinator, space, Role::Volunteer, "Vera").await;
        let anna = join(&url, &coordinator, space, Role::Resident, "Anna").await;
        let ben = join(&url, &coordinator, space, Role::Resident, "Ben").await;
        let n = Neighbourhood {
            _server: server,
            url,
            space,
            coordinator,
            volunteer,
            anna,
            ben,
        };
        n.sync_all().await;
        n
    }

    fn all(&self) -> [(&Device, Role); 4] {
        [
            (&self.coordinator, Role::Coordinator),
            (&self.volunteer, Role::Volunteer),
            (&self.anna, Role::Resident),
            (&self.ben, Role::Resident),
        ]
    }

    async fn sync_all(&self) {
        for (device, _) in self.all() {
            device.sync().await;
        }
    }
}

fn sees(device: &Device, role: Role, space: SpaceId, title: &str) -> bool {
    titles(&device.store, space, device.viewer(role))
        .iter()
        .any(|t| t == title)
}

fn finds(device: &Device, role: Role, space: SpaceId, word: &str) -> bool {
    let request = SearchRequest::new(space, device.viewer(role), word);
    !device.store.search(&request).expect("search").is_empty()
}

#[tokio::test]
async fn moderation_report_hide_restore_reaches_every_phone_and_the_author_cannot_unhide() {
    let n = Neighbourhood::new().await;
    let spam = n.anna.post(n.space, "Billige Uhren", Audience::Everyone);
    n.anna.sync().await;
    n.sync_all().await;
    for (device, role) in n.all() {
        assert!(
            sees(device, role, n.space, "Billige Uhren"),
            "everyone sees the post first"
        );
    }

    // Ben reports it; the coordinator's queue shows it with Ben as the reporter.
    n.ben
        .store
        .report_item(spam.id, ReportReason::Spam, "Werbung")
        .expect("report");
    assert_eq!(n.ben.store.pending_moderation().expect("pending").len(), 1);
    n.ben.sync().await;
    assert!(
        n.ben.store.pending_moderation().expect("pending").is_empty(),
        "the server took it"
    );
    assert!(
        n.ben.store.moderation_queue(n.space).expect("queue").is_empty(),
        "only coordinators see reports"
    );
    n.coordinator.sync().await;
    let queue = n.coordinator.store.moderation_queue(n.space).expect("queue");
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].item, spam.id);
    assert_eq!(queue[0].title.as_deref(), Some("Billige Uhren"));
    assert_eq!(queue[0].author, Some(n.anna.person));
    assert_eq!(queue[0].reports[0].reporter, Some(n.ben.person));
    assert_eq!(queue[0].reports[0].reason, ReportReason::Spam);
    // The volunteer and the author never learn who reported (nor that anyone did).
    n.volunteer.sync().await;
    n.anna.sync().await;
    assert!(n
        .volunteer
        .store
        .moderation_log(n.space, 50)
        .expect("log")
        .is_empty());
    assert!(n.anna.store.moderation_log(n.space, 50).expect("log").is_empty());

    // A resident may not moderate: refused at once, and by the server where the check is off.
    match n.ben.store.moderate_item(spam.id, ModerationAction::Hide, "") {
        Err(Error::NotPermitted { code, .. }) => assert_eq!(code, RejectCode::Forbidden),
        other => panic!("a resident hid an item: {other:?}"),
    }
    n.ben.store.set_local_permission_check(false);
    let attempt = n
        .ben
        .store
        .moderate_item(spam.id, ModerationAction::Hide, "")
        .expect("queued");
    n.ben.sync().await;
    let refused = n.ben.store.pending_moderation().expect("pending");
    assert_eq!(refused.len(), 1);
    assert_refused(&refused[0].refused, "forbidden");
    assert!(
        sees(&n.ben, Role::Resident, n.space, "Billige Uhren"),
        "a refused hide does not hide"
    );
    n.ben.store.dismiss_pending_moderation(attempt).expect("dismiss");
    n.ben.store.set_local_permission_check(true);

    // The coordinator hides it: gone from the coordinator's views at once, from everyone
    // else's after their next sync; the author still sees it, and the note.
    n.coordinator
        .store
        .moderate_item(spam.id, ModerationAction::Hide, "Werbung ist hier nicht erlaubt")
        .expect("hide");
    assert!(!sees(&n.coordinator, Role::Coordinator, n.space, "Billige Uhren"));
    n.coordinator.sync().await;
    assert!(
        n.coordinator
            .store
            .moderation_queue(n.space)
            .expect("queue")
            .is_empty(),
        "decided"
    );
    n.sync_all().await;
    for (device, role) in [(&n.volunteer, Role::Volunteer), (&n.ben, Role::Resident)] {
        assert!(
            !sees(device, role, n.space, "Billige Uhren"),
            "hidden in the feed"
        );
        assert!(!finds(device, role, n.space, "Uhren"), "hidden in search");
        assert!(
            device.store.item_detail(spam.id, &device.viewer(role)).is_err(),
            "hidden in detail"
        );
    }
    assert!(
        sees(&n.anna, Role::Resident, n.space, "Billige Uhren"),
        "the author still sees it"
    );
    let told = n.anna.store.moderation_log(n.space, 50).expect("log");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].action, ModerationAction::Hide);
    assert_eq!(told[0].text.as_deref(), Some("Werbung ist hier nicht erlaubt"));
    assert_eq!(told[0].actor, None, "the author is not told which coordinator");
    let seen_by_ben = n.ben.store.moderation_log(n.space, 50).expect("log");
    assert_eq!(
        seen_by_ben[0].text, None,
        "the note is for the author and the coordinators"
    );

    // The author edits the item: it stays hidden (moderation is not document data).
    n.anna.retitle(spam.id, "Billige Uhren, jetzt noch billiger");
    n.anna.sync().await;
    n.sync_all().await;
    assert!(!sees(
        &n.ben,
        Role::Resident,
        n.space,
        "Billige Uhren, jetzt noch billiger"
    ));
    assert!(!finds(&n.volunteer, Role::Volunteer, n.space, "billiger"));

    // Restored: back on every phone.
    n.coordinator
        .store
        .moderate_item(spam.id, ModerationAction::Restore, "doch in Ordnung")
        .expect("restore");
    n.coordinator.sync().await;
    n.sync_all().await;
    for (device, role) in n.all() {
        assert!(
            sees(device, role, n.space, "Billige Uhren, jetzt noch billiger"),
            "restored"
        );
    }
    // Restoring what is not hidden is refused by the server, and stays listed as refused.
    n.coordinator
        .store
        .moderate_item(spam.id, ModerationAction::Restore, "")
        .expect("queued");
    n.coordinator.sync().await;
    let refused = n.coordinator.store.pending_moderation().expect("pending");
    assert_refused(&refused[0].refused, "not_allowed_now");
    // The coordinators' log holds every step, with who did it.
    let log = n.coordinator.store.moderation_log(n.space, 50).expect("log");
    let actions: Vec<_> = log.iter().rev().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            ModerationAction::Report,
            ModerationAction::Hide,
            ModerationAction::Restore
        ]
    );
    assert!(log.iter().all(|e| e.actor.is_some()));
}

#[tokio::test]
async fn moderation_erase_removes_the_item_and_its_comments_from_the_server_and_every_phone() {
    let n = Neighbourhood::new().await;
    let post = n
        .anna
        .post(n.space, "Hier wohnt Herr M., Hausnummer 12", Audience::Everyone);
    n.anna.sync().await;
    n.volunteer.sync().await;
    let comment = n
        .volunteer
        .store
        .create_item(NewItem::new(
            n.space,
            n.volunteer.person,
            ItemContent::new(
                LocalizedText::single("de", "Bitte löschen"),
                ItemDetails::Comment(Comment { parent: post.id }),
            ),
        ))
        .expect("comment");
    n.volunteer.sync().await;
    n.sync_all().await;
    assert!(n
        .ben
        .store
        .item_detail(comment.id, &n.ben.viewer(Role::Resident))
        .is_ok());

    n.ben
        .store
        .report_item(post.id, ReportReason::PersonalData, "Adresse eines Nachbarn")
        .expect("report");
    n.ben.sync().await;
    // Meanwhile the author edits it offline.
    n.anna.retitle(post.id, "Hier wohnt Herr M.");
    n.coordinator.sync().await;
    n.coordinator
        .store
        .moderate_item(post.id, ModerationAction::Erase, "persönliche Daten")
        .expect("erase");
    n.coordinator.sync().await;
    // The author's pending edit is refused as erased, and the item leaves the phone.
    let report = n.anna.sync().await;
    assert!(
        report.rejected.iter().any(|r| r.code == "erased"),
        "{:?}",
        report.rejected
    );
    n.sync_all().await;
    for (device, role) in n.all() {
        for id in [post.id, comment.id] {
            assert!(
                matches!(
                    device.store.item_detail(id, &device.viewer(role)),
                    Err(Error::NotFound { .. })
                ),
                "erased from every phone"
            );
        }
        assert!(!finds(device, role, n.space, "Hausnummer"));
    }
    // A new member gets nothing of it; acting on it again is refused.
    let late = join(&n.url, &n.coordinator, n.space, Role::Volunteer, "Lea").await;
    late.sync().await;
    assert!(late
        .store
        .item_detail(post.id, &late.viewer(Role::Volunteer))
        .is_err());
    assert!(late
        .store
        .item_detail(comment.id, &late.viewer(Role::Volunteer))
        .is_err());
    assert!(matches!(
        n.coordinator
            .store
            .moderate_item(post.id, ModerationAction::Hide, ""),
        Err(Error::NotFound { .. })
    ));
    let raw = RawDevice::register(&n.url, "Roh").await;
    let code = n.coordinator.invite(n.space, Role::Coordinator).await;
    raw.redeem(&n.url, &code).await;
    let answer = moderation_sync(
        &n.url,
        &raw,
        ModerationRequest {
            decisions: vec![decision(n.space, "hide", Some(post.id.as_uuid()), None)],
            ..Default::default()
        },
    )
    .await;
    let refusal = answer.outcomes[0].refused.as_ref().expect("refused");
    assert_eq!(refusal.code, "erased");
}

#[tokio::test]
async fn moderation_block_refuses_pending_changes_with_a_clear_reason() {
    let n = Neighbourhood::new().await;
    // Written offline, before the block.
    n.anna.post(n.space, "Noch ein Angebot", Audience::Everyone);
    match n
        .coordinator
        .store
        .moderate_member(n.space, n.coordinator.person, ModerationAction::Block, "")
    {
        Ok(_) => {
            n.coordinator.sync().await;
            let pending = n.coordinator.store.pending_moderation().expect("pending");
            assert_refused(&pending[0].refused, "forbidden");
            n.coordinator
                .store
                .dismiss_pending_moderation(pending[0].id)
                .expect("dismiss");
        }
        Err(e) => panic!("queued either way: {e:?}"),
    }
    n.coordinator
        .store
        .moderate_member(
            n.space,
            n.anna.person,
            ModerationAction::Block,
            "wiederholt Werbung",
        )
        .expect("block");
    n.coordinator.sync().await;
    let report = n.anna.sync().await;
    assert!(
        report.rejected.iter().any(|r| r.code == "blocked"),
        "{:?}",
        report.rejected
    );
    assert!(n.anna.store.is_blocked(n.space).expect("blocked"));
    let told = n.anna.store.moderation_log(n.space, 10).expect("log");
    assert_eq!(told[0].action, ModerationAction::Block);
    assert_eq!(told[0].text.as_deref(), Some("wiederholt Werbung"));
    // Nothing of hers reached anyone; a new write is refused at once.
    n.sync_all().await;
    assert!(!sees(&n.ben, Role::Resident, n.space, "Noch ein Angebot"));
    assert!(
        n.ben.store.moderation_log(n.space, 10).expect("log").is_empty(),
        "others are not told"
    );
    let write = n.anna.store.create_item(NewItem::new(
        n.space,
        n.anna.person,
        ItemContent::new(
            LocalizedText::single("de", "Trotzdem"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        ),
    ));
    match write {
        Err(Error::NotPermitted { code, .. }) => assert_eq!(code, RejectCode::Blocked),
        other => panic!("a blocked member wrote: {other:?}"),
    }
    // She still reads.
    n.volunteer.post(n.space, "Kaffee am Freitag", Audience::Everyone);
    n.volunteer.sync().await;
    n.anna.sync().await;
    assert!(sees(&n.anna, Role::Resident, n.space, "Kaffee am Freitag"));

    // Unblocked: she writes again.
    n.coordinator
        .store
        .moderate_member(n.space, n.anna.person, ModerationAction::Unblock, "")
        .expect("unblock");
    n.coordinator.sync().await;
    n.anna.sync().await;
    assert!(!n.anna.store.is_blocked(n.space).expect("blocked"));
    n.anna.post(n.space, "Wieder da", Audience::Everyone);
    n.anna.sync().await;
    n.ben.sync().await;
    assert!(sees(&n.ben, Role::Resident, n.space, "Wieder da"));
}

#[tokio::test]
async fn moderation_mute_hides_a_person_on_my_phones_only() {
    let n = Neighbourhood::new().await;
    n.anna.post(n.space, "Laut und viel", Audience::Everyone);
    n.anna.sync().await;
    n.sync_all().await;
    assert!(matches!(
        n.ben.store.set_muted(n.ben.person, true),
        Err(Error::Invalid { .. })
    ));
    n.ben.store.set_muted(n.anna.person, true).expect("mute");
    assert!(
        !sees(&n.ben, Role::Resident, n.space, "Laut und viel"),
        "at once here"
    );
    n.ben.sync().await;
    assert_eq!(
        n.ben.store.muted_persons().expect("muted"),
        vec![n.anna.person],
        "kept by the server"
    );
    n.sync_all().await;
    assert!(!sees(&n.ben, Role::Resident, n.space, "Laut und viel"));
    assert!(
        sees(&n.volunteer, Role::Volunteer, n.space, "Laut und viel"),
        "nobody else's view"
    );
    assert!(
        n.anna.store.moderation_log(n.space, 10).expect("log").is_empty(),
        "she is not told"
    );
    // Later posts of hers are muted as they arrive.
    n.anna.post(n.space, "Noch lauter", Audience::Everyone);
    n.anna.sync().await;
    n.ben.sync().await;
    assert!(!sees(&n.ben, Role::Resident, n.space, "Noch lauter"));
    n.ben.store.set_muted(n.anna.person, false).expect("unmute");
    n.ben.sync().await;
    assert!(sees(&n.ben, Role::Resident, n.space, "Noch lauter"));
    assert!(n.ben.store.muted_persons().expect("muted").is_empty());
}

fn decision(space: SpaceId, action: &str, item: Option<Uuid>, person: Option<Uuid>) -> Decision {
    Decision {
        id: Uuid::now_v7(),
        space: space.as_uuid(),
        action: action.into(),
        item,
        person,
        note: String::new(),
        at_ms: 0,
    }
}

async fn moderation_sync(
    url: &str,
    device: &RawDevice,
    moderation: ModerationRequest,
) -> quartier_protocol::moderation::ModerationResponse {
    let answer = post_msg(
        url,
        "/v1/sync",
        Some(&device.token),
        &SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: vec![],
            push: vec![],
            budget_bytes: 1024 * 1024,
            accepts: vec![],
            counselling: None,
            credentials: None,
            moderation: Some(moderation),
            help: None,
        },
    )
    .await;
    assert_eq!(answer.status, 200, "sync: {:?}", answer.error_body());
    let response: SyncResponse = answer.decode();
    response.moderation.expect("a moderation answer")
}

#[tokio::test]
async fn moderation_bad_input_is_refused_entry_by_entry_and_nothing_is_stored() {
    let n = Neighbourhood::new().await;
    let post = n.anna.post(n.space, "Flohmarkt", Audience::Everyone);
    n.anna.sync().await;
    let raw = RawDevice::register(&n.url, "Roh").await;
    let code = n.coordinator.invite(n.space, Role::Resident).await;
    raw.redeem(&n.url, &code).await;
    let report = |reason: &str, text: String, item: Uuid| Report {
        id: Uuid::now_v7(),
        space: n.space.as_uuid(),
        item,
        reason: reason.into(),
        text,
        at_ms: 0,
    };
    let item = post.id.as_uuid();
    let answer = moderation_sync(
        &n.url,
        &raw,
        ModerationRequest {
            reports: vec![
                report("rude", String::new(), item),
                report("spam", "x".repeat(1_001), item),
                report("other", "  ".into(), item),
                report("spam", String::new(), Uuid::now_v7()),
                report("insult", "gemein".into(), item),
            ],
            decisions: vec![
                decision(n.space, "hide", Some(item), None),
                decision(n.space, "ban", Some(item), None),
            ],
            cursors: vec![ModerationCursor {
                space: n.space.as_uuid(),
                after: 0,
            }],
            ..Default::default()
        },
    )
    .await;
    let codes: Vec<Option<&str>> = answer
        .outcomes
        .iter()
        .map(|o| o.refused.as_ref().map(|r| r.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            Some("invalid"),
            Some("invalid"),
            Some("invalid"),
            Some("not_found"),
            None,
            Some("forbidden"),
            Some("invalid")
        ]
    );
    assert!(
        answer.events.is_empty(),
        "a resident sees no reports: {:?}",
        answer.events
    );
    // Only the good report reached the coordinators.
    n.coordinator.sync().await;
    let queue = n.coordinator.store.moderation_queue(n.space).expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].reports.len(), 1);
    assert_eq!(queue[0].reports[0].reason, ReportReason::Insult);
    // Too many entries, or a space named twice: the whole request is refused.
    let answer = post_msg(
        &n.url,
        "/v1/sync",
        Some(&raw.token),
        &SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursors: vec![],
            push: vec![],
            budget_bytes: 1024,
            accepts: vec![],
            counselling: None,
            credentials: None,
            moderation: Some(ModerationRequest {
                reports: (0..201).map(|_| report("spam", String::new(), item)).collect(),
                ..Default::default()
            }),
            help: None,
        },
    )
    .await;
    assert_eq!(answer.status, 400);
    // A report on the device: bad text is `Invalid`, nothing queued.
    assert!(matches!(
        n.ben.store.report_item(post.id, ReportReason::Other, " "),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        n.ben
            .store
            .report_item(post.id, ReportReason::Spam, &"x".repeat(1_001)),
        Err(Error::Invalid { .. })
    ));
    assert!(n.ben.store.pending_moderation().expect("pending").is_empty());
}

fn comment(d: &Device, space: SpaceId, parent: ItemId, text: &str) -> Item {
    d.store
        .create_item(NewItem::new(
            space,
            d.person,
            ItemContent::new(
                LocalizedText::single("de", text),
                ItemDetails::Comment(Comment { parent }),
            ),
        ))
        .expect("comment")
}

// Found by an attacker's review: each of these failed before its fix.

/// A comment written before (offline) or after an erasure, pointing at the erased item, is
/// taken by the server and served to every later member.
#[tokio::test]
async fn moderation_a_comment_on_an_erased_item_is_refused_before_or_after_the_erasure() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    let post = coord.post(space, "Adresse von Herrn M.", Audience::Everyone);
    coord.sync().await;
    vera.sync().await;
    let c = comment(&vera, space, post.id, "Hausnummer 12, 2. Stock"); // offline
    coord
        .store
        .moderate_item(post.id, ModerationAction::Erase, "")
        .expect("call");
    coord.sync().await;
    let report = vera.sync().await;
    assert!(
        report.rejected.iter().any(|r| r.code == "erased"),
        "{:?}",
        report.rejected
    );
    let late = join(&url, &coord, space, Role::Volunteer, "Lea").await;
    late.sync().await;
    let got = late.store.item_detail(c.id, &late.viewer(Role::Volunteer));
    assert!(got.is_err(), "comment of erased item still served: {got:?}");
}

/// A comment created under an innocuous item and then moved (edit of details.parent) under
/// the item later erased is not erased on the server (parent recorded at creation only).
#[tokio::test]
async fn moderation_a_comment_cannot_move_out_of_an_items_erasure() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    let target = coord.post(space, "Thread", Audience::Everyone);
    let decoy = coord.post(space, "Decoy", Audience::Everyone);
    coord.sync().await;
    vera.sync().await;
    let c = comment(&vera, space, decoy.id, "Hausnummer 12");
    vera.sync().await;
    let moved = vera.store.update_item(
        c.id,
        &ItemPatch {
            details: Some(ItemDetails::Comment(Comment { parent: target.id })),
            ..Default::default()
        },
        vera.person,
    );
    assert!(matches!(moved, Err(Error::NotPermitted { .. })), "{moved:?}");
    vera.sync().await;
    coord.sync().await;
    coord
        .store
        .moderate_item(target.id, ModerationAction::Erase, "")
        .expect("call");
    coord.sync().await;
    let late = join(&url, &coord, space, Role::Volunteer, "Lea").await;
    late.sync().await;
    // It stayed with the item it was written under; the server refuses the move too.
    let got = late
        .store
        .item_detail(c.id, &late.viewer(Role::Volunteer))
        .expect("the comment stays");
    assert_eq!(got.item.content.details.parent(), Some(decoy.id));
    vera.store.set_local_permission_check(false);
    vera.store
        .update_item(
            c.id,
            &ItemPatch {
                details: Some(ItemDetails::Comment(Comment { parent: target.id })),
                ..Default::default()
            },
            vera.person,
        )
        .expect("queued");
    let report = vera.sync().await;
    assert!(
        report.rejected.iter().any(|r| r.code == "forbidden"),
        "{:?}",
        report.rejected
    );
}

/// A resident is told, through the log, the id and author of a volunteers-only item that was
/// hidden (an item they may not read).
#[tokio::test]
async fn moderation_the_log_says_nothing_of_items_a_member_may_not_read() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let vera = join(&url, &coord, space, Role::Volunteer, "Vera").await;
    let anna = join(&url, &coord, space, Role::Resident, "Anna").await;
    coord.sync().await;
    vera.sync().await;
    anna.sync().await;
    let secret = vera.post(space, "Nur für Ehrenamtliche", Audience::Volunteers);
    vera.sync().await;
    coord.sync().await;
    coord
        .store
        .moderate_item(secret.id, ModerationAction::Hide, "")
        .expect("call");
    coord.sync().await;
    anna.sync().await;
    let log = anna.store.moderation_log(space, 10).expect("call");
    assert!(log.is_empty(), "resident learns of an unreadable item: {log:?}");
}

/// Caseworker-only items (not even coordinators read them) reach the coordinators' queue with
/// their author when reported, and the coordinators can never close the report.
#[tokio::test]
async fn moderation_a_caseworkers_item_is_not_reported_to_coordinators() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let cw = join(&url, &coord, space, Role::Caseworker, "Carla").await;
    coord.sync().await;
    cw.sync().await;
    let secret = cw.post(space, "Fall 17", Audience::Caseworkers);
    cw.sync().await;
    cw.store
        .report_item(secret.id, ReportReason::Other, "Klientin Frau K. bedroht")
        .expect("call");
    cw.sync().await;
    coord.sync().await;
    let q = coord.store.moderation_queue(space).expect("call");
    assert!(
        q.is_empty(),
        "coordinators see a caseworkers-only item's report: {q:?}"
    );
    let told = cw.store.pending_moderation().expect("pending");
    assert_refused(&told[0].refused, "forbidden");
}

/// A non-coordinator's cursor moves past reports it is not shown: it learns when reports are made.
#[tokio::test]
async fn moderation_a_members_cursor_does_not_reveal_reports() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let ben = join(&url, &coord, space, Role::Resident, "Ben").await;
    let post = coord.post(space, "Flohmarkt", Audience::Everyone);
    coord.sync().await;
    ben.sync().await;
    let raw = RawDevice::register(&url, "Spion").await;
    let code = coord.invite(space, Role::Resident).await;
    raw.redeem(&url, &code).await;
    let cur = |after| ModerationRequest {
        cursors: vec![ModerationCursor {
            space: space.as_uuid(),
            after,
        }],
        ..Default::default()
    };
    let a0 = moderation_sync(&url, &raw, cur(0)).await.cursors[0].after;
    ben.store
        .report_item(post.id, ReportReason::Spam, "")
        .expect("call");
    ben.sync().await;
    let a1 = moderation_sync(&url, &raw, cur(a0)).await;
    assert!(a1.events.is_empty());
    assert_eq!(
        a1.cursors[0].after, a0,
        "the cursor moved past a hidden report: a report was made"
    );
}

/// A blocked member keeps filling the coordinators' queue: 200 reports per request, no limit.
#[tokio::test]
async fn moderation_a_blocked_member_cannot_report() {
    let server = Server::start();
    let url = server.url.clone();
    let (coord, space) = space_with_coordinator(&url).await;
    let post = coord.post(space, "Flohmarkt", Audience::Everyone);
    coord.sync().await;
    let raw = RawDevice::register(&url, "Troll").await;
    let code = coord.invite(space, Role::Resident).await;
    raw.redeem(&url, &code).await;
    coord.sync().await;
    coord
        .store
        .moderate_member(space, raw.person, ModerationAction::Block, "")
        .expect("call");
    coord.sync().await;
    let reports = (0..200)
        .map(|_| Report {
            id: Uuid::now_v7(),
            space: space.as_uuid(),
            item: post.id.as_uuid(),
            reason: "other".into(),
            text: "x".repeat(1000),
            at_ms: 0,
        })
        .collect();
    let a = moderation_sync(
        &url,
        &raw,
        ModerationRequest {
            reports,
            ..Default::default()
        },
    )
    .await;
    let taken = a.outcomes.iter().filter(|o| o.refused.is_none()).count();
    assert_eq!(taken, 0, "a blocked member's reports are taken");
}

/// The log is cut to the role: a member made coordinator gets the reports made before, and a
/// coordinator made resident no longer holds them.
#[tokio::test]
async fn moderation_a_new_role_reads_the_log_again() {
    let n = Neighbourhood::new().await;
    let post = n.anna.post(n.space, "Lärm", Audience::Everyone);
    n.anna.sync().await;
    n.ben.sync().await;
    n.ben
        .store
        .report_item(post.id, ReportReason::Insult, "unfreundlich")
        .expect("report");
    n.ben.sync().await;
    n.volunteer.sync().await;
    assert!(n
        .volunteer
        .store
        .moderation_queue(n.space)
        .expect("queue")
        .is_empty());
    n.coordinator
        .client
        .set_role(
            &n.coordinator.store,
            n.space,
            n.volunteer.person,
            Role::Coordinator,
        )
        .await
        .expect("promote");
    n.volunteer.sync().await;
    let queue = n.volunteer.store.moderation_queue(n.space).expect("queue");
    assert_eq!(queue.len(), 1, "the report made before the promotion: {queue:?}");
    assert_eq!(queue[0].reports[0].reporter, Some(n.ben.person));
    n.coordinator
        .client
        .set_role(&n.coordinator.store, n.space, n.volunteer.person, Role::Resident)
        .await
        .expect("demote");
    n.volunteer.sync().await;
    assert!(n
        .volunteer
        .store
        .moderation_queue(n.space)
        .expect("queue")
        .is_empty());
    assert!(n
        .volunteer
        .store
        .moderation_log(n.space, 10)
        .expect("log")
        .is_empty());
}
