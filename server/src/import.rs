//! The operator's imports (`quartier-server import …`, docs/standards.md): what a
//! `quartier-standards` reader took from a file becomes changes signed by an import device of
//! the person named, pushed through the same checks as any device's changes (`sync::push`). An
//! import can do nothing that person could not do from their phone, and every device receives
//! its items at its next sync. Re-importing updates the items an earlier import made (by source
//! key); an item deleted since stays deleted.
//!
//! The server holds one import device per importing person; its key is made here and never
//! leaves the database. Run it while `serve` is stopped (the data folder's lock says so): the
//! serving process keeps documents in memory and would not see changes written beside it.

use automerge::ActorId;
use ed25519_dalek::{Signer, SigningKey};
use quartier_domain::document::{
    item_from_doc, item_to_json, new_item_change, write_change, ChangeNote, DocKind,
};
use quartier_domain::model::{Item, Status};
use quartier_protocol::signing::change_signing_payload;
use quartier_protocol::{AckOutcome, Record};
use quartier_standards::{imported_over, Import, Skipped, IMPORTED_FIELDS};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::documents::{self, DocCache};
use crate::error::ServerError;
use crate::storage::{accounts, random_token, spaces, stored_uuid, Db};
use crate::sync::{push, PushLimits};

/// What an import changed on the server.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub created: Vec<Uuid>,
    pub updated: Vec<Uuid>,
    pub unchanged: Vec<Uuid>,
    pub skipped: Vec<Skipped>,
}

/// The import device of `person`, made the first time they import.
fn import_device(conn: &Connection, person: Uuid) -> Result<(Uuid, SigningKey), ServerError> {
    let held: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT device_id, secret FROM import_devices WHERE person_id = ?1")?
        .query_row([person.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((device, secret)) = held {
        let secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| ServerError::Internal("a stored import key is not 32 bytes".into()))?;
        return Ok((stored_uuid(&device)?, SigningKey::from_bytes(&secret)));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| ServerError::Internal(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&secret);
    let code = random_token(16)?;
    accounts::create_device_link(conn, person, &code)?;
    let device = accounts::register(
        conn,
        key.verifying_key().as_bytes(),
        Some("Import"),
        &random_token(32)?,
        Some(&code),
    )?;
    conn.prepare_cached("INSERT INTO import_devices (person_id, device_id, secret) VALUES (?1, ?2, ?3)")?
        .execute(params![
            person.to_string(),
            device.device.to_string(),
            secret.to_vec()
        ])?;
    Ok((device.device, key))
}

/// What a record becomes: a new item, or a change of the one an earlier import made.
enum Planned {
    Create { key: String, item: Uuid },
    Update { item: Uuid },
}

/// Imports what a reader took from a file into `space` as `person` (who must be a member).
pub fn run(
    db: &Db,
    docs: &DocCache,
    space: Uuid,
    person: Uuid,
    import: Import,
) -> Result<ImportSummary, ServerError> {
    let mut summary = ImportSummary {
        skipped: import.skipped,
        ..Default::default()
    };
    let (device, key) = {
        let conn = db.lock();
        if spaces::role_of(&conn, space, person)?.is_none() {
            return Err(ServerError::Forbidden(format!(
                "person {person} is not a member of space {space}"
            )));
        }
        import_device(&conn, person)?
    };
    let actor = ActorId::from(device.as_bytes().as_slice());
    let now = chrono::Utc::now();
    let mut records = Vec::new();
    let mut planned = Vec::new();
    {
        let conn = db.read()?;
        let mut seen = std::collections::BTreeSet::new();
        for record in import.items {
            let key_text = record.source_key;
            let skip = |reason: &str| Skipped {
                record: key_text.clone(),
                reason: reason.to_owned(),
            };
            if record.item.space.as_uuid() != space || record.item.author.as_uuid() != person {
                summary
                    .skipped
                    .push(skip("the record was read for another space or person"));
                continue;
            }
            if !seen.insert(key_text.clone()) {
                summary
                    .skipped
                    .push(skip("the file has this record twice; the first one was taken"));
                continue;
            }
            let earlier: Option<String> = conn
                .prepare_cached("SELECT item_id FROM imported_items WHERE space_id = ?1 AND source_key = ?2")?
                .query_row([space.to_string(), key_text.clone()], |r| r.get(0))
                .optional()?;
            if earlier.as_deref() == Some("") {
                summary
                    .skipped
                    .push(skip("the item it made was erased; it is not imported again"));
                continue;
            }
            let earlier = earlier.map(|id| stored_uuid(&id)).transpose()?;
            let current = match earlier {
                Some(id) => documents::load(&conn, id).ok().and_then(|state| {
                    item_from_doc(&state.doc, &id.to_string())
                        .ok()
                        .map(|item| (id, state, item))
                }),
                None => None,
            };
            let built = match current {
                Some((id, state, item)) => {
                    if item.content.status == Status::Deleted {
                        summary
                            .skipped
                            .push(skip("the item it made was deleted; it is not brought back"));
                        continue;
                    }
                    let next = Item {
                        content: imported_over(&item.content, &record.item.content),
                        updated_at: now,
                        ..item.clone()
                    };
                    if next.content == item.content {
                        summary.unchanged.push(id);
                        continue;
                    }
                    if let Err(e) = next.content.validate() {
                        summary.skipped.push(skip(&e.to_string()));
                        continue;
                    }
                    let mut doc = state.doc.with_actor(actor.clone());
                    let id_text = id.to_string();
                    let note = ChangeNote::new(person.into(), IMPORTED_FIELDS);
                    let change = item_to_json(&next).and_then(|json| {
                        write_change(
                            &mut doc,
                            &id_text,
                            DocKind::Item,
                            &json,
                            &note,
                            now.timestamp_millis(),
                        )
                    });
                    match change {
                        Ok(Some(change)) => (Planned::Update { item: id }, change),
                        Ok(None) => {
                            summary.unchanged.push(id);
                            continue;
                        }
                        Err(e) => {
                            summary.skipped.push(skip(&e.to_string()));
                            continue;
                        }
                    }
                }
                None => {
                    if let Err(e) = record.item.content.validate() {
                        summary.skipped.push(skip(&e.to_string()));
                        continue;
                    }
                    let item = record.item.into_item(now);
                    match new_item_change(&item, &actor) {
                        Ok(change) => (
                            Planned::Create {
                                key: key_text.clone(),
                                item: item.id.as_uuid(),
                            },
                            change,
                        ),
                        Err(e) => {
                            summary.skipped.push(skip(&e.to_string()));
                            continue;
                        }
                    }
                }
            };
            let (plan, mut change) = built;
            let doc = match &plan {
                Planned::Create { item, .. } | Planned::Update { item } => *item,
            };
            let signature = key.sign(&change_signing_payload(&doc.to_string(), &change.hash().0));
            records.push(Record::Change {
                space,
                doc,
                kind: DocKind::Item,
                bytes: change.bytes().to_vec(),
                device,
                signature: signature.to_bytes().to_vec(),
            });
            planned.push((key_text, plan));
        }
    }
    let limits = PushLimits {
        work_per_request: usize::MAX,
        ..PushLimits::default()
    };
    let report = push(db, docs, person, &records, &limits)?;
    let conn = db.lock();
    for ack in report.acks {
        let Some((key_text, plan)) = planned.get(ack.index as usize) else {
            continue;
        };
        match ack.outcome {
            AckOutcome::Stored | AckOutcome::Duplicate => match plan {
                Planned::Create { key, item } => {
                    conn.prepare_cached(
                        "INSERT INTO imported_items (space_id, source_key, item_id) VALUES (?1, ?2, ?3)
                         ON CONFLICT (space_id, source_key) DO UPDATE SET item_id = excluded.item_id",
                    )?
                    .execute([space.to_string(), key.clone(), item.to_string()])?;
                    summary.created.push(*item);
                }
                Planned::Update { item } => summary.updated.push(*item),
            },
            AckOutcome::Rejected { code, message } => summary.skipped.push(Skipped {
                record: key_text.clone(),
                reason: format!("{code}: {message}"),
            }),
            other => summary.skipped.push(Skipped {
                record: key_text.clone(),
                reason: format!("not taken now ({other:?}); import the file again"),
            }),
        }
    }
    Ok(summary)
}
