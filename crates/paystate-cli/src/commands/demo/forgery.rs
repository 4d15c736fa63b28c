//! Requests that are not deliveries from Vipps, sent to the provider's webhook URL.

use super::story::{AUDITED, MSN};
use anyhow::{bail, Context};
use paystate_vipps::signature::imf_fixdate;
use paystate_vipps::{sign_delivery, RegisteredUrl, WebhookSecret};
use serde_json::{json, Value};
use std::time::SystemTime;

/// Two ways a request can fail to be a delivery from Vipps.
#[derive(Debug, Clone, Copy)]
pub enum Forgery {
    /// Signed correctly, but with a secret the provider never had.
    ForeignSecret,
    /// Its body is not the one its `x-ms-content-sha256` and signature were made for.
    BodyChanged,
}

impl Forgery {
    pub fn describe(self) -> &'static str {
        match self {
            Forgery::ForeignSecret => "signed with a foreign secret",
            Forgery::BodyChanged => "body changed after signing",
        }
    }
}

/// Sends a plausible REFUNDED delivery for the audited payment, forged as `forgery` says.
pub async fn forge(webhook_url: &str, forgery: Forgery) -> anyhow::Result<(u16, Value)> {
    let url = RegisteredUrl::parse(webhook_url).context("the registered webhook URL")?;
    let body = |value: u64| {
        json!({
            "msn": MSN, "reference": AUDITED, "pspReference": "forged-refund-1", "name": "REFUNDED",
            "amount": {"currency": "NOK", "value": value}, "timestamp": "2025-01-14T09:30:01.123Z",
            "idempotencyKey": null, "success": true
        })
        .to_string()
    };
    let signed_body = body(100);
    let sent_body = match forgery {
        Forgery::ForeignSecret => signed_body.clone(),
        Forgery::BodyChanged => body(20000),
    };
    let foreign_secret = WebhookSecret::new("not-the-provider-secret-0123456789");
    let headers = sign_delivery(
        &foreign_secret,
        &url,
        signed_body.as_bytes(),
        &imf_fixdate(SystemTime::now()),
    );
    let mut request = reqwest::Client::new()
        .post(webhook_url)
        .header("content-type", "application/json")
        .body(sent_body);
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.context("sending a forged webhook")?;
    let status = response.status().as_u16();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    if status != 401 {
        bail!("a forged webhook was answered {status} {answer}, not 401");
    }
    Ok((status, answer))
}
