//! How the provider routes' failures become HTTP answers.

use super::stream::StreamError;
use crate::error::ApiError;
use crate::registration::WebhookApiError;
use crate::secrets::VaultError;
use axum::http::StatusCode;
use paystate_domain::provider::DecisionError;

/// `404 unknown_provider`.
pub fn unknown_provider() -> ApiError {
    ApiError::not_found("unknown_provider", "no provider with this id")
}

/// A decision the domain refused.
pub fn decision(error: DecisionError) -> ApiError {
    if let DecisionError::InvalidPublicUrl(_) = &error {
        // The server's own configuration, not the request, is at fault.
        return ApiError::internal(error);
    }
    let code = match &error {
        DecisionError::InvalidPublicUrl(_) => "invalid_public_url",
        DecisionError::ProviderExists(_) => "provider_exists",
        DecisionError::ProviderDisabled(_) => "provider_disabled",
        DecisionError::SecretVersionsExhausted(_) => "secret_versions_exhausted",
    };
    ApiError::conflict(code, error.to_string())
}

/// The vault failed: logged in full, answered without detail.
pub fn vault(error: VaultError) -> ApiError {
    match error {
        VaultError::Store(error) => ApiError::from(error),
        other => ApiError::internal(other),
    }
}

/// Vipps could not be asked: `502 vipps_error` with what went wrong (never a secret).
pub fn vipps(error: WebhookApiError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "vipps_error", error.message)
}

impl From<StreamError> for ApiError {
    fn from(error: StreamError) -> ApiError {
        match error {
            StreamError::Store(error) => ApiError::from(error),
            StreamError::Contention { .. } => ApiError::conflict(
                "conflict",
                "the provider kept changing while this change was applied; try again",
            ),
            other => ApiError::internal(other),
        }
    }
}
