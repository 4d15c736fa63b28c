//! Feeds arbitrary signature headers (`x-ms-date`, `x-ms-content-sha256`, `Authorization`,
//! `X-Vipps-Authorization`, `Host`), request target and body to the webhook verifier, with two
//! accepted secrets and one retired secret. Each header is either absent, arbitrary bytes, or
//! built right (a date near the receive time, the body's hash, a signature by a chosen secret
//! over a chosen host) and then possibly damaged, so the fuzzer reaches acceptance and every
//! diagnosis as well as every refusal.
//!
//! Checks: nothing panics; a delivery is accepted only if its content hash is the body's, its
//! date is within the tolerance, and re-signing it with `sign_delivery` under the accepted
//! secret and the registered URL gives exactly the signature it carried, never the retired one.
#![no_main]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paystate_domain::SecretVersion;
use paystate_vipps::signature::{
    content_sha256, imf_fixdate, sign_delivery, RegisteredUrl, WebhookSecret,
};
use paystate_vipps::verify::{AuthorizationHeader, Verified, Verifier};
use paystate_vipps::DeliveryRequest;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

const REGISTERED_URL: &str = "https://pay.example.no/webhooks/vipps/fuzz-shop?tenant=acme";
const CURRENT: &str = "current-secret-4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMh";
const OLDER: &str = "b2xkZXItc2VjcmV0LWJhc2U2NC1lbmNvZGVkLXRleHQ=";
const RETIRED: &str = "retired-secret-no-longer-accepted";
/// The receive time: Tue, 14 Jan 2025 09:30:07 GMT.
const NOW_UNIX: i64 = 1_736_847_007;
const TOLERANCE: Duration = Duration::from_secs(300);

#[derive(Arbitrary, Debug)]
enum DateHeader<'a> {
    Absent,
    /// IMF-fixdate this many seconds from the receive time.
    Near(i16),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum HashHeader<'a> {
    Absent,
    OfBody,
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum SignedWith<'a> {
    Current,
    Older,
    Retired,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum SignedHost<'a> {
    Registered,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum AuthorizationValue<'a> {
    Absent,
    /// `sign_delivery` over the date and hash headers sent, then one byte optionally changed.
    Signed {
        secret: SignedWith<'a>,
        host: SignedHost<'a>,
        damage: Option<(u8, u8)>,
    },
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
struct Delivery<'a> {
    date: DateHeader<'a>,
    content_hash: HashHeader<'a>,
    authorization: AuthorizationValue<'a>,
    vipps_authorization: AuthorizationValue<'a>,
    host: Option<&'a [u8]>,
    request_target: Option<&'a str>,
    body: &'a [u8],
}

fuzz_target!(|delivery: Delivery<'_>| {
    let url = RegisteredUrl::parse(REGISTERED_URL).expect("registered URL");
    let current = WebhookSecret::new(CURRENT);
    let older = WebhookSecret::new(OLDER);
    let retired = WebhookSecret::new(RETIRED);
    let version = |n| SecretVersion::new(n).expect("secret version");
    let accepted = [(version(3), &current), (version(2), &older)];
    let retired_versions = [(version(1), &retired)];
    let now = OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("receive time");

    let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
    let date = match delivery.date {
        DateHeader::Absent => None,
        DateHeader::Near(seconds) => {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX.unsigned_abs());
            let at = if seconds >= 0 {
                at + Duration::from_secs(seconds.unsigned_abs().into())
            } else {
                at - Duration::from_secs(seconds.unsigned_abs().into())
            };
            Some(imf_fixdate(at).into_bytes())
        }
        DateHeader::Raw(raw) => Some(raw.to_vec()),
    };
    let content_hash = match delivery.content_hash {
        HashHeader::Absent => None,
        HashHeader::OfBody => Some(content_sha256(delivery.body).into_bytes()),
        HashHeader::Raw(raw) => Some(raw.to_vec()),
    };
    let sign = |value: AuthorizationValue<'_>| -> Option<Vec<u8>> {
        match value {
            AuthorizationValue::Absent => None,
            AuthorizationValue::Raw(raw) => Some(raw.to_vec()),
            AuthorizationValue::Signed {
                secret,
                host,
                damage,
            } => {
                let secret = match secret {
                    SignedWith::Current => current.clone(),
                    SignedWith::Older => older.clone(),
                    SignedWith::Retired => retired.clone(),
                    SignedWith::Other(text) => WebhookSecret::new(text),
                };
                let signing_url = match host {
                    SignedHost::Registered => url.clone(),
                    SignedHost::Other(host) => {
                        RegisteredUrl::parse(&format!("https://{host}{}", url.path_and_query()))
                            .ok()?
                    }
                };
                let date = String::from_utf8_lossy(date.as_deref().unwrap_or_default());
                let mut value = sign_delivery(&secret, &signing_url, delivery.body, date.trim())
                    .authorization
                    .into_bytes();
                if let Some((at, xor)) = damage {
                    let at = usize::from(at) % value.len();
                    value[at] ^= xor;
                }
                Some(value)
            }
        }
    };
    let authorization = sign(delivery.authorization);
    let vipps_authorization = sign(delivery.vipps_authorization);
    for (name, value) in [
        ("x-ms-date", &date),
        ("x-ms-content-sha256", &content_hash),
        ("authorization", &authorization),
        ("x-vipps-authorization", &vipps_authorization),
        ("host", &delivery.host.map(<[u8]>::to_vec)),
    ] {
        if let Some(value) = value {
            headers.push((name, value.clone()));
        }
    }

    let mut request = DeliveryRequest::new(&headers, delivery.body);
    if let Some(target) = delivery.request_target {
        request = request.with_request_target(target);
    }
    let verifier = Verifier {
        url: &url,
        accepted: &accepted,
        retired: &retired_versions,
        tolerance: TOLERANCE,
    };
    match verifier.verify(&request, now) {
        Ok(verified) => {
            let secret = accepted
                .iter()
                .find(|(version, _)| *version == verified.secret_version)
                .map(|(_, secret)| *secret)
                .expect("accepted with an accepted secret");
            let carried = match verified.authorization_header {
                AuthorizationHeader::Authorization => authorization.as_deref(),
                AuthorizationHeader::XVippsAuthorization => vipps_authorization.as_deref(),
            };
            check_authentic(
                &verified,
                secret,
                &url,
                delivery.body,
                text(&date),
                text(&content_hash),
                carried.expect("accepted by a header that was sent"),
                now,
            );
            assert_eq!(verified.older_secret, verified.secret_version != version(3));
        }
        Err(rejection) => {
            assert!(!rejection.message().is_empty());
            let _ = rejection.domain_diagnosis();
        }
    }
});

/// A header's value as the verifier reads it: UTF-8, trimmed.
fn text(value: &Option<Vec<u8>>) -> &str {
    let value = value
        .as_deref()
        .expect("an accepted delivery has the header");
    std::str::from_utf8(value)
        .expect("an accepted header is text")
        .trim()
}

#[allow(clippy::too_many_arguments)]
fn check_authentic(
    verified: &Verified,
    secret: &WebhookSecret,
    url: &RegisteredUrl,
    body: &[u8],
    date: &str,
    content_hash: &str,
    carried: &[u8],
    now: OffsetDateTime,
) {
    assert_eq!(
        content_hash,
        content_sha256(body),
        "accepted a wrong content hash"
    );
    let sent_at = httpdate::parse_http_date(date).expect("accepted an unreadable date");
    let skew = OffsetDateTime::from(sent_at) - now;
    assert!(
        skew.unsigned_abs() <= TOLERANCE,
        "accepted a date {skew} away"
    );

    let resigned = sign_delivery(secret, url, body, date).authorization;
    let expected = signature_bytes(&resigned).expect("own signature parses");
    let presented = signature_bytes(&String::from_utf8_lossy(carried))
        .expect("accepted an authorization value without a signature");
    assert_eq!(
        presented, expected,
        "accepted a signature that re-signing does not give"
    );
    assert_eq!(
        BASE64.decode(&verified.signed.signature).ok(),
        Some(expected)
    );
    assert_eq!(verified.signed.host, url.host_for_signing());
    assert_eq!(verified.signed.path_and_query, url.path_and_query());
}

/// The decoded `Signature=` parameter of an `Authorization` value (the last one, as the
/// verifier reads it).
fn signature_bytes(value: &str) -> Option<Vec<u8>> {
    value
        .trim()
        .split_once(' ')?
        .1
        .split('&')
        .filter_map(|parameter| parameter.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("signature"))
        .last()
        .and_then(|(_, signature)| BASE64.decode(signature.trim()).ok())
}
