//! The pure domain of paystate: what a payment provider is, what facts the log records, and how
//! those facts fold into the state of a provider and of a payment.
//!
//! **Rule: this crate does no IO.** No files, sockets, clocks, randomness or async runtime:
//! every function takes what it needs (including "now") as an argument and returns a value.
//! That keeps the heart of correctness testable by plain function calls and lets every
//! projection be rebuilt from the log with the same result. `cargo tree -p paystate-domain`
//! shows no tokio, axum, sled, hyper or reqwest.
//!
//! # Module map
//! - [`ids`]: newtypes that cannot hold invalid values (`ProviderId`, `Msn`, `Reference`,
//!   `PspReference`, `Currency`, `Amount`, `SecretVersion`, `Environment`, ...), re-exported
//!   here.
//! - [`events`]: the stored event catalogue, each type with a stable `snake_case` name and a
//!   schema version, and [`events::DomainEvent`] to encode and decode them.
//! - [`provider`]: the [`provider::Provider`] aggregate folded from a provider stream, and the
//!   decisions on it: which events a command records, whether it needs a (re-)registration
//!   and why, which secret versions are accepted, what to delete after comparing with Vipps'
//!   list of webhooks.
//! - [`payment`]: the [`payment::PaymentProjection`], a fold of payment facts into state,
//!   aggregate and anomalies that does not depend on arrival order or duplicates.
//! - [`streams`]: stream names (`provider-{id}`, `payment-{id}.{reference}`) and the dedupe key
//!   of a payment fact.
//!
//! # Example
//! ```
//! use paystate_domain::events::{DomainEvent, ProviderEnabled};
//! use paystate_domain::{streams, ProviderId, Reference};
//!
//! let provider = ProviderId::parse("vipps-test")?;
//! let reference = Reference::parse("acme-order-1001")?;
//! assert_eq!(streams::payment_stream(&provider, &reference), "payment-vipps-test.acme-order-1001");
//!
//! // An event travels as (type name, schema version, JSON bytes) and comes back the same.
//! let event = DomainEvent::from(ProviderEnabled {});
//! let bytes = event.to_payload();
//! let back = DomainEvent::decode(event.type_name(), event.schema_version(), &bytes)?;
//! assert_eq!(back, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod events;
pub mod ids;
pub mod payment;
pub mod provider;
pub mod streams;

pub use ids::*;
