//! What a device checks of each change a peer hands it, before anything is stored: the author's
//! certificate (the pinned server's signature, expiry, the newest revocation list), the author's
//! signature over the change, the change's note naming the certified person, and the permission
//! rule the server applies on push (`judge_item`, `judge_space_edit`), judged on a scratch copy of
//! the document in order. A forged or altered change stops the session; a change the rule
//! refuses, or whose certificate is expired or revoked, is left out and reported.

use std::collections::HashMap;

use automerge::{Automerge, Change};
use ed25519_dalek::{Signature, VerifyingKey};
use quartier_protocol::certificates::{Certificate, CertificateError, RevocationList};
use quartier_protocol::signing::change_signing_payload;
use quartier_protocol::{DocKind, Record};
use rusqlite::Connection;
use uuid::Uuid;

use crate::document::{guarded, item_from_doc, space_from_doc, ChangeNote};
use crate::error::{Error, Result};
use crate::model::{judge_item, judge_space_edit, permits, Action, ItemId, PersonId, Role, SpaceId, Status};

/// A change that passed every check, ready to be stored.
pub(crate) struct Accepted {
    pub space: Uuid,
    pub doc: Uuid,
    pub kind: DocKind,
    pub change: Change,
    pub device: Uuid,
    pub signature: Vec<u8>,
}

/// A change left out, and why (no personal data).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct PeerRefusal {
    pub doc_id: String,
    /// `forbidden`, `not_your_change`, `revoked`, `expired`, `missing_dependency`, `unreadable`,
    /// `too_large`, `malformed`.
    pub code: String,
    pub message: String,
}

/// What the receiving device is, for the read check.
pub(crate) struct Receiver {
    pub person: Uuid,
    /// Its role by space (its own certificates').
    pub roles: HashMap<Uuid, Role>,
}

fn stop(code: &'static str, message: impl Into<String>) -> Error {
    Error::Peer {
        code,
        message: message.into(),
    }
}

/// The certificates a session knows: shown by the peer, or kept from before.
pub(crate) trait Certificates {
    fn lookup(&self, conn: &Connection, device: Uuid, space: Uuid) -> Result<Option<Certificate>>;
    fn list(&self, conn: &Connection, space: Uuid) -> Result<Option<RevocationList>>;
}

/// Checks a page of changes in order. `Err` stops the session (nothing of the page is stored);
/// `Ok` gives what to store and what was left out.
pub(crate) fn verify_page(
    conn: &Connection,
    actor: &automerge::ActorId,
    certificates: &dyn Certificates,
    shared: &[Uuid],
    receiver: &Receiver,
    records: &[Record],
    now: i64,
) -> Result<(Vec<Accepted>, Vec<PeerRefusal>)> {
    let mut scratch: HashMap<Uuid, (DocKind, Automerge)> = HashMap::new();
    // A document with a change left out takes no later change in this page (they may build on it).
    let mut stopped: HashMap<Uuid, ()> = HashMap::new();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for record in records {
        let Record::Change {
            space,
            doc,
            kind,
            bytes,
            device,
            signature,
        } = record
        else {
            return Err(stop(
                "malformed",
                "a turn carried something other than a signed change",
            ));
        };
        if !shared.contains(space) {
            return Err(stop(
                "not_shared",
                "a change of a space this session does not share",
            ));
        }
        let change = guarded::decode(bytes.clone())
            .map_err(|e| stop("malformed", format!("a change does not decode: {e}")))?;
        let hash = change.hash();
        let certificate = certificates.lookup(conn, *device, *space)?.ok_or_else(|| {
            stop(
                "bad_certificate",
                "a change came without its author's certificate",
            )
        })?;
        let key = certificate
            .verifying_key()
            .map_err(|e| stop("bad_certificate", e.to_string()))?;
        let good = <[u8; 64]>::try_from(signature.as_slice()).is_ok_and(|s| {
            verify(
                &key,
                &change_signing_payload(&doc.to_string(), &hash.0),
                &Signature::from_bytes(&s),
            )
        });
        if !good {
            return Err(stop(
                "bad_signature",
                "a change's signature does not match its author's key: it was altered or signed by someone else",
            ));
        }
        let note = ChangeNote::decode(change.message())
            .ok_or_else(|| stop("malformed", "a change does not say who made it"))?;
        if note.by.as_uuid() != certificate.person {
            return Err(stop(
                "not_your_change",
                "a change names another person than its signing device's",
            ));
        }
        let refuse = |code: &str, message: String| PeerRefusal {
            doc_id: doc.to_string(),
            code: code.to_owned(),
            message,
        };
        if stopped.contains_key(doc) {
            refused.push(refuse(
                "missing_dependency",
                "an earlier change of this document was left out".into(),
            ));
            continue;
        }
        if let Err(e) = certificate.check_valid(now, certificates.list(conn, *space)?.as_ref()) {
            let code = match e {
                CertificateError::Revoked => "revoked",
                _ => "expired",
            };
            stopped.insert(*doc, ());
            refused.push(refuse(code, format!("the author's {e}")));
            continue;
        }
        // The document as stored (or empty), with the page's earlier changes applied.
        if !scratch.contains_key(doc) {
            let stored = crate::store::load_document(conn, &doc.to_string(), actor)?;
            let state = match stored {
                Some(loaded) => {
                    if loaded.kind != *kind
                        || loaded.space_id.as_deref().is_some_and(|s| s != space.to_string())
                    {
                        return Err(stop(
                            "malformed",
                            "a change names another space or kind than its document",
                        ));
                    }
                    (loaded.kind, loaded.doc)
                }
                None => (*kind, Automerge::new()),
            };
            scratch.insert(*doc, state);
        }
        let Some((_, state)) = scratch.get_mut(doc) else {
            continue;
        };
        if state.get_change_meta_by_hash(&hash).is_some() {
            continue;
        }
        if change
            .deps()
            .iter()
            .any(|d| state.get_change_meta_by_hash(d).is_none())
        {
            stopped.insert(*doc, ());
            refused.push(refuse(
                "missing_dependency",
                "a change it builds on has not arrived".into(),
            ));
            continue;
        }
        let before = match kind {
            DocKind::Item if !state.get_heads().is_empty() => item_from_doc(state, &doc.to_string()).ok(),
            _ => None,
        };
        if bytes.len() > quartier_protocol::MAX_CHANGE_BYTES {
            stopped.insert(*doc, ());
            refused.push(refuse(
                "too_large",
                format!(
                    "a change may have at most {} bytes",
                    quartier_protocol::MAX_CHANGE_BYTES
                ),
            ));
            continue;
        }
        // Applied in place: a document with a refused change takes no later change of the page,
        // so its scratch copy is not read again.
        guarded::apply(state, vec![change.clone()])
            .map_err(|e| stop("malformed", format!("a change does not apply: {e}")))?;
        let judged = judge(
            *kind,
            &certificate,
            *space,
            *doc,
            before.as_ref(),
            state,
            receiver,
        );
        match judged {
            Ok(()) => {
                accepted.push(Accepted {
                    space: *space,
                    doc: *doc,
                    kind: *kind,
                    change,
                    device: *device,
                    signature: signature.clone(),
                });
            }
            Err(refusal) => {
                stopped.insert(*doc, ());
                refused.push(refusal);
            }
        }
    }
    Ok((accepted, refused))
}

fn verify(key: &VerifyingKey, payload: &[u8], signature: &Signature) -> bool {
    key.verify_strict(payload, signature).is_ok()
}

/// The server's push rule for the author, then the receiver's read rule.
fn judge(
    kind: DocKind,
    author: &Certificate,
    space: Uuid,
    doc: Uuid,
    before: Option<&crate::model::Item>,
    after: &Automerge,
    receiver: &Receiver,
) -> std::result::Result<(), PeerRefusal> {
    let refuse = |code: &str, message: String| PeerRefusal {
        doc_id: doc.to_string(),
        code: code.to_owned(),
        message,
    };
    let doc_id = doc.to_string();
    match kind {
        DocKind::Space => {
            judge_space_edit(author.role).map_err(|r| refuse(r.code.as_str(), r.message))?;
            let read = space_from_doc(after, &doc_id).map_err(|e| refuse("malformed", e.to_string()))?;
            if read.id.as_uuid() != space || doc != space {
                return Err(refuse(
                    "forbidden",
                    "a space document must be the space's own".into(),
                ));
            }
            read.meta
                .validate()
                .map_err(|e| refuse("malformed", format!("not a valid space: {e}")))?;
            Ok(())
        }
        DocKind::Item => {
            let new = item_from_doc(after, &doc_id).map_err(|e| refuse("malformed", e.to_string()))?;
            judge_item(
                author.role,
                PersonId::from(author.person),
                SpaceId::from(space),
                ItemId::from(doc),
                before,
                &new,
            )
            .map_err(|r| refuse(r.code.as_str(), r.message))?;
            if new.content.status != Status::Deleted {
                new.content
                    .validate()
                    .map_err(|e| refuse("malformed", format!("not a valid item: {e}")))?;
            }
            let role = receiver.roles.get(&space).copied();
            let readable = role.is_some_and(|role| {
                permits(
                    role,
                    Action::Read,
                    new.kind(),
                    new.content.audience,
                    new.author.as_uuid() == receiver.person,
                )
            });
            if !readable {
                return Err(refuse(
                    "unreadable",
                    "this device's role may not read the item".into(),
                ));
            }
            Ok(())
        }
    }
}
