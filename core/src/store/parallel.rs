//! Work that needs no connection, spread over the device's cores while the calling thread
//! writes what is ready: the bulk path reads, checks and encodes creation forms on other threads
//! while the writer stores the ones before them (`merge::store_creations`). Touches no
//! connection and no store state; results come back in the order of the inputs.

use std::sync::mpsc;

/// Below this many inputs everything runs on the calling thread: starting threads costs more
/// than it saves.
const MIN_PARALLEL: usize = 64;
/// Inputs a worker takes at a time: large enough that handing over is cheap, small enough that
/// the writer starts soon.
const CHUNK: usize = 16;
/// The most worker threads: beyond that the single writer is what limits the rate.
const MAX_WORKERS: usize = 4;
/// Chunks a worker may have done and not yet taken by the writer: what bounds the memory of
/// results in flight (a new member's initial sync has a memory target of its own).
const AHEAD: usize = 4;

/// Calls `consume` with `work(input)` for every input, in input order, while the inputs after it
/// are worked on by other threads (as many as the device has cores, up to [`MAX_WORKERS`],
/// beside the calling thread; each at most [`AHEAD`] chunks ahead of it, plus the one it is
/// handing over). Stops at the first error `consume` returns; the workers stop at their next
/// chunk.
pub(crate) fn map_in_order<T, U, E>(
    inputs: Vec<T>,
    work: impl Fn(T) -> U + Sync,
    mut consume: impl FnMut(U) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    U: Send,
{
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    if inputs.len() < MIN_PARALLEL || workers < 2 {
        for input in inputs {
            consume(work(input))?;
        }
        return Ok(());
    }
    // Chunks dealt round robin: worker `w` does chunks w, w + workers, … and sends them in that
    // order on its own channel, so the writer reads chunk `c` from channel `c % workers`.
    let mut dealt: Vec<Vec<Vec<T>>> = (0..workers).map(|_| Vec::new()).collect();
    let mut chunks = 0;
    let mut inputs = inputs.into_iter().peekable();
    while inputs.peek().is_some() {
        dealt[chunks % workers].push(inputs.by_ref().take(CHUNK).collect());
        chunks += 1;
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut sources: Vec<Source<T, U>> = dealt
            .into_iter()
            .map(|share| {
                let (send, receive) = mpsc::sync_channel(AHEAD);
                // The share goes to the thread once it runs: a thread the system refuses (a
                // phone short of memory) leaves it here, to be worked on by the writer.
                let (give, take) = mpsc::channel::<Vec<Vec<T>>>();
                let started = std::thread::Builder::new()
                    .name("quartier-bulk".into())
                    .spawn_scoped(scope, move || {
                        for chunk in take.recv().unwrap_or_default() {
                            let done: Vec<U> = chunk.into_iter().map(work).collect();
                            if send.send(done).is_err() {
                                return; // the writer stopped
                            }
                        }
                    });
                let unstarted = match started {
                    Ok(_) => match give.send(share) {
                        Ok(()) => return Source::Worker(receive),
                        // The thread ended before it took its share (it cannot: it waits for it).
                        Err(mpsc::SendError(share)) => share,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "no thread for the bulk path's work; done on the writer's");
                        share
                    }
                };
                Source::Here(unstarted.into_iter())
            })
            .collect();
        for chunk in 0..chunks {
            let done = match &mut sources[chunk % workers] {
                // A worker that panicked dropped its sender: the scope raises its panic on return.
                Source::Worker(receive) => match receive.recv() {
                    Ok(done) => done,
                    Err(_) => break,
                },
                Source::Here(share) => share.next().unwrap_or_default().into_iter().map(work).collect(),
            };
            for result in done {
                consume(result)?;
            }
        }
        Ok(())
        // On an early return the receivers drop first, so every worker's next send fails and
        // the scope's join does not wait for the rest of the work.
    })
}

/// Where the writer takes a worker's share of chunks from.
enum Source<T, U> {
    Worker(mpsc::Receiver<Vec<U>>),
    /// The thread could not be started: the writer works on these itself.
    Here(std::vec::IntoIter<Vec<T>>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_input_order_whatever_the_number_of_inputs() {
        for n in [0, 1, 63, 64, 65, 1000, 1037] {
            let mut seen = Vec::new();
            map_in_order(
                (0..n).collect(),
                |i: usize| i * 2,
                |r| -> Result<(), ()> {
                    seen.push(r);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..n).map(|i| i * 2).collect::<Vec<_>>(), "{n} inputs");
        }
    }

    #[test]
    fn an_error_stops_the_consumer_and_returns_it() {
        let mut seen = 0;
        let result = map_in_order(
            (0..100_000).collect(),
            |i: usize| i,
            |r| {
                seen += 1;
                if r == 100 {
                    Err(r)
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(result, Err(100));
        assert_eq!(seen, 101);
    }

    #[test]
    fn workers_stay_a_few_chunks_ahead_of_a_slow_writer() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let worked = AtomicUsize::new(0);
        let mut most_ahead = 0;
        let mut seen = 0;
        map_in_order(
            (0..20_000).collect(),
            |i: usize| {
                worked.fetch_add(1, Ordering::SeqCst);
                i
            },
            |_| -> Result<(), ()> {
                if seen % 1000 == 0 {
                    // Time for unbounded workers to finish everything.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                seen += 1;
                most_ahead = most_ahead.max(worked.load(Ordering::SeqCst) - seen);
                Ok(())
            },
        )
        .unwrap();
        // Per worker: the chunks waiting, the one it is sending, the one the writer holds.
        let bound = MAX_WORKERS * (AHEAD + 2) * CHUNK;
        assert!(most_ahead <= bound, "{most_ahead} results ahead of the writer");
    }

    #[test]
    #[should_panic]
    fn a_panic_in_the_work_is_raised_not_waited_for() {
        let _ = map_in_order(
            (0..1000).collect(),
            |i: usize| {
                assert!(i != 500, "work failed");
                i
            },
            |_| -> Result<(), ()> { Ok(()) },
        );
    }
}
