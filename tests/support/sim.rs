//! The simulator in-process, and the merchant's side of its APIs (what a web shop calls).

use serde_json::{json, Value};
use std::time::Duration;
use vipps_sim::{RetrySchedule, SimConfig, SimHandle, Simulator};

/// Starts the simulator on `127.0.0.1:0`. Retries come fast and go on for `give_up_after`,
/// long enough to outlast a server restart.
pub async fn start_sim(give_up_after: Duration) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the simulator");
    let config = SimConfig {
        retry: RetrySchedule {
            backoff: vec![
                Duration::from_millis(10),
                Duration::from_millis(50),
                Duration::from_millis(100),
                Duration::from_millis(200),
            ],
            give_up_after,
        },
        ..SimConfig::for_tests()
    };
    Simulator::start(listener, config)
        .await
        .expect("start the simulator")
}

/// A merchant (one MSN) calling the simulator's Vipps APIs with a cached access token.
#[derive(Debug, Clone)]
pub struct Merchant {
    client: reqwest::Client,
    base: String,
    pub msn: String,
    token: String,
}

const SUBSCRIPTION_KEY: &str = "e2e-subscription-key";

impl Merchant {
    /// Gets an access token for `msn` (the simulator accepts any non-empty credentials).
    pub async fn connect(base_url: &str, msn: &str) -> Merchant {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{base_url}/accesstoken/get"))
            .header("client_id", "e2e-client")
            .header("client_secret", "e2e-client-secret")
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .header("Merchant-Serial-Number", msn)
            .send()
            .await
            .expect("token request");
        assert!(
            response.status().is_success(),
            "token: {}",
            response.status()
        );
        let body: Value = response.json().await.expect("token JSON");
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Merchant {
            client,
            base: base_url.to_owned(),
            msn: msn.to_owned(),
            token,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
            .header("Merchant-Serial-Number", &self.msn)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("simulator call");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Registers a webhook for every ePayment event; returns `(id, secret)`.
    pub async fn register_webhook(&self, url: &str) -> (String, String) {
        let events = paystate_domain::EPAYMENT_EVENT_TYPES.to_vec();
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/webhooks/v1/webhooks",
                Some(json!({"url": url, "events": events})),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["secret"].as_str().expect("secret").to_owned(),
        )
    }

    pub async fn create_payment(&self, reference: &str, amount: u64) {
        let body = json!({
            "amount": {"currency": "NOK", "value": amount},
            "paymentMethod": {"type": "WALLET"},
            "reference": reference,
            "returnUrl": "https://shop.example/return",
            "userFlow": "WEB_REDIRECT",
        });
        let (status, answer) = self
            .call(reqwest::Method::POST, "/epayment/v1/payments", Some(body))
            .await;
        assert_eq!(status, 201, "create {reference}: {answer}");
    }

    pub async fn approve(&self, reference: &str) {
        let path = format!("/epayment/v1/test/payments/{reference}/approve");
        let (status, answer) = self
            .call(reqwest::Method::POST, &path, Some(json!({})))
            .await;
        assert!(
            (200..300).contains(&status),
            "approve {reference}: {status} {answer}"
        );
    }

    pub async fn capture(&self, reference: &str, amount: u64) {
        self.modify(reference, "capture", Some(amount)).await;
    }

    pub async fn refund(&self, reference: &str, amount: u64) {
        self.modify(reference, "refund", Some(amount)).await;
    }

    pub async fn cancel(&self, reference: &str) {
        self.modify(reference, "cancel", None).await;
    }

    async fn modify(&self, reference: &str, operation: &str, amount: Option<u64>) {
        let path = format!("/epayment/v1/payments/{reference}/{operation}");
        let body = match amount {
            Some(value) => json!({"modificationAmount": {"currency": "NOK", "value": value}}),
            None => json!({}),
        };
        let (status, answer) = self.call(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, 200, "{operation} {reference}: {answer}");
    }

    /// The simulator's own view of the payment: `GET /epayment/v1/payments/{reference}`.
    pub async fn payment(&self, reference: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/epayment/v1/payments/{reference}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "get {reference}: {body}");
        body
    }
}

/// Whether paystate's payment view says the same as the simulator's payment: state and the
/// four aggregate amounts.
pub fn same_payment(paystate: &Value, vipps: &Value) -> bool {
    let amount = |name: &str| vipps["aggregate"][name]["value"].as_u64();
    paystate["state"] == vipps["state"]
        && paystate["aggregate"]["authorized"].as_u64() == amount("authorizedAmount")
        && paystate["aggregate"]["captured"].as_u64() == amount("capturedAmount")
        && paystate["aggregate"]["refunded"].as_u64() == amount("refundedAmount")
        && paystate["aggregate"]["cancelled"].as_u64() == amount("cancelledAmount")
}
