//! Deciding a batch: expected versions, dedupe keys, gapless positions and the hash chain.
//!
//! The writer of each implementation feeds the requests of one group commit, in arrival order,
//! into a [`BatchPlan`]. Each request sees the effects of the accepted requests before it in
//! the same batch, so two appends in one commit behave exactly as if committed one by one.

use crate::codec::{chain_fault, envelope_hash};
use crate::error::StoreError;
use crate::types::{
    AppendOutcome, Envelope, ExpectedVersion, Hash, NewEvent, Position, StreamId, StreamVersion,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// What the log already holds, as far as deciding an append needs to know.
pub(crate) trait LogIndex {
    fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, StoreError>;
    /// The position of the event of `stream` that took `dedupe_key`, if any.
    fn dedupe_position(
        &self,
        stream: &StreamId,
        dedupe_key: &str,
    ) -> Result<Option<Position>, StoreError>;
}

/// The end of the log: the position the next event takes and the hash it chains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    pub next: Position,
    pub last_hash: Hash,
}

/// Event ids: UUID v7 (millisecond time, then random bits) from a generator seeded once, so
/// an id costs no system call.
#[derive(Debug)]
pub(crate) struct EventIds {
    rng: StdRng,
}

impl EventIds {
    pub fn new() -> EventIds {
        EventIds {
            rng: StdRng::from_entropy(),
        }
    }

    pub fn next(&mut self, at: OffsetDateTime) -> Uuid {
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut random = [0u8; 10];
        self.rng.fill_bytes(&mut random);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

/// The decided writes of one batch.
#[derive(Debug, Default)]
pub(crate) struct PlannedWrites {
    pub envelopes: Vec<Envelope>,
    /// The atomic units of `envelopes` in order: each append, each import.
    pub units: Vec<Unit>,
}

/// Envelopes that must survive a crash together or not at all: one append, or one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit {
    /// Where the unit ends in the batch's envelopes (exclusive).
    pub end: usize,
    /// `true` for an import: it may be spread over several chunks, so its batch must then be
    /// written as one atomic sled batch. An append is always kept in one chunk.
    pub import: bool,
}

#[derive(Debug, Clone, Default)]
struct Overlay {
    streams: HashMap<StreamId, (StreamVersion, Position)>,
    /// The dedupe keys taken in this batch, per stream.
    dedupe: HashMap<StreamId, HashMap<String, Position>>,
}

/// One batch being decided.
#[derive(Debug)]
pub(crate) struct BatchPlan<'i, I> {
    index: &'i I,
    tail: Tail,
    overlay: Overlay,
    envelopes: Vec<Envelope>,
    units: Vec<Unit>,
}

impl<'i, I: LogIndex> BatchPlan<'i, I> {
    pub fn new(index: &'i I, tail: Tail) -> BatchPlan<'i, I> {
        BatchPlan {
            index,
            tail,
            overlay: Overlay::default(),
            envelopes: Vec::new(),
            units: Vec::new(),
        }
    }

    pub fn tail(&self) -> Tail {
        self.tail
    }

    pub fn event_count(&self) -> usize {
        self.envelopes.len()
    }

    fn version_in(
        &self,
        overlay: &Overlay,
        stream: &StreamId,
    ) -> Result<StreamVersion, StoreError> {
        match overlay.streams.get(stream) {
            Some((version, _)) => Ok(*version),
            None => self.index.stream_version(stream),
        }
    }

    fn dedupe_in(
        &self,
        overlay: &Overlay,
        stream: &StreamId,
        key: &str,
    ) -> Result<Option<Position>, StoreError> {
        match overlay.dedupe.get(stream).and_then(|keys| keys.get(key)) {
            Some(position) => Ok(Some(*position)),
            None => self.index.dedupe_position(stream, key),
        }
    }

    /// Decides one append. On `Ok(Appended)` its events are part of the batch; on any other
    /// answer nothing of it is.
    pub fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        recorded_at: OffsetDateTime,
        ids: &mut EventIds,
    ) -> Result<AppendOutcome, StoreError> {
        validate_append(stream, &events)?;
        // A retried append whose first attempt succeeded must be told "duplicate", not
        // "conflict", so dedupe keys are checked before the expected version.
        for event in &events {
            if let Some(key) = &event.dedupe_key {
                if let Some(original_position) = self.dedupe_in(&self.overlay, stream, key)? {
                    return Ok(AppendOutcome::Duplicate {
                        original_position,
                        dedupe_key: key.clone(),
                    });
                }
            }
        }
        let actual = self.version_in(&self.overlay, stream)?;
        if !expected_holds(expected, actual) {
            return Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected,
                actual,
            });
        }

        let first = self.tail.next;
        let mut version = actual;
        for event in events {
            version = StreamVersion(version.0.saturating_add(1));
            let mut envelope = Envelope {
                position: self.tail.next,
                stream: stream.clone(),
                stream_version: version,
                event_id: ids.next(recorded_at),
                event_type: event.event_type,
                schema_version: event.schema_version,
                recorded_at,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                dedupe_key: event.dedupe_key,
                payload: event.payload,
                prev_hash: self.tail.last_hash,
                hash: [0; 32],
            };
            envelope.hash = envelope_hash(&envelope.as_borrowed());
            self.accept(envelope);
        }
        self.overlay
            .streams
            .insert(stream.clone(), (version, Position(self.tail.next.0 - 1)));
        self.units.push(Unit {
            end: self.envelopes.len(),
            import: false,
        });
        Ok(AppendOutcome::Appended {
            first,
            last: Position(self.tail.next.0 - 1),
            stream_version: version,
        })
    }

    /// Decides an import: every envelope must continue the log exactly (position, chain,
    /// stream version, unused dedupe key). All or nothing.
    pub fn import(&mut self, envelopes: Vec<Envelope>) -> Result<(), StoreError> {
        let mut overlay = self.overlay.clone();
        let mut tail = self.tail;
        for envelope in &envelopes {
            let refuse = |reason: String| {
                StoreError::Invalid(format!(
                    "import refused at position {}: {reason}",
                    envelope.position
                ))
            };
            if let Some(fault) = chain_fault(&envelope.as_borrowed(), tail.next, &tail.last_hash) {
                return Err(refuse(fault));
            }
            if envelope.stream.as_str().is_empty() || envelope.event_type.is_empty() {
                return Err(refuse("empty stream or event type".into()));
            }
            let current = self.version_in(&overlay, &envelope.stream)?;
            if envelope.stream_version.0 != current.0.saturating_add(1) {
                return Err(refuse(format!(
                    "stream {} is at version {current}, the envelope has {}",
                    envelope.stream, envelope.stream_version
                )));
            }
            if let Some(key) = &envelope.dedupe_key {
                if let Some(taken) = self.dedupe_in(&overlay, &envelope.stream, key)? {
                    return Err(refuse(format!(
                        "dedupe key already taken in its stream at position {taken}"
                    )));
                }
                overlay
                    .dedupe
                    .entry(envelope.stream.clone())
                    .or_default()
                    .insert(key.clone(), envelope.position);
            }
            overlay.streams.insert(
                envelope.stream.clone(),
                (envelope.stream_version, envelope.position),
            );
            tail = Tail {
                next: envelope.position.next(),
                last_hash: envelope.hash,
            };
        }
        self.overlay = overlay;
        self.tail = tail;
        self.envelopes.extend(envelopes);
        self.units.push(Unit {
            end: self.envelopes.len(),
            import: true,
        });
        Ok(())
    }

    /// Takes one decided event into the batch; the caller records the stream's new version
    /// once per append.
    fn accept(&mut self, envelope: Envelope) {
        if let Some(key) = &envelope.dedupe_key {
            let position = envelope.position;
            match self.overlay.dedupe.get_mut(&envelope.stream) {
                Some(keys) => {
                    keys.insert(key.clone(), position);
                }
                None => {
                    let keys = HashMap::from([(key.clone(), position)]);
                    self.overlay.dedupe.insert(envelope.stream.clone(), keys);
                }
            }
        }
        self.tail = Tail {
            next: envelope.position.next(),
            last_hash: envelope.hash,
        };
        self.envelopes.push(envelope);
    }

    pub fn into_writes(self) -> PlannedWrites {
        PlannedWrites {
            envelopes: self.envelopes,
            units: self.units,
        }
    }
}

fn expected_holds(expected: ExpectedVersion, actual: StreamVersion) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual.0 == 0,
        ExpectedVersion::Exists => actual.0 > 0,
        ExpectedVersion::Exact(version) => actual == version,
    }
}

fn validate_append(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    if stream.as_str().is_empty() {
        return Err(StoreError::Invalid("the stream name is empty".into()));
    }
    if events.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one event".into(),
        ));
    }
    for (index, event) in events.iter().enumerate() {
        if event.event_type.is_empty() {
            return Err(StoreError::Invalid(format!(
                "event {index} has an empty type name"
            )));
        }
        if let Some(key) = &event.dedupe_key {
            if key.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "event {index} has an empty dedupe key"
                )));
            }
            if events[..index]
                .iter()
                .any(|e| e.dedupe_key.as_ref() == Some(key))
            {
                return Err(StoreError::Invalid(format!(
                    "dedupe key {key:?} appears twice in one append"
                )));
            }
        }
    }
    Ok(())
}
