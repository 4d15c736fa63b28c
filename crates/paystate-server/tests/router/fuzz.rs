//! Arbitrary requests against the whole router: every answer is either a success or a JSON
//! error of the documented shape, never a 5xx, never a panic.

use crate::{app, TOKEN};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

/// Percent-encodes arbitrary bytes into one path segment or query value.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
    ])
}

fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/webhooks/vipps/",
        "/payments/",
        "/payments",
        "/events/",
        "/events",
        "/providers/",
        "/providers",
        "/healthz",
        "/readyz",
        "/",
        "/openapi.json/",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_request_gets_a_well_formed_answer(
        method in method(),
        prefix in prefix(),
        segments in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..4),
        query in prop::collection::vec((prop::sample::select(vec!["after", "limit", "at", "as_of", "state", "provider_id"]), prop::collection::vec(any::<u8>(), 0..30)), 0..3),
        body in prop::collection::vec(any::<u8>(), 0..300),
        with_token in any::<bool>(),
        header_value in prop::collection::vec(32u8..127, 0..200),
    ) {
        let mut path = prefix.to_owned();
        path.push_str(&segments.iter().map(|s| encode(s)).collect::<Vec<_>>().join("/"));
        if !query.is_empty() {
            let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
            path.push('?');
            path.push_str(&pairs.join("&"));
        }
        let header_value = String::from_utf8(header_value).expect("printable ASCII");
        let mut request = Request::builder()
            .method(method)
            .uri(&path)
            .header("x-ms-date", &header_value)
            .header("x-ms-content-sha256", &header_value)
            .header("authorization", if with_token { format!("Bearer {TOKEN}") } else { format!("HMAC-SHA256 {header_value}") })
            .header("content-type", "application/json");
        if with_token {
            request = request.header("x-vipps-authorization", &header_value);
        }
        let request = request.body(Body::from(body)).expect("request");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (status, bytes) = runtime.block_on(async {
            let response = app(true).oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response.into_body().collect().await.expect("body").to_bytes();
            (status, bytes)
        });
        prop_assert!(!status.is_server_error(), "{method} {path}: {status} {}", String::from_utf8_lossy(&bytes));
        if status.is_client_error() && method != "HEAD" {
            let body: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|_| TestCaseError::fail(format!("{method} {path}: not JSON: {}", String::from_utf8_lossy(&bytes))))?;
            prop_assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        }
    }
}
