//! The single writer: group commit of appends, imports, projection commits and side data.
//!
//! One thread owns every write. It blocks for the first request, takes every request already
//! queued behind it (up to `max_batch_events` events), decides the appends in arrival order,
//! writes the log trees in one sled transaction, then makes everything durable with one
//! `flush` + `fdatasync`, and only then answers. If a write or a sync fails the writer stops
//! accepting writes for good: after a failed fsync the state of the file is unknown, and
//! answering later appends would acknowledge writes that might be lost.

use super::chunk::encode_chunks;
use super::disk_sync::DiskSync;
use super::layout::{
    position_key, projection_tree_name, run_value, side_tree_name, storage_error, stream_index_key,
    stream_prefix, Run, Trees,
};
use crate::error::StoreError;
use crate::event_store::KvOp;
use crate::sequencer::{BatchPlan, LogIndex, PlannedWrites, Tail};
use crate::stats::StatCounters;
use crate::types::{
    AppendOutcome, Envelope, ExpectedVersion, NewEvent, Position, StreamId, StreamVersion,
};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

/// Where an answer goes: an async appender awaiting a oneshot, or a blocking caller.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Async(oneshot::Sender<T>),
    Blocking(mpsc::SyncSender<T>),
}

impl<T> Reply<T> {
    fn send(self, value: T) {
        // The caller may have given up waiting (a dropped future); nothing to do then.
        match self {
            Reply::Async(sender) => {
                let _ = sender.send(value);
            }
            Reply::Blocking(sender) => {
                let _ = sender.send(value);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum Request {
    Append {
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        reply: Reply<Result<AppendOutcome, StoreError>>,
    },
    Import {
        envelopes: Vec<Envelope>,
        reply: Reply<Result<(), StoreError>>,
    },
    /// A write outside the log (projection state, side data), applied in the same group commit.
    Aux {
        write: AuxWrite,
        reply: Reply<Result<(), StoreError>>,
    },
    Close {
        reply: Reply<Result<(), StoreError>>,
    },
}

impl Request {
    fn weight(&self) -> usize {
        match self {
            Request::Append { events, .. } => events.len().max(1),
            Request::Import { envelopes, .. } => envelopes.len().max(1),
            Request::Aux { .. } | Request::Close { .. } => 1,
        }
    }
}

#[derive(Debug)]
pub(crate) enum AuxWrite {
    Projection {
        name: String,
        checkpoint: Position,
        ops: Vec<KvOp>,
    },
    ProjectionReset {
        name: String,
    },
    SidePut {
        namespace: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
}

/// State the writer shares with readers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The last position known to be on disk; readers never look past it.
    pub durable_head: AtomicU64,
    pub stats: StatCounters,
}

#[derive(Debug)]
pub(crate) struct Writer {
    pub path: PathBuf,
    pub db: sled::Db,
    pub trees: Trees,
    pub disk: DiskSync,
    pub tail: Tail,
    pub shared: Arc<Shared>,
    pub head: watch::Sender<Position>,
    pub max_batch_events: usize,
    /// Set once a write or sync failed, or the log tail could not be read at open.
    pub broken: Option<String>,
}

/// The answer each request of a batch will get once the batch is durable.
enum Pending {
    Append(
        Reply<Result<AppendOutcome, StoreError>>,
        Result<AppendOutcome, StoreError>,
    ),
    Unit(Reply<Result<(), StoreError>>, Result<(), StoreError>),
}

impl Pending {
    fn fail(self, error: &str) {
        let unavailable = || StoreError::Unavailable(error.to_owned());
        match self {
            Pending::Append(reply, _) => reply.send(Err(unavailable())),
            Pending::Unit(reply, _) => reply.send(Err(unavailable())),
        }
    }

    fn answer(self) {
        match self {
            Pending::Append(reply, result) => reply.send(result),
            Pending::Unit(reply, result) => reply.send(result),
        }
    }
}

impl Writer {
    /// Runs until the store closes or every handle to it is gone.
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut weight = first.weight();
            let mut batch = vec![first];
            while weight < self.max_batch_events {
                match requests.try_recv() {
                    Ok(request) => {
                        weight += request.weight();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            if self.commit(batch) {
                return;
            }
        }
        // Every handle is gone: make what was written durable before the database closes.
        if self.broken.is_none() {
            let _ = self.flush();
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        self.db.flush().map_err(|e| format!("flush failed: {e}"))?;
        self.disk.sync().map_err(|e| format!("fsync failed: {e}"))
    }

    /// Decides, writes and syncs one batch, then answers it. Returns true if the store closes.
    fn commit(&mut self, batch: Vec<Request>) -> bool {
        let mut pending = Vec::with_capacity(batch.len());
        let mut closes = Vec::new();
        let mut aux = Vec::new();
        let recorded_at = OffsetDateTime::now_utc();
        let index = SledIndex { trees: &self.trees };
        let mut plan = BatchPlan::new(&index, self.tail);
        let mut appended = 0u64;
        for request in batch {
            match request {
                Request::Append {
                    stream,
                    expected,
                    events,
                    reply,
                } => {
                    let result = plan.append(&stream, expected, events, recorded_at);
                    if matches!(result, Ok(AppendOutcome::Appended { .. })) {
                        appended += 1;
                    }
                    pending.push(Pending::Append(reply, result));
                }
                Request::Import { envelopes, reply } => {
                    pending.push(Pending::Unit(reply, plan.import(envelopes)));
                }
                Request::Aux { write, reply } => aux.push((write, reply)),
                Request::Close { reply } => closes.push(reply),
            }
        }
        let tail = plan.tail();
        let events = plan.event_count() as u64;
        let writes = plan.into_writes();

        if let Some(reason) = self.broken.clone() {
            pending.into_iter().for_each(|p| p.fail(&reason));
            aux.into_iter()
                .for_each(|(_, reply)| reply.send(Err(StoreError::Unavailable(reason.clone()))));
        } else {
            let outcome = self.write_log(&writes).map(|()| {
                aux.into_iter()
                    .map(|(write, reply)| (self.write_aux(write), reply))
                    .collect::<Vec<_>>()
            });
            let outcome = outcome.and_then(|aux_results| {
                self.flush()?;
                Ok(aux_results)
            });
            match outcome {
                Ok(aux_results) => {
                    self.tail = tail;
                    let head = Position(tail.next.0 - 1);
                    self.shared.durable_head.store(head.0, Ordering::Release);
                    if events > 0 {
                        self.shared.stats.record_commit(appended, events);
                        self.head.send_replace(head);
                        metrics::gauge!("paystate_store_head_position").set(head.0 as f64);
                    }
                    pending.into_iter().for_each(Pending::answer);
                    aux_results
                        .into_iter()
                        .for_each(|(result, reply)| reply.send(result));
                }
                Err(reason) => {
                    tracing::error!(path = %self.path.display(), %reason, "store write failed; refusing further writes");
                    self.broken = Some(reason.clone());
                    pending.into_iter().for_each(|p| p.fail(&reason));
                }
            }
        }
        let closing = !closes.is_empty();
        for reply in closes {
            reply.send(Ok(()));
        }
        closing
    }

    /// Writes a batch's chunks and indexes in one sled transaction (atomic across trees).
    fn write_log(&self, writes: &PlannedWrites) -> Result<(), String> {
        if writes.envelopes.is_empty() {
            return Ok(());
        }
        let chunks = encode_chunks(&writes.envelopes).map_err(|e| e.to_string())?;
        let runs = stream_runs(&writes.envelopes);
        let trees = &self.trees;
        let result: Result<(), TransactionError<()>> =
            (&trees.events, &trees.stream_index, &trees.dedupe).transaction(
                |(events, stream_index, dedupe)| {
                    for (last, chunk) in &chunks {
                        events.insert(&last.to_be_bytes(), chunk.as_slice())?;
                    }
                    for (key, value) in &runs {
                        stream_index.insert(key.as_slice(), value)?;
                    }
                    for (key, position) in &writes.dedupe {
                        dedupe.insert(key.as_bytes(), &position_key(*position))?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        result.map_err(|e| format!("writing the log failed: {e:?}"))
    }

    /// Applies one projection or side-data write. Invalid requests are answered with an
    /// error; a storage failure breaks the writer like any other.
    fn write_aux(&self, write: AuxWrite) -> Result<(), StoreError> {
        let open = |name: String| {
            self.db
                .open_tree(name)
                .map_err(|e| storage_error(&self.path, e))
        };
        match write {
            AuxWrite::Projection {
                name,
                checkpoint,
                ops,
            } => {
                let tree = open(projection_tree_name(&name))?;
                let result: Result<(), TransactionError<()>> = (&tree, &self.trees.checkpoints)
                    .transaction(|(state, checkpoints)| {
                        for op in &ops {
                            match op {
                                KvOp::Put { key, value } => {
                                    state.insert(key.as_slice(), value.as_slice())?;
                                }
                                KvOp::Delete { key } => {
                                    state.remove(key.as_slice())?;
                                }
                            }
                        }
                        checkpoints.insert(name.as_bytes(), &position_key(checkpoint))?;
                        Ok::<(), ConflictableTransactionError<()>>(())
                    });
                result.map_err(|e| {
                    StoreError::Unavailable(format!("projection commit failed: {e:?}"))
                })
            }
            AuxWrite::ProjectionReset { name } => {
                let tree = open(projection_tree_name(&name))?;
                let keys: Vec<sled::IVec> = tree
                    .iter()
                    .keys()
                    .collect::<Result<_, _>>()
                    .map_err(|e| storage_error(&self.path, e))?;
                let result: Result<(), TransactionError<()>> = (&tree, &self.trees.checkpoints)
                    .transaction(|(state, checkpoints)| {
                        for key in &keys {
                            state.remove(key)?;
                        }
                        checkpoints.remove(name.as_bytes())?;
                        Ok::<(), ConflictableTransactionError<()>>(())
                    });
                result
                    .map_err(|e| StoreError::Unavailable(format!("projection reset failed: {e:?}")))
            }
            AuxWrite::SidePut {
                namespace,
                key,
                value,
            } => open(side_tree_name(&namespace))?
                .insert(key, value)
                .map(|_| ())
                .map_err(|e| storage_error(&self.path, e)),
        }
    }
}

/// The stream index entries for a batch: one per stretch of consecutive envelopes of one
/// stream whose versions and positions both advance by one.
fn stream_runs(envelopes: &[Envelope]) -> Vec<(Vec<u8>, [u8; 16])> {
    let mut runs = Vec::new();
    let mut index = 0;
    while let Some(first) = envelopes.get(index) {
        let mut last = first;
        for next in &envelopes[index + 1..] {
            let continues = next.stream == first.stream
                && next.stream_version.0 == last.stream_version.0 + 1
                && next.position.0 == last.position.0 + 1;
            if !continues {
                break;
            }
            last = next;
        }
        runs.push((
            stream_index_key(&first.stream, last.stream_version),
            run_value(first.stream_version, first.position),
        ));
        index += (last.position.0 - first.position.0) as usize + 1;
    }
    runs
}

/// The writer's view of the stored indexes.
struct SledIndex<'t> {
    trees: &'t Trees,
}

impl LogIndex for SledIndex<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        let prefix = stream_prefix(stream);
        let last = self
            .trees
            .stream_index
            .get_lt(stream_index_key(stream, StreamVersion(u64::MAX)))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match last {
            Some((key, value)) if key.starts_with(&prefix) => Ok(StreamVersion(
                Run::parse(prefix.len(), &key, &value)?.last_version,
            )),
            _ => Ok(StreamVersion(0)),
        }
    }

    fn dedupe_position(&self, dedupe_key: &str) -> Result<Option<Position>, StoreError> {
        self.trees
            .dedupe
            .get(dedupe_key.as_bytes())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map(|value| super::layout::be_u64(&value, 0, "a dedupe entry").map(Position))
            .transpose()
    }
}
