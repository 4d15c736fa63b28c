//! Verification of the VIPPS.md §2 vectors (positive and every negative variant), the
//! rejection codes and diagnoses, and no panic on arbitrary input.

use super::*;
use crate::signature::vectors::*;
use crate::signature::{authorization_value, sign_delivery};
use paystate_domain::events::RejectionDiagnosis;
use proptest::prelude::*;

fn v(n: u32) -> SecretVersion {
    SecretVersion::new(n).unwrap()
}

fn at(date: &str) -> OffsetDateTime {
    OffsetDateTime::from(httpdate::parse_http_date(date).unwrap())
}

/// The headers of the query vector, with `signature` in both authorization headers.
fn query_headers(signature: &str) -> Vec<(String, String)> {
    vec![
        ("X-Ms-Date".into(), QUERY.date.into()),
        ("x-ms-content-sha256".into(), QUERY.content_sha256.into()),
        ("Authorization".into(), authorization_value(signature)),
        (
            "X-Vipps-Authorization".into(),
            authorization_value(signature),
        ),
        ("Host".into(), "pay.example.no".into()),
    ]
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
}

fn remove(headers: &mut Vec<(String, String)>, name: &str) {
    headers.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
}

/// Verifies a query-vector delivery with `headers` and `body` against `registered`, with the
/// vector's secret as version 1, received at the vector's date.
fn check_query(
    headers: &Vec<(String, String)>,
    body: &[u8],
    registered: &str,
) -> Result<Verified, Rejection> {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(registered).unwrap();
    verify_delivery(
        &DeliveryRequest::new(headers, body),
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
}

fn assert_mismatch(result: Result<Verified, Rejection>) -> Rejection {
    let rejection = result.expect_err("must not verify");
    assert_eq!(
        rejection.code(),
        RejectionCode::InvalidSignature,
        "{rejection}"
    );
    assert!(
        matches!(
            rejection.kind(),
            RejectionKind::SignatureMismatch { secrets_tried: 1 }
        ),
        "{rejection}"
    );
    rejection
}

#[test]
fn official_vector_verifies() {
    let secret = WebhookSecret::new(OFFICIAL.secret);
    let url = RegisteredUrl::parse(OFFICIAL.url).unwrap();
    let headers = [
        ("x-ms-date", OFFICIAL.date.to_owned()),
        ("X-MS-CONTENT-SHA256", OFFICIAL.content_sha256.to_owned()),
        ("authorization", authorization_value(OFFICIAL.signature)),
    ];
    let verified = verify_delivery(
        &DeliveryRequest::new(&headers, OFFICIAL.body.as_bytes()),
        &url,
        &[(v(3), &secret)],
        at(OFFICIAL.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    assert_eq!(verified.secret_version, v(3));
    assert!(!verified.older_secret);
    assert_eq!(verified.signed.host, "webhook.site");
    assert_eq!(
        verified.signed.path_and_query,
        "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63"
    );
    assert_eq!(verified.signed.signature, OFFICIAL.signature);
}

#[test]
fn query_vector_verifies_and_records_what_was_signed() {
    let verified = check_query(
        &query_headers(QUERY.signature),
        QUERY.body.as_bytes(),
        QUERY.url,
    )
    .unwrap();
    assert_eq!(verified.secret_version, v(1));
    assert_eq!(verified.date_skew_seconds, 0);
    assert_eq!(
        verified.authorization_header,
        AuthorizationHeader::Authorization
    );
    assert_eq!(
        verified.signed,
        SignedHeaders {
            x_ms_date: QUERY.date.into(),
            x_ms_content_sha256: QUERY.content_sha256.into(),
            host: "pay.example.no".into(),
            path_and_query: "/hooks/vipps/v1?tenant=acme-42".into(),
            authorization_header: AuthorizationHeader::Authorization,
            signature: QUERY.signature.into(),
        }
    );
    let summary = verified.summary(None);
    assert_eq!(summary.secret_version, v(1));
    assert!(!summary.older_secret);
}

#[test]
fn a_signature_over_the_path_without_query_does_not_verify() {
    let rejection = assert_mismatch(check_query(
        &query_headers(WRONG_PATH_WITHOUT_QUERY),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
    assert_eq!(rejection.diagnosis(), None);
}

#[test]
fn a_signature_with_a_trailing_slash_does_not_verify() {
    assert_mismatch(check_query(
        &query_headers(WRONG_TRAILING_SLASH),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
}

#[test]
fn a_signature_with_the_default_port_in_the_host_does_not_verify() {
    assert_mismatch(check_query(
        &query_headers(WRONG_HOST_DEFAULT_PORT),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
}

#[test]
fn a_signature_with_a_proxy_hop_host_does_not_verify() {
    assert_mismatch(check_query(
        &query_headers(WRONG_HOST_PROXY_HOP),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
}

#[test]
fn a_signature_over_the_full_url_does_not_verify() {
    assert_mismatch(check_query(
        &query_headers(WRONG_FULL_URL_AS_PATH),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
}

#[test]
fn a_signature_with_the_decoded_secret_does_not_verify_and_is_diagnosed() {
    let rejection = assert_mismatch(check_query(
        &query_headers(WRONG_DECODED_SECRET),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::DecodedSecretKey {
            secret_version: v(1)
        })
    );
    assert_eq!(
        rejection.domain_diagnosis(),
        RejectionDiagnosis::DecodedSecretKey {
            secret_version: v(1)
        }
    );
    assert!(
        rejection.message().contains("base64-decoded"),
        "{}",
        rejection.message()
    );
}

#[test]
fn a_signature_over_another_date_does_not_verify() {
    assert_mismatch(check_query(
        &query_headers(WRONG_DATE_PLUS_ONE_SECOND),
        QUERY.body.as_bytes(),
        QUERY.url,
    ));
    let mut headers = query_headers(QUERY.signature);
    set(&mut headers, "x-ms-date", QUERY_DATE_PLUS_ONE_SECOND);
    assert_mismatch(check_query(&headers, QUERY.body.as_bytes(), QUERY.url));
}

#[test]
fn the_right_signature_against_a_differently_registered_url_does_not_verify() {
    for registered in [
        "https://pay.example.no/hooks/vipps/v1",
        "https://pay.example.no/hooks/vipps/v1/?tenant=acme-42",
        "https://pay.example.no:8443/hooks/vipps/v1?tenant=acme-42",
        "http://127.0.0.1:8080/hooks/vipps/v1?tenant=acme-42",
    ] {
        assert_mismatch(check_query(
            &query_headers(QUERY.signature),
            QUERY.body.as_bytes(),
            registered,
        ));
    }
}

#[test]
fn the_default_port_written_out_in_the_registered_url_still_verifies() {
    let registered = "https://pay.example.no:443/hooks/vipps/v1?tenant=acme-42";
    assert!(check_query(
        &query_headers(QUERY.signature),
        QUERY.body.as_bytes(),
        registered
    )
    .is_ok());
}

#[test]
fn the_non_default_port_vector_verifies_only_with_its_port() {
    let headers = query_headers(NON_DEFAULT_PORT_SIGNATURE);
    assert!(check_query(&headers, QUERY.body.as_bytes(), NON_DEFAULT_PORT_URL).is_ok());
    assert_mismatch(check_query(
        &headers,
        QUERY.body.as_bytes(),
        "https://pay.example.no/hooks/vipps/v1",
    ));
}

#[test]
fn a_proxy_rewriting_host_is_diagnosed() {
    // The sender signed for 127.0.0.1:8080 (the host this request arrived with), but the
    // receiver's registered URL says pay.example.no.
    let mut headers = query_headers(WRONG_HOST_PROXY_HOP);
    set(&mut headers, "host", "127.0.0.1:8080");
    let rejection = assert_mismatch(check_query(&headers, QUERY.body.as_bytes(), QUERY.url));
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::HostRewritten {
            request_host: "127.0.0.1:8080".into(),
            secret_version: v(1)
        })
    );
    assert_eq!(
        rejection.domain_diagnosis(),
        RejectionDiagnosis::HostRewritten {
            request_host: "127.0.0.1:8080".into()
        }
    );
}

#[test]
fn an_explicit_arrival_host_is_used_when_there_is_no_host_header() {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let mut headers = query_headers(WRONG_HOST_PROXY_HOP);
    remove(&mut headers, "host");
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert_eq!(rejection.diagnosis(), None);
    let request = request.with_request_host("127.0.0.1:8080");
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::HostRewritten {
            request_host: "127.0.0.1:8080".into(),
            secret_version: v(1)
        })
    );
}

#[test]
fn a_proxy_rewriting_the_path_is_diagnosed_when_the_target_is_known() {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(WRONG_PATH_WITHOUT_QUERY);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes())
        .with_request_target("/hooks/vipps/v1");
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::PathRewritten {
            request_target: "/hooks/vipps/v1".into(),
            secret_version: v(1)
        })
    );
}

#[test]
fn a_body_changed_in_transit_is_a_content_hash_mismatch_signed_by_the_sender() {
    let body = QUERY.body.replace("49900", "49901");
    let rejection =
        check_query(&query_headers(QUERY.signature), body.as_bytes(), QUERY.url).unwrap_err();
    assert_eq!(rejection.code(), RejectionCode::ContentHashMismatch);
    assert_eq!(rejection.code().as_str(), "content_hash_mismatch");
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::BodyChanged {
            signed_by: Some(v(1))
        })
    );
    assert_eq!(
        rejection.domain_diagnosis(),
        RejectionDiagnosis::BodyChanged
    );
    let RejectionKind::ContentHashMismatch { computed } = rejection.kind() else {
        panic!("{rejection}")
    };
    assert_eq!(computed, &content_sha256(body.as_bytes()));
}

#[test]
fn a_forged_content_hash_is_a_mismatch_signed_by_no_one() {
    let mut headers = query_headers(QUERY.signature);
    set(
        &mut headers,
        "x-ms-content-sha256",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let rejection = check_query(&headers, QUERY.body.as_bytes(), QUERY.url).unwrap_err();
    assert_eq!(rejection.code(), RejectionCode::ContentHashMismatch);
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::BodyChanged { signed_by: None })
    );
    // Not "the body changed in transit": nothing authentic was sent.
    assert_eq!(rejection.domain_diagnosis(), RejectionDiagnosis::Unknown);
    let message = rejection.message();
    assert_eq!(
        message.matches("x-ms-content-sha256").count(),
        1,
        "{message}"
    );
    assert!(
        message.contains("no accepted secret signs the headers"),
        "{message}"
    );
}

#[test]
fn the_date_window_is_inclusive_and_symmetric() {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let verify_after = |offset: time::Duration| {
        verify_delivery(
            &request,
            &url,
            &[(v(1), &secret)],
            at(QUERY.date) + offset,
            DEFAULT_TOLERANCE,
        )
    };
    let verify_at = |seconds: i64| verify_after(time::Duration::seconds(seconds));
    assert_eq!(verify_at(300).unwrap().date_skew_seconds, -300);
    assert_eq!(verify_at(-300).unwrap().date_skew_seconds, 300);

    let late = verify_at(301).unwrap_err();
    assert_eq!(late.code(), RejectionCode::StaleDate);
    assert_eq!(
        late.kind(),
        &RejectionKind::StaleDate {
            skew_seconds: -301,
            tolerance_seconds: 300
        }
    );
    assert_eq!(
        late.diagnosis(),
        Some(&Diagnosis::ClockSkew {
            skew_seconds: -301,
            signed_by: Some(v(1))
        })
    );
    assert_eq!(
        late.domain_diagnosis(),
        RejectionDiagnosis::ClockSkew { skew_seconds: -301 }
    );

    // The date has whole seconds, the clock does not: half a second past the window is out,
    // and told as 301 s, not as the 300 s that would read as inside the window.
    let just_late = verify_after(time::Duration::milliseconds(300_500)).unwrap_err();
    assert_eq!(
        just_late.kind(),
        &RejectionKind::StaleDate {
            skew_seconds: -301,
            tolerance_seconds: 300
        }
    );
    let message = just_late.message();
    assert_eq!(message.matches("-301 s").count(), 1, "{message}");
    assert!(message.contains("clock skew or a replay"), "{message}");
    // Accepted, half a second late: recorded as 0 s, not -1.
    let on_time = verify_after(time::Duration::milliseconds(500)).unwrap();
    assert_eq!(on_time.date_skew_seconds, 0);

    let early = verify_at(-7200).unwrap_err();
    assert_eq!(
        early.kind(),
        &RejectionKind::StaleDate {
            skew_seconds: 7200,
            tolerance_seconds: 300
        }
    );
}

#[test]
fn a_stale_forgery_says_the_signature_is_not_valid_either() {
    let secret = WebhookSecret::new("another secret");
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date) + time::Duration::hours(1),
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::ClockSkew {
            skew_seconds: -3600,
            signed_by: None
        })
    );
    let message = rejection.message();
    assert_eq!(message.matches("-3600 s").count(), 1, "{message}");
    assert!(
        message.contains("the signature is not valid either"),
        "{message}"
    );
}

#[test]
fn a_configurable_tolerance_is_honoured() {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let now = at(QUERY.date) + time::Duration::seconds(10);
    assert!(verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        now,
        Duration::from_secs(10)
    )
    .is_ok());
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        now,
        Duration::from_secs(9),
    )
    .unwrap_err();
    assert_eq!(rejection.code(), RejectionCode::StaleDate);
}

#[test]
fn missing_headers_are_missing_signature() {
    for name in ["authorization", "x-ms-date", "x-ms-content-sha256"] {
        let mut headers = query_headers(QUERY.signature);
        remove(&mut headers, name);
        if name == "authorization" {
            remove(&mut headers, "x-vipps-authorization");
        }
        let rejection = check_query(&headers, QUERY.body.as_bytes(), QUERY.url).unwrap_err();
        assert_eq!(
            rejection.code(),
            RejectionCode::MissingSignature,
            "without {name}"
        );
        assert_eq!(rejection.code().as_str(), "missing_signature");
    }
    let rejection = check_query(&vec![], QUERY.body.as_bytes(), QUERY.url).unwrap_err();
    assert_eq!(rejection.kind(), &RejectionKind::MissingAuthorization);
    assert_eq!(
        rejection.domain_diagnosis(),
        RejectionDiagnosis::NoSignature
    );
}

#[test]
fn either_authorization_header_is_enough() {
    let mut only_copy = query_headers(QUERY.signature);
    remove(&mut only_copy, "authorization");
    let verified = check_query(&only_copy, QUERY.body.as_bytes(), QUERY.url).unwrap();
    assert_eq!(
        verified.authorization_header,
        AuthorizationHeader::XVippsAuthorization
    );

    // A proxy that puts its own credentials in Authorization does not hide the copy.
    let mut replaced = query_headers(QUERY.signature);
    set(&mut replaced, "authorization", "Basic dXNlcjpwYXNz");
    let verified = check_query(&replaced, QUERY.body.as_bytes(), QUERY.url).unwrap();
    assert_eq!(
        verified.authorization_header,
        AuthorizationHeader::XVippsAuthorization
    );

    // Two different well-formed values: the one that matches wins.
    let mut differing = query_headers(QUERY.signature);
    set(
        &mut differing,
        "authorization",
        &authorization_value(WRONG_TRAILING_SLASH),
    );
    let verified = check_query(&differing, QUERY.body.as_bytes(), QUERY.url).unwrap();
    assert_eq!(
        verified.authorization_header,
        AuthorizationHeader::XVippsAuthorization
    );
}

#[test]
fn malformed_values_are_invalid_signature() {
    let mut headers = query_headers(QUERY.signature);
    remove(&mut headers, "x-vipps-authorization");
    set(
        &mut headers,
        "authorization",
        "HMAC-SHA256 SignedHeaders=host&Signature=abc",
    );
    let rejection = check_query(&headers, QUERY.body.as_bytes(), QUERY.url).unwrap_err();
    assert_eq!(rejection.code(), RejectionCode::InvalidSignature);
    assert_eq!(
        rejection.kind(),
        &RejectionKind::MalformedAuthorization {
            header: AuthorizationHeader::Authorization,
            reason: MalformedAuthorization::UnexpectedSignedHeaders
        }
    );

    let mut headers = query_headers(QUERY.signature);
    set(&mut headers, "x-ms-date", "yesterday");
    let rejection = check_query(&headers, QUERY.body.as_bytes(), QUERY.url).unwrap_err();
    assert_eq!(rejection.kind(), &RejectionKind::MalformedDate);
    assert_eq!(rejection.code(), RejectionCode::InvalidSignature);
}

#[test]
fn candidates_are_tried_in_order_and_an_older_match_is_flagged() {
    let current = WebhookSecret::new("the new secret");
    let older = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let verified = verify_delivery(
        &request,
        &url,
        &[(v(2), &current), (v(1), &older)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap();
    assert_eq!(verified.secret_version, v(1));
    assert!(verified.older_secret);
    assert!(verified.summary(None).older_secret);
}

#[test]
fn a_retired_secret_is_never_accepted_but_is_diagnosed() {
    let current = WebhookSecret::new("the new secret");
    let retired = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let verifier = Verifier {
        url: &url,
        accepted: &[(v(2), &current)],
        retired: &[(v(1), &retired)],
        tolerance: DEFAULT_TOLERANCE,
    };
    let rejection = verifier.verify(&request, at(QUERY.date)).unwrap_err();
    assert_eq!(rejection.code(), RejectionCode::InvalidSignature);
    assert_eq!(
        rejection.diagnosis(),
        Some(&Diagnosis::SecretOutOfSync {
            secret_version: v(1)
        })
    );
    assert_eq!(
        rejection.domain_diagnosis(),
        RejectionDiagnosis::OldSecretVersion {
            secret_version: v(1)
        }
    );
}

#[test]
fn no_accepted_secret_means_no_signature_can_match() {
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(QUERY.signature);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let rejection =
        verify_delivery(&request, &url, &[], at(QUERY.date), DEFAULT_TOLERANCE).unwrap_err();
    assert_eq!(
        rejection.kind(),
        &RejectionKind::SignatureMismatch { secrets_tried: 0 }
    );
}

#[test]
fn an_http_header_map_can_be_verified_directly() {
    let mut map = http::HeaderMap::new();
    for (name, value) in query_headers(QUERY.signature) {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let request = DeliveryRequest::new(&map, QUERY.body.as_bytes());
    assert!(verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE
    )
    .is_ok());
}

#[test]
fn messages_never_contain_the_secret() {
    let secret = WebhookSecret::new(QUERY.secret);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let headers = query_headers(WRONG_DECODED_SECRET);
    let request = DeliveryRequest::new(&headers, QUERY.body.as_bytes());
    let rejection = verify_delivery(
        &request,
        &url,
        &[(v(1), &secret)],
        at(QUERY.date),
        DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert!(!rejection.message().contains(QUERY.secret));
    assert!(!format!("{rejection:?}").contains(QUERY.secret));
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        Just(QUERY.date.as_bytes().to_vec()),
        Just(QUERY.content_sha256.as_bytes().to_vec()),
        Just(authorization_value(QUERY.signature).into_bytes()),
        "HMAC-SHA256 [ -~]{0,100}".prop_map(String::into_bytes),
        "[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9:]{8} GMT".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn verification_never_panics_on_arbitrary_input(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        values in proptest::collection::vec(proptest::option::of(header_value()), 6),
        target in proptest::option::of("[ -~]{0,40}"),
        offset in any::<i32>(),
        tolerance in any::<u64>(),
    ) {
        let names = ["authorization", "x-vipps-authorization", "x-ms-date", "x-ms-content-sha256", "host", "X-MS-DATE"];
        let headers: Vec<(&str, Vec<u8>)> = names.iter().zip(values).filter_map(|(name, value)| value.map(|v| (*name, v))).collect();
        let secret = WebhookSecret::new(QUERY.secret);
        let odd = WebhookSecret::new("not base64 at all ☃");
        let url = RegisteredUrl::parse(QUERY.url).unwrap();
        let mut request = DeliveryRequest::new(&headers, &body);
        if let Some(target) = target.as_deref() {
            request = request.with_request_target(target);
        }
        let verifier = Verifier {
            url: &url,
            accepted: &[(v(2), &odd), (v(1), &secret)],
            retired: &[(v(3), &secret)],
            tolerance: Duration::from_secs(tolerance),
        };
        let now = at(QUERY.date) + time::Duration::seconds(i64::from(offset));
        if let Err(rejection) = verifier.verify(&request, now) {
            prop_assert!(!rejection.message().is_empty());
            let _ = rejection.domain_diagnosis();
        }
    }

    #[test]
    fn whatever_is_signed_verifies_and_any_changed_byte_does_not(
        secret in "[ -~]{1,100}",
        body in proptest::collection::vec(any::<u8>(), 0..400),
        path in "(/[a-zA-Z0-9._~-]{0,12}){1,4}(\\?[a-z0-9=&-]{0,20})?",
        port in proptest::option::of(1u16..),
        flip in any::<prop::sample::Index>(),
    ) {
        let secret = WebhookSecret::new(secret);
        let url = match port {
            Some(port) => format!("https://pay.example.no:{port}{path}"),
            None => format!("https://pay.example.no{path}"),
        };
        let url = RegisteredUrl::parse(&url).unwrap();
        let signed = sign_delivery(&secret, &url, &body, QUERY.date);
        let headers = signed.pairs();
        let candidates = [(v(1), &secret)];
        let verified = verify_delivery(&DeliveryRequest::new(&headers, &body), &url, &candidates, at(QUERY.date), DEFAULT_TOLERANCE);
        prop_assert_eq!(verified.map(|ok| ok.secret_version), Ok(v(1)));

        if !body.is_empty() {
            let mut changed = body.clone();
            let index = flip.index(changed.len());
            changed[index] ^= 0x01;
            let rejection = verify_delivery(&DeliveryRequest::new(&headers, &changed), &url, &candidates, at(QUERY.date), DEFAULT_TOLERANCE).unwrap_err();
            prop_assert_eq!(rejection.code(), RejectionCode::ContentHashMismatch);
        }
    }
}
