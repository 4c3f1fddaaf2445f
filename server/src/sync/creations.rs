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
//! Lock order as everywhere (`docs/server.md`): the documents are read and proved through a
//! reader, which is given back before the writer is taken to record the forms.

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
/// their first change. Returns how many forms were recorded.
pub fn prove_pending(db: &Db, max: usize) -> Result<usize, ServerError> {
    let mut recorded = 0;
    let mut left = max;
    while left > 0 {
        let batch = db.pending_creations().take(left.min(BATCH), Duration::ZERO);
        if batch.is_empty() {
            break;
        }
        left -= batch.len();
        recorded += prove_batch(db, &batch)?;
    }
    Ok(recorded)
}

fn prove_batch(db: &Db, batch: &[PendingCreation]) -> Result<usize, ServerError> {
    let proved: Vec<(PendingCreation, Creation)> = {
        let conn = db.read()?;
        let mut proved = Vec::with_capacity(batch.len());
        for pending in batch {
            if let Some(creation) = prove(&conn, pending)? {
                proved.push((*pending, creation));
            }
        }
        proved
    };
    if proved.is_empty() {
        return Ok(0);
    }
    let conn = db.lock();
    let tx = conn.unchecked_transaction()?;
    let mut recorded = 0;
    for (pending, creation) in &proved {
        // Only while the first change is still the document's last: an edit stored since has
        // dropped (or will never need) the form.
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

/// The form of one queued document, if its whole stored history is still the change it was
/// queued with and the core's rule rebuilds that change exactly.
fn prove(conn: &rusqlite::Connection, pending: &PendingCreation) -> Result<Option<Creation>, ServerError> {
    let (snapshot, changes, last) = log::doc_state(conn, pending.doc)?;
    let [change] = changes.as_slice() else {
        return Ok(None);
    };
    if snapshot.is_some() || last != pending.seq {
        return Ok(None);
    }
    // Guarded like every use of stored bytes (`docs/fuzzing.md`); a change that cannot be read
    // again simply gets no form.
    let mut doc = Automerge::new();
    let Ok(change) = guarded::decode(change.clone()) else {
        return Ok(None);
    };
    if guarded::apply(&mut doc, vec![change]).is_err() {
        return Ok(None);
    }
    Ok(creation_of(&doc, &pending.doc.to_string(), pending.kind)
        .ok()
        .flatten())
}

/// Runs [`prove_pending`] on its own thread, at the lowest CPU priority, for as long as the
/// server's state lives.
pub fn spawn_prover(state: &Arc<AppState>) -> std::io::Result<()> {
    let state: Weak<AppState> = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("creation-prover".into())
        .spawn(move || {
            lower_priority();
            while let Some(state) = state.upgrade() {
                let db = &state.db;
                if db.pending_creations().wait(Duration::from_secs(1)) {
                    if let Err(e) = prove_pending(db, BATCH) {
                        tracing::error!(error = %e, "recording creation forms failed");
                    }
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
