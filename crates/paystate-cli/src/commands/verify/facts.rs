//! That every payment fact recorded from a webhook says what its signed delivery says.
//!
//! Ingestion appends a delivery's `webhook_received` and the `payment_event_recorded` read
//! from its body in one append, so the receipt sits right before its fact. The body is read
//! again here, the way ingestion reads it, and every field that moves money or identifies the
//! fact must match: a fact edited after the fact (and its hash chain recomputed) is caught as
//! soon as its receipt still carries the signed body.

use base64::Engine as _;
use paystate_domain::events::{FactSource, PaymentEventRecorded, WebhookReceived};
use paystate_store::Position;
use paystate_vipps::payload::{EventView, PayloadError};

/// The fields compared, by name, as a fact and the body read again give them.
fn fields(fact: &PaymentEventRecorded) -> [(&'static str, String); 10] {
    [
        ("provider_id", fact.provider_id.to_string()),
        ("msn", fact.msn.to_string()),
        ("reference", fact.reference.to_string()),
        ("psp_reference", fact.psp_reference.to_string()),
        ("name", fact.name.to_string()),
        ("amount", fact.amount.minor_units().to_string()),
        ("currency", fact.currency.to_string()),
        ("timestamp", fact.timestamp.to_string()),
        ("success", fact.success.to_string()),
        ("idempotency_key", format!("{:?}", fact.idempotency_key)),
    ]
}

/// Checks the fact at `position` against `receipt`, the event right before it (if it is a
/// receipt). `Ok` for facts not from a webhook (polled facts have no delivery).
pub fn check(
    position: Position,
    fact: &PaymentEventRecorded,
    receipt: Option<&(Position, WebhookReceived)>,
) -> Result<(), String> {
    let right_after = receipt.filter(|(at, _)| at.next() == position);
    if fact.source != FactSource::Webhook {
        // A polled fact is appended alone: one right after a delivery took that delivery's
        // place (its source changed after the fact).
        return match right_after {
            None => Ok(()),
            Some((at, _)) => Err(format!(
                "a fact marked as found by polling right after the delivery at position {}, which a webhook fact belongs to",
                at.0
            )),
        };
    }
    let receipt = match right_after {
        Some((_, receipt)) => receipt,
        _ => {
            return Err(
                "a payment fact from a webhook without the delivery right before it".to_owned(),
            )
        }
    };
    let body = base64::engine::general_purpose::STANDARD
        .decode(&receipt.body_base64)
        .map_err(|error| format!("the delivery's stored body is not base64: {error}"))?;
    // A body that sends a field twice is now an anomaly, but a fact recorded from one before
    // was read with each field's last value: read it that way again.
    let last_values;
    let readable = match EventView::parse(&body) {
        Err(PayloadError::RepeatedField(_)) => {
            last_values = serde_json::from_slice::<serde_json::Value>(&body)
                .and_then(|value| serde_json::to_vec(&value))
                .map_err(|error| format!("the delivery's body cannot be read: {error}"))?;
            last_values.as_slice()
        }
        _ => body.as_slice(),
    };
    let delivered = EventView::parse(readable)
        .map_err(|error| format!("the delivery's body cannot be read as an event: {error}"))?
        .to_recorded(&receipt.provider_id, FactSource::Webhook)
        .map_err(|error| format!("the delivery's body is not a payment fact: {error}"))?;
    for ((name, recorded), (_, signed)) in fields(fact).into_iter().zip(fields(&delivered)) {
        if recorded != signed {
            return Err(format!(
                "the recorded fact does not say what its delivery (position {}) says: {name} {recorded} recorded, {signed} delivered",
                position.0 - 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery of `body` and the fact an older version recorded from it.
    fn recorded(body: &str, amount: u64) -> ((Position, WebhookReceived), PaymentEventRecorded) {
        let receipt = serde_json::from_value(serde_json::json!({
            "provider_id": "vipps-test",
            "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
            "signed": {"x_ms_date": "d", "x_ms_content_sha256": "h", "host": "pay.example.no",
                       "path_and_query": "/webhooks/vipps/vipps-test", "authorization_header": "authorization",
                       "signature": "s"},
            "received_at": "2025-01-14T09:30:05Z",
            "verification": {"secret_version": 1, "date_skew_seconds": 0, "older_secret": false}
        }))
        .expect("a receipt");
        let fact = serde_json::from_value(serde_json::json!({
            "provider_id": "vipps-test", "msn": "123456", "reference": "acme-order-1001",
            "psp_reference": "psp-1", "name": "CAPTURED", "amount": amount, "currency": "NOK",
            "timestamp": "2025-01-14T09:30:01.123Z", "success": true
        }))
        .expect("a fact");
        ((Position(4), receipt), fact)
    }

    #[test]
    fn a_body_recorded_with_a_field_twice_is_read_with_the_last_value_as_it_was_then() {
        let body = r#"{"msn":"123456","reference":"acme-order-1001","pspReference":"psp-1","name":"CAPTURED","amount":{"currency":"NOK","value":100,"value":900},"timestamp":"2025-01-14T09:30:01.123Z","success":true}"#;
        let (receipt, fact) = recorded(body, 900);
        assert_eq!(check(Position(5), &fact, Some(&receipt)), Ok(()));
        let (receipt, fact) = recorded(body, 100);
        let failure = check(Position(5), &fact, Some(&receipt)).unwrap_err();
        assert!(
            failure.contains("amount 100 recorded, 900 delivered"),
            "{failure}"
        );
    }
}
