//! Following the log: catch up from the projections' position, then apply new events live,
//! committing state and checkpoint periodically and once more on stop.

use crate::error::ProjectionError;
use crate::handle::ProjectionsHandle;
use crate::views::Projections;
use paystate_store::{EventStore, Position, Subscription, SubscriptionItem};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many envelopes a rebuild reads per page.
const PAGE: usize = 4096;

/// Changed entries after which the follower commits without waiting for the interval. The
/// store's single writer applies a commit between two append batches, so every entry in it
/// delays the appends queued behind it: a bounded commit keeps that delay to a few
/// milliseconds under a sustained load.
pub const COMMIT_AFTER_CHANGES: usize = 512;

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
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscription = Subscription::new(store.clone(), handle.applied());
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            _ = ticker.tick() => commit_logged(&handle, &store).await,
            item = subscription.next() => match item {
                Ok(SubscriptionItem::Event(envelope)) => {
                    handle.apply(std::slice::from_ref(&envelope));
                    // Not while catching up after a start: nobody waits on the writer yet, and
                    // one commit per interval restarts faster than many small ones.
                    if handle.is_caught_up() && handle.uncommitted() >= COMMIT_AFTER_CHANGES {
                        commit_logged(&handle, &store).await;
                    }
                }
                Ok(SubscriptionItem::CaughtUp(position)) => {
                    tracing::info!(position = position.0, "projections caught up with the log");
                    handle.mark_caught_up();
                }
                Err(error) => {
                    tracing::error!(%error, "projections cannot read the log; retrying");
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    subscription = Subscription::new(store.clone(), handle.applied());
                }
            },
        }
    }
    commit_logged(&handle, &store).await;
}

/// Commits on a blocking thread: a commit waits for the store's writer and its fsync, and
/// encodes every changed entry, which must not hold one of the runtime's workers (and with
/// it every request scheduled there) for that long.
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

/// As [`rebuild`], calling `progress` with the applied position after each page.
pub fn rebuild_with_progress(
    store: &dyn EventStore,
    mut progress: impl FnMut(Position),
) -> Result<Projections, ProjectionError> {
    let mut projections = Projections::default();
    projections.dirty.paused = true;
    loop {
        let page = store.read_all(projections.applied(), PAGE)?;
        if page.is_empty() {
            break;
        }
        for envelope in &page {
            projections.apply(envelope);
        }
        progress(projections.applied());
    }
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
        let page = store.read_all(handle.applied(), PAGE)?;
        if page.is_empty() {
            return Ok(handle.applied());
        }
        handle.apply(&page);
    }
}
