//! The shared handle to the live projections: read them, wait for them, commit them.

use crate::decode::{Batch, BatchEnvelope};
use crate::error::ProjectionError;
use crate::persist;
use crate::views::Projections;
use paystate_store::{Envelope, EventStore, Position};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Payments held decoded beyond which applying puts them all in their stored form. Commits
/// do that for the payments they write, so only a long catch-up after a start (which commits
/// once per interval) and a rebuild (which commits nothing) get here: this bounds their
/// memory to a few tens of MiB.
pub(crate) const MAX_DECODED: usize = 8192;

/// A cheap, cloneable handle to the live projections.
#[derive(Debug, Clone)]
pub struct ProjectionsHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// A std lock: it is never held across an `.await`, and reads are short (clone a view).
    projections: RwLock<Projections>,
    /// A watch so that handlers can wait for "applied >= my write" (read-your-writes).
    applied: watch::Sender<Position>,
    /// Set once the follower has reached the head the log had when it started.
    caught_up: AtomicBool,
    /// The checkpoint last committed to the store.
    committed: AtomicU64,
    /// Entries changed since the last commit, as of the last apply.
    uncommitted: AtomicUsize,
    /// Held for a whole commit: two commits at once could write an older copy of an entry
    /// after a newer one.
    committing: Mutex<()>,
}

impl Default for ProjectionsHandle {
    fn default() -> Self {
        ProjectionsHandle::new(Projections::default())
    }
}

impl ProjectionsHandle {
    /// A handle over `projections` (empty, loaded or rebuilt).
    pub fn new(projections: Projections) -> ProjectionsHandle {
        let applied = projections.applied();
        let (sender, _) = watch::channel(applied);
        ProjectionsHandle {
            shared: Arc::new(Shared {
                projections: RwLock::new(projections),
                applied: sender,
                caught_up: AtomicBool::new(false),
                committed: AtomicU64::new(applied.0),
                uncommitted: AtomicUsize::new(0),
                committing: Mutex::new(()),
            }),
        }
    }

    /// The persisted projections of `store`, or empty ones when none can be used (the
    /// follower then rebuilds them from the log).
    pub fn open(store: &dyn EventStore) -> Result<ProjectionsHandle, ProjectionError> {
        match persist::load(store)? {
            Some(projections) => Ok(ProjectionsHandle::new(projections)),
            None => {
                store.projection_reset(persist::PROJECTION_NAME)?;
                Ok(ProjectionsHandle::default())
            }
        }
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, Projections> {
        // A poisoned lock means a panic while applying; the data is still the last complete
        // state of each entry, and refusing every read would turn one bug into an outage.
        self.shared
            .projections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, Projections> {
        self.shared
            .projections
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the projections as they are now. Keep `f` short: the follower waits.
    pub fn read<R>(&self, f: impl FnOnce(&Projections) -> R) -> R {
        f(&self.read_guard())
    }

    /// A copy of the projections as they are now (for comparisons).
    pub fn snapshot(&self) -> Projections {
        self.read_guard().clone()
    }

    /// Applies envelopes in log order and publishes the new applied position.
    pub fn apply(&self, envelopes: &[Envelope]) {
        let mut batch = Batch::with_capacity(envelopes.len());
        for envelope in envelopes {
            batch.push(&envelope.as_borrowed());
        }
        self.apply_batch(&batch);
    }

    /// Applies a batch in log order under one lock, and publishes the new applied position.
    pub(crate) fn apply_batch(&self, batch: &Batch) {
        self.apply_until(&mut batch.envelopes(), usize::MAX);
    }

    /// Applies envelopes in log order under one lock until `changes` entries are
    /// uncommitted (so that a commit can follow at once) or none is left; publishes the new
    /// applied position.
    pub(crate) fn apply_until<'a>(
        &self,
        envelopes: &mut impl Iterator<Item = BatchEnvelope<'a>>,
        changes: usize,
    ) {
        let applied = {
            let mut projections = self.write_guard();
            for envelope in envelopes.by_ref() {
                projections.apply_envelope(envelope);
                if projections.dirty.len() >= changes {
                    break;
                }
            }
            if projections.payments.decoded() > MAX_DECODED {
                projections.payments.compact_all();
            }
            self.shared
                .uncommitted
                .store(projections.dirty.len(), Ordering::Release);
            projections.applied()
        };
        self.shared.applied.send_replace(applied);
    }

    /// The position up to which every event has been applied.
    pub fn applied(&self) -> Position {
        *self.shared.applied.borrow()
    }

    /// Waits until the projections have applied `position`; `false` if `timeout` passed first.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let mut receiver = self.shared.applied.subscribe();
        tokio::time::timeout(timeout, receiver.wait_for(|applied| *applied >= position))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Whether the projections have caught up with the log (readiness).
    pub fn is_caught_up(&self) -> bool {
        self.shared.caught_up.load(Ordering::Acquire)
    }

    /// Records that the projections have caught up with the log.
    pub fn mark_caught_up(&self) {
        self.shared.caught_up.store(true, Ordering::Release);
    }

    /// How many entries have changed since the last commit (as of the last apply).
    pub fn uncommitted(&self) -> usize {
        self.shared.uncommitted.load(Ordering::Acquire)
    }

    /// The checkpoint last committed to the store.
    pub fn committed(&self) -> Position {
        Position(self.shared.committed.load(Ordering::Acquire))
    }

    /// Writes what changed since the last commit, then the checkpoint (see [`persist`] for
    /// why a crash in between is harmless). The lock is held only to copy the changed entries and, once durable, to keep the payments written
    /// in their compact stored form; never while encoding them or during the disk write.
    /// Blocks until the store has made the commit durable.
    pub fn commit(&self, store: &dyn EventStore) -> Result<Position, ProjectionError> {
        let _one_at_a_time = self
            .shared
            .committing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let pending = {
            let mut projections = self.write_guard();
            self.shared.uncommitted.store(0, Ordering::Release);
            persist::take_changes(&mut projections, self.committed())
        };
        let Some(pending) = pending else {
            return Ok(self.committed());
        };
        let checkpoint = pending.checkpoint;
        let dirty = pending.dirty.clone();
        let (ops, encoded) = pending.into_ops();
        match store.commit_projection_idempotent(
            persist::PROJECTION_NAME,
            checkpoint,
            ops.entries,
            ops.with_checkpoint,
        ) {
            Ok(()) => {
                self.shared.committed.store(checkpoint.0, Ordering::Release);
                persist::keep_encoded(&mut self.write_guard(), encoded);
                Ok(checkpoint)
            }
            Err(error) => {
                let mut projections = self.write_guard();
                persist::restore_changes(&mut projections, dirty);
                self.shared
                    .uncommitted
                    .store(projections.dirty.len(), Ordering::Release);
                Err(error.into())
            }
        }
    }
}
