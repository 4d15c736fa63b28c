//! Webhook delivery: signatures, headers, body shape, retries, per-payment order and hold-back,
//! deletion.

use std::num::NonZeroUsize;
use std::time::Duration;

use axum::http::StatusCode;
use paystate_vipps::payload::EpaymentEvent;
use paystate_vipps::signature::RegisteredUrl;
use reqwest::Method;
use vipps_sim::{AttemptOutcome, Faults, RetrySchedule, SimConfig};

use crate::support::{count, Receiver, Sim, ALL_EVENTS, MSN, PATIENCE};

#[tokio::test]
async fn deliveries_carry_the_compact_body_and_verify_with_the_registration_secret() {
    let sim = Sim::start().await;
    let receiver = Receiver::accepting().await;
    let url = receiver.url("/hooks/vipps/v1?tenant=acme-42");
    let (id, secret) = sim.register(&url, &ALL_EVENTS).await;
    let reference = "order-deliver-1";
    sim.create_payment(reference, 49900).await;
    sim.approve(reference).await;
    sim.modify(reference, "capture", 49900, "capture-key").await;
    sim.await_log("three deliveries", |log| count(log, |r| r.delivered()) == 3)
        .await;

    let registered = RegisteredUrl::parse(&url).unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for delivery in &received {
        assert!(delivery.verifies_with(&registered, &secret), "{delivery:?}");
        assert_eq!(delivery.path_and_query, "/hooks/vipps/v1?tenant=acme-42");
        assert_eq!(delivery.header("webhook-id"), id.to_string());
        assert_eq!(
            delivery.header("authorization"),
            delivery.header("x-vipps-authorization")
        );
        assert_eq!(delivery.header("content-type"), "application/json");
        let body = std::str::from_utf8(&delivery.body).unwrap();
        let keys = [
            "\"msn\":",
            "\"reference\":",
            "\"pspReference\":",
            "\"name\":",
            "\"amount\":",
            "\"timestamp\":",
            "\"idempotencyKey\":",
            "\"success\":",
        ];
        let positions: Vec<usize> = keys.iter().map(|key| body.find(key).unwrap()).collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{body}");
        assert!(body.starts_with(&format!(
            "{{\"msn\":\"{MSN}\",\"reference\":\"{reference}\""
        )));
        assert!(!body.contains(' ') && !body.contains('\n'));
        let parsed = EpaymentEvent::parse(delivery.body.clone()).unwrap();
        assert_eq!(
            (parsed.msn.as_str(), parsed.reference.as_str()),
            (MSN, reference)
        );
        assert_eq!(parsed.success, Some(true));
    }
    let names: Vec<String> = received.iter().map(|d| d.event().1).collect();
    assert_eq!(names, ["CREATED", "AUTHORIZED", "CAPTURED"]);
    assert_eq!(received[2].json()["idempotencyKey"], "capture-key");
    assert_eq!(received[2].json()["amount"]["value"], 49900);
}

#[tokio::test]
async fn each_registration_gets_its_own_copy_signed_with_its_own_secret() {
    let sim = Sim::start().await;
    let receiver = Receiver::accepting().await;
    let url = receiver.url("/hooks/vipps");
    let (first_id, first_secret) = sim.register(&url, &ALL_EVENTS).await;
    let (second_id, second_secret) = sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-copies-1", 100).await;
    sim.await_log("two deliveries", |log| count(log, |r| r.delivered()) == 2)
        .await;
    let registered = RegisteredUrl::parse(&url).unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    for delivery in &received {
        let webhook_id = delivery.header("webhook-id");
        let (own, other) = if webhook_id == first_id.to_string() {
            (&first_secret, &second_secret)
        } else {
            assert_eq!(webhook_id, second_id.to_string());
            (&second_secret, &first_secret)
        };
        assert!(delivery.verifies_with(&registered, own));
        assert!(!delivery.verifies_with(&registered, other));
    }
    assert_ne!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
}

#[tokio::test]
async fn only_subscribed_event_types_are_delivered() {
    let sim = Sim::start().await;
    let receiver = Receiver::accepting().await;
    sim.register(
        &receiver.url("/captures"),
        &["epayments.payment.captured.v1"],
    )
    .await;
    sim.create_payment("order-filter-1", 100).await;
    sim.approve("order-filter-1").await;
    sim.modify("order-filter-1", "capture", 100, "k").await;
    assert!(sim.handle.wait_for_idle(PATIENCE).await);
    let log = sim.handle.deliveries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event, "CAPTURED");
    assert!(log[0].delivered());
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_a_new_date_over_the_same_body() {
    // x-ms-date has one-second resolution, so the retry waits a little over a second.
    let sim = Sim::start_with(SimConfig {
        retry: RetrySchedule {
            backoff: vec![Duration::from_millis(1100)],
            give_up_after: Duration::from_secs(30),
        },
        ..SimConfig::for_tests()
    })
    .await;
    let receiver = Receiver::answering(|_, earlier| {
        if earlier.is_empty() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    })
    .await;
    let url = receiver.url("/retry");
    let (_, secret) = sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-retry-1", 100).await;
    let log = sim
        .await_log("a delivered retry", |log| log.iter().any(|r| r.delivered()))
        .await;
    assert_eq!(log[0].outcome, AttemptOutcome::Answered { status: 503 });
    assert_eq!((log[0].attempt, log[1].attempt), (1, 2));
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body);
    assert_ne!(
        received[0].header("x-ms-date"),
        received[1].header("x-ms-date")
    );
    assert_ne!(
        received[0].header("authorization"),
        received[1].header("authorization")
    );
    let registered = RegisteredUrl::parse(&url).unwrap();
    assert!(received
        .iter()
        .all(|d| d.verifies_with(&registered, &secret)));
}

#[tokio::test]
async fn a_failing_event_holds_back_its_payment_but_not_other_payments() {
    let sim = Sim::start().await;
    // The first payment's CREATED is refused until the second payment's AUTHORIZED arrived:
    // only possible if the second payment is not stuck behind the first.
    let receiver = Receiver::answering(|request, earlier| {
        let second_authorized = earlier
            .iter()
            .any(|d| d.event() == ("order-second-1".into(), "AUTHORIZED".into()));
        if request.event() == ("order-first-1".into(), "CREATED".into()) && !second_authorized {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    })
    .await;
    sim.register(&receiver.url("/order"), &ALL_EVENTS).await;
    sim.create_payment("order-first-1", 100).await;
    sim.approve("order-first-1").await;
    sim.create_payment("order-second-1", 100).await;
    sim.approve("order-second-1").await;
    sim.await_log("all four delivered", |log| {
        count(log, |r| r.delivered()) == 4
    })
    .await;

    let received: Vec<(String, String)> = receiver.received().iter().map(|d| d.event()).collect();
    let position = |reference: &str, name: &str| {
        received
            .iter()
            .position(|e| e.0 == reference && e.1 == name)
            .unwrap()
    };
    let first_created = received
        .iter()
        .rposition(|e| e.0 == "order-first-1" && e.1 == "CREATED")
        .unwrap();
    assert!(position("order-first-1", "AUTHORIZED") > first_created);
    assert!(position("order-second-1", "AUTHORIZED") < first_created);
    assert!(count(&sim.handle.deliveries(), |r| !r.delivered()) >= 1);
}

#[tokio::test]
async fn deleting_a_registration_stops_its_deliveries() {
    let sim = Sim::start().await;
    let receiver = Receiver::answering(|_, _| StatusCode::BAD_GATEWAY).await;
    let (id, _) = sim.register(&receiver.url("/gone"), &ALL_EVENTS).await;
    sim.create_payment("order-delete-1", 100).await;
    sim.approve("order-delete-1").await;
    sim.await_log("two failed attempts", |log| log.len() >= 2)
        .await;
    let deleted = sim
        .call(Method::DELETE, &format!("/webhooks/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let log = sim
        .await_log("both deliveries dropped", |log| {
            count(log, |r| r.outcome == AttemptOutcome::RegistrationDeleted) == 2
        })
        .await;
    let dropped_at = log
        .iter()
        .position(|r| r.outcome == AttemptOutcome::RegistrationDeleted)
        .unwrap();
    assert!(log[dropped_at..]
        .iter()
        .all(|r| r.outcome == AttemptOutcome::RegistrationDeleted));
    assert!(count(&log, |r| r.event == "AUTHORIZED" && r.x_ms_date.is_some()) == 0);
    assert_eq!(sim.handle.stats().pending, 0);
}

#[tokio::test]
async fn a_delivery_failing_past_the_schedule_is_given_up() {
    let sim = Sim::start_with(SimConfig {
        retry: RetrySchedule {
            backoff: vec![Duration::from_millis(5)],
            give_up_after: Duration::from_millis(40),
        },
        ..SimConfig::for_tests()
    })
    .await;
    // Nothing listens on this port once the listener is dropped: connection refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/nobody", closed.local_addr().unwrap());
    drop(closed);
    sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-giveup-1", 100).await;
    let log = sim
        .await_log("giving up", |log| {
            log.iter().any(|r| r.outcome == AttemptOutcome::GaveUp)
        })
        .await;
    assert!(log.len() >= 2);
    assert!(matches!(log[0].outcome, AttemptOutcome::Failed { .. }));
    assert_eq!(sim.handle.stats().pending, 0);
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_retried() {
    let sim = Sim::start_with(SimConfig {
        delivery_timeout: Duration::from_millis(200),
        ..SimConfig::for_tests()
    })
    .await;
    // Accepts connections and never answers; the held streams keep them open.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/silent", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    sim.register(&url, &ALL_EVENTS).await;
    sim.create_payment("order-silent-1", 100).await;
    let log = sim
        .await_log("two timed-out attempts", |log| log.len() >= 2)
        .await;
    for (index, record) in log.iter().take(2).enumerate() {
        assert_eq!(record.attempt, index as u32 + 1);
        assert_eq!(
            record.outcome,
            AttemptOutcome::Failed {
                error: "timeout".into()
            }
        );
    }
}

#[tokio::test]
async fn the_delivery_log_keeps_only_the_most_recent_records_and_counts_the_rest() {
    let sim = Sim::start_with(SimConfig {
        delivery_log_capacity: NonZeroUsize::new(3).unwrap(),
        faults: Faults {
            deliveries_per_event: 5,
            ..Faults::default()
        },
        ..SimConfig::for_tests()
    })
    .await;
    let receiver = Receiver::accepting().await;
    sim.register(&receiver.url("/bounded"), &ALL_EVENTS).await;
    sim.create_payment("order-bounded-1", 100).await;
    sim.create_payment("order-bounded-2", 100).await;

    let mut longest = 0;
    let log = sim
        .await_log("the tenth record", |log| {
            longest = longest.max(log.len());
            log.last().is_some_and(|record| record.seq == 9)
        })
        .await;
    assert!(longest <= 3, "the log held {longest} records");
    let seqs: Vec<u64> = log.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [7, 8, 9]);
    assert_eq!(receiver.received().len(), 10);

    let stats = sim.handle.stats();
    assert_eq!(
        (stats.attempts, stats.delivered, stats.log_discarded),
        (10, 10, 7),
        "{stats:?}"
    );
    let tail: serde_json::Value = sim.get_json("/_sim/deliveries?since=8").await;
    let tail: Vec<&serde_json::Value> = tail.as_array().unwrap().iter().collect();
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0]["seq"], 8);
    let stats: serde_json::Value = sim.get_json("/_sim/stats").await;
    assert_eq!(stats["log_discarded"], 7);
}
