//! Turning an authentic delivery into facts and appending them durably: the receipt and the
//! payment fact (or the anomaly) in one append, deduplicated on the event's identity.

use crate::error::ApiError;
use base64::Engine as _;
use paystate_domain::events::{
    bounded_text, DomainEvent, FactSource, IngestAnomaly, PaymentEventRecorded, WebhookAnomaly,
    WebhookDuplicate, WebhookReceived, MAX_ERROR_TEXT,
};
use paystate_domain::provider::Provider;
use paystate_domain::{streams, Reference};
use paystate_store::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use paystate_vipps::payload::{reference_hint, EpaymentEvent};
use sha2::{Digest, Sha256};
use std::time::Instant;
use uuid::Uuid;

/// What an authentic delivery says, once parsed.
#[derive(Debug)]
pub enum Parsed {
    /// A payment fact (possibly carrying an anomaly such as an MSN mismatch).
    Fact(Box<PaymentEventRecorded>),
    /// Not a usable fact: recorded as an anomaly, under the payment if a reference was readable.
    Anomaly {
        anomaly: IngestAnomaly,
        reference_raw: Option<String>,
    },
}

/// Parses a body that has passed verification. Never fails: what cannot be a fact is an anomaly.
pub fn parse(provider: &Provider, body: &bytes::Bytes) -> Parsed {
    let event = match EpaymentEvent::parse(body.clone()) {
        Ok(event) => event,
        Err(error) => {
            return Parsed::Anomaly {
                anomaly: IngestAnomaly::Unparseable {
                    error: bounded_text(&error.to_string(), MAX_ERROR_TEXT),
                },
                reference_raw: reference_hint(body),
            }
        }
    };
    match event.to_recorded(&provider.id, FactSource::Webhook) {
        Ok(mut fact) => {
            if fact.msn != provider.msn {
                fact.anomaly = Some(IngestAnomaly::MsnMismatch {
                    expected: provider.msn.clone(),
                    got: fact.msn.clone(),
                });
            } else if !fact.name.is_known() {
                fact.anomaly = Some(IngestAnomaly::UnknownEventName {
                    name: bounded_text(fact.name.as_str(), MAX_ERROR_TEXT),
                });
            }
            Parsed::Fact(Box::new(fact))
        }
        Err(error) => Parsed::Anomaly {
            anomaly: error.to_anomaly(),
            reference_raw: Some(bounded_text(&event.reference, 64)),
        },
    }
}

/// The answer to an authentic delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Accepted { position: Position, anomaly: bool },
    Duplicate { original_position: Position },
}

fn new_event(event: DomainEvent, correlation: Uuid) -> NewEvent {
    NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    )
    .with_correlation(correlation)
}

/// Appends and measures; every store error becomes `503 unavailable` or `500 internal`,
/// never a 2xx.
async fn append(
    store: &dyn EventStore,
    stream: &str,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, ApiError> {
    let count = events.len();
    let started = Instant::now();
    let outcome = store
        .append(&StreamId::new(stream), ExpectedVersion::Any, events)
        .await;
    metrics::histogram!(crate::metrics::APPEND_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::histogram!(crate::metrics::APPEND_BATCH_EVENTS).record(count as f64);
    Ok(outcome?)
}

/// Records an authentic delivery: `webhook_received` plus the fact or the anomaly, in one
/// durable append. A fact already recorded gives a `webhook_duplicate` fact instead.
pub async fn record(
    store: &dyn EventStore,
    provider: &Provider,
    receipt: WebhookReceived,
    parsed: Parsed,
    body: &[u8],
    correlation: Uuid,
) -> Result<Recorded, ApiError> {
    let received_at = receipt.received_at;
    let secret_version = receipt.verification.secret_version;
    let received = new_event(DomainEvent::from(receipt), correlation);
    match parsed {
        Parsed::Fact(fact) => {
            let stream = streams::payment_stream(&provider.id, &fact.reference);
            let identity = fact.identity();
            let key = streams::payment_dedupe_key(
                &provider.id,
                &identity.msn,
                &identity.reference,
                &identity.name,
                &identity.psp_reference,
            );
            let anomaly = fact.anomaly.is_some();
            let fact = new_event(DomainEvent::from(*fact), correlation).with_dedupe_key(key);
            match append(store, &stream, vec![received, fact]).await? {
                AppendOutcome::Appended { last, .. } => Ok(Recorded::Accepted {
                    position: last,
                    anomaly,
                }),
                AppendOutcome::Duplicate {
                    original_position, ..
                } => {
                    let duplicate = DomainEvent::from(WebhookDuplicate {
                        provider_id: provider.id.clone(),
                        original_position: original_position.0,
                        identity,
                        secret_version,
                        received_at,
                    });
                    append(store, &stream, vec![new_event(duplicate, correlation)]).await?;
                    Ok(Recorded::Duplicate { original_position })
                }
            }
        }
        Parsed::Anomaly {
            anomaly,
            reference_raw,
        } => {
            let stream = match reference_raw
                .as_deref()
                .and_then(|raw| Reference::parse(raw).ok())
            {
                Some(reference) => streams::payment_stream(&provider.id, &reference),
                None => streams::unmatched_stream(&provider.id),
            };
            // The same authentic body delivered again (a retry) is one anomaly, not many.
            let key = format!(
                "anomaly:{}:{}",
                provider.id,
                hex::encode(Sha256::digest(body))
            );
            let record = DomainEvent::from(WebhookAnomaly {
                provider_id: provider.id.clone(),
                anomaly,
                reference_raw,
                received_at,
            });
            let record = new_event(record, correlation).with_dedupe_key(key);
            match append(store, &stream, vec![received, record]).await? {
                AppendOutcome::Appended { last, .. } => Ok(Recorded::Accepted {
                    position: last,
                    anomaly: true,
                }),
                AppendOutcome::Duplicate {
                    original_position, ..
                } => Ok(Recorded::Duplicate { original_position }),
            }
        }
    }
}

/// The raw body as stored in `webhook_received`.
pub fn body_base64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(body)
}
