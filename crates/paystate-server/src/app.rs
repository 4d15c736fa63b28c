//! The application: every route group merged into one router behind the edge layer
//! ([`crate::http::edge`]: request id, timeout, panic guard, JSON errors, request counts,
//! access log).

use crate::http::edge::EdgeLayer;
use crate::http::{auth, fallback};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;
use axum::middleware;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The route groups with their OpenAPI description, before state and layers.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::ops::router())
        .merge(crate::ingestion::router())
}

/// The route groups behind the admin bearer token (the guard is added by [`app`]).
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(crate::providers::router())
        .merge(routes::payments::router())
        .merge(routes::events::router())
}

/// The OpenAPI document of the whole application, from the route definitions.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().merge(admin_routes()).into_openapi()
}

/// The complete application for `state`: routes, fallbacks and the edge layer.
pub fn app(state: AppState) -> Router {
    let admin = admin_routes().layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    let (router, _) = api().merge(admin).split_for_parts();
    router
        .fallback(fallback::no_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .layer(EdgeLayer::new(state.config.request_timeout))
        .with_state(state)
}
