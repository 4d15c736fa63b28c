//! The [`EventStore`] contract that every implementation passes (see `tests/conformance.rs`).

use crate::error::StoreError;
use crate::types::{
    AppendOutcome, Envelope, EnvelopeRef, ExpectedVersion, NewEvent, Position, StreamId,
    StreamVersion, VerifyReport,
};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::watch;

/// Key-value entries in key order, as projection and side-data scans return them.
pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One write to a projection's key-value state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// The append-only log.
///
/// Reads are synchronous (they never wait on a flush); appends are asynchronous because they
/// return only once durable, and share a flush with concurrent appends.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug + 'static {
    /// Appends `events` to `stream` as one atomic, durable batch, if `expected` holds and no
    /// event's dedupe key is already taken in `stream`.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// The position of the last durable event (0 when the log is empty).
    fn head(&self) -> Result<Position, StoreError>;

    /// A receiver that sees the head move; subscriptions wait on it.
    fn watch_head(&self) -> watch::Receiver<Position>;

    /// Up to `limit` events with position > `after`, in order, upcast to current schemas.
    fn read_all(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError>;

    /// Visits up to `limit` events with position > `after`, in order, upcast, without copying
    /// them: what a replay over the whole log uses. Returns the position of the last event
    /// visited (`after` when there was none). Never visits past the durable head.
    ///
    /// An unreadable record (or a failing upcaster) stops the scan with an error naming its
    /// position; some of the events before it may have been visited by then, in order.
    ///
    /// The default pages through [`EventStore::read_all`]; an implementation that keeps
    /// records encoded decodes them borrowed instead.
    fn scan_all(
        &self,
        after: Position,
        limit: usize,
        visit: &mut dyn FnMut(EnvelopeRef<'_>),
    ) -> Result<Position, StoreError> {
        const PAGE: usize = 1024;
        let mut last = after;
        let mut remaining = limit;
        while remaining > 0 {
            let page = self.read_all(last, remaining.min(PAGE))?;
            let Some(end) = page.last().map(|envelope| envelope.position) else {
                break;
            };
            remaining -= page.len();
            for envelope in &page {
                visit(envelope.as_borrowed());
            }
            last = end;
        }
        Ok(last)
    }

    /// As [`EventStore::read_all`], but with the payload and schema version exactly as stored
    /// (what the hash covers): for export and verification.
    fn read_all_raw(&self, after: Position, limit: usize) -> Result<Vec<Envelope>, StoreError>;

    /// One event by position, upcast.
    fn read_event(&self, position: Position) -> Result<Option<Envelope>, StoreError>;

    /// Up to `limit` events of one stream with stream version > `after`, in order, upcast.
    fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// The current version of a stream (0 if it has no event).
    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError>;

    /// The position of the event of `stream` that took `dedupe_key`, if any. A dedupe key is
    /// unique within its stream: the same key in another stream is another key.
    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError>;

    /// Walks the whole hash chain from position 1 and reports the first bad record.
    fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// Appends envelopes exported from another store, keeping their positions, ids, times and
    /// hashes. Each must follow the current head and chain onto it; nothing is written if one
    /// does not. Durable on return.
    async fn import(&self, envelopes: Vec<Envelope>) -> Result<(), StoreError>;

    /// Applies `ops` to a projection's state and sets its checkpoint, atomically and durably.
    fn commit_projection(
        &self,
        projection: &str,
        checkpoint: Position,
        ops: Vec<KvOp>,
    ) -> Result<(), StoreError>;

    /// Commits a projection that tolerates entries newer than its checkpoint, without holding
    /// up the log: `entries` are written one at a time (each atomically) from the calling
    /// thread, then `with_checkpoint` and the checkpoint together, atomically. Durable on
    /// return.
    ///
    /// After a crash the stored checkpoint may be older than some stored entries (a commit
    /// that wrote its entries but not its checkpoint), so the projection must be idempotent:
    /// replaying the events after its checkpoint onto entries that already hold some of them
    /// must change nothing (each entry knows the last position folded into it).
    /// `with_checkpoint` is for what cannot know that (running totals). A commit that fails
    /// (the store broke or closed meanwhile) may likewise leave some entries written without
    /// their checkpoint. The default writes everything in one
    /// [`EventStore::commit_projection`], which is stronger.
    fn commit_projection_idempotent(
        &self,
        projection: &str,
        checkpoint: Position,
        entries: Vec<KvOp>,
        with_checkpoint: Vec<KvOp>,
    ) -> Result<(), StoreError> {
        let mut ops = entries;
        ops.extend(with_checkpoint);
        self.commit_projection(projection, checkpoint, ops)
    }

    /// The position up to which a projection's stored state is complete.
    fn projection_checkpoint(&self, projection: &str) -> Result<Option<Position>, StoreError>;

    fn projection_get(&self, projection: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All entries of a projection whose key starts with `prefix`, in key order.
    fn projection_scan(&self, projection: &str, prefix: &[u8]) -> Result<KvPairs, StoreError>;

    /// Drops a projection's state and checkpoint (before a rebuild). Not atomic: the checkpoint
    /// goes first, so an interrupted reset leaves entries without a checkpoint, which callers
    /// treat as no state (and reset again).
    fn projection_reset(&self, projection: &str) -> Result<(), StoreError>;

    /// Side data kept apart from the log (never exported, never hashed), e.g. encrypted
    /// secrets. Durable on return.
    fn side_put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn side_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn side_scan(&self, namespace: &str, prefix: &[u8]) -> Result<KvPairs, StoreError>;
    /// How many side writes this store has taken since it was opened, counted once each
    /// returns (written or not). What a caller read from the side trees is still what they
    /// hold while this count is the one it read before reading them.
    fn side_writes(&self) -> u64;

    /// Flushes everything and stops accepting appends.
    async fn close(&self) -> Result<(), StoreError>;
}

/// What a subscription yields.
// Almost every item is an event; boxing it would cost an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionItem {
    Event(Envelope),
    /// Everything up to this position has been delivered; what follows is live.
    /// Sent once, when the subscription first reaches the head.
    CaughtUp(Position),
}

/// A catch-up subscription: reads the log from a position in pages, then follows it live.
///
/// A filtered subscription ([`Subscription::filtered`]) looks at every event borrowed from the
/// store and copies only those its filter wants, so a reader interested in a few streams does
/// not pay for the rest of the log.
#[derive(Debug)]
pub struct Subscription {
    store: Arc<dyn EventStore>,
    /// The last event delivered or passed over by the filter.
    after: Position,
    /// The last event read from the store: everything in `buffer` is at or before it.
    scanned: Position,
    buffer: VecDeque<Envelope>,
    head: watch::Receiver<Position>,
    caught_up_sent: bool,
    page: usize,
    wanted: fn(&EnvelopeRef<'_>) -> bool,
}

impl Subscription {
    /// Subscribes to every event after `after`.
    pub fn new(store: Arc<dyn EventStore>, after: Position) -> Subscription {
        Subscription::filtered(store, after, |_| true)
    }

    /// Subscribes to the events after `after` for which `wanted` holds; the others are passed
    /// over without being copied.
    pub fn filtered(
        store: Arc<dyn EventStore>,
        after: Position,
        wanted: fn(&EnvelopeRef<'_>) -> bool,
    ) -> Subscription {
        let head = store.watch_head();
        Subscription {
            store,
            after,
            scanned: after,
            buffer: VecDeque::new(),
            head,
            caught_up_sent: false,
            page: 1024,
            wanted,
        }
    }

    /// The last position this subscription has delivered or passed over.
    pub fn position(&self) -> Position {
        self.after
    }

    /// The next event, or the one-time caught-up marker. Waits while there is nothing new.
    pub async fn next(&mut self) -> Result<SubscriptionItem, StoreError> {
        loop {
            if let Some(envelope) = self.buffer.pop_front() {
                self.after = if self.buffer.is_empty() {
                    self.scanned
                } else {
                    envelope.position
                };
                return Ok(SubscriptionItem::Event(envelope));
            }
            self.after = self.scanned;
            let wanted = self.wanted;
            let mut page = Vec::new();
            let last = self
                .store
                .scan_all(self.scanned, self.page, &mut |envelope| {
                    if wanted(&envelope) {
                        page.push(envelope.into_envelope());
                    }
                })?;
            if last > self.scanned {
                self.scanned = last;
                self.buffer.extend(page);
                continue;
            }
            if !self.caught_up_sent {
                self.caught_up_sent = true;
                return Ok(SubscriptionItem::CaughtUp(self.after));
            }
            // Wait for the head to pass what we have seen.
            let after = self.after;
            self.head
                .wait_for(|head| *head > after)
                .await
                .map_err(|_| StoreError::Closed)?;
        }
    }
}
