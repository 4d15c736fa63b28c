//! A simulator plus a Vipps client, and a webhook receiver that records and verifies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use paystate_domain::SecretVersion;
use paystate_vipps::signature::{RegisteredUrl, WebhookSecret};
use paystate_vipps::verify::{
    verify_delivery, DeliveryRequest, Rejection, Verified, DEFAULT_TOLERANCE,
};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use vipps_sim::{DeliveryRecord, SimConfig, SimHandle, Simulator};

pub const MSN: &str = "123456";
pub const SUBSCRIPTION_KEY: &str = "test-subscription-key";
/// How long any awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const ALL_EVENTS: [&str; 8] = [
    "epayments.payment.created.v1",
    "epayments.payment.aborted.v1",
    "epayments.payment.expired.v1",
    "epayments.payment.cancelled.v1",
    "epayments.payment.captured.v1",
    "epayments.payment.refunded.v1",
    "epayments.payment.authorized.v1",
    "epayments.payment.terminated.v1",
];

/// A running simulator with a token for [`MSN`].
pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

impl Sim {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::for_tests()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = Simulator::start(listener, config).await.unwrap();
        let http = reqwest::Client::new();
        let mut sim = Self {
            handle,
            http,
            token: String::new(),
        };
        let answer = sim.token_request().send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        sim.token = body["access_token"].as_str().unwrap().to_owned();
        sim
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// `GET path` on the simulator, answered with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The token call as the official SDKs make it.
    pub fn token_request(&self) -> RequestBuilder {
        self.token_request_for(MSN)
    }

    pub fn token_request_for(&self, msn: &str) -> RequestBuilder {
        self.http
            .post(self.url("/accesstoken/get"))
            .header("client_id", "test-client")
            .header("client_secret", "test-client-secret")
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .header("Merchant-Serial-Number", msn)
    }

    /// An authenticated Vipps call.
    pub fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.call_as(method, path, SUBSCRIPTION_KEY, MSN)
    }

    /// A call with this token but another subscription key or MSN.
    pub fn call_as(&self, method: Method, path: &str, key: &str, msn: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("Ocp-Apim-Subscription-Key", key)
            .header("Merchant-Serial-Number", msn)
            .header("Vipps-System-Name", "paystate-tests")
    }

    pub async fn register(&self, url: &str, events: &[&str]) -> (Uuid, WebhookSecret) {
        let answer = self
            .call(Method::POST, "/webhooks/v1/webhooks")
            .json(&json!({ "url": url, "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let body: Value = answer.json().await.unwrap();
        let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
        let secret = WebhookSecret::new(body["secret"].as_str().unwrap());
        (id, secret)
    }

    pub async fn create_payment(&self, reference: &str, value: u64) -> Response {
        self.call(Method::POST, "/epayment/v1/payments")
            .header("Idempotency-Key", format!("create-{reference}"))
            .json(&json!({
                "amount": { "currency": "NOK", "value": value },
                "paymentMethod": { "type": "WALLET" },
                "reference": reference,
                "userFlow": "WEB_REDIRECT",
                "returnUrl": "https://shop.example/return",
                "paymentDescription": "Test order",
            }))
            .send()
            .await
            .unwrap()
    }

    pub async fn approve(&self, reference: &str) -> Response {
        self.call(
            Method::POST,
            &format!("/epayment/v1/test/payments/{reference}/approve"),
        )
        .send()
        .await
        .unwrap()
    }

    /// Capture or refund.
    pub async fn modify(
        &self,
        reference: &str,
        operation: &str,
        value: u64,
        key: &str,
    ) -> Response {
        self.call(
            Method::POST,
            &format!("/epayment/v1/payments/{reference}/{operation}"),
        )
        .header("Idempotency-Key", key)
        .json(&json!({ "modificationAmount": { "currency": "NOK", "value": value } }))
        .send()
        .await
        .unwrap()
    }

    pub async fn cancel(&self, reference: &str, key: &str) -> Response {
        self.call(
            Method::POST,
            &format!("/epayment/v1/payments/{reference}/cancel"),
        )
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap()
    }

    pub async fn payment(&self, reference: &str) -> Value {
        let answer = self
            .call(Method::GET, &format!("/epayment/v1/payments/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }

    /// Waits until `condition` holds for the delivery log; fails the test otherwise.
    pub async fn await_log(
        &self,
        what: &str,
        condition: impl FnMut(&[DeliveryRecord]) -> bool,
    ) -> Vec<DeliveryRecord> {
        match self.handle.wait_for_deliveries(PATIENCE, condition).await {
            Some(log) => log,
            None => panic!(
                "timed out waiting for {what}; log: {:#?}",
                self.handle.deliveries()
            ),
        }
    }
}

/// Asserts a problem+json answer with this status and returns its body.
pub async fn expect_problem(answer: Response, status: u16) -> Value {
    assert_eq!(answer.status(), status);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = answer.json().await.unwrap();
    for field in [
        "type",
        "title",
        "detail",
        "instance",
        "traceId",
        "extraDetails",
    ] {
        assert!(body.get(field).is_some(), "problem without {field}: {body}");
    }
    assert_eq!(body["status"], status);
    body
}

/// Counts log records matching a predicate.
pub fn count(log: &[DeliveryRecord], predicate: impl Fn(&DeliveryRecord) -> bool) -> usize {
    log.iter().filter(|record| predicate(record)).count()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn event(&self) -> (String, String) {
        let body = self.json();
        (
            body["reference"].as_str().unwrap_or_default().to_owned(),
            body["name"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Verifies the delivery with paystate's own verifier: the registered URL, the raw body,
    /// the headers, the registration's secret, ±300 s on the date.
    pub fn verify(
        &self,
        url: &RegisteredUrl,
        secret: &WebhookSecret,
    ) -> Result<Verified, Rejection> {
        let request = DeliveryRequest::new(&self.headers, &self.body);
        let current = SecretVersion::new(1).unwrap();
        verify_delivery(
            &request,
            url,
            &[(current, secret)],
            OffsetDateTime::now_utc(),
            DEFAULT_TOLERANCE,
        )
    }

    pub fn verifies_with(&self, url: &RegisteredUrl, secret: &WebhookSecret) -> bool {
        self.verify(url, secret).is_ok()
    }
}

type Answer = dyn Fn(&Received, &[Received]) -> StatusCode + Send + Sync;

/// A webhook receiver on 127.0.0.1:0 that records every request and answers with a
/// programmable status (given the request and every earlier one).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Answer>,
}

impl Receiver {
    pub async fn accepting() -> Self {
        Self::answering(|_, _| StatusCode::OK).await
    }

    pub async fn answering(
        answer: impl Fn(&Received, &[Received]) -> StatusCode + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            received: Arc::clone(&received),
            answer: Arc::new(answer),
        };
        let app = axum::Router::new().fallback(record).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    /// The URL to register, e.g. `http://127.0.0.1:PORT/hooks/vipps?tenant=acme`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn record(State(state): State<ReceiverState>, request: Request) -> impl IntoResponse {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let received = Received {
        path_and_query,
        headers,
        body,
        at: std::time::Instant::now(),
    };
    let mut all = state.received.lock().unwrap();
    let status = (state.answer)(&received, &all);
    all.push(received);
    status
}
