//! The accept loop: HTTP/1 connections with a header-read timeout, stopped gracefully.
//!
//! `axum::serve` offers no header-read timeout, so a client that opens a connection and never
//! finishes its headers would hold it (and a task) forever. Here each connection is served by
//! hyper's HTTP/1 builder with a timer, and every connection is watched so that a stop first
//! refuses new connections, then lets the open ones finish their requests.

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long the loop pauses after a failed accept (e.g. out of file descriptors), so the
/// failure does not turn into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the connections of one server are handled.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionOptions {
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a stop waits for open connections to finish their requests.
    pub shutdown_grace: Duration,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every open connection finished its request.
    Completely,
    /// The grace period ran out with connections still open; they are dropped.
    TimedOut,
}

/// Serves `app` on `listener` until `stop` resolves, then stops accepting and waits up to the
/// grace period for the open connections. Each request carries the peer's
/// [`ConnectInfo<std::net::SocketAddr>`], as with `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ConnectionOptions,
    stop: impl Future<Output = ()>,
) -> Drained {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    match tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => Drained::Completely,
        Err(_) => Drained::TimedOut,
    }
}
