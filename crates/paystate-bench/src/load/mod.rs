//! The load generator: many keep-alive HTTP/1.1 connections, each with one request in flight,
//! for a fixed duration or at a fixed rate, with latencies in an HDR histogram.
//!
//! - [`workload`]: [`WebhookMix`], the deliveries a merchant receives (created, authorized,
//!   captured, some duplicates).
//! - [`source`]: [`RequestSource`], what a connection sends and how an answer counts;
//!   [`SignedWebhooks`] signs the mix as Vipps does.
//! - [`runner`]: [`run`] drives the connections and returns a [`LoadResult`].
//! - [`queries`]: [`PaymentQueries`], reads of payments the ingestion created.
//! - [`latency`]: [`LatencySummary`] of a run's histogram.

pub mod latency;
pub mod queries;
pub mod runner;
pub mod source;
pub mod workload;

pub use latency::LatencySummary;
pub use queries::PaymentQueries;
pub use runner::{run, LoadError, LoadPlan, LoadResult, OutcomeCounts};
pub use source::{Outcome, RequestSource, SignedWebhooks, WebhookEndpoint};
pub use workload::{Delivery, Step, WebhookMix};
