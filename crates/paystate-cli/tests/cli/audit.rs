use super::*;
use paystate_domain::{streams, ProviderId, Reference};

#[test]
fn a_payment_timeline_shows_positions_facts_and_amounts_changed() {
    let data = story_dir();
    let audit = run(&[
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1001",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let out = audit.stdout;
    for expected in [
        "Audit of payment vipps-test/acme-order-1001",
        "CAPTURED 40.00 NOK (psp psp-capture-1)",
        "captured 0.00 -> 40.00 NOK",
        "refunded 0.00 -> 15.00 NOK",
        "authorized 0.00 -> 100.00 NOK",
        "state CREATED -> AUTHORIZED",
        "authentic delivery received (secret version 1)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    // Positions of this payment's facts: receipts and facts from 4 to 11.
    for position in 4..=11 {
        assert!(
            out.contains(&format!("│ {position} ")),
            "position {position} missing in\n{out}"
        );
    }
}

#[test]
fn json_output_carries_entries_changes_and_the_view() {
    let data = story_dir();
    let audit = run(&[
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1001",
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8);
    let capture = entries
        .iter()
        .find(|entry| entry["data"]["name"] == "CAPTURED")
        .expect("the capture fact");
    assert_eq!(capture["type"], "payment_event_recorded");
    assert!(capture["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|change| change["field"] == "aggregate.captured"
            && change["from"] == "0.00"
            && change["to"] == "40.00 NOK"));
    assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
    assert_eq!(doc["view"]["aggregate"]["refunded"], 1500);
}

#[test]
fn at_a_position_shows_what_was_known_then() {
    let data = story_dir();
    // Position 9 is the capture fact: the refund (10, 11) is not known yet.
    let audit = run(&[
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1001",
        "--at",
        "9",
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(doc["at"], 9);
    assert_eq!(
        doc["entries"].as_array().unwrap().last().unwrap()["position"],
        9
    );
    assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
    assert_eq!(doc["view"]["aggregate"]["refunded"], 0);
}

#[test]
fn as_of_a_time_shows_what_was_recorded_by_then() {
    let data = story_dir();
    let full = run(&[
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1001",
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let full: serde_json::Value = serde_json::from_str(&full.stdout).unwrap();
    // The recorded time of the capture fact: the refund was recorded after it.
    let capture = full["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["data"]["name"] == "CAPTURED")
        .unwrap();
    let time = capture["recorded_at"].as_str().unwrap();
    let audit = run(&[
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1001",
        "--as-of",
        time,
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(doc["as_of"], time);
    assert_eq!(doc["view"]["aggregate"]["captured"], 4000);
    assert_eq!(doc["view"]["aggregate"]["refunded"], 0);

    let bad = run(&[
        "audit",
        "provider",
        "vipps-test",
        "--as-of",
        "yesterday",
        "--data",
        &data.arg(),
    ])
    .expect_code(2);
    assert!(
        bad.stderr.contains("not an RFC 3339 time"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_provider_timeline_shows_its_registration() {
    let data = story_dir();
    let audit = run(&["audit", "provider", "vipps-test", "--data", &data.arg()]).expect_code(0);
    for expected in [
        "provider_created",
        "state disabled -> enabled",
        "webhook_registered",
        "webhook.secret_version none -> 1",
    ] {
        assert!(
            audit.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            audit.stdout
        );
    }
    // Long summaries wrap in the table; the JSON carries them whole.
    let json = run(&[
        "audit",
        "provider",
        "vipps-test",
        "--json",
        "--data",
        &data.arg(),
    ])
    .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let facts: Vec<&str> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["fact"].as_str().unwrap())
        .collect();
    assert_eq!(
        facts,
        [
            "provider vipps-test created (vipps test, MSN 123456), disabled",
            "provider enabled",
            "webhook reg-0001 registered at https://pay.example.no/webhooks/vipps/vipps-test (secret version 1, reason enabled)",
        ]
    );
    assert_eq!(doc["view"]["webhook"]["secret_version"], 1);
    // Accepted deliveries live in the payment streams: the provider's own timeline does not
    // pretend there were none, it says where they are.
    assert!(
        doc["view"]["webhooks"].get("accepted").is_none(),
        "{}",
        doc["view"]
    );
    assert_eq!(doc["view"]["webhooks"]["rejected"], 0);
    assert!(
        doc["note"]
            .as_str()
            .unwrap()
            .contains("recorded in the payment streams"),
        "{}",
        doc["note"]
    );
}

#[test]
fn an_unknown_payment_is_an_error_not_an_empty_table() {
    let data = story_dir();
    let audit = run(&[
        "audit",
        "payment",
        "vipps-test",
        "no-such-order",
        "--data",
        &data.arg(),
    ])
    .expect_code(2);
    assert!(
        audit
            .stderr
            .contains("no facts recorded for payment vipps-test/no-such-order"),
        "{}",
        audit.stderr
    );
}

#[test]
fn a_cutoff_past_the_log_or_two_cutoffs_at_once_are_refused() {
    let data = story_dir();
    let past = run(&[
        "audit",
        "provider",
        "vipps-test",
        "--at",
        "99999",
        "--data",
        &data.arg(),
    ])
    .expect_code(2);
    assert!(
        past.stderr
            .contains("--at 99999 is past the end of the log"),
        "{}",
        past.stderr
    );
    let both = run(&[
        "audit",
        "provider",
        "vipps-test",
        "--at",
        "3",
        "--as-of",
        "2026-11-28T09:30:00Z",
        "--data",
        &data.arg(),
    ])
    .expect_code(2);
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
    let unknown = run(&[
        "audit",
        "provider",
        "no-such-provider",
        "--data",
        &data.arg(),
    ])
    .expect_code(2);
    assert!(
        unknown.stderr.contains("check the provider id") && !unknown.stderr.contains("reference"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn anomalies_read_in_words_with_amounts_in_major_units_and_json_keeps_minor_units() {
    let data = DataDir::empty();
    let log = LogBuilder::new(&data);
    log.provider_setup();
    log.delivery(
        "acme-order-1003",
        "AUTHORIZED",
        "psp-a",
        10000,
        Tamper::None,
    );
    log.delivery("acme-order-1003", "CAPTURED", "psp-c", 20000, Tamper::None);
    let provider = ProviderId::parse("vipps-test").unwrap();
    let reference = Reference::parse("acme-order-1003").unwrap();
    log.append(
        &streams::payment_stream(&provider, &reference),
        vec![(
            "webhook_anomaly",
            serde_json::json!({
                "provider_id": "vipps-test",
                "anomaly": {"kind": "invalid_field", "field": "amount.value",
                            "error": "amount.value \"-5\" is not a non-negative integer of minor units"},
                "reference_raw": "acme-order-1003",
                "received_at": "2025-01-14T09:30:06Z"
            }),
        )],
        None,
    );
    log.finish();
    let args = [
        "audit",
        "payment",
        "vipps-test",
        "acme-order-1003",
        "--data",
        &data.arg(),
    ];
    let audit = run(&args).expect_code(0);
    // The table, without the resulting view (JSON, in minor units) printed after it; the
    // "changed" column read as one text, since long cells wrap.
    let table = audit.stdout.split("Resulting view:").next().unwrap();
    let changed = table
        .lines()
        .filter_map(|line| line.split(['│', '┆']).nth(4).map(str::trim))
        .collect::<Vec<_>>()
        .join(" ");
    for expected in [
        "anomalies none -> captured 200.00 NOK exceeds authorized 100.00 NOK",
        "invalid amount.value (amount.value \"-5\" is not a non-negative integer of minor units)",
    ] {
        assert!(
            changed.contains(expected),
            "missing {expected:?} in\n{table}"
        );
    }
    for raw in ["20000", "10000", "\"kind\""] {
        assert!(!table.contains(raw), "{raw:?} in\n{table}");
    }
    let json = run(&[&args[..], &["--json"]].concat()).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["view"]["anomalies"][0]["captured"], 20000);
    assert_eq!(doc["view"]["anomalies"][0]["authorized"], 10000);
}
