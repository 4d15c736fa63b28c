//! CI smoke test of the load generator: a couple of seconds of signed webhooks at low
//! concurrency against the real server (in-process, fresh data directory, provider registered
//! through the admin API), checking that the server accepted them and counts what the client
//! saw. No timing is asserted: benchmarks measure speed, tests do not.

use paystate_bench::load::{self, LoadPlan, SignedWebhooks, WebhookMix};
use paystate_bench::targets::{register_provider, BenchProvider, VippsStub};
use paystate_server::{AdminToken, ServerConfig};
use std::sync::Arc;
use std::time::Duration;

const ADMIN_TOKEN: &str = "smoke-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_accepted_and_counted_by_the_server() {
    let data = tempfile::tempdir().unwrap();
    let stub = VippsStub::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut config = ServerConfig::new(data.path(), address, AdminToken::new(ADMIN_TOKEN).unwrap());
    config.vipps_base_url = Some(stub.base_url().parse().unwrap());
    config.shutdown_grace = Duration::from_secs(5);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(paystate_server::run(listener, config, async {
        let _ = stopped.await;
    }));

    let provider = BenchProvider::default();
    let endpoint = register_provider(address, ADMIN_TOKEN, &stub, &provider)
        .await
        .unwrap();
    assert_eq!(stub.registrations().len(), 1, "one registration at Vipps");
    assert_eq!(
        endpoint.registered_url.as_str(),
        stub.registrations()[0].url
    );

    let source = SignedWebhooks {
        mix: WebhookMix::new(&provider.msn, "smoke"),
        endpoint,
    };
    let plan = LoadPlan {
        connections: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(2),
        rate: None,
    };
    let result = load::run(address, Arc::new(source), &plan).await.unwrap();

    let total = result.total;
    assert_eq!(
        total.failed, 0,
        "every signed webhook is answered 200: {total:?}"
    );
    assert_eq!(total.transport_errors, 0, "{total:?}");
    assert!(total.accepted > 0, "{total:?}");
    assert_eq!(
        total.ok, 0,
        "paystate says accepted or duplicate: {total:?}"
    );
    let sent: u64 = result.sent_per_connection.iter().sum();
    assert_eq!(total.acknowledged(), sent);

    // The provider view is a projection: it follows the log, so wait until it has applied
    // the last acknowledged delivery (or give up and show what it says).
    let counted = |view: &serde_json::Value| {
        (
            view["webhooks"]["accepted"].as_u64(),
            view["webhooks"]["duplicates"].as_u64(),
        )
    };
    let expected = (Some(total.accepted), Some(total.duplicates));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let view = loop {
        let (status, view) = paystate_bench::targets::http_client::call(
            address,
            http::Method::GET,
            &format!("/providers/{}", provider.id),
            Some(ADMIN_TOKEN),
            None,
        )
        .await
        .unwrap();
        assert_eq!(status, http::StatusCode::OK);
        if counted(&view) == expected || tokio::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(counted(&view), expected, "{view}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
