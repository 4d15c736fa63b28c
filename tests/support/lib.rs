//! Shared helpers for the end-to-end tests: the real paystate server and the Vipps simulator,
//! started on loopback with fresh temporary data directories.
//!
//! - [`server`]: [`TestServer`], `paystate_server::run_with_store` in-process on `127.0.0.1:0`.
//! - [`child`]: [`ChildServer`], the real `paystate` binary as a child process (kill -9 tests).
//! - [`sim`]: [`start_sim`] and [`Merchant`], the merchant's side of the simulator's APIs.
//! - [`seed`]: a provider with a webhook registration and its secret, written directly into a
//!   store and vault (what the registration reactor would record).
//! - [`webhook`]: signing deliveries like Vipps, for forgeries and hostile input.
//!
//! ```no_run
//! # async fn example() {
//! let server = paystate_e2e::TestServer::start().await;
//! let (status, body) = server.admin_get("/payments").await;
//! assert_eq!(status, 200, "{body}");
//! server.stop().await;
//! # }
//! ```

pub mod child;
pub mod seed;
pub mod server;
pub mod sim;
pub mod webhook;

pub use child::ChildServer;
pub use seed::{seed_provider, SeededProvider};
pub use server::TestServer;
pub use sim::{start_sim, Merchant};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, at most `timeout`; panics with `what` otherwise.
/// For conditions outside the process that offer nothing to await (a child's HTTP port).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
