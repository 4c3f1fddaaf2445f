//! Checking and storing pushed changes. A change is stored only if every check passes:
//! it decodes as Automerge, its signature belongs to a registered device, the note's author is
//! that device's person, the author is a member whose role may do what the change does, and the
//! change leaves the document readable. Stored idempotently, keyed by change hash.

use automerge::Change;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use quartier_core::document::{checksum_matches, creation_of, item_from_doc, space_from_doc, ChangeNote};
use quartier_core::model::{permits, Action, Item, Role, Status};
use quartier_protocol::{
    signing::change_signing_payload, Ack, AckOutcome, DeferReason, DocKind, Record, RejectCode,
};
use rusqlite::Connection;
use uuid::Uuid;

use crate::documents::DocCache;
use crate::error::ServerError;
use crate::storage::{accounts, log, spaces, DocMeta};

/// Largest single change accepted.
pub const MAX_CHANGE_BYTES: usize = 512 * 1024;

struct Refusal(AckOutcome);

fn reject(code: RejectCode, message: impl Into<String>) -> Refusal {
    Refusal(AckOutcome::Rejected {
        code,
        message: message.into(),
    })
}

/// Checks and stores every pushed record of one request, in order.
pub fn push(
    conn: &Connection,
    docs: &DocCache,
    pusher_person: Uuid,
    records: &[Record],
) -> Result<Vec<Ack>, ServerError> {
    let mut acks = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let outcome = match record {
            Record::Change {
                space,
                doc,
                kind,
                bytes,
                device,
                signature,
            } => {
                match store_change(
                    conn,
                    docs,
                    pusher_person,
                    *space,
                    *doc,
                    *kind,
                    bytes,
                    *device,
                    signature,
                ) {
                    Ok(outcome) => outcome,
                    Err(Refusal(outcome)) => outcome,
                }
            }
            Record::Snapshot { .. } | Record::Created { .. } => AckOutcome::Rejected {
                code: RejectCode::Malformed,
                message: "devices push signed changes, not snapshots or creations".into(),
            },
            Record::Unknown => AckOutcome::Rejected {
                code: RejectCode::Malformed,
                message: "record type not known to this server".into(),
            },
        };
        acks.push(Ack {
            index: index as u32,
            outcome,
        });
    }
    Ok(acks)
}

#[allow(clippy::too_many_arguments)]
fn store_change(
    conn: &Connection,
    docs: &DocCache,
    pusher_person: Uuid,
    space: Uuid,
    doc: Uuid,
    kind: DocKind,
    bytes: &[u8],
    device: Uuid,
    signature: &[u8],
) -> Result<AckOutcome, Refusal> {
    // A fault of the server's own (database, disk) is never the change's fault: the device
    // keeps it and pushes it again. The detail goes to the log, not to the device.
    let internal = |e: ServerError| {
        tracing::error!(error = %e, "storing a pushed change failed");
        Refusal(AckOutcome::Deferred {
            message: "the server could not store this change just now; it is kept and sent again".into(),
            reason: DeferReason::ServerFault,
        })
    };
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(reject(
            RejectCode::TooLarge,
            format!("a change may have at most {MAX_CHANGE_BYTES} bytes"),
        ));
    }
    let change = Change::from_bytes(bytes.to_vec())
        .map_err(|e| reject(RejectCode::Malformed, format!("not an Automerge change: {e}")))?;
    let hash = change.hash();
    if !checksum_matches(bytes, &change) {
        return Err(reject(
            RejectCode::Malformed,
            "the change's checksum does not match its contents",
        ));
    }
    // The pushing device must belong to the space before anything else is said about the
    // change: otherwise a stranger could learn that a change exists from a `duplicate`.
    if spaces::role_of(conn, space, pusher_person)
        .map_err(internal)?
        .is_none()
    {
        return Err(reject(
            RejectCode::NotAMember,
            "you are not a member of this space",
        ));
    }
    if log::has_change(conn, hash.as_ref()).map_err(internal)? {
        return Ok(AckOutcome::Duplicate);
    }
    // The signature: a registered, unrevoked device's key over (document, change hash).
    let signer = accounts::device(conn, device)
        .map_err(internal)?
        .filter(|d| !d.revoked)
        .ok_or_else(|| {
            reject(
                RejectCode::BadSignature,
                "the signing device is unknown or revoked",
            )
        })?;
    let key_bytes: [u8; 32] = signer
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| reject(RejectCode::BadSignature, "bad device key"))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| reject(RejectCode::BadSignature, "bad device key"))?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| reject(RejectCode::BadSignature, "a signature has 64 bytes"))?;
    key.verify(
        &change_signing_payload(&doc.to_string(), hash.as_ref()),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| {
        reject(
            RejectCode::BadSignature,
            "the signature does not match the change",
        )
    })?;
    // The author: the note must name the signing device's person.
    let note = ChangeNote::decode(change.message())
        .ok_or_else(|| reject(RejectCode::Malformed, "the change does not say who made it"))?;
    if note.by.as_uuid() != signer.person {
        return Err(reject(
            RejectCode::NotYourChange,
            "the change names another person than its signing device's",
        ));
    }
    // The author must belong to the space too (the pusher was checked above).
    let role = spaces::role_of(conn, space, signer.person)
        .map_err(internal)?
        .ok_or_else(|| reject(RejectCode::NotAMember, "the author is not a member of this space"))?;
    let existing = log::doc_meta(conn, doc).map_err(internal)?;
    if let Some(meta) = &existing {
        if meta.space != space || meta.kind != kind.as_str() {
            return Err(reject(
                RejectCode::Forbidden,
                "the document belongs to another space or kind",
            ));
        }
    }
    // Apply to a copy and judge the result.
    let before = docs.get(conn, doc).map_err(internal)?;
    let mut after = before.clone();
    after
        .apply_changes([change])
        .map_err(|e| reject(RejectCode::Malformed, format!("the change does not apply: {e}")))?;
    if after.get_change_meta_by_hash(&hash).is_none() {
        return Ok(AckOutcome::Deferred {
            message: "a change this one depends on has not arrived yet".into(),
            reason: DeferReason::MissingDependency,
        });
    }
    let doc_id = doc.to_string();
    // Blobs the document references now (items only; a deleted item references none), so a
    // blob download can be checked against the items that use it (`blobs::index::may_fetch`).
    let (meta, reveal, blob_refs) = match kind {
        DocKind::Space => {
            if role != Role::Coordinator {
                return Err(reject(
                    RejectCode::Forbidden,
                    "only coordinators edit a space's details",
                ));
            }
            let read =
                space_from_doc(&after, &doc_id).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
            if read.id.as_uuid() != space || doc != space {
                return Err(reject(
                    RejectCode::Forbidden,
                    "a space document must be the space's own",
                ));
            }
            (
                DocMeta {
                    space,
                    kind: "space".into(),
                    author: None,
                    item_kind: None,
                    audience: None,
                },
                false,
                None,
            )
        }
        DocKind::Item => {
            let new =
                item_from_doc(&after, &doc_id).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
            let old = if existing.is_some() {
                item_from_doc(&before, &doc_id).ok()
            } else {
                None
            };
            judge_item(role, signer.person, space, doc, old.as_ref(), &new)?;
            let reveal = old.as_ref().is_some_and(|o| widens(o, &new));
            (
                DocMeta {
                    space,
                    kind: "item".into(),
                    author: Some(new.author.to_string()),
                    item_kind: Some(new.kind().as_str().into()),
                    audience: Some(new.content.audience.as_str().into()),
                },
                reveal,
                Some(if new.content.status == Status::Deleted {
                    Vec::new()
                } else {
                    new.content
                        .media
                        .iter()
                        .flat_map(|m| m.hashes())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                }),
            )
        }
    };
    let seq = log::append_change(conn, doc, &meta, hash.as_ref(), bytes, device, &signature, reveal)
        .map_err(internal)?;
    if let Some(hashes) = &blob_refs {
        crate::blobs::index::set_refs(conn, doc, hashes.iter().map(String::as_str))
            .map_err(|e| internal(ServerError::Internal(format!("blob references: {e}"))))?;
    }
    // Worked out once here rather than on every new member's pull: a new document's creation
    // form if the core's rule rebuilds it exactly, and none once the document is edited.
    match existing {
        None => {
            if let Ok(Some(creation)) = creation_of(&after, &doc_id, kind) {
                log::record_creation(conn, doc, &creation).map_err(internal)?;
            }
        }
        Some(_) => log::drop_creation(conn, doc).map_err(internal)?,
    }
    docs.stored(conn, doc, after, seq).map_err(internal)?;
    Ok(AckOutcome::Stored)
}

/// The permission table applied to one item change.
fn judge_item(
    role: Role,
    person: Uuid,
    space: Uuid,
    doc: Uuid,
    old: Option<&Item>,
    new: &Item,
) -> Result<(), Refusal> {
    if new.id.as_uuid() != doc || new.space.as_uuid() != space {
        return Err(reject(
            RejectCode::Forbidden,
            "an item must keep its own id and space",
        ));
    }
    let kind = new.kind();
    let audience = new.content.audience;
    let Some(old) = old else {
        if new.author.as_uuid() != person {
            return Err(reject(
                RejectCode::NotYourChange,
                "an item is created by its author",
            ));
        }
        if !permits(role, Action::Create, kind, audience, true) {
            return Err(reject(
                RejectCode::Forbidden,
                format!("a {role} may not create a {kind} for {audience}"),
            ));
        }
        return Ok(());
    };
    let is_author = old.author.as_uuid() == person;
    if new.author != old.author || new.kind() != old.kind() || new.created_at != old.created_at {
        return Err(reject(
            RejectCode::Forbidden,
            "an item's author, kind and creation time cannot change",
        ));
    }
    let allowed = if new.content.status == Status::Deleted && old.content.status != Status::Deleted {
        permits(role, Action::Delete, kind, old.content.audience, is_author)
    } else if is_author {
        permits(role, Action::EditOwn, kind, audience, true)
    } else {
        permits(role, Action::EditOthers, kind, old.content.audience, false)
            && permits(role, Action::EditOthers, kind, audience, false)
    };
    if allowed {
        Ok(())
    } else {
        Err(reject(
            RejectCode::Forbidden,
            format!(
                "a {role} may not make this change to a {kind} for {}",
                old.content.audience
            ),
        ))
    }
}

/// Whether the new state is visible to someone the old was not (they then get a snapshot).
fn widens(old: &Item, new: &Item) -> bool {
    Role::ALL
        .iter()
        .any(|r| new.content.audience.admits(*r) && !old.content.audience.admits(*r))
}
