//! Identifier and value types that cannot hold invalid values ("parse, don't validate").
//!
//! Every type here has a private field and one way in: `parse` (also `FromStr` and `TryFrom`),
//! which checks the rule and answers an [`IdError`] naming the field and the rule. Serde goes
//! through the same check, so a stored or received JSON value is valid once deserialized.
//!
//! | type | rule |
//! |---|---|
//! | [`ProviderId`] | 1 to 63 of `[a-z0-9_-]`, first `[a-z0-9]` |
//! | [`Msn`] | 4 to 10 digits |
//! | [`Reference`] | 8 to 64 of `[a-zA-Z0-9-]` |
//! | [`PspReference`] | 1 to 128 printable ASCII, no spaces |
//! | [`RegistrationId`] | 1 to 128 of `[A-Za-z0-9._-]` |
//! | [`Fingerprint`] | 1 to 128 of `[A-Za-z0-9:+/=_-]` |
//! | [`WebhookEventType`] | 1 to 128 of `[a-z0-9._-]` |
//! | [`HttpUrl`] | `http(s)://host…`, at most 2048 printable ASCII |
//! | [`Currency`] | `NOK`, `DKK`, `EUR` |
//! | [`Amount`] | non-negative integer minor units (`u64`), checked arithmetic |
//! | [`SecretVersion`] | `u32` >= 1, only grows |
//! | [`Environment`] | `test`, `production` |
//! | [`ProviderKind`] | `vipps` |
//! | [`PaymentEventName`] | the eight ePayment names, or `Unknown(name)` (never an error) |

mod config;
mod error;
mod event_name;
mod money;
mod text;

pub use config::{Environment, ProviderKind, SecretVersion};
pub use error::IdError;
pub use event_name::PaymentEventName;
pub use money::{Amount, Currency, Money};
pub use text::{
    Fingerprint, HttpUrl, Msn, ProviderId, PspReference, Reference, RegistrationId,
    WebhookEventType, EPAYMENT_EVENT_TYPES,
};

#[cfg(test)]
mod tests;
