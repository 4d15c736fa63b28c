//! Following the log: catch up from the projections' position, then apply new events live,
//! committing state and checkpoint periodically and once more on stop; and rebuilding from
//! scratch.
//!
//! Both read the log with [`EventStore::scan_all`] (events borrowed from the store) into
//! [`Batch`]es: one buffer per batch, reused, receipts decoded while reading. A rebuild reads
//! on a second thread while the first applies; the follower reads a batch before it takes the
//! lock that readers wait on, then applies it under one lock (stopping early to commit once
//! [`COMMIT_AFTER_CHANGES`] entries have changed).

use crate::decode::Batch;
use crate::error::ProjectionError;
use crate::handle::ProjectionsHandle;
use crate::views::Projections;
use paystate_store::{EventStore, Position, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many envelopes a rebuild reads per batch.
const PAGE: usize = 4096;

/// How many envelopes the follower applies under one lock at most: enough to make a backlog
/// cheap, few enough that a reader never waits long.
const FOLLOW_BATCH: usize = 256;

/// Decoded batches a rebuild's reader may be ahead of its applier.
const BATCHES_AHEAD: usize = 4;

/// Changed entries after which the follower commits without waiting for the interval. A
/// commit writes its entries beside the store's writer (only its checkpoint waits in the
/// writer's queue), but it still takes its CPU in one burst from a machine that is ingesting:
/// a bounded commit keeps each burst to a few milliseconds under a sustained load.
pub const COMMIT_AFTER_CHANGES: usize = 512;

/// Changed entries after which the follower commits while it catches up after a start. Few
/// large commits restart faster than many small ones, and nobody is ingesting yet; the bound
/// is for memory: payments changed since the last commit are held decoded, and a first start
/// on a long log (or after the persisted format changed) would otherwise hold every payment
/// of the log decoded until the first interval.
pub const CATCH_UP_COMMIT_AFTER_CHANGES: usize = 65_536;

/// When the follower commits what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    /// At the latest this long after the last commit, if anything changed.
    pub interval: Duration,
    /// Once this many entries changed, while following the log live.
    pub after_changes: usize,
    /// Once this many entries changed, while catching up after a start.
    pub catch_up_after_changes: usize,
}

impl CommitPolicy {
    /// Every `interval`, and sooner after [`COMMIT_AFTER_CHANGES`] changes live or
    /// [`CATCH_UP_COMMIT_AFTER_CHANGES`] while catching up.
    pub fn every(interval: Duration) -> CommitPolicy {
        CommitPolicy {
            interval,
            after_changes: COMMIT_AFTER_CHANGES,
            catch_up_after_changes: CATCH_UP_COMMIT_AFTER_CHANGES,
        }
    }
}

/// Reads up to `limit` envelopes after `after` into a batch.
fn read_batch(store: &dyn EventStore, after: Position, limit: usize) -> Result<Batch, StoreError> {
    let mut batch = Batch::with_capacity(limit.min(PAGE));
    read_into(&mut batch, store, after, limit)?;
    Ok(batch)
}

/// Reads up to `limit` envelopes after `after` into an empty `batch`.
fn read_into(
    batch: &mut Batch,
    store: &dyn EventStore,
    after: Position,
    limit: usize,
) -> Result<(), StoreError> {
    store.scan_all(after, limit, &mut |envelope| batch.push(&envelope))?;
    Ok(())
}

/// Applies the log to `handle` until `stop` resolves, then commits a last time. Commits every
/// `commit_interval`, and sooner once [`COMMIT_AFTER_CHANGES`] entries have changed.
///
/// Store errors are logged and retried after a pause: a reader that stops would make every
/// later read stale, so the follower never gives up while the server runs.
pub async fn follow(
    handle: ProjectionsHandle,
    store: Arc<dyn EventStore>,
    commit_interval: Duration,
    stop: impl Future<Output = ()>,
) {
    follow_with(handle, store, CommitPolicy::every(commit_interval), stop).await;
}

/// As [`follow`], committing by `policy`.
pub async fn follow_with(
    handle: ProjectionsHandle,
    store: Arc<dyn EventStore>,
    policy: CommitPolicy,
    stop: impl Future<Output = ()>,
) {
    let commit_interval = policy.interval;
    tokio::pin!(stop);
    // The first commit is one interval away, not at once: nothing has changed yet.
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + commit_interval,
        commit_interval,
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut head = store.watch_head();
    loop {
        let after = handle.applied();
        let batch = match read_batch(store.as_ref(), after, FOLLOW_BATCH) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "projections cannot read the log; retrying");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        if batch.is_empty() {
            if !handle.is_caught_up() {
                tracing::info!(position = after.0, "projections caught up with the log");
                handle.mark_caught_up();
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = ticker.tick() => commit_logged(&handle, &store).await,
                closed = async { head.wait_for(|head| *head > after).await.is_err() } => {
                    if closed {
                        // The store is closing: nothing more will come.
                        stop.as_mut().await;
                        break;
                    }
                }
            }
            continue;
        }
        let changes = if handle.is_caught_up() {
            policy.after_changes
        } else {
            policy.catch_up_after_changes
        };
        let mut envelopes = batch.envelopes().peekable();
        while envelopes.peek().is_some() {
            handle.apply_until(&mut envelopes, changes);
            if handle.uncommitted() >= changes {
                commit_logged(&handle, &store).await;
            }
        }
        tokio::select! {
            biased;
            () = &mut stop => break,
            _ = ticker.tick() => commit_logged(&handle, &store).await,
            () = std::future::ready(()) => {}
        }
    }
    commit_logged(&handle, &store).await;
}

/// Commits on a blocking thread: a commit encodes and writes every changed entry, then waits
/// for the store's writer and its fsync, which must not hold one of the runtime's workers (and
/// with it every request scheduled there) for that long.
async fn commit_logged(handle: &ProjectionsHandle, store: &Arc<dyn EventStore>) {
    let (handle, store) = (handle.clone(), store.clone());
    match tokio::task::spawn_blocking(move || handle.commit(store.as_ref())).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not persist the projections; will retry");
        }
        Err(error) => {
            tracing::warn!(%error, "persisting the projections did not finish; will retry");
        }
    }
}

/// Builds every projection from scratch by reading the whole log (nothing is persisted).
pub fn rebuild(store: &dyn EventStore) -> Result<Projections, ProjectionError> {
    rebuild_with_progress(store, |_| {})
}

/// As [`rebuild`], calling `progress` with the applied position after each batch.
///
/// A second thread reads the log (and decodes its receipts) while this one applies it. Once
/// more than a few thousand payments are held decoded, all are put in their compact stored
/// form, as the server's catch-up does: a long log's rebuild then holds a few hundred bytes per
/// payment, not a decoded fold of each (which also made the rebuild slower: a third of its
/// time went to the kernel handing out fresh memory).
pub fn rebuild_with_progress(
    store: &dyn EventStore,
    mut progress: impl FnMut(Position),
) -> Result<Projections, ProjectionError> {
    let mut projections = Projections::default();
    projections.dirty.paused = true;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
    // Applied batches go back to the reader, which refills them: no buffer is allocated (and
    // paged in) per batch, and none is freed on the other thread than the one that made it.
    let (give_back, given_back) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD + 2);
    let read = std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(), StoreError> {
            let mut after = Position::START;
            loop {
                let mut batch = match given_back.try_recv() {
                    Ok(mut batch) => {
                        batch.clear();
                        batch
                    }
                    Err(_) => Batch::with_capacity(PAGE),
                };
                read_into(&mut batch, store, after, PAGE)?;
                let Some(last) = batch.last_position() else {
                    return Ok(());
                };
                after = last;
                if sender.send(batch).is_err() {
                    return Ok(());
                }
            }
        });
        for batch in receiver {
            for envelope in batch.envelopes() {
                projections.apply_envelope(envelope);
            }
            if projections.payments.decoded() > crate::handle::MAX_DECODED {
                projections.payments.compact_all();
            }
            progress(projections.applied());
            // The reader may have finished; the batch is then simply dropped.
            let _ = give_back.try_send(batch);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    read?;
    projections.dirty = Default::default();
    Ok(projections)
}

/// Applies everything the log holds beyond the handle's position, synchronously (tools that
/// open the persisted projections and want them current). Returns the applied position.
pub fn catch_up(
    handle: &ProjectionsHandle,
    store: &dyn EventStore,
) -> Result<Position, ProjectionError> {
    loop {
        let batch = read_batch(store, handle.applied(), PAGE)?;
        if batch.is_empty() {
            return Ok(handle.applied());
        }
        handle.apply_batch(&batch);
    }
}
