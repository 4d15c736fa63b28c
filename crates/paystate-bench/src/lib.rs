//! End-to-end benchmarks of paystate: the whole ingestion path measured the way a merchant
//! would, side by side with a bare-axum ceiling and the usual axum + PostgreSQL alternative,
//! plus projection replay and payment queries.
//!
//! Module map:
//! - [`load`]: the load generator (Vipps-signed webhook mix, keep-alive HTTP/1.1
//!   connections, HDR latency histograms).
//! - [`targets`]: the servers under load, each a child process: `paystate serve`, the
//!   ceiling, the PostgreSQL alternative (and the throwaway PostgreSQL cluster).
//! - [`suite`]: the whole end-to-end run, [`suite::run`] -> [`suite::SuiteReport`].
//! - [`report`]: the markdown section with the targets met or missed.
//! - [`replay`]: projection rebuild against a raw iteration of the same sled tree.
//! - [`process`]: CPU seconds, peak RSS and disk usage of a server, from `/proc`.
//! - [`error`]: the [`BenchError`] of every module.
//!
//! The binary (`paystate-bench`) strings these together; the CI smoke test drives the load
//! generator against the real server in-process:
//!
//! ```no_run
//! # async fn example(address: std::net::SocketAddr, endpoint: paystate_bench::load::WebhookEndpoint)
//! # -> Result<(), paystate_bench::BenchError> {
//! use paystate_bench::load::{run, LoadPlan, SignedWebhooks, WebhookMix};
//! use std::{sync::Arc, time::Duration};
//!
//! let source = Arc::new(SignedWebhooks { mix: WebhookMix::new("123456", "demo"), endpoint });
//! let plan = LoadPlan { connections: 16, warmup: Duration::from_secs(1), duration: Duration::from_secs(10), rate: None };
//! let result = run(address, source, &plan).await?;
//! println!("{:.0} webhooks/s, p99 {:?}", result.acknowledged_per_second(), result.latency.p99);
//! # Ok(()) }
//! ```

pub mod error;
pub mod load;
pub mod process;
pub mod replay;
pub mod report;
pub mod suite;
pub mod targets;

pub use error::BenchError;
