//! Every fault knob, through the library API and the control endpoint.

use std::time::{Duration, Instant};

use paystate_vipps::signature::RegisteredUrl;
use paystate_vipps::verify::RejectionKind;
use serde_json::{json, Value};
use vipps_sim::{AttemptOutcome, FailMode, Faults, RegistrationOrder};

use crate::support::{count, expect_problem, Receiver, Sim, ALL_EVENTS};

#[tokio::test]
async fn duplicates_deliver_every_event_several_times_all_verifiable() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        deliveries_per_event: 3,
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    let url = receiver.url("/dup");
    let (_, secret) = sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-dup-1", 100).await;
    let log = sim
        .await_log("three copies", |log| count(log, |r| r.delivered()) == 3)
        .await;
    let mut copies: Vec<u32> = log.iter().map(|r| r.copy).collect();
    copies.sort_unstable();
    assert_eq!(copies, [1, 2, 3]);
    let received = receiver.received();
    assert!(received.iter().all(|d| d.body == received[0].body));
    let registered = RegisteredUrl::parse(&url).unwrap();
    assert!(received
        .iter()
        .all(|d| d.verifies_with(&registered, &secret)));
}

#[tokio::test]
async fn reversed_registration_order_reaches_the_newest_registration_first() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        registration_order: RegistrationOrder::Reversed,
        registration_stagger: Duration::from_millis(300),
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    let (oldest, _) = sim.register(&receiver.url("/a"), &ALL_EVENTS).await;
    let (newest, _) = sim.register(&receiver.url("/b"), &ALL_EVENTS).await;
    sim.create_payment("order-across-1", 100).await;
    let log = sim
        .await_log("both registrations", |log| {
            count(log, |r| r.delivered()) == 2
        })
        .await;
    assert_eq!(log[0].registration_id, newest);
    assert_eq!(log[1].registration_id, oldest);
}

#[tokio::test]
async fn shuffled_registration_order_reaches_every_registration_in_varying_order() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        registration_order: RegistrationOrder::Shuffled,
        registration_stagger: Duration::from_millis(100),
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    let mut registered = Vec::new();
    for n in 0..6 {
        let (id, _) = sim
            .register(&receiver.url(&format!("/r{n}")), &ALL_EVENTS)
            .await;
        registered.push(id);
    }
    let references = ["order-shuffle-1", "order-shuffle-2", "order-shuffle-3"];
    for reference in references {
        sim.create_payment(reference, 100).await;
    }
    let log = sim
        .await_log("every copy", |log| count(log, |r| r.delivered()) == 18)
        .await;
    let orders: Vec<Vec<uuid::Uuid>> = references
        .iter()
        .map(|reference| {
            log.iter()
                .filter(|r| r.reference == *reference)
                .map(|r| r.registration_id)
                .collect()
        })
        .collect();
    for order in &orders {
        let mut reached = order.clone();
        reached.sort_unstable();
        let mut all = registered.clone();
        all.sort_unstable();
        assert_eq!(reached, all);
    }
    // Three shuffles of six all equal to the registration order: about 1 in 370 million.
    assert!(
        orders.iter().any(|order| *order != registered),
        "{orders:?}"
    );
}

#[tokio::test]
async fn reorder_within_a_payment_delivers_the_later_event_first() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        reorder_within_payment: Duration::from_secs(5),
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/reorder"), &ALL_EVENTS).await;
    sim.create_payment("order-reorder-1", 100).await;
    sim.approve("order-reorder-1").await;
    sim.await_log("both events", |log| count(log, |r| r.delivered()) == 2)
        .await;
    let names: Vec<String> = receiver.received().iter().map(|d| d.event().1).collect();
    assert_eq!(names, ["AUTHORIZED", "CREATED"]);
}

#[tokio::test]
async fn a_fixed_delay_holds_the_first_attempt_back() {
    let sim = Sim::start().await;
    let delay = Duration::from_millis(300);
    sim.handle.set_faults(Faults {
        delay,
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/slow"), &ALL_EVENTS).await;
    let before = Instant::now();
    sim.create_payment("order-delay-1", 100).await;
    sim.await_log("the delivery", |log| log.iter().any(|r| r.delivered()))
        .await;
    let received = receiver.received();
    assert!(received[0].at.duration_since(before) >= delay);
}

#[tokio::test]
async fn unreachable_first_attempts_are_not_sent_and_then_retried() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        fail_first_attempts: 2,
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/flaky"), &ALL_EVENTS).await;
    sim.create_payment("order-unreach-1", 100).await;
    let log = sim
        .await_log("the delivery", |log| log.iter().any(|r| r.delivered()))
        .await;
    let outcomes: Vec<(u32, AttemptOutcome)> =
        log.iter().map(|r| (r.attempt, r.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        [
            (1, AttemptOutcome::NotSent),
            (2, AttemptOutcome::NotSent),
            (3, AttemptOutcome::Answered { status: 200 }),
        ]
    );
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn lost_answers_make_the_receiver_see_the_event_again() {
    let sim = Sim::start().await;
    sim.handle.set_faults(Faults {
        fail_first_attempts: 1,
        fail_mode: FailMode::AnswerLost,
        ..Faults::default()
    });
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/lost"), &ALL_EVENTS).await;
    sim.create_payment("order-lost-1", 100).await;
    let log = sim
        .await_log("the delivery", |log| log.iter().any(|r| r.delivered()))
        .await;
    assert_eq!(log[0].outcome, AttemptOutcome::AnswerLost { status: 200 });
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn a_wrong_secret_fails_verification_until_the_knob_is_turned_off_over_http() {
    let sim = Sim::start().await;
    let control = |body: Value| sim.http.post(sim.url("/_sim/faults")).json(&body).send();
    assert_eq!(
        control(json!({ "sign_with_wrong_secret": true }))
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(sim.handle.faults().sign_with_wrong_secret);
    let receiver = Receiver::accepting().await;
    let url = receiver.url("/wrong");
    let (_, secret) = sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-wrong-1", 100).await;
    sim.await_log("the first delivery", |log| log.len() == 1)
        .await;
    control(json!({})).await.unwrap();
    sim.approve("order-wrong-1").await;
    let log = sim
        .await_log("the second delivery", |log| log.len() == 2)
        .await;
    assert_eq!((log[0].wrong_secret, log[1].wrong_secret), (true, false));

    let registered = RegisteredUrl::parse(&url).unwrap();
    let received = receiver.received();
    let rejection = received[0].verify(&registered, &secret).unwrap_err();
    assert!(
        matches!(rejection.kind(), RejectionKind::SignatureMismatch { .. }),
        "{rejection:?}"
    );
    assert!(received[1].verifies_with(&registered, &secret));
}

#[tokio::test]
async fn control_endpoints_show_faults_deliveries_registrations_and_stats() {
    let sim = Sim::start().await;
    let bad = sim
        .http
        .post(sim.url("/_sim/faults"))
        .json(&json!({ "no_such_knob": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set: Value = sim
        .http
        .post(sim.url("/_sim/faults"))
        .json(&json!({ "deliveries_per_event": 2, "delay_ms": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["deliveries_per_event"], 2);
    let current: Value = sim.get_json("/_sim/faults").await;
    assert_eq!(current, set);

    let receiver = Receiver::accepting().await;
    let (id, secret) = sim.register(&receiver.url("/ctl"), &ALL_EVENTS).await;
    sim.create_payment("order-control-1", 100).await;
    sim.await_log("two copies", |log| count(log, |r| r.delivered()) == 2)
        .await;

    let deliveries: Value = sim.get_json("/_sim/deliveries?since=1").await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["seq"], 1);
    assert_eq!(deliveries[0]["registration_id"], id.to_string());
    assert_eq!(deliveries[0]["event"], "CREATED");
    assert_eq!(
        deliveries[0]["outcome"],
        json!({ "kind": "answered", "status": 200 })
    );

    let registrations = sim
        .http
        .get(sim.url("/_sim/registrations"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(registrations.contains(&id.to_string()));
    assert!(!registrations.contains(secret.expose()));

    let stats: Value = sim.get_json("/_sim/stats").await;
    assert_eq!(stats["registrations"], 1);
    assert_eq!(stats["payments"], 1);
    assert_eq!(stats["events"], 1);
    assert_eq!(stats["delivered"], 2);
    assert_eq!(stats["pending"], 0);
}

#[tokio::test]
async fn a_declined_operation_emits_its_event_with_success_false_and_moves_no_money() {
    let sim = Sim::start().await;
    let receiver = Receiver::accepting().await;
    sim.register(
        &receiver.url("/declines"),
        &["epayments.payment.captured.v1"],
    )
    .await;
    sim.create_payment("order-decline-1", 1000).await;
    sim.approve("order-decline-1").await;
    sim.handle.set_faults(Faults {
        decline_operations: 1,
        ..Faults::default()
    });
    let declined = sim
        .modify("order-decline-1", "capture", 300, "capture-key")
        .await;
    expect_problem(declined, 400).await;
    assert_eq!(sim.handle.faults().decline_operations, 0);
    let payment = sim.payment("order-decline-1").await;
    assert_eq!(payment["aggregate"]["capturedAmount"]["value"], 0);
    let retried = sim
        .modify("order-decline-1", "capture", 300, "capture-key")
        .await;
    assert_eq!(retried.status(), 200);

    sim.await_log("both capture events", |log| {
        count(log, |r| r.delivered()) == 2
    })
    .await;
    let bodies: Vec<Value> = receiver.received().iter().map(|d| d.json()).collect();
    assert_eq!(
        (bodies[0]["success"].clone(), bodies[1]["success"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(bodies[0]["amount"]["value"], 300);
    assert_ne!(bodies[0]["pspReference"], bodies[1]["pspReference"]);
    assert_eq!(
        sim.payment("order-decline-1").await["aggregate"]["capturedAmount"]["value"],
        300
    );
}

#[tokio::test]
async fn absurd_knob_values_hold_deliveries_back_without_breaking_anything() {
    let sim = Sim::start().await;
    let set = sim
        .http
        .post(sim.url("/_sim/faults"))
        .json(&json!({
            "delay_ms": u64::MAX,
            "delay_jitter_ms": u64::MAX,
            "registration_stagger_ms": u64::MAX,
            "reorder_within_payment_ms": u64::MAX,
            "deliveries_per_event": 0,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/a"), &ALL_EVENTS).await;
    sim.register(&receiver.url("/b"), &ALL_EVENTS).await;
    assert_eq!(
        sim.create_payment("order-absurd-1", 100).await.status(),
        201
    );
    assert_eq!(sim.approve("order-absurd-1").await.status(), 200);
    assert_eq!(sim.payment("order-absurd-1").await["state"], "AUTHORIZED");
    // Zero copies means one: two events to two registrations, all still waiting.
    assert_eq!(sim.handle.stats().pending, 4);
    assert!(
        !sim.handle
            .wait_for_idle(std::time::Duration::from_millis(50))
            .await
    );
}
