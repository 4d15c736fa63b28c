//! A stand-in for the two Vipps management APIs that registering a webhook needs (access
//! token and Webhooks API v1), answering with a secret the benchmark chose, so that the load
//! generator can sign deliveries exactly as Vipps would for the registration paystate made.
//!
//! The full simulator (`vipps-sim`) keeps its secrets to itself, as Vipps does; a benchmark
//! needs to know one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use base64::Engine as _;
use paystate_vipps::signature::WebhookSecret;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One registration made through the stub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubRegistration {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
}

#[derive(Debug)]
struct StubState {
    secret: WebhookSecret,
    /// A std mutex: held for a push or a clone, never across an await.
    registrations: Mutex<Vec<StubRegistration>>,
}

/// A running stub; it stops when dropped.
#[derive(Debug)]
pub struct VippsStub {
    address: SocketAddr,
    state: Arc<StubState>,
    server: tokio::task::JoinHandle<()>,
}

impl VippsStub {
    /// Serves on a free loopback port; every registration gets a fresh random secret of the
    /// shape Vipps uses (88 characters of base64).
    pub async fn start() -> std::io::Result<VippsStub> {
        let mut bytes = [0u8; 64];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = WebhookSecret::new(base64::engine::general_purpose::STANDARD.encode(bytes));
        let state = Arc::new(StubState {
            secret,
            registrations: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/accesstoken/get", post(access_token))
            .route("/webhooks/v1/webhooks", post(register).get(list))
            .route("/webhooks/v1/webhooks/{id}", delete(remove))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(VippsStub {
            address,
            state,
            server,
        })
    }

    /// The base URL to give paystate as `--vipps-base-url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The secret every registration received.
    pub fn secret(&self) -> &WebhookSecret {
        &self.state.secret
    }

    /// The registrations still in place.
    pub fn registrations(&self) -> Vec<StubRegistration> {
        self.state
            .registrations
            .lock()
            .map(|registrations| registrations.clone())
            .unwrap_or_default()
    }
}

impl Drop for VippsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn access_token() -> Json<serde_json::Value> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Json(json!({
        "token_type": "Bearer",
        "access_token": "bench-access-token",
        "expires_in": "86400",
        "ext_expires_in": "86400",
        "expires_on": (now + 86_400).to_string(),
        "not_before": now.to_string(),
        "resource": "00000002-0000-0000-c000-000000000000",
    }))
}

#[derive(Deserialize)]
struct RegisterRequest {
    url: String,
    events: Vec<String>,
}

async fn register(
    State(state): State<Arc<StubState>>,
    Json(request): Json<RegisterRequest>,
) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let registration = StubRegistration {
        id: id.clone(),
        url: request.url,
        events: request.events,
    };
    if let Ok(mut registrations) = state.registrations.lock() {
        registrations.push(registration);
    }
    let answer = json!({ "id": id, "secret": state.secret.expose() });
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn list(State(state): State<Arc<StubState>>) -> Json<serde_json::Value> {
    let registrations = state
        .registrations
        .lock()
        .map(|registrations| registrations.clone())
        .unwrap_or_default();
    let webhooks: Vec<_> = registrations
        .iter()
        .map(|r| json!({ "id": r.id, "url": r.url, "events": r.events }))
        .collect();
    Json(json!({ "webhooks": webhooks }))
}

async fn remove(State(state): State<Arc<StubState>>, Path(id): Path<String>) -> StatusCode {
    let Ok(mut registrations) = state.registrations.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let before = registrations.len();
    registrations.retain(|registration| registration.id != id);
    if registrations.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
