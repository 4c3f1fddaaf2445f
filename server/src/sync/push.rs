//! Checking and storing pushed changes. A change is stored only if every check passes:
//! it decodes as Automerge, its signature belongs to a registered device, the note's author is
//! that device's person, the author is a member whose role may do what the change does, and the
//! change leaves the document readable and within its size budget. Stored idempotently, keyed by
//! change hash.
//!
//! A change is stored whole or not at all: its log row, its blob references, the dropping of an
//! edited document's creation form and the document's compaction are written inside one
//! savepoint, and the document cache takes the new state only once they are. The work is bounded: decoding and signature checks happen
//! before the database lock is taken; under it, the transaction commits and the lock is handed
//! to the next waiting request after every [`PushLimits::work_per_hold`] of work; and a request
//! does at most [`PushLimits::work_per_request`], the changes after that are answered `deferred`
//! (pushed again by the device's next request).

use std::time::{Duration, Instant};

use automerge::{Automerge, Change, ChangeHash};
use ed25519_dalek::{Signature, VerifyingKey};
use quartier_domain::document::{checksum_matches, guarded, item_from_doc, space_from_doc, ChangeNote};
use quartier_domain::model::{judge_item, Item, ItemId, PersonId, Role, SpaceId, Status};
use quartier_protocol::{
    signing::change_signing_payload, Ack, AckOutcome, DeferReason, DocKind, Record, RejectCode,
};
use rusqlite::Connection;
use uuid::Uuid;

use crate::documents::{Doc, DocCache, SNAPSHOT_AFTER_CHANGES};
use crate::error::ServerError;
use crate::storage::{accounts, log, moderation, spaces, Db, DocMeta, PendingCreation, PendingCreations};

/// Largest single change accepted.
pub const MAX_CHANGE_BYTES: usize = quartier_protocol::MAX_CHANGE_BYTES;

/// Work counted for a change however small its document: the rows it reads and writes, the
/// document read as JSON.
pub const MIN_WORK_PER_CHANGE: usize = 4 * 1024;

/// How much one push may do. Work is counted in bytes of documents handled: for each change,
/// the stored size of its document (loaded, read, changed) and the change, at least
/// [`MIN_WORK_PER_CHANGE`], plus every snapshot saved.
#[derive(Clone, Debug)]
pub struct PushLimits {
    /// Largest document a change may make, as saved (the local store's budget: a document a
    /// device may write, the server takes).
    pub document_budget: usize,
    /// Work done for one request; the changes after it are answered `deferred`.
    pub work_per_request: usize,
    /// Work done under one hold of the database lock, after which the transaction commits and
    /// the lock goes to the next waiting request.
    pub work_per_hold: usize,
    /// Time under one hold of the database lock, likewise.
    pub hold_time: Duration,
}

impl Default for PushLimits {
    fn default() -> Self {
        Self {
            document_budget: quartier_domain::document::DEFAULT_DOCUMENT_BUDGET,
            work_per_request: 16 * 1024 * 1024,
            work_per_hold: 1024 * 1024,
            hold_time: Duration::from_millis(20),
        }
    }
}

/// What a push did.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    pub acks: Vec<Ack>,
    /// Work done (see [`PushLimits`]).
    pub work: usize,
    /// Times the database lock was taken.
    pub holds: usize,
    /// Most work done under one hold.
    pub max_hold_work: usize,
}

struct Refusal(AckOutcome);

fn reject(code: RejectCode, message: impl Into<String>) -> Refusal {
    Refusal(AckOutcome::Rejected {
        code,
        message: message.into(),
    })
}

/// The answer to a change the server failed to store (a database fault): nothing of it was
/// kept. A fault of the server's own (database, disk) is never the change's fault: the device
/// keeps it and pushes it again. The detail goes to the log, not to the device. The one place
/// that decides how such a fault is answered.
fn internal(e: ServerError) -> Refusal {
    tracing::error!(error = %e, "storing a pushed change failed");
    Refusal(AckOutcome::Deferred {
        message: "the server could not store this change just now; it is kept and sent again".into(),
        reason: DeferReason::ServerFault,
    })
}

/// A change checked as far as it can be without the database: decoded, its checksum, and
/// whether its signature verifies under its device's key; for a change that starts a document,
/// also the document it makes.
struct Decoded {
    space: Uuid,
    doc: Uuid,
    kind: DocKind,
    change: Change,
    hash: ChangeHash,
    device: Uuid,
    signature: Vec<u8>,
    signature_ok: bool,
    /// Worked out before the lock when the change depends on nothing (it can only start a
    /// document); used under the lock if the server indeed has nothing of the document yet.
    fresh: Option<Fresh>,
}

/// What a change that depends on nothing makes of an empty document: the state and, for items,
/// what the permission and validity checks read of it. This is most of the work of storing a
/// new document, done before the lock and in parallel, so that the hold does only the checks
/// that depend on the database and the writes. (Its creation form is proved later, off the
/// push path: `sync::creations`.)
struct Fresh {
    /// The document after the change, or why Automerge refused the change.
    doc: Result<Automerge, String>,
    /// The item the document reads as (items only), or why it does not read as one.
    item: Option<Result<Item, String>>,
}

impl Fresh {
    fn of(change: &Change, doc: Uuid, kind: DocKind) -> Fresh {
        let mut state = Automerge::new();
        if let Err(e) = guarded::apply(&mut state, vec![change.clone()]) {
            return Fresh {
                doc: Err(e.to_string()),
                item: None,
            };
        }
        let doc_id = doc.to_string();
        let item = (kind == DocKind::Item).then(|| item_from_doc(&state, &doc_id).map_err(|e| e.to_string()));
        Fresh { doc: Ok(state), item }
    }
}

/// Changes below this many are decoded on the request's own thread.
const PARALLEL_FROM: usize = 64;

/// Changes worked out before one take of the lock (see [`push`]): bounds the memory of the
/// new documents worked out ahead (a few MiB per request) while leaving enough to spread over
/// the cores.
const WINDOW: usize = 128;

/// How many pushes, process-wide, work out and store a window at a time (twice the cores:
/// while one stores under the lock, the others work out theirs). More would not go faster on
/// the same cores, only hold more new documents in memory at once: each push past it waits
/// here, before it has worked anything out, so memory stays bounded by this many windows
/// however many devices push at once.
///
/// Lock order: a push takes its pass before a reader or the writer's lock and gives it back
/// after; a holder of either without a pass (registration, blob uploads, garbage collection,
/// pulls) never asks for one.
///
/// Turns are given in the order asked for (a ticket each), as the writer's lock is fair: a push
/// that waits is not overtaken by later ones, which would stretch the slowest devices' waits.
struct Gate {
    turns: parking_lot::Mutex<Turns>,
    freed: parking_lot::Condvar,
}

struct Turns {
    /// Tickets handed out so far.
    issued: u64,
    /// Turns ended so far.
    ended: u64,
}

static GATE: Gate = Gate {
    turns: parking_lot::const_mutex(Turns { issued: 0, ended: 0 }),
    freed: parking_lot::Condvar::new(),
};

/// A push's turn at the [`Gate`]; the next waiting push goes when it is dropped.
struct Pass(&'static Gate);

impl Gate {
    fn enter(&'static self) -> Pass {
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64 * 2;
        let mut turns = self.turns.lock();
        let ticket = turns.issued;
        turns.issued += 1;
        // Tickets below `ended + permits` have had their turn or have it now.
        while ticket >= turns.ended + permits {
            self.freed.wait(&mut turns);
        }
        Pass(self)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.turns.lock().ended += 1;
        // Every waiter checks whether its ticket is due; only the next one's is.
        self.0.freed.notify_all();
    }
}

/// `work` for every item, in order, spread over the machine's cores when there are many: a
/// single device's large push then does not leave a core idle while the others wait for the
/// lock.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len() / PARALLEL_FROM)
        .max(1);
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|part| scope.spawn(move || part.iter().map(work).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                // The work catches Automerge's panics itself; one escaping here is a bug of ours,
                // and unwinds the request as it would have on this thread.
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Decodes a window's records, then works out the new documents among them (see [`Fresh`]),
/// each step [`in_parallel`]. A creation the server stores already (a device pushing again after
/// an answer it never received) is not worked out again: whether it is stored is read through
/// a reader (and checked again under the lock).
fn decode_window(
    db: &Db,
    records: &[Record],
    keys: &std::collections::HashMap<Uuid, Option<Vec<u8>>>,
    prepare: bool,
) -> Result<Vec<Result<Decoded, Refusal>>, ServerError> {
    let mut decoded = in_parallel(records, |record| decode(record, keys));
    if !prepare {
        return Ok(decoded);
    }
    let mut candidates = Vec::new();
    {
        let conn = db.read()?;
        for (index, d) in decoded.iter().enumerate() {
            if let Ok(d) = d {
                // A change signed badly is refused before its document would be looked at.
                if d.signature_ok
                    && d.change.deps().is_empty()
                    && log::document_of_change(&conn, d.hash.as_ref())?.is_none()
                {
                    candidates.push(index);
                }
            }
        }
    }
    let made = in_parallel(&candidates, |&index| match &decoded[index] {
        Ok(d) => Some(Fresh::of(&d.change, d.doc, d.kind)),
        Err(_) => None,
    });
    for (index, fresh) in candidates.into_iter().zip(made) {
        if let Some(Ok(d)) = decoded.get_mut(index) {
            d.fresh = fresh;
        }
    }
    Ok(decoded)
}

/// Checks and stores every pushed record of one request, in order.
pub fn push(
    db: &Db,
    docs: &DocCache,
    pusher_person: Uuid,
    records: &[Record],
    limits: &PushLimits,
) -> Result<PushReport, ServerError> {
    // The keys of the signing devices, through a reader: this step never waits for the writer.
    // (Revocations since are caught under the lock, where the signer is read again.)
    let mut keys: std::collections::HashMap<Uuid, Option<Vec<u8>>> = std::collections::HashMap::new();
    {
        let conn = db.read()?;
        for record in records {
            if let Record::Change { device, .. } = record {
                if !keys.contains_key(device) {
                    let key = accounts::device(&conn, *device)?.map(|d| d.public_key);
                    keys.insert(*device, key);
                }
            }
        }
    }
    let mut report = PushReport {
        acks: Vec::with_capacity(records.len()),
        ..Default::default()
    };
    // Window by window: what needs no database for a window's changes is worked out without
    // the lock, then they are stored under it. A new document's state in memory is some tens
    // of KiB, so a push of thousands of changes must not work them all out at once.
    for (window, part) in records.chunks(WINDOW).enumerate() {
        // Changes past the request's work budget are deferred unlooked-at: nothing to prepare.
        let prepare = report.work < limits.work_per_request;
        let _turn = GATE.enter();
        let decoded = decode_window(db, part, &keys, prepare)?;
        let mut hold = Hold::begin(db, docs)?;
        report.holds += 1;
        let mut hold_started = Instant::now();
        let mut hold_work = 0usize;
        let last = decoded.len().saturating_sub(1);
        for (offset, decoded) in decoded.into_iter().enumerate() {
            let outcome = match decoded {
                Err(Refusal(outcome)) => outcome,
                // Not a fault, but the same for the device: nothing stored, pushed again next
                // time.
                Ok(_) if report.work >= limits.work_per_request => AckOutcome::Deferred {
                    message: "the server did as much as it does for one request; push this again".into(),
                    reason: DeferReason::Busy,
                },
                Ok(mut change) => {
                    let mut work = MIN_WORK_PER_CHANGE;
                    hold.conn.execute_batch("SAVEPOINT pushed_change")?;
                    let result =
                        store_change(&hold.conn, docs, pusher_person, &mut change, limits, &mut work);
                    let outcome = match result {
                        Ok((stored, created)) => {
                            if let Err(e) = hold.conn.execute_batch("RELEASE pushed_change") {
                                hold.rollback_to_savepoint()?;
                                internal(e.into()).0
                            } else {
                                hold.put(change.doc, stored);
                                hold.created.extend(created);
                                AckOutcome::Stored
                            }
                        }
                        Err(Refusal(outcome)) => {
                            hold.rollback_to_savepoint()?;
                            outcome
                        }
                    };
                    report.work += work;
                    hold_work += work;
                    report.max_hold_work = report.max_hold_work.max(hold_work);
                    outcome
                }
            };
            report.acks.push(Ack {
                index: (window * WINDOW + offset) as u32,
                outcome,
            });
            if offset < last
                && (hold_work >= limits.work_per_hold || hold_started.elapsed() >= limits.hold_time)
            {
                hold.commit()?;
                // Hand the lock to whoever waits for it (the lock is fair), then carry on.
                hold = Hold::begin(db, docs)?;
                report.holds += 1;
                hold_started = Instant::now();
                hold_work = 0;
            }
        }
        // The lock goes while the next window is worked out.
        hold.commit()?;
    }
    Ok(report)
}

/// One hold of the database lock with its transaction open. Whatever ends it without
/// [`Hold::commit`] — an error returned early, a failed commit, a panic unwinding — rolls the
/// transaction back and forgets the documents put into the cache under it: the connection is
/// never left inside a transaction for the next request, and the cache never holds a state the
/// database does not.
struct Hold<'a> {
    conn: parking_lot::FairMutexGuard<'a, Connection>,
    docs: &'a DocCache,
    /// Documents put back into the cache since the transaction began.
    uncommitted: Vec<Uuid>,
    /// New documents stored under the transaction: queued for their creation form once it
    /// commits (`sync::creations`; the prover reads committed rows only).
    created: Vec<PendingCreation>,
    pending: &'a PendingCreations,
    open: bool,
}

impl<'a> Hold<'a> {
    fn begin(db: &'a Db, docs: &'a DocCache) -> Result<Self, ServerError> {
        let conn = db.lock();
        conn.execute_batch("BEGIN")?;
        Ok(Hold {
            conn,
            docs,
            uncommitted: Vec::new(),
            created: Vec::new(),
            pending: db.pending_creations(),
            open: true,
        })
    }

    /// A document's state after a change stored under this transaction.
    fn put(&mut self, doc: Uuid, state: Doc) {
        self.docs.put(doc, state);
        self.uncommitted.push(doc);
    }

    /// Commits; if that fails, nothing of it is kept, in the database or in the cache.
    fn commit(mut self) -> Result<(), ServerError> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        for created in self.created.drain(..) {
            if !self.pending.add(created) {
                tracing::debug!(doc = %created.doc, "creation queue full: the form is worked out when pulled");
            }
        }
        Ok(())
    }

    /// Undoes what one change wrote. If even that fails, the whole transaction is abandoned
    /// (dropping the hold) and the request fails: the device pushes everything again.
    fn rollback_to_savepoint(&mut self) -> Result<(), ServerError> {
        self.conn
            .execute_batch("ROLLBACK TO pushed_change; RELEASE pushed_change")?;
        Ok(())
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if self.open {
            for doc in &self.uncommitted {
                self.docs.forget(*doc);
            }
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back an abandoned push failed");
            }
        }
    }
}

/// The checks that need no database: size, decoding, checksum, and the signature under the
/// device's key (strict verification: no weak keys, no malleable signatures).
fn decode(
    record: &Record,
    keys: &std::collections::HashMap<Uuid, Option<Vec<u8>>>,
) -> Result<Decoded, Refusal> {
    let Record::Change {
        space,
        doc,
        kind,
        bytes,
        device,
        signature,
    } = record
    else {
        return Err(match record {
            Record::Unknown => reject(RejectCode::Malformed, "record type not known to this server"),
            _ => reject(
                RejectCode::Malformed,
                "devices push signed changes, not snapshots or creations",
            ),
        });
    };
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(reject(
            RejectCode::TooLarge,
            format!("a change may have at most {MAX_CHANGE_BYTES} bytes"),
        ));
    }
    let change = guarded::decode(bytes.clone()).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
    let hash = change.hash();
    if !checksum_matches(bytes, &change) {
        return Err(reject(
            RejectCode::Malformed,
            "the change's checksum does not match its contents",
        ));
    }
    // Whether the signature is good is only said after the membership and duplicate checks.
    let key = keys
        .get(device)
        .and_then(Option::as_ref)
        .and_then(|key| <[u8; 32]>::try_from(key.as_slice()).ok())
        .and_then(|key| VerifyingKey::from_bytes(&key).ok());
    let signature_ok = match (key, <[u8; 64]>::try_from(signature.as_slice())) {
        (Some(key), Ok(signature)) => key
            .verify_strict(
                &change_signing_payload(&doc.to_string(), hash.as_ref()),
                &Signature::from_bytes(&signature),
            )
            .is_ok(),
        _ => false,
    };
    Ok(Decoded {
        space: *space,
        doc: *doc,
        kind: *kind,
        change,
        hash,
        device: *device,
        signature: signature.clone(),
        signature_ok,
        fresh: None,
    })
}

/// Checks one decoded change against the database and stores it; returns the document's new
/// state, to be cached once the change's rows are released into the transaction. `work` counts
/// what was done.
fn store_change(
    conn: &Connection,
    docs: &DocCache,
    pusher_person: Uuid,
    change: &mut Decoded,
    limits: &PushLimits,
    work: &mut usize,
) -> Result<(Doc, Option<PendingCreation>), Refusal> {
    let fresh = change.fresh.take();
    let change = &*change;
    let Decoded {
        space,
        doc,
        kind,
        hash,
        device,
        ..
    } = *change;
    let bytes = change.change.raw_bytes();
    // The pushing device must belong to the space before anything else is said about the
    // change, and whether it is stored is said only after its author is checked (below):
    // otherwise anyone could learn that a change exists from a `duplicate`.
    if spaces::role_of(conn, space, pusher_person)
        .map_err(internal)?
        .is_none()
    {
        return Err(reject(
            RejectCode::NotAMember,
            "you are not a member of this space",
        ));
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
    if !change.signature_ok {
        return Err(reject(
            RejectCode::BadSignature,
            "the signature does not match the change",
        ));
    }
    // The author: the note must name the signing device's person.
    let note = ChangeNote::decode(change.change.message())
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
    // Moderation: a blocked author writes nothing more; an erased item takes no change again.
    if moderation::is_blocked(conn, space, signer.person).map_err(internal)? {
        return Err(reject(
            RejectCode::Blocked,
            "the space's coordinators have blocked you: no change of yours is taken",
        ));
    }
    if moderation::erased_in(conn, doc).map_err(internal)?.is_some() {
        return Err(reject(
            RejectCode::Erased,
            "the item was erased by the space's coordinators",
        ));
    }
    let existing = log::doc_meta(conn, doc).map_err(internal)?;
    if let Some(meta) = &existing {
        if meta.space != space || meta.kind != kind.as_str() {
            return Err(reject(
                RejectCode::Forbidden,
                "the document belongs to another space or kind",
            ));
        }
    }
    // Only now, with the author's signature over (document, hash) checked and the document
    // known to be this space's, is it said whether the change is stored: whoever gets here
    // holds what they ask about, so `duplicate` tells them nothing new. A change stored under
    // another document is not this one's to repeat (only its author can sign it for another).
    match log::document_of_change(conn, hash.as_ref()).map_err(internal)? {
        Some(stored) if stored == doc => return Err(Refusal(AckOutcome::Duplicate)),
        Some(_) => {
            return Err(reject(
                RejectCode::Forbidden,
                "the change belongs to another document",
            ))
        }
        None => {}
    }
    let doc_id = doc.to_string();
    // A new document whose state was worked out before the lock (the server has nothing of it,
    // so the state before is empty, of 0 stored bytes, and the change depends on nothing).
    let fresh = fresh.filter(|_| existing.is_none());
    let (mut state, old, fresh_item) = match fresh {
        Some(Fresh { doc: made, item }) => {
            *work += bytes.len();
            let made = made.map_err(|e| reject(RejectCode::Malformed, e))?;
            let state = Doc {
                doc: made,
                stored_bytes: 0,
                seq: 0,
            };
            (state, None, item)
        }
        None => {
            // The state before, read where it is cached; a change whose dependencies are
            // missing waits.
            let before = docs.get(conn, doc).map_err(internal)?;
            *work += before.stored_bytes + bytes.len();
            if change
                .change
                .deps()
                .iter()
                .any(|dep| before.doc.get_change_meta_by_hash(dep).is_none())
            {
                return Err(deferred());
            }
            let old = match (kind, &existing) {
                (DocKind::Item, Some(_)) => item_from_doc(&before.doc, &doc_id).ok(),
                _ => None,
            };
            drop(before);
            // Applied in place: from here until it is put back, the cache does not hold the
            // document.
            let mut state = docs.take(conn, doc).map_err(internal)?;
            // Guarded: Automerge panics on some crafted changes (`docs/fuzzing.md`); on an error
            // the taken state is dropped here and the cache reloads the document from the
            // database.
            guarded::apply(&mut state.doc, vec![change.change.clone()])
                .map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
            if state.doc.get_change_meta_by_hash(&hash).is_none() {
                return Err(deferred());
            }
            (state, old, None)
        }
    };
    // The size budget: the stored size bounds the saved size; only a real save decides.
    let mut saved = None;
    if state.stored_bytes + bytes.len() > limits.document_budget {
        let snapshot = guarded::save(&state.doc).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
        *work += snapshot.len();
        if snapshot.len() > limits.document_budget {
            return Err(reject(
                RejectCode::TooLarge,
                format!(
                    "the document would have {} bytes, more than the {} a document may have",
                    snapshot.len(),
                    limits.document_budget
                ),
            ));
        }
        saved = Some(snapshot);
    }
    let after = &state.doc;
    // A comment's item, recorded with a new document (erased with it).
    let mut parent = None;
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
                space_from_doc(after, &doc_id).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
            if read.id.as_uuid() != space || doc != space {
                return Err(reject(
                    RejectCode::Forbidden,
                    "a space document must be the space's own",
                ));
            }
            // The limits a device's own write obeys (name and description sizes, …).
            read.meta
                .validate()
                .map_err(|e| reject(RejectCode::Malformed, format!("not a valid space: {e}")))?;
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
            let new = match fresh_item {
                Some(read) => read,
                None => item_from_doc(after, &doc_id).map_err(|e| e.to_string()),
            }
            .map_err(|e| reject(RejectCode::Malformed, e))?;
            judge_item(
                role,
                PersonId::from(signer.person),
                SpaceId::from(space),
                ItemId::from(doc),
                old.as_ref(),
                &new,
            )
            .map_err(|refusal| reject(refusal.code, refusal.message))?;
            // The limits a device's own write obeys (text sizes, tags, media, …); a deletion
            // is bounded by the document budget only.
            if new.content.status != Status::Deleted {
                new.content
                    .validate()
                    .map_err(|e| reject(RejectCode::Malformed, format!("not a valid item: {e}")))?;
            }
            let reveal = old.as_ref().is_some_and(|o| widens(o, &new));
            parent = new.content.details.parent().map(|p| p.as_uuid());
            // A new comment belongs to an item of this space that was not erased.
            if let (None, Some(item)) = (&existing, parent) {
                if moderation::erased_in(conn, item).map_err(internal)?.is_some() {
                    return Err(reject(
                        RejectCode::Erased,
                        "the item this comment belongs to was erased by the space's coordinators",
                    ));
                }
                if log::doc_meta(conn, item)
                    .map_err(internal)?
                    .is_some_and(|meta| meta.space != space)
                {
                    return Err(reject(
                        RejectCode::Forbidden,
                        "a comment belongs to an item of its own space",
                    ));
                }
            }
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
    let seq = log::append_change(
        conn,
        doc,
        &meta,
        hash.as_ref(),
        bytes,
        device,
        &change.signature,
        reveal,
    )
    .map_err(internal)?;
    if let (None, Some(parent)) = (&existing, parent) {
        moderation::set_parent(conn, doc, Some(parent)).map_err(internal)?;
    }
    if let Some(hashes) = &blob_refs {
        crate::blobs::index::set_refs(conn, doc, hashes.iter().map(String::as_str))
            .map_err(|e| internal(ServerError::Internal(e.to_string())))?;
    }
    // A new document's creation form is proved and recorded later, off the push path
    // (`sync::creations`, queued once the transaction commits); an edited one has none.
    let created = match existing {
        None => Some(PendingCreation { doc, kind, seq }),
        Some(_) => {
            log::drop_creation(conn, doc).map_err(internal)?;
            None
        }
    };
    // Compacted when due, or at once when the budget check above already saved it.
    if saved.is_none() && log::changes_since_snapshot(conn, doc).map_err(internal)? >= SNAPSHOT_AFTER_CHANGES
    {
        let snapshot = guarded::save(&state.doc).map_err(|e| reject(RejectCode::Malformed, e.to_string()))?;
        *work += snapshot.len();
        saved = Some(snapshot);
    }
    match saved {
        Some(snapshot) => {
            log::store_snapshot(conn, doc, &snapshot, seq).map_err(internal)?;
            state.stored_bytes = snapshot.len();
        }
        None => state.stored_bytes += bytes.len(),
    }
    state.seq = seq;
    Ok((state, created))
}

fn deferred() -> Refusal {
    Refusal(AckOutcome::Deferred {
        message: "a change this one depends on has not arrived yet".into(),
        reason: DeferReason::MissingDependency,
    })
}

/// Whether the new state is visible to someone the old was not (they then get a snapshot).
fn widens(old: &Item, new: &Item) -> bool {
    Role::ALL
        .iter()
        .any(|r| new.content.audience.admits(*r) && !old.content.audience.admits(*r))
}
