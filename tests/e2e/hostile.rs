//! Hostile input: odd methods, ids, numbers, headers and bytes get JSON 4xx answers, never a
//! panic, and record nothing beyond the bounded rejection records.

use crate::ingestion::{recorded, Fixture};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Sends a raw request and checks it is answered with a JSON error of a 4xx status.
async fn check_json_4xx(
    fx: &Fixture,
    method: Method,
    path: &str,
    token: bool,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = fx
        .server
        .client
        .request(method.clone(), format!("{}{path}", fx.server.base_url))
        .body(body);
    if token {
        request = request.bearer_auth(&fx.server.admin_token);
    }
    let response = request.send().await.expect("the server answers");
    let (status, body) = paystate_e2e::server::read(response).await;
    assert!(status.is_client_error(), "{method} {path}: {status} {body}");
    assert!(
        body["error"]["code"].is_string(),
        "{method} {path}: not the JSON error shape: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn odd_requests_get_json_errors_and_change_nothing() {
    let fx = Fixture::start().await;
    let long_id = "a".repeat(10_000);
    let head = fx.server.head();

    // Wrong methods.
    for (method, path) in [
        (Method::GET, "/webhooks/vipps/vipps-test"),
        (Method::PUT, "/webhooks/vipps/vipps-test"),
        (Method::DELETE, "/webhooks/vipps/vipps-test"),
        (Method::POST, "/payments"),
        (Method::PATCH, "/events"),
        (Method::POST, "/healthz"),
    ] {
        let (status, _) = check_json_4xx(&fx, method, path, true, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }

    // Odd ids and numbers.
    for path in [
        "/events?after=-1",
        "/events?after=abc",
        "/events?limit=0",
        "/events?limit=99999999999999999999999",
        "/events/abc",
        "/events/99999999999999999999999",
        "/payments/x/y",
        "/payments/vipps-test/short",
        "/payments/vipps-test/acme-order-1001?at=x",
        "/payments/vipps-test/acme-order-1001?as_of=yesterday",
        "/payments?state=PAID",
        "/payments?limit=100000",
        "/payments?provider_id=..%2F..",
        &format!("/payments/{long_id}/acme-order-1001"),
        "/payments/%FF%FE/acme-order-1001",
        "/no/such/route",
    ] {
        check_json_4xx(&fx, Method::GET, path, true, Vec::new()).await;
    }

    // Without or with a wrong token.
    for path in ["/payments", "/events", "/events/1"] {
        let (status, _) = check_json_4xx(&fx, Method::GET, path, false, Vec::new()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = fx
        .server
        .client
        .get(format!("{}/events", fx.server.base_url))
        .bearer_auth("not-the-token-not-the-token")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Odd provider ids on the ingestion route.
    for id in [
        long_id.as_str(),
        "..%2F..%2Fetc",
        "%00",
        "UPPER",
        "a%20b",
        "%FF",
    ] {
        let (status, _) = check_json_4xx(
            &fx,
            Method::POST,
            &format!("/webhooks/vipps/{id}"),
            false,
            b"{}".to_vec(),
        )
        .await;
        // None of them can be a provider id: the webhook route's one answer for that.
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }

    // Unsigned garbage to a real provider: 401, one bounded rejection record each.
    let (status, _) = check_json_4xx(
        &fx,
        Method::POST,
        "/webhooks/vipps/vipps-test",
        false,
        vec![0xff, 0xfe, 0x00, 0x80],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A huge header is refused as a whole or verified and rejected, never accepted.
    let huge = "x".repeat(100_000);
    let response = fx
        .server
        .client
        .post(fx.server.webhook_url("vipps-test"))
        .header(
            "authorization",
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={huge}"
            ),
        )
        .header("x-ms-date", huge.as_str())
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert!(response.status().is_client_error(), "{}", response.status());

    // Still alive, and only rejection records were appended.
    let (status, _) = fx.server.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let rejections = recorded(fx.server.store.as_ref(), "webhook_rejected").len() as u64;
    assert_eq!(
        fx.server.head(),
        head + rejections,
        "nothing but rejection records"
    );
    assert!(recorded(fx.server.store.as_ref(), "payment_event_recorded").is_empty());
    fx.server.stop().await;
}
