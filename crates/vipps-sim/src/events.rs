//! ePayment events: the eight names, their webhook event types, and the compact JSON body a
//! delivery carries, written by [`paystate_vipps::payload`] with Vipps's key order (VIPPS.md §4).

use paystate_domain::{Amount, PaymentEventName, PspReference};
use paystate_vipps::payload::VippsEventBody;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::{Money, Msn, Reference};

/// The `name` of an ePayment event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventName {
    /// The payment was created.
    Created,
    /// The user aborted it.
    Aborted,
    /// The user did not act in time.
    Expired,
    /// The merchant cancelled (part of) an authorized payment.
    Cancelled,
    /// An amount was captured.
    Captured,
    /// An amount was refunded.
    Refunded,
    /// The user approved the payment.
    Authorized,
    /// The merchant cancelled before authorization.
    Terminated,
}

impl EventName {
    /// Every name, in the order of the Webhooks API documentation.
    pub const ALL: [EventName; 8] = [
        Self::Created,
        Self::Aborted,
        Self::Expired,
        Self::Cancelled,
        Self::Captured,
        Self::Refunded,
        Self::Authorized,
        Self::Terminated,
    ];

    /// The payload's `name`, e.g. `CAPTURED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Aborted => "ABORTED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
            Self::Captured => "CAPTURED",
            Self::Refunded => "REFUNDED",
            Self::Authorized => "AUTHORIZED",
            Self::Terminated => "TERMINATED",
        }
    }

    /// The webhook event type a registration subscribes to, e.g. `epayments.payment.captured.v1`.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Created => "epayments.payment.created.v1",
            Self::Aborted => "epayments.payment.aborted.v1",
            Self::Expired => "epayments.payment.expired.v1",
            Self::Cancelled => "epayments.payment.cancelled.v1",
            Self::Captured => "epayments.payment.captured.v1",
            Self::Refunded => "epayments.payment.refunded.v1",
            Self::Authorized => "epayments.payment.authorized.v1",
            Self::Terminated => "epayments.payment.terminated.v1",
        }
    }

    /// The domain's name for this event.
    pub fn to_domain(self) -> PaymentEventName {
        PaymentEventName::parse(self.as_str())
    }

    /// The name for a webhook event type, if it is one of the eight.
    pub fn from_event_type(event_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|name| name.event_type() == event_type)
    }
}

/// One thing that happened to a payment: what `GET .../events` lists and what a webhook
/// delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentEvent {
    /// Which merchant.
    pub msn: Msn,
    /// Which payment.
    pub reference: Reference,
    /// The operation's own PSP reference.
    pub psp_reference: PspReference,
    /// What happened.
    pub name: EventName,
    /// The operation's amount.
    pub amount: Money,
    /// When.
    pub timestamp: OffsetDateTime,
    /// The merchant's `Idempotency-Key` for the operation, where there was one.
    pub idempotency_key: Option<String>,
    /// False when the operation failed: the event is a fact but moves no money.
    pub success: bool,
}

/// One entry of `GET /epayment/v1/payments/{reference}/events`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventListEntry<'a> {
    reference: &'a str,
    psp_reference: &'a str,
    name: EventName,
    amount: Money,
    timestamp: String,
    idempotency_key: Option<&'a str>,
    success: bool,
}

impl PaymentEvent {
    /// The compact JSON a webhook delivery carries.
    pub fn webhook_body(&self) -> Vec<u8> {
        VippsEventBody {
            msn: self.msn.clone(),
            reference: self.reference.clone(),
            psp_reference: self.psp_reference.clone(),
            name: self.name.to_domain(),
            currency: self.amount.currency,
            amount: Amount::from_minor_units(self.amount.value),
            timestamp: self.timestamp,
            idempotency_key: self.idempotency_key.clone(),
            success: self.success,
        }
        .to_vipps_json()
    }

    pub(crate) fn list_entry(&self) -> EventListEntry<'_> {
        EventListEntry {
            reference: self.reference.as_str(),
            psp_reference: self.psp_reference.as_str(),
            name: self.name,
            amount: self.amount,
            timestamp: rfc3339_millis(self.timestamp),
            idempotency_key: self.idempotency_key.as_deref(),
            success: self.success,
        }
    }
}

/// A fresh PSP reference for one operation.
pub(crate) fn new_psp_reference() -> PspReference {
    // A hyphenated UUID is 36 printable ASCII characters, always within the rule.
    #[allow(clippy::expect_used)]
    PspReference::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid PSP reference")
}

/// `2025-01-14T09:30:01.123Z`: UTC with milliseconds, as in the events list.
pub(crate) fn rfc3339_millis(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let truncated = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    let text = truncated.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 drops trailing zero fractions; Vipps always writes three digits.
    match text.strip_suffix('Z') {
        Some(stem) if !stem.contains('.') => format!("{stem}.000Z"),
        Some(stem) => {
            let (whole, fraction) = stem.split_once('.').unwrap_or((stem, ""));
            format!("{whole}.{fraction:0<3}Z")
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Currency;
    use time::macros::datetime;

    fn event() -> PaymentEvent {
        PaymentEvent {
            msn: Msn::parse("123456").unwrap(),
            reference: Reference::parse("acme-order-1001").unwrap(),
            psp_reference: PspReference::parse("9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22").unwrap(),
            name: EventName::Authorized,
            amount: Money {
                currency: Currency::Nok,
                value: 49900,
            },
            timestamp: datetime!(2025-01-14 09:30:01.123 UTC),
            idempotency_key: Some("3b9d7f1e-8c2a-4e6b-9d0f-1a2b3c4d5e6f".into()),
            success: true,
        }
    }

    #[test]
    fn webhook_body_is_byte_for_byte_the_documented_vector() {
        let expected = r#"{"msn":"123456","reference":"acme-order-1001","pspReference":"9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22","name":"AUTHORIZED","amount":{"currency":"NOK","value":49900},"timestamp":"2025-01-14T09:30:01.123Z","idempotencyKey":"3b9d7f1e-8c2a-4e6b-9d0f-1a2b3c4d5e6f","success":true}"#;
        assert_eq!(String::from_utf8(event().webhook_body()).unwrap(), expected);
    }

    #[test]
    fn timestamps_always_have_three_fraction_digits() {
        assert_eq!(
            rfc3339_millis(datetime!(2025-01-14 09:30:01 UTC)),
            "2025-01-14T09:30:01.000Z"
        );
        assert_eq!(
            rfc3339_millis(datetime!(2025-01-14 09:30:01.5 UTC)),
            "2025-01-14T09:30:01.500Z"
        );
        assert_eq!(
            rfc3339_millis(datetime!(2025-01-14 09:30:01.123456 UTC)),
            "2025-01-14T09:30:01.123Z"
        );
    }

    #[test]
    fn event_types_round_trip() {
        for name in EventName::ALL {
            assert_eq!(EventName::from_event_type(name.event_type()), Some(name));
        }
        assert_eq!(
            EventName::from_event_type("epayments.payment.paid.v1"),
            None
        );
    }
}
