//! The vectors of VIPPS.md §2, as signing tests. The verification side of the same vectors lives
//! in `verify`'s tests.

use super::*;
use crate::signature::vectors::*;

fn sig_of(authorization: &str) -> &str {
    authorization
        .rsplit_once("&Signature=")
        .map(|(_, sig)| sig)
        .unwrap()
}

#[test]
fn official_vector_signs_exactly() {
    let url = RegisteredUrl::parse(OFFICIAL.url).unwrap();
    let headers = sign_delivery(
        &WebhookSecret::new(OFFICIAL.secret),
        &url,
        OFFICIAL.body.as_bytes(),
        OFFICIAL.date,
    );
    assert_eq!(headers.x_ms_date, OFFICIAL.date);
    assert_eq!(headers.x_ms_content_sha256, OFFICIAL.content_sha256);
    assert_eq!(
        headers.authorization,
        format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={}",
            OFFICIAL.signature
        )
    );
}

#[test]
fn query_vector_signs_exactly() {
    assert_eq!(QUERY.body.len(), 272);
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    assert_eq!(url.host_for_signing(), "pay.example.no");
    assert_eq!(url.path_and_query(), "/hooks/vipps/v1?tenant=acme-42");
    let headers = sign_delivery(
        &WebhookSecret::new(QUERY.secret),
        &url,
        QUERY.body.as_bytes(),
        QUERY.date,
    );
    assert_eq!(headers.x_ms_content_sha256, QUERY.content_sha256);
    assert_eq!(sig_of(&headers.authorization), QUERY.signature);
}

#[test]
fn string_to_sign_has_lf_separators_and_no_trailing_newline() {
    assert_eq!(
        string_to_sign("/p?q=1", "Tue, 14 Jan 2025 09:30:05 GMT", "h.no", "abc="),
        "POST\n/p?q=1\nTue, 14 Jan 2025 09:30:05 GMT;h.no;abc="
    );
}

/// Each one-change variant of the query vector produces the documented wrong signature.
#[test]
fn each_one_change_variant_gives_its_documented_signature() {
    let secret = WebhookSecret::new(QUERY.secret);
    let hash = content_sha256(QUERY.body.as_bytes());
    let check = |path_and_query: &str, date: &str, host: &str, expected: &str| {
        let got = signature(&secret, &string_to_sign(path_and_query, date, host, &hash));
        assert_eq!(
            got, expected,
            "variant pathAndQuery={path_and_query} date={date} host={host}"
        );
        assert_ne!(got, QUERY.signature);
    };
    let path = "/hooks/vipps/v1?tenant=acme-42";
    check(
        "/hooks/vipps/v1",
        QUERY.date,
        "pay.example.no",
        WRONG_PATH_WITHOUT_QUERY,
    );
    check(
        "/hooks/vipps/v1/?tenant=acme-42",
        QUERY.date,
        "pay.example.no",
        WRONG_TRAILING_SLASH,
    );
    check(
        path,
        QUERY.date,
        "pay.example.no:443",
        WRONG_HOST_DEFAULT_PORT,
    );
    check(path, QUERY.date, "127.0.0.1:8080", WRONG_HOST_PROXY_HOP);
    check(
        QUERY.url,
        QUERY.date,
        "pay.example.no",
        WRONG_FULL_URL_AS_PATH,
    );
    check(
        path,
        QUERY_DATE_PLUS_ONE_SECOND,
        "pay.example.no",
        WRONG_DATE_PLUS_ONE_SECOND,
    );
}

#[test]
fn decoding_the_secret_gives_the_documented_wrong_signature() {
    use base64::engine::general_purpose::STANDARD;
    let decoded_key = STANDARD.decode(QUERY.secret).unwrap();
    let to_sign = string_to_sign(
        "/hooks/vipps/v1?tenant=acme-42",
        QUERY.date,
        "pay.example.no",
        QUERY.content_sha256,
    );
    let got = STANDARD.encode(hmac_sha256(&decoded_key, &to_sign));
    assert_eq!(got, WRONG_DECODED_SECRET);
    assert_ne!(got, QUERY.signature);
}

#[test]
fn non_default_port_is_signed_in_the_host() {
    let url = RegisteredUrl::parse(NON_DEFAULT_PORT_URL).unwrap();
    assert_eq!(url.host_for_signing(), "pay.example.no:8443");
    let headers = sign_delivery(
        &WebhookSecret::new(QUERY.secret),
        &url,
        QUERY.body.as_bytes(),
        QUERY.date,
    );
    assert_eq!(sig_of(&headers.authorization), NON_DEFAULT_PORT_SIGNATURE);
}

#[test]
fn default_port_written_out_signs_like_no_port() {
    let explicit =
        RegisteredUrl::parse("https://pay.example.no:443/hooks/vipps/v1?tenant=acme-42").unwrap();
    let headers = sign_delivery(
        &WebhookSecret::new(QUERY.secret),
        &explicit,
        QUERY.body.as_bytes(),
        QUERY.date,
    );
    assert_eq!(sig_of(&headers.authorization), QUERY.signature);
}

#[test]
fn a_retry_re_signed_with_a_new_date_keeps_the_body_hash() {
    let url = RegisteredUrl::parse(QUERY.url).unwrap();
    let secret = WebhookSecret::new(QUERY.secret);
    let first = sign_delivery(&secret, &url, QUERY.body.as_bytes(), QUERY.date);
    let retry = sign_delivery(
        &secret,
        &url,
        QUERY.body.as_bytes(),
        QUERY_DATE_PLUS_ONE_SECOND,
    );
    assert_eq!(first.x_ms_content_sha256, retry.x_ms_content_sha256);
    assert_eq!(sig_of(&retry.authorization), WRONG_DATE_PLUS_ONE_SECOND);
}

#[test]
fn pairs_carry_both_authorization_headers() {
    let url = RegisteredUrl::parse(OFFICIAL.url).unwrap();
    let headers = sign_delivery(
        &WebhookSecret::new(OFFICIAL.secret),
        &url,
        OFFICIAL.body.as_bytes(),
        OFFICIAL.date,
    );
    let pairs = headers.pairs();
    assert_eq!(pairs[0], ("x-ms-date", OFFICIAL.date));
    assert_eq!(pairs[1], ("x-ms-content-sha256", OFFICIAL.content_sha256));
    assert_eq!(pairs[2].1, pairs[3].1);
    assert_eq!(pairs[3].0, "x-vipps-authorization");
}

#[test]
fn imf_fixdate_formats_like_vipps() {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_736_847_005);
    assert_eq!(imf_fixdate(time), QUERY.date);
}

#[test]
fn the_mac_of_the_pieces_is_the_mac_of_the_string() {
    let secret = WebhookSecret::new(QUERY.secret);
    let to_sign = ToSign {
        path_and_query: "/hooks/vipps/v1?tenant=acme-42",
        x_ms_date: QUERY.date,
        host: "pay.example.no",
        content_sha256: QUERY.content_sha256,
    };
    let joined = string_to_sign(
        to_sign.path_and_query,
        to_sign.x_ms_date,
        to_sign.host,
        to_sign.content_sha256,
    );
    assert_eq!(
        to_sign.mac_with(secret.mac()),
        hmac_sha256(secret.hmac_key(), &joined)
    );
    assert_eq!(
        BASE64.encode(to_sign.mac_with(secret.mac())),
        QUERY.signature
    );
    // The keyed state is reused, not consumed: a second message gets a fresh MAC.
    assert_eq!(signature(&secret, &joined), QUERY.signature);
}
