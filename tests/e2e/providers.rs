//! Providers and automatic webhook registration (SPEC §3.2, VIPPS.md §6): the real server over
//! HTTP against the real simulator. Nobody presses "register": every registration here is the
//! reactor's response to a recorded fact, and every outcome is checked at the simulator too.

use paystate_e2e::child::{free_port, paystate_binary};
use paystate_e2e::server::read;
use paystate_e2e::sim::same_payment;
use paystate_e2e::webhook::{event_body, now_date, signed_headers};
use paystate_e2e::{eventually, start_sim, ChildServer, Merchant, TestServer};
use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_store::Position;
use paystate_vipps::RegisteredUrl;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use vipps_sim::{
    AttemptOutcome, CredentialsPolicy, MerchantCredentials, SimConfig, SimHandle, Simulator,
};

const ID: &str = "vipps-test";
const MSN: &str = "123456";
const CLIENT_ID: &str = "e2e-client";
const CLIENT_SECRET: &str = "e2e-client-secret-4f1c9a";
const SUBSCRIPTION_KEY: &str = "e2e-subscription-key-77d2";
/// How long registration outcomes may take: handovers and retries are seconds.
const PATIENCE: Duration = Duration::from_secs(30);

/// The admin API of a running server.
#[derive(Debug, Clone)]
struct Api {
    base_url: String,
    /// The public base the server builds webhook URLs from.
    public_url: String,
    admin_token: String,
    client: reqwest::Client,
}

impl Api {
    fn of(server: &TestServer) -> Api {
        Api {
            base_url: server.base_url.clone(),
            public_url: server.base_url.clone(),
            admin_token: server.admin_token.clone(),
            client: server.client.clone(),
        }
    }

    fn webhook_url(&self) -> String {
        format!("{}/webhooks/vipps/{ID}", self.public_url)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("admin request")).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
}

/// The simulator and a server that talks to it for every provider.
struct Setup {
    sim: SimHandle,
    server: TestServer,
    api: Api,
}

impl Setup {
    async fn start() -> Setup {
        let sim = start_sim(Duration::from_secs(30)).await;
        let server = server_for(&sim.base_url()).await;
        let api = Api::of(&server);
        Setup { sim, server, api }
    }

    async fn merchant(&self) -> Merchant {
        Merchant::connect(&self.sim.base_url(), MSN).await
    }

    /// The ids the simulator has registered for our webhook URL.
    fn registered_at_sim(&self) -> Vec<String> {
        registrations_for(&self.sim, &self.api.webhook_url())
    }

    async fn stop(self) {
        self.server.stop().await;
        self.sim.shutdown().await.expect("stop the simulator");
    }
}

async fn server_for(vipps_base_url: &str) -> TestServer {
    let base = vipps_base_url.parse().expect("a Vipps base URL");
    TestServer::start_with(move |config| config.vipps_base_url = Some(base)).await
}

fn registrations_for(sim: &SimHandle, url: &str) -> Vec<String> {
    sim.registrations()
        .into_iter()
        .filter(|registration| registration.url == url)
        .map(|registration| registration.id.to_string())
        .collect()
}

fn credentials(client_secret: &str, subscription_key: &str) -> Value {
    json!({"client_id": CLIENT_ID, "client_secret": client_secret, "subscription_key": subscription_key})
}

fn new_provider(credentials: Value) -> Value {
    json!({"id": ID, "kind": "vipps", "environment": "test", "msn": MSN, "credentials": credentials})
}

async fn admin(api: &Api, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    api.call(method, path, body).await
}

async fn post(api: &Api, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = admin(api, Method::POST, path, body).await;
    assert!(status.is_success(), "POST {path}: {status} {answer}");
    answer
}

async fn put(api: &Api, path: &str, body: Value) -> Value {
    let (status, answer) = admin(api, Method::PUT, path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "PUT {path}: {answer}");
    answer
}

/// Creates the provider and enables it; nothing else.
async fn create_and_enable(api: &Api) -> Value {
    let (status, created) = admin(
        api,
        Method::POST,
        "/providers",
        Some(new_provider(credentials(CLIENT_SECRET, SUBSCRIPTION_KEY))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    post(api, &format!("/providers/{ID}/enable"), None).await
}

/// Polls the provider view until `done` holds for it.
async fn provider_when(api: &Api, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(what, PATIENCE, || async {
        let (status, view) = api.get(&format!("/providers/{ID}")).await;
        (status == StatusCode::OK && done(&view)).then_some(view)
    })
    .await
}

async fn registered_with(api: &Api, version: u64) -> Value {
    provider_when(
        api,
        &format!("secret version {version} to be registered"),
        |view| view["webhook"]["secret_version"] == version,
    )
    .await
}

async fn history(api: &Api) -> Vec<Value> {
    let (status, body) = api.get(&format!("/providers/{ID}/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().expect("events").clone()
}

fn of_type<'a>(history: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    history
        .iter()
        .filter(|entry| entry["type"] == event_type)
        .collect()
}

/// Creates, approves and partly captures a payment at the simulator.
async fn pay(merchant: &Merchant, reference: &str) {
    merchant.create_payment(reference, 10_000).await;
    merchant.approve(reference).await;
    merchant.capture(reference, 2_500).await;
}

/// Waits until paystate's view of `reference` equals the simulator's own.
async fn payment_matches(api: &Api, merchant: &Merchant, reference: &str) {
    let truth = merchant.payment(reference).await;
    eventually(
        &format!("payment {reference} to match the simulator"),
        PATIENCE,
        || async {
            let (status, view) = api.get(&format!("/payments/{ID}/{reference}")).await;
            (status == StatusCode::OK && same_payment(&view, &truth)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn create_then_enable_registers_at_the_simulator_without_any_button() {
    let setup = Setup::start().await;
    let api = &setup.api;

    let (status, created) = admin(
        api,
        Method::POST,
        "/providers",
        Some(new_provider(credentials(CLIENT_SECRET, SUBSCRIPTION_KEY))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "disabled");
    assert_eq!(created["webhook"], Value::Null);
    assert_eq!(created["environment"], "test");
    assert_eq!(created["msn"], MSN);
    assert!(created["credentials_fingerprint"]
        .as_str()
        .is_some_and(|f| !f.is_empty()));
    assert!(
        setup.registered_at_sim().is_empty(),
        "a disabled provider registers nothing"
    );

    let (status, again) = admin(
        api,
        Method::POST,
        "/providers",
        Some(new_provider(credentials("other", "other"))),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("provider_exists"))
    );
    let mut bad = new_provider(credentials(CLIENT_SECRET, SUBSCRIPTION_KEY));
    bad["msn"] = json!("12");
    let (status, refused) = admin(api, Method::POST, "/providers", Some(bad)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("msn:")),
        "{refused}"
    );

    let enabled = post(api, &format!("/providers/{ID}/enable"), None).await;
    assert_eq!(enabled["state"], "enabled");
    let view = registered_with(api, 1).await;
    assert_eq!(view["webhook"]["reason"], "enabled");
    assert_eq!(view["webhook"]["url"], api.webhook_url());
    assert_eq!(view["webhook"]["events"].as_array().map(Vec::len), Some(8));
    assert_eq!(view["registrations_total"], 1);
    assert_eq!(view["last_registration_error"], Value::Null);
    let registration_id = view["webhook"]["registration_id"]
        .as_str()
        .expect("registration id")
        .to_owned();
    assert_eq!(setup.registered_at_sim(), vec![registration_id.clone()]);

    let types: Vec<Value> = history(api)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![
            json!("provider_created"),
            json!("provider_enabled"),
            json!("webhook_registration_requested"),
            json!("webhook_registered")
        ]
    );

    // The registration works: the simulator's deliveries are accepted and recorded.
    let merchant = setup.merchant().await;
    pay(&merchant, "first-order-0001").await;
    payment_matches(api, &merchant, "first-order-0001").await;
    let view = provider_when(api, "three deliveries to be counted", |view| {
        view["webhooks"]["accepted"] == 3
    })
    .await;
    assert_eq!(view["webhooks"]["rejected"], 0);
    let deliveries = setup.sim.deliveries();
    assert!(deliveries
        .iter()
        .all(|record| record.registration_id.to_string() == registration_id));
    // Every answer paystate gave was a 2xx (an attempt the simulator timed out on a loaded
    // machine has no answer and is retried; that is not a refusal).
    let refused: Vec<_> = deliveries
        .iter()
        .filter(|record| matches!(record.outcome, AttemptOutcome::Answered { status } if !(200..300).contains(&status)))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(deliveries.iter().any(|record| record.delivered()));

    let (status, list) = api.get("/providers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["providers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        list["providers"][0]["webhook"]["registration_id"],
        registration_id.as_str()
    );
    setup.stop().await;
}

#[tokio::test]
async fn new_credentials_while_enabled_re_register_and_delete_the_old_registration() {
    let setup = Setup::start().await;
    let api = &setup.api;
    create_and_enable(api).await;
    let first = registered_with(api, 1).await;
    let old_id = first["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let changed = put(
        api,
        &format!("/providers/{ID}/credentials"),
        credentials("rotated-client-secret", "rotated-subscription-key"),
    )
    .await;
    assert_ne!(
        changed["credentials_fingerprint"],
        first["credentials_fingerprint"]
    );

    let second = registered_with(api, 2).await;
    assert_eq!(second["webhook"]["reason"], "credentials_changed");
    let new_id = second["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(new_id, old_id);
    eventually(
        "the old registration to be deleted at the simulator",
        PATIENCE,
        || async { (setup.registered_at_sim() == vec![new_id.clone()]).then_some(()) },
    )
    .await;
    let deleted = eventually("webhook_deleted to be recorded", PATIENCE, || async {
        of_type(&history(api).await, "webhook_deleted")
            .first()
            .map(|entry| (*entry).clone())
    })
    .await;
    assert_eq!(deleted["data"]["registration_id"], old_id.as_str());
    assert_eq!(deleted["data"]["why"], "superseded");

    // The same credentials again change nothing.
    put(
        api,
        &format!("/providers/{ID}/credentials"),
        credentials("rotated-client-secret", "rotated-subscription-key"),
    )
    .await;
    assert_eq!(of_type(&history(api).await, "credentials_updated").len(), 1);
    setup.stop().await;
}

#[tokio::test]
async fn an_environment_change_re_registers_in_the_new_environment() {
    let setup = Setup::start().await;
    let api = &setup.api;
    create_and_enable(api).await;
    let first = registered_with(api, 1).await;

    let (status, refused) = admin(
        api,
        Method::PUT,
        &format!("/providers/{ID}/environment"),
        Some(json!({"environment": "staging"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let changed = put(
        api,
        &format!("/providers/{ID}/environment"),
        json!({"environment": "production"}),
    )
    .await;
    assert_eq!(changed["environment"], "production");

    let second = registered_with(api, 2).await;
    assert_eq!(second["webhook"]["reason"], "environment_changed");
    let new_id = second["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(
        Some(new_id.as_str()),
        first["webhook"]["registration_id"].as_str()
    );
    // With one base URL override both environments are the same simulator, so the old
    // registration's deletion shows there.
    eventually("only the new registration to remain", PATIENCE, || async {
        (setup.registered_at_sim() == vec![new_id.clone()]).then_some(())
    })
    .await;
    setup.stop().await;
}

#[tokio::test]
async fn rotation_under_continuous_traffic_loses_no_delivery() {
    let setup = Setup::start().await;
    let api = &setup.api;
    create_and_enable(api).await;
    let first = registered_with(api, 1).await;
    let old_id = first["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let merchant = setup.merchant().await;
    let references: Vec<String> = (0..24).map(|i| format!("rotation-order-{i:04}")).collect();
    let traffic = {
        let (merchant, references) = (merchant.clone(), references.clone());
        tokio::spawn(async move {
            for reference in &references {
                pay(&merchant, reference).await;
            }
        })
    };
    // Rotate while payments keep coming.
    eventually("traffic to start", PATIENCE, || async {
        (setup.sim.deliveries().len() >= 6).then_some(())
    })
    .await;
    let rotated = post(api, &format!("/providers/{ID}/webhook/rotate"), None).await;
    assert_eq!(rotated["state"], "enabled");
    traffic.await.expect("payments at the simulator");

    let second = registered_with(api, 2).await;
    assert_eq!(second["webhook"]["reason"], "rotate");
    let new_id = second["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually(
        "the old registration to be deleted at the simulator",
        PATIENCE,
        || async { (setup.registered_at_sim() == vec![new_id.clone()]).then_some(()) },
    )
    .await;
    for reference in &references {
        payment_matches(api, &merchant, reference).await;
    }
    // The reactor records `webhook_deleted` right after the simulator confirms the deletion,
    // so the fact may trail what the simulator shows by a moment.
    let history = eventually("the deletion to be recorded", PATIENCE, || async {
        let history = history(api).await;
        (!of_type(&history, "webhook_deleted").is_empty()).then_some(history)
    })
    .await;
    let deleted = of_type(&history, "webhook_deleted");
    assert_eq!(deleted.len(), 1, "{history:?}");
    assert_eq!(deleted[0]["data"]["registration_id"], old_id.as_str());
    assert_eq!(deleted[0]["data"]["secret_version"], 1);

    // The old secret is still accepted within the grace period after its deletion (a delivery
    // Vipps signed with it just before), and the vault keeps both versions for audits.
    let id = paystate_domain::ProviderId::parse(ID).expect("id");
    let version = |n| paystate_domain::SecretVersion::new(n).expect("version");
    let old_secret = setup
        .server
        .vault
        .webhook_secret(&id, version(1))
        .expect("vault")
        .expect("version 1 kept");
    assert!(setup
        .server
        .vault
        .webhook_secret(&id, version(2))
        .expect("vault")
        .is_some());
    let url = RegisteredUrl::parse(&api.webhook_url()).expect("url");
    let body = event_body(MSN, "late-order-0001", "late-psp-0001", "CREATED", 5_000);
    let headers = signed_headers(&old_secret, &url, &body, &now_date());
    let (status, answer) = setup.server.post_webhook(ID, &headers, body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("accepted")),
        "{answer}"
    );
    // Every fact of every payment was accepted once. (A delivery that reaches paystate in the
    // moment between Vipps answering the new registration and its secret being sealed is
    // refused once and retried by Vipps; the payments above prove nothing was lost.)
    provider_when(api, "every fact to be accepted", |view| {
        view["webhooks"]["accepted"].as_u64() >= Some(72)
    })
    .await;
    setup.stop().await;
}

#[tokio::test]
async fn manual_register_with_a_working_registration_is_a_recorded_no_op() {
    let setup = Setup::start().await;
    let api = &setup.api;
    create_and_enable(api).await;
    let first = registered_with(api, 1).await;

    let answer = post(api, &format!("/providers/{ID}/webhook/register"), None).await;
    assert_eq!(answer["webhook"], first["webhook"]);
    let history = history(api).await;
    let skipped = of_type(&history, "webhook_registration_skipped");
    assert_eq!(skipped.len(), 1, "{history:?}");
    assert_eq!(
        skipped[0]["data"]["registration_id"],
        first["webhook"]["registration_id"]
    );
    assert_eq!(skipped[0]["data"]["requested"], "manual");
    assert_eq!(of_type(&history, "webhook_registration_requested").len(), 1);
    assert_eq!(setup.registered_at_sim().len(), 1);

    let (status, disabled) = {
        post(api, &format!("/providers/{ID}/disable"), None).await;
        admin(
            api,
            Method::POST,
            &format!("/providers/{ID}/webhook/rotate"),
            None,
        )
        .await
    };
    assert_eq!(
        (status, disabled["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("provider_disabled"))
    );
    setup.stop().await;
}

#[tokio::test]
async fn a_stray_registration_for_our_url_is_removed_and_foreign_ones_kept() {
    let setup = Setup::start().await;
    let api = &setup.api;
    create_and_enable(api).await;
    let view = registered_with(api, 1).await;
    let ours = view["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Someone registered our URL again (the "14 registrations" failure), and another
    // system of the merchant has its own webhook.
    let merchant = setup.merchant().await;
    let (stray, _) = merchant.register_webhook(&api.webhook_url()).await;
    let (foreign, _) = merchant
        .register_webhook("https://erp.example.no/vipps/hook")
        .await;

    let (status, remote) = api.get(&format!("/providers/{ID}/webhook/remote")).await;
    assert_eq!(status, StatusCode::OK, "{remote}");
    let class_of = |id: &str| {
        remote["webhooks"]
            .as_array()
            .and_then(|all| all.iter().find(|entry| entry["id"] == id))
            .map(|entry| (entry["class"].clone(), entry["unknown_secret"].clone()))
    };
    assert_eq!(class_of(&ours), Some((json!("ours_current"), json!(false))));
    assert_eq!(class_of(&stray), Some((json!("ours_old"), json!(true))));
    assert_eq!(class_of(&foreign), Some((json!("foreign"), json!(false))));

    // "Register" finds a working registration (a no-op) and reconciliation cleans up.
    post(api, &format!("/providers/{ID}/webhook/register"), None).await;
    eventually("the stray registration to be deleted", PATIENCE, || async {
        (setup.registered_at_sim() == vec![ours.clone()]).then_some(())
    })
    .await;
    assert!(
        registrations_for(&setup.sim, "https://erp.example.no/vipps/hook") == vec![foreign.clone()]
    );
    let deleted = eventually("the deletion to be recorded", PATIENCE, || async {
        of_type(&history(api).await, "webhook_deleted")
            .first()
            .map(|entry| (*entry).clone())
    })
    .await;
    assert_eq!(deleted["data"]["registration_id"], stray.as_str());
    assert_eq!(deleted["data"]["why"], "unknown_secret");
    let view = provider_when(api, "the view", |_| true).await;
    assert_eq!(view["webhook"]["registration_id"], ours.as_str());
    setup.stop().await;
}

#[tokio::test]
async fn reconciliation_runs_on_the_configured_interval_without_any_change() {
    let sim = start_sim(Duration::from_secs(30)).await;
    let base: paystate_server::config::VippsBaseUrl =
        sim.base_url().parse().expect("a Vipps base URL");
    let server = TestServer::start_with(move |config| {
        config.vipps_base_url = Some(base);
        config.registration.reconcile_interval = Duration::from_secs(1);
    })
    .await;
    let setup = Setup {
        sim,
        api: Api::of(&server),
        server,
    };
    let api = &setup.api;
    create_and_enable(api).await;
    let view = registered_with(api, 1).await;
    let ours = view["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();

    // A stray registration for our URL appears while nothing changes at paystate: only the
    // periodic reconciliation can find it.
    let (stray, _) = setup
        .merchant()
        .await
        .register_webhook(&api.webhook_url())
        .await;
    assert_eq!(setup.registered_at_sim().len(), 2);
    eventually(
        "the periodic reconciliation to delete the stray",
        PATIENCE,
        || async { (setup.registered_at_sim() == vec![ours.clone()]).then_some(()) },
    )
    .await;
    let deleted = eventually("the deletion to be recorded", PATIENCE, || async {
        of_type(&history(api).await, "webhook_deleted")
            .first()
            .map(|entry| (*entry).clone())
    })
    .await;
    assert_eq!(deleted["data"]["registration_id"], stray.as_str());
    setup.stop().await;
}

#[tokio::test]
async fn bad_credentials_fail_visibly_are_retried_and_heal_with_new_credentials() {
    let merchant = MerchantCredentials::parse(&format!(
        "{MSN}:{CLIENT_ID}:{CLIENT_SECRET}:{SUBSCRIPTION_KEY}"
    ))
    .expect("merchant");
    let config = SimConfig {
        credentials: CredentialsPolicy::KnownMerchants(vec![merchant]),
        ..SimConfig::for_tests()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = Simulator::start(listener, config).await.expect("simulator");
    let server = server_for(&sim.base_url()).await;
    let api = Api::of(&server);

    let (status, _) = admin(
        &api,
        Method::POST,
        "/providers",
        Some(new_provider(credentials(
            "wrong-client-secret",
            SUBSCRIPTION_KEY,
        ))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    post(&api, &format!("/providers/{ID}/enable"), None).await;

    let failing = provider_when(&api, "a visible registration error", |view| {
        !view["last_registration_error"].is_null()
    })
    .await;
    assert_eq!(failing["webhook"], Value::Null);
    let error = failing["last_registration_error"]
        .as_str()
        .expect("error text");
    assert!(
        error.contains("401") || error.contains("credentials"),
        "{error}"
    );
    assert!(!error.contains("wrong-client-secret"), "{error}");
    // Retried with backoff, each attempt recorded.
    let attempts = eventually("a second attempt", PATIENCE, || async {
        let history = history(&api).await;
        let failed: Vec<Value> = of_type(&history, "webhook_registration_failed")
            .into_iter()
            .cloned()
            .collect();
        (failed.len() >= 2).then_some(failed)
    })
    .await;
    assert_eq!(attempts[0]["data"]["attempt"], 1);
    assert_eq!(attempts[1]["data"]["attempt"], 2);
    assert!(attempts[0]["data"]["retry_at"].is_string());

    put(
        &api,
        &format!("/providers/{ID}/credentials"),
        credentials(CLIENT_SECRET, SUBSCRIPTION_KEY),
    )
    .await;
    // The failed request reserved secret version 1; the new request asks for version 2.
    let healed = registered_with(&api, 2).await;
    assert_eq!(healed["webhook"]["reason"], "credentials_changed");
    assert_eq!(healed["registrations_total"], 1);
    assert_eq!(healed["last_registration_error"], Value::Null);
    assert_eq!(registrations_for(&sim, &api.webhook_url()).len(), 1);
    server.stop().await;
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn an_unreachable_vipps_is_retried_until_it_answers() {
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}");
    let server = server_for(&base_url).await;
    let api = Api::of(&server);
    create_and_enable(&api).await;
    eventually("two failed attempts", PATIENCE, || async {
        let history = history(&api).await;
        (of_type(&history, "webhook_registration_failed").len() >= 2).then_some(())
    })
    .await;
    let failing = provider_when(&api, "the error in the view", |view| {
        !view["last_registration_error"].is_null()
    })
    .await;
    assert_eq!(failing["webhook"], Value::Null);

    // Vipps comes back on the same address.
    let listener = eventually("the simulator's port to be free", PATIENCE, || async {
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    let sim = Simulator::start(listener, SimConfig::for_tests())
        .await
        .expect("simulator");
    let healed = registered_with(&api, 1).await;
    assert_eq!(healed["webhook"]["reason"], "enabled");
    assert_eq!(healed["last_registration_error"], Value::Null);
    assert_eq!(registrations_for(&sim, &api.webhook_url()).len(), 1);
    server.stop().await;
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn a_restart_under_another_public_url_records_the_change_and_re_registers() {
    let sim = start_sim(Duration::from_secs(30)).await;
    let server = server_for(&sim.base_url()).await;
    let api = Api::of(&server);
    create_and_enable(&api).await;
    let first = registered_with(&api, 1).await;
    let old_url = api.webhook_url();
    let data = server.stop().await;

    // The same data directory, now reachable under another public URL (say, after moving
    // behind another proxy).
    let restarted = Restarted::start(
        data.path(),
        &sim.base_url(),
        &format!("http://127.0.0.1:{}", free_port()),
    )
    .await;
    let api = &restarted.api;
    let second = registered_with(api, 2).await;
    assert_eq!(second["webhook"]["reason"], "public_url_changed");
    assert_eq!(second["webhook"]["url"], api.webhook_url());
    assert_ne!(second["webhook"]["url"], first["webhook"]["url"]);
    let new_id = second["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually(
        "the registration of the old URL to be deleted",
        PATIENCE,
        || async {
            let old = registrations_for(&sim, &old_url);
            (old.is_empty() && registrations_for(&sim, &api.webhook_url()) == vec![new_id.clone()])
                .then_some(())
        },
    )
    .await;
    let changes = of_type(&history(api).await, "public_url_changed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["data"]["to"], api.public_url.as_str());
    restarted.stop().await;
    drop(data);
    sim.shutdown().await.expect("stop the simulator");
}

/// A server started on an existing data directory with its own public URL.
struct Restarted {
    api: Api,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), paystate_server::ServerError>>,
}

impl Restarted {
    async fn start(
        data_dir: &std::path::Path,
        vipps_base_url: &str,
        public_url: &str,
    ) -> Restarted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let token = paystate_server::AdminToken::generate();
        let admin_token = token.expose().to_owned();
        let mut config = paystate_server::ServerConfig::new(data_dir, address, token);
        config.registration.handover = paystate_e2e::server::TEST_HANDOVER;
        config.vipps_base_url = Some(vipps_base_url.parse().expect("Vipps base URL"));
        config.public_url = public_url.parse().expect("public URL");
        let store = paystate_server::store::open(data_dir).expect("reopen the store");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(paystate_server::run_with_store(
            listener,
            config,
            store,
            async move {
                let _ = stopped.await;
            },
        ));
        let api = Api {
            base_url: format!("http://{address}"),
            public_url: public_url.to_owned(),
            admin_token,
            client: reqwest::Client::new(),
        };
        eventually("the restarted server to answer", PATIENCE, || async {
            let response = api
                .client
                .get(format!("{}/readyz", api.base_url))
                .send()
                .await
                .ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        Restarted { api, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

#[tokio::test]
async fn secrets_never_appear_in_answers_logs_or_events() {
    let sim = start_sim(Duration::from_secs(30)).await;
    let data = tempfile::tempdir().expect("data directory");
    let port = free_port();
    let admin_token = "e2e-admin-token-0b7e5d1c";
    let log_path = data.path().join("paystate.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = std::process::Command::new(paystate_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--vipps-base-url",
            &sim.base_url(),
        ])
        .arg("--data")
        .arg(data.path().join("store"))
        .env("PAYSTATE_ADMIN_TOKEN", admin_token)
        .env("PAYSTATE_LOG", "debug")
        .env_remove("PAYSTATE_MASTER_KEY")
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("spawn paystate serve");
    let base_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let call = |method: Method, path: String, body: Option<Value>| {
        let (client, base_url) = (client.clone(), base_url.clone());
        async move {
            let mut request = client
                .request(method, format!("{base_url}{path}"))
                .bearer_auth(admin_token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            match request.send().await {
                Ok(response) => Some(read(response).await),
                Err(_) => None,
            }
        }
    };
    eventually("the server to answer", PATIENCE, || {
        call(Method::GET, "/healthz".into(), None)
    })
    .await;

    let mut answers: Vec<Value> = Vec::new();
    let first_secret = "first-client-secret-9c2e";
    let second_secret = "second-client-secret-51aa";
    let keys = ["first-subscription-key-3d", "second-subscription-key-8f"];
    for (path, body) in [
        (
            "/providers".to_owned(),
            Some(new_provider(credentials(first_secret, keys[0]))),
        ),
        (format!("/providers/{ID}/enable"), None),
    ] {
        let (status, answer) = call(Method::POST, path, body).await.expect("answer");
        assert!(status.is_success(), "{answer}");
        answers.push(answer);
    }
    let wait_version = |version: u64| async move {
        eventually("the registration", PATIENCE, || async move {
            let (_, view) = call(Method::GET, format!("/providers/{ID}"), None).await?;
            (view["webhook"]["secret_version"] == version).then_some(view)
        })
        .await
    };
    answers.push(wait_version(1).await);
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    pay(&merchant, "secret-scan-0001").await;
    let (_, rotated) = call(
        Method::POST,
        format!("/providers/{ID}/webhook/rotate"),
        None,
    )
    .await
    .expect("rotate");
    answers.push(rotated);
    answers.push(wait_version(2).await);
    let (_, changed) = call(
        Method::PUT,
        format!("/providers/{ID}/credentials"),
        Some(credentials(second_secret, keys[1])),
    )
    .await
    .expect("credentials");
    answers.push(changed);
    answers.push(wait_version(3).await);
    assert!(
        sim.wait_for_idle(PATIENCE).await,
        "the simulator's deliveries to finish"
    );

    for path in [
        "/providers".to_owned(),
        format!("/providers/{ID}/history"),
        format!("/providers/{ID}/webhook/remote"),
        format!("/payments/{ID}/secret-scan-0001"),
        format!("/payments/{ID}/secret-scan-0001/history"),
    ] {
        let (status, answer) = call(Method::GET, path.clone(), None).await.expect("answer");
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        answers.push(answer);
    }
    let mut after = 0;
    loop {
        let (status, page) = call(
            Method::GET,
            format!("/events?after={after}&limit=1000"),
            None,
        )
        .await
        .expect("events");
        assert_eq!(status, StatusCode::OK, "{page}");
        answers.push(page.clone());
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("SIGTERM");
    assert!(status.success());
    assert!(
        child.wait().expect("exit").success(),
        "paystate serve exited cleanly"
    );

    // Everything secret, read back from the vault of the stopped server.
    let store_dir = data.path().join("store");
    let store = paystate_server::store::open(&store_dir).expect("reopen the store");
    let (master_key, _) = MasterKey::load_or_generate(&store_dir).expect("master key");
    let vault = SecretVault::open(store.clone(), master_key).expect("vault");
    let provider = paystate_domain::ProviderId::parse(ID).expect("id");
    let webhook_secrets: Vec<String> = vault
        .webhook_secrets(&provider)
        .expect("secrets")
        .into_iter()
        .map(|(_, secret)| secret.expose().to_owned())
        .collect();
    assert_eq!(
        webhook_secrets.len(),
        3,
        "three registrations, three secrets"
    );
    let mut secrets: Vec<String> = webhook_secrets;
    secrets.extend([first_secret, second_secret, keys[0], keys[1]].map(str::to_owned));

    let raw_log: Vec<String> = store
        .read_all_raw(Position(0), 100_000)
        .expect("the log")
        .into_iter()
        .map(|envelope| String::from_utf8_lossy(&envelope.payload).into_owned())
        .collect();
    let answers = serde_json::to_string(&answers).expect("answers");
    let logs = std::fs::read_to_string(&log_path).expect("server log");
    assert!(
        logs.contains("webhook registered"),
        "the log covers the registrations: {logs}"
    );
    for secret in &secrets {
        assert!(
            !answers.contains(secret.as_str()),
            "a secret in an HTTP answer"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the server's log"
        );
        assert!(
            !raw_log
                .iter()
                .any(|payload| payload.contains(secret.as_str())),
            "a secret in the event log"
        );
    }
    assert!(
        !logs.contains(admin_token),
        "the admin token in the server's log"
    );
    drop(store);
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn a_restart_reconciles_with_vipps_instead_of_registering_again() {
    let sim = start_sim(Duration::from_secs(30)).await;
    let server = server_for(&sim.base_url()).await;
    let api = Api::of(&server);
    create_and_enable(&api).await;
    let ours = registered_with(&api, 1).await["webhook"]["registration_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let data = server.stop().await;

    // While paystate is down, something registers our URL again.
    let merchant = Merchant::connect(&sim.base_url(), MSN).await;
    let (stray, _) = merchant.register_webhook(&api.webhook_url()).await;
    assert_eq!(registrations_for(&sim, &api.webhook_url()).len(), 2);

    let restarted = Restarted::start(data.path(), &sim.base_url(), &api.public_url).await;
    let api = &restarted.api;
    eventually(
        "the stray registration to be deleted at start",
        PATIENCE,
        || async {
            (registrations_for(&sim, &api.webhook_url()) == vec![ours.clone()]).then_some(())
        },
    )
    .await;
    // Recorded right after the simulator confirms the deletion.
    let history = eventually("the deletion to be recorded", PATIENCE, || async {
        let history = history(api).await;
        (!of_type(&history, "webhook_deleted").is_empty()).then_some(history)
    })
    .await;
    let deleted = of_type(&history, "webhook_deleted");
    assert_eq!(deleted.len(), 1, "{history:?}");
    assert_eq!(deleted[0]["data"]["registration_id"], stray.as_str());
    assert_eq!(deleted[0]["data"]["why"], "unknown_secret");
    let view = provider_when(api, "the view", |_| true).await;
    assert_eq!(view["registrations_total"], 1, "nothing registered twice");
    assert_eq!(view["webhook"]["registration_id"], ours.as_str());
    assert!(of_type(&history, "public_url_changed").is_empty());
    restarted.stop().await;
    drop(data);
    sim.shutdown().await.expect("stop the simulator");
}

#[tokio::test]
async fn the_openapi_document_describes_every_provider_route() {
    let server = TestServer::start().await;
    let (status, document) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let expected = [
        ("/providers", "post"),
        ("/providers", "get"),
        ("/providers/{provider_id}", "get"),
        ("/providers/{provider_id}/credentials", "put"),
        ("/providers/{provider_id}/environment", "put"),
        ("/providers/{provider_id}/enable", "post"),
        ("/providers/{provider_id}/disable", "post"),
        ("/providers/{provider_id}/webhook/register", "post"),
        ("/providers/{provider_id}/webhook/rotate", "post"),
        ("/providers/{provider_id}/webhook/remote", "get"),
        ("/providers/{provider_id}/history", "get"),
    ];
    for (path, method) in expected {
        let operation = &document["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        assert_eq!(operation["tags"][0], "providers", "{method} {path}");
        assert!(
            operation["security"][0]["admin_token"].is_array(),
            "{method} {path} requires the admin token"
        );
    }
    let schemas = &document["components"]["schemas"];
    for schema in [
        "ProviderBody",
        "CreateProviderRequest",
        "CredentialsRequest",
        "RemoteWebhooksBody",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema}");
    }
    // The credential inputs are documented, the view has no credential field.
    assert!(schemas["CredentialsRequest"]["properties"]["client_secret"].is_object());
    let view_fields = schemas["ProviderBody"]["properties"]
        .as_object()
        .expect("properties");
    assert!(view_fields
        .keys()
        .all(|field| !field.contains("secret") || field == "credentials_fingerprint"));
    server.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_unknown_providers_are_404() {
    let server = TestServer::start().await;
    let api = Api::of(&server);

    let mut no_secret = new_provider(credentials(CLIENT_SECRET, SUBSCRIPTION_KEY));
    no_secret["credentials"]
        .as_object_mut()
        .expect("object")
        .remove("client_secret");
    let cases = [
        (no_secret, "credentials.client_secret: is required"),
        (json!({"id": ID}), "kind: is required"),
    ];
    for (body, message) in cases {
        let (status, answer) = admin(&api, Method::POST, "/providers", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["message"], message);
    }
    let (status, answer) = admin(
        &api,
        Method::POST,
        "/providers",
        Some(json!({"id": ID, "colour": "blue"})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{answer}"
    );

    // A body of the wrong JSON shape is described in the client's terms, not the server's.
    for (method, path, body) in [
        (Method::POST, "/providers".to_owned(), json!([])),
        (Method::POST, "/providers".to_owned(), json!("vipps")),
        (
            Method::PUT,
            format!("/providers/{ID}/credentials"),
            json!("x"),
        ),
        (
            Method::PUT,
            format!("/providers/{ID}/environment"),
            json!(7),
        ),
        (
            Method::POST,
            "/providers".to_owned(),
            json!({"id": ID, "credentials": []}),
        ),
    ] {
        let (status, answer) = admin(&api, method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().expect("a message");
        assert!(message.contains("a JSON object"), "{path}: {message}");
        assert!(!message.contains("Request"), "{path}: {message}");
    }

    for (method, path, body) in [
        (Method::GET, format!("/providers/{ID}"), None),
        (Method::GET, format!("/providers/{ID}/history"), None),
        (Method::GET, format!("/providers/{ID}/webhook/remote"), None),
        (Method::POST, format!("/providers/{ID}/enable"), None),
        (
            Method::POST,
            format!("/providers/{ID}/webhook/rotate"),
            None,
        ),
        (
            Method::PUT,
            format!("/providers/{ID}/credentials"),
            Some(credentials("a", "b")),
        ),
        (
            Method::PUT,
            format!("/providers/{ID}/environment"),
            Some(json!({"environment": "test"})),
        ),
    ] {
        let (status, answer) = admin(&api, method.clone(), &path, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_provider")),
            "{method} {path}: {answer}"
        );
    }
    let (status, answer) = api.get("/providers/Not%20An%20Id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("provider_id:")),
        "{answer}"
    );
    let (status, _) = server.get("/providers").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin token is required"
    );
    // Nothing was stored for the refused or unknown providers, in the log or in the vault.
    assert_eq!(server.head(), 0);
    let id = paystate_domain::ProviderId::parse(ID).expect("id");
    assert!(server.vault.credentials(&id).expect("vault").is_none());
    server.stop().await;
}

#[tokio::test]
async fn kill_9_around_a_registration_never_leaves_two_registrations() {
    let sim = start_sim(Duration::from_secs(30)).await;
    let admin_token = "e2e-admin-token-kill-9";
    // Kill at different moments after "enable": before, during and after the registration.
    for (round, delay_ms) in [0u64, 2, 10, 40].into_iter().enumerate() {
        let data = tempfile::tempdir().expect("data directory");
        let port = free_port();
        let child = ChildServer::spawn(data.path(), port, &sim.base_url(), admin_token).await;
        let api = Api {
            base_url: child.base_url.clone(),
            public_url: child.base_url.clone(),
            admin_token: admin_token.to_owned(),
            client: reqwest::Client::new(),
        };
        create_and_enable(&api).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill9();

        let _restarted = ChildServer::spawn(data.path(), port, &sim.base_url(), admin_token).await;
        let view = provider_when(&api, "one settled registration", |view| {
            !view["webhook"].is_null() && view["last_registration_error"].is_null()
        })
        .await;
        let id = view["webhook"]["registration_id"]
            .as_str()
            .expect("id")
            .to_owned();
        eventually(
            &format!("round {round}: exactly our registration at Vipps"),
            PATIENCE,
            || async {
                (registrations_for(&sim, &api.webhook_url()) == vec![id.clone()]).then_some(())
            },
        )
        .await;
        // Every registration the log knows of is the current one or recorded as deleted; a
        // registration Vipps made but the log never recorded was deleted as `unknown_secret`.
        let history = history(&api).await;
        let ids_of = |event_type: &str| -> std::collections::BTreeSet<String> {
            of_type(&history, event_type)
                .iter()
                .filter_map(|entry| entry["data"]["registration_id"].as_str().map(str::to_owned))
                .collect()
        };
        let live: Vec<String> = ids_of("webhook_registered")
            .difference(&ids_of("webhook_deleted"))
            .cloned()
            .collect();
        assert_eq!(live, vec![id.clone()], "round {round}: {history:?}");
    }
    sim.shutdown().await.expect("stop the simulator");
}
