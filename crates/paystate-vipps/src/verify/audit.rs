//! After the fact: re-verifying a stored delivery, and summarizing a rejected one's headers.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paystate_domain::events::{bounded_text, HeaderSummary, SignedHeaders};
use subtle::ConstantTimeEq;

use super::headers::HeaderLookup;
use crate::signature::sign::ToSign;
use crate::signature::{content_sha256, WebhookSecret};

/// How many characters of each header a rejection record keeps.
const SUMMARY_CHARS: usize = 200;

/// Re-verifies a stored delivery (its raw body and the [`SignedHeaders`] recorded when it was
/// accepted) with `secret`, e.g. for an audit of the log. The date window is not applied: it
/// was checked on receipt. Constant-time on the MAC.
pub fn reverify_stored(signed: &SignedHeaders, body: &[u8], secret: &WebhookSecret) -> bool {
    let computed_hash = content_sha256(body);
    if !bool::from(
        computed_hash
            .as_bytes()
            .ct_eq(signed.x_ms_content_sha256.as_bytes()),
    ) {
        return false;
    }
    let Ok(sent) = BASE64.decode(&signed.signature) else {
        return false;
    };
    let to_sign = ToSign {
        path_and_query: &signed.path_and_query,
        x_ms_date: &signed.x_ms_date,
        host: &signed.host,
        content_sha256: &computed_hash,
    };
    bool::from(to_sign.mac_with(secret.mac()).as_slice().ct_eq(&sent))
}

/// The headers of a delivery that help troubleshoot a rejection, each bounded and with control
/// characters blanked. The signature itself is not kept (see [`HeaderSummary`]).
pub fn header_summary(headers: &dyn HeaderLookup) -> HeaderSummary {
    let text = |name: &str| {
        headers
            .header(name)
            .map(|value| bounded_text(&String::from_utf8_lossy(value), SUMMARY_CHARS))
    };
    let authorization_header = if headers.header("authorization").is_some() {
        Some("authorization".to_owned())
    } else if headers.header("x-vipps-authorization").is_some() {
        Some("x-vipps-authorization".to_owned())
    } else {
        None
    };
    HeaderSummary {
        x_ms_date: text("x-ms-date"),
        x_ms_content_sha256: text("x-ms-content-sha256"),
        authorization_header,
        host: text("host"),
        webhook_id: text("webhook-id"),
        content_type: text("content-type"),
        user_agent: text("user-agent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::vectors::QUERY;
    use crate::signature::{sign_delivery, RegisteredUrl};
    use crate::verify::{verify_delivery, DeliveryRequest, DEFAULT_TOLERANCE};
    use paystate_domain::SecretVersion;
    use time::OffsetDateTime;

    fn stored() -> SignedHeaders {
        let secret = WebhookSecret::new(QUERY.secret);
        let url = RegisteredUrl::parse(QUERY.url).unwrap();
        let signed = sign_delivery(&secret, &url, QUERY.body.as_bytes(), QUERY.date);
        let headers = signed.pairs();
        let now = OffsetDateTime::from(httpdate::parse_http_date(QUERY.date).unwrap());
        let version = SecretVersion::new(1).unwrap();
        let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
        verify_delivery(
            &request,
            &url,
            &[(version, &secret)],
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap()
        .signed
    }

    #[test]
    fn a_stored_delivery_re_verifies_with_its_secret_only() {
        let signed = stored();
        assert!(reverify_stored(
            &signed,
            QUERY.body.as_bytes(),
            &WebhookSecret::new(QUERY.secret)
        ));
        assert!(!reverify_stored(
            &signed,
            QUERY.body.as_bytes(),
            &WebhookSecret::new("other")
        ));
        assert!(!reverify_stored(
            &signed,
            b"{}",
            &WebhookSecret::new(QUERY.secret)
        ));
        let mut moved = signed.clone();
        moved.host = "pay.example.no:8443".into();
        assert!(!reverify_stored(
            &moved,
            QUERY.body.as_bytes(),
            &WebhookSecret::new(QUERY.secret)
        ));
        let mut garbled = signed;
        garbled.signature = "%%%".into();
        assert!(!reverify_stored(
            &garbled,
            QUERY.body.as_bytes(),
            &WebhookSecret::new(QUERY.secret)
        ));
    }

    #[test]
    fn the_summary_is_bounded_and_names_the_authorization_header() {
        let long = "h".repeat(500);
        let headers = [
            ("X-Vipps-Authorization", "HMAC-SHA256 ..."),
            ("Host", long.as_str()),
            ("Webhook-Id", "reg-1\n"),
            ("x-ms-date", QUERY.date),
        ];
        let summary = header_summary(&headers);
        assert_eq!(
            summary.authorization_header.as_deref(),
            Some("x-vipps-authorization")
        );
        assert_eq!(summary.host.as_deref().map(str::len), Some(200));
        assert_eq!(summary.webhook_id.as_deref(), Some("reg-1 "));
        assert_eq!(summary.x_ms_date.as_deref(), Some(QUERY.date));
        assert_eq!(summary.user_agent, None);
    }
}
