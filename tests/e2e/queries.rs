//! Query routes: the log (`/events`), the payment listing, the OpenAPI document and metrics.

use crate::ingestion::{Fixture, MSN};
use base64::Engine as _;
use paystate_e2e::webhook::event_body;
use reqwest::StatusCode;

#[tokio::test]
async fn the_log_pages_and_a_receipt_can_be_re_verified() {
    let fx = Fixture::start().await;
    let body = event_body(MSN, "acme-order-9001", "psp-1", "CREATED", 100);
    let (_, ack) = fx.deliver(&body).await;
    let fact_position = ack["position"].as_u64().expect("position");

    let (status, first) = fx.server.admin_get("/events?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["next"], 2);
    let (_, rest) = fx.server.admin_get("/events?after=2&limit=100").await;
    assert_eq!(rest["next"], serde_json::Value::Null, "the last page");
    let positions: Vec<u64> = first["events"]
        .as_array()
        .into_iter()
        .chain(rest["events"].as_array())
        .flatten()
        .filter_map(|event| event["position"].as_u64())
        .collect();
    assert_eq!(
        positions,
        (1..=fx.server.head()).collect::<Vec<_>>(),
        "gapless, in order"
    );

    // The receipt just before the fact holds the raw body, the signed headers and the result.
    let (status, receipt) = fx
        .server
        .admin_get(&format!("/events/{}", fact_position - 1))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["type"], "webhook_received");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(receipt["data"]["body_base64"].as_str().expect("body"))
        .expect("base64");
    assert_eq!(raw, body);
    let signed = &receipt["data"]["signed"];
    assert_eq!(signed["host"], fx.provider.url.host_for_signing());
    assert_eq!(signed["path_and_query"], fx.provider.url.path_and_query());
    assert_eq!(receipt["data"]["verification"]["secret_version"], 1);
    assert_eq!(receipt["hash"].as_str().map(str::len), Some(64));

    let (status, missing) = fx.server.admin_get("/events/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "unknown_event");
    fx.server.stop().await;
}

#[tokio::test]
async fn payments_are_listed_by_first_appearance_with_filters_and_a_cursor() {
    let fx = Fixture::start().await;
    for (index, name) in ["CREATED", "AUTHORIZED", "CREATED", "AUTHORIZED", "CREATED"]
        .iter()
        .enumerate()
    {
        let reference = format!("list-order-{index}");
        fx.deliver(&event_body(MSN, &reference, "psp-1", "CREATED", 100))
            .await;
        if *name == "AUTHORIZED" {
            fx.deliver(&event_body(MSN, &reference, "psp-1", "AUTHORIZED", 100))
                .await;
        }
    }
    let references = |page: &serde_json::Value| -> Vec<String> {
        page["payments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|payment| payment["reference"].as_str().map(str::to_owned))
            .collect()
    };
    let (_, page) = fx.server.admin_get("/payments?limit=3").await;
    assert_eq!(
        references(&page),
        ["list-order-0", "list-order-1", "list-order-2"]
    );
    let next = page["next"].as_u64().expect("a next cursor");
    let (_, page) = fx
        .server
        .admin_get(&format!("/payments?limit=3&after={next}"))
        .await;
    assert_eq!(references(&page), ["list-order-3", "list-order-4"]);
    assert!(page["next"].is_null());

    let (_, authorized) = fx
        .server
        .admin_get("/payments?provider_id=vipps-test&state=AUTHORIZED")
        .await;
    assert_eq!(references(&authorized), ["list-order-1", "list-order-3"]);
    let (_, created) = fx.server.admin_get("/payments?state=created").await;
    assert_eq!(
        references(&created),
        ["list-order-0", "list-order-2", "list-order-4"]
    );
    let (_, none) = fx
        .server
        .admin_get("/payments?provider_id=other-provider")
        .await;
    assert!(references(&none).is_empty());
    fx.server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let fx = Fixture::start().await;
    let (status, document) = fx.server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/webhooks/vipps/{provider_id}",
        "/payments",
        "/payments/{provider_id}/{reference}",
        "/payments/{provider_id}/{reference}/history",
        "/events",
        "/events/{position}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(document["components"]["securitySchemes"]["admin_token"].is_object());
    fx.server.stop().await;
}

#[tokio::test]
async fn metrics_count_webhooks_by_outcome_and_provider() {
    let fx = Fixture::start().await;
    fx.deliver(&event_body(MSN, "metric-order-1", "psp-1", "CREATED", 100))
        .await;
    fx.server
        .post_webhook("vipps-test", &[], b"{}".to_vec())
        .await;
    fx.server
        .post_webhook("no-such-provider", &[], b"{}".to_vec())
        .await;
    let (status, text) = fx.server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().expect("Prometheus text").to_owned();
    for needle in [
        "paystate_webhooks_total{outcome=\"accepted\",provider=\"vipps-test\"}",
        "paystate_webhooks_total{outcome=\"rejected\",provider=\"vipps-test\"}",
        "paystate_webhooks_total{outcome=\"unknown_provider\",provider=\"_none\"}",
        "paystate_append_duration_seconds_bucket",
        "paystate_store_batch_events_bucket",
        "paystate_store_append_seconds_bucket",
        "paystate_log_head_position",
        "paystate_reactor_lag_events{reactor=\"projections\"}",
        "paystate_projections_skipped_events{reason=\"unknown_type\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
    let (status, ready) = fx.server.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    fx.server.stop().await;
}

#[tokio::test]
async fn every_known_providers_counters_exist_at_zero_after_a_restart() {
    let data = tempfile::tempdir().expect("data directory");
    let token = "metrics-restart-admin-token-7f3a";
    let series = "paystate_webhooks_total{outcome=\"accepted\",provider=\"vipps-quiet\"} 0";
    let metrics = |server: &paystate_e2e::ChildServer| {
        let url = format!("{}/metrics", server.base_url);
        async move {
            reqwest::get(url)
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text")
        }
    };

    // A server on this data directory, with a Vipps nobody answers at (nothing is enabled).
    // The same port each time: another would change the public URL, and recording that change
    // would append to the log, which sets the store's head however it was reported at start.
    let port = paystate_e2e::child::free_port();
    let start = || paystate_e2e::ChildServer::spawn(data.path(), port, "http://127.0.0.1:9", token);
    let server = start().await;
    assert!(!metrics(&server).await.contains("provider=\"vipps-quiet\""));
    let created = reqwest::Client::new()
        .post(format!("{}/providers", server.base_url))
        .bearer_auth(token)
        .json(&serde_json::json!({"id": "vipps-quiet", "kind": "vipps", "environment": "test", "msn": "123456",
            "credentials": {"client_id": "c", "client_secret": "s", "subscription_key": "k"}}))
        .send()
        .await
        .expect("create the provider");
    assert_eq!(created.status(), StatusCode::CREATED);
    let text = metrics(&server).await;
    for needle in [
        series,
        "paystate_webhook_registration_outcomes_total{outcome=\"failed\",provider=\"vipps-quiet\"} 0",
        "paystate_webhook_rejections_suppressed_total{provider=\"vipps-quiet\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} from its creation:\n{text}");
    }
    server.kill9();

    // No delivery since: the series is there all the same, so "accepted stays flat" can be seen.
    let server = start().await;
    // The counters of providers learnt while catching up appear within one 5 s tick.
    let text = paystate_e2e::eventually(
        "the provider's counters after a restart",
        std::time::Duration::from_secs(15),
        || async {
            let text = metrics(&server).await;
            text.contains(series).then_some(text)
        },
    )
    .await;
    for needle in [
        "paystate_webhook_registration_outcomes_total{outcome=\"registered\",provider=\"vipps-quiet\"} 0",
        "paystate_webhook_registration_outcomes_total{outcome=\"failed\",provider=\"vipps-quiet\"} 0",
        "paystate_payment_polls_total{outcome=\"answered\",provider=\"vipps-quiet\"} 0",
        "paystate_polled_events_total{outcome=\"recorded\",provider=\"vipps-quiet\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics:\n{text}");
    }
    // The store's head as it reported it while opening, before any append.
    let gauge = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::to_owned)
    };
    let head = gauge("paystate_store_head_position");
    assert_eq!(
        head.as_deref(),
        Some("1"),
        "the store's head after a restart, with nothing appended since:\n{text}"
    );
    assert_eq!(head, gauge("paystate_log_head_position"), "{text}");
    server.terminate();
}

#[tokio::test]
async fn the_api_guide_documents_every_route_of_the_openapi_document() {
    let fx = Fixture::start().await;
    let (_, document) = fx.server.get("/openapi.json").await;
    let guide_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let guide = std::fs::read_to_string(&guide_path).expect("docs/api.md");
    let paths = document["paths"].as_object().expect("paths");
    let mut undocumented = Vec::new();
    for (path, operations) in paths {
        for method in operations
            .as_object()
            .into_iter()
            .flat_map(|ops| ops.keys())
        {
            let needle = format!("`{} {path}", method.to_uppercase());
            // The route is named in code quotes, alone or followed by its query string.
            let documented = guide.match_indices(&needle).any(|(at, _)| {
                matches!(guide[at + needle.len()..].chars().next(), Some('`' | '?'))
            });
            if !documented {
                undocumented.push(needle);
            }
        }
    }
    assert!(paths.len() >= 9, "the document lists the routes");
    assert_eq!(
        undocumented,
        Vec::<String>::new(),
        "routes missing from docs/api.md"
    );
    fx.server.stop().await;
}
