//! The values that cross the store boundary.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// A position in the global log. The first event is at position 1; 0 means "before the log".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Position(pub u64);

impl Position {
    /// The position before the first event.
    pub const START: Position = Position(0);
    /// The following position (saturating: a damaged record cannot make it wrap or panic).
    pub fn next(self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The version of one stream: the number of events in it (0 = no event yet).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct StreamVersion(pub u64);

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a stream, e.g. `provider-vipps-test` or `payment-vipps-test-acme-order-1001`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn new(name: impl Into<String>) -> StreamId {
        StreamId(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the appender believes about the stream before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    Exists,
    /// The stream must be at exactly this version.
    Exact(StreamVersion),
}

/// SHA-256 digest of an envelope; the chain links each envelope to the previous one.
pub type Hash = [u8; 32];

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Stable `snake_case` type name, e.g. `webhook_received`.
    pub event_type: String,
    /// Schema version of `payload` for this type; read-side upcasters key on (type, version).
    pub schema_version: u32,
    /// The serialized event (JSON by convention); stored as given.
    pub payload: Vec<u8>,
    /// If set, the first append carrying this key wins forever; a later append with the same key
    /// appends nothing and answers [`AppendOutcome::Duplicate`].
    pub dedupe_key: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Vec<u8>) -> NewEvent {
        NewEvent {
            event_type: event_type.into(),
            schema_version,
            payload,
            dedupe_key: None,
            correlation_id: None,
            causation_id: None,
        }
    }
    pub fn with_dedupe_key(mut self, key: impl Into<String>) -> NewEvent {
        self.dedupe_key = Some(key.into());
        self
    }
    pub fn with_correlation(mut self, correlation_id: Uuid) -> NewEvent {
        self.correlation_id = Some(correlation_id);
        self
    }
    pub fn with_causation(mut self, causation_id: Uuid) -> NewEvent {
        self.causation_id = Some(causation_id);
        self
    }
}

/// A stored event with everything the log knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub position: Position,
    pub stream: StreamId,
    /// The stream's version after this event (the first event of a stream has version 1).
    pub stream_version: StreamVersion,
    /// UUID v7, unique per event.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub dedupe_key: Option<String>,
    /// The payload as stored, or as upcast to the newest schema version on read.
    pub payload: Vec<u8>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl Envelope {
    /// This envelope as an [`EnvelopeRef`] borrowing every field.
    pub fn as_borrowed(&self) -> EnvelopeRef<'_> {
        EnvelopeRef {
            position: self.position,
            stream: self.stream.as_str(),
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            dedupe_key: self.dedupe_key.as_deref(),
            payload: Cow::Borrowed(&self.payload),
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// A stored event borrowed from the store's buffer, for scans that need not own it
/// ([`crate::EventStore::scan_all`]). The fields mean what they mean in [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    pub position: Position,
    pub stream: &'a str,
    pub stream_version: StreamVersion,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at: OffsetDateTime,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub dedupe_key: Option<&'a str>,
    /// Upcast to the newest schema when an upcaster applies (owned then), as stored otherwise.
    pub payload: Cow<'a, [u8]>,
    pub prev_hash: &'a Hash,
    pub hash: &'a Hash,
}

impl EnvelopeRef<'_> {
    /// An owned copy, as [`crate::EventStore::read_all`] would have returned it.
    pub fn to_envelope(&self) -> Envelope {
        self.clone().into_envelope()
    }

    /// An owned copy that takes over an owned (upcast) payload instead of copying it.
    pub fn into_envelope(self) -> Envelope {
        Envelope {
            position: self.position,
            stream: StreamId::new(self.stream),
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            dedupe_key: self.dedupe_key.map(str::to_owned),
            payload: self.payload.into_owned(),
            prev_hash: *self.prev_hash,
            hash: *self.hash,
        }
    }
}

/// The answer to an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Durably appended; positions are contiguous from `first` to `last`.
    Appended {
        first: Position,
        last: Position,
        stream_version: StreamVersion,
    },
    /// An event of the batch carried a dedupe key that was already taken; nothing was appended.
    Duplicate {
        original_position: Position,
        dedupe_key: String,
    },
}

/// The result of walking the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub head: Position,
    pub head_hash: Hash,
    /// The first position whose record is unreadable or whose hash does not chain, with why.
    pub first_bad: Option<(Position, String)>,
}
