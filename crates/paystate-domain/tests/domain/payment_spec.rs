//! The payment projection, case by case, as VIPPS.md §5 states it.

use crate::support::{fact, meta, provider_id, reference};
use paystate_domain::events::{
    DomainEvent, IngestAnomaly, PaymentEventIdentity, PaymentEventRecorded, WebhookAnomaly,
    WebhookDuplicate,
};
use paystate_domain::payment::{PaymentProjection, PaymentState, PaymentView};
use paystate_domain::{Currency, Msn, SecretVersion};

/// Facts of one payment, one per step, in the provider's order.
fn history(steps: &[(&str, u64)]) -> Vec<PaymentEventRecorded> {
    steps
        .iter()
        .enumerate()
        .map(|(step, (name, amount))| fact(step, name, *amount))
        .collect()
}

fn fold(facts: &[PaymentEventRecorded]) -> PaymentView {
    let events: Vec<DomainEvent> = facts.iter().cloned().map(DomainEvent::from).collect();
    let positions = (1..).map(meta);
    PaymentProjection::fold(provider_id(), reference(), positions.zip(events.iter())).view()
}

fn anomaly_kinds(view: &PaymentView) -> Vec<String> {
    view.anomalies
        .iter()
        .map(|anomaly| {
            serde_json::to_value(anomaly).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Folds `facts` in the provider's order and in reverse, and checks both give `state`,
/// `[authorized, captured, refunded, cancelled]` and the anomaly kinds.
fn check(
    facts: &[PaymentEventRecorded],
    state: PaymentState,
    aggregate: [u64; 4],
    anomalies: &[&str],
) {
    let reversed: Vec<_> = facts.iter().rev().cloned().collect();
    for (order, view) in [("in order", fold(facts)), ("reversed", fold(&reversed))] {
        assert_eq!(view.state, state, "{order}: {view:#?}");
        let actual = [
            view.aggregate.authorized.minor_units(),
            view.aggregate.captured.minor_units(),
            view.aggregate.refunded.minor_units(),
            view.aggregate.cancelled.minor_units(),
        ];
        assert_eq!(
            actual, aggregate,
            "{order}: [authorized, captured, refunded, cancelled]"
        );
        assert_eq!(anomaly_kinds(&view), anomalies, "{order}: anomalies");
    }
}

#[test]
fn created_payment_is_created_with_nothing_moved() {
    check(
        &history(&[("CREATED", 49900)]),
        PaymentState::Created,
        [0, 0, 0, 0],
        &[],
    );
}

#[test]
fn authorization_authorizes_the_amount() {
    let facts = history(&[("CREATED", 49900), ("AUTHORIZED", 49900)]);
    check(&facts, PaymentState::Authorized, [49900, 0, 0, 0], &[]);
    let view = fold(&facts);
    assert_eq!(view.amount.map(|a| a.minor_units()), Some(49900));
    assert_eq!(view.currency, Some(Currency::Nok));
    assert_eq!(view.events, 2);
}

#[test]
fn aborted_and_expired_are_final_states() {
    check(
        &history(&[("CREATED", 100), ("ABORTED", 100)]),
        PaymentState::Aborted,
        [0, 0, 0, 0],
        &[],
    );
    check(
        &history(&[("CREATED", 100), ("EXPIRED", 100)]),
        PaymentState::Expired,
        [0, 0, 0, 0],
        &[],
    );
}

#[test]
fn partial_captures_and_refunds_add_up_without_changing_state() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CAPTURED", 300),
        ("CAPTURED", 200),
        ("REFUNDED", 100),
        ("REFUNDED", 50),
    ]);
    check(&facts, PaymentState::Authorized, [1000, 500, 150, 0], &[]);
}

#[test]
fn cancel_after_authorization_cancels_the_uncaptured_rest() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CAPTURED", 300),
        ("CANCELLED", 700),
    ]);
    check(&facts, PaymentState::Authorized, [1000, 300, 0, 700], &[]);
}

#[test]
fn cancel_before_authorization_terminates_with_the_whole_amount_cancelled() {
    let facts = history(&[("CREATED", 49900), ("CANCELLED", 49900)]);
    check(&facts, PaymentState::Terminated, [0, 0, 0, 49900], &[]);
    let with_terminated = history(&[
        ("CREATED", 49900),
        ("CANCELLED", 49900),
        ("TERMINATED", 49900),
    ]);
    check(
        &with_terminated,
        PaymentState::Terminated,
        [0, 0, 0, 49900],
        &[],
    );
}

#[test]
fn a_capture_seen_before_its_authorization_gives_the_same_end_state() {
    let facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 1000)]);
    let capture_first = vec![facts[2].clone(), facts[0].clone(), facts[1].clone()];
    check(
        &capture_first,
        PaymentState::Authorized,
        [1000, 1000, 0, 0],
        &[],
    );
    // Until the authorization arrives, the capture alone is flagged, not lost.
    let only_capture = fold(&facts[2..]);
    assert_eq!(only_capture.state, PaymentState::Authorized);
    assert_eq!(
        anomaly_kinds(&only_capture),
        ["captured_exceeds_authorized"]
    );
}

#[test]
fn failed_operations_move_no_money() {
    let mut facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CAPTURED", 400),
        ("REFUNDED", 400),
    ]);
    facts[2].success = false;
    facts[3].success = false;
    check(&facts, PaymentState::Authorized, [1000, 0, 0, 0], &[]);
    let view = fold(&facts);
    assert_eq!(view.events, 4, "failed operations are still facts");
}

#[test]
fn a_failed_authorization_leaves_the_payment_created() {
    let mut facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000)]);
    facts[1].success = false;
    check(&facts, PaymentState::Created, [0, 0, 0, 0], &[]);
}

#[test]
fn unknown_event_names_are_kept_and_change_nothing() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("PARTIALLY_SETTLED", 500),
    ]);
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["unknown_event_name"],
    );
    assert_eq!(fold(&facts).events, 3);

    // Marked at ingestion too, it is still listed once.
    let mut marked = facts.clone();
    marked[2].anomaly = Some(IngestAnomaly::UnknownEventName {
        name: "PARTIALLY_SETTLED".into(),
    });
    check(
        &marked,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["unknown_event_name"],
    );
}

#[test]
fn capturing_more_than_authorized_is_an_anomaly_not_a_panic() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CAPTURED", 800),
        ("CAPTURED", 800),
    ]);
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 1600, 0, 0],
        &["captured_exceeds_authorized"],
    );
}

#[test]
fn refunding_more_than_captured_is_an_anomaly() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CAPTURED", 300),
        ("REFUNDED", 500),
    ]);
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 300, 500, 0],
        &["refunded_exceeds_captured"],
    );
}

#[test]
fn a_capture_after_a_cancel_is_an_anomaly() {
    let facts = history(&[
        ("CREATED", 1000),
        ("AUTHORIZED", 1000),
        ("CANCELLED", 1000),
        ("CAPTURED", 200),
    ]);
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 200, 0, 800],
        &["capture_after_cancel"],
    );
}

#[test]
fn a_second_currency_is_an_anomaly_and_moves_no_money() {
    let mut facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 300)]);
    facts[2].currency = Currency::Eur;
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["currency_mismatch"],
    );
}

#[test]
fn a_fact_for_another_msn_moves_no_money() {
    let mut facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 300)]);
    facts[2].msn = Msn::parse("999999").unwrap();
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["msn_mismatch"],
    );
    facts[2].anomaly = Some(IngestAnomaly::MsnMismatch {
        expected: Msn::parse("123456").unwrap(),
        got: Msn::parse("999999").unwrap(),
    });
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["ingest"],
    );
}

#[test]
fn contradicting_final_states_are_flagged() {
    let facts = history(&[("CREATED", 1000), ("ABORTED", 1000), ("AUTHORIZED", 1000)]);
    check(
        &facts,
        PaymentState::Authorized,
        [1000, 0, 0, 0],
        &["conflicting_final_states"],
    );
}

#[test]
fn duplicates_are_counted_and_change_nothing() {
    let facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 300)]);
    let mut delivered = facts.clone();
    delivered.push(facts[2].clone());
    delivered.push(facts[1].clone());
    check(&delivered, PaymentState::Authorized, [1000, 300, 0, 0], &[]);
    let view = fold(&delivered);
    assert_eq!((view.events, view.duplicates), (3, 2));
}

#[test]
fn a_duplicate_with_other_content_is_flagged_and_resolved_the_same_way_in_any_order() {
    let facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 300)]);
    let mut changed = facts[2].clone();
    changed.amount = paystate_domain::Amount::from_minor_units(200);
    let mut delivered = facts.clone();
    delivered.push(changed);
    check(
        &delivered,
        PaymentState::Authorized,
        [1000, 200, 0, 0],
        &["conflicting_duplicate"],
    );
}

#[test]
fn recorded_duplicate_deliveries_and_ingest_anomalies_show_in_the_view() {
    let facts = history(&[("CREATED", 1000)]);
    let duplicate = WebhookDuplicate {
        provider_id: provider_id(),
        original_position: 1,
        identity: PaymentEventIdentity {
            msn: facts[0].msn.clone(),
            reference: facts[0].reference.clone(),
            name: facts[0].name.clone(),
            psp_reference: facts[0].psp_reference.clone(),
        },
        secret_version: SecretVersion::FIRST,
        received_at: crate::support::at(5),
        conflict: None,
    };
    let anomaly = WebhookAnomaly {
        provider_id: provider_id(),
        anomaly: IngestAnomaly::InvalidField {
            field: "amount".into(),
            error: "negative".into(),
        },
        reference_raw: Some(reference().to_string()),
        received_at: crate::support::at(6),
    };
    let events: Vec<DomainEvent> = vec![facts[0].clone().into(), duplicate.into(), anomaly.into()];
    let view = PaymentProjection::fold(
        provider_id(),
        reference(),
        (1..).map(meta).zip(events.iter()),
    )
    .view();
    assert_eq!(view.duplicates, 1);
    assert_eq!(anomaly_kinds(&view), ["ingest"]);
    assert_eq!(view.position, 3);
    assert_eq!(view.first_seen_at, Some(meta(1).recorded_at));
    assert_eq!(view.last_event_at, Some(meta(3).recorded_at));
}

#[test]
fn facts_of_other_payments_are_ignored() {
    let mut other = fact(0, "CREATED", 1000);
    other.reference = paystate_domain::Reference::parse("acme-order-2002").unwrap();
    let events = [DomainEvent::from(other)];
    let projection = PaymentProjection::fold(
        provider_id(),
        reference(),
        (1..).map(meta).zip(events.iter()),
    );
    assert!(projection.is_empty());
}

#[test]
fn as_of_a_position_is_the_fold_of_the_prefix() {
    let facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("CAPTURED", 300)]);
    let events: Vec<DomainEvent> = facts.into_iter().map(DomainEvent::from).collect();
    let with_meta = || (1..).map(meta).zip(events.iter());
    let at_two = PaymentProjection::fold_until(provider_id(), reference(), with_meta(), 2).view();
    assert_eq!(at_two.state, PaymentState::Authorized);
    assert_eq!(at_two.aggregate.captured.minor_units(), 0);
    assert_eq!(at_two.position, 2);
    let by_time = PaymentProjection::fold_until_time(
        provider_id(),
        reference(),
        with_meta(),
        meta(2).recorded_at,
    )
    .view();
    assert_eq!(by_time, at_two);
}

#[test]
fn the_view_serializes_as_the_api_documents() {
    let view = fold(&history(&[("CREATED", 49900), ("AUTHORIZED", 49900)]));
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["state"], "AUTHORIZED");
    assert_eq!(json["currency"], "NOK");
    assert_eq!(json["amount"], 49900);
    assert_eq!(
        json["aggregate"],
        serde_json::json!({"authorized": 49900, "captured": 0, "refunded": 0, "cancelled": 0})
    );
    assert_eq!(json["msn"], "123456");
    assert_eq!(json["anomalies"], serde_json::json!([]));
}

#[test]
fn a_projection_survives_a_checkpoint_round_trip() {
    let mut facts = history(&[("CREATED", 1000), ("AUTHORIZED", 1000), ("SETTLED", 1)]);
    facts.push(facts[1].clone());
    let mut conflicting = facts[0].clone();
    conflicting.amount = paystate_domain::Amount::from_minor_units(999);
    facts.push(conflicting);
    let events: Vec<DomainEvent> = facts.into_iter().map(DomainEvent::from).collect();
    let projection = PaymentProjection::fold(
        provider_id(),
        reference(),
        (1..).map(meta).zip(events.iter()),
    );
    let saved = serde_json::to_vec(&projection).unwrap();
    let restored: PaymentProjection = serde_json::from_slice(&saved).unwrap();
    assert_eq!(restored, projection);
    assert_eq!(restored.view(), projection.view());
}

#[test]
fn states_parse_from_their_names_only() {
    for state in [
        PaymentState::Created,
        PaymentState::Authorized,
        PaymentState::Aborted,
        PaymentState::Expired,
        PaymentState::Terminated,
    ] {
        assert_eq!(PaymentState::parse(state.as_str()), Some(state));
        assert_eq!(state.is_final(), state != PaymentState::Created);
    }
    assert_eq!(PaymentState::parse("authorized"), None);
    assert_eq!(PaymentState::parse("CAPTURED"), None);
}
