//! [`MemoryStore`]: the contract kept in memory, for tests and tools that need no disk.
//!
//! Records are kept in their stored encoding, so reads, upcasting and `verify` run the same
//! code as on disk. One mutex serializes writes; an append is "durable" as soon as it returns.

use crate::codec::{chain_fault, decode_record, decode_record_ref, encode_record, GENESIS_HASH};
use crate::error::StoreError;
use crate::event_store::{EventStore, KvOp, KvPairs};
use crate::options::StoreOptions;
use crate::sequencer::{BatchPlan, EventIds, LogIndex, Tail};
use crate::stats::{StatCounters, StoreStats};
use crate::types::{
    AppendOutcome, Envelope, ExpectedVersion, NewEvent, Position, StreamId, StreamVersion,
    VerifyReport,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use time::OffsetDateTime;
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Projection {
    checkpoint: Option<Position>,
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

#[derive(Debug)]
struct State {
    /// Stored records; the record at position `p` is at index `p - 1`.
    records: Vec<Vec<u8>>,
    tail: Tail,
    /// The positions of each stream's events; version `v` is at index `v - 1`.
    streams: HashMap<StreamId, Vec<Position>>,
    /// The dedupe keys taken, per stream.
    dedupe: HashMap<StreamId, HashMap<String, Position>>,
    projections: HashMap<String, Projection>,
    side: HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
    closed: bool,
}

impl LogIndex for State {
    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        Ok(StreamVersion(
            self.streams
                .get(stream)
                .map_or(0, |positions| positions.len() as u64),
        ))
    }

    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError> {
        Ok(self
            .dedupe
            .get(stream)
            .and_then(|keys| keys.get(dedupe_key))
            .copied())
    }
}

impl State {
    fn record(&self, position: Position) -> Option<&Vec<u8>> {
        let index = usize::try_from(position.0.checked_sub(1)?).ok()?;
        self.records.get(index)
    }

    fn commit(&mut self, plan_tail: Tail, envelopes: Vec<Envelope>) -> Result<(), StoreError> {
        let mut encoded = Vec::with_capacity(envelopes.len());
        for envelope in &envelopes {
            encoded.push(encode_record(envelope)?);
        }
        for envelope in envelopes {
            if let Some(key) = envelope.dedupe_key {
                self.dedupe
                    .entry(envelope.stream.clone())
                    .or_default()
                    .insert(key, envelope.position);
            }
            self.streams
                .entry(envelope.stream)
                .or_default()
                .push(envelope.position);
        }
        self.records.extend(encoded);
        self.tail = plan_tail;
        Ok(())
    }

    fn head(&self) -> Position {
        Position(self.records.len() as u64)
    }
}

/// The in-memory [`EventStore`].
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Locked only while `state` is held, so never contended.
    ids: Mutex<EventIds>,
    head: watch::Sender<Position>,
    options: StoreOptions,
    stats: StatCounters,
    /// See [`EventStore::side_writes`].
    side_writes: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::with_options(StoreOptions::default())
    }

    pub fn with_options(options: StoreOptions) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(State {
                records: Vec::new(),
                tail: Tail {
                    next: Position(1),
                    last_hash: GENESIS_HASH,
                },
                streams: HashMap::new(),
                dedupe: HashMap::new(),
                projections: HashMap::new(),
                side: HashMap::new(),
                closed: false,
            }),
            ids: Mutex::new(EventIds::new()),
            head: watch::channel(Position::START).0,
            options,
            stats: StatCounters::default(),
            side_writes: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> StoreStats {
        self.stats.snapshot()
    }

    /// Flips the bits of one byte of a stored record, as a failing disk would. Exists so the
    /// conformance suite can prove that `verify` finds damage; never use it otherwise.
    #[doc(hidden)]
    pub fn damage_record_for_tests(&self, position: Position, byte: usize) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let Some(index) = position
            .0
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false;
        };
        match state
            .records
            .get_mut(index)
            .and_then(|record| record.get_mut(byte))
        {
            Some(value) => {
                *value ^= 0xFF;
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        // A poisoned lock means a writer panicked mid-update; the state may be half-written,
        // so refuse rather than serve it.
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("the in-memory store was poisoned".into()))
    }

    fn open_for_writes(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock()?;
        if state.closed {
            return Err(StoreError::Closed);
        }
        Ok(state)
    }

    fn decode(&self, position: Position, bytes: &[u8], raw: bool) -> Result<Envelope, StoreError> {
        let envelope = decode_record(position.0, bytes)?;
        if raw || self.options.upcasters.is_empty() {
            Ok(envelope)
        } else {
            self.options.upcasters.upcast(envelope)
        }
    }

    fn read_range(
        &self,
        after: Position,
        limit: usize,
        raw: bool,
    ) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock()?;
        let start = usize::try_from(after.0).unwrap_or(usize::MAX);
        let records = state.records.get(start..).unwrap_or_default();
        records
            .iter()
            .take(limit)
            .enumerate()
            .map(|(offset, bytes)| self.decode(Position(after.0 + 1 + offset as u64), bytes, raw))
            .collect()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let started = Instant::now();
        let head = {
            let mut state = self.open_for_writes()?;
            let mut ids = self
                .ids
                .lock()
                .map_err(|_| StoreError::Unavailable("the in-memory store was poisoned".into()))?;
            let mut plan = BatchPlan::new(&*state, state.tail);
            let outcome = plan.append(
                stream,
                expected,
                events,
                OffsetDateTime::now_utc(),
                &mut ids,
            )?;
            let tail = plan.tail();
            let count = plan.event_count() as u64;
            let writes = plan.into_writes();
            if count > 0 {
                state.commit(tail, writes.envelopes)?;
                self.stats.record_commit(1, count);
            }
            if !matches!(outcome, AppendOutcome::Appended { .. }) {
                return Ok(outcome);
            }
            (state.head(), outcome)
        };
        let (head, outcome) = head;
        self.head.send_replace(head);
        metrics::gauge!("paystate_store_head_position").set(head.0 as f64);
        metrics::histogram!("paystate_store_append_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    fn head(&self) -> Result<Position, StoreError> {
        Ok(self.lock()?.head())
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }

    fn read_all(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.read_range(after, limit, false)
    }

    fn read_all_raw(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.read_range(after, limit, true)
    }

    fn read_event(&self, position: Position) -> Result<Option<Envelope>, StoreError> {
        let state = self.lock()?;
        state
            .record(position)
            .map(|bytes| self.decode(position, bytes, false))
            .transpose()
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let state = self.lock()?;
        let Some(positions) = state.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(after.0).unwrap_or(usize::MAX);
        positions
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take(limit)
            .map(|position| {
                let bytes = state.record(*position).ok_or_else(|| StoreError::Corrupt {
                    position: position.0,
                    reason: "indexed by its stream but missing from the log".into(),
                })?;
                self.decode(*position, bytes, false)
            })
            .collect()
    }

    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.lock()?.stream_version(stream)
    }

    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError> {
        self.lock()?.dedupe_position(stream, dedupe_key)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let state = self.lock()?;
        let mut report = VerifyReport {
            events: 0,
            head: state.head(),
            head_hash: GENESIS_HASH,
            first_bad: None,
        };
        for (index, bytes) in state.records.iter().enumerate() {
            let position = Position(index as u64 + 1);
            let fault = match decode_record_ref(position.0, bytes) {
                Err(error) => Some(error.to_string()),
                Ok(envelope) => chain_fault(&envelope, position, &report.head_hash).or_else(|| {
                    report.head_hash = *envelope.hash;
                    None
                }),
            };
            if let Some(reason) = fault {
                report.first_bad = Some((position, reason));
                break;
            }
            report.events += 1;
        }
        Ok(report)
    }

    async fn import(&self, envelopes: Vec<Envelope>) -> Result<(), StoreError> {
        let head = {
            let mut state = self.open_for_writes()?;
            let mut plan = BatchPlan::new(&*state, state.tail);
            plan.import(envelopes)?;
            let tail = plan.tail();
            let count = plan.event_count() as u64;
            let writes = plan.into_writes();
            state.commit(tail, writes.envelopes)?;
            self.stats.record_commit(0, count);
            state.head()
        };
        self.head.send_replace(head);
        Ok(())
    }

    fn commit_projection(
        &self,
        projection: &str,
        checkpoint: Position,
        ops: Vec<KvOp>,
    ) -> Result<(), StoreError> {
        crate::names::check("projection", projection)?;
        let mut state = self.open_for_writes()?;
        let entry = state.projections.entry(projection.to_owned()).or_default();
        for op in ops {
            match op {
                KvOp::Put { key, value } => {
                    entry.entries.insert(key, value);
                }
                KvOp::Delete { key } => {
                    entry.entries.remove(&key);
                }
            }
        }
        entry.checkpoint = Some(checkpoint);
        Ok(())
    }

    fn projection_checkpoint(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        Ok(self
            .lock()?
            .projections
            .get(projection)
            .and_then(|p| p.checkpoint))
    }

    fn projection_get(&self, projection: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()?
            .projections
            .get(projection)
            .and_then(|p| p.entries.get(key).cloned()))
    }

    fn projection_scan(&self, projection: &str, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        let state = self.lock()?;
        Ok(state
            .projections
            .get(projection)
            .map(|p| scan_prefix(&p.entries, prefix))
            .unwrap_or_default())
    }

    fn projection_reset(&self, projection: &str) -> Result<(), StoreError> {
        self.open_for_writes()?.projections.remove(projection);
        Ok(())
    }

    fn side_put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        crate::names::check("side namespace", namespace)?;
        let written = self.open_for_writes().map(|mut state| {
            state
                .side
                .entry(namespace.to_owned())
                .or_default()
                .insert(key.to_vec(), value.to_vec());
        });
        self.side_writes.fetch_add(1, Ordering::AcqRel);
        written
    }

    fn side_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()?
            .side
            .get(namespace)
            .and_then(|entries| entries.get(key).cloned()))
    }

    fn side_scan(&self, namespace: &str, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        Ok(self
            .lock()?
            .side
            .get(namespace)
            .map(|entries| scan_prefix(entries, prefix))
            .unwrap_or_default())
    }

    fn side_writes(&self) -> u64 {
        self.side_writes.load(Ordering::Acquire)
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.lock()?.closed = true;
        Ok(())
    }
}

fn scan_prefix(entries: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8]) -> KvPairs {
    entries
        .range(prefix.to_vec()..)
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}
