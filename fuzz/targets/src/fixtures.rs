//! What the targets run against: fixed ids, a few deterministic base documents (the seed
//! corpus edits them), and a real server database in a temporary folder with a registered
//! device, a space and the base documents pushed. Built once per process.

use std::sync::{Mutex, MutexGuard, OnceLock};

use automerge::{ActorId, Automerge, Change};
use chrono::{TimeZone, Utc};
use ed25519_dalek::{Signer, SigningKey};
use quartier_bench::{Generator, Mix};
use quartier_core::document::{new_item_change, new_space_change, DocKind};
use quartier_core::model::{Item, ItemId, ItemKind, PersonId, Space, SpaceId};
use quartier_protocol::blobs::{AnnounceBlob, BLOB_CHUNK_BYTES};
use quartier_protocol::signing::change_signing_payload;
use quartier_protocol::Record;
use quartier_server::blobs::fs::FsBlobStore;
use quartier_server::blobs::{index, BlobLimits};
use quartier_server::documents::DocCache;
use quartier_server::storage::{spaces, Db};
use uuid::Uuid;

/// The person every seed change is written by (coordinator of [`SPACE`] on the server).
pub const PERSON: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
/// A second person, who redeems invites.
pub const GUEST: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
/// The device of [`PERSON`], whose key is [`signing_key`].
pub const DEVICE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003);
/// The space of every seed.
pub const SPACE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0010);
/// A valid invite code to [`SPACE`] on the fuzz server.
pub const INVITE_CODE: &str = "00112233445566778899aabbccddeeff";
/// The document id creation records are rebuilt as.
pub const CREATED_DOC: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0020);
/// Kinds of the base items, in order; their ids are `base_item_id(i)`.
pub const BASE_KINDS: [ItemKind; 6] = [
    ItemKind::Post,
    ItemKind::Place,
    ItemKind::Offer,
    ItemKind::Event,
    ItemKind::Request,
    ItemKind::Observation,
];

pub fn base_item_id(i: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0001_0000 + i as u128)
}

/// The Automerge actor of the device that wrote the base documents.
pub fn actor() -> ActorId {
    ActorId::from(&[0x5a; 16][..])
}

/// The Ed25519 key of [`DEVICE`].
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The base items: one of each kind but comments, generated content, fixed ids and times.
pub fn base_items() -> Vec<Item> {
    let mut generator = Generator::new(12, Mix::Mixed);
    let at = Utc
        .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("fixed time");
    BASE_KINDS
        .iter()
        .enumerate()
        .map(|(i, kind)| Item {
            id: ItemId::from(base_item_id(i)),
            space: SpaceId::from(SPACE),
            author: PersonId::from(PERSON),
            created_at: at,
            updated_at: at,
            content: generator.content(*kind, None),
        })
        .collect()
}

pub fn base_space() -> Space {
    Space {
        id: SpaceId::from(SPACE),
        meta: Generator::space_meta(),
    }
}

/// The creation change of every base document: the space first, then the items.
pub fn base_changes() -> Vec<(Uuid, DocKind, Change)> {
    let time = Utc
        .with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
        .single()
        .expect("fixed time")
        .timestamp_millis();
    let mut all = vec![(
        SPACE,
        DocKind::Space,
        new_space_change(&base_space(), PersonId::from(PERSON), &actor(), time).expect("space change"),
    )];
    for item in base_items() {
        all.push((
            item.id.as_uuid(),
            DocKind::Item,
            new_item_change(&item, &actor()).expect("item change"),
        ));
    }
    all
}

/// The base documents, each as its creation made it.
pub fn base_docs() -> &'static [(Uuid, DocKind, Automerge)] {
    static DOCS: OnceLock<Vec<(Uuid, DocKind, Automerge)>> = OnceLock::new();
    DOCS.get_or_init(|| {
        base_changes()
            .into_iter()
            .map(|(id, kind, change)| {
                let mut doc = Automerge::new();
                doc.apply_changes([change]).expect("base change applies");
                (id, kind, doc)
            })
            .collect()
    })
}

/// A device store at `path` holding the base documents, merged as from another device.
pub fn base_store(path: &std::path::Path) -> quartier_core::Store {
    let store = quartier_core::Store::open(path, Default::default()).expect("store");
    let incoming: Vec<quartier_core::IncomingChange> = base_changes()
        .into_iter()
        .map(|(doc, kind, change)| quartier_core::IncomingChange {
            doc_id: doc.to_string(),
            kind,
            bytes: change.raw_bytes().to_vec(),
        })
        .collect();
    store.apply_changes(&incoming).expect("base changes apply");
    store
}

/// A change as [`DEVICE`] pushes it: signed over its hash. Bytes that are no change get a
/// signature over nothing, which the server refuses, as it must.
pub fn signed_record(doc: Uuid, kind: DocKind, bytes: &[u8]) -> Record {
    let signature = match quartier_core::document::guarded::decode(bytes.to_vec()) {
        Ok(change) => signing_key()
            .sign(&change_signing_payload(&doc.to_string(), change.hash().as_ref()))
            .to_bytes()
            .to_vec(),
        Err(_) => vec![0; 64],
    };
    Record::Change {
        space: SPACE,
        doc,
        kind,
        bytes: bytes.to_vec(),
        device: DEVICE,
        signature,
    }
}

/// Hashes of the pending uploads the blob target sends chunks to.
pub const UPLOAD_HASHES: [&str; 2] = [
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222",
];

/// A real server database and blob folder, as `quartier-server serve` opens them.
pub struct ServerEnv {
    pub db: Db,
    pub docs: DocCache,
    pub blobs: FsBlobStore,
    pub limits: BlobLimits,
    _dir: tempfile::TempDir,
}

/// The shared server of this process, locked for one input.
pub fn server() -> MutexGuard<'static, ServerEnv> {
    static ENV: OnceLock<Mutex<ServerEnv>> = OnceLock::new();
    ENV.get_or_init(|| Mutex::new(ServerEnv::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl ServerEnv {
    fn new() -> ServerEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(&dir.path().join("data")).expect("server database");
        let blobs = FsBlobStore::open(&dir.path().join("data/blobs")).expect("blob folder");
        let docs = DocCache::new(64);
        let limits = BlobLimits {
            max_blob_bytes: 4 * u64::from(BLOB_CHUNK_BYTES),
            space_quota_bytes: u64::MAX / 2,
        };
        {
            let conn = db.lock();
            // The person and device with fixed ids (registration makes random ones), so that
            // the committed seeds name an author the server knows.
            for (person, name) in [(PERSON, "fuzz"), (GUEST, "guest")] {
                conn.execute(
                    "INSERT INTO persons (person_id, display_name, created_at) VALUES (?1, ?2, 0)",
                    rusqlite::params![person.to_string(), name],
                )
                .expect("person");
            }
            conn.execute(
                "INSERT INTO devices (device_id, person_id, public_key, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0)",
                rusqlite::params![
                    DEVICE.to_string(),
                    PERSON.to_string(),
                    signing_key().verifying_key().to_bytes().to_vec(),
                    quartier_server::storage::secret_hash("fuzz-token"),
                ],
            )
            .expect("device");
            spaces::create_space(&conn, SPACE, PERSON).expect("space");
            spaces::create_invite(
                &conn,
                SPACE,
                quartier_protocol::Role::Resident,
                i64::MAX,
                // Redeemed once per input: never used up during a run.
                u32::MAX,
                INVITE_CODE,
                PERSON,
            )
            .expect("invite");
        }
        // `push` takes the database lock itself.
        let records: Vec<Record> = base_changes()
            .into_iter()
            .map(|(doc, kind, change)| signed_record(doc, kind, change.raw_bytes()))
            .collect();
        let report = quartier_server::sync::push(
            &db,
            &docs,
            PERSON,
            &records,
            &quartier_server::sync::PushLimits::default(),
        )
        .expect("base push");
        for ack in report.acks {
            assert_eq!(
                ack.outcome,
                quartier_protocol::AckOutcome::Stored,
                "base document {} refused",
                ack.index
            );
        }
        {
            let conn = db.lock();
            for hash in UPLOAD_HASHES {
                let announced = AnnounceBlob {
                    hash: hash.into(),
                    size: 2 * u64::from(BLOB_CHUNK_BYTES) + 17,
                    mime_type: "image/jpeg".into(),
                    chunk_size: BLOB_CHUNK_BYTES,
                    variant: None,
                };
                index::announce(&conn, SPACE, PERSON, &announced, &limits).expect("announce");
            }
        }
        ServerEnv {
            db,
            docs,
            blobs,
            limits,
            _dir: dir,
        }
    }
}
