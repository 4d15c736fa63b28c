//! Replay: rebuilding every projection from the log with the projection engine, against the
//! read ceiling, a raw iteration over the same sled tree that decodes nothing (its rate is the
//! log's events divided by the time to read every entry of the tree).

use crate::error::BenchError;
use paystate_store::{EventStore, SledStore};
use std::path::Path;
use std::time::Instant;

/// What a replay measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayReport {
    /// Events in the log.
    pub events: u64,
    /// Payments the rebuilt projections hold.
    pub payments: usize,
    /// Seconds to rebuild every projection from position 1 (store open excluded).
    pub rebuild_seconds: f64,
    /// Seconds to iterate over every entry of the events tree, touching each value.
    pub raw_seconds: f64,
    /// Entries of the events tree (the store packs the records of one commit into one
    /// entry) and their bytes.
    pub raw_entries: u64,
    pub raw_bytes: u64,
}

impl ReplayReport {
    pub fn rebuild_events_per_second(&self) -> f64 {
        self.events as f64 / self.rebuild_seconds
    }

    pub fn raw_events_per_second(&self) -> f64 {
        self.events as f64 / self.raw_seconds
    }
}

/// Replays the store in `store_dir` (no server may have it open): first the projection
/// rebuild, then the raw iteration, each on a freshly opened database.
pub fn replay(store_dir: &Path) -> Result<ReplayReport, BenchError> {
    let store_error = |source| BenchError::Store {
        path: store_dir.to_path_buf(),
        source,
    };
    let (events, payments, rebuild_seconds) = {
        let store = SledStore::open(store_dir).map_err(store_error)?;
        let events = store.head().map_err(store_error)?.0;
        let started = Instant::now();
        let projections = paystate_projections::rebuild(&store)?;
        let rebuild_seconds = started.elapsed().as_secs_f64();
        (events, projections.payment_count(), rebuild_seconds)
    };

    let db = sled::Config::new()
        .path(store_dir)
        .open()
        .map_err(|error| BenchError::Setup(format!("opening {}: {error}", store_dir.display())))?;
    let tree = db
        .open_tree(SledStore::EVENTS_TREE)
        .map_err(|error| BenchError::Setup(format!("opening the events tree: {error}")))?;
    let started = Instant::now();
    let mut raw_entries = 0u64;
    let mut raw_bytes = 0u64;
    for entry in tree.iter() {
        let (key, value) = entry
            .map_err(|error| BenchError::Setup(format!("iterating the events tree: {error}")))?;
        raw_entries += 1;
        raw_bytes += (key.len() + value.len()) as u64;
        std::hint::black_box(&value);
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    Ok(ReplayReport {
        events,
        payments,
        rebuild_seconds,
        raw_seconds,
        raw_entries,
        raw_bytes,
    })
}
