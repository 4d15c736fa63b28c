//! Money as ePayment writes it. The identifiers themselves (`Msn`, `Reference`, `Currency`)
//! are the domain's newtypes, so the simulator accepts exactly what paystate accepts.

use serde::Serialize;

pub use paystate_domain::{Currency, Msn, Reference};

/// An amount in minor units with its currency, serialized as Vipps does:
/// `{"currency":"NOK","value":49900}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Money {
    /// The currency.
    pub currency: Currency,
    /// Minor units (øre, cent).
    pub value: u64,
}
