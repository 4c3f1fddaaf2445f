//! Signed changes made without a device store (`scale_bench`, `load_bench`): a registered
//! device's key held by the bench, and documents made by the core's own document code
//! (`new_space_change`, `new_item_change`: the change a device store writes), so that the
//! server is fed exactly what devices push, at a rate no durable device store could produce.

use automerge::ActorId;
use ed25519_dalek::{Signer as _, SigningKey};
use quartier_bench::Generator;
use quartier_core::document::{new_item_change, new_space_change};
use quartier_core::model::{
    permits, Action, Audience, Item, ItemId, ItemKind, PersonId, Role, Space, SpaceId,
};
use quartier_protocol::signing::change_signing_payload;
use quartier_protocol::{DocKind, Record};
use quartier_server::storage::{accounts, now_ms, random_token};
use rusqlite::Connection;
use uuid::Uuid;

use super::BoxError;

/// A device registered straight into a server's database, its key held here.
pub struct Signer {
    pub key: SigningKey,
    pub device: Uuid,
    pub actor: ActorId,
    pub person: PersonId,
    /// Its bearer token.
    pub token: String,
}

impl Signer {
    /// Registers a new device (and person) with a random key.
    pub fn register(conn: &Connection, name: &str) -> Result<Signer, BoxError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        let key = SigningKey::from_bytes(&secret);
        let token = random_token(32)?;
        let registered = accounts::register(conn, &key.verifying_key().to_bytes(), Some(name), &token, None)?;
        Ok(Signer {
            key,
            device: registered.device,
            actor: ActorId::random(),
            person: PersonId::from(registered.person),
            token,
        })
    }

    /// A change record signed by this device.
    pub fn record(&self, space: Uuid, doc: Uuid, kind: DocKind, change: automerge::Change) -> Record {
        let hash = change.hash();
        let signature = self
            .key
            .sign(&change_signing_payload(&doc.to_string(), hash.as_ref()))
            .to_bytes()
            .to_vec();
        Record::Change {
            space,
            doc,
            kind,
            bytes: change.raw_bytes().to_vec(),
            device: self.device,
            signature,
        }
    }

    /// A new space's document, signed.
    pub fn space(&self) -> Result<(SpaceId, Record), BoxError> {
        let space = Space {
            id: SpaceId::new(),
            meta: Generator::space_meta(),
        };
        let id = space.id.as_uuid();
        let change = new_space_change(&space, self.person, &self.actor, now_ms())?;
        Ok((space.id, self.record(id, id, DocKind::Space, change)))
    }

    /// `count` generated items in `space` (comments answer earlier items, kept in `parents`),
    /// each a new document of one signed change, written as `role` may.
    pub fn items(
        &self,
        space: SpaceId,
        role: Role,
        gen: &mut Generator,
        parents: &mut Vec<ItemId>,
        count: usize,
    ) -> Result<Vec<Record>, BoxError> {
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let mut new = gen.next_item(space, parents);
            // The generator writes for many roles; this author has one.
            if !permits(
                role,
                Action::Create,
                new.content.details.kind(),
                new.content.audience,
                true,
            ) {
                new.content.audience = Audience::Everyone;
            }
            let at = chrono::Utc::now();
            let item = Item {
                id: ItemId::new(),
                space,
                author: self.person,
                created_at: at,
                updated_at: at,
                content: new.content,
            };
            if item.kind() != ItemKind::Comment {
                parents.push(item.id);
            }
            let change = new_item_change(&item, &self.actor)?;
            records.push(self.record(space.as_uuid(), item.id.as_uuid(), DocKind::Item, change));
        }
        Ok(records)
    }
}
