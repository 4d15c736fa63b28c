//! The adapter end to end over real HTTP on 127.0.0.1: a sender signs deliveries exactly as
//! Vipps does, an axum receiver verifies them from the raw body and its `HeaderMap` against
//! the URL as registered (as if behind a reverse proxy), and parses the payload.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use paystate_domain::{PaymentEventName, SecretVersion};
use paystate_vipps::payload::EpaymentEvent;
use paystate_vipps::signature::imf_fixdate;
use paystate_vipps::verify::DEFAULT_TOLERANCE;
use paystate_vipps::{
    sign_delivery, verify_delivery, DeliveryRequest, RegisteredUrl, WebhookSecret,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

const BODY: &str = r#"{"msn":"123456","reference":"acme-order-1001","pspReference":"9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22","name":"CAPTURED","amount":{"currency":"NOK","value":20000},"timestamp":"2025-01-14T09:35:00.000Z","idempotencyKey":null,"success":true,"captureGuaranteedUntil":"2025-01-21T09:35:00Z"}"#;

struct Receiver {
    /// The public URL registered at Vipps; the receiver itself listens elsewhere.
    registered: RegisteredUrl,
    /// Accepted secrets, current first.
    secrets: Vec<(SecretVersion, WebhookSecret)>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let candidates: Vec<_> = receiver
        .secrets
        .iter()
        .map(|(version, secret)| (*version, secret))
        .collect();
    let request = DeliveryRequest::new(&headers, &body);
    match verify_delivery(
        &request,
        &receiver.registered,
        &candidates,
        OffsetDateTime::now_utc(),
        DEFAULT_TOLERANCE,
    ) {
        Ok(verified) => {
            let event = EpaymentEvent::parse(body.clone());
            let name = event
                .as_ref()
                .map(|event| event.name.to_string())
                .unwrap_or_default();
            (
                StatusCode::OK,
                Json(json!({"secret_version": verified.secret_version.get(), "name": name})),
            )
        }
        Err(rejection) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": rejection.code().as_str(), "message": rejection.message()})),
        ),
    }
}

/// Starts a receiver and answers its delivery URL.
async fn start_receiver(receiver: Receiver) -> String {
    let app = Router::new()
        .route("/hooks/vipps/v1", post(receive))
        .with_state(Arc::new(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hooks/vipps/v1?tenant=acme-42")
}

fn version(n: u32) -> SecretVersion {
    SecretVersion::new(n).unwrap()
}

/// Posts `body` to `target` with Vipps's signature headers for `registered` and `secret`.
async fn deliver(
    target: &str,
    registered: &RegisteredUrl,
    secret: &WebhookSecret,
    body: &[u8],
    sent_body: &[u8],
) -> (u16, Value) {
    let signed = sign_delivery(secret, registered, body, &imf_fixdate(SystemTime::now()));
    let mut request = reqwest::Client::new().post(target).body(sent_body.to_vec());
    // Vipps's own casing; HTTP/1 carries it, hyper lowers it.
    request = request
        .header("X-Ms-Date", &signed.x_ms_date)
        .header("X-Ms-Content-Sha256", &signed.x_ms_content_sha256)
        .header("Authorization", &signed.authorization)
        .header("X-Vipps-Authorization", &signed.authorization)
        .header("Content-Type", "application/json");
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

#[tokio::test]
async fn a_delivery_signed_for_the_registered_url_verifies_behind_a_proxy() {
    let registered =
        RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42").unwrap();
    let old = WebhookSecret::new(
        "old-secret-0000000000000000000000000000000000000000000000000000000000000000000000000==",
    );
    let current = WebhookSecret::new(
        "new-secret-1111111111111111111111111111111111111111111111111111111111111111111111111==",
    );
    let target = start_receiver(Receiver {
        registered: registered.clone(),
        secrets: vec![(version(2), current.clone()), (version(1), old.clone())],
    })
    .await;

    let (status, answer) = deliver(
        &target,
        &registered,
        &current,
        BODY.as_bytes(),
        BODY.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"secret_version": 2, "name": PaymentEventName::Captured.as_str()})
    );

    // During a rotation Vipps may still sign with the older registration's secret.
    let (status, answer) =
        deliver(&target, &registered, &old, BODY.as_bytes(), BODY.as_bytes()).await;
    assert_eq!((status, answer["secret_version"].as_u64()), (200, Some(1)));
}

#[tokio::test]
async fn forged_or_altered_deliveries_are_refused_with_their_code() {
    let registered =
        RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42").unwrap();
    let secret = WebhookSecret::new("the-secret");
    let target = start_receiver(Receiver {
        registered: registered.clone(),
        secrets: vec![(version(1), secret.clone())],
    })
    .await;

    let altered = BODY.replace("20000", "20001");
    let (status, answer) = deliver(
        &target,
        &registered,
        &secret,
        BODY.as_bytes(),
        altered.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("content_hash_mismatch")),
        "{answer}"
    );

    let forger = WebhookSecret::new("a-guess");
    let (status, answer) = deliver(
        &target,
        &registered,
        &forger,
        BODY.as_bytes(),
        BODY.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_signature")),
        "{answer}"
    );

    // Signed for the address the request actually reached instead of the registered URL.
    let local = RegisteredUrl::parse(&target).unwrap();
    let (status, answer) =
        deliver(&target, &local, &secret, BODY.as_bytes(), BODY.as_bytes()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_signature")),
        "{answer}"
    );
    assert!(
        answer["message"].as_str().unwrap().contains("Host"),
        "{answer}"
    );

    let unsigned = reqwest::Client::new()
        .post(&target)
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let answer: Value = unsigned.json().await.unwrap();
    assert_eq!(answer["code"], "missing_signature");
}

#[tokio::test]
async fn a_stale_delivery_is_refused() {
    let registered =
        RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42").unwrap();
    let secret = WebhookSecret::new("the-secret");
    let target = start_receiver(Receiver {
        registered: registered.clone(),
        secrets: vec![(version(1), secret.clone())],
    })
    .await;
    let an_hour_ago = imf_fixdate(SystemTime::now() - Duration::from_secs(3600));
    let signed = sign_delivery(&secret, &registered, BODY.as_bytes(), &an_hour_ago);
    let answer = reqwest::Client::new()
        .post(&target)
        .header("x-ms-date", &signed.x_ms_date)
        .header("x-ms-content-sha256", &signed.x_ms_content_sha256)
        .header("authorization", &signed.authorization)
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["code"], "stale_date");
}
