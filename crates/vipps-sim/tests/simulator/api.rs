//! Access token, authentication, SDK quirks and the Webhooks API.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vipps_sim::{
    CredentialsPolicy, MerchantCredentials, SimConfig, TokenNumberStyle,
    REGISTRATIONS_PER_EVENT_TYPE,
};

use crate::support::{expect_problem, Sim, MSN, SUBSCRIPTION_KEY};

#[tokio::test]
async fn token_answer_has_the_documented_fields_with_numbers_as_strings() {
    let sim = Sim::start().await;
    let answer = sim.token_request().send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let token: Value = answer.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], "3600");
    assert_eq!(token["ext_expires_in"], "3600");
    assert!(token["resource"].is_string());
    let expires_on: u64 = token["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: u64 = token["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_on - not_before, 3600);
    assert_eq!(
        token["access_token"].as_str().unwrap().split('.').count(),
        3
    );
}

#[tokio::test]
async fn token_numbers_can_be_json_numbers() {
    let sim = Sim::start_with(SimConfig {
        token_numbers: TokenNumberStyle::Numbers,
        token_lifetime: Duration::from_secs(600),
        ..SimConfig::for_tests()
    })
    .await;
    let token: Value = sim
        .token_request()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["expires_in"], 600);
    assert_eq!(token["ext_expires_in"], 600);
    assert!(token["expires_on"].is_u64() && token["not_before"].is_u64());
}

#[tokio::test]
async fn token_call_accepts_what_the_sdks_send() {
    let sim = Sim::start().await;
    let answer = sim
        .token_request()
        .header("Authorization", "Bearer")
        .header("Content-Type", "application/json")
        .header("Vipps-System-Name", "")
        .header("Vipps-System-Version", "")
        .header("Vipps-System-Plugin-Name", "")
        .header("Vipps-System-Plugin-Version", "")
        .header("Idempotency-Key", "token-call")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn token_call_refuses_missing_credentials_and_bad_msn() {
    let sim = Sim::start().await;
    let no_secret = sim
        .http
        .post(sim.url("/accesstoken/get"))
        .header("client_id", "test-client")
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .header("Merchant-Serial-Number", MSN)
        .send()
        .await
        .unwrap();
    expect_problem(no_secret, 401).await;
    let bad_msn = sim.token_request_for("12").send().await.unwrap();
    expect_problem(bad_msn, 401).await;
}

#[tokio::test]
async fn strict_mode_accepts_only_known_merchants() {
    let merchant =
        MerchantCredentials::parse("654321:known-client:known-secret:known-key").unwrap();
    let sim_config = SimConfig {
        credentials: CredentialsPolicy::KnownMerchants(vec![merchant]),
        ..SimConfig::for_tests()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = vipps_sim::Simulator::start(listener, sim_config)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let ask = |secret: &'static str| {
        http.post(format!("{}/accesstoken/get", handle.base_url()))
            .header("client_id", "known-client")
            .header("client_secret", secret)
            .header("Ocp-Apim-Subscription-Key", "known-key")
            .header("Merchant-Serial-Number", "654321")
            .send()
    };
    assert_eq!(ask("known-secret").await.unwrap().status(), 200);
    expect_problem(ask("guessed-secret").await.unwrap(), 401).await;
}

#[tokio::test]
async fn calls_need_a_valid_token_the_same_key_and_the_same_msn() {
    let sim = Sim::start().await;
    let path = "/webhooks/v1/webhooks";
    let no_token = sim
        .http
        .get(sim.url(path))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .header("Merchant-Serial-Number", MSN)
        .send()
        .await
        .unwrap();
    expect_problem(no_token, 401).await;
    let unknown_token = sim
        .http
        .get(sim.url(path))
        .bearer_auth("not-a-token")
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION_KEY)
        .header("Merchant-Serial-Number", MSN)
        .send()
        .await
        .unwrap();
    expect_problem(unknown_token, 401).await;
    let other_key = sim
        .call_as(Method::GET, path, "another-key", MSN)
        .send()
        .await
        .unwrap();
    expect_problem(other_key, 403).await;
    let other_msn = sim
        .call_as(Method::GET, path, SUBSCRIPTION_KEY, "999999")
        .send()
        .await
        .unwrap();
    expect_problem(other_msn, 403).await;
    assert_eq!(
        sim.call(Method::GET, path).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let sim = Sim::start_with(SimConfig {
        token_lifetime: Duration::ZERO,
        ..SimConfig::for_tests()
    })
    .await;
    let answer = sim
        .call(Method::GET, "/webhooks/v1/webhooks")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(answer, 401).await;
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn registering_one_url_twice_gives_two_registrations_with_two_secrets() {
    let sim = Sim::start().await;
    let url = "https://pay.example.no/hooks/vipps/v1?tenant=acme-42";
    let events = ["epayments.payment.captured.v1"];
    let (first_id, first_secret) = sim.register(url, &events).await;
    let (second_id, second_secret) = sim.register(url, &events).await;
    assert_ne!(first_id, second_id);
    assert_ne!(first_secret, second_secret);
    for secret in [&first_secret, &second_secret] {
        assert_eq!(secret.expose().len(), 88);
        assert!(secret.expose().ends_with("=="));
    }

    let listed: Value = sim
        .call(Method::GET, "/webhooks/v1/webhooks")
        .header("Idempotency-Key", "list-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhooks = listed["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 2);
    for webhook in webhooks {
        assert_eq!(webhook["url"], url);
        assert_eq!(webhook["events"], json!(events));
        assert!(webhook.get("secret").is_none());
        let text = webhook.to_string();
        assert!(!text.contains(first_secret.expose()) && !text.contains(second_secret.expose()));
    }
}

#[tokio::test]
async fn delete_answers_204_then_404_and_takes_the_registration_out_of_the_list() {
    let sim = Sim::start().await;
    let (id, _) = sim
        .register(
            "https://pay.example.no/hooks",
            &["epayments.payment.created.v1"],
        )
        .await;
    let path = format!("/webhooks/v1/webhooks/{id}");
    let deleted = sim
        .call(Method::DELETE, &path)
        .header("Idempotency-Key", "delete-1")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = sim.call(Method::DELETE, &path).send().await.unwrap();
    let problem = expect_problem(again, 404).await;
    assert_eq!(problem["instance"], path);
    let listed: Value = sim
        .call(Method::GET, "/webhooks/v1/webhooks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["webhooks"], json!([]));
    assert!(sim.handle.registrations().is_empty());
}

#[tokio::test]
async fn bad_registrations_are_refused_with_problem_details() {
    let sim = Sim::start().await;
    let cases = [
        (
            json!({ "url": "not a url", "events": ["epayments.payment.created.v1"] }),
            "url",
        ),
        (
            json!({ "url": "ftp://pay.example.no/x", "events": ["epayments.payment.created.v1"] }),
            "url",
        ),
        (
            json!({ "url": "https://pay.example.no/x", "events": ["epayments.payment.paid.v1"] }),
            "events",
        ),
        (
            json!({ "url": "https://pay.example.no/x", "events": [] }),
            "events",
        ),
        (json!({ "events": ["epayments.payment.created.v1"] }), "url"),
    ];
    for (body, field) in cases {
        let answer = sim
            .call(Method::POST, "/webhooks/v1/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(answer, 400).await;
        assert_eq!(problem["extraDetails"][0]["name"], field, "{body}");
        assert!(problem["extraDetails"][0]["reason"].is_string());
    }
    assert!(sim.handle.registrations().is_empty());
}

#[tokio::test]
async fn at_most_25_registrations_per_event_type_and_merchant() {
    let sim = Sim::start().await;
    let created = ["epayments.payment.created.v1"];
    for n in 0..REGISTRATIONS_PER_EVENT_TYPE {
        sim.register(&format!("https://pay.example.no/hooks/{n}"), &created)
            .await;
    }
    let answer = sim
        .call(Method::POST, "/webhooks/v1/webhooks")
        .json(&json!({ "url": "https://pay.example.no/one-too-many", "events": created }))
        .send()
        .await
        .unwrap();
    expect_problem(answer, 400).await;
    sim.register(
        "https://pay.example.no/other-type",
        &["epayments.payment.captured.v1"],
    )
    .await;
    assert_eq!(
        sim.handle.registrations().len(),
        REGISTRATIONS_PER_EVENT_TYPE + 1
    );
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted() {
    let sim = Sim::start().await;
    let body = json!({ "url": "https://pay.example.no/chunked", "events": ["epayments.payment.created.v1"] })
        .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let request = format!(
        "POST /webhooks/v1/webhooks HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Ocp-Apim-Subscription-Key: {SUBSCRIPTION_KEY}\r\nMerchant-Serial-Number: {MSN}\r\n\
         Vipps-System-Name: \r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        sim.handle.local_addr(),
        sim.token,
        head.len(),
        tail.len(),
    );
    let mut stream = tokio::net::TcpStream::connect(sim.handle.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(sim.handle.registrations().len(), 1);
}

#[tokio::test]
async fn unknown_endpoints_answer_problem_json() {
    let sim = Sim::start().await;
    let answer = sim.call(Method::GET, "/nowhere").send().await.unwrap();
    let problem = expect_problem(answer, 404).await;
    assert_eq!(problem["instance"], "/nowhere");
    let wrong_method = sim
        .call(Method::PUT, "/webhooks/v1/webhooks")
        .send()
        .await
        .unwrap();
    expect_problem(wrong_method, 405).await;
}
