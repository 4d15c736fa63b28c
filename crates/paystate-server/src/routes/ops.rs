//! Operations: `GET /healthz`, `GET /readyz`, `GET /metrics` (no token: probes and scrapers), and
//! `GET /openapi.json`, the API description itself.

use crate::error::ErrorBody;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_document))
}

/// The OpenAPI document of the whole application as JSON, built from the route definitions
/// and serialized once, on the first request for it.
#[derive(Debug, Clone)]
pub struct OpenApiDocument(Bytes);

impl OpenApiDocument {
    /// Serializes `document`. The document comes from static route definitions, so it always
    /// serializes; were it ever not to, the route answers an empty object rather than the
    /// server not starting.
    pub fn new(document: &utoipa::openapi::OpenApi) -> OpenApiDocument {
        match serde_json::to_vec(document) {
            Ok(json) => OpenApiDocument(Bytes::from(json)),
            Err(error) => {
                tracing::error!(%error, "the OpenAPI document could not be serialized");
                OpenApiDocument(Bytes::from_static(b"{}"))
            }
        }
    }
}

/// This API's OpenAPI 3 document, generated from the route definitions.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object, content_type = "application/json")))]
pub async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    let OpenApiDocument(json) = state
        .shared()
        .openapi
        .get_or_init(|| OpenApiDocument::new(&crate::app::openapi()));
    ([(header::CONTENT_TYPE, "application/json")], json.clone())
}

/// Liveness and readiness answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with `reason`.
    pub status: &'static str,
    /// The log's head position, when the store answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// The position the projections have applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        head: None,
        applied: None,
        reason: None,
    })
}

/// Side-tree namespace and key the readiness probe writes to prove the store is writable.
const READINESS_NAMESPACE: &str = "health";
const READINESS_KEY: &[u8] = b"readyz";

/// The store is open and writable, and the projections have caught up with the log as it was
/// at start, so reads are complete.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let unavailable = |reason, head: Option<u64>| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                head,
                applied: Some(state.projections.applied().0),
                reason: Some(reason),
            }),
        )
    };
    let head = match state.store.head() {
        Ok(head) => head,
        Err(_) => return unavailable("the store cannot be read", None),
    };
    let stamp = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .to_be_bytes();
    if state
        .store
        .side_put(READINESS_NAMESPACE, READINESS_KEY, &stamp)
        .is_err()
    {
        return unavailable("the store cannot be written", Some(head.0));
    }
    if !state.projections.is_caught_up() {
        return unavailable("the projections are catching up with the log", Some(head.0));
    }
    (
        StatusCode::OK,
        Json(Health {
            status: "ok",
            head: Some(head.0),
            applied: Some(state.projections.applied().0),
            reason: None,
        }),
    )
}

/// Prometheus text exposition of the server's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 500, description = "Internal error", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(head) = state.store.head() {
        metrics::gauge!(crate::metrics::LOG_HEAD).set(head.0 as f64);
        let lag = head.0.saturating_sub(state.projections.applied().0);
        metrics::gauge!(crate::metrics::REACTOR_LAG, "reactor" => "projections").set(lag as f64);
    }
    metrics::gauge!(crate::metrics::PROJECTIONS_APPLIED).set(state.projections.applied().0 as f64);
    let skipped = state.projections.read(|p| p.skipped().clone());
    for (reason, count) in [
        ("unknown_type", skipped.unknown_types),
        ("undecodable", skipped.undecodable),
        ("orphaned", skipped.orphaned),
    ] {
        metrics::gauge!(crate::metrics::PROJECTIONS_SKIPPED, "reason" => reason).set(count as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&state.metrics),
    )
}
