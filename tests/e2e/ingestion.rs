//! Ingestion (SPEC §3.1): authentic deliveries are recorded once, forgeries are refused with
//! the right code and a diagnosis and change nothing, unexpected content is recorded with 200.

use base64::Engine as _;
use paystate_e2e::webhook::{date_offset, event_body, now_date, signed_headers};
use paystate_e2e::{seed_provider, SeededProvider, TestServer};
use paystate_server::ServerConfig;
use paystate_store::{EventStore, Position};
use paystate_vipps::{RegisteredUrl, WebhookSecret};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const SECRET: &str =
    "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";
pub const MSN: &str = "123456";

pub struct Fixture {
    pub server: TestServer,
    pub provider: SeededProvider,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Fixture::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Fixture {
        let server = TestServer::start_with(configure).await;
        let provider = seed_provider(
            server.store.as_ref(),
            &server.vault,
            "vipps-test",
            MSN,
            &server.base_url,
            "reg-0001",
            SECRET,
        )
        .await;
        Fixture { server, provider }
    }

    /// Posts `body` signed with the provider's secret, now.
    pub async fn deliver(&self, body: &[u8]) -> (StatusCode, Value) {
        let headers = signed_headers(&self.provider.secret, &self.provider.url, body, &now_date());
        self.server
            .post_webhook("vipps-test", &headers, body.to_vec())
            .await
    }

    pub async fn payment(&self, reference: &str) -> (StatusCode, Value) {
        self.server
            .admin_get(&format!("/payments/vipps-test/{reference}"))
            .await
    }
}

/// The payloads of every event of `event_type` in the log.
pub fn recorded(store: &dyn EventStore, event_type: &str) -> Vec<Value> {
    store
        .read_all(Position(0), 100_000)
        .expect("read the log")
        .into_iter()
        .filter(|envelope| envelope.event_type == event_type)
        .map(|envelope| serde_json::from_slice(&envelope.payload).expect("JSON payload"))
        .collect()
}

#[tokio::test]
async fn an_authentic_delivery_is_recorded_and_visible_to_the_next_read() {
    let fx = Fixture::start().await;
    let body = event_body(MSN, "acme-order-1001", "psp-1", "CREATED", 49900);
    let (status, ack) = fx.deliver(&body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["status"], "accepted");
    let position = ack["position"].as_u64().expect("position");
    assert_eq!(
        position,
        fx.server.head(),
        "the fact is the last durable event"
    );

    let authorized = event_body(MSN, "acme-order-1001", "psp-1", "AUTHORIZED", 49900);
    let (status, _) = fx.deliver(&authorized).await;
    assert_eq!(status, StatusCode::OK);

    // Read-your-writes: the very next GET reflects both deliveries.
    let (status, view) = fx.payment("acme-order-1001").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "AUTHORIZED");
    assert_eq!(view["amount"], 49900);
    assert_eq!(view["currency"], "NOK");
    assert_eq!(view["msn"], MSN);
    assert_eq!(view["aggregate"]["authorized"], 49900);
    assert_eq!(view["events"], 2);
    assert_eq!(view["duplicates"], 0);
    assert_eq!(view["anomalies"], serde_json::json!([]));

    let receipts = recorded(fx.server.store.as_ref(), "webhook_received");
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0]["verification"]["secret_version"], 1);
    assert_eq!(
        receipts[0]["signed"]["host"],
        fx.provider.url.host_for_signing()
    );
    fx.server.stop().await;
}

/// One forgery: the answer code, the diagnosis kind recorded, and a word of the message.
async fn check_forgery(
    fx: &Fixture,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    code: &str,
    diagnosis: &str,
) {
    let before = recorded(fx.server.store.as_ref(), "webhook_rejected").len();
    let head = fx.server.head();
    let (status, answer) = fx.server.post_webhook("vipps-test", &headers, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}: {answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let rejections = recorded(fx.server.store.as_ref(), "webhook_rejected");
    assert_eq!(rejections.len(), before + 1, "{code}: one rejection record");
    let last = rejections.last().expect("a rejection");
    assert_eq!(last["code"], code);
    assert_eq!(last["diagnosis"]["kind"], diagnosis, "{code}: {last}");
    assert_eq!(
        fx.server.head(),
        head + 1,
        "{code}: only the rejection record was appended"
    );
}

#[tokio::test]
async fn forgeries_are_refused_with_the_right_code_and_diagnosis_and_change_nothing() {
    let fx = Fixture::start().await;
    let body = event_body(MSN, "acme-order-2001", "psp-2", "AUTHORIZED", 1000);
    let url = &fx.provider.url;

    let wrong = WebhookSecret::new(
        "bm90LXRoZS1zZWNyZXQtYXQtYWxsLW5vdC10aGUtc2VjcmV0LWF0LWFsbC1ub3QtdGhlLXNlY3JldC1hdC1hbGw=",
    );
    check_forgery(
        &fx,
        signed_headers(&wrong, url, &body, &now_date()),
        body.clone(),
        "invalid_signature",
        "unknown",
    )
    .await;

    // The classic bug: the secret base64-decoded as the HMAC key. The answer says so.
    let decoded =
        paystate_e2e::webhook::signed_with_decoded_secret(SECRET, url, &body, &now_date());
    let (status, answer) = fx
        .server
        .post_webhook("vipps-test", &decoded, body.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], "invalid_signature");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("base64-decoded"),
        "{answer}"
    );

    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] = b'0';
    check_forgery(
        &fx,
        signed_headers(&fx.provider.secret, url, &body, &now_date()),
        tampered,
        "content_hash_mismatch",
        "body_changed",
    )
    .await;

    check_forgery(
        &fx,
        signed_headers(&fx.provider.secret, url, &body, &date_offset(-600)),
        body.clone(),
        "stale_date",
        "clock_skew",
    )
    .await;

    check_forgery(
        &fx,
        vec![("content-type", "application/json".to_owned())],
        body.clone(),
        "missing_signature",
        "no_signature",
    )
    .await;

    // Nothing of any forgery entered a payment.
    let (status, answer) = fx.payment("acme-order-2001").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_payment");
    assert!(recorded(fx.server.store.as_ref(), "webhook_received").is_empty());
    assert!(recorded(fx.server.store.as_ref(), "payment_event_recorded").is_empty());
    fx.server.stop().await;
}

#[tokio::test]
async fn a_signature_over_the_request_host_instead_of_the_registered_one_is_diagnosed() {
    // Registered behind a proxy at https://pay.example.no; the sender signed over the Host it
    // connected to.
    let server = TestServer::start().await;
    let provider = seed_provider(
        server.store.as_ref(),
        &server.vault,
        "vipps-test",
        MSN,
        "https://pay.example.no",
        "reg-0001",
        SECRET,
    )
    .await;
    let body = event_body(MSN, "acme-order-3001", "psp-3", "AUTHORIZED", 1000);
    let as_connected = RegisteredUrl::parse(&server.webhook_url("vipps-test")).expect("url");
    let headers = signed_headers(&provider.secret, &as_connected, &body, &now_date());
    let (status, answer) = server
        .post_webhook("vipps-test", &headers, body.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_signature");
    let rejection = recorded(server.store.as_ref(), "webhook_rejected")
        .pop()
        .expect("a rejection record");
    assert_eq!(
        rejection["diagnosis"]["kind"], "host_rewritten",
        "{rejection}"
    );

    // Signed over the registered URL, it verifies although it arrived at another host.
    let headers = signed_headers(&provider.secret, &provider.url, &body, &now_date());
    let (status, answer) = server.post_webhook("vipps-test", &headers, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_retired_secret_is_diagnosed_as_out_of_sync() {
    let fx =
        Fixture::start_with(|config| config.secret_grace_period = std::time::Duration::ZERO).await;
    paystate_e2e::seed::rotate(
        fx.server.store.as_ref(),
        &fx.server.vault,
        &fx.provider,
        "reg-0002",
        "c2Vjb25kLXNlY3JldC0yLXNlY29uZC1zZWNyZXQtMi1zZWNvbmQtc2VjcmV0LTI=",
    )
    .await;
    let body = event_body(MSN, "acme-order-4001", "psp-4", "AUTHORIZED", 1000);
    check_forgery(
        &fx,
        signed_headers(&fx.provider.secret, &fx.provider.url, &body, &now_date()),
        body,
        "invalid_signature",
        "old_secret_version",
    )
    .await;
    fx.server.stop().await;
}

#[tokio::test]
async fn duplicates_are_answered_with_the_original_position_and_counted() {
    let fx = Fixture::start().await;
    let body = event_body(MSN, "acme-order-5001", "psp-5", "CREATED", 2500);
    let (_, first) = fx.deliver(&body).await;
    assert_eq!(first["status"], "accepted");
    for _ in 0..2 {
        let (status, again) = fx.deliver(&body).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["status"], "duplicate");
        assert_eq!(again["original_position"], first["position"]);
    }
    let (_, view) = fx.payment("acme-order-5001").await;
    assert_eq!(view["events"], 1);
    assert_eq!(view["duplicates"], 2);
    assert_eq!(
        recorded(fx.server.store.as_ref(), "webhook_duplicate").len(),
        2
    );
    assert_eq!(
        recorded(fx.server.store.as_ref(), "payment_event_recorded").len(),
        1
    );
    fx.server.stop().await;
}

#[tokio::test]
async fn a_duplicate_that_says_something_else_is_kept_in_full_and_flagged() {
    let fx = Fixture::start().await;
    let body = event_body(MSN, "acme-order-5002", "psp-6", "CREATED", 2500);
    let (_, first) = fx.deliver(&body).await;
    assert_eq!(first["status"], "accepted");
    // Same identity (msn, reference, name, pspReference), another amount.
    let other = event_body(MSN, "acme-order-5002", "psp-6", "CREATED", 9900);
    let (status, again) = fx.deliver(&other).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["original_position"], first["position"]);

    let (_, view) = fx.payment("acme-order-5002").await;
    assert_eq!(view["amount"], 2500, "the recorded fact stands: {view}");
    assert_eq!(view["duplicates"], 1);
    assert!(
        view["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .any(|anomaly| anomaly["kind"] == "conflicting_duplicate"),
        "{view}"
    );
    let duplicates = recorded(fx.server.store.as_ref(), "webhook_duplicate");
    assert_eq!(duplicates.len(), 1);
    let conflict = &duplicates[0]["conflict"];
    assert_eq!(conflict["fact"]["amount"], 9900, "{conflict}");
    let kept = base64::engine::general_purpose::STANDARD
        .decode(
            conflict["receipt"]["body_base64"]
                .as_str()
                .expect("the kept body"),
        )
        .expect("base64");
    assert_eq!(kept, other, "the delivery itself is kept");

    // An identical copy is a plain duplicate: nothing more is stored, no new anomaly.
    fx.deliver(&body).await;
    let duplicates = recorded(fx.server.store.as_ref(), "webhook_duplicate");
    assert_eq!(duplicates.len(), 2);
    assert!(duplicates[1].get("conflict").is_none(), "{}", duplicates[1]);
    let data = fx.server.stop().await;

    // `verify` re-verifies the kept delivery's signature along with the receipt.
    let verify = std::process::Command::new(paystate_e2e::child::paystate_binary())
        .args(["verify", "--data"])
        .arg(data.path())
        .env_remove("PAYSTATE_MASTER_KEY")
        .output()
        .expect("run paystate verify");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("deliveries:        2 re-verified"),
        "{stdout}"
    );
}

#[tokio::test]
async fn arrival_order_does_not_change_the_end_state() {
    let fx = Fixture::start().await;
    let story = |reference: &str| {
        vec![
            event_body(MSN, reference, "psp-c", "CREATED", 10000),
            event_body(MSN, reference, "psp-c", "AUTHORIZED", 10000),
            event_body(MSN, reference, "cap-1", "CAPTURED", 4000),
            event_body(MSN, reference, "ref-1", "REFUNDED", 1500),
        ]
    };
    for body in story("order-in-sequence") {
        fx.deliver(&body).await;
    }
    for body in story("order-reversed-1").into_iter().rev() {
        fx.deliver(&body).await;
    }
    let (_, in_order) = fx.payment("order-in-sequence").await;
    let (_, reversed) = fx.payment("order-reversed-1").await;
    for field in [
        "state",
        "aggregate",
        "amount",
        "currency",
        "events",
        "anomalies",
    ] {
        assert_eq!(in_order[field], reversed[field], "{field}");
    }
    assert_eq!(in_order["state"], "AUTHORIZED");
    assert_eq!(in_order["aggregate"]["captured"], 4000);
    assert_eq!(in_order["aggregate"]["refunded"], 1500);
    fx.server.stop().await;
}

#[tokio::test]
async fn authentic_but_unexpected_deliveries_are_recorded_and_answered_200() {
    let fx = Fixture::start().await;

    let (status, ack) = fx.deliver(b"{not json").await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["anomaly"], true);

    let other_msn = event_body("999999", "acme-order-6001", "psp-6", "AUTHORIZED", 700);
    let (status, ack) = fx.deliver(&other_msn).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let (_, view) = fx.payment("acme-order-6001").await;
    let anomalies = view["anomalies"].to_string();
    assert!(anomalies.contains("msn_mismatch"), "{view}");

    let unknown_name = event_body(MSN, "acme-order-6002", "psp-7", "TELEPORTED", 700);
    let (status, _) = fx.deliver(&unknown_name).await;
    assert_eq!(status, StatusCode::OK);
    let (_, view) = fx.payment("acme-order-6002").await;
    assert!(
        view["anomalies"].to_string().contains("TELEPORTED"),
        "{view}"
    );
    assert_eq!(
        view["aggregate"]["authorized"], 0,
        "an unknown name moves no money"
    );

    let bad_reference = event_body(MSN, "x", "psp-8", "AUTHORIZED", 700);
    let (status, ack) = fx.deliver(&bad_reference).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["anomaly"], true);

    let invalid_utf8 = b"{\"msn\":\"\xff\xfe\"}".to_vec();
    let (status, _) = fx.deliver(&invalid_utf8).await;
    assert_eq!(status, StatusCode::OK);

    // A payment known only from a delivery that could not be used has no state yet.
    let negative = format!(
        r#"{{"msn":"{MSN}","reference":"acme-order-6003","pspReference":"psp-9","name":"CAPTURED","amount":{{"currency":"NOK","value":-5}},"timestamp":"2025-01-14T09:30:01.123Z","success":true}}"#
    );
    let (status, ack) = fx.deliver(negative.as_bytes()).await;
    assert_eq!(
        (status, &ack["anomaly"]),
        (StatusCode::OK, &json!(true)),
        "{ack}"
    );
    let (_, view) = fx.payment("acme-order-6003").await;
    assert_eq!(
        (&view["state"], &view["events"]),
        (&Value::Null, &json!(0)),
        "{view}"
    );
    assert!(
        view["anomalies"].to_string().contains("invalid_field"),
        "{view}"
    );
    let listed = |query: &'static str| {
        let fx = &fx;
        async move {
            let (status, page) = fx.server.admin_get(query).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["payments"].to_string().contains("acme-order-6003")
        }
    };
    assert!(listed("/payments?provider_id=vipps-test").await);
    assert!(!listed("/payments?provider_id=vipps-test&state=CREATED").await);

    // Each of them is a receipt in the log; the unparseable ones carry the anomaly.
    assert_eq!(
        recorded(fx.server.store.as_ref(), "webhook_received").len(),
        6
    );
    let anomalies = recorded(fx.server.store.as_ref(), "webhook_anomaly");
    assert_eq!(anomalies.len(), 4, "{anomalies:?}");
    fx.server.stop().await;
}

#[tokio::test]
async fn time_travel_answers_as_of_a_position_or_a_time() {
    let fx = Fixture::start().await;
    let (_, created) = fx
        .deliver(&event_body(MSN, "acme-order-7001", "psp-9", "CREATED", 900))
        .await;
    let created_at = created["position"].as_u64().expect("position");
    let between = time::OffsetDateTime::now_utc();
    let (_, authorized) = fx
        .deliver(&event_body(
            MSN,
            "acme-order-7001",
            "psp-9",
            "AUTHORIZED",
            900,
        ))
        .await;
    let authorized_at = authorized["position"].as_u64().expect("position");

    let (_, then) = fx
        .server
        .admin_get(&format!(
            "/payments/vipps-test/acme-order-7001?at={created_at}"
        ))
        .await;
    assert_eq!(then["state"], "CREATED", "{then}");
    let (_, now) = fx
        .server
        .admin_get(&format!(
            "/payments/vipps-test/acme-order-7001?at={authorized_at}"
        ))
        .await;
    assert_eq!(now["state"], "AUTHORIZED");
    let (status, before) = fx
        .server
        .admin_get("/payments/vipps-test/acme-order-7001?at=1")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{before}");

    let stamp = between
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let (status, then) = fx
        .server
        .admin_get(&format!(
            "/payments/vipps-test/acme-order-7001?as_of={}",
            stamp.replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["state"], "CREATED", "{then}");

    let (status, both) = fx
        .server
        .admin_get("/payments/vipps-test/acme-order-7001?at=1&as_of=2025-01-01T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{both}");

    // An unencoded `+` of an offset arrives as a space: the answer says how to write it.
    let (status, unencoded) = fx
        .server
        .admin_get("/payments/vipps-test/acme-order-7001?as_of=2025-01-14T10:30:05+01:00")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{unencoded}");
    let message = unencoded["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("as_of:"), "{message}");
    assert!(message.contains("%2B"), "{message}");

    let (status, history) = fx
        .server
        .admin_get("/payments/vipps-test/acme-order-7001/history")
        .await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|entry| entry["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "webhook_received",
            "payment_event_recorded",
            "webhook_received",
            "payment_event_recorded"
        ]
    );
    assert_eq!(history["events"][1]["position"], created_at);

    // The history as known at the CREATED fact: the later delivery is not in it yet.
    let (status, then) = fx
        .server
        .admin_get(&format!(
            "/payments/vipps-test/acme-order-7001/history?at={created_at}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(
        then["events"].as_array().expect("events").len(),
        2,
        "{then}"
    );
    let (status, before) = fx
        .server
        .admin_get("/payments/vipps-test/acme-order-7001/history?as_of=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{before}");
    fx.server.stop().await;
}

#[tokio::test]
async fn limits_and_unknown_providers_are_json_errors() {
    let fx = Fixture::start_with(|config| config.body_limit = 4096).await;
    let big = vec![b'a'; 5000];
    let headers = signed_headers(&fx.provider.secret, &fx.provider.url, &big, &now_date());
    let (status, answer) = fx.server.post_webhook("vipps-test", &headers, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");

    let body = event_body(MSN, "acme-order-8001", "psp-10", "CREATED", 100);
    let headers = signed_headers(&fx.provider.secret, &fx.provider.url, &body, &now_date());
    let (status, answer) = fx
        .server
        .post_webhook("no-such-provider", &headers, body)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_provider");
    fx.server.stop().await;
}

#[tokio::test]
async fn a_flood_of_forgeries_is_recorded_in_full_only_up_to_the_budget() {
    let fx = Fixture::start_with(|config| config.rejection_record_budget = 2).await;
    let head = fx.server.head();
    for _ in 0..7 {
        let (status, _) = fx
            .server
            .post_webhook("vipps-test", &[], b"{}".to_vec())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Minute boundaries can split the burst; at most two full records per minute either way.
    let full = recorded(fx.server.store.as_ref(), "webhook_rejected").len();
    assert!((2..=4).contains(&full), "{full} full records");
    assert!(fx.server.head() <= head + 5, "bounded growth");
    let data = fx.server.stop().await;

    // Shutdown records what was only counted.
    let store = paystate_server::store::open(data.path()).expect("reopen the store");
    let full = recorded(store.as_ref(), "webhook_rejected").len() as u64;
    let counted: u64 = recorded(store.as_ref(), "webhook_rejections_suppressed")
        .iter()
        .filter_map(|event| event["count"].as_u64())
        .sum();
    assert_eq!(full + counted, 7);
    store.close().await.expect("close");
}

#[tokio::test]
async fn each_live_registration_verifies_under_its_own_registered_url() {
    // Registered first under an old public URL; a second registration under the current one
    // is live too (the handover after the public URL changed). Vipps signs each delivery over
    // the URL of the registration it comes through.
    let server = TestServer::start().await;
    let old = seed_provider(
        server.store.as_ref(),
        &server.vault,
        "vipps-test",
        MSN,
        "https://old.example.no",
        "reg-0001",
        SECRET,
    )
    .await;
    let new = paystate_e2e::seed::add_registration(
        server.store.as_ref(),
        &server.vault,
        &old,
        "reg-0002",
        "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQtbmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQ=",
        &server.webhook_url("vipps-test"),
        2,
    )
    .await;
    for (registration, expected_version, name) in [(&old, 1, "CREATED"), (&new, 2, "AUTHORIZED")] {
        let body = event_body(MSN, "acme-order-9101", "psp-1", name, 100);
        let headers = signed_headers(&registration.secret, &registration.url, &body, &now_date());
        let (status, answer) = server
            .post_webhook("vipps-test", &headers, body.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: {answer}",
            registration.url.as_str()
        );
        let receipt = recorded(server.store.as_ref(), "webhook_received")
            .pop()
            .expect("a receipt");
        assert_eq!(receipt["verification"]["secret_version"], expected_version);
        assert_eq!(
            receipt["signed"]["host"],
            registration.url.host_for_signing()
        );
    }
    // The old secret over the new URL matches nothing: each secret belongs to its URL.
    let body = event_body(MSN, "acme-order-9101", "cap-1", "CAPTURED", 100);
    let crossed = signed_headers(&old.secret, &new.url, &body, &now_date());
    let (status, _) = server.post_webhook("vipps-test", &crossed, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// `headers` with `authorization` and `x-vipps-authorization` replaced by `name` alone.
fn with_only_authorization(
    headers: Vec<(&'static str, String)>,
    name: &'static str,
) -> Vec<(&'static str, String)> {
    let is_authorization = |header: &str| {
        header.eq_ignore_ascii_case("authorization")
            || header.eq_ignore_ascii_case("x-vipps-authorization")
    };
    let value = headers
        .iter()
        .find(|(header, _)| is_authorization(header))
        .map(|(_, value)| value.clone())
        .expect("a signed authorization header");
    headers
        .into_iter()
        .filter(|(header, _)| !is_authorization(header))
        .chain([(name, value)])
        .collect()
}

#[tokio::test]
async fn either_authorization_header_alone_verifies_and_the_answers_have_exactly_the_spec_shape() {
    let fixture = Fixture::start().await;
    let fx = &fixture;
    let post = |body: Vec<u8>, header: &'static str| async move {
        let headers = with_only_authorization(
            signed_headers(&fx.provider.secret, &fx.provider.url, &body, &now_date()),
            header,
        );
        fx.server.post_webhook("vipps-test", &headers, body).await
    };
    let first = event_body(MSN, "acme-order-7001", "psp-71", "CREATED", 1000);
    let second = event_body(MSN, "acme-order-7002", "psp-72", "CREATED", 2000);

    let (status, by_authorization) = post(first.clone(), "authorization").await;
    assert_eq!(status, StatusCode::OK, "{by_authorization}");
    let position = by_authorization["position"].as_u64().expect("a position");
    assert_eq!(
        by_authorization,
        serde_json::json!({"status": "accepted", "position": position})
    );

    // A proxy that strips `Authorization` leaves Vipps' copy in `X-Vipps-Authorization`.
    let (status, by_copy) = post(second, "x-vipps-authorization").await;
    assert_eq!(status, StatusCode::OK, "{by_copy}");
    let second_position = by_copy["position"].as_u64().expect("a position");
    assert!(second_position > position);
    assert_eq!(
        by_copy,
        serde_json::json!({"status": "accepted", "position": second_position})
    );

    let (status, duplicate) = post(first, "x-vipps-authorization").await;
    assert_eq!(status, StatusCode::OK, "{duplicate}");
    assert_eq!(
        duplicate,
        serde_json::json!({"status": "duplicate", "original_position": position})
    );
    fixture.server.stop().await;
}

/// Posts `body` signed with the provider's secret and dated `seconds` from now.
async fn deliver_dated(fx: &Fixture, body: Vec<u8>, seconds: i64) -> (StatusCode, Value) {
    let date = date_offset(seconds);
    let headers = signed_headers(&fx.provider.secret, &fx.provider.url, &body, &date);
    fx.server.post_webhook("vipps-test", &headers, body).await
}

#[tokio::test]
async fn the_date_tolerance_is_configurable() {
    let body = |reference: &str| event_body(MSN, reference, "psp-81", "CREATED", 1000);

    let default = Fixture::start().await;
    let (status, answer) = deliver_dated(&default, body("acme-order-8001"), -600).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "stale_date");
    default.server.stop().await;

    let wide = Fixture::start_with(|config| {
        config.date_tolerance = std::time::Duration::from_secs(900);
    })
    .await;
    let (status, answer) = deliver_dated(&wide, body("acme-order-8001"), -600).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "accepted");
    let (status, answer) = deliver_dated(&wide, body("acme-order-8002"), 1000).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "stale_date");
    wide.server.stop().await;
}

#[tokio::test]
async fn a_delivery_that_cannot_be_made_durable_is_answered_503_so_vipps_retries() {
    let fx = Fixture::start().await;
    // The log stops taking appends (what a failed disk looks like to ingestion).
    fx.server.store.close().await.expect("close the store");
    let body = event_body(MSN, "acme-order-9001", "psp-91", "CREATED", 1000);
    let (status, answer) = fx.deliver(&body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    assert!(answer["error"]["message"].is_string(), "{answer}");
    fx.server.stop().await;
}
