//! Creation forms recorded off the push path.
//!
//! A new member's initial sync sends a never-edited document as its creation form (about the
//! size of its JSON) when the server holds one in `doc_creations`. Proving a form rebuilds the
//! document's change through the core's rule and compares the hashes, which costs about as much
//! CPU as everything else of storing the change; so a push only queues a new document
//! (`storage::pending`), and [`prove_pending`] records the forms later: on the prover thread
//! ([`spawn_prover`], at the lowest CPU priority, so a burst of pushes is not slowed by it), or
//! from tests and benches directly. A document edited before its turn gets no form (its next
//! change drops it anyway); one never proved (queue lost in a restart, or full) is worked out
//! when a new member pulls it (`pull::snapshot_record`), as before forms were recorded.
//!
//! Lock order as everywhere (`docs/server.md`): the changes are read through a reader, given
//! back before the rebuilds, and the forms are recorded under the writer by a thread of normal
//! priority (the writer lock is fair: a nice-19 thread holding it would hold up every push).

use std::sync::{Arc, Weak};
use std::time::Duration;

use automerge::Automerge;
use quartier_domain::document::{creation_of, guarded, Creation};
use rusqlite::{params, OptionalExtension};

use crate::error::ServerError;
use crate::state::AppState;
use crate::storage::{log, Db, PendingCreation};

/// Documents proved per writer transaction.
const BATCH: usize = 256;

/// Proves up to `max` queued documents and records the forms of those still untouched since
/// their first change, on the calling thread. Returns how many forms were recorded.
pub fn prove_pending(db: &Db, max: usize) -> Result<usize, ServerError> {
    let mut recorded = 0;
    let mut left = max;
    while left > 0 {
        let batch = db.pending_creations().take(left.min(BATCH), Duration::ZERO);
        if batch.is_empty() {
            break;
        }
        left -= batch.len();
        recorded += record(db, &prove(db, &batch)?)?;
    }
    Ok(recorded)
}

/// The forms of queued documents whose whole stored history is still the change they were
/// queued with and which the core's rule rebuilds exactly. The changes are read through a
/// reader, which is given back before the (CPU-heavy) rebuilds: pulls never wait for them.
fn prove(db: &Db, batch: &[PendingCreation]) -> Result<Vec<(PendingCreation, Creation)>, ServerError> {
    let mut firsts = Vec::with_capacity(batch.len());
    {
        let conn = db.read()?;
        for pending in batch {
            let (snapshot, mut changes, last) = log::doc_state(&conn, pending.doc)?;
            if snapshot.is_none() && changes.len() == 1 && last == pending.seq {
                firsts.extend(changes.pop().map(|change| (*pending, change)));
            }
        }
    }
    Ok(firsts
        .into_iter()
        .filter_map(|(pending, change)| {
            // Guarded like every use of stored bytes (`docs/fuzzing.md`); a change that cannot
            // be read again simply gets no form.
            let mut doc = Automerge::new();
            let change = guarded::decode(change).ok()?;
            guarded::apply(&mut doc, vec![change]).ok()?;
            let creation = creation_of(&doc, &pending.doc.to_string(), pending.kind).ok()??;
            Some((pending, creation))
        })
        .collect())
}

/// Records proved forms under the writer, in one transaction, for the documents whose first
/// change is still their last (an edit stored since has dropped, or never needs, the form).
fn record(db: &Db, proved: &[(PendingCreation, Creation)]) -> Result<usize, ServerError> {
    if proved.is_empty() {
        return Ok(0);
    }
    let conn = db.lock();
    let tx = conn.unchecked_transaction()?;
    let mut recorded = 0;
    for (pending, creation) in proved {
        let last: Option<i64> = tx
            .prepare_cached("SELECT max(seq) FROM log WHERE doc_id = ?1 AND record = 'change'")?
            .query_row(params![pending.doc.to_string()], |r| r.get(0))
            .optional()?
            .flatten();
        if last == Some(pending.seq) {
            log::record_creation(&tx, pending.doc, creation)?;
            recorded += 1;
        }
    }
    tx.commit()?;
    Ok(recorded)
}

/// Runs the prover for as long as the server's state lives: one thread at the lowest CPU
/// priority rebuilds the forms, and hands them to a second one at normal priority that records
/// them. The writer lock is fair (handed to the next waiter), so a nice-19 thread holding it on a
/// busy machine would hold up every push: the prover itself never takes it.
pub fn spawn_prover(state: &Arc<AppState>) -> std::io::Result<()> {
    let (proved_tx, proved_rx) = std::sync::mpsc::sync_channel::<Vec<(PendingCreation, Creation)>>(4);
    let weak: Weak<AppState> = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("creation-prover".into())
        .spawn(move || {
            lower_priority();
            while let Some(state) = weak.upgrade() {
                let db = &state.db;
                if !db.pending_creations().wait(Duration::from_secs(1)) {
                    continue;
                }
                let batch = db.pending_creations().take(BATCH, Duration::ZERO);
                match prove(db, &batch) {
                    Ok(proved) if proved.is_empty() => {}
                    Ok(proved) => {
                        if proved_tx.send(proved).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "proving creation forms failed"),
                }
            }
        })?;
    let weak: Weak<AppState> = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("creation-recorder".into())
        .spawn(move || {
            // Ends when the prover ends (the channel closes).
            while let Ok(proved) = proved_rx.recv() {
                let Some(state) = weak.upgrade() else { return };
                if let Err(e) = record(&state.db, &proved) {
                    tracing::error!(error = %e, "recording creation forms failed");
                }
            }
        })?;
    Ok(())
}

/// Nice 19 for the calling thread (Linux keeps a nice value per thread): the prover then gets
/// the CPU the requests leave.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; `0` names the calling thread.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, 19) != 0 {
            tracing::warn!("the creation prover runs at normal priority (setpriority failed)");
        }
    }
}
