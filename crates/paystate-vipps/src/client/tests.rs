//! The client against a small local stub of the Vipps APIs (127.0.0.1, port 0).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use paystate_domain::{
    Amount, Currency, Environment, Msn, PaymentEventName, Reference, RegistrationId,
    WebhookEventType,
};

use super::*;
use crate::signature::RegisteredUrl;

const CLIENT_SECRET: &str = "client-secret-do-not-print";
const SUBSCRIPTION_KEY: &str = "subscription-key-do-not-print";

/// A request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct Stub {
    token_calls: AtomicUsize,
    /// The token answer's `expires_in`, as raw JSON (`"3600"` or `3600`).
    expires_in: Mutex<String>,
    /// Tokens the API routes refuse with 401.
    revoked: Mutex<Vec<String>>,
    seen: Mutex<Vec<Seen>>,
}

impl Stub {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn api_calls(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.path != "/accesstoken/get")
            .collect()
    }
}

fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_owned(),
    )
        .into_response()
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "https://example.invalid/problem", "title": title, "status": status.as_u16(),
        "detail": detail, "instance": "/x", "traceId": "trace-1",
        "extraDetails": [{"name": "modificationAmount", "reason": detail}],
    });
    (
        status,
        [("content-type", "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn token(
    State(stub): State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&stub, &method, &uri, &headers, String::new());
    // Let concurrent callers pile up here if the client does not single-flight the refresh.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    if headers.get("client_secret").and_then(|v| v.to_str().ok()) != Some(CLIENT_SECRET) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "bad client secret",
        );
    }
    let n = stub.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let expires_in = stub.expires_in.lock().unwrap().clone();
    json(
        StatusCode::OK,
        &format!(
            r#"{{"token_type":"Bearer","expires_in":{expires_in},"ext_expires_in":{expires_in},"expires_on":"1700003600","not_before":"1700000000","resource":"r","access_token":"token-{n}"}}"#
        ),
    )
}

fn record(stub: &Stub, method: &Method, uri: &Uri, headers: &HeaderMap, body: String) {
    stub.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body,
    });
}

async fn api(
    State(stub): State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(&stub, &method, &uri, &headers, body.clone());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if stub
        .revoked
        .lock()
        .unwrap()
        .iter()
        .any(|revoked| bearer == format!("Bearer {revoked}"))
    {
        return problem(StatusCode::UNAUTHORIZED, "Unauthorized", "token revoked");
    }
    let path = uri.path();
    match (method.as_str(), path) {
        ("POST", "/webhooks/v1/webhooks") => json(
            StatusCode::CREATED,
            r#"{"id":"2d4c1b0e-6f7a-4b8c-9d0e-1f2a3b4c5d6e","secret":"c2VjcmV0LW9uY2U=secret-shown-once"}"#,
        ),
        ("GET", "/webhooks/v1/webhooks") => json(
            StatusCode::OK,
            r#"{"webhooks":[{"id":"a1","url":"https://pay.example.no/hooks","events":["epayments.payment.captured.v1"]},{"id":"a2","url":"https://pay.example.no/hooks","events":[]}]}"#,
        ),
        ("DELETE", "/webhooks/v1/webhooks/a1") => StatusCode::NO_CONTENT.into_response(),
        ("DELETE", _) => problem(StatusCode::NOT_FOUND, "Not Found", "no such webhook"),
        ("GET", "/epayment/v1/payments/acme-order-1001") => json(
            StatusCode::OK,
            r#"{"aggregate":{"authorizedAmount":{"currency":"NOK","value":49900},"cancelledAmount":{"currency":"NOK","value":0},"capturedAmount":{"currency":"NOK","value":10000},"refundedAmount":{"currency":"NOK","value":0}},"amount":{"currency":"NOK","value":49900},"state":"AUTHORIZED","paymentMethod":{"type":"WALLET"},"profile":{},"pspReference":"psp-1","redirectUrl":"https://x","reference":"acme-order-1001"}"#,
        ),
        ("GET", "/epayment/v1/payments/acme-order-1001/events") => json(
            StatusCode::OK,
            r#"[{"reference":"acme-order-1001","pspReference":"psp-1","name":"CREATED","amount":{"currency":"NOK","value":49900},"timestamp":"2025-01-14T09:29:01.123Z","idempotencyKey":"k1","success":true},{"reference":"acme-order-1001","pspReference":"psp-1","name":"AUTHORIZED","amount":{"currency":"NOK","value":49900},"timestamp":"2025-01-14T09:30:01.123Z","idempotencyKey":null,"success":true}]"#,
        ),
        ("POST", "/epayment/v1/payments/acme-order-1001/capture") => problem(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "Capture amount exceeds authorized amount",
        ),
        ("POST", "/epayment/v1/payments") => json(
            StatusCode::CREATED,
            r#"{"redirectUrl":"https://landing","reference":"acme-order-2002"}"#,
        ),
        (
            "POST",
            "/epayment/v1/payments/acme-order-1001/refund"
            | "/epayment/v1/payments/acme-order-1001/cancel",
        ) => json(
            StatusCode::OK,
            r#"{"amount":{"currency":"NOK","value":49900},"state":"AUTHORIZED","pspReference":"psp-9","reference":"acme-order-1001"}"#,
        ),
        ("POST", "/epayment/v1/test/payments/acme-order-1001/approve") => {
            StatusCode::OK.into_response()
        }
        ("GET", "/slow") => std::future::pending().await,
        _ => (StatusCode::BAD_GATEWAY, "<html>gateway</html>").into_response(),
    }
}

async fn start(expires_in: &str) -> (Arc<Stub>, String) {
    let stub = Arc::new(Stub::default());
    *stub.expires_in.lock().unwrap() = expires_in.to_owned();
    let app = Router::new()
        .route("/accesstoken/get", post(token))
        .route("/{*rest}", any(api))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (stub, format!("http://{addr}"))
}

fn config(base_url: &str) -> ClientConfig {
    ClientConfig::new(
        Environment::Test,
        Msn::parse("123456").unwrap(),
        Credentials::new("client-id-1", CLIENT_SECRET, SUBSCRIPTION_KEY),
    )
    .with_base_url(base_url)
    .unwrap()
}

fn client(base_url: &str) -> VippsClient {
    VippsClient::new(config(base_url)).unwrap()
}

fn reference() -> Reference {
    Reference::parse("acme-order-1001").unwrap()
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|value| value.to_str().ok())
}

#[test]
fn base_urls_follow_the_environment_unless_overridden() {
    let credentials = Credentials::new("id", "s", "k");
    let msn = Msn::parse("123456").unwrap();
    let test = ClientConfig::new(Environment::Test, msn.clone(), credentials.clone());
    let production = ClientConfig::new(Environment::Production, msn, credentials);
    assert_eq!(test.effective_base_url(), "https://apitest.vipps.no");
    assert_eq!(production.effective_base_url(), "https://api.vipps.no");
    assert_eq!(
        test.clone()
            .with_base_url("http://127.0.0.1:18089/")
            .unwrap()
            .effective_base_url(),
        "http://127.0.0.1:18089"
    );
    assert!(test.clone().with_base_url("ftp://x").is_err());
    assert!(test.with_base_url("not a url").is_err());
    assert_eq!(production.connect_timeout, Duration::from_secs(5));
    assert_eq!(production.request_timeout, Duration::from_secs(10));
}

#[tokio::test]
async fn every_call_carries_the_required_headers() {
    let (stub, base) = start("3600").await;
    let payment = client(&base).get_payment(&reference()).await.unwrap();
    assert_eq!(payment.state, PaymentState::Authorized);
    let aggregate = payment.aggregate.unwrap();
    assert_eq!(
        aggregate.captured_amount,
        Money {
            currency: Currency::Nok,
            value: Amount::from_minor_units(10000)
        }
    );

    let seen = stub.seen();
    let token_call = &seen[0];
    assert_eq!(
        (token_call.method.as_str(), token_call.path.as_str()),
        ("POST", "/accesstoken/get")
    );
    assert_eq!(header(token_call, "client_id"), Some("client-id-1"));
    assert_eq!(header(token_call, "client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        header(token_call, "ocp-apim-subscription-key"),
        Some(SUBSCRIPTION_KEY)
    );
    assert_eq!(header(token_call, "merchant-serial-number"), Some("123456"));
    assert!(token_call.body.is_empty());

    let call = &seen[1];
    assert_eq!(call.path, "/epayment/v1/payments/acme-order-1001");
    assert_eq!(header(call, "authorization"), Some("Bearer token-1"));
    assert_eq!(
        header(call, "ocp-apim-subscription-key"),
        Some(SUBSCRIPTION_KEY)
    );
    assert_eq!(header(call, "merchant-serial-number"), Some("123456"));
    assert_eq!(header(call, "vipps-system-name"), Some("paystate"));
    assert_eq!(
        header(call, "vipps-system-plugin-name"),
        Some("paystate-vipps")
    );
    for name in [
        "vipps-system-name",
        "vipps-system-version",
        "vipps-system-plugin-name",
        "vipps-system-plugin-version",
    ] {
        let value = header(call, name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(!value.is_empty() && value.len() <= 30, "{name}: {value}");
    }
    assert_eq!(header(call, "idempotency-key"), None);
}

#[tokio::test]
async fn the_token_is_cached_across_calls_and_clones() {
    let (stub, base) = start("3600").await;
    let client = client(&base);
    client.get_payment(&reference()).await.unwrap();
    client.clone().list_webhooks().await.unwrap();
    client.get_payment_events(&reference()).await.unwrap();
    assert_eq!(stub.token_calls.load(Ordering::SeqCst), 1);
    assert!(stub
        .api_calls()
        .iter()
        .all(|seen| header(seen, "authorization") == Some("Bearer token-1")));
}

#[tokio::test]
async fn a_token_due_for_refresh_is_replaced_whether_expires_in_is_a_string_or_a_number() {
    for expires_in in ["\"0\"", "0"] {
        let (stub, base) = start(expires_in).await;
        let client = client(&base);
        client.get_payment(&reference()).await.unwrap();
        client.get_payment(&reference()).await.unwrap();
        assert_eq!(
            stub.token_calls.load(Ordering::SeqCst),
            2,
            "expires_in {expires_in}"
        );
        let bearers: Vec<_> = stub
            .api_calls()
            .iter()
            .map(|seen| header(seen, "authorization").unwrap().to_owned())
            .collect();
        assert_eq!(bearers, ["Bearer token-1", "Bearer token-2"]);
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_token_refresh() {
    let (stub, base) = start("3600").await;
    let client = client(&base);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_payment(&reference()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(stub.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_and_the_call_retried_once() {
    let (stub, base) = start("3600").await;
    let client = client(&base);
    client.get_payment(&reference()).await.unwrap();
    stub.revoked.lock().unwrap().push("token-1".into());
    client.get_payment(&reference()).await.unwrap();
    assert_eq!(stub.token_calls.load(Ordering::SeqCst), 2);

    // A token refused again right after refresh is an error, not a loop.
    stub.revoked
        .lock()
        .unwrap()
        .extend(["token-2".to_owned(), "token-3".to_owned()]);
    let error = client.get_payment(&reference()).await.unwrap_err();
    assert_eq!(
        error,
        VippsApiError::Unauthorized {
            status: 401,
            detail: Some("token revoked".into())
        }
    );
    assert_eq!(stub.token_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_never_printed() {
    let (_stub, base) = start("3600").await;
    let mut config = config(&base);
    config.credentials = Credentials::new("client-id-1", "wrong-secret", SUBSCRIPTION_KEY);
    let client = VippsClient::new(config).unwrap();
    let error = client.get_payment(&reference()).await.unwrap_err();
    assert!(
        matches!(error, VippsApiError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    for shown in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(
            !shown.contains("wrong-secret") && !shown.contains(SUBSCRIPTION_KEY),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn debug_of_a_client_with_a_token_shows_no_secret() {
    let (_stub, base) = start("3600").await;
    let client = client(&base);
    client.get_payment(&reference()).await.unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(CLIENT_SECRET));
    assert!(!shown.contains(SUBSCRIPTION_KEY));
    assert!(!shown.contains("token-1"), "{shown}");
}

#[tokio::test]
async fn problem_json_is_a_typed_error() {
    let (_stub, base) = start("3600").await;
    let amount = Money {
        currency: Currency::Nok,
        value: Amount::from_minor_units(99_999),
    };
    let error = client(&base)
        .capture(&reference(), amount, "key-1")
        .await
        .unwrap_err();
    let VippsApiError::Problem {
        status,
        title,
        detail,
        extra_details,
        trace_id,
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(status, 400);
    assert_eq!(title.as_deref(), Some("Bad Request"));
    assert_eq!(
        detail.as_deref(),
        Some("Capture amount exceeds authorized amount")
    );
    assert_eq!(extra_details[0].name.as_deref(), Some("modificationAmount"));
    assert_eq!(trace_id.as_deref(), Some("trace-1"));
}

#[tokio::test]
async fn non_problem_errors_keep_status_and_an_excerpt() {
    let (_stub, base) = start("3600").await;
    let error = client(&base)
        .get_payment(&Reference::parse("unknown-route-1").unwrap())
        .await;
    // The stub answers unknown GETs of payments with a 502 HTML page.
    assert_eq!(
        error.unwrap_err(),
        VippsApiError::Status {
            status: 502,
            body_excerpt: "<html>gateway</html>".into()
        }
    );
}

#[tokio::test]
async fn webhooks_register_list_and_delete() {
    let (stub, base) = start("3600").await;
    let client = client(&base);
    let url = RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42").unwrap();
    let events = [WebhookEventType::parse("epayments.payment.captured.v1").unwrap()];
    let registration = client.register_webhook(&url, &events).await.unwrap();
    assert_eq!(
        registration.id.as_str(),
        "2d4c1b0e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
    );
    assert_eq!(
        registration.secret.expose(),
        "c2VjcmV0LW9uY2U=secret-shown-once"
    );
    assert!(!format!("{registration:?}").contains("secret-shown-once"));
    let sent: serde_json::Value = serde_json::from_str(&stub.api_calls()[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"url": "https://pay.example.no/hooks/vipps/v1?tenant=acme-42", "events": ["epayments.payment.captured.v1"]})
    );
    assert_eq!(
        header(&stub.api_calls()[0], "content-type"),
        Some("application/json")
    );

    let listed = client.list_webhooks().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].events, ["epayments.payment.captured.v1"]);

    client
        .delete_webhook(&RegistrationId::parse("a1").unwrap())
        .await
        .unwrap();
    let missing = client
        .delete_webhook(&RegistrationId::parse("zz").unwrap())
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
    assert!(matches!(missing, VippsApiError::Problem { .. }));
}

#[tokio::test]
async fn payment_events_are_parsed_with_the_client_msn() {
    let (_stub, base) = start("3600").await;
    let events: Vec<_> = client(&base)
        .get_payment_events(&reference())
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].name, PaymentEventName::Authorized);
    assert_eq!(events[1].identity().msn, "123456");
    assert_eq!(events[1].idempotency_key, None);
    assert_eq!(events[0].idempotency_key.as_deref(), Some("k1"));
}

#[tokio::test]
async fn operations_send_an_idempotency_key_and_their_body() {
    let (stub, base) = start("3600").await;
    let client = client(&base);
    let amount = Money {
        currency: Currency::Nok,
        value: Amount::from_minor_units(49900),
    };
    let created = client
        .create_payment(
            &CreatePayment {
                amount,
                reference: Reference::parse("acme-order-2002").unwrap(),
                user_flow: "WEB_REDIRECT".into(),
                return_url: Some("https://shop.example.no/return".into()),
                payment_description: None,
                customer_phone_number: Some("4791234567".into()),
            },
            "key-create",
        )
        .await
        .unwrap();
    assert_eq!(created.redirect_url.as_deref(), Some("https://landing"));
    let refunded = client
        .refund(&reference(), amount, "key-refund")
        .await
        .unwrap();
    assert_eq!(refunded.psp_reference.as_deref(), Some("psp-9"));
    client.cancel(&reference(), "key-cancel").await.unwrap();
    client
        .force_approve(&reference(), "4791234567", "key-approve")
        .await
        .unwrap();

    let calls = stub.api_calls();
    let keys: Vec<_> = calls
        .iter()
        .map(|seen| header(seen, "idempotency-key").unwrap_or("-"))
        .collect();
    assert_eq!(
        keys,
        ["key-create", "key-refund", "key-cancel", "key-approve"]
    );
    let create: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(
        create,
        serde_json::json!({
            "amount": {"currency": "NOK", "value": 49900}, "paymentMethod": {"type": "WALLET"},
            "reference": "acme-order-2002", "userFlow": "WEB_REDIRECT",
            "returnUrl": "https://shop.example.no/return", "customer": {"phoneNumber": "4791234567"},
        })
    );
    let refund: serde_json::Value = serde_json::from_str(&calls[1].body).unwrap();
    assert_eq!(
        refund,
        serde_json::json!({"modificationAmount": {"currency": "NOK", "value": 49900}})
    );
    let approve: serde_json::Value = serde_json::from_str(&calls[3].body).unwrap();
    assert_eq!(
        approve,
        serde_json::json!({"customer": {"phoneNumber": "4791234567"}})
    );
}

#[tokio::test]
async fn force_approve_is_refused_in_production_without_a_call() {
    let (stub, base) = start("3600").await;
    let mut config = config(&base);
    config.environment = Environment::Production;
    let error = VippsClient::new(config)
        .unwrap()
        .force_approve(&reference(), "4791234567", "k")
        .await
        .unwrap_err();
    assert!(matches!(error, VippsApiError::InvalidRequest(_)));
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let (_stub, base) = start("3600").await;
    let client = VippsClient::new(
        config(&base).with_timeouts(Duration::from_secs(5), Duration::from_millis(300)),
    )
    .unwrap();
    let result = client.call(reqwest::Method::GET, "/slow", None, None).await;
    assert_eq!(result.err(), Some(VippsApiError::Timeout));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = client(&format!("http://127.0.0.1:{port}"))
        .list_webhooks()
        .await
        .unwrap_err();
    assert!(matches!(error, VippsApiError::Transport(_)), "{error:?}");
    assert!(error.is_transient());
    // The message names the request that failed and the cause, not only that sending failed.
    let text = error.to_string();
    assert!(
        text.starts_with("could not reach Vipps: getting an access token: "),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}
