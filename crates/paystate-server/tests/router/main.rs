//! The whole router in-process on the in-memory store: what any request gets back.

mod bodies;
mod fuzz;
mod queries;
mod readiness;

use paystate_projections::ProjectionsHandle;
use paystate_server::ingestion::rejections::RejectionBudget;
use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_server::{AdminToken, AppParts, AppState, ServerConfig};
use paystate_store::{EventStore, MemoryStore};
use std::sync::Arc;

/// The admin token of the test router.
pub const TOKEN: &str = "router-admin-token-0123456789";

/// The application on a fresh in-memory store; `caught_up` sets the projections' readiness.
pub fn app(caught_up: bool) -> axum::Router {
    paystate_server::app::app(state(caught_up))
}

/// The application with its projections following the store, as a server runs them, so that
/// commands can answer the view they changed. Needs a Tokio runtime.
pub fn app_following() -> axum::Router {
    let state = state(true);
    tokio::spawn(paystate_projections::follow(
        state.projections.clone(),
        state.store.clone(),
        std::time::Duration::from_secs(60),
        std::future::pending(),
    ));
    paystate_server::app::app(state)
}

fn state(caught_up: bool) -> AppState {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let config = ServerConfig::new(
        "/nonexistent-router-data",
        "127.0.0.1:9".parse().expect("address"),
        AdminToken::new(TOKEN).expect("token"),
    );
    let vault = Arc::new(SecretVault::open(store.clone(), MasterKey::generate()).expect("vault"));
    // Were a route to call Vipps, it would reach a closed loopback port, never the internet.
    let vipps = "http://127.0.0.1:9".parse().expect("URL");
    let webhook_apis = paystate_server::registration::vipps_apis(vault.clone(), Some(&vipps));
    let projections = ProjectionsHandle::default();
    if caught_up {
        projections.mark_caught_up();
    }
    AppState::new(AppParts {
        store,
        config: Arc::new(config),
        projections,
        vault,
        webhook_apis,
        rejections: Arc::new(RejectionBudget::new(2)),
        metrics: paystate_server::metrics::install(),
    })
}
