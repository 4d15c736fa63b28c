//! Turning an authentic delivery into facts and appending them durably: the receipt and the
//! payment fact (or the anomaly) in one append, deduplicated on the event's identity.

use crate::error::ApiError;
use base64::Engine as _;
use paystate_domain::events::{
    bounded_text, ConflictingCopy, DomainEvent, FactSource, IngestAnomaly, PaymentEventRecorded,
    WebhookAnomaly, WebhookDuplicate, WebhookReceived, MAX_ERROR_TEXT,
};
use paystate_domain::{streams, Msn, ProviderId, Reference};
use paystate_store::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use paystate_vipps::payload::{reference_hint, EventView, PayloadError};
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
pub fn parse(provider: &ProviderId, msn: &Msn, body: &[u8]) -> Parsed {
    // Read in place: the fields are borrowed from the body until they become the fact's.
    let event = match EventView::parse(body) {
        Ok(event) => event,
        Err(error) => {
            // A reference sent twice names no payment: the anomaly goes to no payment's stream.
            let reference_raw = match error {
                PayloadError::RepeatedField("reference") => None,
                _ => reference_hint(body),
            };
            return Parsed::Anomaly {
                anomaly: IngestAnomaly::Unparseable {
                    error: bounded_text(&error.to_string(), MAX_ERROR_TEXT),
                },
                reference_raw,
            };
        }
    };
    match event.to_recorded(provider, FactSource::Webhook) {
        Ok(mut fact) => {
            flag_anomaly(&mut fact, msn);
            Parsed::Fact(Box::new(fact))
        }
        Err(error) => Parsed::Anomaly {
            anomaly: error.to_anomaly(),
            reference_raw: Some(bounded_text(&event.reference, 64)),
        },
    }
}

/// Marks what makes a readable fact odd: another MSN than the provider's, or an event name this
/// version does not know. The fact is recorded all the same (VIPPS.md §3).
pub fn flag_anomaly(fact: &mut PaymentEventRecorded, msn: &Msn) {
    if fact.msn != *msn {
        fact.anomaly = Some(IngestAnomaly::MsnMismatch {
            expected: msn.clone(),
            got: fact.msn.clone(),
        });
    } else if !fact.name.is_known() {
        fact.anomaly = Some(IngestAnomaly::UnknownEventName {
            name: bounded_text(fact.name.as_str(), MAX_ERROR_TEXT),
        });
    }
}

/// The answer to an authentic delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Accepted { position: Position, anomaly: bool },
    Duplicate { original_position: Position },
}

pub(crate) fn new_event(event: &DomainEvent, correlation: Uuid) -> NewEvent {
    NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    )
    .with_correlation(correlation)
}

/// Whether `fact` says something else than the fact recorded at `original` (same identity). A
/// recorded event that cannot be read counts as the same: nothing is claimed that is not known.
/// One read of the log per duplicate delivery, served from sled's cache as a rule (the
/// original is recent when duplicates come: late 200s, a rotation's overlap).
fn differs_from_recorded(
    store: &dyn EventStore,
    original: Position,
    fact: &PaymentEventRecorded,
) -> bool {
    let Ok(Some(envelope)) = store.read_event(original) else {
        return false;
    };
    match DomainEvent::decode(
        &envelope.event_type,
        envelope.schema_version,
        &envelope.payload,
    ) {
        Ok(DomainEvent::PaymentEventRecorded(recorded)) => !recorded.says_the_same(fact),
        _ => false,
    }
}

/// The histograms every append records, registered once rather than looked up per delivery.
#[derive(Debug, Clone)]
pub struct AppendMetrics {
    seconds: metrics::Histogram,
    batch_events: metrics::Histogram,
}

impl AppendMetrics {
    /// The handles from the process-wide recorder (install it first: [`crate::metrics::install`]).
    pub fn register() -> Self {
        AppendMetrics {
            seconds: metrics::histogram!(crate::metrics::APPEND_SECONDS),
            batch_events: metrics::histogram!(crate::metrics::APPEND_BATCH_EVENTS),
        }
    }
}

/// Appends and measures; every store error becomes `503 unavailable` or `500 internal`,
/// never a 2xx.
pub(crate) async fn append(
    store: &dyn EventStore,
    metrics: &AppendMetrics,
    stream: &str,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, ApiError> {
    let count = events.len();
    let started = Instant::now();
    let outcome = store
        .append(&StreamId::new(stream), ExpectedVersion::Any, events)
        .await;
    metrics.seconds.record(started.elapsed().as_secs_f64());
    metrics.batch_events.record(count as f64);
    Ok(outcome?)
}

/// Records an authentic delivery: `webhook_received` plus the fact or the anomaly, in one
/// durable append. A fact already recorded gives a `webhook_duplicate` fact instead.
pub async fn record(
    store: &dyn EventStore,
    metrics: &AppendMetrics,
    provider: &ProviderId,
    receipt: WebhookReceived,
    parsed: Parsed,
    body: &[u8],
    correlation: Uuid,
) -> Result<Recorded, ApiError> {
    let received_at = receipt.received_at;
    let secret_version = receipt.verification.secret_version;
    // Kept (not cloned) for a duplicate whose content differs, which stores the delivery.
    let receipt = DomainEvent::from(receipt);
    let received = new_event(&receipt, correlation);
    match parsed {
        Parsed::Fact(fact) => {
            let stream = streams::payment_stream(provider, &fact.reference);
            let identity = fact.identity();
            let key = streams::payment_dedupe_key(
                provider,
                &identity.msn,
                &identity.reference,
                &identity.name,
                &identity.psp_reference,
            );
            let anomaly = fact.anomaly.is_some();
            let fact = DomainEvent::from(*fact);
            let recorded = new_event(&fact, correlation).with_dedupe_key(key);
            match append(store, metrics, &stream, vec![received, recorded]).await? {
                AppendOutcome::Appended { last, .. } => Ok(Recorded::Accepted {
                    position: last,
                    anomaly,
                }),
                AppendOutcome::Duplicate {
                    original_position, ..
                } => {
                    let conflict = match (fact, receipt) {
                        (
                            DomainEvent::PaymentEventRecorded(fact),
                            DomainEvent::WebhookReceived(receipt),
                        ) if differs_from_recorded(store, original_position, &fact) => {
                            Some(Box::new(ConflictingCopy { fact, receipt }))
                        }
                        _ => None,
                    };
                    let duplicate = DomainEvent::from(WebhookDuplicate {
                        provider_id: provider.clone(),
                        original_position: original_position.0,
                        identity,
                        secret_version,
                        received_at,
                        conflict,
                    });
                    append(
                        store,
                        metrics,
                        &stream,
                        vec![new_event(&duplicate, correlation)],
                    )
                    .await?;
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
                Some(reference) => streams::payment_stream(provider, &reference),
                None => streams::unmatched_stream(provider),
            };
            // The same authentic body delivered again (a retry) is one anomaly, not many.
            let key = format!("anomaly:{}:{}", provider, hex::encode(Sha256::digest(body)));
            let record = DomainEvent::from(WebhookAnomaly {
                provider_id: provider.clone(),
                anomaly,
                reference_raw,
                received_at,
            });
            let record = new_event(&record, correlation).with_dedupe_key(key);
            match append(store, metrics, &stream, vec![received, record]).await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderId {
        ProviderId::parse("vipps-test").unwrap()
    }

    fn msn() -> Msn {
        Msn::parse("123456").unwrap()
    }

    fn body(msn: &str, reference: &str, name: &str, value: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!(
            r#"{{"msn":"{msn}","reference":"{reference}","pspReference":"psp-1","name":"{name}","amount":{{"currency":"NOK","value":{value}}},"timestamp":"2025-01-14T09:30:01.123Z","idempotencyKey":null,"success":true}}"#
        ))
    }

    fn fact_anomaly(parsed: Parsed) -> Option<IngestAnomaly> {
        match parsed {
            Parsed::Fact(fact) => fact.anomaly,
            Parsed::Anomaly { anomaly, .. } => {
                panic!("expected a fact, got the anomaly {anomaly:?}")
            }
        }
    }

    #[test]
    fn a_well_formed_event_is_a_fact_without_anomaly() {
        let parsed = parse(
            &provider(),
            &msn(),
            &body("123456", "acme-order-1001", "AUTHORIZED", "49900"),
        );
        assert_eq!(fact_anomaly(parsed), None);
    }

    #[test]
    fn another_msn_and_an_unknown_name_are_facts_with_an_anomaly() {
        let other = parse(
            &provider(),
            &msn(),
            &body("999999", "acme-order-1001", "AUTHORIZED", "1"),
        );
        assert!(matches!(
            fact_anomaly(other),
            Some(IngestAnomaly::MsnMismatch { .. })
        ));
        let unknown = parse(
            &provider(),
            &msn(),
            &body("123456", "acme-order-1001", "TELEPORTED", "1"),
        );
        assert!(
            matches!(fact_anomaly(unknown), Some(IngestAnomaly::UnknownEventName { name }) if name == "TELEPORTED")
        );
    }

    #[test]
    fn what_cannot_be_a_fact_is_an_anomaly_filed_under_its_reference_when_readable() {
        match parse(
            &provider(),
            &msn(),
            &bytes::Bytes::from_static(b"{not json"),
        ) {
            Parsed::Anomaly {
                anomaly: IngestAnomaly::Unparseable { .. },
                reference_raw: None,
            } => {}
            other => panic!("{other:?}"),
        }
        match parse(
            &provider(),
            &msn(),
            &body("123456", "acme-order-1001", "CAPTURED", "-5"),
        ) {
            Parsed::Anomaly {
                anomaly: IngestAnomaly::InvalidField { field, .. },
                reference_raw: Some(reference),
            } => {
                assert_eq!(field, "amount.value");
                assert_eq!(reference, "acme-order-1001");
            }
            other => panic!("{other:?}"),
        }
        // Two references: the body names no payment, so the anomaly is filed under none.
        let ambiguous = br#"{"msn":"123456","reference":"order-1","reference":"order-2","pspReference":"p","name":"AUTHORIZED"}"#;
        match parse(&provider(), &msn(), &bytes::Bytes::from_static(ambiguous)) {
            Parsed::Anomaly {
                anomaly: IngestAnomaly::Unparseable { error },
                reference_raw: None,
            } => assert_eq!(
                error,
                "the field reference is sent twice, so the body is ambiguous"
            ),
            other => panic!("{other:?}"),
        }
    }
}
