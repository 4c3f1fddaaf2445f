//! New documents whose creation form is still to be proved and recorded (`sync::creations`).
//!
//! Proving a creation form rebuilds the document's change, which costs about as much as storing
//! it; a push therefore only queues the document here and the prover records the form later, on a
//! low-priority thread. The queue lives in memory: what it loses (a restart, an overflow) is
//! worked out when a new member pulls the document, as for documents stored before forms were
//! recorded, so it only ever costs time, never correctness.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use quartier_domain::document::DocKind;
use uuid::Uuid;

/// Beyond this many queued documents a new one is not queued (about 40 bytes each): a flood of
/// pushes must not grow the server's memory without bound.
pub const MAX_PENDING: usize = 1 << 18;

/// A new document as its first change left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingCreation {
    pub doc: Uuid,
    pub kind: DocKind,
    /// The log position of the document's first change: the form is recorded only while it is
    /// still the document's last.
    pub seq: i64,
}

/// The queue of documents to prove, oldest first.
#[derive(Default)]
pub struct PendingCreations {
    queue: Mutex<VecDeque<PendingCreation>>,
    queued: Condvar,
}

impl PendingCreations {
    /// Queues a new document; returns false when the queue is full (then it is not queued).
    pub fn add(&self, pending: PendingCreation) -> bool {
        let mut queue = self.queue.lock();
        if queue.len() >= MAX_PENDING {
            return false;
        }
        queue.push_back(pending);
        drop(queue);
        self.queued.notify_one();
        true
    }

    /// Up to `max` queued documents, oldest first; waits up to `wait` while none is queued.
    pub fn take(&self, max: usize, wait: Duration) -> Vec<PendingCreation> {
        let mut queue = self.queue.lock();
        if queue.is_empty() && !wait.is_zero() {
            self.queued.wait_for(&mut queue, wait);
        }
        let n = max.min(queue.len());
        queue.drain(..n).collect()
    }

    /// Whether any document is queued, waiting up to `wait` for one.
    pub fn wait(&self, wait: Duration) -> bool {
        let mut queue = self.queue.lock();
        if queue.is_empty() {
            self.queued.wait_for(&mut queue, wait);
        }
        !queue.is_empty()
    }

    /// Documents queued and not yet taken.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: i64) -> PendingCreation {
        PendingCreation {
            doc: Uuid::new_v4(),
            kind: DocKind::Item,
            seq,
        }
    }

    #[test]
    fn takes_oldest_first_and_never_more_than_asked() {
        let q = PendingCreations::default();
        for seq in 1..=5 {
            assert!(q.add(pending(seq)));
        }
        let first: Vec<i64> = q.take(3, Duration::ZERO).iter().map(|p| p.seq).collect();
        assert_eq!(first, vec![1, 2, 3]);
        let rest: Vec<i64> = q.take(10, Duration::ZERO).iter().map(|p| p.seq).collect();
        assert_eq!(rest, vec![4, 5]);
        assert!(q.take(10, Duration::from_millis(1)).is_empty());
    }

    #[test]
    fn a_full_queue_refuses_more() {
        let q = PendingCreations::default();
        for seq in 0..MAX_PENDING as i64 {
            assert!(q.add(pending(seq)));
        }
        assert!(!q.add(pending(-1)));
        assert_eq!(q.len(), MAX_PENDING);
    }
}
