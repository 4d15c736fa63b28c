//! The JSON body Vipps sends for an ePayment event, byte for byte.

use paystate_domain::events::PaymentEventRecorded;
use paystate_domain::{Amount, Currency, Msn, PaymentEventName, PspReference, Reference};
use serde::Serialize;
use time::OffsetDateTime;

/// The fields of an ePayment webhook body, in domain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VippsEventBody {
    pub msn: Msn,
    pub reference: Reference,
    pub psp_reference: PspReference,
    pub name: PaymentEventName,
    pub currency: Currency,
    pub amount: Amount,
    pub timestamp: OffsetDateTime,
    pub idempotency_key: Option<String>,
    pub success: bool,
}

/// The wire layout: serde writes struct fields in declaration order, which is Vipps's key order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    msn: &'a str,
    reference: &'a str,
    psp_reference: &'a str,
    name: &'a str,
    amount: WireAmount,
    timestamp: String,
    idempotency_key: Option<&'a str>,
    success: bool,
}

#[derive(Serialize)]
struct WireAmount {
    currency: &'static str,
    value: u64,
}

impl VippsEventBody {
    /// Compact JSON in Vipps's key order: `msn, reference, pspReference, name,
    /// amount{currency, value}, timestamp, idempotencyKey, success`. The timestamp is UTC with
    /// milliseconds and `Z` (`2025-01-14T09:30:01.123Z`); a missing idempotency key is `null`.
    pub fn to_vipps_json(&self) -> Vec<u8> {
        let wire = Wire {
            msn: self.msn.as_str(),
            reference: self.reference.as_str(),
            psp_reference: self.psp_reference.as_str(),
            name: self.name.as_str(),
            amount: WireAmount {
                currency: self.currency.as_str(),
                value: self.amount.minor_units(),
            },
            timestamp: vipps_timestamp(self.timestamp),
            idempotency_key: self.idempotency_key.as_deref(),
            success: self.success,
        };
        // Serializing plain strings, integers and booleans into a Vec cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

impl From<&PaymentEventRecorded> for VippsEventBody {
    fn from(fact: &PaymentEventRecorded) -> Self {
        Self {
            msn: fact.msn.clone(),
            reference: fact.reference.clone(),
            psp_reference: fact.psp_reference.clone(),
            name: fact.name.clone(),
            currency: fact.currency,
            amount: fact.amount,
            timestamp: fact.timestamp,
            idempotency_key: fact.idempotency_key.clone(),
            success: fact.success,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, as Vipps writes timestamps.
fn vipps_timestamp(time: OffsetDateTime) -> String {
    // Out of range only near year ±9999; then the time is written in its own offset.
    let utc = time.checked_to_offset(time::UtcOffset::UTC).unwrap_or(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    )
}
