//! `vipps-sim`: a stand-in for Vipps MobilePay's test environment on loopback, for paystate's
//! tests and demos.
//!
//! It speaks the Access Token API, the Webhooks API v1 and the ePayment API v1 (create, get,
//! events, capture, refund, cancel, test force-approve) the way Vipps does, including what the
//! official SDKs send (empty `Vipps-System-*` headers, `Idempotency-Key` on every call, a bare
//! `Authorization: Bearer` on the token call, chunked bodies). Every ePayment event is delivered
//! to every registration subscribed to it, signed with that registration's secret per VIPPS.md
//! §2 (through [`paystate_vipps::signature`]), in order per (registration, payment), retried with
//! backoff and re-signed with a new date. Fault knobs make it misbehave the way real delivery
//! does; a delivery log lets tests await what happened instead of sleeping.
//!
//! Module map:
//! - [`config`]: [`SimConfig`]: credentials policy, token shape, retry schedule, timeouts.
//! - [`faults`]: [`Faults`]: duplicates, reordering, delays, failed attempts, wrong secrets.
//! - [`server`]: [`Simulator::start`], [`run`], [`SimHandle`] (base URL, faults, delivery log).
//! - `auth`, `webhooks`, `epayment`: the Vipps APIs; [`epayment::model`] is the pure state model.
//! - `delivery`: fan-out, ordered lanes, signing and retries; [`DeliveryRecord`] is its log.
//! - `control`: the `/_sim/` endpoints (faults, deliveries, registrations, stats, user actions).
//! - [`events`]: event names, types and the compact webhook body.
//!
//! Starting it in-process:
//!
//! ```no_run
//! use std::time::Duration;
//! use vipps_sim::{Faults, SimConfig, Simulator};
//!
//! # async fn demo() -> Result<(), vipps_sim::SimError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = Simulator::start(listener, SimConfig::for_tests()).await?;
//! println!("Vipps base URL: {}", sim.base_url());
//! sim.set_faults(Faults { fail_first_attempts: 1, ..Faults::default() });
//! // ... register a webhook and make payments through sim.base_url() ...
//! let delivered = sim
//!     .wait_for_deliveries(Duration::from_secs(5), |log| log.iter().any(|r| r.delivered()))
//!     .await;
//! assert!(delivered.is_some());
//! sim.shutdown().await
//! # }
//! ```

mod auth;
pub mod config;
mod control;
mod delivery;
pub mod epayment;
pub mod events;
pub mod faults;
mod ids;
mod problem;
pub mod server;
mod state;
mod webhooks;

pub use config::{
    CredentialsPolicy, MerchantCredentials, RetrySchedule, SimConfig, TokenNumberStyle,
};
pub use delivery::log::{AttemptOutcome, DeliveryRecord};
pub use faults::{FailMode, Faults, RegistrationOrder};
pub use ids::Money;
pub use server::{run, SimError, SimHandle, SimStats, Simulator};
pub use state::RegistrationInfo;
pub use webhooks::REGISTRATIONS_PER_EVENT_TYPE;
