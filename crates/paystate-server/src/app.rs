//! The application: every route group merged into one router with the shared layers.
//! `/openapi.json` describes itself too: its handler gets the finished document as an extension.

use crate::error::ApiError;
use crate::http::{auth, fallback};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route groups with their OpenAPI description, before state and layers.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::ops::router())
        .merge(crate::ingestion::router())
}

/// The route groups behind the admin bearer token.
fn admin_api(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(crate::providers::router())
        .merge(routes::payments::router())
        .merge(routes::events::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ))
}

/// The complete application for `state`: routes, `/openapi.json`, fallbacks and layers.
pub fn app(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let (router, openapi) = api().merge(admin_api(&state)).split_for_parts();
    let document = routes::ops::OpenApiDocument::new(&openapi);
    router
        .layer(Extension(document))
        .fallback(fallback::no_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timed_out))
                .timeout(request_timeout),
        )
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(count_requests))
        .layer(CatchPanicLayer::custom(fallback::panic_to_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Counts requests by method, matched route (never the raw path: unbounded label values) and
/// status.
async fn count_requests(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics::counter!(crate::metrics::HTTP_REQUESTS_TOTAL,
        "method" => method, "route" => route, "status" => response.status().as_u16().to_string())
    .increment(1);
    response
}

/// A safety net: an error answer that is not JSON (a framework default that slipped past the
/// typed extractors) is replaced by the JSON error shape with the same status.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json {
        return response;
    }
    let code = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s < 500 => "invalid_request",
        _ => "internal",
    };
    let message = status.canonical_reason().unwrap_or("error").to_owned();
    let mut replaced = ApiError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}

/// The answer to a request that took longer than the request timeout (or failed in a layer).
async fn timed_out(error: tower::BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the request took too long; retry",
        )
    } else {
        ApiError::internal(error)
    }
}
