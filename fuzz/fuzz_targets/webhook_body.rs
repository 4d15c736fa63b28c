//! Feeds arbitrary bytes to the webhook body reader as an authentic delivery's body:
//! `EventView::parse`, `EpaymentEvent::parse`, `to_recorded` and the server's
//! `ingestion::record::parse`.
//!
//! Checks: nothing panics; the borrowed and the owned readers accept and refuse the same bodies
//! alike; the server files a fact exactly when the body states a valid one; an accepted fact
//! carries the body's identity and amount, survives the store's encoding unchanged, and reads
//! back the same from the JSON Vipps would send for it (to the millisecond Vipps writes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate_domain::events::{DomainEvent, FactSource, PaymentEventRecorded};
use paystate_domain::{Amount, Msn, ProviderId};
use paystate_server::ingestion::record::{self, Parsed};
use paystate_vipps::payload::{EpaymentEvent, EventView, ValueView, VippsEventBody};

fuzz_target!(|body: &[u8]| {
    let provider = ProviderId::parse("fuzz-shop").expect("provider id");
    let msn = Msn::parse("123456").expect("msn");

    let view = EventView::parse(body);
    match (&view, EpaymentEvent::parse(body.to_vec())) {
        (Ok(view), Ok(owned)) => assert_eq!(*view, owned.view()),
        (Err(borrowed), Err(owned)) => assert_eq!(*borrowed, owned),
        (borrowed, owned) => panic!("readers disagree: {borrowed:?} / {owned:?}"),
    }

    let expected = view
        .as_ref()
        .ok()
        .and_then(|view| view.to_recorded(&provider, FactSource::Webhook).ok());
    match (record::parse(&provider, &msn, body), expected) {
        (Parsed::Fact(fact), Some(mut expected)) => {
            record::flag_anomaly(&mut expected, &msn);
            assert_eq!(*fact, expected);
            let view = view.as_ref().expect("a fact comes from a readable body");
            check_fact_matches_body(&fact, view);
            check_store_round_trip(&fact);
            check_vipps_json_round_trip(&fact, &provider);
        }
        (Parsed::Anomaly { anomaly, .. }, None) => {
            assert!(!serde_json::to_vec(&anomaly)
                .expect("anomaly JSON")
                .is_empty());
        }
        (parsed, expected) => panic!("server and reader disagree: {parsed:?} / {expected:?}"),
    }
});

fn check_fact_matches_body(fact: &PaymentEventRecorded, view: &EventView<'_>) {
    assert_eq!(fact.msn.as_str(), view.msn);
    assert_eq!(fact.reference.as_str(), view.reference);
    assert_eq!(fact.psp_reference.as_str(), view.psp_reference);
    assert_eq!(fact.name, view.name);
    assert_eq!(fact.success, view.success.expect("a fact has success"));
    assert_eq!(
        fact.idempotency_key.as_deref(),
        view.idempotency_key.as_deref()
    );
    let amount = view.amount.as_ref().expect("a fact has an amount");
    assert_eq!(Some(fact.currency.as_str()), amount.currency.as_deref());
    match amount.value.as_ref().expect("a fact has a value") {
        ValueView::Integer(value) => assert_eq!(i128::from(fact.amount.minor_units()), *value),
        ValueView::Text(text) => assert_eq!(Amount::parse(text), Ok(fact.amount)),
    }
}

/// What the store keeps of the fact decodes to the same fact.
fn check_store_round_trip(fact: &PaymentEventRecorded) {
    let event = DomainEvent::from(fact.clone());
    let payload = event
        .try_to_payload()
        .unwrap_or_else(|error| panic!("an accepted fact cannot be stored: {error}: {fact:?}"));
    let decoded = DomainEvent::decode(event.type_name(), event.schema_version(), &payload)
        .unwrap_or_else(|error| panic!("stored fact does not decode: {error}: {fact:?}"));
    assert_eq!(decoded, event);
}

/// The body Vipps would send for the fact is read back as the same fact.
fn check_vipps_json_round_trip(fact: &PaymentEventRecorded, provider: &ProviderId) {
    let json = VippsEventBody::from(fact).to_vipps_json();
    let shown = String::from_utf8_lossy(&json);
    let view = EventView::parse(&json)
        .unwrap_or_else(|error| panic!("Vipps JSON {shown} unreadable: {error}: {fact:?}"));
    let reread = view
        .to_recorded(provider, FactSource::Webhook)
        .unwrap_or_else(|error| panic!("Vipps JSON {shown} is no fact: {error}: {fact:?}"));
    let millis =
        |fact: &PaymentEventRecorded| fact.timestamp.unix_timestamp_nanos().div_euclid(1_000_000);
    assert_eq!(millis(&reread), millis(fact), "timestamp of {shown}");
    let without_time = |fact: &PaymentEventRecorded| PaymentEventRecorded {
        timestamp: time::OffsetDateTime::UNIX_EPOCH,
        anomaly: None,
        ..fact.clone()
    };
    assert_eq!(without_time(&reread), without_time(fact));
}
