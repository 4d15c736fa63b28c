//! Against the simulator: deliveries with duplicates and reordering, and a kill -9 of the real
//! binary under traffic. Every payment view must end equal to the simulator's own state.

use paystate_e2e::child::free_port;
use paystate_e2e::sim::same_payment;
use paystate_e2e::{eventually, seed_provider, start_sim, ChildServer, Merchant, TestServer};
use paystate_server::secrets::{MasterKey, SecretVault};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use vipps_sim::{Faults, SimHandle};

const MSN: &str = "654321";

/// A realistic mix: captured and refunded, cancelled, still open.
async fn run_story(merchant: &Merchant, reference: &str, index: usize) {
    merchant.create_payment(reference, 10_000).await;
    match index % 3 {
        0 => {
            merchant.approve(reference).await;
            merchant.capture(reference, 4_000).await;
            merchant.capture(reference, 2_000).await;
            merchant.refund(reference, 1_500).await;
        }
        1 => {
            merchant.approve(reference).await;
            merchant.cancel(reference).await;
        }
        _ => {}
    }
}

/// Waits until paystate's view of every payment equals the simulator's.
async fn converge(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    merchant: &Merchant,
    references: &[String],
) {
    for reference in references {
        let truth = merchant.payment(reference).await;
        let url = format!("{base_url}/payments/seeded/{reference}");
        eventually(
            &format!("{reference} to match the simulator"),
            Duration::from_secs(60),
            || {
                let (client, url, truth) = (client.clone(), url.clone(), truth.clone());
                async move {
                    let response = client.get(&url).bearer_auth(token).send().await.ok()?;
                    let view: Value = response.json().await.ok()?;
                    same_payment(&view, &truth).then_some(())
                }
            },
        )
        .await;
    }
}

/// Waits until every delivery the simulator made was accepted by the receiver.
async fn all_delivered(sim: &SimHandle) -> Vec<vipps_sim::DeliveryRecord> {
    sim.wait_for_deliveries(Duration::from_secs(60), |log| {
        let mut ids: Vec<u64> = log.iter().map(|record| record.delivery_id).collect();
        ids.sort_unstable();
        ids.dedup();
        !ids.is_empty()
            && ids
                .iter()
                .all(|id| log.iter().any(|r| r.delivery_id == *id && r.delivered()))
    })
    .await
    .expect("every delivery accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_reordering_from_the_simulator_end_in_its_state() {
    let sim = start_sim(Duration::from_secs(30)).await;
    sim.set_faults(Faults {
        deliveries_per_event: 2,
        reorder_within_payment: Duration::from_millis(20),
        ..Faults::default()
    });
    let server = TestServer::start_with({
        let base = sim.base_url();
        move |config| config.vipps_base_url = base.parse().ok()
    })
    .await;
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    let (registration_id, secret) = merchant
        .register_webhook(&server.webhook_url("seeded"))
        .await;
    seed_provider(
        server.store.as_ref(),
        &server.vault,
        "seeded",
        MSN,
        &server.base_url,
        &registration_id,
        &secret,
    )
    .await;

    let references: Vec<String> = (0..6).map(|i| format!("dup-order-{i:03}")).collect();
    for (index, reference) in references.iter().enumerate() {
        run_story(&merchant, reference, index).await;
    }
    let log = all_delivered(&sim).await;
    assert!(
        log.iter().any(|record| record.copy == 2),
        "the simulator sent duplicates"
    );
    converge(
        &server.client,
        &server.base_url,
        &server.admin_token,
        &merchant,
        &references,
    )
    .await;

    for reference in &references {
        // The state can match before the last event's second copy has arrived: wait for it.
        let path = format!("/payments/seeded/{reference}");
        let view = eventually(
            &format!("{reference}: every event to come twice"),
            Duration::from_secs(60),
            || async {
                let (_, view) = server.admin_get(&path).await;
                let events = view["events"].as_u64()?;
                (view["duplicates"].as_u64() == Some(events)).then_some(view)
            },
        )
        .await;
        assert_eq!(
            view["anomalies"],
            serde_json::json!([]),
            "{reference}: {view}"
        );
    }
    server.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_traffic_loses_nothing_and_the_log_verifies() {
    let sim = Arc::new(start_sim(Duration::from_secs(120)).await);
    let data = tempfile::tempdir().expect("data directory");
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let token = paystate_server::AdminToken::generate().expose().to_owned();
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;

    // Seed offline: the child opens the store afterwards (sled allows one process at a time).
    {
        let (master_key, _) = MasterKey::load_or_generate(data.path()).expect("master key");
        let store = paystate_server::store::open(data.path()).expect("open the store");
        let vault = SecretVault::open(store.clone(), master_key).expect("vault");
        let (registration_id, secret) = merchant
            .register_webhook(&format!("{base_url}/webhooks/vipps/seeded"))
            .await;
        seed_provider(
            store.as_ref(),
            &vault,
            "seeded",
            MSN,
            &base_url,
            &registration_id,
            &secret,
        )
        .await;
        drop(vault);
        store.close().await.expect("close the store");
    }

    let child = ChildServer::spawn(data.path(), port, &sim.base_url(), &token).await;
    let references: Vec<String> = (0..12).map(|i| format!("crash-order-{i:03}")).collect();
    let traffic = {
        let (merchant, references) = (merchant.clone(), references.clone());
        tokio::spawn(async move {
            for (index, reference) in references.iter().enumerate() {
                run_story(&merchant, reference, index).await;
            }
        })
    };
    // Kill once a few deliveries have been acknowledged, with more still coming.
    sim.wait_for_deliveries(Duration::from_secs(30), |log| {
        log.iter().filter(|r| r.delivered()).count() >= 5
    })
    .await
    .expect("deliveries before the kill");
    child.kill9();
    traffic.await.expect("the merchant's traffic");

    let child = ChildServer::spawn(data.path(), port, &sim.base_url(), &token).await;
    all_delivered(&sim).await;
    let client = reqwest::Client::new();
    converge(&client, &base_url, &token, &merchant, &references).await;
    child.terminate();

    let store = paystate_server::store::open(data.path()).expect("reopen the store");
    let report = store.verify().expect("verify");
    assert_eq!(report.first_bad, None, "the hash chain verifies");
    assert!(report.events > 0);
    // The persisted projections equal a fresh rebuild of the same log.
    let persisted = paystate_projections::ProjectionsHandle::open(store.as_ref())
        .expect("persisted projections");
    paystate_projections::catch_up(&persisted, store.as_ref()).expect("catch up");
    let rebuilt = paystate_projections::rebuild(store.as_ref()).expect("rebuild");
    assert_eq!(
        persisted.snapshot().differences(&rebuilt),
        Vec::<String>::new()
    );
    store.close().await.expect("close");
}
