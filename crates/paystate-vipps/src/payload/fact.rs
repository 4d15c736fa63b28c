//! From a received event to the domain's validated payment fact.

use paystate_domain::events::{
    FactSource, IngestAnomaly, PaymentEventIdentity, PaymentEventRecorded,
};
use paystate_domain::{Amount, Currency, IdError, Msn, ProviderId, PspReference, Reference};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::event::{echo, EpaymentEvent};
use super::view::{EventView, ValueView};

/// A field of an event that is present in shape but breaks its rule, or is absent where the
/// domain needs it. The server records the delivery as an `invalid_field` anomaly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A field the domain needs is absent or null.
    #[error("{field} is missing")]
    Missing { field: &'static str },
    /// A value breaks the rule of its domain type (MSN digits, reference alphabet, currency...).
    #[error(transparent)]
    Rule(#[from] IdError),
    /// `amount.value` is text or a number that is not a non-negative integer of minor units.
    #[error("amount.value {got:?} is not a non-negative integer of minor units")]
    AmountValue { got: String },
    /// `timestamp` is not an RFC 3339 date-time.
    #[error("timestamp {got:?} is not an RFC 3339 date-time")]
    Timestamp { got: String },
}

impl FieldError {
    /// The name of the field at fault, e.g. `"reference"` or `"amount.value"`.
    pub fn field(&self) -> &'static str {
        match self {
            FieldError::Missing { field } => field,
            FieldError::Rule(error) => error.field(),
            FieldError::AmountValue { .. } => "amount.value",
            FieldError::Timestamp { .. } => "timestamp",
        }
    }

    /// This error as the anomaly recorded with the delivery.
    pub fn to_anomaly(&self) -> IngestAnomaly {
        IngestAnomaly::InvalidField {
            field: self.field().to_owned(),
            error: self.to_string(),
        }
    }
}

impl EventView<'_> {
    /// The identity in validated domain types.
    pub fn domain_identity(&self) -> Result<PaymentEventIdentity, FieldError> {
        Ok(PaymentEventIdentity {
            msn: Msn::parse(&self.msn)?,
            reference: Reference::parse(&self.reference)?,
            name: self.name.clone(),
            psp_reference: PspReference::parse(&self.psp_reference)?,
        })
    }

    /// The payment fact this event states, every field checked against its rule. The first
    /// field at fault is reported; the event with an unknown name is still a fact (it changes
    /// no state in the domain).
    pub fn to_recorded(
        &self,
        provider_id: &ProviderId,
        source: FactSource,
    ) -> Result<PaymentEventRecorded, FieldError> {
        let identity = self.domain_identity()?;
        let amount = self
            .amount
            .as_ref()
            .ok_or(FieldError::Missing { field: "amount" })?;
        let currency = Currency::parse(amount.currency.as_deref().ok_or(FieldError::Missing {
            field: "amount.currency",
        })?)?;
        let value = match amount.value.as_ref().ok_or(FieldError::Missing {
            field: "amount.value",
        })? {
            ValueView::Integer(value) => u64::try_from(*value)
                .map(Amount::from_minor_units)
                .map_err(|_| FieldError::AmountValue {
                    got: value.to_string(),
                })?,
            ValueView::Text(text) => {
                Amount::parse(text).map_err(|_| FieldError::AmountValue { got: echo(text) })?
            }
        };
        let timestamp = parse_timestamp(
            self.timestamp
                .as_deref()
                .ok_or(FieldError::Missing { field: "timestamp" })?,
        )?;
        let success = self
            .success
            .ok_or(FieldError::Missing { field: "success" })?;
        Ok(PaymentEventRecorded {
            provider_id: provider_id.clone(),
            msn: identity.msn,
            reference: identity.reference,
            psp_reference: identity.psp_reference,
            name: identity.name,
            amount: value,
            currency,
            timestamp,
            idempotency_key: self.idempotency_key.as_deref().map(str::to_owned),
            success,
            source,
            anomaly: None,
        })
    }
}

impl EpaymentEvent {
    /// The identity in validated domain types (see [`EventView::domain_identity`]).
    pub fn domain_identity(&self) -> Result<PaymentEventIdentity, FieldError> {
        self.view().domain_identity()
    }

    /// The payment fact this event states (see [`EventView::to_recorded`]).
    pub fn to_recorded(
        &self,
        provider_id: &ProviderId,
        source: FactSource,
    ) -> Result<PaymentEventRecorded, FieldError> {
        self.view().to_recorded(provider_id, source)
    }
}

/// RFC 3339, or (tolerantly) the same without an offset, read as UTC: some ePayment versions
/// have been seen to omit the `Z`.
pub(crate) fn parse_timestamp(text: &str) -> Result<OffsetDateTime, FieldError> {
    const WITHOUT_OFFSET: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| {
            PrimitiveDateTime::parse(text, WITHOUT_OFFSET).map(PrimitiveDateTime::assume_utc)
        })
        .map_err(|_| FieldError::Timestamp { got: echo(text) })
}
