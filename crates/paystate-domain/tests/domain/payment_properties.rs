//! Properties of the payment fold over generated Vipps histories: arrival order and duplicates
//! never matter, folding is deterministic, and "as of" equals folding the prefix.

use crate::support::{fact, meta, provider_id, reference};
use paystate_domain::events::{DomainEvent, PaymentEventRecorded};
use paystate_domain::payment::{PaymentAggregate, PaymentProjection, PaymentState, PaymentView};
use paystate_domain::{Amount, Currency, Msn};
use proptest::prelude::*;

/// How a generated payment ends.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Authorized { cancel_at_end: bool },
    Aborted,
    Expired,
    CancelledBeforeAuthorization,
}

/// A valid Vipps history, and the state and aggregate VIPPS.md §5 gives it.
#[derive(Debug, Clone)]
struct Generated {
    facts: Vec<PaymentEventRecorded>,
    state: PaymentState,
    aggregate: PaymentAggregate,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => any::<bool>().prop_map(|cancel_at_end| Outcome::Authorized { cancel_at_end }),
        1 => Just(Outcome::Aborted),
        1 => Just(Outcome::Expired),
        1 => Just(Outcome::CancelledBeforeAuthorization),
    ]
}

/// Builds a history: CREATED, the outcome, partial captures that never exceed the amount,
/// refunds that never exceed what was captured, failed operations and unknown names between.
fn build(
    amount: u64,
    outcome: Outcome,
    captures: Vec<u64>,
    refunds: Vec<u64>,
    failures: Vec<(usize, u64)>,
    unknown_names: usize,
) -> Generated {
    let mut facts = Vec::new();
    let mut push = |name: &str, amount: u64, success: bool| {
        let mut next = fact(facts.len(), name, amount);
        next.success = success;
        facts.push(next);
    };
    push("CREATED", amount, true);
    let mut aggregate = PaymentAggregate::default();
    let state = match outcome {
        Outcome::Aborted => {
            push("ABORTED", amount, true);
            PaymentState::Aborted
        }
        Outcome::Expired => {
            push("EXPIRED", amount, true);
            PaymentState::Expired
        }
        Outcome::CancelledBeforeAuthorization => {
            push("CANCELLED", amount, true);
            push("TERMINATED", amount, true);
            aggregate.cancelled = Amount::from_minor_units(amount);
            PaymentState::Terminated
        }
        Outcome::Authorized { cancel_at_end } => {
            push("AUTHORIZED", amount, true);
            let mut captured = 0;
            for capture in captures.into_iter().filter(|c| *c <= amount) {
                if captured + capture <= amount {
                    captured += capture;
                    push("CAPTURED", capture, true);
                }
            }
            let mut refunded = 0;
            for refund in refunds {
                if refunded + refund <= captured {
                    refunded += refund;
                    push("REFUNDED", refund, true);
                }
            }
            for (name, failed_amount) in &failures {
                let name = ["CAPTURED", "REFUNDED", "CANCELLED"][name % 3];
                push(name, *failed_amount, false);
            }
            if cancel_at_end {
                push("CANCELLED", amount - captured, true);
                aggregate.cancelled = Amount::from_minor_units(amount - captured);
            }
            aggregate.authorized = Amount::from_minor_units(amount);
            aggregate.captured = Amount::from_minor_units(captured);
            aggregate.refunded = Amount::from_minor_units(refunded);
            PaymentState::Authorized
        }
    };
    for index in 0..unknown_names {
        push(&format!("FUTURE_EVENT_{index}"), 1, true);
    }
    Generated {
        facts,
        state,
        aggregate,
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        1u64..=2_000_000,
        outcome(),
        prop::collection::vec(1u64..=1_000_000, 0..5),
        prop::collection::vec(1u64..=500_000, 0..4),
        prop::collection::vec((0usize..3, 1u64..=1_000_000), 0..3),
        0usize..2,
    )
        .prop_map(|(amount, outcome, captures, refunds, failures, unknown)| {
            build(amount, outcome, captures, refunds, failures, unknown)
        })
}

/// A generated history and one way it may arrive: shuffled, with some facts delivered again.
fn delivered() -> impl Strategy<Value = (Generated, Vec<PaymentEventRecorded>)> {
    generated().prop_flat_map(|generated| {
        let count = generated.facts.len();
        let repeats = prop::collection::vec(0..count, 0..=count * 2);
        (Just(generated), repeats).prop_flat_map(|(generated, repeats)| {
            let mut arrivals = generated.facts.clone();
            arrivals.extend(repeats.iter().map(|&index| generated.facts[index].clone()));
            (Just(generated), Just(arrivals).prop_shuffle())
        })
    })
}

fn events(facts: &[PaymentEventRecorded]) -> Vec<DomainEvent> {
    facts.iter().cloned().map(DomainEvent::from).collect()
}

fn fold(events: &[DomainEvent]) -> PaymentView {
    PaymentProjection::fold(
        provider_id(),
        reference(),
        (1..).map(meta).zip(events.iter()),
    )
    .view()
}

/// The parts of a view that must not depend on arrival order or duplicates.
fn order_free(view: &PaymentView) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        view.state,
        view.aggregate,
        view.amount,
        view.currency,
        &view.msn,
        view.events,
        &view.anomalies,
    )
}

/// Arbitrary facts of one payment, valid or not: names (known and unknown), amounts, success,
/// a second currency and a second MSN, repeated identities with different content.
fn arbitrary_facts() -> impl Strategy<Value = Vec<PaymentEventRecorded>> {
    let one = (
        0usize..6,
        0usize..10,
        0u64..5_000,
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        0i64..10,
    )
        .prop_map(|(step, name, amount, success, euro, other_msn, minute)| {
            let names = [
                "CREATED",
                "AUTHORIZED",
                "CAPTURED",
                "REFUNDED",
                "CANCELLED",
                "ABORTED",
                "EXPIRED",
                "TERMINATED",
                "SETTLED",
                "CAPTURED",
            ];
            let mut next = fact(step, names[name], amount);
            next.success = success;
            next.timestamp = crate::support::at(minute * 60);
            if euro {
                next.currency = Currency::Eur;
            }
            if other_msn {
                next.msn = Msn::parse("9999").unwrap();
            }
            next
        });
    prop::collection::vec(one, 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_histories_fold_to_the_state_and_aggregate_vipps_gives((generated, arrivals) in delivered()) {
        let view = fold(&events(&arrivals));
        prop_assert_eq!(view.state, generated.state);
        prop_assert_eq!(view.aggregate, generated.aggregate);
        let unexpected: Vec<_> = view
            .anomalies
            .iter()
            .filter(|a| !matches!(a, paystate_domain::payment::PaymentAnomaly::UnknownEventName { .. }))
            .collect();
        prop_assert!(unexpected.is_empty(), "valid history flagged: {:?}", unexpected);
        prop_assert_eq!(view.duplicates as usize, arrivals.len() - generated.facts.len());
    }

    #[test]
    fn any_permutation_with_duplicates_folds_like_the_providers_order((generated, arrivals) in delivered()) {
        let in_order = fold(&events(&generated.facts));
        let shuffled = fold(&events(&arrivals));
        prop_assert_eq!(order_free(&in_order), order_free(&shuffled));
    }

    #[test]
    fn arbitrary_facts_fold_the_same_in_any_order(
        (facts, shuffled) in arbitrary_facts().prop_flat_map(|facts| {
            (Just(facts.clone()), Just(facts).prop_shuffle())
        })
    ) {
        let a = fold(&events(&facts));
        let b = fold(&events(&shuffled));
        prop_assert_eq!(order_free(&a), order_free(&b));
    }

    #[test]
    fn the_state_alone_is_the_views_state(
        facts in arbitrary_facts(),
    ) {
        let projection = PaymentProjection::fold(
            provider_id(),
            reference(),
            (1..).map(meta).zip(events(&facts).iter()),
        );
        prop_assert_eq!(projection.state(), projection.view().state);
    }

    #[test]
    fn folding_is_deterministic((_, arrivals) in delivered()) {
        let events = events(&arrivals);
        prop_assert_eq!(fold(&events), fold(&events));
    }

    #[test]
    fn as_of_a_position_equals_folding_the_prefix((_, arrivals) in delivered(), cut in 0usize..40) {
        let events = events(&arrivals);
        let at = cut.min(events.len());
        let prefix = fold(&events[..at]);
        let all = (1..).map(meta).zip(events.iter());
        let as_of = PaymentProjection::fold_until(provider_id(), reference(), all, at as u64).view();
        prop_assert_eq!(as_of, prefix);
    }
}
