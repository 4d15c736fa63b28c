//! Provider administration (`/providers...`, SPEC §3.2), behind the admin token.
//!
//! - [`routes`](mod@routes): the handlers, annotated for the OpenAPI document.
//! - [`input`]: request bodies to domain values, naming the field that broke a rule.
//! - [`dto`]: the JSON shapes.
//! - [`stream`]: folding a provider from its stream and appending with optimistic
//!   concurrency (shared with the registration reactor).
//! - [`errors`]: failures to HTTP answers.

pub mod dto;
pub mod errors;
pub mod input;
pub mod routes;
pub mod stream;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/providers` route group.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::create_provider, routes::list_providers))
        .routes(routes!(routes::get_provider))
        .routes(routes!(routes::put_credentials))
        .routes(routes!(routes::put_environment))
        .routes(routes!(routes::enable_provider))
        .routes(routes!(routes::disable_provider))
        .routes(routes!(routes::register_webhook))
        .routes(routes!(routes::rotate_webhook))
        .routes(routes!(routes::remote_webhooks))
        .routes(routes!(routes::provider_history))
}
