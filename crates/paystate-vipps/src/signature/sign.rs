//! Signing a delivery exactly as Vipps does (VIPPS.md §2). Verification is the inverse and
//! reuses these building blocks, so the two cannot drift apart.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::Mac;
use sha2::{Digest, Sha256};

use super::secret::HmacSha256;
use super::{RegisteredUrl, WebhookSecret};

/// The `SignedHeaders` list Vipps uses, in signing order.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// The scheme word that starts the `Authorization` value.
pub const AUTHORIZATION_SCHEME: &str = "HMAC-SHA256";

/// Base64 (standard, padded) of SHA-256 of the raw body bytes: the `x-ms-content-sha256` value.
pub fn content_sha256(body: &[u8]) -> String {
    BASE64.encode(Sha256::digest(body))
}

/// The string Vipps signs: `POST\n{pathAndQuery}\n{x-ms-date};{host};{x-ms-content-sha256}`,
/// LF separators, no trailing newline.
pub fn string_to_sign(
    path_and_query: &str,
    x_ms_date: &str,
    host: &str,
    content_sha256: &str,
) -> String {
    ToSign {
        path_and_query,
        x_ms_date,
        host,
        content_sha256,
    }
    .pieces()
    .concat()
}

/// What is signed, in parts: [`string_to_sign`] joins them, and a MAC is fed them one by one,
/// so verifying a delivery never builds the string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToSign<'a> {
    pub path_and_query: &'a str,
    pub x_ms_date: &'a str,
    pub host: &'a str,
    pub content_sha256: &'a str,
}

impl ToSign<'_> {
    /// The string to sign, piece by piece.
    fn pieces(&self) -> [&str; 8] {
        [
            "POST\n",
            self.path_and_query,
            "\n",
            self.x_ms_date,
            ";",
            self.host,
            ";",
            self.content_sha256,
        ]
    }

    /// The MAC of the string to sign, continuing `mac` (already keyed).
    pub fn mac_with(&self, mut mac: HmacSha256) -> [u8; 32] {
        for piece in self.pieces() {
            mac.update(piece.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 of `message` under `key`, as raw bytes: the plain definition the tests check the
/// keyed, piecewise MAC against.
#[cfg(test)]
pub(crate) fn hmac_sha256(key: &[u8], message: &str) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The base64 signature of a string to sign under `secret` (key = the secret's UTF-8 bytes).
pub fn signature(secret: &WebhookSecret, string_to_sign: &str) -> String {
    let mut mac = secret.mac();
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The `Authorization` value carrying `signature`.
pub fn authorization_value(signature: &str) -> String {
    format!("{AUTHORIZATION_SCHEME} SignedHeaders={SIGNED_HEADERS}&Signature={signature}")
}

/// Formats a time as IMF-fixdate (`Tue, 14 Jan 2025 09:30:05 GMT`), the `x-ms-date` format.
pub fn imf_fixdate(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

/// The signature headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHeaders {
    /// `x-ms-date`, IMF-fixdate.
    pub x_ms_date: String,
    /// `x-ms-content-sha256`, base64 SHA-256 of the body.
    pub x_ms_content_sha256: String,
    /// `Authorization` (and its copy `X-Vipps-Authorization`).
    pub authorization: String,
}

impl DeliveryHeaders {
    /// The headers as Vipps sends them: the three signature headers plus the
    /// `X-Vipps-Authorization` copy of `Authorization`.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("x-ms-date", &self.x_ms_date),
            ("x-ms-content-sha256", &self.x_ms_content_sha256),
            ("authorization", &self.authorization),
            ("x-vipps-authorization", &self.authorization),
        ]
    }
}

/// Signs a delivery of `body` to `url` sent at `x_ms_date` (IMF-fixdate, used verbatim).
///
/// A retry is a new call with a new date over the same body.
pub fn sign_delivery(
    secret: &WebhookSecret,
    url: &RegisteredUrl,
    body: &[u8],
    x_ms_date: &str,
) -> DeliveryHeaders {
    let x_ms_content_sha256 = content_sha256(body);
    let to_sign = string_to_sign(
        url.path_and_query(),
        x_ms_date,
        url.host_for_signing(),
        &x_ms_content_sha256,
    );
    DeliveryHeaders {
        x_ms_date: x_ms_date.to_owned(),
        authorization: authorization_value(&signature(secret, &to_sign)),
        x_ms_content_sha256,
    }
}

#[cfg(test)]
mod tests;
