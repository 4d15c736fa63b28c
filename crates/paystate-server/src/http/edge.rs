//! [`EdgeLayer`]: everything every request gets, in one layer: a request id, the request
//! timeout, the panic guard, the JSON error shape, the request counter and the access log.
//!
//! One hand-written layer instead of a stack of seven: each layer on an axum router wraps every
//! route in its own boxed, cloned service with a boxed future, and a tracing span per request
//! costs an allocation and a formatted field set even before anything is logged. Here a request
//! costs one boxed future, and the access log is one event written when the answer is known.

use super::fallback;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;
use metrics::Counter;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};

/// The request id header: kept when the client (or a proxy) sends a usable one (see
/// [`usable_request_id`]), else generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id kept as sent: longer than any UUID, ULID or W3C `traceparent`.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Where the access log's events are recorded (`PAYSTATE_LOG=paystate::access=warn` keeps only
/// failed requests).
pub const ACCESS_LOG_TARGET: &str = "paystate::access";

/// Adds the edge behaviour to every route of a router (see the module documentation).
#[derive(Clone)]
pub struct EdgeLayer {
    timeout: Duration,
    counters: Arc<RequestCounters>,
}

impl EdgeLayer {
    /// Requests that take longer than `timeout` are answered `503 unavailable`.
    pub fn new(timeout: Duration) -> Self {
        EdgeLayer {
            timeout,
            counters: Arc::default(),
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            timeout: self.timeout,
            counters: self.counters.clone(),
        }
    }
}

impl std::fmt::Debug for EdgeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeLayer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The service [`EdgeLayer`] wraps a route in.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    timeout: Duration,
    counters: Arc<RequestCounters>,
}

impl<S> std::fmt::Debug for Edge<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(given) if usable_request_id(given) => given.clone(),
            _ => {
                let generated = new_request_id();
                request.headers_mut().insert(REQUEST_ID, generated.clone());
                generated
            }
        };
        let method = request.method().clone();
        let uri = request.uri().clone();
        let counter = PendingCount {
            counters: self.counters.clone(),
            route: request.extensions().get::<MatchedPath>().cloned(),
        };
        let timeout = self.timeout;
        // Calling the route may itself panic (it usually only builds its future).
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request)));
        Box::pin(async move {
            let mut response = match answer {
                Ok(future) => {
                    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind())
                        .await
                    {
                        Ok(Ok(Ok(response))) => json_errors(response),
                        Ok(Ok(Err(never))) => match never {},
                        Ok(Err(panic)) => fallback::panic_to_response(panic),
                        Err(_elapsed) => timed_out().into_response(),
                    }
                }
                Err(panic) => fallback::panic_to_response(panic),
            };
            let status = response.status();
            response
                .headers_mut()
                .entry(REQUEST_ID)
                .or_insert_with(|| request_id.clone());
            counter.count(&method, status);
            access_log(&method, &uri, status, started.elapsed(), &request_id);
            Ok(response)
        })
    }
}

/// A request id sent by a client is kept if it is 1 to 128 characters of `A-Z a-z 0-9 - _ . :`
/// (UUIDs, ULIDs, `traceparent` values, nginx's `$request_id`). Anything else is replaced by a
/// generated id: it goes into every log line of the request, so it must not be able to forge
/// log fields (a quote, a space) or grow log lines and answers without bound.
fn usable_request_id(given: &HeaderValue) -> bool {
    let bytes = given.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

/// The method as a metric label and in the access log: a standard method by its name, any
/// other as `other`. hyper accepts any token as a method, of any length, and every distinct
/// label value is a new time series held for the life of the process.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// A random (version 4) UUID from the thread's generator: no system call per request.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = id.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// One line per answered request: method, path (never the query: it may carry data), status,
/// latency and request id. Failed requests (5xx) are warnings.
fn access_log(
    method: &Method,
    uri: &axum::http::Uri,
    status: StatusCode,
    latency: Duration,
    request_id: &HeaderValue,
) {
    let request_id = request_id.to_str().unwrap_or("-");
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    // Display (`%`), not Debug: none of these can hold a quote, a space or a control character
    // (the path is shown through `LoggedPath`, the method is one of a few names and the request
    // id is kept only if it is made of a few safe characters), so quoting and escaping them
    // would be work for nothing.
    let (method, path) = (method_label(method), LoggedPath(uri.path()));
    if status.is_server_error() {
        tracing::warn!(target: ACCESS_LOG_TARGET, method = %method, path = %path,
            status = status.as_u16(), latency_us, request_id = %request_id, "request failed");
    } else {
        tracing::info!(target: ACCESS_LOG_TARGET, method = %method, path = %path,
            status = status.as_u16(), latency_us, request_id = %request_id, "request");
    }
}

/// The longest path the access log shows; the rest is cut off with `…`.
const MAX_LOGGED_PATH: usize = 256;

/// A request path as the access log shows it: as it is when it is made of the characters a
/// path is written with, else with every other byte percent-encoded (a request path may hold
/// `"`, `{`, `}` and non-ASCII text), and at most [`MAX_LOGGED_PATH`] bytes. A client can then
/// neither forge a log field nor grow a log line much.
struct LoggedPath<'a>(&'a str);

impl std::fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain =
            |byte: u8| byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@%".contains(&byte);
        if self.0.len() <= MAX_LOGGED_PATH && self.0.bytes().all(plain) {
            return f.write_str(self.0);
        }
        let mut written = 0;
        for &byte in self.0.as_bytes() {
            if written >= MAX_LOGGED_PATH {
                return f.write_str("…");
            }
            if plain(byte) {
                f.write_char(char::from(byte))?;
                written += 1;
            } else {
                write!(f, "%{byte:02X}")?;
                written += 3;
            }
        }
        Ok(())
    }
}

/// The answer to a request that took longer than the request timeout.
fn timed_out() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the request took too long; retry",
    )
}

/// A safety net: an error answer that is not JSON (a framework default that slipped past the
/// typed extractors) is replaced by the JSON error shape with the same status.
fn json_errors(response: Response) -> Response {
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

/// `paystate_http_requests_total` handles by matched route, then method and status: counting a
/// request is a map lookup and an atomic add, not a registry lookup with three owned labels.
/// Bounded: routes are the router's (plus `unmatched`), methods the standard ones (plus
/// `other`, see [`method_label`]), statuses three digits.
#[derive(Default)]
struct RequestCounters {
    by_route: RwLock<CountersByRoute>,
}

/// Per matched route, a counter per method and status seen.
type CountersByRoute = HashMap<Box<str>, Vec<(&'static str, StatusCode, Counter)>>;

/// A request's route, ready to be counted once its status is known.
struct PendingCount {
    counters: Arc<RequestCounters>,
    route: Option<MatchedPath>,
}

impl PendingCount {
    /// Counts the request by method, matched route (never the raw path: unbounded label
    /// values) and status.
    fn count(&self, method: &Method, status: StatusCode) {
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let method = method_label(method);
        let find = |counters: &CountersByRoute| {
            counters.get(route).and_then(|counters| {
                counters
                    .iter()
                    .find(|(m, s, _)| *m == method && *s == status)
                    .map(|(_, _, counter)| counter.clone())
            })
        };
        let by_route = &self.counters.by_route;
        let cached = find(&by_route.read().unwrap_or_else(PoisonError::into_inner));
        let counter = cached.unwrap_or_else(|| {
            let mut by_route = by_route.write().unwrap_or_else(PoisonError::into_inner);
            find(&by_route).unwrap_or_else(|| {
                let counter = metrics::counter!(crate::metrics::HTTP_REQUESTS_TOTAL,
                    "method" => method, "route" => route.to_owned(),
                    "status" => status.as_u16().to_string());
                by_route
                    .entry(route.into())
                    .or_default()
                    .push((method, status, counter.clone()));
                counter
            })
        });
        counter.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn router() -> Router {
        Router::new()
            .route(
                "/plain",
                get(|| async { (StatusCode::BAD_REQUEST, "plain text") }),
            )
            .route(
                "/panics",
                get(|| async {
                    if true {
                        panic!("a bug");
                    }
                    "unreachable"
                }),
            )
            .route("/never", get(std::future::pending::<&'static str>))
            .layer(EdgeLayer::new(Duration::from_millis(20)))
    }

    async fn call(path: &str, request_id: Option<&str>) -> (StatusCode, String, serde_json::Value) {
        let mut request = Request::get(path);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let response = router()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let id = response.headers()[REQUEST_ID]
            .to_str()
            .expect("text")
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            id,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn a_non_json_error_gets_the_json_shape_and_the_given_request_id() {
        let (status, id, body) = call("/plain", Some("given-7")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(id, "given-7");
        assert_eq!(body["error"]["code"], "invalid_request");
    }

    #[tokio::test]
    async fn a_panic_is_a_json_500_with_a_generated_request_id() {
        let (status, id, body) = call("/panics", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(
            uuid::Uuid::parse_str(&id).is_ok_and(|id| id.get_version_num() == 4),
            "{id}"
        );
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_a_503() {
        let (status, _, body) = call("/never", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "unavailable");
    }

    #[tokio::test]
    async fn a_request_id_that_could_forge_log_fields_or_grow_without_bound_is_replaced() {
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for sent in ["a\" status=999 fake=\"", "two words", "", long.as_str()] {
            let (_, id, _) = call("/plain", Some(sent)).await;
            assert!(
                uuid::Uuid::parse_str(&id).is_ok_and(|id| id.get_version_num() == 4),
                "{sent:?} came back as {id:?}"
            );
        }
        let longest = "b".repeat(MAX_REQUEST_ID_LEN);
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for sent in [traceparent, "01J9ZQ4N7M2X.req_7:1", longest.as_str()] {
            assert_eq!(call("/plain", Some(sent)).await.1, sent);
        }
    }

    #[test]
    fn any_number_of_unknown_methods_makes_one_series() {
        let counters = Arc::new(RequestCounters::default());
        let pending = PendingCount {
            counters: counters.clone(),
            route: None,
        };
        for n in 0..100 {
            let method = Method::from_bytes(format!("M{n}{}", "X".repeat(n)).as_bytes()).unwrap();
            pending.count(&method, StatusCode::NOT_FOUND);
        }
        pending.count(&Method::GET, StatusCode::NOT_FOUND);
        let by_route = counters.by_route.read().unwrap();
        let labels: Vec<_> = by_route["unmatched"]
            .iter()
            .map(|(method, status, _)| (*method, status.as_u16()))
            .collect();
        assert_eq!(labels, [("other", 404), ("GET", 404)]);
    }

    #[test]
    fn a_logged_path_cannot_forge_a_field_or_grow_without_bound() {
        assert_eq!(
            LoggedPath("/webhooks/vipps/acme-shop").to_string(),
            "/webhooks/vipps/acme-shop"
        );
        assert_eq!(
            LoggedPath("/a\" status=999 x=\"ø").to_string(),
            "/a%22%20status=999%20x=%22%C3%B8"
        );
        let long = format!("/{}", "a".repeat(10_000));
        let shown = LoggedPath(&long).to_string();
        assert!(
            shown.ends_with('…') && shown.len() < MAX_LOGGED_PATH + 8,
            "{}",
            shown.len()
        );
    }

    #[test]
    fn generated_request_ids_differ() {
        assert_ne!(new_request_id(), new_request_id());
    }
}
