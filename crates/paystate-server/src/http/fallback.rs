//! Answers for what no handler takes: unknown routes, wrong methods, and panics.

use crate::error::ApiError;
use axum::response::{IntoResponse, Response};
use std::any::Any;

/// `404 not_found` for a path no route matches.
pub async fn no_route() -> ApiError {
    ApiError::no_route()
}

/// `405 method_not_allowed` for a known path with a method it does not serve.
pub async fn wrong_method() -> ApiError {
    ApiError::method_not_allowed()
}

/// The last line of defence: a panic in a handler becomes a logged `500 internal` instead of a
/// dropped connection. Handlers are written not to panic; this only keeps a bug from taking the
/// connection down without an answer.
pub fn panic_to_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}
