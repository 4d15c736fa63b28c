//! The OpenAPI document's frame: title, security scheme, tags. The paths themselves come from
//! the route definitions (`#[utoipa::path]` on each handler, collected by `OpenApiRouter`).

use crate::error::{ErrorBody, ErrorDetail};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
