//! Counters of the write path, for benchmarks and operations.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Group commits that wrote at least one event (each is one flush + fsync).
    pub commits: u64,
    /// Appends acknowledged as `Appended`.
    pub appends: u64,
    /// Events made durable by appends and imports.
    pub events: u64,
}

impl StoreStats {
    /// The mean number of appends that shared one flush.
    pub fn mean_appends_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.appends as f64 / self.commits as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct StatCounters {
    commits: AtomicU64,
    appends: AtomicU64,
    events: AtomicU64,
}

impl StatCounters {
    pub fn record_commit(&self, appends: u64, events: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.appends.fetch_add(appends, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        metrics::histogram!("paystate_store_batch_events").record(events as f64);
    }

    pub fn snapshot(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }
}
