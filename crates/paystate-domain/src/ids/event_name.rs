//! The `name` of an ePayment event (VIPPS.md §4): eight known names, and any other kept as is.

use std::fmt;

/// The `name` field of an ePayment webhook or polled event.
///
/// Unknown names are not an error: an authentic event with a name this version does not know
/// is recorded as [`PaymentEventName::Unknown`] and changes no state, so a new Vipps event type
/// can never block deliveries (VIPPS.md §3). Serialized as the name itself, e.g. `"CAPTURED"`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(from = "String", into = "String")]
pub enum PaymentEventName {
    Created,
    Aborted,
    Expired,
    Cancelled,
    Captured,
    Refunded,
    Authorized,
    Terminated,
    /// A name this version does not know, exactly as received.
    Unknown(String),
}

impl PaymentEventName {
    /// The eight known names, in the order of VIPPS.md §4.
    pub const KNOWN: [PaymentEventName; 8] = [
        PaymentEventName::Created,
        PaymentEventName::Aborted,
        PaymentEventName::Expired,
        PaymentEventName::Cancelled,
        PaymentEventName::Captured,
        PaymentEventName::Refunded,
        PaymentEventName::Authorized,
        PaymentEventName::Terminated,
    ];

    /// Never fails: a name that is not one of the eight becomes `Unknown`.
    pub fn parse(input: &str) -> PaymentEventName {
        match input {
            "CREATED" => PaymentEventName::Created,
            "ABORTED" => PaymentEventName::Aborted,
            "EXPIRED" => PaymentEventName::Expired,
            "CANCELLED" => PaymentEventName::Cancelled,
            "CAPTURED" => PaymentEventName::Captured,
            "REFUNDED" => PaymentEventName::Refunded,
            "AUTHORIZED" => PaymentEventName::Authorized,
            "TERMINATED" => PaymentEventName::Terminated,
            other => PaymentEventName::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            PaymentEventName::Created => "CREATED",
            PaymentEventName::Aborted => "ABORTED",
            PaymentEventName::Expired => "EXPIRED",
            PaymentEventName::Cancelled => "CANCELLED",
            PaymentEventName::Captured => "CAPTURED",
            PaymentEventName::Refunded => "REFUNDED",
            PaymentEventName::Authorized => "AUTHORIZED",
            PaymentEventName::Terminated => "TERMINATED",
            PaymentEventName::Unknown(name) => name,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, PaymentEventName::Unknown(_))
    }

    /// The webhook event type that delivers this name, e.g. `epayments.payment.captured.v1`;
    /// `None` for unknown names.
    pub fn webhook_event_type(&self) -> Option<&'static str> {
        let index = PaymentEventName::KNOWN
            .iter()
            .position(|known| known == self)?;
        super::text::EPAYMENT_EVENT_TYPES.get(index).copied()
    }
}

impl fmt::Display for PaymentEventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for PaymentEventName {
    fn from(input: String) -> PaymentEventName {
        match PaymentEventName::parse(&input) {
            PaymentEventName::Unknown(_) => PaymentEventName::Unknown(input),
            known => known,
        }
    }
}

impl From<&str> for PaymentEventName {
    fn from(input: &str) -> PaymentEventName {
        PaymentEventName::parse(input)
    }
}

impl From<PaymentEventName> for String {
    fn from(name: PaymentEventName) -> String {
        match name {
            PaymentEventName::Unknown(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}
