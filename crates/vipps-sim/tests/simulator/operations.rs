//! ePayment: validation, the state model's refusals, idempotency and PSP references.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{expect_problem, Sim, MSN};

fn nok(value: u64) -> Value {
    json!({ "currency": "NOK", "value": value })
}

#[tokio::test]
async fn create_validates_reference_amount_currency_and_flow() {
    let sim = Sim::start().await;
    let valid = json!({
        "amount": nok(1000),
        "paymentMethod": { "type": "WALLET" },
        "reference": "order-valid-1",
        "userFlow": "PUSH_MESSAGE",
        "customer": { "phoneNumber": "4712345678" },
    });
    let broken = |pointer: &str, value: Value| {
        let mut body = valid.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (broken("/reference", json!("short")), "reference"),
        (broken("/reference", json!("has space in it")), "reference"),
        (broken("/amount/currency", json!("SEK")), "amount.currency"),
        (broken("/amount/value", json!(0)), "amount.value"),
        (broken("/amount/value", json!(-5)), "amount.value"),
        (broken("/amount/value", json!(10.5)), "amount.value"),
        (broken("/userFlow", json!("TELEPATHY")), "userFlow"),
        (broken("/userFlow", json!("WEB_REDIRECT")), "returnUrl"),
        (
            broken("/paymentMethod/type", json!("CASH")),
            "paymentMethod.type",
        ),
    ];
    for (index, (body, field)) in cases.into_iter().enumerate() {
        let answer = sim
            .call(Method::POST, "/epayment/v1/payments")
            .header("Idempotency-Key", format!("invalid-{index}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(answer, 400).await;
        assert_eq!(problem["extraDetails"][0]["name"], field, "{body}");
    }
    let no_key = sim
        .call(Method::POST, "/epayment/v1/payments")
        .json(&valid)
        .send()
        .await
        .unwrap();
    expect_problem(no_key, 400).await;
    let created = sim
        .call(Method::POST, "/epayment/v1/payments")
        .header("Idempotency-Key", "valid")
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["reference"], "order-valid-1");
    assert!(body["redirectUrl"].is_string());
    let mut card = valid.clone();
    card["reference"] = json!("order-card-1");
    card["paymentMethod"]["type"] = json!("CARD");
    let created = sim
        .call(Method::POST, "/epayment/v1/payments")
        .header("Idempotency-Key", "card")
        .json(&card)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let payment = sim.payment("order-card-1").await;
    assert_eq!(payment["paymentMethod"]["type"], "CARD");
    assert_eq!(payment["state"], "CREATED");
    assert_eq!(payment["amount"], nok(1000));
    assert_eq!(sim.handle.stats().payments, 2);
}

#[tokio::test]
async fn create_is_idempotent_and_a_reused_reference_conflicts() {
    let sim = Sim::start().await;
    let first = sim.create_payment("order-idem-1", 1000).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let repeat = sim.create_payment("order-idem-1", 1000).await;
    assert_eq!(repeat.status(), 201);
    assert_eq!(repeat.json::<Value>().await.unwrap(), first);
    let events: Value = sim
        .call(Method::GET, "/epayment/v1/payments/order-idem-1/events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1);

    let reuse = sim
        .call(Method::POST, "/epayment/v1/payments")
        .header("Idempotency-Key", "a-different-key")
        .json(&json!({
            "amount": nok(5), "paymentMethod": { "type": "WALLET" },
            "reference": "order-idem-1", "userFlow": "QR",
        }))
        .send()
        .await
        .unwrap();
    expect_problem(reuse, 409).await;
}

#[tokio::test]
async fn money_operations_follow_the_state_model() {
    let sim = Sim::start().await;
    let reference = "order-rules-1";
    assert_eq!(sim.create_payment(reference, 1000).await.status(), 201);
    expect_problem(sim.modify(reference, "capture", 100, "early").await, 400).await;
    assert_eq!(sim.approve(reference).await.status(), 200);
    expect_problem(sim.approve(reference).await, 400).await;

    let too_much = sim.modify(reference, "capture", 1001, "too-much").await;
    let problem = expect_problem(too_much, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("1001"));
    let captured = sim.modify(reference, "capture", 600, "capture-1").await;
    assert_eq!(captured.status(), 200);
    let captured: Value = captured.json().await.unwrap();
    assert_eq!(captured["aggregate"]["capturedAmount"], nok(600));
    assert_eq!(captured["state"], "AUTHORIZED");

    expect_problem(
        sim.modify(reference, "refund", 601, "refund-too-much")
            .await,
        400,
    )
    .await;
    assert_eq!(
        sim.modify(reference, "refund", 200, "refund-1")
            .await
            .status(),
        200
    );

    let cancelled = sim.cancel(reference, "cancel-1").await;
    assert_eq!(cancelled.status(), 200);
    expect_problem(
        sim.modify(reference, "capture", 1, "after-cancel").await,
        400,
    )
    .await;
    expect_problem(sim.cancel(reference, "cancel-2").await, 400).await;

    let payment = sim.payment(reference).await;
    assert_eq!(payment["state"], "AUTHORIZED");
    assert_eq!(
        payment["aggregate"],
        json!({
            "authorizedAmount": nok(1000),
            "capturedAmount": nok(600),
            "refundedAmount": nok(200),
            "cancelledAmount": nok(400),
        })
    );
    let wrong_currency = sim
        .call(
            Method::POST,
            &format!("/epayment/v1/payments/{reference}/refund"),
        )
        .header("Idempotency-Key", "euros")
        .json(&json!({ "modificationAmount": { "currency": "EUR", "value": 1 } }))
        .send()
        .await
        .unwrap();
    expect_problem(wrong_currency, 400).await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_answer_without_a_second_effect() {
    let sim = Sim::start().await;
    let reference = "order-idem-2";
    sim.create_payment(reference, 1000).await;
    sim.approve(reference).await;
    let first: Value = sim
        .modify(reference, "capture", 300, "same-key")
        .await
        .json()
        .await
        .unwrap();
    let second = sim.modify(reference, "capture", 300, "same-key").await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(
        sim.payment(reference).await["aggregate"]["capturedAmount"],
        nok(300)
    );
    let other_key = sim.modify(reference, "capture", 300, "other-key").await;
    assert_eq!(other_key.status(), 200);
    assert_eq!(
        sim.payment(reference).await["aggregate"]["capturedAmount"],
        nok(600)
    );
}

#[tokio::test]
async fn every_operation_has_its_own_psp_reference_and_event() {
    let sim = Sim::start().await;
    let reference = "order-events-1";
    sim.create_payment(reference, 1000).await;
    sim.approve(reference).await;
    sim.modify(reference, "capture", 400, "c1").await;
    sim.modify(reference, "capture", 100, "c2").await;
    sim.modify(reference, "refund", 50, "r1").await;
    sim.cancel(reference, "x1").await;
    let events: Value = sim
        .call(
            Method::GET,
            &format!("/epayment/v1/payments/{reference}/events"),
        )
        .header("Idempotency-Key", "get-events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events.as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "CREATED",
            "AUTHORIZED",
            "CAPTURED",
            "CAPTURED",
            "REFUNDED",
            "CANCELLED"
        ]
    );
    let amounts: Vec<u64> = events
        .iter()
        .map(|e| e["amount"]["value"].as_u64().unwrap())
        .collect();
    assert_eq!(amounts, [1000, 1000, 400, 100, 50, 500]);
    let mut psp: Vec<&str> = events
        .iter()
        .map(|e| e["pspReference"].as_str().unwrap())
        .collect();
    psp.sort_unstable();
    psp.dedup();
    assert_eq!(psp.len(), events.len());
    assert_eq!(events[2]["idempotencyKey"], "c1");
    assert!(events
        .iter()
        .all(|e| e["success"] == true && e["reference"] == reference));
}

#[tokio::test]
async fn cancel_before_approval_terminates_and_user_actions_end_created_payments() {
    let sim = Sim::start().await;
    sim.create_payment("order-term-1", 700).await;
    assert_eq!(sim.cancel("order-term-1", "t1").await.status(), 200);
    let payment = sim.payment("order-term-1").await;
    assert_eq!(payment["state"], "TERMINATED");
    assert_eq!(payment["aggregate"]["cancelledAmount"], nok(700));
    assert_eq!(payment["aggregate"]["authorizedAmount"], nok(0));
    expect_problem(sim.approve("order-term-1").await, 400).await;

    for (reference, action, state) in [
        ("order-abort-1", "abort", "ABORTED"),
        ("order-expire-1", "expire", "EXPIRED"),
    ] {
        sim.create_payment(reference, 100).await;
        let acted = sim
            .http
            .post(sim.url(&format!("/_sim/payments/{MSN}/{reference}/{action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(acted.status(), 200);
        assert_eq!(sim.payment(reference).await["state"], state);
    }
    let unknown = sim
        .call(Method::GET, "/epayment/v1/payments/no-such-order")
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 404).await;
}
