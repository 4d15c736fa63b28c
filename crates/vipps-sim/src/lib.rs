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
//! does; a delivery log lets tests await what happened instead of sleeping. The log is bounded:
//! it keeps the most recent [`SimConfig::delivery_log_capacity`] records (10 000 by default),
//! discards older ones and counts them ([`SimStats::log_discarded`]); the delivery counters
//! cover the whole run.
//!
//! Module map:
//! - [`config`]: [`SimConfig`]: credentials policy, token shape, retry schedule, timeouts,
//!   delivery-log capacity.
//! - [`faults`]: [`Faults`]: duplicates, reordering, delays, failed attempts, wrong secrets.
//! - [`server`]: [`Simulator::start`], [`run`], [`SimHandle`] (base URL, faults, delivery log).
//! - `auth`, `webhooks`, `epayment`: the Vipps APIs; [`epayment::model`] is the pure state model.
//! - `delivery`: fan-out, ordered lanes, signing and retries; [`DeliveryRecord`] is a line of
//!   its bounded log.
//! - `control`: the `/_sim/` endpoints (faults, deliveries, registrations, stats, user actions).
//! - [`events`]: event names, types and the compact webhook body.
//!
//! Invariants:
//! - One lock over the world (tokens, registrations, payments, idempotent answers): an
//!   operation, its event and the event's fan-out to delivery lanes happen as one step, so
//!   lanes receive a payment's events in the order they happened.
//! - One lane per (registration, payment), drained by one task: a lane delivers its head until
//!   it succeeds, is dropped, or the registration is deleted, so a failing event holds back only
//!   later events of that payment on that registration. The reorder fault is the one exception,
//!   and it says so.
//! - A delivery's body is serialized once; every attempt re-signs those bytes with a new
//!   `x-ms-date`.
//! - Secrets (webhook secrets, client secrets, subscription keys, access tokens) are held in
//!   types whose `Debug` prints `***`; the log, the control endpoints and errors never carry them.
//!
//! Control endpoints (no authentication; loopback use): `GET|POST /_sim/faults`,
//! `GET /_sim/deliveries[?since=SEQ]`, `GET /_sim/registrations`, `GET /_sim/stats`,
//! `POST /_sim/payments/{msn}/{reference}/{approve|abort|expire}`.
//!
//! Starting it in-process, on a port the system picks:
//!
//! ```
//! use std::time::Duration;
//! use vipps_sim::{Faults, SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = Simulator::start(listener, SimConfig::for_tests()).await?;
//! sim.set_faults(Faults { deliveries_per_event: 2, ..Faults::default() });
//!
//! // Point a Vipps client at sim.base_url(): here, the token call.
//! let token = reqwest::Client::new()
//!     .post(format!("{}/accesstoken/get", sim.base_url()))
//!     .header("client_id", "my-client")
//!     .header("client_secret", "my-secret")
//!     .header("Ocp-Apim-Subscription-Key", "my-key")
//!     .header("Merchant-Serial-Number", "123456")
//!     .send()
//!     .await?;
//! assert_eq!(token.status(), 200);
//!
//! // Tests await the delivery log instead of sleeping (nothing was registered here).
//! let none = sim.wait_for_deliveries(Duration::from_millis(10), |log| !log.is_empty()).await;
//! assert!(none.is_none());
//! sim.shutdown().await?;
//! # Ok(())
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
