//! Histories (the facts of one stream, readable) and time travel (a payment as of a position
//! or a time, by folding the prefix of its stream).

use crate::error::ProjectionError;
use paystate_domain::events::{DomainEvent, EventMeta};
use paystate_domain::payment::{PaymentProjection, PaymentView};
use paystate_domain::provider::{Provider, ProviderView};
use paystate_domain::{streams, ProviderId, Reference};
use paystate_store::{Envelope, EventStore, Position, StreamId, StreamVersion};
use serde::Serialize;
use time::OffsetDateTime;

/// One fact of a history: `{"position", "type", "recorded_at", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub position: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The stored payload as JSON (upcast to the current schema).
    pub data: serde_json::Value,
}

impl HistoryEntry {
    pub fn from_envelope(envelope: &Envelope) -> HistoryEntry {
        let data = serde_json::from_slice(&envelope.payload).unwrap_or_else(|_| {
            // Payloads are JSON by convention; anything else is shown, not hidden.
            serde_json::json!({ "unreadable_payload_bytes": envelope.payload.len() })
        });
        HistoryEntry {
            position: envelope.position.0,
            event_type: envelope.event_type.clone(),
            recorded_at: envelope.recorded_at,
            data,
        }
    }
}

/// A point in the log to look at the past from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Everything up to and including this global position.
    Position(Position),
    /// Everything recorded at or before this time.
    Time(OffsetDateTime),
}

impl AsOf {
    fn includes(self, envelope: &Envelope) -> bool {
        match self {
            AsOf::Position(position) => envelope.position <= position,
            AsOf::Time(time) => envelope.recorded_at <= time,
        }
    }
}

/// How many envelopes of one stream are read per page.
const STREAM_PAGE: usize = 1024;

/// Every envelope of `stream`, in order.
pub fn read_whole_stream(
    store: &dyn EventStore,
    stream: &str,
) -> Result<Vec<Envelope>, ProjectionError> {
    let stream = StreamId::new(stream);
    let mut envelopes: Vec<Envelope> = Vec::new();
    loop {
        let after = envelopes
            .last()
            .map_or(StreamVersion(0), |last| last.stream_version);
        let page = store.read_stream(&stream, after, STREAM_PAGE)?;
        let done = page.len() < STREAM_PAGE;
        envelopes.extend(page);
        if done {
            return Ok(envelopes);
        }
    }
}

/// The history of one stream, optionally only up to `as_of`.
pub fn stream_history(
    store: &dyn EventStore,
    stream: &str,
    as_of: Option<AsOf>,
) -> Result<Vec<HistoryEntry>, ProjectionError> {
    Ok(read_whole_stream(store, stream)?
        .iter()
        .filter(|envelope| as_of.is_none_or(|as_of| as_of.includes(envelope)))
        .map(HistoryEntry::from_envelope)
        .collect())
}

/// The history of a payment: every fact of its stream, or those up to `as_of`.
pub fn payment_history(
    store: &dyn EventStore,
    provider: &ProviderId,
    reference: &Reference,
    as_of: Option<AsOf>,
) -> Result<Vec<HistoryEntry>, ProjectionError> {
    stream_history(store, &streams::payment_stream(provider, reference), as_of)
}

/// The history of a provider: every fact of its stream.
pub fn provider_history(
    store: &dyn EventStore,
    provider: &ProviderId,
) -> Result<Vec<HistoryEntry>, ProjectionError> {
    stream_history(store, &streams::provider_stream(provider), None)
}

fn decoded(envelopes: &[Envelope], as_of: AsOf) -> Vec<(EventMeta, DomainEvent)> {
    envelopes
        .iter()
        .filter(|envelope| as_of.includes(envelope))
        .filter_map(|envelope| {
            let event = DomainEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.payload,
            )
            .ok()?;
            let meta = EventMeta {
                position: envelope.position.0,
                recorded_at: envelope.recorded_at,
            };
            Some((meta, event))
        })
        .collect()
}

/// The payment as it was known at `as_of`: the fold of its stream's prefix. `None` if nothing
/// was known about it then.
pub fn payment_as_of(
    store: &dyn EventStore,
    provider: &ProviderId,
    reference: &Reference,
    as_of: AsOf,
) -> Result<Option<PaymentView>, ProjectionError> {
    let envelopes = read_whole_stream(store, &streams::payment_stream(provider, reference))?;
    let events = decoded(&envelopes, as_of);
    let projection = PaymentProjection::fold(
        provider.clone(),
        reference.clone(),
        events.iter().map(|(meta, event)| (*meta, event)),
    );
    Ok((!projection.is_empty()).then(|| projection.view()))
}

/// The provider's configuration and registrations as they were at `as_of`, from its own
/// stream (delivery counters recorded in payment streams are not included).
pub fn provider_as_of(
    store: &dyn EventStore,
    provider: &ProviderId,
    as_of: AsOf,
) -> Result<Option<ProviderView>, ProjectionError> {
    let envelopes = read_whole_stream(store, &streams::provider_stream(provider))?;
    let events = decoded(&envelopes, as_of);
    let folded = Provider::replay(events.iter().map(|(meta, event)| (*meta, event)))
        .ok()
        .flatten();
    Ok(folded.map(|provider| provider.view()))
}
