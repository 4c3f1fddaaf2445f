//! Device to device (`docs/protocol.md`, "Device to device"), against a real server database
//! answering in-process (`sim::InProcessServer`): certificates come with each sync, two devices
//! meet with `PeerSession` (frames handed across in memory), and changes carried from device to
//! device reach the server as their authors'. Tests whose names hold `relay` cover
//! store-and-forward and malicious relays (`cargo test relay`).

use crate::sim;

use std::collections::BTreeMap;
use std::sync::Arc;

use quartier_core::model::*;
use quartier_core::peer::{PeerOptions, PeerReport, PeerRole, PeerSession, QR_FRAME_BYTES};
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
use quartier_protocol::certificates::Certificate;
use quartier_protocol::peer::{frame, PeerMessage, Turn};
use quartier_protocol::Record;
use sim::{InProcessServer, Loopback};
use tempfile::TempDir;

/// A server and phones in one space: phone 0 made the space (coordinator), the others joined
/// with the roles given; everyone synced (and so holds certificates).
struct Town {
    dir: TempDir,
    server: Arc<InProcessServer>,
    client: SyncClient,
    runtime: tokio::runtime::Runtime,
    space: SpaceId,
    phones: Vec<Phone>,
}

struct Phone {
    store: Store,
    person: PersonId,
}

impl Town {
    fn new(roles: &[Role]) -> Town {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Arc::new(InProcessServer::open(&dir.path().join("server")));
        let client = SyncClient::with_transport("sim://server", Arc::new(Loopback(Arc::clone(&server))));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut town = Town {
            dir,
            server,
            client,
            runtime,
            space: SpaceId::new(),
            phones: Vec::new(),
        };
        let first = town.register();
        let space = first
            .store
            .create_space(
                SpaceMeta {
                    name: LocalizedText::single("de", "Nippes"),
                    description: LocalizedText::single("de", "Veedel"),
                    time_zone: "Europe/Berlin".into(),
                    default_language: "de".into(),
                    categories: Default::default(),
                    layers: Default::default(),
                },
                first.person,
            )
            .expect("space")
            .id;
        town.runtime
            .block_on(town.client.create_space(&first.store, space))
            .expect("register space");
        town.space = space;
        town.phones.push(first);
        town.sync(0);
        for role in roles {
            town.join(*role);
        }
        town
    }

    fn register(&self) -> Phone {
        let path = self.dir.path().join(format!("phone{}.db", uuid::Uuid::new_v4()));
        let store = Store::open(path, StoreOptions::default()).expect("store");
        self.runtime
            .block_on(self.client.register(&store, None))
            .expect("register");
        let person = store.account().expect("account").expect("registered").person;
        Phone { store, person }
    }

    /// A new phone joins with `role` and syncs; returns its index.
    fn join(&mut self, role: Role) -> usize {
        self.join_with(role, |_| {})
    }

    /// As [`Town::join`], with `setup` done to the new phone's store before its first sync.
    fn join_with(&mut self, role: Role, setup: impl FnOnce(&Store)) -> usize {
        let phone = self.register();
        setup(&phone.store);
        let code = self
            .runtime
            .block_on(
                self.client
                    .create_invite(&self.phones[0].store, self.space, role, i64::MAX, 1),
            )
            .expect("invite");
        self.runtime
            .block_on(self.client.redeem_invite(&phone.store, &code))
            .expect("redeem");
        self.phones.push(phone);
        let index = self.phones.len() - 1;
        self.sync(index);
        index
    }

    fn sync(&self, phone: usize) {
        for _ in 0..2 {
            self.runtime
                .block_on(self.client.sync_now(&self.phones[phone].store, |_| {}))
                .expect("sync");
        }
    }

    fn store(&self, phone: usize) -> &Store {
        &self.phones[phone].store
    }

    fn post(&self, phone: usize, title: &str, audience: Audience) -> Item {
        let p = &self.phones[phone];
        p.store
            .create_item(NewItem::new(
                self.space,
                p.person,
                ItemContent {
                    body: LocalizedText::single("de", format!("{title}: Treffen im Hof")),
                    audience,
                    ..ItemContent::new(
                        LocalizedText::single("de", title),
                        ItemDetails::Post(Post {
                            post_type: PostType::News,
                        }),
                    )
                },
            ))
            .expect("post")
    }
}

/// Every document a store holds, with its heads.
fn holding(store: &Store) -> BTreeMap<String, Vec<String>> {
    store
        .document_ids()
        .expect("documents")
        .into_iter()
        .map(|(doc, _)| {
            let heads = store.document_heads(&doc).expect("heads");
            (doc, heads)
        })
        .collect()
}

fn has(store: &Store, id: ItemId) -> bool {
    let id = id.to_string();
    store
        .document_ids()
        .expect("documents")
        .iter()
        .any(|(doc, _)| *doc == id)
}

fn title(store: &Store, id: ItemId) -> LocalizedText {
    let viewer = Viewer::new(PersonId::new(), Role::Coordinator);
    store.item_detail(id, &viewer).expect("item").item.content.title
}

fn options(frame_bytes: usize) -> PeerOptions {
    PeerOptions {
        frame_bytes,
        ..PeerOptions::default()
    }
}

/// Runs a session between `a` (initiator) and `b`, every frame passing through `wire`
/// (`true`: from a), which may change or drop it (`None`: the link is cut). Returns both
/// reports, or the first error with the side that raised it (`true`: a).
fn meet_through(
    a: &Store,
    b: &Store,
    options: PeerOptions,
    mut wire: impl FnMut(bool, Vec<u8>) -> Option<Vec<u8>>,
) -> Result<(PeerReport, PeerReport), (bool, quartier_core::Error)> {
    let (mut left, first) =
        PeerSession::start(a, PeerRole::Initiator, options.clone()).map_err(|e| (true, e))?;
    let (mut right, none) = PeerSession::start(b, PeerRole::Responder, options).map_err(|e| (false, e))?;
    assert!(none.is_none(), "the responder waits");
    let mut in_flight = first.expect("the initiator speaks first");
    let mut from_a = true;
    for _ in 0..1_000_000 {
        let Some(delivered) = wire(from_a, in_flight) else {
            return Err((from_a, quartier_core::Error::Offline("the link was cut".into())));
        };
        let answer = if from_a {
            right.receive(b, &delivered).map_err(|e| (false, e))?
        } else {
            left.receive(a, &delivered).map_err(|e| (true, e))?
        };
        match answer {
            Some(frame) => in_flight = frame,
            None => break,
        }
        from_a = !from_a;
    }
    assert!(left.is_finished() && right.is_finished(), "both sides finish");
    Ok((left.report().clone(), right.report().clone()))
}

fn meet(a: &Store, b: &Store, options: PeerOptions) -> (PeerReport, PeerReport) {
    meet_through(a, b, options, |_, f| Some(f)).expect("session")
}

#[test]
fn relay_three_devices_without_a_server_converge_and_the_server_takes_each_change_as_its_authors() {
    let mut town = Town::new(&[Role::Volunteer, Role::Resident]);
    let coordinator_of_c = 0;
    let a = 1;
    let b = 2;
    let c = town.join(Role::Volunteer);
    let _ = coordinator_of_c;
    // A writes offline: two posts and an edit.
    let first = town.post(a, "Hoffest", Audience::Everyone);
    let second = town.post(a, "Helfende gesucht", Audience::Volunteers);
    town.store(a)
        .update_item(
            first.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Hoffest am Samstag")),
                ..Default::default()
            },
            town.phones[a].person,
        )
        .expect("edit");
    let b_post = town.post(b, "Suche Leiter", Audience::Everyone);
    // Each phone holds a certificate of its own for the space, in its role.
    let certificates = town.store(b).peer_certificates().expect("certificates");
    assert_eq!(certificates.len(), 1);
    assert_eq!(
        (certificates[0].space, certificates[0].role, certificates[0].valid),
        (town.space, Role::Resident, true)
    );
    // A and B meet; then B and C. No server.
    let (at_a, at_b) = meet(town.store(a), town.store(b), options(64 * 1024));
    assert_eq!(at_a.shared_spaces, 1);
    // B gets A's post for everyone and its edit, not the post for volunteers; A gets B's post.
    assert_eq!(at_b.changes_received, 2, "{at_b:?}");
    assert_eq!(at_a.changes_received, 1, "{at_a:?}");
    // B is a resident: A's post for volunteers never reaches it.
    assert!(
        !has(town.store(b), second.id),
        "a resident's phone never gets a volunteers' post"
    );
    let (at_b2, at_c) = meet(town.store(b), town.store(c), options(64 * 1024));
    assert_eq!(at_c.changes_received, 3, "{at_c:?} / {at_b2:?}");
    assert_eq!(at_c.carried, 3, "C carries what it got for the server: {at_c:?}");
    // C reaches the server: it pushes A's and B's changes as theirs.
    town.sync(c);
    for (doc, heads) in holding(town.store(c)) {
        if doc == town.space.to_string() {
            continue;
        }
        let on_server = town.server.heads(town.space);
        assert_eq!(
            on_server.get(&doc).map(|h| h.iter().cloned().collect::<Vec<_>>()),
            Some(heads),
            "{doc}"
        );
    }
    assert_eq!(
        town.store(c).carried_changes().expect("carried").changes,
        0,
        "delivered"
    );
    // Each of A's changes is on the server as signed by A's device, not by C's that pushed it.
    let a_device = town
        .store(a)
        .account()
        .expect("account")
        .expect("registered")
        .device
        .to_string();
    for doc in [first.id, b_post.id] {
        for change in town.store(c).document_changes(&doc.to_string()).expect("changes") {
            let hash = quartier_core::document::guarded::decode(change.bytes)
                .expect("change")
                .hash();
            let signer = town.server.signer_of(&hash.0).expect("on the server");
            assert_eq!(signer == a_device, doc == first.id, "{doc}");
        }
    }
    // The authors find their changes there already; everyone converges to a direct sync's state.
    for phone in [a, b, c, 0] {
        town.sync(phone);
    }
    let direct = holding(town.store(0));
    assert_eq!(holding(town.store(c)), direct);
    assert_eq!(holding(town.store(a)), direct);
    assert!(holding(town.store(b))
        .iter()
        .all(|(doc, heads)| direct.get(doc) == Some(heads)));
    assert_eq!(
        title(town.store(0), first.id),
        LocalizedText::single("de", "Hoffest am Samstag")
    );
    assert!(has(town.store(0), b_post.id));
    // Nothing waits in anyone's outbox.
    for phone in [a, b, c] {
        assert_eq!(
            town.store(phone).outbox_len().expect("outbox"),
            0,
            "phone {phone}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A relay that misbehaves. Frames are large enough that every message is one frame, which the
// relay decodes, changes and encodes again.

const ONE_FRAME: usize = 1024 * 1024;

fn decode_frame(frame: &[u8]) -> PeerMessage {
    assert_eq!(frame[0], frame::LAST, "one frame per message");
    quartier_protocol::decode(&frame[1..], quartier_protocol::MAX_DECODED_BYTES).expect("message")
}

fn encode_frame(message: &PeerMessage) -> Vec<u8> {
    let mut frame = vec![frame::LAST];
    frame.extend(quartier_protocol::encode(message).expect("encode"));
    frame
}

/// Changes the relay's (`from_a`) turns that carry changes with `edit`.
fn tamper_turns(mut edit: impl FnMut(&mut Turn)) -> impl FnMut(bool, Vec<u8>) -> Option<Vec<u8>> {
    move |from_relay, frame| {
        if !from_relay {
            return Some(frame);
        }
        match decode_frame(&frame) {
            PeerMessage::Turn(mut turn) if !turn.changes.is_empty() => {
                edit(&mut turn);
                Some(encode_frame(&PeerMessage::Turn(turn)))
            }
            _ => Some(frame),
        }
    }
}

/// A town where A (1) wrote a post and edited it, and relay B (2) took both from A; C (3) has
/// not met anyone. All volunteers.
fn relay_setup() -> (Town, Item) {
    let mut town = Town::new(&[Role::Volunteer, Role::Volunteer, Role::Volunteer]);
    let post = town.post(1, "Hoffest", Audience::Everyone);
    town.store(1)
        .update_item(
            post.id,
            &ItemPatch {
                title: Some(LocalizedText::single("de", "Hoffest am Samstag")),
                ..Default::default()
            },
            town.phones[1].person,
        )
        .expect("edit");
    let (_, at_b) = meet(town.store(1), town.store(2), options(ONE_FRAME));
    assert_eq!(at_b.changes_received, 2);
    let _ = &mut town;
    (town, post)
}

fn peer_code(error: &quartier_core::Error) -> &'static str {
    match error {
        quartier_core::Error::Peer { code, .. } => code,
        other => panic!("not a session error: {other}"),
    }
}

#[test]
fn relay_that_alters_a_change_is_stopped_and_nothing_is_stored() {
    let (town, post) = relay_setup();
    let before = holding(town.store(3));
    // The relay changes a byte of the change (its content), or swaps in another signature.
    for alteration in 0..2 {
        let result = meet_through(
            town.store(2),
            town.store(3),
            options(ONE_FRAME),
            tamper_turns(|turn| {
                if let Some(Record::Change { bytes, signature, .. }) = turn.changes.first_mut() {
                    if alteration == 0 {
                        let last = bytes.len() - 1;
                        bytes[last] ^= 0x55;
                    } else {
                        signature[0] ^= 1;
                    }
                }
            }),
        );
        let (side, error) = result.expect_err("refused");
        assert!(!side, "the receiving device stops the session");
        assert!(
            matches!(peer_code(&error), "bad_signature" | "malformed"),
            "{error}"
        );
        assert_eq!(holding(town.store(3)), before, "nothing stored");
        assert!(!has(town.store(3), post.id));
    }
}

#[test]
fn relay_that_re_signs_a_change_as_itself_or_with_another_key_is_stopped() {
    let (town, post) = relay_setup();
    // The relay's own key, read from its database as a thief of its phone would.
    let relay_key = {
        let conn = rusqlite::Connection::open(town.store(2).path()).expect("open");
        let secret: Vec<u8> = conn
            .query_row("SELECT signing_key FROM device WHERE singleton = 1", [], |r| {
                r.get(0)
            })
            .expect("key");
        ed25519_dalek::SigningKey::from_bytes(&secret.try_into().expect("32 bytes"))
    };
    let relay_device = town
        .store(2)
        .account()
        .expect("account")
        .expect("registered")
        .device;
    let before = holding(town.store(3));
    for as_itself in [true, false] {
        let key = relay_key.clone();
        let result = meet_through(
            town.store(2),
            town.store(3),
            options(ONE_FRAME),
            tamper_turns(move |turn| {
                for record in &mut turn.changes {
                    if let Record::Change {
                        doc,
                        bytes,
                        device,
                        signature,
                        ..
                    } = record
                    {
                        let hash = quartier_core::document::guarded::decode(bytes.clone())
                            .expect("change")
                            .hash();
                        use ed25519_dalek::Signer;
                        *signature = key
                            .sign(&quartier_protocol::signing::change_signing_payload(
                                &doc.to_string(),
                                &hash.0,
                            ))
                            .to_bytes()
                            .to_vec();
                        if as_itself {
                            *device = relay_device;
                        }
                    }
                }
            }),
        );
        let (_, error) = result.expect_err("refused");
        let expected = if as_itself {
            "not_your_change"
        } else {
            "bad_signature"
        };
        assert_eq!(peer_code(&error), expected, "{error}");
        assert_eq!(holding(town.store(3)), before, "nothing stored");
    }
    assert!(!has(town.store(3), post.id));
}

#[test]
fn relay_that_forges_a_certificate_or_a_role_is_stopped() {
    let (town, _) = relay_setup();
    let before = holding(town.store(3));
    // Its own certificate with a coordinator's role, in its hello.
    let result = meet_through(
        town.store(2),
        town.store(3),
        options(ONE_FRAME),
        |from_relay, frame| {
            if !from_relay {
                return Some(frame);
            }
            match decode_frame(&frame) {
                PeerMessage::Hello(mut hello) => {
                    let signed = &mut hello.certificates[0];
                    let mut cert: Certificate =
                        ciborium::from_reader(signed.body.as_slice()).expect("certificate");
                    cert.role = Role::Coordinator;
                    signed.body.clear();
                    ciborium::into_writer(&cert, &mut signed.body).expect("encode");
                    Some(encode_frame(&PeerMessage::Hello(hello)))
                }
                _ => Some(frame),
            }
        },
    );
    let (_, error) = result.expect_err("refused");
    assert_eq!(peer_code(&error), "bad_certificate", "{error}");
    // An author's certificate made up by the relay (signed with its own key).
    let fake_server = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let result = meet_through(
        town.store(2),
        town.store(3),
        options(ONE_FRAME),
        tamper_turns(|turn| {
            for signed in &mut turn.certificates {
                let mut cert: Certificate =
                    ciborium::from_reader(signed.body.as_slice()).expect("certificate");
                cert.role = Role::Coordinator;
                *signed = cert.sign(&fake_server);
            }
        }),
    );
    let (_, error) = result.expect_err("refused");
    assert_eq!(peer_code(&error), "bad_certificate", "{error}");
    assert_eq!(holding(town.store(3)), before, "nothing stored");
}

#[test]
fn relay_that_drops_a_change_is_detected_and_what_builds_on_it_is_not_stored() {
    let (town, post) = relay_setup();
    let (_, at_c) = meet_through(
        town.store(2),
        town.store(3),
        options(ONE_FRAME),
        tamper_turns(|turn| {
            // The post's creation is left out; its edit goes on.
            turn.changes.remove(0);
        }),
    )
    .expect("the session ends");
    assert_eq!(at_c.changes_received, 0, "{at_c:?}");
    assert_eq!(at_c.refused_count, 1);
    assert_eq!(at_c.refused[0].code, "missing_dependency");
    assert_eq!(at_c.refused[0].doc_id, post.id.to_string());
    assert!(!has(town.store(3), post.id));
    // An honest meeting later brings both.
    let (_, at_c) = meet(town.store(2), town.store(3), options(ONE_FRAME));
    assert_eq!(at_c.changes_received, 2);
    assert_eq!(
        title(town.store(3), post.id),
        LocalizedText::single("de", "Hoffest am Samstag")
    );
}

#[test]
fn relay_that_replays_an_earlier_session_is_not_believed() {
    let (town, _) = relay_setup();
    // Every frame of an honest session between the relay and C.
    let mut recorded = Vec::new();
    meet_through(
        town.store(2),
        town.store(3),
        options(ONE_FRAME),
        |from_relay, frame| {
            if from_relay {
                recorded.push(frame.clone());
            }
            Some(frame)
        },
    )
    .expect("honest session");
    // Someone on the network plays the relay's frames to C again, in a new session.
    let (mut c, _) =
        PeerSession::start(town.store(3), PeerRole::Responder, options(ONE_FRAME)).expect("start");
    let answer = c
        .receive(town.store(3), &recorded[0])
        .expect("a hello is answered");
    assert!(answer.is_some());
    let error = c.receive(town.store(3), &recorded[1]).expect_err("an old proof");
    assert_eq!(peer_code(&error), "unproven", "{error}");
    // Replayed changes inside a live session are duplicates: nothing changes twice.
    let before = holding(town.store(3));
    let (_, at_c) = meet(town.store(2), town.store(3), options(ONE_FRAME));
    assert_eq!(at_c.changes_received, 0);
    assert_eq!(holding(town.store(3)), before);
}

#[test]
fn relay_that_withholds_a_revocation_is_overruled_by_the_newer_list() {
    let (town, post) = relay_setup();
    // A's device is revoked on the server; C hears of it, the relay has not synced since.
    let a_device = town
        .store(1)
        .account()
        .expect("account")
        .expect("registered")
        .device;
    town.server.revoke(a_device);
    town.sync(3);
    let (at_relay, at_c) = meet(town.store(2), town.store(3), options(ONE_FRAME));
    assert!(at_c.peer_revocations_stale, "C sees the relay's list is older");
    assert_eq!(at_c.changes_received, 0, "{at_c:?}");
    assert_eq!(at_c.refused[0].code, "revoked", "{:?}", at_c.refused);
    assert!(
        at_c.refused[1..].iter().all(|r| r.code == "missing_dependency"),
        "{:?}",
        at_c.refused
    );
    assert!(!has(town.store(3), post.id));
    assert!(!at_relay.peer_revocations_stale);
    // The relay took C's newer list: it no longer offers A's changes as valid to anyone.
    let (_, at_c_again) = meet(town.store(2), town.store(3), options(ONE_FRAME));
    assert_eq!(at_c_again.changes_received, 0);
}

// ---------------------------------------------------------------------------------------------
// Permissions, budgets, cuts.

/// A post of `kind` for `audience` by `phone`, made valid for its kind.
fn item_of(town: &Town, phone: usize, kind: ItemKind, audience: Audience) -> Item {
    let details = match kind {
        ItemKind::Offer => ItemDetails::Offer(Offer {
            organization: Organization {
                name: "Caritas Köln".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        _ => ItemDetails::Post(Post {
            post_type: PostType::Notice,
        }),
    };
    let p = &town.phones[phone];
    p.store
        .create_item(NewItem::new(
            town.space,
            p.person,
            ItemContent {
                audience,
                ..ItemContent::new(
                    LocalizedText::single("de", format!("{kind} für {audience}")),
                    details,
                )
            },
        ))
        .expect("item")
}

#[test]
fn the_role_and_audience_matrix_holds_device_to_device_as_with_the_server() {
    // 1 caseworker (holds everything), then for each role a phone that meets it and a twin
    // that syncs with the server instead.
    let roles = [
        Role::Resident,
        Role::Volunteer,
        Role::Caseworker,
        Role::Coordinator,
    ];
    let mut town = Town::new(&[Role::Caseworker]);
    let mut met = Vec::new();
    let mut twins = Vec::new();
    for role in roles {
        met.push(town.join(role));
        twins.push(town.join(role));
    }
    for audience in [Audience::Everyone, Audience::Volunteers, Audience::Caseworkers] {
        item_of(&town, 1, ItemKind::Post, audience);
    }
    item_of(&town, 0, ItemKind::Offer, Audience::Everyone);
    item_of(&town, 0, ItemKind::Post, Audience::Volunteers);
    town.sync(0);
    town.sync(1);
    for (i, role) in roles.iter().enumerate() {
        let (_, report) = meet(town.store(1), town.store(met[i]), options(64 * 1024));
        town.sync(twins[i]);
        let by_peer: Vec<String> = holding(town.store(met[i])).into_keys().collect();
        let by_server: Vec<String> = holding(town.store(twins[i])).into_keys().collect();
        assert_eq!(by_peer, by_server, "{role}: {report:?}");
    }
    // The other way: what a resident may not write is not taken, even if its phone made it.
    let resident = met[0];
    town.store(resident).set_local_permission_check(false);
    let offer = item_of(&town, resident, ItemKind::Offer, Audience::Everyone);
    let (_, at_coordinator) = meet(town.store(resident), town.store(0), options(64 * 1024));
    assert_eq!(at_coordinator.refused_count, 1, "{at_coordinator:?}");
    assert_eq!(at_coordinator.refused[0].code, "forbidden");
    assert!(!has(town.store(0), offer.id));
}

#[test]
fn a_qr_sized_session_syncs_twenty_posts_and_a_late_joiner_shows_what_it_got_whole() {
    // The newcomer joined before the posts were written, and has not synced since.
    let mut town = Town::new(&[Role::Volunteer, Role::Resident]);
    let newcomer = 2;
    for i in 0..20 {
        town.post(1, &format!("Aushang {i}"), Audience::Everyone);
    }
    town.sync(1);
    // A phone that joins now gets the posts as creation forms, with their signatures.
    let late = town.join(Role::Volunteer);
    let (mut frames, mut largest) = (0, 0);
    let (at_late, at_newcomer) = meet_through(
        town.store(late),
        town.store(newcomer),
        options(QR_FRAME_BYTES),
        |_, frame| {
            frames += 1;
            largest = largest.max(frame.len());
            Some(frame)
        },
    )
    .expect("session");
    let _ = &mut town;
    assert_eq!(at_late.unsigned_documents, 0, "{at_late:?}");
    assert_eq!(at_newcomer.changes_received, 20, "{at_newcomer:?}");
    assert!(largest <= QR_FRAME_BYTES, "{largest}");
    println!("QR session for 20 posts: {frames} codes, largest {largest} bytes");
}

#[test]
fn a_phone_without_peer_signatures_shows_peers_only_its_own_until_it_fetches_them() {
    let mut town = Town::new(&[Role::Volunteer, Role::Resident]);
    let newcomer = 2;
    for i in 0..30 {
        town.post(1, &format!("Aushang {i}"), Audience::Everyone);
    }
    town.sync(1);
    // A phone on a tight data plan: the content without the signatures that show it on.
    let late = town.join_with(Role::Volunteer, |store| {
        store.set_peer_signatures(false).expect("off");
    });
    assert!(!town.store(late).peer_signatures().expect("setting"));
    assert_eq!(holding(town.store(late)).len(), 31, "the space and every post");
    let own = town.post(late, "Eigener Aushang", Audience::Everyone);
    let (at_late, at_newcomer) = meet(town.store(late), town.store(newcomer), options(QR_FRAME_BYTES));
    assert!(at_late.unsigned_documents >= 30, "{at_late:?}");
    assert_eq!(
        at_newcomer.changes_received, 1,
        "only its own post: {at_newcomer:?}"
    );
    assert!(has(town.store(newcomer), own.id));

    // Turned on: the next sync fetches the signatures of everything already held.
    town.store(late).set_peer_signatures(true).expect("on");
    town.runtime
        .block_on(town.client.sync_now(town.store(late), |_| {}))
        .expect("sync");
    let (at_late, at_newcomer) = meet(town.store(late), town.store(newcomer), options(QR_FRAME_BYTES));
    assert_eq!(at_late.unsigned_documents, 0, "{at_late:?}");
    assert_eq!(at_newcomer.changes_received, 30, "{at_newcomer:?}");
    assert_eq!(holding(town.store(late)), holding(town.store(newcomer)));
}

/// A device whose signatures a phone keeps is listed as a signer there (each sync renews its
/// certificate) until the phone erases the last of the documents it signed in the space, not
/// before.
#[test]
fn a_signer_is_forgotten_with_the_last_of_its_documents_here() {
    let mut town = Town::new(&[Role::Volunteer]);
    let first = town.post(1, "Aushang eins", Audience::Everyone);
    let second = town.post(1, "Aushang zwei", Audience::Everyone);
    town.sync(1);
    let late = town.join(Role::Volunteer);
    let author = town
        .store(1)
        .account()
        .expect("account")
        .expect("registered")
        .device
        .to_string();
    let signers = |town: &Town| -> Vec<String> {
        let conn = rusqlite::Connection::open(town.store(late).path()).expect("open");
        let mut stmt = conn.prepare("SELECT device FROM signers").expect("prepare");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    assert!(signers(&town).contains(&author), "{:?}", signers(&town));
    town.store(late).erase_item(first.id).expect("erase");
    assert!(signers(&town).contains(&author), "one of its posts is left");
    town.store(late).erase_item(second.id).expect("erase");
    assert!(!signers(&town).contains(&author), "{:?}", signers(&town));
    town.sync(late);
    assert!(!signers(&town).contains(&author), "not listed again by a sync");
}

/// How a session is cut: after this many frames, the next frame arrives cut at this byte (or
/// not at all).
#[derive(Clone, Debug)]
struct Cut {
    after_frames: usize,
    at_byte: Option<usize>,
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Sessions cut at random frames and byte offsets, started again until one finishes:
    /// both phones then hold the same documents, each exactly once, whatever the frame size.
    #[test]
    fn interrupted_sessions_resume_and_converge(
        posts_a in 1usize..5,
        posts_b in 0usize..4,
        edits in 0usize..3,
        frame_bytes in 128usize..3000,
        cuts in proptest::collection::vec((0usize..40, proptest::option::of(0usize..3000)), 0..6),
    ) {
        let town = Town::new(&[Role::Volunteer, Role::Volunteer]);
        let mut first = None;
        for i in 0..posts_a {
            let post = town.post(1, &format!("A {i}"), Audience::Everyone);
            first.get_or_insert(post.id);
        }
        for i in 0..posts_b {
            town.post(2, &format!("B {i}"), Audience::Volunteers);
        }
        if let Some(id) = first {
            for e in 0..edits {
                town.store(1)
                    .update_item(
                        id,
                        &ItemPatch {
                            title: Some(LocalizedText::single("de", format!("A 0, edit {e}"))),
                            ..Default::default()
                        },
                        town.phones[1].person,
                    )
                    .expect("edit");
            }
        }
        let cuts: Vec<Cut> = cuts
            .into_iter()
            .map(|(after_frames, at_byte)| Cut { after_frames, at_byte })
            .collect();
        let mut finished = false;
        for cut in cuts.iter().map(Some).chain(std::iter::repeat_n(None, 3)) {
            let mut frames = 0;
            let result = meet_through(town.store(1), town.store(2), options(frame_bytes), |_, frame| {
                frames += 1;
                match cut {
                    Some(cut) if frames > cut.after_frames => {
                        cut.at_byte.map(|at| frame[..at.min(frame.len())].to_vec())
                    }
                    _ => Some(frame),
                }
            });
            match result {
                Ok(_) => {
                    finished = true;
                    break;
                }
                Err((_, e)) if cut.is_none() => eprintln!("an uncut session failed: {e}"),
                Err(_) => {}
            }
        }
        proptest::prop_assert!(finished, "an uncut session finishes");
        proptest::prop_assert_eq!(holding(town.store(1)), holding(town.store(2)));
        proptest::prop_assert_eq!(
            holding(town.store(1)).len(),
            1 + posts_a + posts_b,
            "the space and every post, once"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The local-network transport: in one process, in two processes on loopback, and in two
// network namespaces joined by a veth pair (found with mDNS there).

#[test]
fn lan_transport_syncs_over_an_encrypted_channel_for_opted_in_spaces_only() {
    let town = Town::new(&[Role::Volunteer, Role::Volunteer]);
    let post = town.post(1, "Flohmarkt", Audience::Everyone);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let session = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("listen");
            let address = listener.local_addr().expect("address");
            let (served, met) = tokio::join!(
                quartier_core::peer::meet_next(town.store(2), &listener, true, &|_| {}),
                quartier_core::peer::meet_at(town.store(1), address, true, &|_| {}),
            );
            (served, met)
        })
    };
    // Not opted in: the session shares no space.
    let (served, met) = session(&runtime);
    let error = served.err().or(met.err()).expect("no space to share");
    assert_eq!(peer_code(&error), "bad_certificate", "{error}");
    assert!(!has(town.store(2), post.id));
    for phone in [1, 2] {
        town.store(phone).set_nearby(town.space, true).expect("opt in");
    }
    let (served, met) = session(&runtime);
    let (served, met) = (served.expect("served"), met.expect("met"));
    assert_eq!(served.changes_received, 1, "{served:?}");
    assert_eq!(met.shared_spaces, 1);
    assert!(has(town.store(2), post.id));
    assert_eq!(holding(town.store(1)), holding(town.store(2)));
}

/// What a child process does: `listen` (announce for `announce_ip`, print the address, serve
/// one session) or `connect` (to the address given, or the first device found nearby).
#[test]
#[ignore = "the child process of the lan_ tests (they start it with --ignored), not a test of its own"]
fn lan_peer_node_child() {
    let Ok(mode) = std::env::var("QUARTIER_PEER_CHILD") else {
        return;
    };
    let store = Store::open(
        std::env::var("QUARTIER_PEER_STORE").expect("store"),
        StoreOptions::default(),
    )
    .expect("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(async {
        match mode.as_str() {
            "listen" => {
                let ip = std::env::var("QUARTIER_PEER_IP").expect("ip");
                let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
                    .await
                    .expect("listen");
                let address = listener.local_addr().expect("address");
                let mut nearby = quartier_core::peer::Nearby::new().expect("mdns");
                nearby.announce(&store, address).expect("announce");
                say(&format!("LISTENING {address}"));
                quartier_core::peer::meet_next(&store, &listener, true, &|_| {}).await
            }
            _ => {
                let address = match std::env::var("QUARTIER_PEER_ADDR") {
                    Ok(address) => address.parse().expect("address"),
                    Err(_) => {
                        let nearby = quartier_core::peer::Nearby::new().expect("mdns");
                        let found = nearby
                            .browse(&store, std::time::Duration::from_secs(10))
                            .expect("browse");
                        say(&format!("FOUND {}", found.len()));
                        found.first().expect("a device nearby").addresses[0]
                    }
                };
                quartier_core::peer::meet_at(&store, address, true, &|_| {}).await
            }
        }
    });
    let report = report.expect("session");
    say(&format!("RECEIVED {}", report.changes_received));
}

/// A line to the parent process, on the child's stdout (written past the test harness's capture).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Starts a child process running [`lan_peer_node_child`], under `prefix` (e.g. `ip netns exec`).
fn child(prefix: &[&str], mode: &str, store: &Store, env: &[(&str, String)]) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    let mut args: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    args.push(exe.display().to_string());
    args.extend(
        [
            "--exact",
            "peers::lan_peer_node_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from),
    );
    let mut command = std::process::Command::new(&args[0]);
    command
        .args(&args[1..])
        .env("QUARTIER_PEER_CHILD", mode)
        .env("QUARTIER_PEER_STORE", store.path())
        .stdout(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("child process")
}

/// Reads a child's output until a line starts with `prefix`; returns the rest of the line.
fn wait_for_line(child: &mut std::process::Child, prefix: &str) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.as_mut().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).expect("read");
        assert!(read > 0, "the child ended before printing {prefix}");
        // The test harness may have written the test's name on the same line first.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim().to_owned();
        }
    }
}

fn two_processes(prefixes: [&[&str]; 2], listen_ip: &str, by_discovery: bool) {
    let town = Town::new(&[Role::Volunteer, Role::Volunteer]);
    let first = town.post(1, "Nachbarschaftscafé", Audience::Everyone);
    let second = town.post(2, "Suche Bohrmaschine", Audience::Everyone);
    for phone in [1, 2] {
        town.store(phone).set_nearby(town.space, true).expect("opt in");
    }
    let mut listener = child(
        prefixes[0],
        "listen",
        town.store(2),
        &[("QUARTIER_PEER_IP", listen_ip.to_owned())],
    );
    let address = wait_for_line(&mut listener, "LISTENING");
    let env = if by_discovery {
        vec![]
    } else {
        vec![("QUARTIER_PEER_ADDR", address)]
    };
    let mut connector = child(prefixes[1], "connect", town.store(1), &env);
    let received = wait_for_line(&mut connector, "RECEIVED");
    assert_eq!(received, "1", "the connecting phone got the other's post");
    assert!(connector.wait().expect("wait").success());
    assert!(listener.wait().expect("wait").success());
    assert!(has(town.store(1), second.id));
    assert!(has(town.store(2), first.id));
    assert_eq!(holding(town.store(1)), holding(town.store(2)));
}

#[test]
fn lan_two_processes_on_loopback_sync() {
    two_processes([&[], &[]], "127.0.0.1", false);
}

/// Two network namespaces joined by a veth pair, removed when dropped.
struct Namespaces;

impl Namespaces {
    fn make() -> Option<Namespaces> {
        let run = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = run(&["netns", "del", "quartier-a"]);
        let _ = run(&["netns", "del", "quartier-b"]);
        let steps: &[&[&str]] = &[
            &["netns", "add", "quartier-a"],
            &["netns", "add", "quartier-b"],
            &[
                "link", "add", "qveth-a", "type", "veth", "peer", "name", "qveth-b",
            ],
            &["link", "set", "qveth-a", "netns", "quartier-a"],
            &["link", "set", "qveth-b", "netns", "quartier-b"],
            &[
                "-n",
                "quartier-a",
                "addr",
                "add",
                "10.77.0.1/24",
                "dev",
                "qveth-a",
            ],
            &[
                "-n",
                "quartier-b",
                "addr",
                "add",
                "10.77.0.2/24",
                "dev",
                "qveth-b",
            ],
            &[
                "-n",
                "quartier-a",
                "link",
                "set",
                "qveth-a",
                "up",
                "multicast",
                "on",
            ],
            &[
                "-n",
                "quartier-b",
                "link",
                "set",
                "qveth-b",
                "up",
                "multicast",
                "on",
            ],
            &["-n", "quartier-a", "link", "set", "lo", "up"],
            &["-n", "quartier-b", "link", "set", "lo", "up"],
        ];
        for step in steps {
            if !run(step) {
                drop(Namespaces);
                return None;
            }
        }
        Some(Namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in ["quartier-a", "quartier-b"] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

#[test]
fn lan_two_network_namespaces_find_each_other_with_mdns_and_sync() {
    let Some(_namespaces) = Namespaces::make() else {
        eprintln!("network namespaces are not available here (not root?): skipped");
        return;
    };
    two_processes(
        [
            &["ip", "netns", "exec", "quartier-a"],
            &["ip", "netns", "exec", "quartier-b"],
        ],
        "10.77.0.1",
        true,
    );
}

// ---------------------------------------------------------------------------------------------
// Joining offline.

#[test]
fn joining_offline_a_new_phone_gets_public_content_at_once_and_its_posts_wait_for_the_server() {
    let town = Town::new(&[Role::Volunteer]);
    let public = town.post(0, "Willkommen im Veedel", Audience::Everyone);
    let volunteers_only = town.post(0, "Dienstplan", Audience::Volunteers);
    town.sync(0);
    // No network: the coordinator's phone makes an invite, the new phone scans it.
    let invite = town
        .store(0)
        .make_offline_invite(town.space, Role::Resident, 24 * 60 * 60 * 1000)
        .expect("invite");
    assert!(
        invite.len() < 1_200,
        "fits a QR code: {} characters",
        invite.len()
    );
    // A volunteer cannot make one.
    assert!(town
        .store(1)
        .make_offline_invite(town.space, Role::Resident, 60_000)
        .is_err());
    let path = town.dir.path().join("newcomer.db");
    let newcomer = Store::open(&path, StoreOptions::default()).expect("store");
    let info = newcomer.accept_offline_invite(&invite).expect("accept");
    assert_eq!((info.space, info.role), (town.space, Role::Resident));
    // Damaged or forged invites are refused.
    assert!(newcomer.accept_offline_invite(&invite.replace('A', "B")).is_err());
    assert!(newcomer.accept_offline_invite("quartier-offline:!!!").is_err());
    // The new phone meets the coordinator's: it gets the public post, not the volunteers' one.
    let (at_newcomer, at_coordinator) = meet(&newcomer, town.store(0), options(QR_FRAME_BYTES));
    assert!(has(&newcomer, public.id), "{at_newcomer:?}");
    assert!(!has(&newcomer, volunteers_only.id));
    assert_eq!(at_coordinator.changes_received, 0);
    // A volunteer's phone (not the inviting one) does not host it.
    let error =
        meet_through(&newcomer, town.store(1), options(ONE_FRAME), |_, f| Some(f)).expect_err("refused");
    assert_eq!(peer_code(&error.1), "bad_certificate", "{}", error.1);
    // It writes a post at once; the post waits.
    let provisional = newcomer.provisional_person().expect("person");
    let pending = newcomer.create_item(NewItem::new(
        town.space,
        provisional,
        ItemContent::new(
            LocalizedText::single("de", "Hallo, ich bin neu"),
            ItemDetails::Post(Post {
                post_type: PostType::News,
            }),
        ),
    ));
    // First connection: it registers, the server confirms the invite, the post goes up.
    town.runtime
        .block_on(town.client.register(&newcomer, None))
        .expect("register");
    let memberships = town
        .runtime
        .block_on(town.client.confirm_offline_invites(&newcomer))
        .expect("confirmed");
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].role, Role::Resident);
    assert!(newcomer.offline_invites().expect("invites").is_empty());
    // An invite is used once: someone else with the same text is refused.
    let other = town.register();
    other
        .store
        .accept_offline_invite(&invite)
        .expect("still a valid text");
    assert!(town
        .runtime
        .block_on(town.client.confirm_offline_invites(&other.store))
        .is_err());
    town.runtime
        .block_on(town.client.sync_now(&newcomer, |_| {}))
        .expect("sync");
    let person = newcomer.account().expect("account").expect("registered").person;
    assert_eq!(person, provisional, "the server took the id it wrote under");
    // Nobody else can take that id (or an existing one) by proposing it.
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32])
        .verifying_key()
        .to_bytes();
    let taken = town.server.register_proposing(&key, person.as_uuid());
    assert!(
        matches!(taken, Err(quartier_server::ServerError::Conflict(_))),
        "{taken:?}"
    );
    let fresh = uuid::Uuid::now_v7();
    assert_eq!(
        town.server.register_proposing(&key, fresh).expect("a free id"),
        fresh
    );
    let pending = pending.expect("the post written before registering");
    town.sync(0);
    assert!(
        has(town.store(0), pending.id),
        "the post written offline reached the coordinator"
    );
    assert_eq!(newcomer.outbox_len().expect("outbox"), 0);
    let mine = newcomer
        .create_item(NewItem::new(
            town.space,
            person,
            ItemContent::new(
                LocalizedText::single("de", "Suche Fahrrad"),
                ItemDetails::Post(Post {
                    post_type: PostType::News,
                }),
            ),
        ))
        .expect("a member's post");
    town.runtime
        .block_on(town.client.sync_now(&newcomer, |_| {}))
        .expect("sync");
    town.sync(0);
    assert!(
        has(town.store(0), mine.id),
        "the new member's post reached the coordinator"
    );
    assert!(newcomer
        .peer_certificates()
        .expect("certificates")
        .iter()
        .any(|c| c.valid));
}

/// A photo with a smooth gradient (its thumbnail is a few kilobytes).
fn gradient_photo(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    pixels
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

#[test]
fn lan_transport_brings_the_thumbnails_of_the_items_it_brought() {
    let town = Town::new(&[Role::Volunteer, Role::Resident]);
    let imported = town
        .store(1)
        .import_media_bytes(
            &gradient_photo(900, 600),
            &quartier_core::media::ImportOptions::default(),
        )
        .expect("import");
    let thumbnail = imported.reference.thumbnail.clone().expect("a thumbnail").hash;
    let p = &town.phones[1];
    let post = p
        .store
        .create_item(NewItem::new(
            town.space,
            p.person,
            ItemContent {
                media: vec![imported.reference.clone()],
                ..ItemContent::new(
                    LocalizedText::single("de", "Unser Hof"),
                    ItemDetails::Post(Post {
                        post_type: PostType::News,
                    }),
                )
            },
        ))
        .expect("post");
    for phone in [1, 2] {
        town.store(phone).set_nearby(town.space, true).expect("opt in");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (served, met) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let address = listener.local_addr().expect("address");
        tokio::join!(
            quartier_core::peer::meet_next(town.store(2), &listener, true, &|_| {}),
            quartier_core::peer::meet_at(town.store(1), address, true, &|_| {}),
        )
    });
    let (served, met) = (served.expect("served"), met.expect("met"));
    assert!(has(town.store(2), post.id));
    assert_eq!((served.media_received, met.media_sent), (1, 1), "{served:?}");
    let kept = town
        .store(2)
        .media_info(&thumbnail)
        .expect("info")
        .expect("the thumbnail");
    assert!(kept.present);
    assert_eq!(
        town.store(2).read_media(&thumbnail).expect("bytes"),
        town.store(1).read_media(&thumbnail).expect("bytes")
    );
    // The original stays with the server's transfer queue.
    assert!(!town
        .store(2)
        .media_info(&imported.reference.hash)
        .expect("info")
        .is_some_and(|m| m.present));
    // Store and forward: the author never synced; the phone that got the post and its
    // thumbnail carries both to the server.
    assert!(!town.server.has_blob(&thumbnail));
    town.sync(2);
    let queue = quartier_core::sync::TransferQueue::new(&town.client).expect("queue");
    town.runtime
        .block_on(queue.run(town.store(2), |_| {}))
        .expect("transfers");
    assert!(
        town.server.has_blob(&thumbnail),
        "the relay put the thumbnail on the server"
    );
    town.sync(0);
    assert!(has(town.store(0), post.id));
    let coordinator_queue = quartier_core::sync::TransferQueue::new(&town.client).expect("queue");
    town.runtime
        .block_on(coordinator_queue.run(town.store(0), |_| {}))
        .expect("transfers");
    assert!(
        town.store(0)
            .media_info(&thumbnail)
            .expect("info")
            .is_some_and(|m| m.present),
        "the coordinator got the thumbnail from the server"
    );
}

#[test]
fn relay_whose_carried_change_the_server_refuses_returns_the_document_and_lists_nothing_as_its_own() {
    let (town, post) = relay_setup();
    // The relay writes a post of its own too; then A's device is revoked before the relay syncs.
    let own = town.post(2, "Eigener Aushang", Audience::Everyone);
    let a_device = town
        .store(1)
        .account()
        .expect("account")
        .expect("registered")
        .device;
    town.server.revoke(a_device);
    town.sync(2);
    // A's changes were refused (their signing device is revoked): they left the relay's outbox
    // and copy, the relay's own post went through, and nothing is listed as the relay's own.
    assert_eq!(town.store(2).outbox_len().expect("outbox"), 0);
    assert!(
        !has(town.store(2), post.id),
        "returned to what the server accepted"
    );
    assert!(town
        .store(2)
        .undelivered_changes()
        .expect("undelivered")
        .is_empty());
    town.sync(0);
    assert!(has(town.store(0), own.id));
    assert!(!has(town.store(0), post.id));
}

/// Found by `interrupted_sessions_resume_and_converge`: a side that said its last word in
/// several frames was already "finished" and refused the other's `continue`.
#[test]
fn a_last_message_in_several_frames_still_finishes_the_session() {
    let town = Town::new(&[Role::Volunteer, Role::Volunteer]);
    town.post(1, "A 0", Audience::Everyone);
    for frame_bytes in [128, 283, 500] {
        let (_, at_b) = meet(town.store(1), town.store(2), options(frame_bytes));
        assert!(at_b.finished, "{frame_bytes}: {at_b:?}");
    }
    assert_eq!(holding(town.store(1)), holding(town.store(2)));
}

#[test]
fn joining_offline_without_the_invites_secret_is_neither_hosted_nor_confirmed() {
    let town = Town::new(&[]);
    town.post(0, "Willkommen", Audience::Everyone);
    town.sync(0);
    let invite = town
        .store(0)
        .make_offline_invite(town.space, Role::Resident, 60 * 60 * 1000)
        .expect("invite");
    let newcomer = Store::open(town.dir.path().join("copycat.db"), StoreOptions::default()).expect("store");
    newcomer.accept_offline_invite(&invite).expect("accept");
    // Someone who saw the invite in a session but not its QR code: the right invite, another
    // secret (written into the store by hand, as such a device would hold it).
    {
        let conn = rusqlite::Connection::open(newcomer.path()).expect("open");
        conn.execute("UPDATE guest_invites SET secret = zeroblob(32)", [])
            .expect("forge");
    }
    let error =
        meet_through(&newcomer, town.store(0), options(ONE_FRAME), |_, f| Some(f)).expect_err("refused");
    assert_eq!(peer_code(&error.1), "unproven", "{}", error.1);
    town.runtime
        .block_on(town.client.register(&newcomer, None))
        .expect("register");
    let refused = town
        .runtime
        .block_on(town.client.confirm_offline_invites(&newcomer));
    assert!(
        matches!(&refused, Err(quartier_core::Error::Server { status: 403, .. })),
        "{refused:?}"
    );
}
