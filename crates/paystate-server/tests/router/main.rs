//! The whole router in-process on the in-memory store: what any request gets back.

mod bodies;
mod fuzz;
mod queries;
mod readiness;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use paystate_projections::ProjectionsHandle;
use paystate_server::ingestion::rejections::RejectionBudget;
use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_server::{AdminToken, AppParts, AppState, ServerConfig};
use paystate_store::{EventStore, MemoryStore};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

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

/// Sends one request with the admin token; the answer's status and JSON body (`null` if the
/// body is not JSON).
pub async fn send(
    router: &axum::Router,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(body.into()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

/// The answer is `400 invalid_request` with exactly `message`.
pub fn assert_invalid_request(status: StatusCode, answer: &Value, message: &str, context: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{context}: {answer}");
    assert_eq!(
        answer["error"]["code"], "invalid_request",
        "{context}: {answer}"
    );
    assert_eq!(answer["error"]["message"], message, "{context}");
}
