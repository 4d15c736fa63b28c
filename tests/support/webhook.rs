//! Deliveries signed like Vipps signs them, and bodies like Vipps sends them.

use paystate_vipps::signature::sign_delivery;
use paystate_vipps::{RegisteredUrl, WebhookSecret};
use std::time::SystemTime;

/// `x-ms-date` for now, IMF-fixdate.
pub fn now_date() -> String {
    httpdate::fmt_http_date(SystemTime::now())
}

/// `x-ms-date` for `seconds` from now (negative: in the past).
pub fn date_offset(seconds: i64) -> String {
    let now = SystemTime::now();
    let shifted = if seconds >= 0 {
        now + std::time::Duration::from_secs(seconds.unsigned_abs())
    } else {
        now - std::time::Duration::from_secs(seconds.unsigned_abs())
    };
    httpdate::fmt_http_date(shifted)
}

/// The headers Vipps would send for `body` to `url` signed with `secret` at `date`.
pub fn signed_headers(
    secret: &WebhookSecret,
    url: &RegisteredUrl,
    body: &[u8],
    date: &str,
) -> Vec<(&'static str, String)> {
    let headers = sign_delivery(secret, url, body, date);
    headers
        .pairs()
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .chain([("content-type", "application/json".to_owned())])
        .collect()
}

/// A compact ePayment event body.
pub fn event_body(
    msn: &str,
    reference: &str,
    psp_reference: &str,
    name: &str,
    amount: u64,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "msn": msn,
        "reference": reference,
        "pspReference": psp_reference,
        "name": name,
        "amount": {"currency": "NOK", "value": amount},
        "timestamp": "2025-01-14T09:30:01.123Z",
        "idempotencyKey": null,
        "success": true
    }))
    .expect("JSON")
}

/// Headers signed with the secret **base64-decoded** as the HMAC key (the classic bug).
pub fn signed_with_decoded_secret(
    secret: &str,
    url: &RegisteredUrl,
    body: &[u8],
    date: &str,
) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use hmac::Mac as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("a base64 secret");
    let hash = base64::engine::general_purpose::STANDARD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    let to_sign = format!(
        "POST\n{}\n{date};{};{hash}",
        url.path_and_query(),
        url.host_for_signing()
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let authorization = format!(
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
    );
    vec![
        ("x-ms-date", date.to_owned()),
        ("x-ms-content-sha256", hash),
        ("authorization", authorization.clone()),
        ("x-vipps-authorization", authorization),
        ("content-type", "application/json".to_owned()),
    ]
}
