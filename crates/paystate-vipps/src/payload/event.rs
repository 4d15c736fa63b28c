//! The wire form of an ePayment event, parsed tolerantly and kept with its raw bytes (read by
//! [`super::read`]).

use super::view::AmountView;
use bytes::Bytes;
use paystate_domain::PaymentEventName;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// How many characters of untrusted text an error may repeat.
const ECHO_LIMIT: usize = 64;

/// Why a body is not an ePayment event at all. The server records such an authentic delivery
/// as an `unparseable` anomaly and answers 200.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON (or nested deeper than the parser allows).
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the body is JSON but not an object")]
    NotAnObject,
    /// One of the identity fields is absent or null.
    #[error("the field {0} is missing")]
    MissingField(&'static str),
    /// A field the event is read from appears twice: which value Vipps meant cannot be told.
    #[error("the field {0} is sent twice, so the body is ambiguous")]
    RepeatedField(&'static str),
    /// A field has a JSON type that cannot carry its value.
    #[error("the field {field} is {found}, expected {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

/// The `amount` object as sent: a currency code and a value in minor units, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAmount {
    /// The currency code as sent, if any.
    pub currency: Option<String>,
    /// The value in minor units as sent (a JSON integer, or a string of digits), if any.
    pub value: Option<WireValue>,
}

/// An amount value as sent: an integer, or text that claims to be one (a JSON string, or a
/// number that is no 64-bit integer, as the body wrote it: `1e30`, `2000.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireValue {
    Integer(i128),
    Text(String),
}

/// An ePayment webhook event as received: the identity fields as text, the rest as sent, every
/// unknown field kept, and the raw body.
///
/// Parsing checks only the shape (a JSON object with the four identity fields as text); the
/// rules of each field are checked by [`EpaymentEvent::to_recorded`], so a delivery that is
/// authentic but odd can still be recorded with its identity.
#[derive(Debug, Clone, PartialEq)]
pub struct EpaymentEvent {
    pub msn: String,
    pub reference: String,
    pub psp_reference: String,
    pub name: PaymentEventName,
    pub amount: Option<WireAmount>,
    pub timestamp: Option<String>,
    /// The merchant's request key: absent and `null` both read as `None` (VIPPS.md §3: not a
    /// delivery id).
    pub idempotency_key: Option<String>,
    pub success: Option<bool>,
    /// Fields this version does not model (`captureGuaranteedUntil`, `userDetails`, ...).
    pub extra: Map<String, Value>,
    raw: Bytes,
}

/// The identity of an event (VIPPS.md §3: there is no event id), borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventIdentity<'a> {
    pub msn: &'a str,
    pub reference: &'a str,
    pub name: &'a PaymentEventName,
    pub psp_reference: &'a str,
}

impl EpaymentEvent {
    /// Parses a raw webhook body. Never panics.
    pub fn parse(raw: impl Into<Bytes>) -> Result<Self, PayloadError> {
        let raw = raw.into();
        // A second handle on the same buffer for the fields to borrow from while `raw` moves.
        let body = raw.clone();
        let (event, extra) = super::read::read(&body)?;
        Ok(Self {
            msn: event.msn.into_owned(),
            reference: event.reference.into_owned(),
            psp_reference: event.psp_reference.into_owned(),
            name: event.name,
            amount: event.amount.map(AmountView::into_owned),
            timestamp: event.timestamp.map(Cow::into_owned),
            idempotency_key: event.idempotency_key.map(Cow::into_owned),
            success: event.success,
            extra,
            raw,
        })
    }

    /// The body exactly as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The body exactly as received, shared.
    pub fn raw_bytes(&self) -> Bytes {
        self.raw.clone()
    }

    /// `(msn, reference, name, pspReference)`, as sent.
    pub fn identity(&self) -> EventIdentity<'_> {
        EventIdentity {
            msn: &self.msn,
            reference: &self.reference,
            name: &self.name,
            psp_reference: &self.psp_reference,
        }
    }
}

/// The `reference` of a body that may not parse as an event, if it has one as text: lets the
/// server file an anomaly under the right payment. Bounded to 64 characters.
pub fn reference_hint(raw: &[u8]) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(raw) else {
        return None;
    };
    fields.get("reference").and_then(Value::as_str).map(echo)
}

/// A shortened copy of untrusted text, safe to put in an error or a record.
pub(crate) fn echo(text: &str) -> String {
    let mut shown: String = text.chars().take(ECHO_LIMIT).collect();
    if text.chars().nth(ECHO_LIMIT).is_some() {
        shown.push('…');
    }
    shown
}
