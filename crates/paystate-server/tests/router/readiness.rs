//! Readiness, the admin guard and request ids, one request each.

use crate::{app, TOKEN};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(
    caught_up: bool,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let response = app(caught_up).oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn readiness_waits_for_the_projections_to_catch_up() {
    let (status, _, body) = call(false, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    let (status, _, body) = call(true, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["head"], 0);
}

#[tokio::test]
async fn admin_routes_need_the_token_and_probes_do_not() {
    for path in ["/payments", "/events", "/providers"] {
        let (status, headers, body) = call(true, get(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let request = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .expect("request");
        let (status, _, body) = call(true, request).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    for path in ["/healthz", "/openapi.json", "/metrics"] {
        let (status, _, _) = call(true, get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_a_given_one() {
    let (_, headers, _) = call(true, get("/healthz")).await;
    assert!(headers.get("x-request-id").is_some());
    let request = Request::get("/no-such-route")
        .header("x-request-id", "given-id-42")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = call(true, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(headers["x-request-id"], "given-id-42");
}
