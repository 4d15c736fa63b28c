//! The ceiling: a bare axum handler that reads the body and answers 200. Nothing verified,
//! nothing stored; the most any axum server can do on this machine with this load generator.
//!
//! It runs in its own process (`paystate-bench ceiling --listen ADDR`), like the other
//! targets, so that its CPU and memory are measured the same way.

use super::child::{free_loopback_address, ChildServer};
use crate::error::BenchError;
use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use std::path::Path;

/// The ceiling's routes: `POST /webhooks/vipps/{provider_id}` and `GET /healthz`.
pub fn router() -> Router {
    Router::new()
        .route("/webhooks/vipps/{provider_id}", post(receive))
        .route("/healthz", get(|| async { "ok" }))
}

/// Reads the whole body (as any receiver must) and acknowledges it.
async fn receive(body: Bytes) -> &'static str {
    std::hint::black_box(body.len());
    ""
}

/// Serves the ceiling on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

/// Starts `bench_exe ceiling` as a child on a free loopback port.
pub async fn start(bench_exe: &Path, log: &Path) -> Result<ChildServer, BenchError> {
    let address = free_loopback_address()?;
    let mut command = tokio::process::Command::new(bench_exe);
    command
        .arg("ceiling")
        .arg("--listen")
        .arg(address.to_string());
    ChildServer::start("the ceiling", command, address, "/healthz", log).await
}
