//! The paystate server: verified webhook ingestion, projections, and the admin and query API.
//!
//! A library with a thin binary (`paystate serve`): [`run`] takes a bound listener, a
//! [`ServerConfig`] and a shutdown future, so tests start the real server on port 0.
//!
//! Module map:
//! - [`config`]: the one validated [`ServerConfig`] (listen, public URL, admin token, limits,
//!   timeouts, the registration reactor's timing).
//! - [`error`]: [`ApiError`], the single `{"error": {"code", "message"}}` answer of the edge.
//! - [`state`]: [`AppState`], what handlers reach: one shared [`AppParts`] (store,
//!   projections, vault, config, rejection budget, metrics) and what is derived from it.
//! - [`app`]: every route group merged into one router, with request ids, tracing, metrics,
//!   the admin guard, JSON fallbacks and `/openapi.json`.
//! - [`ingestion`]: `POST /webhooks/vipps/{provider_id}`: verify, parse, record durably.
//! - [`http`]: extractors with JSON rejections (admin bodies are JSON objects), the bearer
//!   guard, fallbacks, and the accept loop (HTTP/1 with a header-read timeout, graceful stop).
//! - [`routes`]: `/payments` (views, histories, listing, time travel), `/events` (the log),
//!   operations (`/healthz`, `/readyz`, `/metrics`), their JSON shapes, read-your-writes.
//! - [`providers`]: `/providers...` administration.
//! - [`registration`]: the reactor that keeps each enabled provider registered at Vipps.
//! - [`polling`]: the payment poller, which reads quiet open payments' events from Vipps and
//!   records what no webhook delivered.
//! - [`secrets`]: the [`secrets::SecretVault`] of webhook secrets and credentials.
//! - [`metrics`]: the process-wide Prometheus recorder and metric names.
//! - [`shutdown`]: [`shutdown::BackgroundTasks`], owner of every background task.
//! - [`server`]: [`run`] and [`run_with_store`].
//! - [`store`]: where the embedded store lives in a data directory ([`store::open`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), paystate_server::ServerError> {
//! use paystate_server::{AdminToken, ServerConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = ServerConfig::new("./paystate-data", listener.local_addr()?, AdminToken::generate());
//! paystate_server::run(listener, config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod ingestion;
pub mod metrics;
pub mod openapi;
pub mod polling;
pub mod providers;
pub mod registration;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;

pub use config::{
    AdminToken, AdminTokenSource, ConfigError, ListenAddr, LogFormat, PublicUrl, ServerConfig,
};
pub use error::ApiError;
pub use server::{run, run_with_store, ServerError};
pub use state::{AppParts, AppState};
