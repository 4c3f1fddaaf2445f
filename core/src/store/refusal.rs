//! Changes a server refused for good, and what the device does about them.
//!
//! A refused change is never dropped silently, and never left in a document where the person's
//! later edits would depend on it (the server would defer those forever, waiting for a change it
//! will never take). Instead, in the transaction that applies the server's answer:
//!
//! 1. the refused change and every change built on it leave the document, which returns to what
//!    the server accepted (rebuilt from the other changes, snapshot rewritten);
//! 2. the person's later edits are made again on top of it, as new changes, field by field (the
//!    top-level fields each edit changed, with the values it gave them), so nothing allowed is
//!    lost; if the document has nothing left (its creation was refused), they cannot be;
//! 3. the projection and history are rewritten from the returned document;
//! 4. the refused change is listed in `undelivered` with the protocol's code, the server's
//!    message, the fields it touched and the document as the person last saw it, for the app to
//!    show ("not delivered: reason") and for the person to copy or discard.
//!
//! Everything here runs inside the caller's write transaction; nothing here talks to a network.

use std::collections::HashSet;

use automerge::{Automerge, Change, ChangeHash};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::documents::{self, LoadedDoc};
use super::{projection, Store, Touched};
use crate::document::{guarded, read_json, write_change, ChangeNote, DocKind};
use crate::error::{Error, Result};

/// A change the server refused for good, kept for the person.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct UndeliveredChange {
    /// Local id, for [`Store::discard_undelivered`].
    pub id: i64,
    pub doc_id: String,
    pub space_id: String,
    pub kind: DocKind,
    /// The protocol's reject code, snake_case (`forbidden`, `not_a_member`, …).
    pub code: String,
    /// The server's explanation.
    pub message: String,
    /// Milliseconds since the epoch.
    pub refused_at_ms: i64,
    /// Top-level fields the refused change (and edits that could not be made again) set.
    pub fields: Vec<String>,
    /// The document's JSON as the person last saw it, to copy from; `None` if it was gone.
    pub content: Option<String>,
}

/// What returning one refused change did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Returned {
    pub doc_id: String,
    /// Later local edits made again on top of the accepted state.
    pub reapplied: usize,
    /// Outbox entries that left with the refused change (it included).
    pub withdrawn: usize,
}

impl Store {
    /// Changes the server refused for good, newest first.
    pub fn undelivered_changes(&self) -> Result<Vec<UndeliveredChange>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, doc_id, space_id, kind, code, message, refused_at, fields, content
                 FROM undelivered ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, doc_id, space_id, kind, code, message, refused_at_ms, fields, content) = row?;
                out.push(UndeliveredChange {
                    id,
                    doc_id,
                    space_id,
                    kind: DocKind::parse(&kind)
                        .ok_or_else(|| Error::Corrupt(format!("undelivered kind {kind}")))?,
                    code,
                    message,
                    refused_at_ms,
                    fields: serde_json::from_str(&fields)
                        .map_err(|e| Error::Corrupt(format!("undelivered fields: {e}")))?,
                    content,
                });
            }
            Ok(out)
        })
    }

    /// Forgets an undelivered change (the person has read, copied or dismissed it).
    pub fn discard_undelivered(&self, id: i64) -> Result<()> {
        self.write(|tx, _| {
            let removed = tx.execute("DELETE FROM undelivered WHERE id = ?1", [id])?;
            if removed == 0 {
                return Err(Error::NotFound {
                    what: "undelivered change",
                    id: id.to_string(),
                });
            }
            Ok(())
        })
    }

    /// Takes the refused outbox entry `seq` out of its document as described in the module
    /// docs. `None` if the entry is no longer in the outbox (already handled).
    pub(crate) fn return_refused(
        &self,
        tx: &Connection,
        seq: i64,
        code: &str,
        message: &str,
        touched: &mut Touched,
    ) -> Result<Option<Returned>> {
        let Some(entry) = outbox_entry(tx, seq, false)? else {
            return Ok(None);
        };
        // A change carried for another device: the document is returned to the accepted state
        // all the same (this device's own later edits are made again on it), but the refusal is
        // the author's to hear of (its own push is refused the same way), not this person's.
        let carried = crate::peer::relay::is_carried(tx, seq)?;
        let OutboxEntry {
            doc_id,
            kind,
            space_id,
            hash,
            ..
        } = &entry;
        let (doc_id, kind) = (doc_id.clone(), *kind);
        let refused = ChangeHash::try_from(hash.as_slice())
            .map_err(|e| Error::Corrupt(format!("outbox hash of {doc_id}: {e}")))?;
        let now = super::now_ms();
        let mut returned = Returned {
            doc_id: doc_id.clone(),
            ..Default::default()
        };

        let Some(mut loaded) = documents::load(tx, &doc_id, self.actor())? else {
            // The document is gone already (erased, purged): only the record is left to keep.
            returned.withdrawn = withdraw(tx, &[refused])?;
            record(tx, &entry, code, message, now, &[], None)?;
            return Ok(Some(returned));
        };
        // Edits made while the refused change was on its way are built and stored first, so
        // that they are made again on the accepted state like every other later edit.
        documents::settle(tx, &doc_id, &mut loaded)?;
        let old = std::mem::replace(&mut loaded.doc, Automerge::new());
        let seen = read_json(&old, &doc_id).ok();

        // The refused change and everything built on it, in the order they were made (a
        // change's first op id is above every op of the changes it builds on).
        let mut history = guarded::changes_since(&old, &[])
            .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?;
        history.sort_by_key(|c| c.start_op());
        let mut doomed_hashes: HashSet<ChangeHash> = HashSet::from([refused]);
        for change in &history {
            if change.deps().iter().any(|d| doomed_hashes.contains(d)) {
                doomed_hashes.insert(change.hash());
            }
        }
        let (doomed, kept): (Vec<&Change>, Vec<&Change>) =
            history.iter().partition(|c| doomed_hashes.contains(&c.hash()));
        let kept: Vec<Change> = kept.into_iter().cloned().collect();
        let local: HashSet<ChangeHash> = outbox_hashes(tx, &doc_id)?;

        // The document as the server accepted it.
        let mut base = Automerge::new().with_actor(self.actor().clone());
        guarded::apply(&mut base, kept).map_err(|e| Error::Corrupt(format!("returning {doc_id}: {e}")))?;
        let doomed_list: Vec<ChangeHash> = doomed_hashes.iter().copied().collect();
        returned.withdrawn = withdraw(tx, &doomed_list)?;
        for hash in &doomed_list {
            tx.prepare_cached("DELETE FROM doc_changes WHERE doc_id = ?1 AND hash = ?2")?
                .execute(params![doc_id, hash.as_ref()])?;
            tx.prepare_cached("DELETE FROM item_history WHERE item_id = ?1 AND hash = ?2")?
                .execute(params![doc_id, hash.to_string()])?;
        }

        let mut lost_fields: Vec<String> = match carried {
            false => note_fields(refused_change(&doomed, refused)),
            true => Vec::new(),
        };
        if base.get_heads().is_empty() {
            // Its creation was refused: nothing to return to, so nothing to build on either.
            for change in doomed.iter().filter(|c| c.hash() != refused) {
                if !carried || local.contains(&change.hash()) {
                    lost_fields.extend(note_fields(Some(change)));
                }
            }
            documents::erase(tx, &doc_id, documents::Records::Erase, touched)?;
            if kind == DocKind::Item {
                projection::remove_item(tx, &doc_id)?;
                touched.items.insert(doc_id.clone());
            }
            touched.spaces.insert(space_id.clone());
        } else {
            loaded.doc = base;
            documents::compact(tx, &doc_id, &mut loaded)?;
            for change in doomed.iter().filter(|c| c.hash() != refused) {
                if !local.contains(&change.hash()) {
                    // Not ours to make again (another device's change built on ours cannot
                    // exist: ours never left this device).
                    continue;
                }
                let again = self.make_again(tx, &doc_id, kind, &old, change, &mut loaded, now)?;
                lost_fields.extend(again.lost);
                if let Some(made) = again.made {
                    if kind == DocKind::Item {
                        projection::record_history(tx, &doc_id, &made)?;
                    }
                    returned.reapplied += 1;
                }
            }
            let heads = loaded.doc.get_heads();
            let mut report = super::MergeReport::default();
            self.reproject(tx, &doc_id, &mut loaded, &heads, &mut report, touched)?;
        }
        lost_fields.sort();
        lost_fields.dedup();
        // What the person wrote and did not get through, for them to copy: the fields concerned
        // (the whole document if it was their refused creation), never the rest of a document
        // that others wrote and that they may stop being allowed to read.
        let seen = seen.map(|value| match value {
            Value::Object(map) if !lost_fields.iter().any(|f| f == "created") => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| lost_fields.contains(k) || k == "id")
                    .collect(),
            ),
            other => other,
        });
        let seen = seen.map(|v| v.to_string());
        if carried && lost_fields.is_empty() {
            tracing::info!(code, "the server refused a change carried for another device");
            return Ok(None);
        }
        record(tx, &entry, code, message, now, &lost_fields, seen.as_deref())?;
        Ok(Some(returned))
    }

    /// The fallback when a refused change cannot be returned: it leaves the outbox for the
    /// undelivered list, its document as it is (the person sees their edit, the server does
    /// not have it; `Store::undelivered_changes` says so).
    pub(crate) fn set_refused_aside(
        &self,
        tx: &Connection,
        seq: i64,
        code: &str,
        message: &str,
    ) -> Result<Option<Returned>> {
        let Some(entry) = outbox_entry(tx, seq, true)? else {
            return Ok(None);
        };
        let change = guarded::decode(entry.bytes.clone()).ok();
        let fields = note_fields(change.as_ref());
        record(tx, &entry, code, message, super::now_ms(), &fields, None)?;
        Ok(Some(Returned {
            doc_id: entry.doc_id,
            reapplied: 0,
            withdrawn: 1,
        }))
    }

    /// Makes a later edit again on the returned document: each top-level field it changed gets
    /// the value it gave it, unless that field no longer holds what the edit started from (the
    /// refused change, or someone else since, changed it): such fields are not overwritten but
    /// reported as lost, so nobody's concurrent edit is undone.
    #[allow(clippy::too_many_arguments)]
    fn make_again(
        &self,
        tx: &Connection,
        doc_id: &str,
        kind: DocKind,
        old: &Automerge,
        change: &Change,
        loaded: &mut LoadedDoc,
        now: i64,
    ) -> Result<MadeAgain> {
        let mut result = MadeAgain::default();
        let at = |heads: &[ChangeHash]| -> Result<Value> {
            let fork = old
                .fork_at(heads)
                .map_err(|e| Error::Corrupt(format!("history of {doc_id}: {e}")))?;
            Ok(read_json(&fork, doc_id)?)
        };
        let (Value::Object(before), Value::Object(after)) = (at(change.deps())?, at(&[change.hash()])?)
        else {
            return Ok(result);
        };
        let Value::Object(mut target) = read_json(&loaded.doc, doc_id)? else {
            return Ok(result);
        };
        let mut fields = Vec::new();
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            if before.get(key) == after.get(key) || key == "updated_at" {
                continue;
            }
            if target.get(key) != before.get(key) {
                result.lost.push(key.clone());
                continue;
            }
            fields.push(key.clone());
            match after.get(key) {
                Some(value) => target.insert(key.clone(), value.clone()),
                None => target.remove(key),
            };
        }
        if fields.is_empty() {
            return Ok(result);
        }
        let Some(note) = ChangeNote::decode(change.message()) else {
            // Not made through this core (no note to say on whose behalf): not ours to remake.
            result.lost.extend(fields);
            return Ok(result);
        };
        if let Some(updated) = after.get("updated_at") {
            target.insert("updated_at".into(), updated.clone());
        }
        let made = write_change(&mut loaded.doc, doc_id, kind, &Value::Object(target), &note, now)?;
        if let Some(made) = &made {
            documents::store_change(tx, doc_id, loaded, made, now)?;
            let space = loaded.space_id.clone().unwrap_or_default();
            documents::enqueue(tx, doc_id, kind, &space, made, now)?;
        }
        result.made = made;
        Ok(result)
    }
}

/// What remaking one later edit did.
#[derive(Default)]
struct MadeAgain {
    /// The new change, if anything was left to make.
    made: Option<Change>,
    /// Fields the edit set that could not be set again.
    lost: Vec<String>,
}

/// Pending changes of a document that can no longer be delivered, set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SetAside {
    pub doc_id: String,
    pub code: &'static str,
    pub message: &'static str,
}

/// Takes every change of `doc_id` still in the outbox into the undelivered list, as one record,
/// because none of them can be delivered any more (`code`, `message`: the person lost the right
/// to read or write the document). The record keeps the fields they set and, when
/// `keep_written`, those fields' values as the document has them (what the person wrote, to
/// copy), never the rest of the document. Called before the document itself is purged; `None`
/// when nothing was pending.
pub(crate) fn set_aside_pending(
    tx: &Connection,
    doc_id: &str,
    code: &'static str,
    message: &'static str,
    keep_written: bool,
) -> Result<Option<SetAside>> {
    // A creation made here, and edits kept as patches, wait in the outbox without their
    // changes until they are built.
    // One that does not build (a damaged entry, a form that does not rebuild) is set aside as
    // it is: this runs inside the sync that purges, which must not fail over one document.
    let unbuilt = |what: &str, result: Result<()>| match result {
        Ok(()) => Ok(()),
        Err(e @ (Error::Corrupt(_) | Error::MalformedChange { .. } | Error::Document { .. })) => {
            tracing::warn!(doc = doc_id, error = %e, "{what} set aside unbuilt");
            Ok(())
        }
        Err(e) => Err(e),
    };
    unbuilt("a creation made here", documents::seal(tx, doc_id).map(|_| ()))?;
    if documents::pending_edits(tx, doc_id)?.0 > 0 {
        unbuilt("edits kept as patches", documents::settle_pending(tx, doc_id))?;
    }
    let seqs: Vec<i64> = tx
        .prepare_cached("SELECT seq FROM outbox WHERE doc_id = ?1 ORDER BY seq")?
        .query_map([doc_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut last = None;
    let mut fields: Vec<String> = Vec::new();
    for seq in seqs {
        if let Some(entry) = outbox_entry(tx, seq, true)? {
            let change = guarded::decode(entry.bytes.clone()).ok();
            let set = match (&change, &entry.edit) {
                (None, Some(edit)) => documents::pending_edit_fields(edit),
                _ => note_fields(change.as_ref()),
            };
            for field in set {
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
            last = Some(entry);
        }
    }
    let Some(entry) = last else {
        return Ok(None);
    };
    let written = if keep_written {
        // What the person last saw: the projection (edits that did not build included), else
        // the document.
        let shown = match crate::query::item_by_id(tx, doc_id) {
            Ok(Some(item)) => crate::document::item_to_json(&item).ok(),
            _ => None,
        };
        let stored = || match documents::load(tx, doc_id, &automerge::ActorId::random()) {
            Ok(loaded) => Ok(loaded.and_then(|loaded| read_json(&loaded.doc, doc_id).ok())),
            Err(Error::Corrupt(_)) => Ok(None),
            Err(e) => Err(e),
        };
        let json = match shown {
            Some(json) => Some(json),
            None => stored()?,
        };
        json.and_then(|json| match json {
            Value::Object(all) => Some(Value::Object(
                all.into_iter().filter(|(k, _)| fields.contains(k)).collect(),
            )),
            _ => None,
        })
        .map(|v| v.to_string())
    } else {
        None
    };
    record(
        tx,
        &entry,
        code,
        message,
        super::now_ms(),
        &fields,
        written.as_deref(),
    )?;
    Ok(Some(SetAside {
        doc_id: doc_id.to_owned(),
        code,
        message,
    }))
}

fn refused_change<'a>(doomed: &[&'a Change], refused: ChangeHash) -> Option<&'a Change> {
    doomed.iter().copied().find(|c| c.hash() == refused)
}

fn note_fields(change: Option<&Change>) -> Vec<String> {
    change
        .and_then(|c| ChangeNote::decode(c.message()))
        .map(|n| n.fields)
        .unwrap_or_default()
}

/// Hashes of a document's changes still in the outbox (made or relayed here, not yet taken).
fn outbox_hashes(tx: &Connection, doc_id: &str) -> Result<HashSet<ChangeHash>> {
    // This device's own entries only: a change carried for another device that builds on a
    // refused one is withdrawn with it, never made again as this device's.
    let mut stmt = tx.prepare_cached(
        "SELECT hash FROM outbox WHERE doc_id = ?1 AND hash IS NOT NULL AND signer IS NULL",
    )?;
    let rows = stmt.query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = HashSet::new();
    for row in rows {
        if let Ok(hash) = ChangeHash::try_from(row?.as_slice()) {
            out.insert(hash);
        }
    }
    Ok(out)
}

/// Removes outbox entries by change hash; returns how many there were.
fn withdraw(tx: &Connection, hashes: &[ChangeHash]) -> Result<usize> {
    let mut removed = 0;
    for hash in hashes {
        removed += tx
            .prepare_cached("DELETE FROM outbox WHERE hash = ?1")?
            .execute([hash.as_ref()])?;
    }
    Ok(removed)
}

/// An outbox entry the server refused, or one set aside (`hash` and `bytes` empty for an edit
/// kept as a patch that did not build, `edit` its patch).
struct OutboxEntry {
    doc_id: String,
    kind: DocKind,
    space_id: String,
    hash: Vec<u8>,
    bytes: Vec<u8>,
    edit: Option<Vec<u8>>,
}

/// Reads the outbox entry `seq`, or takes it out of the outbox when `take`.
fn outbox_entry(tx: &Connection, seq: i64, take: bool) -> Result<Option<OutboxEntry>> {
    let sql = if take {
        "DELETE FROM outbox WHERE seq = ?1 RETURNING doc_id, kind, space_id, hash, bytes, edit"
    } else {
        "SELECT doc_id, kind, space_id, hash, bytes, edit FROM outbox WHERE seq = ?1"
    };
    let row = tx
        .query_row(sql, [seq], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
                r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })
        .optional()?;
    let Some((doc_id, kind, space_id, hash, bytes, edit)) = row else {
        return Ok(None);
    };
    let kind = DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("outbox kind {kind}")))?;
    Ok(Some(OutboxEntry {
        doc_id,
        kind,
        space_id,
        hash,
        bytes,
        edit,
    }))
}

/// Lists a refused entry as undelivered.
fn record(
    tx: &Connection,
    entry: &OutboxEntry,
    code: &str,
    message: &str,
    now: i64,
    fields: &[String],
    content: Option<&str>,
) -> Result<()> {
    let fields = serde_json::to_string(fields).map_err(|e| Error::invalid("fields", e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO undelivered (doc_id, space_id, kind, code, message, refused_at, fields, content, hash, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        entry.doc_id,
        entry.space_id,
        entry.kind.as_str(),
        code,
        message,
        now,
        fields,
        content,
        entry.hash,
        entry.bytes
    ])?;
    Ok(())
}
