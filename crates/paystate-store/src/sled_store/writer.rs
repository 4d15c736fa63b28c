//! The single writer: group commit of appends, imports, projection commits and side data.
//!
//! One thread owns every write. It blocks for the first request, takes every request already
//! queued behind it (up to `max_batch_events` events), decides the appends in arrival order,
//! writes the batch's chunks and then its index entries (see `indexes`), then makes everything
//! durable with one `flush` + `fdatasync`, and only then answers. If a write or a sync fails the writer stops
//! accepting writes for good: after a failed fsync the state of the file is unknown, and
//! answering later appends would acknowledge writes that might be lost.

use super::chunk::encode_chunks;
use super::disk_sync::DiskSync;
use super::head_record::HeadRecord;
use super::indexes::load_head;
use super::indexes::write_index_entries;
use super::layout::{
    position_key, projection_tree_name, side_tree_name, storage_error, Trees,
    PROJECTION_CHECKPOINT_KEY,
};
use super::lookup;
use super::recent::RecentEvents;
use super::stream_heads::{HeadCache, StreamHead};
use crate::error::StoreError;
use crate::event_store::KvOp;
use crate::sequencer::{BatchPlan, EventIds, LogIndex, PlannedWrites, Tail};
use crate::stats::StatCounters;
use crate::types::{
    AppendOutcome, Envelope, ExpectedVersion, NewEvent, Position, StreamId, StreamVersion,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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
    /// The latest durable envelopes, for readers right behind the head.
    pub recent: RecentEvents,
    pub stats: StatCounters,
    /// Set once a write or sync failed, or the log tail could not be read at open. From then
    /// on every write is refused: after a failed fsync the state of the file is unknown.
    pub broken: Mutex<Option<String>>,
    /// The latest durable head with its hash, for the head recorder (`head_record`); `None`
    /// while writes are refused.
    pub latest_head: Arc<Mutex<Option<HeadRecord>>>,
}

impl Shared {
    pub(crate) fn broken(&self) -> Option<String> {
        match self.broken.lock() {
            Ok(broken) => broken.clone(),
            Err(_) => Some("the writer panicked".into()),
        }
    }

    fn break_with(&self, path: &std::path::Path, reason: &str) {
        tracing::error!(path = %path.display(), %reason, "store write failed; refusing further writes");
        if let Ok(mut broken) = self.broken.lock() {
            broken.get_or_insert_with(|| reason.to_owned());
        }
        if let Ok(mut latest) = self.latest_head.lock() {
            *latest = None;
        }
    }
}

/// Writes decided batches into sled (not yet durable) and hands them to the [`Syncer`].
#[derive(Debug)]
pub(crate) struct Writer {
    pub path: PathBuf,
    pub trees: Trees,
    pub db: sled::Db,
    pub tail: Tail,
    pub shared: Arc<Shared>,
    pub max_batch_events: usize,
    pub ids: EventIds,
    /// The `stream_heads` entries of recently written streams; a miss reads the store.
    pub heads: HeadCache,
}

/// The entries in each generation of the writer's [`HeadCache`] (a few hundred bytes each).
pub(crate) const HEAD_CACHE_GENERATION: usize = 4_096;

/// Makes written batches durable with one flush + fdatasync for all that are waiting, then
/// answers them and moves the durable head.
#[derive(Debug)]
pub(crate) struct Syncer {
    pub path: PathBuf,
    pub db: sled::Db,
    pub disk: DiskSync,
    pub shared: Arc<Shared>,
    pub head: watch::Sender<Position>,
    /// The head recorder's stop signal and thread: stopped, and so the last head recorded,
    /// before a close is answered.
    pub recorder: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

/// The answer each request of a batch will get once the batch is durable.
#[derive(Debug)]
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

/// A batch written into sled, waiting to be made durable.
#[derive(Debug)]
pub(crate) struct Written {
    /// The log's last position once this batch is durable.
    head: Position,
    events: u64,
    appended: u64,
    /// What the batch appended, for [`RecentEvents`] once durable.
    envelopes: Vec<Envelope>,
    pending: Vec<Pending>,
    closes: Vec<Reply<Result<(), StoreError>>>,
}

impl Writer {
    /// Runs until the store closes or every handle to it is gone, then waits for the syncer
    /// to make the last batch durable.
    pub fn run(mut self, requests: mpsc::Receiver<Request>, syncer: Syncer) {
        let (written, to_sync) = mpsc::channel();
        let syncer = std::thread::Builder::new()
            .name("paystate-sync".into())
            .spawn(move || syncer.run(to_sync));
        let syncer = match syncer {
            Ok(handle) => handle,
            Err(error) => {
                self.shared.break_with(
                    &self.path,
                    &format!("cannot start the sync thread: {error}"),
                );
                // Without a syncer nothing can become durable: refuse everything.
                while let Ok(request) = requests.recv() {
                    refuse(request, "the store has no sync thread");
                }
                return;
            }
        };
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
            let batch = self.write(batch);
            let closing = !batch.closes.is_empty();
            if written.send(batch).is_err() || closing {
                break;
            }
        }
        drop(written);
        let _ = syncer.join();
    }

    /// Decides and writes one batch (not yet durable).
    fn write(&mut self, batch: Vec<Request>) -> Written {
        let mut pending = Vec::with_capacity(batch.len());
        let mut closes = Vec::new();
        let mut aux = Vec::new();
        let recorded_at = OffsetDateTime::now_utc();
        let index = SledIndex {
            trees: &self.trees,
            path: &self.path,
            cached: &self.heads,
            loaded: RefCell::new(HashMap::new()),
        };
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
                    let result = plan.append(&stream, expected, events, recorded_at, &mut self.ids);
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
        let mut writes = plan.into_writes();
        let mut written = Vec::new();
        // A stream found empty is cached as such, so writing its first events does not look
        // it up again.
        for (stream, head) in index.loaded.into_inner() {
            self.heads
                .put(stream, head.unwrap_or_else(StreamHead::empty));
        }

        if let Some(reason) = self.shared.broken() {
            pending.into_iter().for_each(|p| p.fail(&reason));
            for (_, reply) in aux {
                reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
            pending = Vec::new();
        } else if let Err(reason) = self.write_log(&writes) {
            self.shared.break_with(&self.path, &reason);
            pending.into_iter().for_each(|p| p.fail(&reason));
            for (_, reply) in aux {
                reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
            pending = Vec::new();
        } else {
            self.tail = tail;
            written = std::mem::take(&mut writes.envelopes);
            for (write, reply) in aux {
                pending.push(Pending::Unit(reply, self.write_aux(write)));
            }
        }
        Written {
            head: Position(self.tail.next.0 - 1),
            events: if pending.is_empty() { 0 } else { events },
            appended,
            envelopes: written,
            pending,
            closes,
        }
    }

    /// Writes a batch's chunks, then its index entries (see `indexes` for why a crash in
    /// between is safe).
    ///
    /// A chunk holds whole appends, so each chunk is inserted on its own: sled recovers a
    /// prefix of its log, so after a crash the log holds a prefix of the batch's appends, each
    /// complete (none of them was acknowledged). Only a batch holding an import spread over
    /// several chunks is written as one sled batch, which makes an import all or nothing. A
    /// sled batch costs more than the inserts: it holds sled's process-wide lock, stopping
    /// every reader, and writes out sled's current I/O buffer twice, waking all of sled's I/O
    /// threads each time.
    fn write_log(&mut self, writes: &PlannedWrites) -> Result<(), String> {
        if writes.envelopes.is_empty() {
            return Ok(());
        }
        let chunks = encode_chunks(&writes.envelopes, &writes.units).map_err(|e| e.to_string())?;
        let import = writes.units.iter().any(|unit| unit.import);
        let written = if import && chunks.len() > 1 {
            let mut batch = sled::Batch::default();
            for (last, chunk) in chunks {
                batch.insert(&last.to_be_bytes(), chunk);
            }
            self.trees.events.apply_batch(batch)
        } else {
            chunks.into_iter().try_for_each(|(last, chunk)| {
                self.trees
                    .events
                    .insert(last.to_be_bytes(), chunk)
                    .map(|_| ())
            })
        };
        written.map_err(|e| format!("writing the log failed: {e}"))?;
        write_index_entries(&self.trees, &self.path, &writes.envelopes, &mut self.heads)
            .map_err(|e| format!("writing the log's indexes failed: {e}"))
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
                // State and checkpoint in one tree, so one sled batch (atomic on recovery)
                // carries both: no transaction, which would read every key it writes.
                let tree = open(projection_tree_name(&name))?;
                let mut batch = sled::Batch::default();
                for op in ops {
                    match op {
                        KvOp::Put { key, value } => batch.insert(key, value),
                        KvOp::Delete { key } => batch.remove(key),
                    }
                }
                batch.insert(PROJECTION_CHECKPOINT_KEY, &position_key(checkpoint));
                // Appends queued meanwhile wait behind this write: worth watching.
                let started = std::time::Instant::now();
                let written = tree.apply_batch(batch);
                metrics::histogram!("paystate_store_projection_write_seconds")
                    .record(started.elapsed().as_secs_f64());
                written
                    .map_err(|e| StoreError::Unavailable(format!("projection commit failed: {e}")))
            }
            AuxWrite::ProjectionReset { name } => {
                // The checkpoints go first: a state without a checkpoint is no state (loading
                // it finds none and resets again), so a crash in the middle of the removals
                // below leaves nothing anyone would read. sled recovers a prefix of its log,
                // so no removal below survives a crash that the checkpoints' removal does not.
                // The format 2 checkpoint goes before the projection's own, which a reader
                // prefers: a crash between the two never exposes the older one.
                // One transaction over every key instead held them all in memory at once.
                let tree = open(projection_tree_name(&name))?;
                let storage = |e| storage_error(&self.path, e);
                self.trees
                    .checkpoints
                    .remove(name.as_bytes())
                    .map_err(storage)?;
                tree.remove(PROJECTION_CHECKPOINT_KEY).map_err(storage)?;
                tree.clear().map_err(storage)
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

impl Syncer {
    fn run(mut self, batches: mpsc::Receiver<Written>) {
        while let Ok(first) = batches.recv() {
            let mut waiting = vec![first];
            waiting.extend(batches.try_iter());
            if self.sync(waiting) {
                return;
            }
        }
        // Every handle is gone: make what was written durable before the database closes.
        if self.shared.broken().is_none() {
            let _ = self.flush();
        }
        self.stop_recorder();
    }

    /// Stops the head recorder, which records the last durable head first.
    fn stop_recorder(&mut self) {
        if let Some((stop, handle)) = self.recorder.take() {
            drop(stop);
            let _ = handle.join();
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        self.db.flush().map_err(|e| format!("flush failed: {e}"))?;
        self.disk.sync().map_err(|e| format!("fsync failed: {e}"))
    }

    /// One flush + fdatasync for every batch waiting; returns true if the store closes.
    fn sync(&mut self, mut waiting: Vec<Written>) -> bool {
        let closing = waiting.iter().any(|batch| !batch.closes.is_empty());
        let broken = match self.shared.broken() {
            Some(reason) => Some(reason),
            None => self.flush().err().inspect(|reason| {
                self.shared.break_with(&self.path, reason);
            }),
        };
        if let Some(reason) = broken {
            if closing {
                self.stop_recorder();
            }
            for batch in waiting {
                batch.pending.into_iter().for_each(|p| p.fail(&reason));
                batch
                    .closes
                    .into_iter()
                    .for_each(|reply| reply.send(Ok(())));
            }
            return closing;
        }
        // Batches arrive in log order, so the last one holds the new head. The head moves
        // before anyone is answered, so an appender can read its own write at once; the
        // recent events are in place before the head lets readers ask for them.
        let newest = waiting
            .iter()
            .rev()
            .find_map(|batch| batch.envelopes.last())
            .map(|envelope| HeadRecord {
                position: envelope.position,
                hash: envelope.hash,
            });
        if let (Some(newest), Ok(mut latest)) = (newest, self.shared.latest_head.lock()) {
            if self.shared.broken().is_none() {
                *latest = Some(newest);
            }
        }
        for batch in &mut waiting {
            self.shared
                .recent
                .push(std::mem::take(&mut batch.envelopes));
        }
        if let Some(head) = waiting.last().map(|batch| batch.head) {
            if head.0 > self.shared.durable_head.load(Ordering::Acquire) {
                self.shared.durable_head.store(head.0, Ordering::Release);
                self.head.send_replace(head);
                metrics::gauge!("paystate_store_head_position").set(head.0 as f64);
            }
        }
        if closing {
            self.stop_recorder();
        }
        let appended = waiting.iter().map(|batch| batch.appended).sum();
        let events = waiting.iter().map(|batch| batch.events).sum();
        if events > 0 {
            self.shared.stats.record_commit(appended, events);
        }
        for batch in waiting {
            batch.pending.into_iter().for_each(Pending::answer);
            batch
                .closes
                .into_iter()
                .for_each(|reply| reply.send(Ok(())));
        }
        closing
    }
}

fn refuse(request: Request, reason: &str) {
    let unavailable = || StoreError::Unavailable(reason.to_owned());
    match request {
        Request::Append { reply, .. } => reply.send(Err(unavailable())),
        Request::Import { reply, .. } | Request::Aux { reply, .. } | Request::Close { reply } => {
            reply.send(Err(unavailable()))
        }
    }
}

/// The writer's view of the stored indexes: everything written so far, durable or not.
struct SledIndex<'t> {
    trees: &'t Trees,
    path: &'t Path,
    cached: &'t HeadCache,
    /// Entries read from the store while deciding this batch (`None`: the stream is empty).
    loaded: RefCell<HashMap<StreamId, Option<StreamHead>>>,
}

impl SledIndex<'_> {
    fn with_head<R>(
        &self,
        stream: &StreamId,
        read: impl FnOnce(Option<&StreamHead>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if let Some(head) = self.cached.get(stream) {
            return read(Some(head));
        }
        if let Some(head) = self.loaded.borrow().get(stream) {
            return read(head.as_ref());
        }
        let head = load_head(self.trees, self.path, stream)?;
        let answer = read(head.as_ref());
        self.loaded.borrow_mut().insert(stream.clone(), head);
        answer
    }
}

impl LogIndex for SledIndex<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        self.with_head(stream, |head| {
            Ok(StreamVersion(head.map_or(0, StreamHead::last_version)))
        })
    }

    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError> {
        self.with_head(stream, |head| match head {
            Some(head) => lookup::dedupe_position(
                self.trees,
                self.path,
                stream,
                head,
                dedupe_key,
                Position(u64::MAX),
            ),
            None => Ok(None),
        })
    }
}
