//! Building a timeline: the facts of one stream, each with what it changed in the view.

use super::changes::{changes, Change, ViewShape, PAYMENT, PROVIDER};
use paystate_domain::events::{DomainEvent, EventMeta};
use paystate_domain::payment::PaymentProjection;
use paystate_domain::provider::Provider;
use paystate_domain::{streams, ProviderId, Reference};
use paystate_projections::history::read_whole_stream;
use paystate_store::{Envelope, EventStore};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// One fact of a timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub position: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The stable event type name (`payment_event_recorded`, `webhook_registered`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// What the fact records, in words.
    pub fact: String,
    /// What it changed in the view.
    pub changes: Vec<Change>,
    /// The stored payload as JSON (upcast to the current schema).
    pub data: Value,
}

/// Where a timeline stops: after a global position, and/or at a recorded time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cutoff {
    pub position: Option<u64>,
    pub time: Option<OffsetDateTime>,
}

impl Cutoff {
    fn includes(&self, envelope: &Envelope) -> bool {
        self.position.is_none_or(|at| envelope.position.0 <= at)
            && self.time.is_none_or(|time| envelope.recorded_at <= time)
    }
}

/// The timeline of one payment or provider, up to an optional position or time.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// `payment vipps-test/acme-order-1001` or `provider vipps-test`.
    pub subject: String,
    pub stream: String,
    /// The position the timeline stops at, if `--at` was given.
    pub at: Option<u64>,
    /// The recorded time the timeline stops at, if `--as-of` was given.
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
    pub entries: Vec<Entry>,
    /// The view after the last entry (`null` if nothing was known).
    pub view: Value,
    /// What the view leaves out, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// The facts of a payment's stream.
pub fn payment(
    store: &dyn EventStore,
    provider: &ProviderId,
    reference: &Reference,
    cutoff: Cutoff,
) -> anyhow::Result<Timeline> {
    let stream = streams::payment_stream(provider, reference);
    let mut projection = PaymentProjection::new(provider.clone(), reference.clone());
    let view = |projection: &PaymentProjection| {
        if projection.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(projection.view()).unwrap_or(Value::Null)
        }
    };
    build(
        store,
        format!("payment {provider}/{reference}"),
        stream,
        cutoff,
        PAYMENT,
        |meta, event| {
            let before = view(&projection);
            projection.apply(meta, event);
            (before, view(&projection))
        },
    )
}

/// The facts of a provider's own stream (configuration, registrations, rejections).
pub fn provider(
    store: &dyn EventStore,
    id: &ProviderId,
    cutoff: Cutoff,
) -> anyhow::Result<Timeline> {
    let stream = streams::provider_stream(id);
    let mut provider: Option<Provider> = None;
    let view = |provider: &Option<Provider>| {
        let mut view = provider
            .as_ref()
            .and_then(|provider| serde_json::to_value(provider.view()).ok())
            .unwrap_or(Value::Null);
        // Accepted and duplicate deliveries are recorded in the payment streams, not in this
        // one: counters folded from this stream alone would read 0 and mislead.
        if let Some(counters) = view.get_mut("webhooks").and_then(Value::as_object_mut) {
            for field in ["accepted", "duplicates", "last_received_at"] {
                counters.remove(field);
            }
        }
        view
    };
    let mut timeline = build(
        store,
        format!("provider {id}"),
        stream,
        cutoff,
        PROVIDER,
        |meta, event| {
            let before = view(&provider);
            match (&mut provider, event) {
                (None, DomainEvent::ProviderCreated(created)) => {
                    provider = Some(Provider::created(meta, created));
                }
                (Some(provider), event) => provider.apply(meta, event),
                (None, _) => {}
            }
            (before, view(&provider))
        },
    )?;
    timeline.note = Some(PROVIDER_NOTE);
    Ok(timeline)
}

/// Why a provider's timeline shows no accepted deliveries.
const PROVIDER_NOTE: &str = "Accepted and duplicate deliveries are recorded in the payment \
    streams (see `paystate audit payment`); their counters are in the provider view of a running \
    server (GET /providers/{id}).";

/// Reads `stream`, stops at `cutoff`, and lets `fold` apply each decodable fact, returning the
/// view before and after it.
fn build(
    store: &dyn EventStore,
    subject: String,
    stream: String,
    cutoff: Cutoff,
    shape: ViewShape,
    mut fold: impl FnMut(EventMeta, &DomainEvent) -> (Value, Value),
) -> anyhow::Result<Timeline> {
    let envelopes = read_whole_stream(store, &stream)?;
    let mut entries = Vec::new();
    let mut view = Value::Null;
    for envelope in envelopes
        .iter()
        .filter(|envelope| cutoff.includes(envelope))
    {
        let entry = match decode(envelope) {
            Ok(event) => {
                let meta = EventMeta {
                    position: envelope.position.0,
                    recorded_at: envelope.recorded_at,
                };
                let (before, after) = fold(meta, &event);
                let entry = entry(envelope, event.summary(), changes(&before, &after, shape));
                view = after;
                entry
            }
            Err(reason) => entry(
                envelope,
                format!("(not readable by this version: {reason})"),
                Vec::new(),
            ),
        };
        entries.push(entry);
    }
    Ok(Timeline {
        subject,
        stream,
        at: cutoff.position,
        as_of: cutoff.time,
        entries,
        view,
        note: None,
    })
}

fn decode(envelope: &Envelope) -> Result<DomainEvent, String> {
    DomainEvent::decode(
        &envelope.event_type,
        envelope.schema_version,
        &envelope.payload,
    )
    .map_err(|error| error.to_string())
}

fn entry(envelope: &Envelope, fact: String, changes: Vec<Change>) -> Entry {
    Entry {
        position: envelope.position.0,
        recorded_at: envelope.recorded_at,
        event_type: envelope.event_type.clone(),
        fact,
        changes,
        data: serde_json::from_slice(&envelope.payload).unwrap_or(Value::Null),
    }
}
