//! Errors as Vipps answers them: `application/problem+json` with `type`, `title`, `status`,
//! `detail`, `instance`, `traceId` and `extraDetails`.
//!
//! The `type` URIs are the simulator's own (`https://vipps-sim.invalid/problems/...`): clients
//! should branch on `status`, as they must with Vipps.
//!
//! Handlers return a [`Problem`]; [`fill_instance`] (a middleware) writes the request path
//! into `instance`, so handlers need not carry the URI around.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

const PROBLEM_JSON: &str = "application/problem+json";

/// One `extraDetails` entry: which input was wrong and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtraDetail {
    /// The field or header.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An error answer in problem+json form. Boxed, so `Result<_, Problem>` stays small.
#[derive(Clone, Debug)]
pub struct Problem(Box<ProblemBody>);

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemBody {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    instance: String,
    trace_id: String,
    extra_details: Vec<ExtraDetail>,
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemBody {
            kind: format!("https://vipps-sim.invalid/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            instance: String::new(),
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            extra_details: Vec::new(),
        }))
    }

    /// 400: the request is not acceptable; `name` is the offending field.
    pub fn validation(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation-error",
            "Bad Request",
            format!("{name}: {reason}"),
        )
        .with_detail(name, reason)
    }

    /// 400: the request is well-formed but the payment's state refuses it.
    pub fn refused(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "operation-refused",
            "Bad Request",
            detail,
        )
    }

    /// 400: the operation was valid but failed downstream; its event says `success: false`.
    pub fn declined(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "operation-declined",
            "Bad Request",
            detail,
        )
    }

    /// 401: no or bad credentials or token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: credentials valid but not for this merchant.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: unknown resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not Found", detail)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            "this endpoint does not accept that method",
        )
    }

    /// 409: the request contradicts an earlier one (a reference reused for a new payment).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// Adds an `extraDetails` entry.
    pub fn with_detail(mut self, name: &str, reason: impl Into<String>) -> Self {
        self.0.extra_details.push(ExtraDetail {
            name: name.to_owned(),
            reason: reason.into(),
        });
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn to_response(&self) -> Response {
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.to_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: re-renders a [`Problem`] answer with `instance` set to the request path.
pub async fn fill_instance(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    match response.extensions().get::<Problem>() {
        Some(problem) => {
            let mut problem = problem.clone();
            problem.0.instance = path;
            problem.to_response()
        }
        None => response,
    }
}
