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
//! A payment's facts arrive out of order and twice; the projection does not care.
//! ```
//! use paystate_domain::events::{DomainEvent, EventMeta, FactSource, PaymentEventRecorded};
//! use paystate_domain::payment::{PaymentProjection, PaymentState};
//! use paystate_domain::*;
//! use time::macros::datetime;
//!
//! let provider = ProviderId::parse("vipps-test")?;
//! let reference = Reference::parse("acme-order-1001")?;
//! let fact = |name: &str, psp: &str, value: u64| -> Result<DomainEvent, IdError> {
//!     Ok(DomainEvent::from(PaymentEventRecorded {
//!         provider_id: provider.clone(),
//!         msn: Msn::parse("123456")?,
//!         reference: reference.clone(),
//!         psp_reference: PspReference::parse(psp)?,
//!         name: PaymentEventName::parse(name),
//!         amount: Amount::from_minor_units(value),
//!         currency: Currency::Nok,
//!         timestamp: datetime!(2025-01-14 09:30:01 UTC),
//!         idempotency_key: None,
//!         success: true,
//!         source: FactSource::Webhook,
//!         anomaly: None,
//!     }))
//! };
//! // The capture overtook the authorization, and the authorization came twice.
//! let arrived = [
//!     fact("CREATED", "psp-1", 49900)?,
//!     fact("CAPTURED", "psp-2", 20000)?,
//!     fact("AUTHORIZED", "psp-1", 49900)?,
//!     fact("AUTHORIZED", "psp-1", 49900)?,
//! ];
//! // Each event comes with its position in the log and when it was recorded.
//! let log = arrived.iter().enumerate().map(|(i, event)| {
//!     let meta = EventMeta { position: i as u64 + 1, recorded_at: datetime!(2025-01-14 09:31 UTC) };
//!     (meta, event)
//! });
//! let view = PaymentProjection::fold(provider.clone(), reference.clone(), log).view();
//! assert_eq!(view.state, PaymentState::Authorized);
//! assert_eq!(view.aggregate.authorized.minor_units(), 49900);
//! assert_eq!(view.aggregate.captured.minor_units(), 20000);
//! assert_eq!((view.events, view.duplicates), (3, 1));
//! assert!(view.anomalies.is_empty());
//!
//! // Every event is stored as (type name, schema version, JSON) and reads back the same.
//! let stored = arrived[1].to_payload();
//! let back = DomainEvent::decode(arrived[1].type_name(), arrived[1].schema_version(), &stored)?;
//! assert_eq!(back, arrived[1]);
//! assert_eq!(streams::payment_stream(&provider, &reference), "payment-vipps-test.acme-order-1001");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod events;
pub mod ids;
pub mod payment;
pub mod provider;
pub mod streams;

pub use ids::*;
