//! The ePayment state and aggregate (VIPPS.md §5).

use crate::ids::Amount;
use serde::{Deserialize, Serialize};

/// The state of an ePayment. `CREATED` leads to one of the others, which are all final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    Created,
    Authorized,
    Aborted,
    Expired,
    Terminated,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Created => "CREATED",
            PaymentState::Authorized => "AUTHORIZED",
            PaymentState::Aborted => "ABORTED",
            PaymentState::Expired => "EXPIRED",
            PaymentState::Terminated => "TERMINATED",
        }
    }

    /// Parses the upper-case name, e.g. `"AUTHORIZED"` (for query filters).
    pub fn parse(input: &str) -> Option<PaymentState> {
        [
            PaymentState::Created,
            PaymentState::Authorized,
            PaymentState::Aborted,
            PaymentState::Expired,
            PaymentState::Terminated,
        ]
        .into_iter()
        .find(|state| state.as_str() == input)
    }

    pub fn is_final(self) -> bool {
        self != PaymentState::Created
    }
}

impl std::fmt::Display for PaymentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a payment is authorized, captured, refunded and cancelled, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaymentAggregate {
    pub authorized: Amount,
    pub captured: Amount,
    pub refunded: Amount,
    pub cancelled: Amount,
}
