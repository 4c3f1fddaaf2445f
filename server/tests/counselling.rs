//! Counselling end to end, with a real `quartier-server` process: a resident and a team of
//! caseworkers exchange end-to-end encrypted messages offline and online; a caseworker taken
//! out of the team reads nothing sent after; a caseworker who joins reads new conversations;
//! a device restored with the passphrase reads the history and one without cannot; case notes
//! reach the team only; erasure removes a conversation everywhere; and the server's data
//! folder holds no plaintext (`cargo test plaintext`).

use crate::common;

use common::scan::find_markers;
use common::*;
use quartier_core::counselling::{route, Body, RecordState, Side};
use quartier_core::model::{Role, SpaceId};
use quartier_core::Error;
use quartier_protocol::counselling::TeamSettings;
use uuid::Uuid;

/// The texts of a channel's decrypted records, in order.
fn texts(device: &Device, channel: Uuid) -> Vec<String> {
    device
        .store
        .counselling_records(channel)
        .expect("records")
        .into_iter()
        .filter_map(|r| match r.body {
            Some(Body::Message { text, .. }) | Some(Body::Note { text, .. }) => Some(text),
            _ => None,
        })
        .collect()
}

fn channel_ids(device: &Device) -> Vec<Uuid> {
    device
        .store
        .counselling_channels()
        .expect("channels")
        .into_iter()
        .map(|c| c.id)
        .collect()
}

struct Team {
    url: String,
    coordinator: Device,
    space: SpaceId,
    team: Uuid,
}

impl Team {
    /// A space with a debt counselling team for postcodes 507…, and a general one.
    async fn new(server: &Server) -> Team {
        let (coordinator, space) = space_with_coordinator(&server.url).await;
        let settings = |postcodes: Vec<String>| TeamSettings {
            name: "Schuldnerberatung".into(),
            topic: "debt".into(),
            postcodes,
            retention_days: Some(90),
        };
        coordinator
            .client
            .create_counselling_team(&coordinator.store, space, &settings(vec![]))
            .await
            .expect("general team");
        let local = coordinator
            .client
            .create_counselling_team(&coordinator.store, space, &settings(vec!["507".into()]))
            .await
            .expect("local team");
        Team {
            url: server.url.clone(),
            coordinator,
            space,
            team: local.id,
        }
    }

    /// A caseworker of the space (appointed by an organisation admin) put into the team.
    async fn caseworker(&self, name: &str) -> Device {
        let device = join(&self.url, &self.coordinator, self.space, Role::Caseworker, name).await;
        self.coordinator
            .client
            .add_team_member(&self.coordinator.store, self.space, self.team, device.person)
            .await
            .expect("into the team");
        device.sync().await;
        device
    }

    async fn resident(&self, name: &str) -> Device {
        join(&self.url, &self.coordinator, self.space, Role::Resident, name).await
    }

    /// The resident opens a conversation by topic and postcode, as the app would.
    async fn open(&self, resident: &Device) -> Uuid {
        let teams = resident
            .client
            .counselling_teams(&resident.store, self.space)
            .await
            .expect("teams");
        let team = route(&teams, "debt", Some("50733")).expect("a debt team for 50733");
        assert_eq!(team.id, self.team, "the local team, not the general one");
        resident
            .store
            .open_conversation(self.space, team.id)
            .expect("open")
    }
}

#[tokio::test]
async fn a_resident_and_a_team_talk_offline_and_online_and_the_server_reads_none_of_it_plaintext() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna (Beratung)").await;
    let ben = team.caseworker("Ben (Beratung)").await;
    // Anna's second phone: a device of the same person, linked with a one-use code.
    let anna_tablet = linked_device(&server, &anna).await;
    let resident = team.resident("Nachbarin").await;

    // Written offline: opened, written and queued before any sync.
    let conversation = team.open(&resident).await;
    resident
        .store
        .send_counselling_message(conversation, "MARKER-FIRST Ich habe Schulden beim Vermieter")
        .expect("send");
    assert_eq!(
        resident.store.counselling_records(conversation).unwrap()[0].state,
        RecordState::Queued
    );
    resident.sync().await;
    let records = resident.store.counselling_records(conversation).unwrap();
    assert_eq!(records[0].state, RecordState::Delivered);

    // Both caseworkers read it after one sync each, on each of their devices.
    anna.sync().await;
    ben.sync().await;
    anna_tablet.sync().await;
    assert_eq!(
        texts(&anna_tablet, conversation),
        vec!["MARKER-FIRST Ich habe Schulden beim Vermieter"]
    );
    assert_eq!(
        texts(&anna, conversation),
        vec!["MARKER-FIRST Ich habe Schulden beim Vermieter"]
    );
    assert_eq!(
        texts(&ben, conversation),
        vec!["MARKER-FIRST Ich habe Schulden beim Vermieter"]
    );
    let from = anna.store.counselling_records(conversation).unwrap()[0].from;
    assert_eq!(from, Side::Resident);

    // Anna answers; the resident and Ben read it, in order.
    anna.store
        .send_counselling_message(conversation, "MARKER-REPLY Bringen Sie den Brief mit")
        .unwrap();
    anna.sync().await;
    resident.sync().await;
    ben.sync().await;
    anna_tablet.sync().await;
    let both = vec![
        "MARKER-FIRST Ich habe Schulden beim Vermieter".to_string(),
        "MARKER-REPLY Bringen Sie den Brief mit".to_string(),
    ];
    assert_eq!(texts(&resident, conversation), both);
    assert_eq!(texts(&ben, conversation), both);
    assert_eq!(texts(&anna_tablet, conversation), both);
    // Anna's reply shows as the team's on her tablet too.
    let on_tablet = anna_tablet.store.counselling_records(conversation).unwrap();
    assert_eq!(on_tablet[1].from, Side::Team);

    // A second sync changes nothing: delivered exactly once.
    resident.sync().await;
    assert_eq!(texts(&resident, conversation), both);

    // The coordinator, who is not in the team, has no channel at all.
    team.coordinator.sync().await;
    assert!(channel_ids(&team.coordinator).is_empty());

    let found = find_markers(
        server.data.path(),
        &["MARKER-FIRST", "MARKER-REPLY", "Schulden", "Vermieter"],
    );
    assert!(found.is_empty(), "plaintext on the server: {found:?}");
}

#[tokio::test]
async fn a_caseworker_taken_out_of_the_team_reads_nothing_sent_after_and_a_new_one_reads_new_conversations() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let ben = team.caseworker("Ben").await;
    let resident = team.resident("Nachbar").await;
    let conversation = team.open(&resident).await;
    resident
        .store
        .send_counselling_message(conversation, "vorher")
        .unwrap();
    resident.sync().await;
    ben.sync().await;
    assert_eq!(texts(&ben, conversation), vec!["vorher"]);
    // Ben's device as it was: it holds the conversation's keys so far.
    let ben_before = tempfile::tempdir().unwrap();
    ben.store.checkpoint().expect("checkpoint");
    copy_store(&ben, ben_before.path());

    team.coordinator
        .client
        .remove_team_member(&team.coordinator.store, team.space, team.team, ben.person)
        .await
        .expect("out of the team");
    ben.sync().await;
    assert!(
        channel_ids(&ben).is_empty(),
        "nothing of the team stays on Ben's phone"
    );

    resident.sync().await;
    resident
        .store
        .send_counselling_message(conversation, "MARKER-AFTER nachher")
        .unwrap();
    resident.sync().await;
    anna.sync().await;
    assert_eq!(texts(&anna, conversation), vec!["vorher", "MARKER-AFTER nachher"]);
    ben.sync().await;
    assert!(channel_ids(&ben).is_empty());

    // Even given the ciphertext (a copy of the server's database), Ben's old keys open
    // nothing sent after he left.
    let (session, ciphertext, sender) = server_record(&server, "MARKER-AFTER", &anna, conversation);
    let opened = open_with_copy(ben_before.path(), conversation, &sender, &session, &ciphertext);
    assert!(
        matches!(opened, Err(quartier_counselling::CryptoError::MissingKey { .. })),
        "{opened:?}"
    );

    // A caseworker who joins reads new conversations.
    let clara = team.caseworker("Clara").await;
    let second = team.open(&resident).await;
    resident.store.send_counselling_message(second, "neu").unwrap();
    resident.sync().await;
    clara.sync().await;
    assert_eq!(texts(&clara, second), vec!["neu"]);
}

#[tokio::test]
async fn a_restored_phone_with_the_passphrase_reads_the_history_and_one_without_cannot_and_locks_the_lost_one_out_plaintext(
) {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let resident = team.resident("Nachbarin").await;
    let conversation = team.open(&resident).await;
    resident
        .store
        .send_counselling_message(conversation, "eins")
        .unwrap();
    resident.sync().await;
    anna.sync().await;
    anna.store.send_counselling_message(conversation, "zwei").unwrap();
    anna.sync().await;
    resident.sync().await;
    let backup = resident
        .client
        .upload_key_backup(&resident.store, "Apfelbaum im Hof 7")
        .await
        .expect("backup");

    // A new phone (the old one is lost).
    let restored = Device::register(&server.url, "Neues Handy").await;
    let wrong = restored
        .client
        .restore_key_backup(&restored.store, &backup.backup_id, "Apfelbaum im Hof 8")
        .await;
    assert!(
        matches!(
            wrong,
            Err(Error::Counselling(
                quartier_counselling::CryptoError::WrongPassphrase
            ))
        ),
        "{wrong:?}"
    );
    assert!(
        channel_ids(&restored).is_empty(),
        "nothing stored from a wrong passphrase"
    );
    let added = restored
        .client
        .restore_key_backup(&restored.store, &backup.backup_id, "Apfelbaum im Hof 7")
        .await
        .expect("restore");
    assert_eq!(added, 1);
    restored.sync().await;
    assert_eq!(texts(&restored, conversation), vec!["eins", "zwei"]);

    // The restored phone is a device of the conversation: it writes, and reads what follows.
    restored
        .store
        .send_counselling_message(conversation, "drei")
        .unwrap();
    restored.sync().await;
    anna.sync().await;
    assert_eq!(texts(&anna, conversation), vec!["eins", "zwei", "drei"]);
    anna.store.send_counselling_message(conversation, "vier").unwrap();
    anna.sync().await;
    restored.sync().await;
    resident.sync().await;
    assert_eq!(
        texts(&restored, conversation),
        vec!["eins", "zwei", "drei", "vier"]
    );
    assert_eq!(
        texts(&resident, conversation),
        vec!["eins", "zwei", "drei", "vier"]
    );

    // The old phone turns out stolen: the new one locks it out. The team's next message starts
    // a session without it; the old phone reads nothing of it and deletes the conversation at
    // its next sync; the new phone goes on.
    restored
        .store
        .lock_out_other_devices(conversation)
        .expect("lock out");
    restored.sync().await;
    anna.sync().await;
    let resident_keys = anna
        .store
        .counselling_channels()
        .unwrap()
        .into_iter()
        .find(|c| c.id == conversation)
        .expect("Anna's conversation")
        .participants
        .into_iter()
        .filter(|p| p.side == Side::Resident)
        .count();
    assert_eq!(resident_keys, 1, "only the new phone is a participant now");
    anna.store
        .send_counselling_message(conversation, "fünf MARKER-AFTER-LOCKOUT")
        .unwrap();
    anna.sync().await;
    resident.sync().await;
    assert!(
        !channel_ids(&resident).contains(&conversation),
        "the locked-out phone deleted the conversation"
    );
    let found = find_markers(resident.dir.path(), &["MARKER-AFTER-LOCKOUT", "eins"]);
    assert!(found.is_empty(), "the locked-out phone holds: {found:?}");
    restored.sync().await;
    assert_eq!(
        texts(&restored, conversation).last().map(String::as_str),
        Some("fünf MARKER-AFTER-LOCKOUT")
    );
    restored
        .store
        .send_counselling_message(conversation, "sechs")
        .unwrap();
    restored.sync().await;
    anna.sync().await;
    assert_eq!(
        texts(&anna, conversation).last().map(String::as_str),
        Some("sechs")
    );
}

#[tokio::test]
async fn case_notes_reach_the_team_only_and_erasure_removes_a_conversation_everywhere_plaintext() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let ben = team.caseworker("Ben").await;
    let resident = team.resident("Nachbar").await;
    let neighbour = team.resident("Nachbarin nebenan").await;
    let volunteer = join(
        &team.url,
        &team.coordinator,
        team.space,
        Role::Volunteer,
        "Ehrenamt",
    )
    .await;
    let conversation = team.open(&resident).await;
    resident
        .store
        .send_counselling_message(conversation, "MARKER-ERASE-ME Mietschulden")
        .unwrap();
    resident.sync().await;
    anna.sync().await;
    anna.store
        .write_case_note(team.team, conversation, "MARKER-NOTE Ratenplan besprechen")
        .expect("note");
    anna.sync().await;
    ben.sync().await;
    assert_eq!(texts(&ben, team.team), vec!["MARKER-NOTE Ratenplan besprechen"]);
    for outsider in [&resident, &neighbour, &volunteer, &team.coordinator] {
        outsider.sync().await;
        assert!(
            !channel_ids(outsider).contains(&team.team),
            "a note reached an outsider"
        );
    }
    // Nor does another resident, a volunteer or a coordinator receive the conversation.
    for outsider in [&neighbour, &volunteer, &team.coordinator] {
        assert!(
            channel_ids(outsider).is_empty(),
            "a conversation reached an outsider"
        );
    }
    // A note cannot be written into a team one is not in.
    assert!(matches!(
        resident.store.write_case_note(team.team, conversation, "x"),
        Err(Error::NotFound { .. })
    ));

    // Appointments are shown to both sides.
    anna.store
        .send_counselling(
            conversation,
            Body::Appointment {
                appointment: Uuid::now_v7(),
                starts_at_ms: 1_800_000_000_000,
                minutes: 45,
                place: quartier_core::counselling::AppointmentPlace::Phone {
                    number: "+49 221 000000".into(),
                },
                cancelled: false,
            },
        )
        .unwrap();
    anna.sync().await;
    resident.sync().await;
    let appointment = resident
        .store
        .counselling_records(conversation)
        .unwrap()
        .into_iter()
        .any(|r| matches!(r.body, Some(Body::Appointment { minutes: 45, .. })));
    assert!(appointment, "the resident sees the appointment");

    // The resident asks for erasure: gone from the server and, at their next sync, from every
    // device; the server's erasure log says that it happened, without content.
    resident.store.erase_conversation(conversation).expect("erase");
    assert!(!channel_ids(&resident).contains(&conversation));
    resident.sync().await;
    anna.sync().await;
    ben.sync().await;
    for device in [&anna, &ben, &resident] {
        assert!(!channel_ids(device).contains(&conversation), "erased everywhere");
    }
    let log = admin(server.data.path(), &["erasures"]);
    let log = String::from_utf8_lossy(&log.stdout).to_string();
    assert!(
        log.contains(&conversation.to_string()) && log.contains("resident"),
        "{log}"
    );
    assert!(!log.contains("MARKER"), "{log}");
    for dir in [
        server.data.path(),
        resident.dir.path(),
        anna.dir.path(),
        ben.dir.path(),
    ] {
        let found = find_markers(dir, &["MARKER-ERASE-ME", "Mietschulden"]);
        assert!(
            found.is_empty(),
            "erased content left in {}: {found:?}",
            dir.display()
        );
    }
    let found = find_markers(server.data.path(), &["MARKER-NOTE", "Ratenplan"]);
    assert!(found.is_empty(), "a note in plaintext on the server: {found:?}");
}

#[test]
fn the_plaintext_scan_finds_markers_in_every_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "MARKER-SCAN-SELFTEST";
    std::fs::write(dir.path().join("a"), format!("xx{marker}yy")).unwrap();
    let utf16: Vec<u8> = marker.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    std::fs::write(dir.path().join("b"), utf16).unwrap();
    let mut framed = b"junk".to_vec();
    framed.extend(zstd::bulk::compress(marker.repeat(3).as_bytes(), 3).unwrap());
    std::fs::write(dir.path().join("c"), framed).unwrap();
    let found = find_markers(dir.path(), &[marker]);
    let kinds: Vec<_> = found.iter().map(|f| f.encoding).collect();
    assert!(
        kinds.contains(&"utf-8") && kinds.contains(&"utf-16le") && kinds.contains(&"zstd utf-8"),
        "{found:?}"
    );
}

/// A further device of `first`'s person, registered with a link code `first` made.
async fn linked_device(server: &Server, first: &Device) -> Device {
    let link = first
        .client
        .create_device_link(&first.store)
        .await
        .expect("link code");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = quartier_core::Store::open(
        dir.path().join("phone.db"),
        quartier_core::StoreOptions::default(),
    )
    .expect("open store");
    let client = quartier_core::sync::SyncClient::new(&server.url).expect("client");
    let account = client
        .register_linked(&store, &link.code)
        .await
        .expect("register linked");
    assert_eq!(account.person, first.person, "the same person");
    // The code is used up.
    let again = quartier_core::sync::SyncClient::new(&server.url).expect("client");
    let other = tempfile::tempdir().expect("temp dir");
    let other_store = quartier_core::Store::open(
        other.path().join("phone.db"),
        quartier_core::StoreOptions::default(),
    )
    .expect("store");
    assert!(again.register_linked(&other_store, &link.code).await.is_err());
    let device = Device {
        dir,
        store,
        client,
        person: account.person,
    };
    device.sync().await;
    device
}

/// Copies a device's store file (after a checkpoint) into `to`.
fn copy_store(device: &Device, to: &std::path::Path) {
    std::fs::copy(device.dir.path().join("phone.db"), to.join("phone.db")).expect("copy store");
}

/// The sealed record of `conversation` on the server whose plaintext (as `reader` decrypted
/// it) contains `marker`: (session id, ciphertext, sender).
fn server_record(
    server: &Server,
    marker: &str,
    reader: &Device,
    conversation: Uuid,
) -> (String, Vec<u8>, String) {
    let id = reader
        .store
        .counselling_records(conversation)
        .unwrap()
        .into_iter()
        .find(|r| matches!(&r.body, Some(Body::Message { text, .. }) if text.contains(marker)))
        .expect("the reader has the record")
        .id;
    let db = rusqlite::Connection::open(server.data.path().join("quartier-server.db")).unwrap();
    db.query_row(
        "SELECT session_id, ciphertext, sender FROM sealed WHERE record_id = ?1",
        [id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// Tries to open a ciphertext with the keys of a copied store.
fn open_with_copy(
    dir: &std::path::Path,
    conversation: Uuid,
    sender: &str,
    session_id: &str,
    ciphertext: &[u8],
) -> Result<quartier_counselling::envelope::Envelope, quartier_counselling::CryptoError> {
    let db = rusqlite::Connection::open(dir.join("phone.db")).unwrap();
    let key: Vec<u8> = db
        .query_row("SELECT pickle_key FROM counselling_device", [], |r| r.get(0))
        .unwrap();
    let key: [u8; 32] = key.try_into().unwrap();
    let inbound: String = db
        .query_row(
            "SELECT inbound FROM counselling_channels WHERE channel_id = ?1",
            [conversation.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let mut groups = quartier_counselling::group::InboundGroups::from_pickle(&inbound, &key).unwrap();
    groups
        .decrypt(
            conversation,
            sender,
            &quartier_counselling::envelope::Sealed {
                session_id: session_id.into(),
                ciphertext: ciphertext.to_vec(),
            },
        )
        .map(|o| o.envelope)
}

/// A hand-made client tries what the app never would: a conversation with the id of the team's
/// notes channel, a second caseworker identity, keys under a conversation it cannot prove, a
/// sealed record as someone else, and more openings than one request may make.
#[tokio::test]
async fn a_forged_client_gets_no_notes_no_foreign_identity_and_no_flood() {
    use quartier_protocol::counselling::{
        ConversationAccess, CounsellingRequest, OpenConversation, PublishKeys, MAX_OPENS_PER_REQUEST,
    };
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    // Anna's notes channel is there: she synced as a team member.
    anna.store
        .write_case_note(team.team, Uuid::now_v7(), "MARKER-NOTE-SECRET")
        .expect("note");
    anna.sync().await;

    let code = team.coordinator.invite(team.space, Role::Resident).await;
    let mallory = RawDevice::register(&server.url, "Mallory").await;
    mallory.redeem(&server.url, &code).await;
    let token = "a".repeat(64);
    let open = |id: Uuid| ConversationAccess {
        conversation: id,
        token: token.clone(),
        open: Some(OpenConversation {
            space: team.space.as_uuid(),
            team: team.team,
        }),
        rotate: None,
    };
    // The team's id as a conversation id: refused, nothing served.
    let answer = mallory
        .sync_counselling(
            &server.url,
            CounsellingRequest {
                access: vec![open(team.team)],
                ..Default::default()
            },
            vec![],
        )
        .await;
    let counselling = answer.counselling.expect("a counselling answer");
    assert!(counselling.conversations.is_empty(), "{counselling:?}");
    assert_eq!(counselling.gone.len(), 1);

    // A device identity from someone who is no caseworker: not taken.
    let key = |c: char| c.to_string().repeat(43);
    let answer = mallory
        .sync_counselling(
            &server.url,
            CounsellingRequest {
                publish: vec![PublishKeys {
                    curve25519: key('B'),
                    ed25519: key('C'),
                    conversation: None,
                    one_time_keys: vec![],
                    fallback_key: None,
                }],
                ..Default::default()
            },
            vec![],
        )
        .await;
    assert!(answer.counselling.expect("answer").published.is_empty());

    // Many openings in one request: only the first few are made.
    let many: Vec<ConversationAccess> = (0..MAX_OPENS_PER_REQUEST + 3)
        .map(|_| open(Uuid::now_v7()))
        .collect();
    let answer = mallory
        .sync_counselling(
            &server.url,
            CounsellingRequest {
                access: many,
                ..Default::default()
            },
            vec![],
        )
        .await;
    let opened = answer.counselling.expect("answer").conversations.len();
    assert_eq!(opened, MAX_OPENS_PER_REQUEST);

    // A sealed record in a conversation of Mallory's, claiming Anna's key as its sender.
    let anna_key = anna
        .store
        .counselling_channels()
        .unwrap()
        .into_iter()
        .flat_map(|c| c.participants)
        .find(|p| p.side == Side::Team)
        .expect("Anna's key")
        .curve25519;
    let mine = Uuid::now_v7();
    let answer = mallory
        .sync_counselling(
            &server.url,
            CounsellingRequest {
                access: vec![open(mine)],
                ..Default::default()
            },
            vec![quartier_protocol::Record::Sealed {
                conversation: mine,
                id: Uuid::now_v7(),
                sender: anna_key,
                session_id: "s".into(),
                ciphertext: vec![1, 2, 3],
                seq: None,
            }],
        )
        .await;
    assert!(
        matches!(
            &answer.acks[0].outcome,
            quartier_protocol::AckOutcome::Rejected {
                code: quartier_protocol::RejectCode::NotYourChange,
                ..
            }
        ),
        "{:?}",
        answer.acks
    );
    let found = find_markers(server.data.path(), &["MARKER-NOTE-SECRET"]);
    assert!(found.is_empty(), "{found:?}");
}

/// Sessions end after 100 messages: every session of a long exchange written offline reaches
/// the team, and a new caseworker gets the keys of many conversations of one resident (each
/// with its own identity) in one sync of a few rounds, not one conversation per round.
#[tokio::test]
async fn long_offline_exchanges_and_many_conversations_reach_the_team_whole() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let resident = team.resident("Nachbar").await;
    let conversation = team.open(&resident).await;
    let sent = quartier_counselling::group::MESSAGES_PER_SESSION as usize * 2 + 10;
    for n in 0..sent {
        resident
            .store
            .send_counselling_message(conversation, &format!("Nachricht {n}"))
            .unwrap();
    }
    resident.sync().await;
    anna.sync().await;
    assert_eq!(
        texts(&anna, conversation).len(),
        sent,
        "every session's key arrived"
    );

    let mut others = Vec::new();
    for n in 0..12 {
        let id = team.open(&resident).await;
        resident
            .store
            .send_counselling_message(id, &format!("Anliegen {n}"))
            .unwrap();
        others.push(id);
    }
    resident.sync().await;
    let ben = team.caseworker("Ben").await;
    for id in &others {
        resident.store.send_counselling_message(*id, "neu").unwrap();
    }
    let report = resident.sync().await;
    assert!(
        report.rounds <= 4,
        "key shares for 13 conversations took {} rounds",
        report.rounds
    );
    ben.sync().await;
    for id in &others {
        assert!(texts(&ben, *id).contains(&"neu".to_string()), "{id}");
    }
}

/// A device registered with its store encrypted under `key` (what the app takes from the
/// Android Keystore / iOS Keychain), joined to the team's space with `role`.
async fn encrypted_device(team: &Team, role: Role, name: &str, key: [u8; 32]) -> Device {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = quartier_core::Store::open(
        dir.path().join("phone.db"),
        quartier_core::StoreOptions {
            store_key: Some(quartier_core::store::StoreKey::new(key)),
            ..Default::default()
        },
    )
    .expect("open encrypted store");
    let client = quartier_core::sync::SyncClient::new(&team.url).expect("client");
    let account = client.register(&store, Some(name)).await.expect("register");
    let device = Device {
        dir,
        store,
        client,
        person: account.person,
    };
    let code = team.coordinator.invite(team.space, role).await;
    device
        .client
        .redeem_invite(&device.store, &code)
        .await
        .expect("redeem");
    device
}

/// With encryption at rest on, nothing of a conversation is readable in a device's files
/// (database, WAL); a plain store of the same exchange does show it (the scan would see it).
#[tokio::test]
async fn no_plaintext_of_a_conversation_at_rest_on_encrypted_devices() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = encrypted_device(&team, Role::Caseworker, "Anna", [3; 32]).await;
    team.coordinator
        .client
        .add_team_member(&team.coordinator.store, team.space, team.team, anna.person)
        .await
        .expect("into the team");
    anna.sync().await;
    let resident = encrypted_device(&team, Role::Resident, "Nachbarin", [4; 32]).await;
    let plain = team.resident("Nachbar ohne Schlüssel").await;
    for device in [&resident, &plain] {
        let conversation = team.open(device).await;
        device
            .store
            .send_counselling_message(conversation, "MARKER-AT-REST Kontoauszug")
            .unwrap();
        device.sync().await;
    }
    anna.sync().await;
    anna.store
        .write_case_note(team.team, Uuid::now_v7(), "MARKER-AT-REST Notiz")
        .unwrap();
    anna.sync().await;
    let readable = anna
        .store
        .counselling_channels()
        .unwrap()
        .into_iter()
        .filter(|c| texts(&anna, c.id).iter().any(|t| t.contains("MARKER-AT-REST")))
        .count();
    assert_eq!(readable, 3, "Anna reads both conversations and her note");
    for device in [&anna, &resident] {
        let found = find_markers(device.dir.path(), &["MARKER-AT-REST", "Kontoauszug"]);
        assert!(found.is_empty(), "plaintext at rest: {found:?}");
    }
    plain.store.checkpoint().unwrap();
    let found = find_markers(plain.dir.path(), &["MARKER-AT-REST"]);
    assert!(!found.is_empty(), "the control: a plain store shows the text");
}

/// A caseworker revokes a lost tablet: it is served nothing more, and even with the server's
/// ciphertext its keys open nothing sent after the revocation.
#[tokio::test]
async fn a_revoked_device_reads_nothing_sent_after() {
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let tablet = linked_device(&server, &anna).await;
    let resident = team.resident("Nachbarin").await;
    let conversation = team.open(&resident).await;
    resident
        .store
        .send_counselling_message(conversation, "vorher")
        .unwrap();
    resident.sync().await;
    tablet.sync().await;
    assert_eq!(texts(&tablet, conversation), vec!["vorher"]);
    tablet.store.checkpoint().expect("checkpoint");
    let lost = tempfile::tempdir().unwrap();
    copy_store(&tablet, lost.path());

    let tablet_id = tablet.store.account().unwrap().expect("registered").device;
    anna.client
        .revoke_device(&anna.store, tablet_id)
        .await
        .expect("revoke");
    resident.sync().await;
    resident
        .store
        .send_counselling_message(conversation, "MARKER-AFTER-REVOKE nachher")
        .unwrap();
    resident.sync().await;
    anna.sync().await;
    assert_eq!(
        texts(&anna, conversation),
        vec!["vorher", "MARKER-AFTER-REVOKE nachher"]
    );
    let _ = tablet.client.sync_now(&tablet.store, |_| {}).await;
    assert!(!texts(&tablet, conversation).iter().any(|t| t.contains("MARKER")));
    let (session, ciphertext, sender) = server_record(&server, "MARKER-AFTER-REVOKE", &anna, conversation);
    let opened = open_with_copy(lost.path(), conversation, &sender, &session, &ciphertext);
    assert!(
        matches!(opened, Err(quartier_counselling::CryptoError::MissingKey { .. })),
        "{opened:?}"
    );
}

/// Whether a file named `name` is anywhere under `dir`.
fn file_named(dir: &std::path::Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                file_named(&path, name)
            } else {
                entry.file_name().to_str() == Some(name)
            }
        })
}

/// A photo of a letter sent in a conversation: encrypted on the phone under a key of its own,
/// uploaded in chunks before its message, fetched and opened by the caseworker; nobody else
/// can fetch it, and no plaintext of it is on the server or on either device (the app gets it
/// in memory); a tampered copy is refused; erasure removes its ciphertext everywhere.
#[tokio::test]
async fn an_attachment_travels_encrypted_and_leaves_no_plaintext_anywhere() {
    use quartier_core::counselling::NewAttachment;
    let server = Server::start();
    let team = Team::new(&server).await;
    let anna = team.caseworker("Anna").await;
    let resident = team.resident("Nachbarin").await;
    let conversation = team.open(&resident).await;

    // About 600 KB: three chunks. The marker recurs throughout, as text in a scan would.
    let mut letter = Vec::new();
    let mut n = 0u32;
    while letter.len() < 600_000 {
        letter.extend_from_slice(format!("MARKER-LETTER Jobcenter Bescheid {n:08} ").as_bytes());
        n += 1;
    }
    // Sent before the conversation exists on the server: the file goes up once the first
    // exchange opened it, then its message, in the same sync.
    let sent = resident
        .store
        .send_counselling_files(
            conversation,
            "Hier der Brief",
            vec![NewAttachment {
                bytes: letter.clone(),
                mime: "image/jpeg".into(),
            }],
        )
        .expect("send with a file");
    let mine = |device: &Device| {
        device
            .store
            .counselling_records(conversation)
            .unwrap()
            .into_iter()
            .find(|r| r.id == sent)
            .expect("the record")
    };
    assert_eq!(mine(&resident).state, RecordState::Queued);
    resident.sync().await;
    assert_eq!(mine(&resident).state, RecordState::Delivered);

    anna.sync().await;
    let Some(Body::Message { text, attachments }) = mine(&anna).body else {
        panic!("Anna reads the message");
    };
    assert_eq!(text, "Hier der Brief");
    let [file] = attachments.as_slice() else {
        panic!("one file: {attachments:?}")
    };
    assert_eq!(
        (file.size, file.mime.as_str()),
        (letter.len() as i64, "image/jpeg")
    );
    assert_eq!(
        anna.store.counselling_attachment(conversation, file).unwrap(),
        None,
        "not fetched yet"
    );
    let opened = anna
        .client
        .fetch_counselling_attachment(&anna.store, conversation, file)
        .await
        .expect("fetch");
    assert!(opened == letter, "the caseworker opens the same bytes");
    // Kept (as ciphertext): opened again without the server.
    assert!(anna.store.counselling_attachment(conversation, file).unwrap() == Some(letter.clone()));
    assert!(resident.store.counselling_attachment(conversation, file).unwrap() == Some(letter.clone()));

    // Nobody else: a resident of the space, with or without a made-up access token, cannot
    // fetch it, add chunks to it, or announce files into the conversation.
    let code = team.coordinator.invite(team.space, Role::Resident).await;
    let mallory = RawDevice::register(&server.url, "Mallory").await;
    mallory.redeem(&server.url, &code).await;
    let path = format!("{}/v1/counselling/{conversation}/attachments", server.url);
    for access in [None, Some("a".repeat(64))] {
        let mut get = http()
            .get(format!("{path}/{}", file.hash))
            .bearer_auth(&mallory.token);
        let mut put = http()
            .put(format!("{path}/{}/chunks/0", file.hash))
            .bearer_auth(&mallory.token)
            .body(vec![0u8; 16]);
        let announce = quartier_protocol::blobs::AnnounceBlob {
            hash: "ab".repeat(32),
            size: 16,
            mime_type: quartier_protocol::blobs::BLOB_CONTENT_TYPE.into(),
            chunk_size: quartier_protocol::blobs::BLOB_CHUNK_BYTES,
            variant: None,
        };
        let mut post = http()
            .post(&path)
            .bearer_auth(&mallory.token)
            .header("content-type", quartier_protocol::CONTENT_TYPE)
            .body(quartier_protocol::encode(&announce).unwrap());
        if let Some(access) = &access {
            get = get.header("quartier-access", access);
            put = put.header("quartier-access", access);
            post = post.header("quartier-access", access);
        }
        for request in [get, put, post] {
            let status = request.send().await.expect("answer").status().as_u16();
            assert_eq!(status, 404, "an outsider (access {access:?}) is told nothing");
        }
    }
    // Nor a conversation a person's id: its files would share that person's media uploads.
    let answer = mallory
        .sync_counselling(
            &server.url,
            quartier_protocol::counselling::CounsellingRequest {
                access: vec![quartier_protocol::counselling::ConversationAccess {
                    conversation: anna.person.as_uuid(),
                    token: "b".repeat(64),
                    open: Some(quartier_protocol::counselling::OpenConversation {
                        space: team.space.as_uuid(),
                        team: team.team,
                    }),
                    rotate: None,
                }],
                ..Default::default()
            },
            vec![],
        )
        .await;
    let refused = answer.counselling.expect("a counselling answer");
    assert!(
        refused.conversations.is_empty() && refused.gone.len() == 1,
        "{refused:?}"
    );
    // A space may not take the conversation's id (its files are kept under it).
    let taken = post_msg(
        &server.url,
        "/v1/spaces",
        Some(&mallory.token),
        &quartier_protocol::CreateSpace { space: conversation },
    )
    .await;
    assert_eq!(taken.status, 409, "{:?}", taken.error_body());

    // No plaintext of the letter on the server, nor on either (plain) device.
    for dir in [server.data.path(), resident.dir.path(), anna.dir.path()] {
        let found = find_markers(dir, &["MARKER-LETTER", "Jobcenter Bescheid"]);
        assert!(
            found.is_empty(),
            "plaintext of the attachment in {}: {found:?}",
            dir.display()
        );
    }
    assert!(
        file_named(server.data.path(), &file.hash),
        "the server keeps the ciphertext"
    );

    // A copy changed on the device does not open: a typed error, and nothing is shown.
    let kept = anna
        .dir
        .path()
        .join("phone.db.media/counselling")
        .join(&file.hash);
    let mut bytes = std::fs::read(&kept).expect("kept ciphertext");
    bytes[100] ^= 1;
    std::fs::write(&kept, bytes).unwrap();
    match anna.store.counselling_attachment(conversation, file) {
        Err(Error::Counselling(_)) => {}
        other => panic!("a tampered file must not open: {other:?}"),
    }

    // A file lost on the device before its upload refuses its message (shown, with why) and
    // holds nothing else up.
    let lost = resident
        .store
        .send_counselling_files(
            conversation,
            "Noch ein Brief",
            vec![NewAttachment {
                bytes: b"MARKER-LETTER zwei".to_vec(),
                mime: "application/pdf".into(),
            }],
        )
        .expect("send");
    let Some(Body::Message { attachments, .. }) = resident
        .store
        .counselling_records(conversation)
        .unwrap()
        .into_iter()
        .find(|r| r.id == lost)
        .and_then(|r| r.body)
    else {
        panic!("the message");
    };
    std::fs::remove_file(
        resident
            .dir
            .path()
            .join("phone.db.media/counselling")
            .join(&attachments[0].hash),
    )
    .expect("lose the file");
    let after = resident
        .store
        .send_counselling_message(conversation, "Und danach")
        .expect("send");
    resident.sync().await;
    let state_of = |id| {
        resident
            .store
            .counselling_records(conversation)
            .unwrap()
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.state)
    };
    assert!(
        matches!(state_of(lost), Some(RecordState::Refused(why)) if why.contains("missing")),
        "{:?}",
        state_of(lost)
    );
    assert_eq!(
        state_of(after),
        Some(RecordState::Delivered),
        "the next message went"
    );

    // Erased: the ciphertext leaves the server and both devices.
    resident.store.erase_conversation(conversation).expect("erase");
    resident.sync().await;
    anna.sync().await;
    for dir in [server.data.path(), resident.dir.path(), anna.dir.path()] {
        assert!(
            !file_named(dir, &file.hash),
            "the erased file is still in {}",
            dir.display()
        );
    }
}
