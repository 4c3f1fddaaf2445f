//! Device to device (`docs/protocol.md`, "Device to device"), against a real server database
//! answering in-process (`sim::InProcessServer`): certificates come with each sync, two devices
//! meet with `PeerSession` (frames handed across in memory), and changes carried from device to
//! device reach the server as their authors'. Tests whose names hold `relay` cover
//! store-and-forward and malicious relays (`cargo test relay`).

mod sim;

use std::collections::BTreeMap;
use std::sync::Arc;

use quartier_core::model::*;
use quartier_core::peer::{PeerOptions, PeerReport, PeerRole, PeerSession};
use quartier_core::sync::SyncClient;
use quartier_core::{Store, StoreOptions};
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
        let phone = self.register();
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
        carry: true,
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
    let (mut left, first) = PeerSession::start(a, PeerRole::Initiator, options).map_err(|e| (true, e))?;
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
