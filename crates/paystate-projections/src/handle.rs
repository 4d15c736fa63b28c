//! The shared, read-mostly handle to the live projections.

use paystate_store::Position;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A cheap, cloneable handle to the live projections.
#[derive(Debug, Clone)]
pub struct ProjectionsHandle {
    /// A watch so that handlers can wait for "applied >= my append" (read-your-writes).
    applied: Arc<watch::Sender<Position>>,
    /// Set once the follower has reached the head the log had when it started.
    caught_up: Arc<AtomicBool>,
}

impl Default for ProjectionsHandle {
    fn default() -> Self {
        ProjectionsHandle::new(Position::START)
    }
}

impl ProjectionsHandle {
    pub fn new(applied: Position) -> ProjectionsHandle {
        let (sender, _) = watch::channel(applied);
        ProjectionsHandle {
            applied: Arc::new(sender),
            caught_up: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The position up to which every event has been applied.
    pub fn applied(&self) -> Position {
        *self.applied.borrow()
    }

    /// Waits until the projections have applied `position`; `false` if `timeout` passed first.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let mut receiver = self.applied.subscribe();
        tokio::time::timeout(timeout, receiver.wait_for(|applied| *applied >= position))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Whether the projections have caught up with the log (readiness).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Records that the projections have caught up with the log.
    pub fn mark_caught_up(&self) {
        self.caught_up.store(true, Ordering::Release);
    }
}
