//! Admin bodies are JSON objects (SPEC §3.2): any other top-level value is a `400
//! invalid_request` saying so, after the size and media type checks that come first.

use crate::{app, app_following, assert_invalid_request, send};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const ID: &str = "vipps-test";

async fn send_json(
    router: &axum::Router,
    method: Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    send(
        router,
        method,
        path,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

fn credentials() -> Value {
    json!({"client_id": "client-id", "client_secret": "client-secret", "subscription_key": "sub-key"})
}

fn provider() -> Value {
    json!({"id": ID, "kind": "vipps", "environment": "test", "msn": "123456", "credentials": credentials()})
}

/// The fields of [`provider`] in declaration order, as a derived struct would read an array.
fn positional_provider() -> Value {
    json!([
        ID,
        "vipps",
        "test",
        "123456",
        ["client-id", "client-secret", "sub-key"],
        null
    ])
}

fn assert_not_an_object(status: StatusCode, answer: &Value, kind: &str, context: &str) {
    let message = format!("the body must be a JSON object, not {kind}");
    assert_invalid_request(status, answer, &message, context);
}

#[tokio::test]
async fn every_admin_body_must_be_an_object() {
    let router = app(true);
    let routes = [
        (Method::POST, "/providers".to_owned()),
        (Method::PUT, format!("/providers/{ID}/credentials")),
        (Method::PUT, format!("/providers/{ID}/environment")),
    ];
    let bodies = [
        (positional_provider(), "an array"),
        (json!(["client-id", "client-secret", "sub-key"]), "an array"),
        (json!(["production"]), "an array"),
        (json!([]), "an array"),
        (json!("vipps-test"), "a string"),
        (json!(7), "a number"),
        (json!(-1.5), "a number"),
        (json!(true), "a boolean"),
        (Value::Null, "null"),
    ];
    for (method, path) in &routes {
        for (body, kind) in &bodies {
            let (status, answer) = send_json(&router, method.clone(), path, body).await;
            assert_not_an_object(status, &answer, kind, &format!("{method} {path} {body}"));
        }
    }
}

#[tokio::test]
async fn a_positional_provider_is_not_created_and_an_object_is() {
    let router = app_following();
    let (status, answer) =
        send_json(&router, Method::POST, "/providers", &positional_provider()).await;
    assert_not_an_object(status, &answer, "an array", "positional provider");

    let mut nested = provider();
    nested["credentials"] = json!(["client-id", "client-secret", "sub-key"]);
    let (status, answer) = send_json(&router, Method::POST, "/providers", &nested).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_request");
    let message = answer["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("credentials") && message.contains("must be a JSON object, not an array"),
        "{message}"
    );

    let (status, answer) = send(&router, Method::GET, "/providers", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["providers"], json!([]), "nothing was created");

    let (status, answer) = send_json(&router, Method::POST, "/providers", &provider()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["id"], ID);
    let fingerprint = answer["credentials_fingerprint"].clone();

    let path = format!("/providers/{ID}/environment");
    let (status, answer) = send_json(
        &router,
        Method::PUT,
        &path,
        &json!({"environment": "production"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["environment"], "production");

    let mut changed = credentials();
    changed["client_secret"] = json!("another-secret");
    let path = format!("/providers/{ID}/credentials");
    let (status, answer) = send_json(&router, Method::PUT, &path, &changed).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(answer["credentials_fingerprint"], fingerprint);
}

#[tokio::test]
async fn size_and_media_type_are_checked_before_the_shape() {
    let router = app(true);
    let huge = format!("[{}0]", "0,".repeat(2 * 1024 * 1024));
    let (status, answer) = send(
        &router,
        Method::POST,
        "/providers",
        Some("application/json"),
        huge,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");

    for content_type in [None, Some("text/plain")] {
        let body = positional_provider().to_string();
        let (status, answer) = send(&router, Method::POST, "/providers", content_type, body).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "unsupported_media_type");
    }

    for broken in ["", "[1, 2", "{\"id\": ", "[] []"] {
        let (status, answer) = send(
            &router,
            Method::POST,
            "/providers",
            Some("application/json"),
            broken,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{broken:?}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{broken:?}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("the body is not valid JSON: ") || message.contains("JSON object"),
            "{broken:?}: {message}"
        );
    }
}

#[tokio::test]
async fn a_bad_field_or_query_parameter_is_named_first_in_the_message() {
    let router = app(true);
    let mut unknown_field = provider();
    unknown_field["colour"] = json!("blue");
    let (status, answer) = send_json(&router, Method::POST, "/providers", &unknown_field).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(!message.contains("Failed to"), "{message}");

    let (status, answer) = send(
        &router,
        Method::GET,
        "/payments/vipps-test/acme-1?at=abc",
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("query string: at: "), "{message}");
}
