//! Persistence of Automerge documents: a compacted snapshot plus incremental changes per
//! document, loaded into memory only for a write or a merge and dropped afterwards, so memory
//! does not grow with the number of documents. Every function here runs inside the caller's
//! transaction.

use automerge::{ActorId, Automerge, Change, ChangeHash};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::document::{
    build_creation, build_creation_doc, guarded, item_from_doc, item_to_json, merge_patch,
    rebuild_creation_doc, write_edit, ChangeNote, Creation, DocKind,
};
use crate::error::{Error, Result};
use std::collections::BTreeSet;

use super::Touched;

/// Compact when a document has more incremental changes than this…
const COMPACT_AFTER_CHANGES: i64 = 64;
/// …or when its changes outweigh its snapshot and this many bytes.
const COMPACT_AFTER_BYTES: i64 = 16 * 1024;

/// A document loaded for a write or merge, with the storage figures it was loaded with.
pub(crate) struct LoadedDoc {
    pub doc: Automerge,
    pub kind: DocKind,
    pub space_id: Option<String>,
    pub snapshot_bytes: i64,
    pub change_bytes: i64,
    pub change_count: i64,
    /// The change rebuilt from the document's stored creation form, not stored as a change yet:
    /// [`settle`] stores it before anything else of the document is written.
    pub unsettled: Option<Unsettled>,
    /// The changes of the edits made here and kept as patches ([`PendingEdit`]), built on load
    /// in the order they were made; [`settle`] stores them after the creation.
    pub pending: Vec<BuiltEdit>,
}

/// An edit made on this device and kept in its outbox entry (`outbox.edit`) instead of as an
/// Automerge change: the JSON merge patch it makes to the item, who made it and when. Its
/// change is built when the document is next loaded (for a push, a merge, another edit that
/// needs the document), on the document as it was when the edit was made, so it is the change
/// the edit would have built at once (same operations, same dependencies, same time). This
/// keeps Automerge off the edit path as [`store_local_creation`] keeps it off the create path.
#[derive(Serialize, Deserialize)]
pub(crate) struct PendingEdit {
    /// The Automerge actor of the device that made the edit.
    pub actor: Vec<u8>,
    pub time_ms: i64,
    pub note: ChangeNote,
    /// The merge patch, as JSON text.
    pub patch: String,
}

/// A pending edit's change, built on load; `None` when the edit changes nothing in the document
/// (its entry then leaves the outbox).
pub(crate) struct BuiltEdit {
    seq: i64,
    change: Option<Change>,
}

/// A creation form rebuilt on load.
pub(crate) struct Unsettled {
    change: Change,
}

/// How a creation form is kept in `documents.creation`: CBOR, compressed when long
/// (`quartier_protocol::encode_compact`). The JSON state is left out (`None`) when the item's
/// projection gives it back exactly ([`state_from_projection`]): the state is most of a form,
/// and the same content is in `item_json` already.
#[derive(Serialize, Deserialize)]
struct StoredCreation {
    actor: Vec<u8>,
    time_ms: i64,
    message: Option<String>,
    #[serde(default)]
    state: Option<String>,
    check: Vec<u8>,
}

/// The state of an item's creation form as its projection gives it back: the item's document
/// JSON without its id, as [`crate::document::creation_of`] writes it. `None` when the item has
/// no readable projection.
pub(crate) fn state_from_projection(conn: &Connection, doc_id: &str) -> Result<Option<String>> {
    let item = match crate::query::item_by_id(conn, doc_id) {
        Ok(Some(item)) => item,
        Ok(None) | Err(Error::Corrupt(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(creation_state_of(&item, doc_id)?))
}

/// The creation state an item reads back as: its document JSON without the id, and without
/// the null fields of its maps, which a write leaves out of the document.
pub(crate) fn creation_state_of(item: &crate::model::Item, doc_id: &str) -> Result<String> {
    serde_json::to_string(&creation_value_of(item)?).map_err(|e| Error::document(doc_id, e))
}

/// [`creation_state_of`] before it is written out, to compare with a state already parsed.
pub(crate) fn creation_value_of(item: &crate::model::Item) -> Result<serde_json::Value> {
    fn drop_nulls(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(drop_nulls);
            }
            serde_json::Value::Array(list) => list.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    let mut value = crate::document::item_to_json(item)?;
    if let serde_json::Value::Object(root) = &mut value {
        root.remove("id");
    }
    drop_nulls(&mut value);
    Ok(value)
}

/// Largest stored creation form read back (a document's budget is 1 MiB; this bounds a damaged
/// row, not a legitimate one).
const MAX_STORED_CREATION: usize = quartier_protocol::MAX_DECODED_BYTES;

/// The history key of a change not built yet: its check bytes in hex (empty for a form made
/// here and not sealed), which cannot be mistaken for a full hash (64 hex digits).
fn creation_history_key(check: &[u8]) -> String {
    check.iter().map(|b| format!("{b:02x}")).collect()
}

/// A change not built yet as its history shows it: the creation of a document kept in creation
/// form, or an edit kept as a patch (`item_history` only has rows for built changes; [`settle`]
/// writes them when it builds them).
pub(crate) struct CreationHistory {
    /// [`creation_history_key`] of the form's check, or [`pending_history_key`].
    pub key: String,
    pub actor: String,
    pub note: Option<crate::document::ChangeNote>,
    pub time_ms: i64,
}

/// The history entry of `doc_id`'s creation when it is kept in creation form; `None` when it
/// is not (its change is built, with a row in `item_history`) or the form does not decode.
pub(crate) fn creation_history(conn: &Connection, doc_id: &str) -> Result<Option<CreationHistory>> {
    let stored: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT creation FROM documents WHERE doc_id = ?1")?
        .query_row([doc_id], |r| r.get(0))
        .optional()?;
    let Some(Some(stored)) = stored else {
        return Ok(None);
    };
    let Some(form) = decode_stored(doc_id, &stored) else {
        return Ok(None);
    };
    Ok(Some(CreationHistory {
        key: creation_history_key(&form.check),
        actor: ActorId::from(form.actor.as_slice()).to_hex_string(),
        note: crate::document::ChangeNote::decode(form.message.as_deref()),
        time_ms: form.time_ms,
    }))
}

impl LoadedDoc {
    /// An empty document that is not stored yet.
    pub fn new(kind: DocKind, actor: &ActorId) -> Self {
        Self {
            doc: Automerge::new().with_actor(actor.clone()),
            kind,
            space_id: None,
            snapshot_bytes: 0,
            change_bytes: 0,
            change_count: 0,
            unsettled: None,
            pending: Vec::new(),
        }
    }

    /// Bytes the document takes in the store.
    pub fn stored_bytes(&self) -> i64 {
        self.snapshot_bytes + self.change_bytes
    }

    /// Bytes of the change rebuilt from its creation form that [`settle`] will store (the
    /// form's own bytes, in `snapshot_bytes`, are far fewer).
    pub fn unsettled_bytes(&self) -> usize {
        let edits: usize = self
            .pending
            .iter()
            .filter_map(|e| e.change.as_ref())
            .map(|c| c.raw_bytes().len())
            .sum();
        self.unsettled.as_ref().map_or(0, |u| u.change.raw_bytes().len()) + edits
    }
}

/// A stored creation form that does not rebuild to the change it names: a core and a server
/// that disagree on the rule (the server proved the form with its own), or a damaged row.
pub(crate) struct UnbuildableCreation(pub String);

/// Loads a document, or `None` if the store has no such document. A creation form that does
/// not rebuild is [`Error::Corrupt`]; merges use [`load_checked`] and recover instead.
pub(crate) fn load(conn: &Connection, doc_id: &str, actor: &ActorId) -> Result<Option<LoadedDoc>> {
    match load_checked(conn, doc_id, actor)? {
        Ok(loaded) => Ok(loaded),
        Err(UnbuildableCreation(reason)) => Err(Error::Corrupt(reason)),
    }
}

/// Sets aside a document whose creation form does not rebuild (or decode), so that it comes
/// again in a form this core can check: the document and its projection leave the store and the
/// device asks for snapshots from now on. Nothing written on this device is lost: a document in
/// creation form has no local changes. Returns the document's space, which the caller fetches
/// again ([`refetch_space`]) unless what it is merging already brings the document back whole.
pub(crate) fn distrust_creation(
    conn: &Connection,
    doc_id: &str,
    reason: &str,
    now_ms: i64,
) -> Result<Option<String>> {
    tracing::warn!(
        doc = doc_id,
        reason,
        "a stored creation form does not rebuild; fetching the space again as snapshots"
    );
    let space: Option<String> = conn
        .query_row(
            "SELECT space_id FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    super::projection::remove_item(conn, doc_id)?;
    conn.execute("DELETE FROM documents WHERE doc_id = ?1", [doc_id])?;
    conn.execute(
        "UPDATE device SET creation_records_failed_at = ?1 WHERE singleton = 1",
        [now_ms],
    )?;
    Ok(space)
}

/// Starts a space's cursor over: its pages come again (merged as duplicates, with what was set
/// aside). The page being applied must not move it forward again (`Touched::refetch`).
pub(crate) fn refetch_space(conn: &Connection, space: &str) -> Result<()> {
    conn.execute(
        "UPDATE sync_spaces SET cursor = NULL WHERE space_id = ?1",
        [space],
    )?;
    Ok(())
}

/// [`load`], telling a creation form that does not rebuild apart from other failures.
pub(crate) fn load_checked(
    conn: &Connection,
    doc_id: &str,
    actor: &ActorId,
) -> Result<std::result::Result<Option<LoadedDoc>, UnbuildableCreation>> {
    let row = conn
        .prepare_cached(
            "SELECT kind, space_id, snapshot, snapshot_bytes, change_bytes, change_count, creation
             FROM documents WHERE doc_id = ?1",
        )?
        .query_row([doc_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
            ))
        })
        .optional()?;
    let Some((kind, space_id, snapshot, snapshot_bytes, change_bytes, change_count, creation)) = row else {
        return Ok(Ok(None));
    };
    let kind =
        DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("document {doc_id} has kind {kind}")))?;
    let mut doc = match &snapshot {
        Some(bytes) => {
            guarded::load_stored(bytes).map_err(|e| Error::Corrupt(format!("snapshot of {doc_id}: {e}")))?
        }
        None => Automerge::new(),
    };
    let mut unsettled = None;
    if let Some(stored) = creation {
        let (change, built_in) = match creation_change(conn, doc_id, kind, &stored)? {
            Ok(built) => built,
            // Content that waits in the outbox exists nowhere else: never set aside.
            Err(UnbuildableCreation(reason)) if waits_in_outbox(conn, doc_id)? => {
                return Err(Error::Corrupt(reason))
            }
            Err(unbuildable) => return Ok(Err(unbuildable)),
        };
        match built_in {
            // The document the change was built in holds exactly that change: applying it to a
            // new one would do the build's work again.
            Some(built) if snapshot.is_none() => doc = built,
            _ => guarded::apply_stored(&mut doc, vec![change.clone()])
                .map_err(|e| Error::Corrupt(format!("creation of {doc_id}: {e}")))?,
        }
        unsettled = Some(Unsettled { change });
    }
    let mut stmt = conn.prepare_cached("SELECT bytes FROM doc_changes WHERE doc_id = ?1 ORDER BY id")?;
    let changes = stmt
        .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))?
        .map(|bytes| {
            let bytes = bytes?;
            guarded::decode(bytes).map_err(|e| Error::Corrupt(format!("stored change of {doc_id}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if !changes.is_empty() {
        guarded::apply_stored(&mut doc, changes)
            .map_err(|e| Error::Corrupt(format!("stored changes of {doc_id}: {e}")))?;
    }
    let pending = match kind {
        DocKind::Item => build_pending_edits(conn, doc_id, &mut doc)?,
        DocKind::Space => Vec::new(),
    };
    doc.set_actor(actor.clone());
    Ok(Ok(Some(LoadedDoc {
        doc,
        kind,
        space_id,
        snapshot_bytes,
        change_bytes,
        change_count,
        unsettled,
        pending,
    })))
}

/// Largest pending edit read back (an edit's patch is bounded by the document budget).
const MAX_PENDING_EDIT: usize = quartier_protocol::MAX_DECODED_BYTES;

/// Stores an edit made here as a patch in a new outbox entry, without building its change
/// ([`PendingEdit`]).
pub(crate) fn store_local_edit(
    conn: &Connection,
    doc_id: &str,
    space_id: &str,
    edit: &PendingEdit,
    now_ms: i64,
) -> Result<()> {
    let stored = quartier_protocol::encode_compact(edit).map_err(|e| Error::document(doc_id, e))?;
    conn.prepare_cached(
        "INSERT INTO outbox (doc_id, kind, space_id, created_at, edit) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![doc_id, DocKind::Item.as_str(), space_id, now_ms, stored])?;
    Ok(())
}

/// How many edits of the document are kept as patches, and their stored bytes.
pub(crate) fn pending_edits(conn: &Connection, doc_id: &str) -> Result<(i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(length(edit)), 0) FROM outbox WHERE doc_id = ?1 AND edit IS NOT NULL",
        )?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The fields a stored pending edit sets, when it decodes.
pub(crate) fn pending_edit_fields(stored: &[u8]) -> Vec<String> {
    quartier_protocol::decode_compact::<PendingEdit>(stored, MAX_PENDING_EDIT)
        .map(|edit| edit.note.fields)
        .unwrap_or_default()
}

/// How many of the document's changes wait in the outbox built, or were built on load from
/// patches (`loaded.pending`): edits that do not build are not in the document.
pub(crate) fn waiting_built(conn: &Connection, doc_id: &str, loaded: &LoadedDoc) -> Result<usize> {
    let stored: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE doc_id = ?1 AND edit IS NULL")?
        .query_row([doc_id], |r| r.get(0))?;
    let built = loaded.pending.iter().filter(|e| e.change.is_some()).count();
    Ok(usize::try_from(stored).unwrap_or(0) + built)
}

/// The document's outbox entries that hold an edit kept as a patch, in order: position, patch.
fn pending_rows(conn: &Connection, doc_id: &str) -> Result<Vec<(i64, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT seq, edit FROM outbox WHERE doc_id = ?1 AND edit IS NOT NULL ORDER BY seq")?
        .query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// The history entry of an edit kept as a patch, with its outbox position: the edits are
/// built in that order.
pub(crate) struct PendingHistory {
    pub position: i64,
    pub entry: CreationHistory,
}

/// The history entries of the document's edits kept as patches, in the order they were made.
pub(crate) fn pending_edit_history(conn: &Connection, doc_id: &str) -> Result<Vec<PendingHistory>> {
    let mut out = Vec::new();
    for (seq, stored) in pending_rows(conn, doc_id)? {
        let Ok(edit) = quartier_protocol::decode_compact::<PendingEdit>(&stored, MAX_PENDING_EDIT) else {
            continue;
        };
        out.push(PendingHistory {
            position: seq,
            entry: CreationHistory {
                key: pending_history_key(seq),
                actor: ActorId::from(edit.actor.as_slice()).to_hex_string(),
                note: Some(edit.note),
                time_ms: edit.time_ms,
            },
        });
    }
    Ok(out)
}

/// The history key of an edit not built yet: its outbox position, which cannot be mistaken
/// for a hash (hex digits only).
fn pending_history_key(seq: i64) -> String {
    format!("pending-{seq}")
}

/// Builds the changes of the document's edits kept as patches, in order, into `doc`. An edit
/// is brought about on the item the document reads back as, as
/// [`crate::store::Store::update_item`] would have at once. An edit that does not build (a
/// damaged entry, or a document this core no longer reads as an item) is logged and stays
/// pending, and the later ones are built without it (each patch sets only its own fields): a
/// merge or another edit is never refused over it, and `seal_outbox` reports it.
fn build_pending_edits(conn: &Connection, doc_id: &str, doc: &mut Automerge) -> Result<Vec<BuiltEdit>> {
    let rows = pending_rows(conn, doc_id)?;
    let mut built = Vec::with_capacity(rows.len());
    for (seq, stored) in rows {
        match build_pending_edit(doc_id, doc, &stored) {
            Ok(change) => built.push(BuiltEdit { seq, change }),
            Err(reason) => {
                tracing::warn!(doc = doc_id, seq, %reason, "an edit kept as a patch does not build");
            }
        }
    }
    Ok(built)
}

fn build_pending_edit(doc_id: &str, doc: &mut Automerge, stored: &[u8]) -> Result<Option<Change>> {
    let edit: PendingEdit = quartier_protocol::decode_compact(stored, MAX_PENDING_EDIT)
        .map_err(|e| Error::Corrupt(format!("does not decode: {e}")))?;
    let patch: serde_json::Value =
        serde_json::from_str(&edit.patch).map_err(|e| Error::Corrupt(format!("patch: {e}")))?;
    let item = item_from_doc(doc, doc_id)?;
    if item.id.to_string() != doc_id {
        return Err(Error::Corrupt("the document names another item".into()));
    }
    let before = item_to_json(&item)?;
    let mut target = before.clone();
    merge_patch::apply(&mut target, &patch);
    doc.set_actor(ActorId::from(edit.actor.as_slice()));
    Ok(write_edit(
        doc,
        doc_id,
        DocKind::Item,
        &before,
        &target,
        &edit.note,
        edit.time_ms,
    )?)
}

/// The change a stored creation form stands for, with the document it was built in when it was
/// built here. A form made here whose change was built for a push takes it from its outbox entry
/// (the change itself, until a server has it); a form made here and not built yet is built (it
/// keeps its state); a form received is rebuilt and checked.
fn creation_change(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    stored: &[u8],
) -> Result<std::result::Result<(Change, Option<Automerge>), UnbuildableCreation>> {
    // A document in creation form has no other built change in the outbox than its creation
    // (an edit built at once settles the form first; edits kept as patches have no bytes until
    // `settle` stores the creation before them).
    let outgoing = || -> Result<Option<Change>> {
        let bytes: Option<Vec<u8>> = conn
            .prepare_cached(
                "SELECT bytes FROM outbox WHERE doc_id = ?1 AND bytes IS NOT NULL ORDER BY seq LIMIT 1",
            )?
            .query_row([doc_id], |r| r.get(0))
            .optional()?;
        Ok(bytes.and_then(|bytes| guarded::decode(bytes).ok()))
    };
    let unreadable = || {
        UnbuildableCreation(format!(
            "the creation form of {doc_id} does not decode, or keeps its state in a projection that is gone"
        ))
    };
    let Some(form) = decode_stored(doc_id, stored) else {
        // When the form is damaged, its change waiting in the outbox is the document.
        return Ok(outgoing()?.map(|change| (change, None)).ok_or_else(unreadable));
    };
    // Only a sealed form (a check) can have its change in the outbox; one not sealed builds from
    // the state it keeps, and a form received has no outbox entry to read.
    if !form.check.is_empty() {
        if let Some(change) = outgoing()? {
            if change.hash().0.starts_with(&form.check) {
                return Ok(Ok((change, None)));
            }
        }
    }
    let Some(creation) = complete(conn, doc_id, form)? else {
        return Ok(Err(unreadable()));
    };
    let built = if creation.check.is_empty() {
        build_creation_doc(&creation, doc_id, kind)
    } else {
        rebuild_creation_doc(&creation, doc_id, kind)
    };
    Ok(built.map(|built| (built.change, Some(built.doc))).map_err(|e| {
        UnbuildableCreation(format!(
            "the creation form of {doc_id} does not rebuild to the change it names: {e}"
        ))
    }))
}

/// Whether the document has changes no server acknowledged yet.
fn waits_in_outbox(conn: &Connection, doc_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE doc_id = ?1")?
        .exists([doc_id])?)
}

/// The creation form a document is kept in, if it is.
pub(crate) fn stored_creation(
    conn: &Connection,
    doc_id: &str,
) -> Result<Option<super::merge::IncomingCreation>> {
    let row: Option<(String, Option<String>, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT kind, space_id, creation FROM documents WHERE doc_id = ?1")?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((kind, space, Some(stored))) = row else {
        return Ok(None);
    };
    let kind =
        DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("document {doc_id} has kind {kind}")))?;
    let Some(creation) = read_creation(conn, doc_id, &stored)? else {
        return Ok(None);
    };
    Ok(Some(super::merge::IncomingCreation {
        doc_id: doc_id.to_owned(),
        kind,
        space: space.and_then(|s| s.parse().ok()),
        creation,
    }))
}

/// Reads a stored form, taking a state kept in the projection from there; `None` when that
/// projection is gone.
fn read_creation(conn: &Connection, doc_id: &str, stored: &[u8]) -> Result<Option<Creation>> {
    match decode_stored(doc_id, stored) {
        Some(form) => complete(conn, doc_id, form),
        None => Ok(None),
    }
}

/// Decodes a stored form; `None` (logged) when it does not decode: such a form is set aside
/// like one that does not rebuild, never an error that repeats on every sync.
fn decode_stored(doc_id: &str, stored: &[u8]) -> Option<StoredCreation> {
    match quartier_protocol::decode_compact(stored, MAX_STORED_CREATION) {
        Ok(stored) => Some(stored),
        Err(e) => {
            tracing::warn!(doc = doc_id, error = %e, "a stored creation form does not decode");
            None
        }
    }
}

/// A decoded form with its state, taken from the projection when the form left it there.
fn complete(conn: &Connection, doc_id: &str, stored: StoredCreation) -> Result<Option<Creation>> {
    let state = match stored.state {
        Some(state) => state,
        None => match state_from_projection(conn, doc_id)? {
            Some(state) => state,
            None => return Ok(None),
        },
    };
    Ok(Some(Creation {
        actor: stored.actor,
        time_ms: stored.time_ms,
        message: stored.message,
        state,
        check: stored.check,
    }))
}

/// Stores an item created on this device in creation form, without building its change: the
/// form has no check (nothing to check a first build against) and keeps its state (it is the
/// only copy of content never sent, so it must build whatever becomes of the projection), and
/// its outbox entry waits without the change. [`seal`] builds the change for a push, [`settle`]
/// when the document is first loaded to be changed; both fill the outbox entry. This keeps
/// Automerge off the create path.
pub(crate) fn store_local_creation(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    space_id: &str,
    creation: &Creation,
    now_ms: i64,
) -> Result<()> {
    debug_assert!(creation.check.is_empty());
    let stored = encode_creation(doc_id, creation, true)?;
    if !store_creation(conn, doc_id, kind, Some(space_id), &stored, now_ms)? {
        return Err(Error::Corrupt(format!(
            "a new document {doc_id} is already stored"
        )));
    }
    conn.prepare_cached("INSERT INTO outbox (doc_id, kind, space_id, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![doc_id, kind.as_str(), space_id, now_ms])?;
    Ok(())
}

/// Builds the change of a form made here (see [`store_local_creation`]) and fills its outbox
/// entry, for a push. The form stays, with its check now, like a form received; its state goes
/// when the projection gives it back exactly (the outbox entry holds the change until a server
/// has it, [`creation_change`]). Returns false when the document has no such form.
pub(crate) fn seal(conn: &Connection, doc_id: &str) -> Result<bool> {
    let row: Option<(String, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT kind, creation FROM documents WHERE doc_id = ?1")?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((kind, Some(stored))) = row else {
        return Ok(false);
    };
    let corrupt = |what: String| Error::Corrupt(format!("the creation form of {doc_id} made here {what}"));
    let form = decode_stored(doc_id, &stored).ok_or_else(|| corrupt("does not decode".into()))?;
    if !form.check.is_empty() {
        return Ok(false);
    }
    let kind =
        DocKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("document {doc_id} has kind {kind}")))?;
    let mut creation = complete(conn, doc_id, form)?
        .ok_or_else(|| corrupt("keeps its state in a projection that is gone".into()))?;
    let change =
        build_creation(&creation, doc_id, kind).map_err(|e| corrupt(format!("does not build: {e}")))?;
    fill_outbox(conn, doc_id, &change)?;
    creation.check = change.hash().0[..crate::document::CREATION_CHECK_LEN].to_vec();
    let keep_state = state_from_projection(conn, doc_id)?.as_ref() != Some(&creation.state);
    write_creation(conn, doc_id, &creation, keep_state)?;
    Ok(true)
}

/// Gives a document's outbox entry that waits without its change (a creation made here, not an
/// edit kept as a patch) the change's hash and bytes.
fn fill_outbox(conn: &Connection, doc_id: &str, change: &Change) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET hash = ?2, bytes = ?3 WHERE doc_id = ?1 AND bytes IS NULL AND edit IS NULL",
    )?
    .execute(params![doc_id, change.hash().as_ref(), change.raw_bytes()])?;
    Ok(())
}

/// Writes every creation form whose state is kept in the projection with its state, before the
/// projections are rebuilt (which takes them away first).
pub(crate) fn keep_creation_states(conn: &Connection) -> Result<()> {
    let mut ids = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT doc_id FROM documents WHERE creation IS NOT NULL")?;
        for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
            ids.push(id?);
        }
    }
    for doc_id in ids {
        if let Some(incoming) = stored_creation(conn, &doc_id)? {
            write_creation(conn, &doc_id, &incoming.creation, true)?;
        }
    }
    Ok(())
}

/// Whether an item kept in this stored creation form may take edits as patches, its form left
/// as it is: only a form made here and never built, which has no check (nothing to check a
/// build against) and always keeps its state (the only copy of content never sent), so the
/// projection may change under it. A form with a check — received, or sealed for a push; a form
/// received may even carry this device's actor, after a purge — is checked by its first build
/// (`load_checked`, which sets it aside if it does not rebuild): the edit is then built at once.
pub(crate) fn form_takes_patches(doc_id: &str, stored: &[u8]) -> bool {
    decode_stored(doc_id, stored).is_some_and(|form| form.check.is_empty() && form.state.is_some())
}

/// Rewrites a document's creation form, with its state or without (`keep_state`).
pub(crate) fn write_creation(
    conn: &Connection,
    doc_id: &str,
    creation: &Creation,
    keep_state: bool,
) -> Result<()> {
    write_stored_creation(conn, doc_id, &encode_creation(doc_id, creation, keep_state)?)
}

/// Rewrites a document's creation form as [`encode_creation`] gave it.
pub(crate) fn write_stored_creation(conn: &Connection, doc_id: &str, stored: &[u8]) -> Result<()> {
    conn.prepare_cached("UPDATE documents SET creation = ?2, snapshot_bytes = ?3 WHERE doc_id = ?1")?
        .execute(params![doc_id, stored, stored.len() as i64])?;
    Ok(())
}

/// A creation form as `documents.creation` holds it, with its state or without (`keep_state`).
pub(crate) fn encode_creation(doc_id: &str, creation: &Creation, keep_state: bool) -> Result<Vec<u8>> {
    quartier_protocol::encode_compact(&StoredCreation {
        actor: creation.actor.clone(),
        time_ms: creation.time_ms,
        message: creation.message.clone(),
        state: keep_state.then(|| creation.state.clone()),
        check: creation.check.clone(),
    })
    .map_err(|e| Error::document(doc_id, e))
}

/// Stores a document that is new to this store in its creation form (`stored`, from
/// [`encode_creation`]), without building it. Returns false (and writes nothing) when the store
/// already has the document: it is then merged as a change.
pub(crate) fn store_creation(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    space_id: Option<&str>,
    stored: &[u8],
    now_ms: i64,
) -> Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO documents (doc_id, kind, space_id, creation, snapshot_bytes, updated_at, unreadable)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0) ON CONFLICT (doc_id) DO NOTHING",
        )?
        .execute(params![
            doc_id,
            kind.as_str(),
            space_id,
            stored,
            stored.len() as i64,
            now_ms
        ])?;
    Ok(inserted == 1)
}

/// Builds and stores the changes of a document's edits kept as patches (and its creation form's
/// change first, when it has one), for a push; the first edit's compaction follows as after
/// any stored change. Nothing new is written in this device's name, so the document is loaded
/// with a throwaway actor (each edit is built with the actor it was made by).
pub(crate) fn settle_pending(conn: &Connection, doc_id: &str) -> Result<()> {
    let Some(mut loaded) = load(conn, doc_id, &ActorId::random())? else {
        return Ok(());
    };
    settle(conn, doc_id, &mut loaded)?;
    compact_if_due(conn, doc_id, &mut loaded)?;
    Ok(())
}

/// Stores the change a creation form was rebuilt to, as the document's first change, before
/// anything else of the document is written; its history row gets the full hash.
pub(crate) fn settle(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<()> {
    settle_creation(conn, doc_id, loaded)?;
    for BuiltEdit { seq, change } in std::mem::take(&mut loaded.pending) {
        let Some(change) = change else {
            conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
                .execute([seq])?;
            continue;
        };
        insert_change(conn, doc_id, loaded, &change)?;
        super::projection::record_history(conn, doc_id, &change)?;
        let bytes = change.raw_bytes();
        conn.prepare_cached("UPDATE outbox SET hash = ?2, bytes = ?3, edit = NULL WHERE seq = ?1")?
            .execute(params![seq, change.hash().as_ref(), bytes])?;
    }
    Ok(())
}

/// The creation half of [`settle`].
fn settle_creation(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<()> {
    let Some(Unsettled { change }) = loaded.unsettled.take() else {
        return Ok(());
    };
    let bytes = change.raw_bytes();
    conn.prepare_cached("INSERT OR IGNORE INTO doc_changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)")?
        .execute(params![doc_id, change.hash().as_ref(), bytes])?;
    loaded.snapshot_bytes = 0;
    loaded.change_bytes += bytes.len() as i64;
    loaded.change_count += 1;
    conn.prepare_cached(
        "UPDATE documents SET creation = NULL, snapshot_bytes = ?2, change_bytes = ?3, change_count = ?4
         WHERE doc_id = ?1",
    )?
    .execute(params![
        doc_id,
        loaded.snapshot_bytes,
        loaded.change_bytes,
        loaded.change_count
    ])?;
    if loaded.kind == DocKind::Item {
        // Its history row, which the form gave until now (`creation_history`).
        super::projection::record_history(conn, doc_id, &change)?;
    }
    fill_outbox(conn, doc_id, &change)?;
    Ok(())
}

/// Stores one change of a document (creating the document row if needed). Returns false when
/// the store already had that change.
pub(crate) fn store_change(
    conn: &Connection,
    doc_id: &str,
    loaded: &mut LoadedDoc,
    change: &Change,
    now_ms: i64,
) -> Result<bool> {
    settle(conn, doc_id, loaded)?;
    conn.prepare_cached(
        "INSERT INTO documents (doc_id, kind, space_id, updated_at, unreadable) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT (doc_id) DO UPDATE SET space_id = coalesce(excluded.space_id, space_id),
                                            updated_at = excluded.updated_at",
    )?
    .execute(params![doc_id, loaded.kind.as_str(), loaded.space_id, now_ms])?;
    insert_change(conn, doc_id, loaded, change)
}

/// Adds a change to the document's stored changes and its counters; false when it was there.
fn insert_change(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc, change: &Change) -> Result<bool> {
    let bytes = change.raw_bytes();
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO doc_changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)")?
        .execute(params![doc_id, change.hash().as_ref(), bytes])?;
    if inserted == 1 {
        loaded.change_bytes += bytes.len() as i64;
        loaded.change_count += 1;
        conn.prepare_cached("UPDATE documents SET change_bytes = ?2, change_count = ?3 WHERE doc_id = ?1")?
            .execute(params![doc_id, loaded.change_bytes, loaded.change_count])?;
    }
    Ok(inserted == 1)
}

/// Replaces incremental changes by a snapshot when they have grown; changes whose
/// dependencies are still missing are kept, since a snapshot only holds applied history.
pub(crate) fn compact_if_due(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<bool> {
    // A document past its first edit is loaded from a snapshot from then on: Automerge reads a
    // saved document faster than it applies the changes that made it (an item's texts are one
    // operation per character), and the snapshot is smaller than its creation and edit.
    let first_edit = loaded.snapshot_bytes == 0 && loaded.change_count >= 2;
    let due = first_edit
        || loaded.change_count > COMPACT_AFTER_CHANGES
        || loaded.change_bytes > loaded.snapshot_bytes.max(COMPACT_AFTER_BYTES);
    if !due {
        return Ok(false);
    }
    compact(conn, doc_id, loaded)?;
    Ok(true)
}

/// Writes a snapshot of the document and removes the changes it contains.
pub(crate) fn compact(conn: &Connection, doc_id: &str, loaded: &mut LoadedDoc) -> Result<()> {
    settle(conn, doc_id, loaded)?;
    let snapshot = guarded::save(&loaded.doc).map_err(|e| Error::Corrupt(format!("saving {doc_id}: {e}")))?;
    let mut pending = Vec::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT id, hash, length(bytes) FROM doc_changes WHERE doc_id = ?1")?;
        let rows = stmt.query_map([doc_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (id, hash, len) = row?;
            let applied = ChangeHash::try_from(hash.as_slice())
                .map(|h| loaded.doc.get_change_meta_by_hash(&h).is_some())
                .unwrap_or(false);
            pending.push((id, applied, len));
        }
    }
    let mut kept_bytes = 0;
    let mut kept_count = 0;
    for (id, applied, len) in pending {
        if applied {
            conn.prepare_cached("DELETE FROM doc_changes WHERE id = ?1")?
                .execute([id])?;
        } else {
            kept_bytes += len;
            kept_count += 1;
        }
    }
    loaded.snapshot_bytes = snapshot.len() as i64;
    loaded.change_bytes = kept_bytes;
    loaded.change_count = kept_count;
    conn.prepare_cached(
        "UPDATE documents SET snapshot = ?2, snapshot_bytes = ?3, change_bytes = ?4, change_count = ?5
         WHERE doc_id = ?1",
    )?
    .execute(params![
        doc_id,
        snapshot,
        loaded.snapshot_bytes,
        kept_bytes,
        kept_count
    ])?;
    Ok(())
}

/// What becomes of a document's undelivered records when the document is erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    /// The content itself is being erased (or replaced): its records go with it.
    Erase,
    /// Only this device loses the document (a purge), whose records were set aside on purpose
    /// and say what they must (`purge.rs`).
    Keep,
}

/// Removes a document and all its changes, kept signatures and outbox entries, and its
/// undelivered records as `records` says. The devices whose signatures went are noted in
/// `touched` ([`forget_signers_without_signatures`] runs before the write commits).
pub(crate) fn erase(conn: &Connection, doc_id: &str, records: Records, touched: &mut Touched) -> Result<()> {
    conn.execute("DELETE FROM doc_changes WHERE doc_id = ?1", [doc_id])?;
    conn.execute("DELETE FROM outbox WHERE doc_id = ?1", [doc_id])?;
    let signers: BTreeSet<String> = conn
        .prepare_cached("DELETE FROM change_signatures WHERE doc_id = ?1 RETURNING device")?
        .query_map([doc_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if records == Records::Erase {
        conn.execute("DELETE FROM undelivered WHERE doc_id = ?1", [doc_id])?;
    }
    let space: Option<String> = conn
        .prepare_cached("DELETE FROM documents WHERE doc_id = ?1 RETURNING space_id")?
        .query_map([doc_id], |r| r.get::<_, Option<String>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .next();
    touched
        .signers_unsure
        .extend(signers.into_iter().map(|device| (space.clone(), device)));
    Ok(())
}

/// Forgets the signers (`signers`) that an erasure in this write may have left without a kept
/// signature (`Touched::signers_unsure`: the device of each erased signature, with the space of
/// its document, or any space where the document had none): each sync would otherwise go on
/// renewing their certificates, and the store would go on saying that they signed there. A
/// signer stays while any signature it made is kept on a document of its space, on the space's
/// own document, or on a document whose space is not known yet (a change waiting for earlier
/// ones, a form this core does not read, a document set aside to be fetched again).
pub(crate) fn forget_signers_without_signatures(
    conn: &Connection,
    unsure: &BTreeSet<(Option<String>, String)>,
) -> Result<()> {
    for (space, device) in unsure {
        conn.prepare_cached(
            "DELETE FROM signers WHERE device = ?2 AND (?1 IS NULL OR space_id = ?1) AND NOT EXISTS (
                 SELECT 1 FROM change_signatures s LEFT JOIN documents d ON d.doc_id = s.doc_id
                 WHERE s.device = ?2
                   AND (d.space_id IS NULL OR d.space_id = signers.space_id OR d.doc_id = signers.space_id))",
        )?
        .execute(params![space, device])?;
    }
    Ok(())
}

/// Queues a change for the server.
pub(crate) fn enqueue(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    space_id: &str,
    change: &Change,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (doc_id, kind, space_id, hash, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![doc_id, kind.as_str(), space_id, change.hash().as_ref(), change.raw_bytes(), now_ms])?;
    Ok(())
}

/// This device's actor id, created on first open.
pub(crate) fn device_actor(conn: &Connection, now_ms: i64) -> Result<ActorId> {
    let existing: Option<Vec<u8>> = conn
        .query_row("SELECT actor FROM device WHERE singleton = 1", [], |r| r.get(0))
        .optional()?;
    if let Some(bytes) = existing {
        return Ok(ActorId::from(bytes));
    }
    let actor = ActorId::random();
    conn.execute(
        "INSERT INTO device (singleton, actor, created_at) VALUES (1, ?1, ?2)",
        params![actor.to_bytes(), now_ms],
    )?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids of the test's devices and spaces.
    const X: &str = "01a24a7f-0000-7000-8000-00000000000a";
    const Y: &str = "01a24a7f-0000-7000-8000-00000000000b";
    const Z: &str = "01a24a7f-0000-7000-8000-00000000000c";
    const SPACE: &str = "01a24a7f-0000-7000-8000-0000000000f1";

    fn document(tx: &Connection, doc: &str, kind: &str, space: Option<&str>) {
        tx.execute(
            "INSERT INTO documents (doc_id, kind, space_id, updated_at) VALUES (?1, ?2, ?3, 0)",
            params![doc, kind, space],
        )
        .unwrap();
    }

    fn signed(tx: &Connection, doc: &str, device: &str) {
        tx.execute(
            "INSERT INTO change_signatures (doc_id, hash, device, signature) VALUES (?1, randomblob(32), ?2, zeroblob(64))",
            params![doc, device],
        )
        .unwrap();
        tx.execute(
            "INSERT OR IGNORE INTO signers (space_id, device) VALUES (?1, ?2)",
            params![SPACE, device],
        )
        .unwrap();
    }

    fn signers(store: &super::super::Store) -> Vec<String> {
        store
            .read(|c| {
                let mut stmt = c.prepare("SELECT device FROM signers ORDER BY device")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .unwrap()
    }

    fn erase_doc(store: &super::super::Store, doc: &str) {
        store
            .write(|tx, touched| erase(tx, doc, Records::Erase, touched))
            .unwrap();
    }

    /// An erasure forgets a signer only when no signature it made is left that may count in its
    /// space: one on another document of the space, on the space's own document, or on a
    /// document whose space is not known yet keeps it.
    #[test]
    fn an_erasure_forgets_only_signers_without_a_signature_that_may_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::Store::open(dir.path().join("s.db"), Default::default()).unwrap();
        store
            .write(|tx, _| {
                for doc in ["a1", "a2", "b1", "c1"] {
                    document(tx, doc, "item", Some(SPACE));
                }
                document(tx, "waiting", "item", None);
                document(tx, SPACE, "space", None);
                signed(tx, "a1", X);
                signed(tx, "a2", X);
                signed(tx, "b1", Y);
                signed(tx, "waiting", Y);
                signed(tx, "c1", Z);
                signed(tx, SPACE, Z);
                Ok(())
            })
            .unwrap();
        erase_doc(&store, "a1");
        assert_eq!(signers(&store), [X, Y, Z], "X signed a2 too");
        erase_doc(&store, "a2");
        erase_doc(&store, "b1");
        erase_doc(&store, "c1");
        assert_eq!(
            signers(&store),
            [Y, Z],
            "Y: a document of no known space; Z: the space's own"
        );
        erase_doc(&store, "waiting");
        assert_eq!(signers(&store), [Z]);
    }
}
