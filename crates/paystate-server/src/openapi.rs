//! The OpenAPI document's frame: title, security scheme, tags. The paths themselves come from
//! the route definitions (`#[utoipa::path]` on each handler, collected by `OpenApiRouter`).

use crate::error::{ErrorBody, ErrorDetail};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

/// The answers every admin route that takes a JSON body can give besides its own: a wrong
/// token, a body that is late, too large or not sent as JSON, a store that cannot write. Named
/// once here, listed by each such route's `responses(...)`.
#[derive(Debug, IntoResponses)]
pub enum JsonBodyAnswers {
    #[response(status = 401, description = "unauthorized")]
    Unauthorized(ErrorBody),
    #[response(
        status = 408,
        description = "request_timeout: the body did not arrive within 10 s"
    )]
    RequestTimeout(ErrorBody),
    #[response(status = 413, description = "payload_too_large")]
    PayloadTooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "unsupported_media_type: the body is not sent as application/json"
    )]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 503,
        description = "unavailable: the store cannot write now; retry"
    )]
    Unavailable(ErrorBody),
}

/// The security scheme name admin routes refer to in `security(("admin_token" = []))`.
pub const ADMIN_TOKEN_SCHEME: &str = "admin_token";

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "paystate",
        description = "Event-sourced payment-webhook state engine for Vipps MobilePay: verified \
                       ingestion, provider administration, payment views with history and time travel."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&AdminTokenScheme),
    tags(
        (name = "ingestion", description = "Webhook deliveries, authenticated by signature"),
        (name = "providers", description = "Payment providers, their credentials and webhook registrations"),
        (name = "payments", description = "Payment views, histories and time travel"),
        (name = "events", description = "The event log"),
        (name = "operations", description = "Health, readiness and metrics")
    )
)]
pub struct ApiDoc;

struct AdminTokenScheme;

impl Modify for AdminTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token: --admin-token, PAYSTATE_ADMIN_TOKEN or {data}/admin-token"))
                    .build(),
            ),
        );
    }
}
