//! Starting and stopping the simulator: the router, [`Simulator::start`], [`run`] and the
//! [`SimHandle`] tests hold.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::delivery::log::DeliveryRecord;
use crate::delivery::Dispatcher;
use crate::faults::Faults;
use crate::problem::{fill_instance, Problem};
use crate::state::{RegistrationInfo, SimState};
use crate::{auth, control, epayment, webhooks};

/// Why the simulator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener's address could not be read, or serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client for deliveries could not be built (TLS setup).
    #[error("could not build the delivery HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The server task panicked or was cancelled.
    #[error("the server task ended abnormally")]
    ServerTask,
}

/// Counters for assertions and `GET /_sim/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Webhook registrations, all merchants.
    pub registrations: usize,
    /// Payments, all merchants.
    pub payments: usize,
    /// ePayment events emitted.
    pub events: usize,
    /// Delivery attempts made (including forced failures).
    pub attempts: usize,
    /// Attempts the receiver accepted.
    pub delivered: usize,
    /// Deliveries dropped (registration deleted or retries exhausted).
    pub dropped: usize,
    /// Deliveries still queued or retrying.
    pub pending: u64,
    /// Delivery-log records discarded, oldest first, to keep the log within
    /// [`SimConfig::delivery_log_capacity`](crate::SimConfig). The counts above cover them.
    pub log_discarded: u64,
}

pub(crate) fn stats_of(state: &SimState) -> SimStats {
    let (registrations, payments, events) = {
        let world = state.world();
        (
            world.registrations.len(),
            world.payments.len(),
            world.payments.values().map(|p| p.events.len()).sum(),
        )
    };
    let totals = state.dispatcher.log.totals();
    let count = |total: u64| usize::try_from(total).unwrap_or(usize::MAX);
    SimStats {
        registrations,
        payments,
        events,
        attempts: count(totals.attempts),
        delivered: count(totals.delivered),
        dropped: count(totals.dropped),
        pending: state.dispatcher.pending.load(Ordering::Relaxed),
        log_discarded: totals.discarded,
    }
}

fn router(state: Arc<SimState>) -> Router {
    use epayment::api;
    Router::new()
        .route("/accesstoken/get", post(auth::issue_token))
        .route(
            "/webhooks/v1/webhooks",
            post(webhooks::register).get(webhooks::list),
        )
        .route("/webhooks/v1/webhooks/{id}", delete(webhooks::delete))
        .route("/epayment/v1/payments", post(api::create))
        .route("/epayment/v1/payments/{reference}", get(api::get))
        .route("/epayment/v1/payments/{reference}/events", get(api::events))
        .route(
            "/epayment/v1/payments/{reference}/capture",
            post(api::capture),
        )
        .route(
            "/epayment/v1/payments/{reference}/refund",
            post(api::refund),
        )
        .route(
            "/epayment/v1/payments/{reference}/cancel",
            post(api::cancel),
        )
        .route(
            "/epayment/v1/test/payments/{reference}/approve",
            post(api::force_approve),
        )
        .route(
            "/_sim/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route("/_sim/deliveries", get(control::deliveries))
        .route("/_sim/registrations", get(control::registrations))
        .route("/_sim/stats", get(control::stats))
        .route(
            "/_sim/payments/{msn}/{reference}/{action}",
            post(control::user_acts),
        )
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::from_fn(fill_instance))
        .with_state(state)
}

/// Entry point for starting the simulator in-process.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Serves the simulator on `listener` (bind `127.0.0.1:0` in tests) until the handle is
    /// shut down or dropped.
    pub async fn start(listener: TcpListener, config: SimConfig) -> Result<SimHandle, SimError> {
        let local_addr = listener.local_addr()?;
        let dispatcher = Dispatcher::new(&config)?;
        let state = SimState::new(config, dispatcher);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means the handle is gone: stop as well.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%local_addr, "vipps-sim listening");
        Ok(SimHandle {
            state,
            local_addr,
            stop: Some(stop),
            server: Some(server),
        })
    }
}

/// Serves the simulator on `listener` until `shutdown` completes, then stops delivering and
/// drains open connections (the `run(listener, shutdown)` shape of mini-redis).
pub async fn run(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SimError> {
    let handle = Simulator::start(listener, config).await?;
    shutdown.await;
    handle.shutdown().await
}

/// A running simulator. Dropping it stops the server and every delivery.
#[derive(Debug)]
pub struct SimHandle {
    state: Arc<SimState>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the base URL to give a Vipps client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The fault knobs in force.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Replaces the fault knobs; applies to the next fan-out and the next attempt.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// The delivery log as kept, one record per attempt, oldest first: the most recent
    /// [`SimConfig::delivery_log_capacity`] records ([`SimStats::log_discarded`] counts the
    /// ones discarded).
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.state.dispatcher.log.snapshot()
    }

    /// Waits until `condition` holds for the delivery log as kept (see
    /// [`SimHandle::deliveries`]), at most `timeout`; returns the log at that moment, or `None`
    /// if the condition never held.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        condition: impl FnMut(&[DeliveryRecord]) -> bool,
    ) -> Option<Vec<DeliveryRecord>> {
        self.state.dispatcher.log.wait_for(timeout, condition).await
    }

    /// Waits until no delivery is queued or retrying, at most `timeout`; answers whether it
    /// got there. Deliveries of events published later are not waited for.
    pub async fn wait_for_idle(&self, timeout: Duration) -> bool {
        let dispatcher = &self.state.dispatcher;
        dispatcher
            .log
            .wait_for(timeout, |_| dispatcher.pending.load(Ordering::Relaxed) == 0)
            .await
            .is_some()
    }

    /// Every registration, all merchants, without secrets.
    pub fn registrations(&self) -> Vec<RegistrationInfo> {
        self.state
            .world()
            .registrations
            .iter()
            .map(|r| r.info())
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        stats_of(&self.state)
    }

    /// Stops delivering, stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.state.dispatcher.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => match server.await {
                Ok(served) => Ok(served?),
                Err(_) => Err(SimError::ServerTask),
            },
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.dispatcher.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
