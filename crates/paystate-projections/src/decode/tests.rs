//! The scanner reads receipts and facts exactly as serde_json does: whatever it accepts,
//! serde_json accepts with the same values, over canonical payloads and many thousands of
//! corrupted ones; and it does read the canonical ones (else a rebuild would be slow, not
//! wrong).

use super::fact::{scan_fact, FactFields};
use super::receipt::{scan_receipt, ReceiptFields};
use paystate_domain::events::{
    AuthorizationHeader, DomainEvent, FactSource, IngestAnomaly, PaymentEventRecorded,
    SignedHeaders, VerificationSummary, WebhookReceived,
};
use paystate_domain::{
    Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference, RegistrationId,
    SecretVersion,
};
use time::OffsetDateTime;

fn receipt(webhook_id: Option<&str>, registration: Option<&str>) -> Vec<u8> {
    DomainEvent::from(WebhookReceived {
        provider_id: ProviderId::parse("vipps-test").unwrap(),
        webhook_id: webhook_id.map(str::to_owned),
        body_base64: "eyJtc24iOiIxMjM0NTYiLCJyZWZlcmVuY2UiOiJvcmRlci0wMDAxIn0=".repeat(8),
        signed: SignedHeaders {
            x_ms_date: "Tue, 14 Jan 2025 09:30:02 GMT".to_owned(),
            x_ms_content_sha256: "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned(),
            host: "pay.example.no".to_owned(),
            path_and_query: "/webhooks/vipps/vipps-test".to_owned(),
            authorization_header: AuthorizationHeader::XVippsAuthorization,
            signature: "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=".to_owned(),
        },
        received_at: OffsetDateTime::from_unix_timestamp_nanos(1_736_847_005_249_182_066).unwrap(),
        verification: VerificationSummary {
            secret_version: SecretVersion::FIRST,
            registration_id: registration.map(|id| RegistrationId::parse(id).unwrap()),
            date_skew_seconds: -3,
            older_secret: true,
        },
    })
    .to_payload()
}

fn fact(
    idempotency_key: Option<&str>,
    source: FactSource,
    anomaly: Option<IngestAnomaly>,
) -> Vec<u8> {
    DomainEvent::from(PaymentEventRecorded {
        provider_id: ProviderId::parse("vipps-test").unwrap(),
        msn: Msn::parse("123456").unwrap(),
        reference: Reference::parse("order-0001").unwrap(),
        psp_reference: PspReference::parse("order-0001-captured").unwrap(),
        name: PaymentEventName::parse("CAPTURED"),
        amount: Amount::from_minor_units(13_600),
        currency: Currency::parse("NOK").unwrap(),
        timestamp: OffsetDateTime::from_unix_timestamp(1_736_847_001).unwrap(),
        idempotency_key: idempotency_key.map(str::to_owned),
        success: false,
        source,
        anomaly,
    })
    .to_payload()
}

fn receipts() -> Vec<Vec<u8>> {
    vec![
        receipt(Some("6f1d7c3e-2b1a-4c55-9e0f-1a2b3c4d5e6f"), None),
        receipt(None, Some("reg-1")),
    ]
}

fn facts() -> Vec<Vec<u8>> {
    vec![
        fact(Some("order-0001-captured-key"), FactSource::Webhook, None),
        fact(None, FactSource::Poll, None),
    ]
}

/// Bytes that break JSON in interesting ways when put anywhere: structure, whitespace,
/// escapes, digits and number parts, literal starts, control characters and bytes that are
/// not UTF-8 on their own.
const NOISE: &[u8] = b"\"\\{}[],: \t0019-+.eEntfa\x01\x1f\x7f\xc3\xa9\xff";

/// Every payload one byte away from `payload`: each byte deleted, replaced by each
/// [`NOISE`] byte, and each [`NOISE`] byte inserted everywhere.
fn one_byte_away(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in 0..=payload.len() {
        if at < payload.len() {
            let mut deleted = payload.to_vec();
            deleted.remove(at);
            out.push(deleted);
        }
        for &noise in NOISE {
            if at < payload.len() {
                let mut replaced = payload.to_vec();
                replaced[at] = noise;
                out.push(replaced);
            }
            let mut inserted = payload.to_vec();
            inserted.insert(at, noise);
            out.push(inserted);
        }
    }
    out
}

/// Replaces the first `from` in `payload` by `to`.
fn edit(payload: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(payload.to_vec()).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

/// Payloads with the same members in another form: another order, whitespace, escapes,
/// repeated, missing or extra members, other types and forms of values.
fn reshaped(payload: &[u8], edits: &[(&str, &str)]) -> Vec<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
    let members = value.as_object().unwrap();
    let mut out = vec![
        serde_json::to_vec_pretty(&value).unwrap(),
        [payload, b" "].concat(),
        [payload, b"x"].concat(),
        [b" ", payload].concat(),
        serde_json::to_vec(&members.values().collect::<Vec<_>>()).unwrap(),
        edit(
            payload,
            "{",
            r#"{"extra":{"a":[1,-2,0.5,1e3,{"b":null}],"c":"\u00e9"},"#,
        ),
        edit(payload, "{", r#"{"extra":"é\u0001","#),
        edit(payload, "{", r#"{"extra":01,"#),
        edit(payload, "{", r#"{"\u0065xtra":1,"#),
        edit(payload, "{", &format!("{{{},", nested(20))),
        edit(payload, "{", &format!("{{{},", nested(3))),
    ];
    for (key, member) in members {
        let mut without = members.clone();
        without.remove(key);
        out.push(serde_json::to_vec(&without).unwrap());
        let again = format!("{},", serde_json::json!({ key: member }));
        let again = again.trim_start_matches('{').replacen("},", ",", 1);
        out.push(edit(payload, "{", &format!("{{{again}")));
        let renamed = edit(payload, &format!("\"{key}\""), &format!("\"{key}_\""));
        out.push(renamed);
        let escaped = edit(
            payload,
            &format!("\"{key}\""),
            &format!("\"\\u{:04x}{}\"", u32::from(key.as_bytes()[0]), &key[1..]),
        );
        out.push(escaped);
        for other in [
            "null",
            "true",
            "0",
            "-0",
            "1.0",
            "1e3",
            "18446744073709551616",
            "\"\"",
            "[]",
            "{}",
            "\"x\"",
        ] {
            let mut changed = members.clone();
            changed.insert(key.clone(), serde_json::from_str(other).unwrap());
            out.push(serde_json::to_vec(&changed).unwrap());
        }
    }
    for (from, to) in edits {
        out.push(edit(payload, from, to));
    }
    out
}

fn nested(depth: usize) -> String {
    format!("\"deep\":{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Checks the scanner against serde_json for one receipt; whether the scanner read it.
fn check_receipt(payload: &[u8]) -> bool {
    let by_serde = serde_json::from_slice::<ReceiptFields<'_>>(payload);
    let Some(scanned) = scan_receipt(payload) else {
        return false;
    };
    let by_serde = by_serde.unwrap_or_else(|error| {
        panic!(
            "the scanner read a receipt serde_json rejects ({error}): {}",
            String::from_utf8_lossy(payload)
        )
    });
    assert_eq!(
        (&scanned.provider_id, scanned.received_at),
        (&by_serde.provider_id, by_serde.received_at),
        "{}",
        String::from_utf8_lossy(payload)
    );
    true
}

/// Checks the scanner against serde_json for one fact; whether the scanner read it.
fn check_fact(payload: &[u8]) -> bool {
    let by_serde = serde_json::from_slice::<FactFields<'_>>(payload);
    let Some(scanned) = scan_fact(payload) else {
        return false;
    };
    let by_serde = by_serde.unwrap_or_else(|error| {
        panic!(
            "the scanner read a fact serde_json rejects ({error}): {}",
            String::from_utf8_lossy(payload)
        )
    });
    assert_eq!(scanned, by_serde, "{}", String::from_utf8_lossy(payload));
    true
}

#[test]
fn the_scanner_reads_the_receipts_and_facts_this_code_writes() {
    for payload in receipts() {
        assert!(
            check_receipt(&payload),
            "{}",
            String::from_utf8_lossy(&payload)
        );
    }
    for payload in facts() {
        assert!(
            check_fact(&payload),
            "{}",
            String::from_utf8_lossy(&payload)
        );
    }
    // A fact with an anomaly is left to serde_json, which reads it.
    let anomalous = fact(
        None,
        FactSource::Webhook,
        Some(IngestAnomaly::UnknownEventName {
            name: "SETTLED".into(),
        }),
    );
    assert!(!check_fact(&anomalous));
    assert!(serde_json::from_slice::<FactFields<'_>>(&anomalous).is_ok());
}

#[test]
fn the_scanner_accepts_no_receipt_serde_json_rejects_and_reads_the_same_values() {
    let mut scanned = 0;
    let mut total = 0;
    for payload in receipts() {
        let edits = [
            ("\"vipps-test\"", "\"vipps-t\\u0065st\""),
            ("\"vipps-test\"", "\"vipps\u{e9}\""),
            ("\"vipps-test\"", &format!("\"{}\"", "p".repeat(80))),
            ("Z\"", "+01:00\""),
            ("Z\"", "z\""),
            ("T09", "t09"),
            (".249182066", ""),
            ("2025", "1970"),
            ("-14", "-31"),
            ("\"verification\":{", "\"verification\":[{"),
        ];
        let shaped = reshaped(&payload, &edits);
        for candidate in one_byte_away(&payload).iter().chain(&shaped) {
            total += 1;
            scanned += usize::from(check_receipt(candidate));
        }
    }
    // Most single-byte changes inside the skipped body keep a readable receipt.
    assert!(scanned > total / 4, "scanned {scanned} of {total}");
}

#[test]
fn the_scanner_accepts_no_fact_serde_json_rejects_and_reads_the_same_values() {
    let mut scanned = 0;
    let mut total = 0;
    for payload in facts() {
        let edits = [
            ("13600", "0"),
            ("13600", "013600"),
            ("13600", "9999999999999999999"),
            ("13600", "99999999999999999999"),
            ("false", "true"),
            ("\"CAPTURED\"", "\"captured\u{e9}\""),
            ("\"NOK\"", "\"N\\u004fK\""),
            ("\"order-0001\"", "\"order-\\/0001\""),
            ("Z\"", "+01:00\""),
            ("\"timestamp\":\"", "\"timestamp\":\"x"),
        ];
        let shaped = reshaped(&payload, &edits);
        for candidate in one_byte_away(&payload).iter().chain(&shaped) {
            total += 1;
            scanned += usize::from(check_fact(candidate));
        }
    }
    assert!(scanned > 0, "scanned none of {total}");
}
