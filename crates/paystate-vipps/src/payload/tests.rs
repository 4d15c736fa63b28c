//! Payload parsing, domain conversion and the Vipps JSON layout.

use super::event::echo;
use super::*;
use crate::signature::vectors::QUERY;
use paystate_domain::events::{FactSource, IngestAnomaly};
use paystate_domain::{Amount, Currency, ProviderId};
use proptest::prelude::*;

fn provider() -> ProviderId {
    ProviderId::parse("vipps-test").unwrap()
}

fn parse(json: &str) -> Result<EpaymentEvent, PayloadError> {
    EpaymentEvent::parse(json.as_bytes().to_vec())
}

/// The query vector's body with one field replaced (or removed, with `None`).
fn with_field(field: &str, value: Option<serde_json::Value>) -> String {
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(QUERY.body).unwrap();
    match value {
        Some(value) => body.insert(field.to_owned(), value),
        None => body.remove(field),
    };
    serde_json::to_string(&body).unwrap()
}

#[test]
fn parses_a_real_body_and_keeps_the_raw_bytes() {
    let event = parse(QUERY.body).unwrap();
    assert_eq!(event.raw(), QUERY.body.as_bytes());
    assert_eq!(
        event.identity(),
        EventIdentity {
            msn: "123456",
            reference: "acme-order-1001",
            name: &PaymentEventName::Authorized,
            psp_reference: "9f0c2a4e-6b1d-4c2a-8f3e-5d7b9a1c0e22",
        }
    );
    assert_eq!(
        event.idempotency_key.as_deref(),
        Some("3b9d7f1e-8c2a-4e6b-9d0f-1a2b3c4d5e6f")
    );
    assert_eq!(event.success, Some(true));
    assert!(event.extra.is_empty());
}

#[test]
fn every_known_name_and_an_unknown_one_parse() {
    for (name, expected) in [
        ("CREATED", PaymentEventName::Created),
        ("ABORTED", PaymentEventName::Aborted),
        ("EXPIRED", PaymentEventName::Expired),
        ("CANCELLED", PaymentEventName::Cancelled),
        ("CAPTURED", PaymentEventName::Captured),
        ("REFUNDED", PaymentEventName::Refunded),
        ("AUTHORIZED", PaymentEventName::Authorized),
        ("TERMINATED", PaymentEventName::Terminated),
        (
            "PARTIALLY_SETTLED",
            PaymentEventName::Unknown("PARTIALLY_SETTLED".into()),
        ),
    ] {
        let event = parse(&with_field("name", Some(name.into()))).unwrap();
        assert_eq!(event.name, expected);
    }
}

#[test]
fn newer_fields_are_kept() {
    let body = r#"{"msn":"123456","reference":"acme-order-1001","pspReference":"p-1","name":"AUTHORIZED",
        "amount":{"currency":"NOK","value":100},"timestamp":"2025-01-14T09:30:01.123Z","success":true,
        "captureGuaranteedUntil":"2025-01-21T09:30:01Z","userDetails":{"userId":"x"},"profile":{"sub":"abc"}}"#;
    let event = parse(body).unwrap();
    assert_eq!(event.extra.len(), 3);
    assert_eq!(event.extra["profile"]["sub"], "abc");
    assert_eq!(event.idempotency_key, None);
    assert!(event.to_recorded(&provider(), FactSource::Webhook).is_ok());
}

#[test]
fn idempotency_key_may_be_absent_or_null() {
    assert_eq!(
        parse(&with_field("idempotencyKey", None))
            .unwrap()
            .idempotency_key,
        None
    );
    assert_eq!(
        parse(&with_field("idempotencyKey", Some(serde_json::Value::Null)))
            .unwrap()
            .idempotency_key,
        None
    );
}

#[test]
fn an_msn_sent_as_a_number_is_read_as_its_digits() {
    assert_eq!(
        parse(&with_field("msn", Some(123456.into()))).unwrap().msn,
        "123456"
    );
}

#[test]
fn shape_errors_name_the_field() {
    assert!(matches!(parse("not json"), Err(PayloadError::NotJson(_))));
    assert!(matches!(parse(""), Err(PayloadError::NotJson(_))));
    assert_eq!(parse("[1,2]"), Err(PayloadError::NotAnObject));
    assert_eq!(
        parse(&with_field("reference", None)),
        Err(PayloadError::MissingField("reference"))
    );
    assert_eq!(
        parse(&with_field("pspReference", Some(serde_json::Value::Null))),
        Err(PayloadError::MissingField("pspReference"))
    );
    assert_eq!(
        parse(&with_field("name", Some(7.into()))),
        Err(PayloadError::WrongType {
            field: "name",
            expected: "a string",
            found: "a number"
        })
    );
    assert_eq!(
        parse(&with_field("success", Some("yes".into()))),
        Err(PayloadError::WrongType {
            field: "success",
            expected: "a boolean",
            found: "a string"
        })
    );
    assert!(matches!(
        parse(&with_field("amount", Some(5.into()))),
        Err(PayloadError::WrongType {
            field: "amount",
            ..
        })
    ));
}

#[test]
fn converts_to_the_domain_fact() {
    let recorded = parse(QUERY.body)
        .unwrap()
        .to_recorded(&provider(), FactSource::Webhook)
        .unwrap();
    assert_eq!(recorded.msn.as_str(), "123456");
    assert_eq!(recorded.reference.as_str(), "acme-order-1001");
    assert_eq!(recorded.name, PaymentEventName::Authorized);
    assert_eq!(recorded.amount, Amount::from_minor_units(49900));
    assert_eq!(recorded.currency, Currency::Nok);
    assert_eq!(
        recorded.timestamp,
        time::macros::datetime!(2025-01-14 09:30:01.123 UTC)
    );
    assert!(recorded.success);
    assert_eq!(recorded.source, FactSource::Webhook);
    assert_eq!(
        recorded.identity(),
        parse(QUERY.body).unwrap().domain_identity().unwrap()
    );
}

#[test]
fn conversion_errors_name_the_field_and_rule() {
    let check = |field: &str, value: Option<serde_json::Value>, expected_field: &str| {
        let event = parse(&with_field(field, value)).unwrap();
        let error = event
            .to_recorded(&provider(), FactSource::Webhook)
            .unwrap_err();
        assert_eq!(error.field(), expected_field, "{error}");
        let IngestAnomaly::InvalidField { field, error: text } = error.to_anomaly() else {
            panic!()
        };
        assert_eq!(field, expected_field);
        assert!(!text.is_empty());
    };
    check("msn", Some("12".into()), "msn");
    check("reference", Some("short".into()), "reference");
    check("reference", Some("has space in it".into()), "reference");
    check("pspReference", Some("".into()), "psp_reference");
    check(
        "amount",
        Some(serde_json::json!({"currency": "SEK", "value": 1})),
        "currency",
    );
    check(
        "amount",
        Some(serde_json::json!({"currency": "NOK", "value": -1})),
        "amount.value",
    );
    check(
        "amount",
        Some(serde_json::json!({"currency": "NOK", "value": 1.5})),
        "amount.value",
    );
    check(
        "amount",
        Some(serde_json::json!({"currency": "NOK"})),
        "amount.value",
    );
    check("amount", None, "amount");
    check("timestamp", Some("yesterday".into()), "timestamp");
    check("timestamp", None, "timestamp");
    check("success", None, "success");
}

/// JSON numbers of every form: negative, fractions, exponents, beyond any integer type.
const NUMBER: &str = "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?";

/// The query vector's body with `amount.value` written as `literal`, byte for byte.
fn with_amount_value(literal: &str) -> String {
    QUERY
        .body
        .replace(r#""value":49900"#, &format!(r#""value":{literal}"#))
}

#[test]
fn an_amount_value_that_is_no_integer_of_minor_units_is_quoted_as_sent() {
    for literal in [
        "1000000000000000000000000000000",
        "18446744073709551616",
        "-99999999999999999999",
        "1e30",
        "1.5E+3",
        "2000.0",
        "-0",
        "-0.5e-7",
    ] {
        let error = parse(&with_amount_value(literal))
            .unwrap()
            .to_recorded(&provider(), FactSource::Webhook)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(r#"amount.value "{literal}" is not a non-negative integer of minor units"#)
        );
    }
}

#[test]
fn tolerant_values_are_accepted() {
    let text_value = parse(&with_field(
        "amount",
        Some(serde_json::json!({"currency": "EUR", "value": "250"})),
    ))
    .unwrap();
    let recorded = text_value
        .to_recorded(&provider(), FactSource::Poll)
        .unwrap();
    assert_eq!(
        (recorded.amount, recorded.currency),
        (Amount::from_minor_units(250), Currency::Eur)
    );

    let no_offset = parse(&with_field(
        "timestamp",
        Some("2025-01-14T09:30:01.123".into()),
    ))
    .unwrap();
    let recorded = no_offset
        .to_recorded(&provider(), FactSource::Webhook)
        .unwrap();
    assert_eq!(
        recorded.timestamp,
        time::macros::datetime!(2025-01-14 09:30:01.123 UTC)
    );
}

#[test]
fn reference_hint_reads_what_it_can() {
    assert_eq!(
        reference_hint(br#"{"reference":"abc","x":"#).as_deref(),
        None
    );
    assert_eq!(
        reference_hint(br#"{"reference":"acme-1","name":5}"#).as_deref(),
        Some("acme-1")
    );
    assert_eq!(reference_hint(&[0xff]), None);
    let long = format!(r#"{{"reference":"{}"}}"#, "a".repeat(500));
    assert_eq!(reference_hint(long.as_bytes()).unwrap().chars().count(), 65);
}

#[test]
fn vipps_json_reproduces_a_real_body_byte_for_byte() {
    let recorded = parse(QUERY.body)
        .unwrap()
        .to_recorded(&provider(), FactSource::Webhook)
        .unwrap();
    let body = VippsEventBody::from(&recorded);
    assert_eq!(String::from_utf8(body.to_vipps_json()).unwrap(), QUERY.body);
}

#[test]
fn vipps_json_writes_a_missing_idempotency_key_as_null_and_converts_to_utc() {
    let mut recorded = parse(QUERY.body)
        .unwrap()
        .to_recorded(&provider(), FactSource::Webhook)
        .unwrap();
    recorded.idempotency_key = None;
    recorded.timestamp = time::macros::datetime!(2025-01-14 10:30:01.5 +01:00);
    let json = String::from_utf8(VippsEventBody::from(&recorded).to_vipps_json()).unwrap();
    assert!(
        json.ends_with(
            r#""timestamp":"2025-01-14T09:30:01.500Z","idempotencyKey":null,"success":true}"#
        ),
        "{json}"
    );
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(event) = EpaymentEvent::parse(raw.clone()) {
            let _ = event.to_recorded(&provider(), FactSource::Webhook);
        }
        let _ = reference_hint(&raw);
    }

    #[test]
    fn any_number_as_amount_value_is_read_or_quoted_as_sent_without_panicking(
        literal in NUMBER,
    ) {
        // A number beyond what a float holds (`1e400`) is not JSON this parser reads.
        if let Ok(event) = parse(&with_amount_value(&literal)) {
            match event.to_recorded(&provider(), FactSource::Webhook) {
                Ok(recorded) => prop_assert_eq!(recorded.amount.to_string(), literal),
                Err(FieldError::AmountValue { got }) => prop_assert_eq!(got, echo(&literal)),
                Err(other) => prop_assert!(false, "{}", other),
            }
        }
    }

    #[test]
    fn any_number_in_any_field_is_read_without_panicking(
        literal in NUMBER,
        field in prop::sample::select(&["msn", "reference", "pspReference", "name", "amount", "timestamp", "idempotencyKey", "success"][..]),
    ) {
        let body = with_field(field, Some("\u{1}".into())).replace(r#""\u0001""#, &literal);
        prop_assert!(!body.contains(r#""\u0001""#));
        if let Ok(event) = parse(&body) {
            let _ = event.to_recorded(&provider(), FactSource::Webhook);
        }
        let _ = EventView::parse(body.as_bytes());
    }

    #[test]
    fn parsing_arbitrary_field_values_never_panics(
        msn in prop_oneof![Just(serde_json::Value::Null), any::<i64>().prop_map(serde_json::Value::from), ".{0,12}".prop_map(serde_json::Value::from), "[0-9]{4,10}".prop_map(serde_json::Value::from)],
        reference in prop_oneof![Just(serde_json::Value::Null), ".{0,70}".prop_map(serde_json::Value::from), "[a-zA-Z0-9-]{8,64}".prop_map(serde_json::Value::from)],
        value in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), any::<u64>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from), ".{0,25}".prop_map(serde_json::Value::from)],
        currency in prop_oneof![".{0,4}", Just("NOK".to_owned())],
        timestamp in prop_oneof![".{0,30}", "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"],
        name in ".{0,20}",
    ) {
        let body = serde_json::json!({
            "msn": msn, "reference": reference, "pspReference": "p", "name": name,
            "amount": {"currency": currency, "value": value}, "timestamp": timestamp, "success": false,
        });
        if let Ok(event) = EpaymentEvent::parse(serde_json::to_vec(&body).unwrap()) {
            if let Ok(recorded) = event.to_recorded(&provider(), FactSource::Webhook) {
                let json = VippsEventBody::from(&recorded).to_vipps_json();
                let again = EpaymentEvent::parse(json).unwrap().to_recorded(&provider(), FactSource::Webhook).unwrap();
                prop_assert_eq!(again.identity(), recorded.identity());
                prop_assert_eq!(again.amount, recorded.amount);
            }
        }
    }
}

#[test]
fn a_modelled_field_sent_twice_is_refused_as_ambiguous() {
    let body = r#"{"msn":"123456","reference":"order-1","reference":"order-2","pspReference":"p-1","name":"AUTHORIZED"}"#;
    assert_eq!(
        parse(body).unwrap_err(),
        PayloadError::RepeatedField("reference")
    );
    let body = r#"{"msn":"123456","reference":"order-1","pspReference":"p-1","name":"CAPTURED","amount":{"currency":"NOK","value":100,"value":900}}"#;
    assert_eq!(
        parse(body).unwrap_err(),
        PayloadError::RepeatedField("amount.value")
    );
    assert_eq!(
        PayloadError::RepeatedField("reference").to_string(),
        "the field reference is sent twice, so the body is ambiguous"
    );
    // A repeated reference is named before any other repeat, and a repeat inside `amount`
    // before a missing field.
    let body = r#"{"msn":"1","msn":"1","reference":"a","reference":"b","pspReference":"p","name":"CREATED"}"#;
    assert_eq!(
        parse(body).unwrap_err(),
        PayloadError::RepeatedField("reference")
    );
    let body =
        r#"{"reference":"a","pspReference":"p","name":"CREATED","amount":{"value":1,"value":2}}"#;
    assert_eq!(
        parse(body).unwrap_err(),
        PayloadError::RepeatedField("amount.value")
    );
    // A field the event does not model keeps its last value, as any JSON reader would.
    let body = r#"{"msn":"123456","reference":"order-1","pspReference":"p-1","name":"CREATED","note":"a","note":"b"}"#;
    assert_eq!(parse(body).unwrap().extra["note"], "b");
}
