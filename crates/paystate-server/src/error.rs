//! The one error type of the HTTP edge: every failure becomes
//! `{"error": {"code": "<snake_case>", "message": "<human text>"}}` with the right status.
//!
//! Internal causes (store errors, IO) are logged with the request's span and answered with a
//! generic message: a client never sees paths, backtraces or store internals.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use paystate_store::StoreError;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::ToSchema;

/// An HTTP error: status, stable machine code and a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable `snake_case` code, e.g. `unknown_payment`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code; prefer the named constructors.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// `400 invalid_request`, naming the field that broke a rule.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {message}"),
        )
    }

    /// `400 invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// `401 unauthorized`: the admin bearer token is missing or wrong.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin bearer token is required (Authorization: Bearer <token>)",
        )
    }

    /// `404` with a specific code such as `unknown_provider` or `unknown_payment`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `404 not_found`: no route matches.
    pub fn no_route() -> ApiError {
        ApiError::not_found("not_found", "no such route")
    }

    /// `405 method_not_allowed`.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    /// `409` with a specific code such as `provider_exists`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// `413 payload_too_large`.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
    }

    /// `503 unavailable`: nothing was made durable; the caller should retry.
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event store cannot make writes durable right now; retry later",
        )
    }

    /// `500 internal`: logs `cause` and answers a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The admin routes' challenge. A webhook's 401 (`missing_signature`,
        // `invalid_signature`, ...) is not about a bearer token and carries none.
        let challenge = self.status == StatusCode::UNAUTHORIZED && self.code == "unauthorized";
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed | StoreError::Locked { .. } => {
                tracing::warn!(%error, "store unavailable");
                ApiError::unavailable()
            }
            StoreError::Conflict { .. } => {
                ApiError::conflict("conflict", "a concurrent change won; re-read and try again")
            }
            other => ApiError::internal(other),
        }
    }
}

/// The longest framework message an error repeats: rejections may quote the request's own
/// (arbitrarily long) input.
const MAX_ECHO: usize = 200;

/// `text`, cut to [`MAX_ECHO`] characters.
pub(crate) fn bounded(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_ECHO).collect();
    if text.chars().nth(MAX_ECHO).is_some() {
        shown.push('…');
    }
    shown
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::invalid_request(format!("path: {}", bounded(&rejection.body_text())))
    }
}

/// `text` without axum's wording before the part that names the field (`Failed to deserialize
/// query string: at: invalid digit` -> `at: invalid digit`), as every other message reads.
fn after_prefix<'t>(text: &'t str, prefix: &str) -> &'t str {
    text.strip_prefix(prefix).unwrap_or(text)
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        let text = rejection.body_text();
        let detail = after_prefix(&text, "Failed to deserialize query string: ");
        ApiError::invalid_request(format!("query string: {}", bounded(detail)))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
            JsonRejection::BytesRejection(bytes) => ApiError::from(bytes),
            JsonRejection::JsonSyntaxError(syntax) => {
                let text = syntax.body_text();
                let detail = after_prefix(&text, "Failed to parse the request body as JSON: ");
                ApiError::invalid_request(format!(
                    "the body is not valid JSON: {}",
                    bounded(detail)
                ))
            }
            JsonRejection::JsonDataError(data) => {
                let text = data.body_text();
                let detail = after_prefix(
                    &text,
                    "Failed to deserialize the JSON body into the target type: ",
                );
                ApiError::invalid_request(bounded(detail))
            }
            other => ApiError::invalid_request(bounded(&other.body_text())),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body exceeds the size limit",
            )
        } else {
            ApiError::invalid_request("the body could not be read")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_render_code_and_message() {
        let (status, body) =
            body_of(ApiError::not_found("unknown_payment", "no such payment")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "unknown_payment");
        assert_eq!(body["error"]["message"], "no such payment");
    }

    #[tokio::test]
    async fn store_internals_never_reach_the_client() {
        let error = StoreError::Corrupt {
            position: 7,
            reason: "/var/secret/path broke".into(),
        };
        let (status, body) = body_of(ApiError::from(error)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("/var/secret"));
        let (status, body) = body_of(ApiError::from(StoreError::Unavailable(
            "disk full at /x".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(!body.to_string().contains("/x"));
    }

    #[test]
    fn echoed_input_is_bounded() {
        let long = "x".repeat(10_000);
        let shown = bounded(&long);
        assert_eq!(shown.chars().count(), MAX_ECHO + 1);
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn unauthorized_carries_the_bearer_challenge_and_a_webhook_401_none() {
        let response = ApiError::unauthorized().into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let webhook = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", "no match");
        let response = webhook.into_response();
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
