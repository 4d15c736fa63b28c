//! [`SledStore`]: the durable, embedded [`EventStore`] on sled 0.34.
//!
//! - `layout`: tree names, key encodings, recognising a store directory.
//! - `chunk`: the records of one commit packed into one sled value.
//! - `writer`: the single writer thread and its group commit.
//! - `stream_heads`: one entry per stream: its version, and while it is short its runs and
//!   dedupe hashes.
//! - `indexes`: a batch's index entries, completed on open after a crash.
//! - `lookup`: a stream's runs and dedupe keys, from its entry or the index trees.
//! - `recent`: the latest durable envelopes, for readers right behind the head.
//! - `disk_sync`: the fsync that follows every sled flush.
//!
//! Reads go straight to sled from the caller's thread and never look past the durable head,
//! so nothing a reader sees can disappear in a crash.

mod chunk;
mod disk_sync;
mod head_record;
mod indexes;
mod layout;
mod lookup;
mod recent;
mod stream_heads;
#[cfg(test)]
mod test_envelopes;
mod writer;

pub use layout::FORMAT_VERSION;

use crate::codec::{chain_fault, decode_record, decode_record_ref, GENESIS_HASH};
use crate::error::StoreError;
use crate::event_store::{EventStore, KvOp, KvPairs};
use crate::options::StoreOptions;
use crate::sequencer::{EventIds, Tail};
use crate::stats::{StatCounters, StoreStats};
use crate::types::{
    AppendOutcome, Envelope, EnvelopeRef, ExpectedVersion, NewEvent, Position, StreamId,
    StreamVersion, VerifyReport,
};
use async_trait::async_trait;
use chunk::Chunk;
use disk_sync::DiskSync;
use head_record::HeadRecord;
use layout::{
    be_u64, projection_tree_name, side_tree_name, storage_error, Run, Trees,
    PROJECTION_CHECKPOINT_KEY,
};
use recent::RecentEvents;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{oneshot, watch};
use writer::{AuxWrite, Reply, Request, Shared, Syncer, Writer};

/// The sled-backed [`EventStore`]. Open one per directory; sled's file lock keeps a second
/// process out ([`StoreError::Locked`]).
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    trees: Trees,
    /// Unbounded on purpose: every appender waits for its own answer, so the queue never holds
    /// more than one request per concurrent caller.
    requests: Option<mpsc::Sender<Request>>,
    /// Joined on drop so the directory is unlocked once the store is gone.
    writer: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    head: watch::Receiver<Position>,
    options: StoreOptions,
    /// See [`EventStore::side_writes`].
    side_writes: AtomicU64,
}

impl SledStore {
    /// The name of the sled tree that holds the records, keyed by big-endian position.
    pub const EVENTS_TREE: &'static str = layout::EVENTS_TREE;

    /// Opens (or creates) the store in `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with(path, StoreOptions::default())
    }

    /// As [`SledStore::open_with`], waiting up to `wait` for a lock held by a store that is
    /// closing. sled lets go of a directory's lock from its own threads a moment after the last
    /// handle is dropped, and a child process forked meanwhile holds it until it runs its
    /// program: an open right after a close may find it still taken. After `wait` the answer
    /// is [`StoreError::Locked`], as it is at once from `open_with`.
    pub fn open_within(
        path: impl AsRef<Path>,
        options: StoreOptions,
        wait: std::time::Duration,
    ) -> Result<SledStore, StoreError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match SledStore::open_with(path.as_ref(), options.clone()) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => return opened,
            }
        }
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = layout::open_database(&path, options.cache_capacity_bytes)?;
        let trees = Trees::open(&db, &path)?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let disk = DiskSync::open(&path).map_err(io)?;

        // Recovery is sled's: after a crash it replays its log up to the last complete write.
        // All the store needs is the tail. A tail it cannot read leaves the store readable
        // (so `verify` can name the damage) but refusing writes.
        let (tail, mut broken) = match read_tail(&trees) {
            Ok(tail) => (tail, None),
            Err(error) => {
                let last = trees
                    .events
                    .last()
                    .ok()
                    .flatten()
                    .and_then(|(key, _)| be_u64(&key, 0, "a position key").ok())
                    .unwrap_or(0);
                (
                    Tail {
                        next: Position(last.saturating_add(1)),
                        last_hash: GENESIS_HASH,
                    },
                    Some(format!(
                        "the last record is unreadable ({error}); run verify"
                    )),
                )
            }
        };
        let head = Position(tail.next.0 - 1);
        if broken.is_none() {
            broken = head_record::check(&path, &trees, head);
        }
        if broken.is_none() {
            // An upgraded store is marked before anything of the new format is written.
            layout::mark_legacy_indexes(&trees).map_err(|e| storage_error(&path, e))?;
            // A crash may have cut off the index entries of the last batch; they must be back
            // before the writer decides anything from the indexes.
            match indexes::complete(&trees, &path, head) {
                Ok(()) => {}
                Err(StoreError::Corrupt { position, reason }) => {
                    broken = Some(format!(
                        "the indexes cannot be completed at position {position} ({reason}); run verify"
                    ));
                }
                Err(other) => return Err(other),
            }
        }
        if broken.is_none() {
            layout::record_format_version(&trees.meta).map_err(|e| storage_error(&path, e))?;
        }
        let mut disk = disk;
        db.flush().map_err(|e| storage_error(&path, e))?;
        disk.sync().map_err(io)?;
        metrics::gauge!("paystate_store_head_position").set(head.0 as f64);
        // What the recorder writes: the head as it is now, unless the store refuses writes
        // (then a lost part of the log must stay on record).
        let recorded = head_record::read(&path).ok().flatten();
        let latest = (broken.is_none() && head.0 > 0).then_some(HeadRecord {
            position: head,
            hash: tail.last_hash,
        });
        let shared = Arc::new(Shared {
            durable_head: AtomicU64::new(head.0),
            recent: RecentEvents::default(),
            stats: StatCounters::default(),
            broken: Mutex::new(broken),
            latest_head: Arc::new(Mutex::new(latest)),
        });
        let (head_sender, head_receiver) = watch::channel(head);
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            path: path.clone(),
            db: db.clone(),
            trees: trees.clone(),
            tail,
            shared: shared.clone(),
            max_batch_events: options.max_batch_events.max(1),
            ids: EventIds::new(),
            heads: stream_heads::HeadCache::new(writer::HEAD_CACHE_GENERATION),
        };
        let recorder = {
            let (stop, stopped) = mpsc::channel();
            let (dir, latest) = (path.clone(), shared.latest_head.clone());
            let handle = std::thread::Builder::new()
                .name("paystate-head".into())
                .spawn(move || head_record::run_recorder(dir, latest, recorded, stopped))
                .map_err(io)?;
            (stop, handle)
        };
        let syncer = Syncer {
            path: path.clone(),
            db: db.clone(),
            disk,
            shared: shared.clone(),
            head: head_sender,
            recorder: Some(recorder),
        };
        let handle = std::thread::Builder::new()
            .name("paystate-write".into())
            .spawn(move || writer.run(receiver, syncer))
            .map_err(io)?;
        Ok(SledStore {
            path,
            db,
            trees,
            requests: Some(sender),
            writer: Mutex::new(Some(handle)),
            shared,
            head: head_receiver,
            options,
            side_writes: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why this store refuses writes, if it does: a write or sync failed, or at open the log
    /// could not be read to its end or had lost events it had made durable before.
    pub fn refusal(&self) -> Option<String> {
        self.shared.broken()
    }

    pub fn stats(&self) -> StoreStats {
        self.shared.stats.snapshot()
    }

    fn durable_head(&self) -> Position {
        Position(self.shared.durable_head.load(Ordering::Acquire))
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        self.requests
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(request)
            .map_err(|_| StoreError::Closed)
    }

    /// Sends a write that blocking callers wait for.
    fn write_blocking(&self, write: AuxWrite) -> Result<(), StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Aux {
            write,
            reply: Reply::Blocking(reply),
        })?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    fn storage(&self, error: sled::Error) -> StoreError {
        storage_error(&self.path, error)
    }

    fn decode(&self, position: u64, bytes: &[u8], raw: bool) -> Result<Envelope, StoreError> {
        self.upcast(decode_record(position, bytes)?, raw)
    }

    fn upcast(&self, envelope: Envelope, raw: bool) -> Result<Envelope, StoreError> {
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
        let head = self.durable_head();
        if after >= head || limit == 0 {
            return Ok(Vec::new());
        }
        let available = usize::try_from(head.0 - after.0).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(limit.min(available));
        let recent = self
            .shared
            .recent
            .for_each_after(after, head, limit, |envelope| {
                out.push(self.upcast(envelope.clone(), raw)?);
                Ok(())
            });
        if let Some(result) = recent {
            return result.map(|()| out);
        }
        self.for_each_record(after.next(), head, |position, bytes| {
            out.push(self.decode(position, bytes, raw)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Calls `visit` with every stored record from position `from` to `to` in order, until it
    /// returns `false`.
    fn for_each_record(
        &self,
        from: Position,
        to: Position,
        visit: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        chunk::for_each_record(&self.trees.events, &self.path, from, to, visit)
    }

    /// The stream's runs holding versions after `after`, in version order, including runs
    /// written but not yet durable (readers check positions against the durable head).
    fn runs_after(
        &self,
        stream: &StreamId,
        after: u64,
    ) -> Result<Box<dyn Iterator<Item = Result<Run, StoreError>> + '_>, StoreError> {
        Ok(
            match indexes::stored_head(&self.trees, &self.path, stream)? {
                Some(head) => lookup::runs_after(&self.trees, &self.path, stream, &head, after),
                None => Box::new(std::iter::empty()),
            },
        )
    }

    fn tree(&self, name: String) -> Result<sled::Tree, StoreError> {
        self.db.open_tree(name).map_err(|e| self.storage(e))
    }

    fn scan(tree: &sled::Tree, prefix: &[u8], path: &Path) -> Result<KvPairs, StoreError> {
        tree.scan_prefix(prefix)
            .map(|entry| {
                entry
                    .map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(|e| storage_error(path, e))
            })
            .collect()
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // sled's own Debug prints whole trees; the path and head say what matters.
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("durable_head", &self.durable_head())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn read_tail(trees: &Trees) -> Result<Tail, StoreError> {
    let Some((key, value)) = trees
        .events
        .last()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    else {
        return Ok(Tail {
            next: Position(1),
            last_hash: GENESIS_HASH,
        });
    };
    let chunk = Chunk::parse(be_u64(&key, 0, "a chunk key")?, &value)?;
    let mut last = None;
    for record in chunk.records() {
        last = Some(record?);
    }
    let (position, bytes) = last.ok_or_else(|| StoreError::Corrupt {
        position: chunk.last,
        reason: "empty chunk".into(),
    })?;
    let envelope = decode_record(position, bytes)?;
    Ok(Tail {
        next: envelope.position.next(),
        last_hash: envelope.hash,
    })
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Hanging up makes the writer flush and exit; waiting for it releases sled's lock
        // before the caller can try to reopen the directory.
        self.requests.take();
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(handle) = writer.take() {
                let _ = handle.join();
            }
        }
    }
}

#[async_trait]
impl EventStore for SledStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        self.send(Request::Append {
            stream: stream.clone(),
            expected,
            events,
            reply: Reply::Async(reply),
        })?;
        let outcome = answer.await.map_err(|_| StoreError::Closed)?;
        metrics::histogram!("paystate_store_append_seconds")
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    fn head(&self) -> Result<Position, StoreError> {
        Ok(self.durable_head())
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    fn read_all(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.read_range(after, limit, false)
    }

    fn read_all_raw(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        self.read_range(after, limit, true)
    }

    fn scan_all(
        &self,
        after: Position,
        limit: usize,
        visit: &mut dyn FnMut(EnvelopeRef<'_>),
    ) -> Result<Position, StoreError> {
        let head = self.durable_head();
        let mut last = after;
        if after >= head || limit == 0 {
            return Ok(last);
        }
        // Right behind the head (a live follower): the events are still in memory.
        let recent = self
            .shared
            .recent
            .for_each_after(after, head, limit, |envelope| {
                visit(self.options.upcasters.upcast_ref(envelope.as_borrowed())?);
                last = envelope.position;
                Ok(())
            });
        if let Some(result) = recent {
            return result.map(|()| last);
        }
        let mut visited = 0usize;
        // Each record is decoded straight from the chunk sled hands out (a shared buffer),
        // so a scan allocates only for payloads an upcaster rewrites.
        self.for_each_record(after.next(), head, |position, bytes| {
            let envelope = self
                .options
                .upcasters
                .upcast_ref(decode_record_ref(position, bytes)?)?;
            visit(envelope);
            last = Position(position);
            visited += 1;
            Ok(visited < limit)
        })?;
        Ok(last)
    }

    fn read_event(&self, position: Position) -> Result<Option<Envelope>, StoreError> {
        if position == Position::START {
            return Ok(None);
        }
        let mut found = None;
        self.for_each_record(position, position.min(self.durable_head()), |at, bytes| {
            found = Some(self.decode(at, bytes, false)?);
            Ok(false)
        })?;
        Ok(found)
    }

    fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let head = self.durable_head();
        let mut out = Vec::new();
        for run in self.runs_after(stream, after.0)? {
            let run = run?;
            if out.len() >= limit || run.first_position > head.0 {
                break;
            }
            // A run is contiguous in the log: read its positions as one range.
            let skip = after.0.saturating_sub(run.first_version - 1);
            let from = Position(run.first_position.saturating_add(skip));
            self.for_each_record(from, Position(run.last_position()), |position, bytes| {
                out.push(self.decode(position, bytes, false)?);
                Ok(out.len() < limit)
            })?;
        }
        Ok(out)
    }

    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError> {
        match indexes::stored_head(&self.trees, &self.path, stream)? {
            Some(head) => {
                lookup::version_within(&self.trees, &self.path, stream, &head, self.durable_head())
            }
            None => Ok(StreamVersion(0)),
        }
    }

    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError> {
        match indexes::stored_head(&self.trees, &self.path, stream)? {
            Some(head) => lookup::dedupe_position(
                &self.trees,
                &self.path,
                stream,
                &head,
                dedupe_key,
                self.durable_head(),
            ),
            None => Ok(None),
        }
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let head = self.durable_head();
        let mut report = VerifyReport {
            events: 0,
            head,
            head_hash: GENESIS_HASH,
            first_bad: None,
        };
        let walked = self.for_each_record(Position(1), head, |position, bytes| {
            let envelope = decode_record_ref(position, bytes)?;
            if let Some(reason) =
                chain_fault(&envelope, Position(report.events + 1), &report.head_hash)
            {
                return Err(StoreError::Corrupt { position, reason });
            }
            report.head_hash = *envelope.hash;
            report.events += 1;
            Ok(true)
        });
        match walked {
            Ok(()) => {}
            Err(StoreError::Corrupt { position, reason }) => {
                report.first_bad = Some((Position(position), reason));
            }
            Err(other) => return Err(other),
        }
        Ok(report)
    }

    async fn import(&self, envelopes: Vec<Envelope>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Import {
            envelopes,
            reply: Reply::Async(reply),
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn commit_projection(
        &self,
        projection: &str,
        checkpoint: Position,
        ops: Vec<KvOp>,
    ) -> Result<(), StoreError> {
        crate::names::check("projection", projection)?;
        refuse_reserved_keys(&ops)?;
        self.write_blocking(AuxWrite::Projection {
            name: projection.to_owned(),
            checkpoint,
            ops,
        })
    }

    /// The entries go straight into the projection's tree from this thread, with plain
    /// inserts: sled lets them run beside the writer, whereas a sled batch of hundreds of
    /// entries on the writer holds up every append queued behind it (and, through sled's
    /// process-wide lock, every reader) for milliseconds. The checkpoint then goes through
    /// the writer, in the group commit whose flush also makes the entries durable: sled
    /// recovers a prefix of its log, and the entries were written before the checkpoint, so a
    /// recovered checkpoint always has its entries.
    fn commit_projection_idempotent(
        &self,
        projection: &str,
        checkpoint: Position,
        entries: Vec<KvOp>,
        with_checkpoint: Vec<KvOp>,
    ) -> Result<(), StoreError> {
        crate::names::check("projection", projection)?;
        refuse_reserved_keys(&entries)?;
        refuse_reserved_keys(&with_checkpoint)?;
        if self.requests.is_none() {
            return Err(StoreError::Closed);
        }
        if let Some(reason) = self.shared.broken() {
            return Err(StoreError::Unavailable(reason));
        }
        let tree = self.tree(projection_tree_name(projection))?;
        for op in entries {
            match op {
                KvOp::Put { key, value } => tree.insert(key, value),
                KvOp::Delete { key } => tree.remove(key),
            }
            .map_err(|e| self.storage(e))?;
        }
        self.write_blocking(AuxWrite::Projection {
            name: projection.to_owned(),
            checkpoint,
            ops: with_checkpoint,
        })
    }

    fn projection_checkpoint(&self, projection: &str) -> Result<Option<Position>, StoreError> {
        crate::names::check("projection", projection)?;
        let own = self
            .tree(projection_tree_name(projection))?
            .get(PROJECTION_CHECKPOINT_KEY)
            .map_err(|e| self.storage(e))?;
        // A projection last committed by format 2 or older has its checkpoint in the shared
        // tree; its first commit under format 3 moves it.
        let stored = match own {
            Some(value) => Some(value),
            None => self
                .trees
                .checkpoints
                .get(projection.as_bytes())
                .map_err(|e| self.storage(e))?,
        };
        stored
            .map(|value| be_u64(&value, 0, "a projection checkpoint").map(Position))
            .transpose()
    }

    fn projection_get(&self, projection: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        crate::names::check("projection", projection)?;
        if key == PROJECTION_CHECKPOINT_KEY {
            return Ok(None);
        }
        Ok(self
            .tree(projection_tree_name(projection))?
            .get(key)
            .map_err(|e| self.storage(e))?
            .map(|value| value.to_vec()))
    }

    fn projection_scan(&self, projection: &str, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        crate::names::check("projection", projection)?;
        let mut entries = SledStore::scan(
            &self.tree(projection_tree_name(projection))?,
            prefix,
            &self.path,
        )?;
        entries.retain(|(key, _)| key != PROJECTION_CHECKPOINT_KEY);
        Ok(entries)
    }

    fn projection_reset(&self, projection: &str) -> Result<(), StoreError> {
        crate::names::check("projection", projection)?;
        self.write_blocking(AuxWrite::ProjectionReset {
            name: projection.to_owned(),
        })
    }

    fn side_put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        crate::names::check("side namespace", namespace)?;
        let written = self.write_blocking(AuxWrite::SidePut {
            namespace: namespace.to_owned(),
            key: key.to_vec(),
            value: value.to_vec(),
        });
        // After the write, so a reader that still sees the old count read before it.
        self.side_writes.fetch_add(1, Ordering::AcqRel);
        written
    }

    fn side_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        crate::names::check("side namespace", namespace)?;
        Ok(self
            .tree(side_tree_name(namespace))?
            .get(key)
            .map_err(|e| self.storage(e))?
            .map(|value| value.to_vec()))
    }

    fn side_scan(&self, namespace: &str, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        crate::names::check("side namespace", namespace)?;
        SledStore::scan(&self.tree(side_tree_name(namespace))?, prefix, &self.path)
    }

    fn side_writes(&self) -> u64 {
        self.side_writes.load(Ordering::Acquire)
    }

    async fn close(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        match self.send(Request::Close {
            reply: Reply::Async(reply),
        }) {
            Ok(()) => answer.await.map_err(|_| StoreError::Closed)?,
            Err(StoreError::Closed) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

/// Refuses a projection write that would overwrite the checkpoint's key.
fn refuse_reserved_keys(ops: &[KvOp]) -> Result<(), StoreError> {
    let reserved = |key: &Vec<u8>| key.as_slice() == PROJECTION_CHECKPOINT_KEY;
    if ops.iter().any(|op| match op {
        KvOp::Put { key, .. } | KvOp::Delete { key } => reserved(key),
    }) {
        return Err(StoreError::Invalid(
            "a projection key may not start with the byte 0xFF followed by `checkpoint`: it holds the checkpoint".into(),
        ));
    }
    Ok(())
}
