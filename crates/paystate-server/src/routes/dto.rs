//! The JSON shapes of the payment and event routes (SPEC §3.3, §3.4), with their OpenAPI
//! schemas. Built from the domain's views and the store's envelopes, never stored.

use paystate_domain::payment::PaymentView;
use paystate_projections::HistoryEntry;
use paystate_store::Envelope;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

/// Amounts of a payment, in minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateDto {
    pub authorized: u64,
    pub captured: u64,
    pub refunded: u64,
    pub cancelled: u64,
}

/// A payment as paystate knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDto {
    pub provider_id: String,
    pub reference: String,
    pub msn: Option<String>,
    /// `CREATED`, `AUTHORIZED`, `ABORTED`, `EXPIRED` or `TERMINATED`; `null` while no fact
    /// has been recorded (the payment is known only from deliveries that could not be used).
    pub state: Option<String>,
    /// `NOK`, `DKK` or `EUR`.
    pub currency: Option<String>,
    /// The payment's amount in minor units.
    pub amount: Option<u64>,
    pub aggregate: AggregateDto,
    /// Distinct facts recorded.
    pub events: u64,
    /// Deliveries of a fact already recorded.
    pub duplicates: u64,
    /// Invariant violations and surprises, each an object with a `kind`.
    #[schema(value_type = Vec<Object>)]
    pub anomalies: Vec<serde_json::Value>,
    /// RFC 3339.
    pub first_seen_at: Option<String>,
    /// RFC 3339.
    pub last_event_at: Option<String>,
    /// The position of the last event folded in.
    pub position: u64,
}

impl From<PaymentView> for PaymentDto {
    fn from(view: PaymentView) -> PaymentDto {
        PaymentDto {
            provider_id: view.provider_id.to_string(),
            reference: view.reference.to_string(),
            msn: view.msn.map(|msn| msn.to_string()),
            state: (view.events > 0).then(|| view.state.as_str().to_owned()),
            currency: view.currency.map(|currency| currency.as_str().to_owned()),
            amount: view.amount.map(|amount| amount.minor_units()),
            aggregate: AggregateDto {
                authorized: view.aggregate.authorized.minor_units(),
                captured: view.aggregate.captured.minor_units(),
                refunded: view.aggregate.refunded.minor_units(),
                cancelled: view.aggregate.cancelled.minor_units(),
            },
            events: view.events,
            duplicates: view.duplicates,
            anomalies: view
                .anomalies
                .iter()
                .filter_map(|anomaly| serde_json::to_value(anomaly).ok())
                .collect(),
            first_seen_at: view.first_seen_at.map(rfc3339),
            last_event_at: view.last_event_at.map(rfc3339),
            position: view.position,
        }
    }
}

/// A page of payments.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPageDto {
    pub payments: Vec<PaymentDto>,
    /// Pass as `after` for the next page; `null` at the end.
    pub next: Option<u64>,
}

/// One fact of a history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntryDto {
    pub position: u64,
    /// The stable `snake_case` event type, e.g. `payment_event_recorded`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339.
    pub recorded_at: String,
    /// The event's fields (see `docs/events.md`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<HistoryEntry> for HistoryEntryDto {
    fn from(entry: HistoryEntry) -> HistoryEntryDto {
        HistoryEntryDto {
            position: entry.position,
            event_type: entry.event_type,
            recorded_at: rfc3339(entry.recorded_at),
            data: entry.data,
        }
    }
}

/// A history: facts in log order.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    pub events: Vec<HistoryEntryDto>,
}

/// One envelope of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvelopeDto {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    /// UUID v7.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    /// RFC 3339.
    pub recorded_at: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub dedupe_key: Option<String>,
    /// The payload. For `webhook_received`: `body_base64` (the raw body), `signed` (the signed
    /// headers) and `verification` (secret version, skew), enough to re-verify later.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Hex SHA-256 of the previous envelope (the hash chain).
    pub prev_hash: String,
    /// Hex SHA-256 of this envelope.
    pub hash: String,
}

impl From<&Envelope> for EnvelopeDto {
    fn from(envelope: &Envelope) -> EnvelopeDto {
        EnvelopeDto {
            position: envelope.position.0,
            stream: envelope.stream.to_string(),
            stream_version: envelope.stream_version.0,
            event_id: envelope.event_id.to_string(),
            event_type: envelope.event_type.clone(),
            schema_version: envelope.schema_version,
            recorded_at: rfc3339(envelope.recorded_at),
            correlation_id: envelope.correlation_id.map(|id| id.to_string()),
            causation_id: envelope.causation_id.map(|id| id.to_string()),
            dedupe_key: envelope.dedupe_key.clone(),
            data: HistoryEntry::from_envelope(envelope).data,
            prev_hash: hex::encode(envelope.prev_hash),
            hash: hex::encode(envelope.hash),
        }
    }
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageDto {
    pub events: Vec<EnvelopeDto>,
    /// Pass as `after` for the next page; `null` when this page reached the head.
    pub next: Option<u64>,
}
