//! ePayment webhook payloads (VIPPS.md §4).
//!
//! - [`event`]: [`EpaymentEvent`], parsed tolerantly from the raw body (unknown and newer
//!   fields kept, `idempotencyKey` absent or null), with its identity
//!   `(msn, reference, name, pspReference)`.
//! - [`view`]: [`EventView`], the same event read in place: its text borrowed from the body,
//!   the fields it does not model dropped (what the server's request path reads).
//! - [`fact`]: conversion to the domain's validated types, with a [`FieldError`] naming the
//!   field and the rule it broke (data for an anomaly record, never a panic).
//! - [`body`]: [`VippsEventBody`], the compact JSON Vipps sends, in its key order (for the
//!   simulator and tests).

pub mod body;
pub mod event;
pub mod fact;
mod literal;
mod read;
pub mod view;

pub use body::VippsEventBody;
pub use event::{reference_hint, EpaymentEvent, EventIdentity, PayloadError, WireAmount};
pub use fact::FieldError;
pub use paystate_domain::PaymentEventName;
pub use view::{AmountView, EventView, ValueView};

#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod tests;
