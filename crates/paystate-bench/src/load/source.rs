//! What a connection sends, and how its answers count.

use super::workload::WebhookMix;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use paystate_vipps::signature::{imf_fixdate, sign_delivery, RegisteredUrl, WebhookSecret};
use std::time::SystemTime;

/// How one answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200, and the server says it appended the delivery.
    Accepted,
    /// 200, and the server says it had seen the delivery before.
    Duplicate,
    /// 200 without a paystate answer body (the ceiling, a query).
    Ok,
    /// Anything else.
    Failed,
}

impl Outcome {
    pub fn is_success(self) -> bool {
        self != Outcome::Failed
    }
}

/// The requests of a load run, as a pure function of (connection, sequence number).
pub trait RequestSource: Send + Sync + 'static {
    /// The `sequence`-th request of `connection`. Called just before it is sent.
    fn request(&self, connection: usize, sequence: u64) -> Request<Full<Bytes>>;
    /// What an answer with this status and body counts as.
    fn classify(&self, status: StatusCode, body: &[u8]) -> Outcome;
}

/// Where webhooks go and how they are signed: the provider's registered URL and secret.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// The URL as registered at Vipps: its host and path are what is signed.
    pub registered_url: RegisteredUrl,
    pub secret: WebhookSecret,
    /// The `Webhook-Id` header (the registration id).
    pub webhook_id: String,
}

/// Vipps-signed deliveries of a [`WebhookMix`], each signed with the current date.
#[derive(Debug, Clone)]
pub struct SignedWebhooks {
    pub mix: WebhookMix,
    pub endpoint: WebhookEndpoint,
}

impl RequestSource for SignedWebhooks {
    fn request(&self, connection: usize, sequence: u64) -> Request<Full<Bytes>> {
        let delivery = self.mix.delivery(connection, sequence);
        let url = &self.endpoint.registered_url;
        let headers = sign_delivery(
            &self.endpoint.secret,
            url,
            &delivery.body,
            &imf_fixdate(SystemTime::now()),
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url.path_and_query())
            .header(header::HOST, url.host_for_signing())
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &self.endpoint.webhook_id);
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        request
            .body(Full::new(Bytes::from(delivery.body)))
            .unwrap_or_default()
    }

    fn classify(&self, status: StatusCode, body: &[u8]) -> Outcome {
        classify_webhook_answer(status, body)
    }
}

/// paystate answers `{"status": "accepted", ...}` or `{"status": "duplicate", ...}`; a
/// receiver that says nothing more than 200 counts as [`Outcome::Ok`].
pub fn classify_webhook_answer(status: StatusCode, body: &[u8]) -> Outcome {
    if status != StatusCode::OK {
        return Outcome::Failed;
    }
    let says = |word: &[u8]| body.windows(word.len()).any(|window| window == word);
    if says(b"\"duplicate\"") {
        Outcome::Duplicate
    } else if says(b"\"accepted\"") {
        Outcome::Accepted
    } else {
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_vipps::verify::{verify_delivery, DeliveryRequest, DEFAULT_TOLERANCE};

    #[test]
    fn a_generated_request_verifies_with_the_endpoint_secret() {
        let source = SignedWebhooks {
            mix: WebhookMix::new("123456", "bench-r1"),
            endpoint: WebhookEndpoint {
                registered_url: RegisteredUrl::parse("http://127.0.0.1:8080/webhooks/vipps/bench")
                    .unwrap(),
                secret: WebhookSecret::new("a-secret"),
                webhook_id: "registration-1".into(),
            },
        };
        let request = source.request(3, 7);
        assert_eq!(request.uri(), "/webhooks/vipps/bench");
        assert_eq!(request.headers()[header::HOST], "127.0.0.1:8080");
        let body = source.mix.delivery(3, 7).body;
        let version = paystate_domain::SecretVersion::new(1).unwrap();
        let verified = verify_delivery(
            &DeliveryRequest::new(request.headers(), &body),
            &source.endpoint.registered_url,
            &[(version, &source.endpoint.secret)],
            time::OffsetDateTime::now_utc(),
            DEFAULT_TOLERANCE,
        );
        assert!(verified.is_ok(), "{verified:?}");
    }

    #[test]
    fn answers_are_classified_by_status_and_body() {
        let ok = StatusCode::OK;
        assert_eq!(
            classify_webhook_answer(ok, br#"{"status":"accepted","position":3}"#),
            Outcome::Accepted
        );
        assert_eq!(
            classify_webhook_answer(ok, br#"{"status":"duplicate","original_position":3}"#),
            Outcome::Duplicate
        );
        assert_eq!(classify_webhook_answer(ok, b""), Outcome::Ok);
        assert_eq!(
            classify_webhook_answer(StatusCode::UNAUTHORIZED, b"{}"),
            Outcome::Failed
        );
    }
}
