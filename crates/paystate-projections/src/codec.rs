//! The compact binary form of one payment (postcard): what is persisted under
//! `payment/{provider}/{reference}` and what a payment not changed since the last commit is
//! kept as in memory.
//!
//! A payment holds the provider and reference once (the provider comes from the key, not
//! the value); its facts do not repeat them. Times are binary, integers are varints. The two
//! rare, free-form parts (ingest anomalies) are JSON text inside, as the event log has them.
//! The value starts with the reference ([`Head`]), so that a key is compared without decoding
//! the facts.

use paystate_domain::events::{FactSource, IngestAnomaly, PaymentEventRecorded};
use paystate_domain::payment::{PaymentParts, PaymentProjection, PaymentState, RecordedFact};
use paystate_domain::{
    Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Why a stored payment could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("not a stored payment: {0}")]
    Format(#[from] postcard::Error),
    #[error("an ingest anomaly is not readable: {0}")]
    Anomaly(#[from] serde_json::Error),
    #[error("the reference is not valid: {0}")]
    Reference(#[from] paystate_domain::IdError),
    #[error("the facts are not a payment's: {0}")]
    Parts(#[from] paystate_domain::payment::PartsError),
}

/// The start of a stored payment: its reference, read to compare keys without decoding.
#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    pub reference: &'a str,
}

#[derive(Serialize)]
struct PaymentOut<'a> {
    reference: &'a str,
    first_position: u64,
    state: PaymentState,
    facts: Vec<FactOut<'a>>,
    conflicts: &'a BTreeSet<(PaymentEventName, PspReference)>,
    duplicates: u64,
    ingest_anomalies: Vec<String>,
    first_seen_at: Option<OffsetDateTime>,
    last_event_at: Option<OffsetDateTime>,
    position: u64,
}

#[derive(Serialize)]
struct FactOut<'a> {
    msn: &'a Msn,
    psp_reference: &'a PspReference,
    name: &'a PaymentEventName,
    amount: Amount,
    currency: Currency,
    timestamp: OffsetDateTime,
    idempotency_key: Option<&'a str>,
    success: bool,
    source: FactSource,
    anomaly: Option<String>,
    position: u64,
    recorded_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct PaymentIn {
    reference: String,
    first_position: u64,
    state: PaymentState,
    facts: Vec<FactIn>,
    conflicts: BTreeSet<(PaymentEventName, PspReference)>,
    duplicates: u64,
    ingest_anomalies: Vec<String>,
    first_seen_at: Option<OffsetDateTime>,
    last_event_at: Option<OffsetDateTime>,
    position: u64,
}

#[derive(Deserialize)]
struct FactIn {
    msn: Msn,
    psp_reference: PspReference,
    name: PaymentEventName,
    amount: Amount,
    currency: Currency,
    timestamp: OffsetDateTime,
    idempotency_key: Option<String>,
    success: bool,
    source: FactSource,
    anomaly: Option<String>,
    position: u64,
    recorded_at: OffsetDateTime,
}

/// A decoded payment with what the listing index keeps beside it.
#[derive(Debug)]
pub(crate) struct StoredPayment {
    pub projection: PaymentProjection,
    pub first_position: u64,
    pub state: PaymentState,
}

fn anomaly_text(anomaly: &IngestAnomaly) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(anomaly).unwrap_or_default()
}

/// Encodes a payment; `first_position` and `state` are the listing index's.
pub(crate) fn encode(
    projection: &PaymentProjection,
    first_position: u64,
    state: PaymentState,
) -> Vec<u8> {
    let facts = projection
        .facts()
        .iter()
        .map(|recorded| {
            let fact = &recorded.fact;
            FactOut {
                msn: &fact.msn,
                psp_reference: &fact.psp_reference,
                name: &fact.name,
                amount: fact.amount,
                currency: fact.currency,
                timestamp: fact.timestamp,
                idempotency_key: fact.idempotency_key.as_deref(),
                success: fact.success,
                source: fact.source,
                anomaly: fact.anomaly.as_ref().map(anomaly_text),
                position: recorded.position,
                recorded_at: recorded.recorded_at,
            }
        })
        .collect();
    let out = PaymentOut {
        reference: projection.reference().as_str(),
        first_position,
        state,
        facts,
        conflicts: projection.conflicts(),
        duplicates: projection.duplicates(),
        ingest_anomalies: projection
            .ingest_anomalies()
            .iter()
            .map(anomaly_text)
            .collect(),
        first_seen_at: projection.first_seen_at(),
        last_event_at: projection.last_event_at(),
        position: projection.position(),
    };
    // Only times outside what the binary form of `time` holds could fail, and the log's
    // times are all inside it; an empty value is refused at load (a rebuild), never misread.
    postcard::to_stdvec(&out).unwrap_or_default()
}

/// Reads the start of a stored payment.
pub(crate) fn head(bytes: &[u8]) -> Result<Head<'_>, CodecError> {
    Ok(postcard::take_from_bytes::<Head<'_>>(bytes)?.0)
}

/// Decodes a payment of `provider_id`.
pub(crate) fn decode(provider_id: &ProviderId, bytes: &[u8]) -> Result<StoredPayment, CodecError> {
    let stored: PaymentIn = postcard::from_bytes(bytes)?;
    let reference = Reference::try_from(stored.reference)?;
    let mut facts = Vec::with_capacity(stored.facts.len());
    for fact in stored.facts {
        let anomaly = match fact.anomaly {
            Some(text) => Some(serde_json::from_str(&text)?),
            None => None,
        };
        facts.push(RecordedFact {
            fact: PaymentEventRecorded {
                provider_id: provider_id.clone(),
                msn: fact.msn,
                reference: reference.clone(),
                psp_reference: fact.psp_reference,
                name: fact.name,
                amount: fact.amount,
                currency: fact.currency,
                timestamp: fact.timestamp,
                idempotency_key: fact.idempotency_key,
                success: fact.success,
                source: fact.source,
                anomaly,
            },
            position: fact.position,
            recorded_at: fact.recorded_at,
        });
    }
    let ingest_anomalies = stored
        .ingest_anomalies
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<BTreeSet<IngestAnomaly>, _>>()?;
    let projection = PaymentProjection::from_parts(PaymentParts {
        provider_id: provider_id.clone(),
        reference,
        facts,
        conflicts: stored.conflicts,
        duplicates: stored.duplicates,
        ingest_anomalies,
        first_seen_at: stored.first_seen_at,
        last_event_at: stored.last_event_at,
        position: stored.position,
    })?;
    Ok(StoredPayment {
        projection,
        first_position: stored.first_position,
        state: stored.state,
    })
}
