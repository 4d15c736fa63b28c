//! Invariant violations and surprises in a payment's facts, kept as data.

use super::state::PaymentState;
use crate::events::IngestAnomaly;
use crate::ids::{Amount, Currency, Money, Msn, PaymentEventName, PspReference};
use serde::{Deserialize, Serialize};

/// Something in a payment's facts that breaks VIPPS.md §5 or could not be used. Never a panic,
/// never an error answer: the projection lists them so an operator can look.
///
/// Anomalies are derived from the set of facts, so an anomaly caused only by arrival order
/// (a capture seen before its authorization) disappears once the missing fact arrives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentAnomaly {
    /// More captured than authorized (or a capture with no authorization recorded).
    CapturedExceedsAuthorized {
        captured: Amount,
        authorized: Amount,
    },
    /// More refunded than captured.
    RefundedExceedsCaptured { refunded: Amount, captured: Amount },
    /// A successful capture timed after a successful cancel.
    CaptureAfterCancel { psp_reference: PspReference },
    /// A fact in another currency than the payment's; it moves no money.
    CurrencyMismatch {
        expected: Currency,
        found: Currency,
        psp_reference: PspReference,
    },
    /// A fact naming another MSN than the payment's; it moves no money.
    MsnMismatch {
        expected: Msn,
        found: Msn,
        psp_reference: PspReference,
    },
    /// Facts that lead to different final states, e.g. ABORTED and AUTHORIZED.
    ConflictingFinalStates { states: Vec<PaymentState> },
    /// More than one successful authorization.
    MultipleAuthorizations { count: u64 },
    /// Two deliveries with the same identity but different content; one is kept (the same one
    /// whatever the arrival order).
    ConflictingDuplicate {
        name: PaymentEventName,
        psp_reference: PspReference,
    },
    /// A sum of amounts exceeded what an amount can hold.
    AmountOverflow,
    /// A fact with an event name this version does not know; it changes nothing.
    UnknownEventName {
        name: String,
        psp_reference: PspReference,
    },
    /// An anomaly found at ingestion (unparseable body, invalid field, MSN not the provider's).
    Ingest { anomaly: IngestAnomaly },
}

impl PaymentAnomaly {
    /// What this anomaly says, in one line, its amounts in major units of the payment's
    /// `currency` (`captured 200.00 NOK exceeds authorized 100.00 NOK`), as the audit shows
    /// every other amount; without a currency, in minor units.
    pub fn summary(&self, currency: Option<Currency>) -> String {
        let money = |amount: Amount| match currency {
            Some(currency) => Money(amount, currency).to_string(),
            None => format!("{amount} minor units"),
        };
        match self {
            PaymentAnomaly::CapturedExceedsAuthorized {
                captured,
                authorized,
            } => format!(
                "captured {} exceeds authorized {}",
                money(*captured),
                money(*authorized)
            ),
            PaymentAnomaly::RefundedExceedsCaptured { refunded, captured } => format!(
                "refunded {} exceeds captured {}",
                money(*refunded),
                money(*captured)
            ),
            PaymentAnomaly::CaptureAfterCancel { psp_reference } => {
                format!("capture after cancel (psp {psp_reference})")
            }
            PaymentAnomaly::CurrencyMismatch {
                expected,
                found,
                psp_reference,
            } => format!("currency {found} is not the payment's {expected} (psp {psp_reference})"),
            PaymentAnomaly::MsnMismatch {
                expected,
                found,
                psp_reference,
            } => format!("MSN {found} is not the payment's {expected} (psp {psp_reference})"),
            PaymentAnomaly::ConflictingFinalStates { states } => {
                let states: Vec<&str> = states.iter().map(|state| state.as_str()).collect();
                format!("conflicting final states {}", states.join(", "))
            }
            PaymentAnomaly::MultipleAuthorizations { count } => {
                format!("{count} successful authorizations")
            }
            PaymentAnomaly::ConflictingDuplicate {
                name,
                psp_reference,
            } => format!("a duplicate of {name} (psp {psp_reference}) said something else"),
            PaymentAnomaly::AmountOverflow => "a sum of amounts overflowed".to_owned(),
            PaymentAnomaly::UnknownEventName {
                name,
                psp_reference,
            } => format!("unknown event name {name} (psp {psp_reference})"),
            PaymentAnomaly::Ingest { anomaly } => anomaly.summary(),
        }
    }
}
