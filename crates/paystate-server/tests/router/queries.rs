//! Query parameters a route reads are UTF-8 once percent-decoded: any other value is a `400
//! invalid_request` naming the parameter and quoting the value as sent, never a `'�'` nobody
//! sent. Parameters a route does not read stay ignored, whatever their bytes.

use crate::{app, assert_invalid_request, send};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::Value;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    send(router, Method::GET, path, None, Body::empty()).await
}

#[tokio::test]
async fn a_query_value_that_is_not_utf8_is_named_and_quoted_as_sent() {
    let router = app(true);
    for (path, parameter, sent) in [
        ("/payments?provider_id=%ff", "provider_id", "%ff"),
        (
            "/payments?limit=5&provider_id=ab%FFcd",
            "provider_id",
            "ab%FFcd",
        ),
        ("/payments?state=%c3%28", "state", "%c3%28"),
        ("/payments?after=%ff", "after", "%ff"),
        ("/payments?limit=%ff", "limit", "%ff"),
        (
            "/payments/vipps-test/acme-order-1001?as_of=%ff",
            "as_of",
            "%ff",
        ),
        ("/payments/vipps-test/acme-order-1001?at=%80", "at", "%80"),
        (
            "/payments/vipps-test/acme-order-1001/history?as_of=2025%ff",
            "as_of",
            "2025%ff",
        ),
        ("/events?after=%fe", "after", "%fe"),
    ] {
        let (status, answer) = get(&router, path).await;
        let message =
            format!("{parameter}: is not valid UTF-8 once percent-decoded (sent as {sent})");
        assert_invalid_request(status, &answer, &message, path);
    }
}

#[tokio::test]
async fn a_parameter_no_route_reads_is_ignored_whatever_its_bytes() {
    let router = app(true);
    for path in ["/payments?%ff=1", "/payments?_=%ff", "/events?x=%ff%fe"] {
        let (status, answer) = get(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
}
