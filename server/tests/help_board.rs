//! The help board against a real `quartier-server`: a resident's request (Suche) moves through
//! open → responses → agreed with one person → done, with contacts shared between the two only;
//! two agreements made offline on two phones of the author: exactly one holds, the other phone
//! is told; withdrawn and expired requests leave the board; bad steps are refused one by one.
//! `cargo test help_board`.

use crate::common;

use chrono::{Duration, Utc};
use common::*;
use quartier_core::help::HelpState;
use quartier_core::model::*;
use quartier_core::Error;

fn request(device: &Device, space: SpaceId, title: &str, valid_for: Option<Duration>) -> Item {
    let content = ItemContent {
        valid_until: valid_for.map(|d| Utc::now() + d),
        ..ItemContent::new(
            LocalizedText::single("de", title),
            ItemDetails::Request(Request {
                direction: RequestDirection::Need,
                category: "einkauf".into(),
                state: RequestState::Open,
            }),
        )
    };
    device
        .store
        .create_item(NewItem::new(space, device.person, content))
        .expect("request")
}

fn on_board(device: &Device, space: SpaceId, role: Role, item: &Item) -> bool {
    device
        .store
        .help_board(space, device.viewer(role))
        .expect("board")
        .iter()
        .any(|i| i.id == item.id)
}

struct Street {
    _server: Server,
    space: SpaceId,
    coordinator: Device,
    anna: Device,
    ben: Device,
    vera: Device,
}

async fn street() -> Street {
    let server = Server::start();
    let url = server.url.clone();
    let (coordinator, space) = space_with_coordinator(&url).await;
    let anna = join(&url, &coordinator, space, Role::Resident, "Anna").await;
    let ben = join(&url, &coordinator, space, Role::Resident, "Ben").await;
    let vera = join(&url, &coordinator, space, Role::Volunteer, "Vera").await;
    sync_each(&[&coordinator, &anna, &ben, &vera]).await;
    Street {
        _server: server,
        space,
        coordinator,
        anna,
        ben,
        vera,
    }
}

#[tokio::test]
async fn help_board_request_flow_shares_contacts_between_the_two_only() {
    let s = street().await;
    let wanted = request(
        &s.anna,
        s.space,
        "Wer kann für mich einkaufen?",
        Some(Duration::days(3)),
    );
    s.anna.sync().await;
    sync_each(&[&s.ben, &s.vera, &s.coordinator]).await;
    assert!(on_board(&s.ben, s.space, Role::Resident, &wanted));
    assert!(matches!(
        s.anna.store.respond_to_request(wanted.id, "", ""),
        Err(Error::NotPermitted { .. })
    ));

    // Two responses, both made offline.
    s.ben
        .store
        .respond_to_request(wanted.id, "Ich fahre morgen", "0171 111")
        .expect("respond");
    s.vera
        .store
        .respond_to_request(wanted.id, "Ich auch", "0171 222")
        .expect("respond");
    assert_eq!(
        s.ben
            .store
            .help_status(wanted.id)
            .expect("status")
            .responses
            .len(),
        1,
        "counted at once"
    );
    s.ben.sync().await;
    s.vera.sync().await;
    s.anna.sync().await;
    s.coordinator.sync().await;
    let seen = s.anna.store.help_status(wanted.id).expect("status");
    assert_eq!(seen.state, HelpState::Open);
    let mut responders: Vec<_> = seen.responses.iter().map(|r| r.person).collect();
    responders.sort();
    let mut expected = vec![s.ben.person, s.vera.person];
    expected.sort();
    assert_eq!(responders, expected, "the author sees both responses");
    assert_eq!(seen.contact, None, "no contact before agreeing");
    let uninvolved = s.coordinator.store.help_status(wanted.id).expect("status");
    assert!(uninvolved.responses.is_empty(), "nobody else sees who responded");
    let vera_sees = s.ben.store.help_status(wanted.id).expect("status");
    assert_eq!(
        vera_sees.responses.len(),
        1,
        "a responder sees their own response only"
    );
    // Responding twice is refused by the server.
    s.ben
        .store
        .respond_to_request(wanted.id, "nochmal", "")
        .expect("queued");
    s.ben.sync().await;
    let refused = s.ben.store.pending_help().expect("pending");
    assert_refused(&refused[0].refused, "not_allowed_now");
    s.ben.store.dismiss_pending_help(refused[0].id).expect("dismiss");

    // Anna chooses Ben; the contacts reach the two of them only.
    assert!(matches!(
        s.ben.store.agree_to_help(wanted.id, s.vera.person, ""),
        Err(Error::NotPermitted { .. })
    ));
    s.anna
        .store
        .agree_to_help(wanted.id, s.ben.person, "Anna, 0221 333")
        .expect("agree");
    assert!(
        !on_board(&s.anna, s.space, Role::Resident, &wanted),
        "off the board at once"
    );
    s.anna.sync().await;
    sync_each(&[&s.ben, &s.vera, &s.coordinator]).await;
    let anna = s.anna.store.help_status(wanted.id).expect("status");
    assert_eq!(
        (anna.state, anna.agreed_with, anna.contact.as_deref()),
        (HelpState::Agreed, Some(s.ben.person), Some("0171 111"))
    );
    let ben = s.ben.store.help_status(wanted.id).expect("status");
    assert_eq!(
        (ben.state, ben.chosen, ben.contact.as_deref()),
        (HelpState::Agreed, Some(true), Some("Anna, 0221 333"))
    );
    let vera = s.vera.store.help_status(wanted.id).expect("status");
    assert_eq!(
        (vera.state, vera.chosen, vera.agreed_with, vera.contact),
        (HelpState::Agreed, Some(false), None, None),
        "Vera is told it was not her, not who it was"
    );
    let other = s.coordinator.store.help_status(wanted.id).expect("status");
    assert_eq!(
        (other.state, other.agreed_with, other.contact),
        (HelpState::Agreed, None, None)
    );
    for (d, role) in [
        (&s.ben, Role::Resident),
        (&s.vera, Role::Volunteer),
        (&s.coordinator, Role::Coordinator),
    ] {
        assert!(
            !on_board(d, s.space, role, &wanted),
            "agreed requests leave every board"
        );
    }

    // Vera cannot close it; Ben can.
    s.vera.store.close_request(wanted.id, "").expect("queued");
    s.vera.sync().await;
    assert!(s.vera.store.pending_help().expect("pending")[0]
        .refused
        .as_deref()
        .is_some_and(|r| r.starts_with("forbidden")));
    s.ben
        .store
        .close_request(wanted.id, "Erledigt, gern geschehen")
        .expect("done");
    s.ben.sync().await;
    s.anna.sync().await;
    assert_eq!(
        s.anna.store.help_status(wanted.id).expect("status").state,
        HelpState::Done
    );
    // Nothing more happens to a done request.
    s.anna.store.withdraw_request(wanted.id, "").expect("queued");
    s.anna.sync().await;
    assert!(s.anna.store.pending_help().expect("pending")[0]
        .refused
        .as_deref()
        .is_some_and(|r| r.starts_with("not_allowed_now")));
}

#[tokio::test]
async fn help_board_two_offline_agreements_exactly_one_holds_and_the_other_phone_is_told() {
    let s = street().await;
    // Anna's tablet: a further device of hers.
    let link = s
        .anna
        .client
        .create_device_link(&s.anna.store)
        .await
        .expect("link");
    let dir = tempfile::tempdir().expect("dir");
    let tablet =
        quartier_core::Store::open(dir.path().join("tablet.db"), Default::default()).expect("tablet");
    let tablet_client = quartier_core::sync::SyncClient::new(s.anna.client.base_url()).expect("client");
    tablet_client
        .register_linked(&tablet, &link.code)
        .await
        .expect("linked");

    let wanted = request(&s.anna, s.space, "Hilfe beim Umzug", None);
    s.anna.sync().await;
    s.ben.sync().await;
    s.vera.sync().await;
    s.ben
        .store
        .respond_to_request(wanted.id, "Ich", "Ben")
        .expect("respond");
    s.vera
        .store
        .respond_to_request(wanted.id, "Ich auch", "Vera")
        .expect("respond");
    s.ben.sync().await;
    s.vera.sync().await;
    s.anna.sync().await;
    // One sync brings a further device everything (its spaces were new to it).
    tablet_client
        .sync_now(&tablet, |_| {})
        .await
        .expect("tablet sync");
    // Both of Anna's phones agree, offline, with different people.
    s.anna
        .store
        .agree_to_help(wanted.id, s.ben.person, "Anna (Telefon)")
        .expect("agree");
    tablet
        .agree_to_help(wanted.id, s.vera.person, "Anna (Tablet)")
        .expect("agree");
    s.anna.sync().await;
    tablet_client
        .sync_now(&tablet, |_| {})
        .await
        .expect("tablet sync");
    // The phone's came first and holds; the tablet is told.
    let told = tablet.pending_help().expect("pending");
    assert_eq!(told.len(), 1);
    assert_refused(&told[0].refused, "not_allowed_now");
    for store in [&s.anna.store, &tablet] {
        let status = store.help_status(wanted.id).expect("status");
        assert_eq!(
            (status.state, status.agreed_with),
            (HelpState::Agreed, Some(s.ben.person))
        );
    }
    s.ben.sync().await;
    s.vera.sync().await;
    assert_eq!(
        s.ben.store.help_status(wanted.id).expect("status").chosen,
        Some(true)
    );
    assert_eq!(
        s.vera.store.help_status(wanted.id).expect("status").chosen,
        Some(false)
    );
    drop(tablet);
}

#[tokio::test]
async fn help_board_withdrawn_and_expired_requests_leave_the_board() {
    let s = street().await;
    let withdrawn = request(&s.anna, s.space, "Leiter leihen", Some(Duration::days(1)));
    let expiring = request(
        &s.anna,
        s.space,
        "Heute noch Brot",
        Some(Duration::milliseconds(1500)),
    );
    s.anna.sync().await;
    s.ben.sync().await;
    assert!(on_board(&s.ben, s.space, Role::Resident, &withdrawn));
    assert!(on_board(&s.ben, s.space, Role::Resident, &expiring));
    s.anna
        .store
        .withdraw_request(withdrawn.id, "hat sich erledigt")
        .expect("withdraw");
    s.anna.sync().await;
    std::thread::sleep(std::time::Duration::from_millis(1600));
    s.ben.sync().await;
    assert!(!on_board(&s.ben, s.space, Role::Resident, &withdrawn));
    assert_eq!(
        s.ben.store.help_status(withdrawn.id).expect("status").state,
        HelpState::Withdrawn
    );
    assert!(
        !on_board(&s.ben, s.space, Role::Resident, &expiring),
        "expired by itself"
    );
    assert_eq!(
        s.ben.store.help_status(expiring.id).expect("status").state,
        HelpState::Expired
    );
    // The server refuses a response to an expired request too.
    s.ben
        .store
        .respond_to_request(expiring.id, "zu spät?", "")
        .expect("queued");
    s.ben.sync().await;
    assert!(s.ben.store.pending_help().expect("pending")[0]
        .refused
        .as_deref()
        .is_some_and(|r| r.contains("expired")));
    // Not a request: NotFound on the device.
    let post = s.anna.post(s.space, "Kein Gesuch", Audience::Everyone);
    assert!(matches!(
        s.anna.store.withdraw_request(post.id, ""),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.ben
            .store
            .respond_to_request(withdrawn.id, &"x".repeat(1_001), ""),
        Err(Error::Invalid { .. })
    ));
}

// Found by an attacker's review; each failed before its fix.

/// A responder who was not chosen learns that, and nothing of who was or what they wrote when
/// closing it: the rows of the end of a request name people to the two who agreed only.
#[tokio::test]
async fn help_board_a_responder_not_chosen_learns_nothing_of_the_chosen_one() {
    let s = street().await;
    let wanted = request(&s.anna, s.space, "Einkauf", Some(Duration::days(3)));
    s.anna.sync().await;
    s.ben.sync().await;
    s.vera.sync().await;
    s.ben
        .store
        .respond_to_request(wanted.id, "ich", "Ben 0171")
        .expect("respond");
    s.vera
        .store
        .respond_to_request(wanted.id, "ich auch", "Vera 0172")
        .expect("respond");
    s.ben.sync().await;
    s.vera.sync().await;
    s.anna.sync().await;
    s.anna
        .store
        .agree_to_help(wanted.id, s.ben.person, "Anna 0221")
        .expect("agree");
    s.anna.sync().await;
    s.ben.sync().await;
    s.ben
        .store
        .close_request(wanted.id, "Ben war bei Anna, Hausnr. 7")
        .expect("done");
    s.ben.sync().await;
    s.vera.sync().await;
    let status = s.vera.store.help_status(wanted.id).expect("status");
    assert_eq!(
        (status.state, status.chosen, status.agreed_with),
        (HelpState::Done, Some(false), None)
    );
    let conn = rusqlite::Connection::open(s.vera.dir.path().join("phone.db")).expect("open");
    let mut stmt = conn
        .prepare("SELECT action, actor, person_id, note FROM help_log WHERE request_id = ?1 AND action != 'respond'")
        .expect("query");
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = stmt
        .query_map([wanted.id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 2, "agree and done: {rows:?}");
    assert!(
        rows.iter()
            .all(|(_, actor, person, note)| actor.is_none() && person.is_none() && note.is_none()),
        "{rows:?}"
    );
    // The author sees the note of the one she chose.
    s.anna.sync().await;
    assert_eq!(
        s.anna.store.help_status(wanted.id).expect("status").state,
        HelpState::Done
    );
}

#[tokio::test]
async fn help_board_an_agreement_still_pending_when_the_request_expires_shows_expired() {
    let s = street().await;
    let wanted = request(&s.anna, s.space, "Heute noch Milch?", Some(Duration::seconds(3)));
    s.anna.sync().await;
    s.ben.sync().await;
    s.ben
        .store
        .respond_to_request(wanted.id, "Ich gehe gleich", "")
        .expect("respond");
    s.ben.sync().await;
    s.anna.sync().await;
    // Anna agrees while the request is open, but her phone is offline until it has expired:
    // the server will refuse the step, so her phone must not show the request as agreed.
    s.anna
        .store
        .agree_to_help(wanted.id, s.ben.person, "0170 123")
        .expect("agree");
    assert_eq!(
        s.anna.store.help_status(wanted.id).expect("status").state,
        HelpState::Agreed,
        "agreed while open"
    );
    let expired = wait_until(std::time::Duration::from_secs(30), || {
        Utc::now() > wanted.content.valid_until.expect("valid until") + Duration::milliseconds(100)
    });
    assert!(expired);
    assert_eq!(
        s.anna.store.help_status(wanted.id).expect("status").state,
        HelpState::Expired
    );
    s.anna.sync().await;
    let status = s.anna.store.help_status(wanted.id).expect("status");
    assert_eq!(status.state, HelpState::Expired);
    assert!(
        status.refused.is_some(),
        "the server refused the late agreement: {status:?}"
    );
}
