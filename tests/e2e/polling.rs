//! Payment polling (VIPPS.md §3: do not rely on webhooks alone): the real server against the
//! real simulator, whose deliveries are made to fail so that only a poll can learn a fact.

use paystate_e2e::server::read;
use paystate_e2e::sim::same_payment;
use paystate_e2e::{eventually, start_sim, Merchant, TestServer};
use paystate_server::registration::ReactorOptions;
use paystate_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use vipps_sim::SimHandle;

const ID: &str = "vipps-poll";
const MSN: &str = "654321";
const PATIENCE: Duration = Duration::from_secs(30);

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut request = server
        .client
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(&server.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, answer) = read(request.send().await.expect("admin request")).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// A server polling payments quiet for one second, with an enabled provider registered at
/// the simulator.
async fn start() -> (SimHandle, TestServer) {
    start_configured(|config| config.payment_poll_after = Some(Duration::from_secs(1))).await
}

/// [`start`] with the server's configuration changed by `configure`.
async fn start_configured(
    configure: impl FnOnce(&mut ServerConfig) + Send + 'static,
) -> (SimHandle, TestServer) {
    let sim = start_sim(Duration::from_secs(60)).await;
    let base = sim.base_url().parse().expect("a Vipps base URL");
    let server = TestServer::start_with(move |config| {
        config.vipps_base_url = Some(base);
        configure(config);
    })
    .await;
    let credentials = json!({"client_id": "poll-client", "client_secret": "poll-secret-93ac", "subscription_key": "poll-key-1b2e"});
    admin(
        &server,
        Method::POST,
        "/providers",
        Some(json!({"id": ID, "kind": "vipps", "environment": "test", "msn": MSN, "credentials": credentials})),
    )
    .await;
    admin(
        &server,
        Method::POST,
        &format!("/providers/{ID}/enable"),
        None,
    )
    .await;
    eventually("the webhook to be registered", PATIENCE, || async {
        let (status, view) = server.admin_get(&format!("/providers/{ID}")).await;
        (status == StatusCode::OK && !view["webhook"].is_null()).then_some(())
    })
    .await;
    (sim, server)
}

fn set_deliveries_failing(sim: &SimHandle, failing: bool) {
    let mut faults = sim.faults();
    faults.fail_first_attempts = if failing { u32::MAX } else { 0 };
    sim.set_faults(faults);
}

async fn payment(server: &TestServer, reference: &str) -> Option<Value> {
    let (status, view) = server
        .admin_get(&format!("/payments/{ID}/{reference}"))
        .await;
    (status == StatusCode::OK).then_some(view)
}

async fn facts(server: &TestServer, reference: &str) -> Vec<Value> {
    let (status, body) = server
        .admin_get(&format!("/payments/{ID}/{reference}/history"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|entry| entry["type"] == "payment_event_recorded")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_webhook_that_never_arrives_is_learnt_by_polling_and_its_late_delivery_is_a_duplicate() {
    let (sim, server) = start().await;
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    let reference = "acme-poll-0001";

    merchant.create_payment(reference, 10_000).await;
    eventually("CREATED to arrive by webhook", PATIENCE, || async {
        payment(&server, reference)
            .await
            .filter(|view| view["state"] == "CREATED")
    })
    .await;

    // From now on every delivery fails: the AUTHORIZED webhook does not arrive.
    set_deliveries_failing(&sim, true);
    merchant.approve(reference).await;
    let truth = merchant.payment(reference).await;
    let view = eventually("AUTHORIZED to be learnt by polling", PATIENCE, || async {
        payment(&server, reference)
            .await
            .filter(|view| view["state"] == "AUTHORIZED")
    })
    .await;
    assert!(same_payment(&view, &truth), "{view} vs {truth}");
    assert_eq!(view["duplicates"], 0, "{view}");
    let recorded = facts(&server, reference).await;
    let sources: Vec<(&str, &str)> = recorded
        .iter()
        .map(|fact| {
            (
                fact["data"]["name"].as_str().unwrap_or_default(),
                fact["data"]["source"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![("CREATED", "webhook"), ("AUTHORIZED", "poll")],
        "CREATED, polled every second since, is recorded once"
    );

    // Deliveries work again: the simulator's retry of AUTHORIZED is a duplicate of the
    // polled fact, and changes nothing else.
    set_deliveries_failing(&sim, false);
    let view = eventually(
        "the late AUTHORIZED to count as a duplicate",
        PATIENCE,
        || async {
            payment(&server, reference)
                .await
                .filter(|view| view["duplicates"] == 1)
        },
    )
    .await;
    assert_eq!(view["state"], "AUTHORIZED", "{view}");
    assert!(same_payment(&view, &truth), "{view} vs {truth}");
    assert_eq!(facts(&server, reference).await.len(), 2);

    server.stop().await;
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn settled_payments_are_not_polled() {
    let (sim, server) = start().await;
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    let reference = "acme-poll-0002";
    merchant.create_payment(reference, 5_000).await;
    merchant.approve(reference).await;
    merchant.capture(reference, 5_000).await;
    let truth = merchant.payment(reference).await;
    eventually("the capture to arrive by webhook", PATIENCE, || async {
        payment(&server, reference)
            .await
            .filter(|view| same_payment(view, &truth))
    })
    .await;
    // Fully captured: nothing changes without the merchant, so it is never polled. A refund
    // whose webhook fails therefore stays unknown (a poll would have found it).
    set_deliveries_failing(&sim, true);
    merchant.refund(reference, 1_000).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let view = payment(&server, reference).await.expect("the payment");
    assert_eq!(view["aggregate"]["refunded"], 0, "{view}");
    server.stop().await;
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn a_delivery_still_retried_when_the_secret_is_rotated_lands_on_the_kept_registration() {
    // The default handover, and no polling: only the old registration's retry can bring the
    // refund of this fully captured payment (see the test above).
    let (sim, server) = start_configured(|config| {
        config.registration.handover = ReactorOptions::default().handover;
        config.payment_poll_after = None;
    })
    .await;
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    let reference = "acme-poll-0003";
    merchant.create_payment(reference, 10_000).await;
    merchant.approve(reference).await;
    merchant.capture(reference, 10_000).await;
    let captured = merchant.payment(reference).await;
    eventually("the capture to arrive by webhook", PATIENCE, || async {
        payment(&server, reference)
            .await
            .filter(|view| same_payment(view, &captured))
    })
    .await;

    // The receiver is unreachable while the refund is made, and the secret is rotated
    // meanwhile: Vipps keeps retrying the refund on the old registration only.
    set_deliveries_failing(&sim, true);
    merchant.refund(reference, 4_000).await;
    admin(
        &server,
        Method::POST,
        &format!("/providers/{ID}/webhook/rotate"),
        None,
    )
    .await;
    eventually("the new registration to be recorded", PATIENCE, || async {
        let (_, view) = server.admin_get(&format!("/providers/{ID}")).await;
        (view["webhook"]["reason"] == "rotate").then_some(())
    })
    .await;
    // Longer than the two seconds the handover used to be.
    tokio::time::sleep(Duration::from_secs(3)).await;
    set_deliveries_failing(&sim, false);

    let refunded = merchant.payment(reference).await;
    let view = eventually("the retried refund to be recorded", PATIENCE, || async {
        payment(&server, reference)
            .await
            .filter(|view| same_payment(view, &refunded))
    })
    .await;
    assert_eq!(view["aggregate"]["refunded"], 4_000, "{view}");
    let (_, history) = server.admin_get(&format!("/providers/{ID}/history")).await;
    assert!(
        !history.to_string().contains("webhook_deleted"),
        "the superseded registration is kept for the handover: {history}"
    );
    server.stop().await;
    sim.shutdown().await.expect("stop the simulator");
}
