//! [`EventView`]: an ePayment event read in place, its text borrowed from the body.

use super::event::{EpaymentEvent, EventIdentity, PayloadError, WireAmount, WireValue};
use paystate_domain::PaymentEventName;
use std::borrow::Cow;

/// An ePayment event read from a body it borrows from: the same fields and the same tolerance
/// as [`EpaymentEvent`], without copying its text (only a value holding JSON escapes is
/// copied) and without keeping the fields it does not model.
///
/// ```
/// use paystate_vipps::payload::{EventView, PaymentEventName};
///
/// let body = br#"{"msn":123456,"reference":"acme-order-1001","pspReference":"p-1","name":"CAPTURED","idempotencyKey":null,"newer":[1]}"#;
/// let event = EventView::parse(body)?;
/// assert_eq!(event.msn, "123456");
/// assert_eq!(event.name, PaymentEventName::Captured);
/// assert_eq!(event.idempotency_key, None);
/// # Ok::<(), paystate_vipps::payload::PayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView<'a> {
    pub msn: Cow<'a, str>,
    pub reference: Cow<'a, str>,
    pub psp_reference: Cow<'a, str>,
    pub name: PaymentEventName,
    pub amount: Option<AmountView<'a>>,
    pub timestamp: Option<Cow<'a, str>>,
    /// Absent and `null` both read as `None`.
    pub idempotency_key: Option<Cow<'a, str>>,
    pub success: Option<bool>,
}

/// The `amount` object as sent, borrowed: see [`WireAmount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountView<'a> {
    pub currency: Option<Cow<'a, str>>,
    pub value: Option<ValueView<'a>>,
}

/// An amount value as sent, borrowed: see [`WireValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueView<'a> {
    Integer(i128),
    Text(Cow<'a, str>),
}

impl<'a> EventView<'a> {
    /// Reads a raw webhook body; refuses exactly what [`EpaymentEvent::parse`] refuses, with
    /// the same error. Never panics.
    pub fn parse(raw: &'a [u8]) -> Result<Self, PayloadError> {
        super::read::read(raw).map(|(event, _extra)| event)
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

impl AmountView<'_> {
    pub(crate) fn into_owned(self) -> WireAmount {
        WireAmount {
            currency: self.currency.map(Cow::into_owned),
            value: self.value.map(|value| match value {
                ValueView::Integer(integer) => WireValue::Integer(integer),
                ValueView::Text(text) => WireValue::Text(text.into_owned()),
            }),
        }
    }
}

impl WireAmount {
    /// This amount, borrowed.
    pub fn view(&self) -> AmountView<'_> {
        AmountView {
            currency: self.currency.as_deref().map(Cow::Borrowed),
            value: self.value.as_ref().map(|value| match value {
                WireValue::Integer(integer) => ValueView::Integer(*integer),
                WireValue::Text(text) => ValueView::Text(Cow::Borrowed(text)),
            }),
        }
    }
}

impl EpaymentEvent {
    /// This event, borrowed.
    pub fn view(&self) -> EventView<'_> {
        EventView {
            msn: Cow::Borrowed(&self.msn),
            reference: Cow::Borrowed(&self.reference),
            psp_reference: Cow::Borrowed(&self.psp_reference),
            name: self.name.clone(),
            amount: self.amount.as_ref().map(WireAmount::view),
            timestamp: self.timestamp.as_deref().map(Cow::Borrowed),
            idempotency_key: self.idempotency_key.as_deref().map(Cow::Borrowed),
            success: self.success,
        }
    }
}
