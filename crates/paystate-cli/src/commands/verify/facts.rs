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
use paystate_vipps::payload::EventView;

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
    let delivered = EventView::parse(&body)
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
