//! Feeds sequences of up to four arbitrary requests (method, path and query, headers, body,
//! with or without the admin token, signed as Vipps or not) to the whole axum application, in
//! process, on a fresh in-memory store holding one enabled provider with a registered webhook
//! and its secret. Signed webhooks carry a valid signature over the arbitrary body, so their
//! bodies reach parsing and recording.
//!
//! Checks: nothing panics; no answer is a 5xx (but the documented `502 vipps_error` of
//! `GET /providers/{id}/webhook/remote`, whose Vipps is a closed local port here); every error
//! answer to a method other than HEAD is JSON of the shape `{"error": {"code", "message"}}`.
#![no_main]

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paystate_domain::events::{
    DomainEvent, ProviderCreated, ProviderEnabled, RegistrationReason, WebhookRegistered,
};
use paystate_domain::{
    streams, Environment, Fingerprint, HttpUrl, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use paystate_projections::ProjectionsHandle;
use paystate_server::ingestion::rejections::RejectionBudget;
use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_server::{AdminToken, AppParts, AppState, ServerConfig};
use paystate_store::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};
use paystate_vipps::signature::{imf_fixdate, sign_delivery, RegisteredUrl, WebhookSecret};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

const PROVIDER: &str = "fuzz-shop";
const PUBLIC_URL: &str = "https://pay.example.no";
const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789";
const SECRET: &str = "fuzz-webhook-secret-4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVq";

#[derive(Arbitrary, Debug)]
enum MethodChoice<'a> {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Route {
    Webhook,
    AnyWebhook,
    Payment,
    Payments,
    Events,
    Provider,
    Providers,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Root,
}

impl Route {
    fn prefix(&self) -> &'static str {
        match self {
            Route::Webhook => "/webhooks/vipps/fuzz-shop",
            Route::AnyWebhook => "/webhooks/vipps/",
            Route::Payment => "/payments/fuzz-shop/",
            Route::Payments => "/payments",
            Route::Events => "/events",
            Route::Provider => "/providers/fuzz-shop",
            Route::Providers => "/providers",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Root => "/",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum HeaderChoice<'a> {
    ContentType,
    ContentLength,
    Host,
    XMsDate,
    XMsContentSha256,
    Authorization,
    XVippsAuthorization,
    XRequestId,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Call<'a> {
    method: MethodChoice<'a>,
    route: Route,
    /// Appended to the route's path: `/`, `?`, `&`, `=` and `%` kept as sent, bytes no URI may
    /// hold percent-encoded.
    rest: &'a [u8],
    headers: Vec<(HeaderChoice<'a>, &'a [u8])>,
    with_admin_token: bool,
    /// Sign the body as Vipps does for the provider's registered URL, at the current time.
    signed_as_vipps: bool,
    body: &'a [u8],
}

#[derive(Arbitrary, Debug)]
struct Exchange<'a> {
    first: Call<'a>,
    then: Vec<Call<'a>>,
}

fuzz_target!(|exchange: Exchange<'_>| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let app = app().await;
        for call in std::iter::once(exchange.first).chain(exchange.then).take(4) {
            let Some(request) = request(call) else {
                continue;
            };
            let method = request.method().clone();
            let uri = request.uri().clone();
            let response = app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("answer body")
                .to_bytes();
            let shown = String::from_utf8_lossy(&body);
            if status.is_client_error() || status.is_server_error() {
                if method == Method::HEAD {
                    assert!(!status.is_server_error(), "{method} {uri}: {status}");
                    continue;
                }
                let error: serde_json::Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| panic!("{method} {uri}: {status}, not JSON: {shown}"));
                let code = error["error"]["code"].as_str();
                assert!(
                    code.is_some() && error["error"]["message"].is_string(),
                    "{method} {uri}: {status}, not an error body: {shown}"
                );
                let vipps_unreachable = status.as_u16() == 502
                    && code == Some("vipps_error")
                    && uri.path().ends_with("/webhook/remote");
                assert!(
                    !status.is_server_error() || vipps_unreachable,
                    "{method} {uri}: {status} {shown}"
                );
            }
        }
    });
});

fn request(call: Call<'_>) -> Option<Request<Body>> {
    let method = match call.method {
        MethodChoice::Get => Method::GET,
        MethodChoice::Post => Method::POST,
        MethodChoice::Put => Method::PUT,
        MethodChoice::Delete => Method::DELETE,
        MethodChoice::Patch => Method::PATCH,
        MethodChoice::Head => Method::HEAD,
        MethodChoice::Options => Method::OPTIONS,
        MethodChoice::Other(name) => Method::from_bytes(name.as_bytes()).ok()?,
    };
    let mut target = call.route.prefix().to_owned();
    for byte in call.rest {
        match byte {
            b'!'..=b'~' if *byte != b'#' => target.push(char::from(*byte)),
            _ => target.push_str(&format!("%{byte:02X}")),
        }
    }
    let mut builder = Request::builder().method(method).uri(target.as_str());
    if call.with_admin_token {
        builder = builder.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    if call.signed_as_vipps {
        let url = RegisteredUrl::parse(&format!("{PUBLIC_URL}/webhooks/vipps/{PROVIDER}"))
            .expect("registered URL");
        let signed = sign_delivery(
            &WebhookSecret::new(SECRET),
            &url,
            call.body,
            &imf_fixdate(SystemTime::now()),
        );
        for (name, value) in signed.pairs() {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in call.headers {
        let name = match name {
            HeaderChoice::ContentType => HeaderName::from_static("content-type"),
            HeaderChoice::ContentLength => HeaderName::from_static("content-length"),
            HeaderChoice::Host => HeaderName::from_static("host"),
            HeaderChoice::XMsDate => HeaderName::from_static("x-ms-date"),
            HeaderChoice::XMsContentSha256 => HeaderName::from_static("x-ms-content-sha256"),
            HeaderChoice::Authorization => HeaderName::from_static("authorization"),
            HeaderChoice::XVippsAuthorization => HeaderName::from_static("x-vipps-authorization"),
            HeaderChoice::XRequestId => HeaderName::from_static("x-request-id"),
            HeaderChoice::Other(name) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            builder = builder.header(name, value);
        }
    }
    builder.body(Body::from(call.body.to_vec())).ok()
}

fn event(event: DomainEvent) -> NewEvent {
    NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    )
}

/// The application on a fresh in-memory store: one enabled provider whose webhook is
/// registered with [`SECRET`], projections caught up and following the log. Vipps is a closed
/// local port, so a route that calls it fails at once and never reaches the internet.
async fn app() -> axum::Router {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let id = ProviderId::parse(PROVIDER).expect("provider id");
    let public_url = HttpUrl::parse(PUBLIC_URL).expect("public URL");
    let webhook_url = public_url.webhook_url(&id).expect("webhook URL");
    let version = SecretVersion::new(1).expect("secret version");
    let provider_events = vec![
        event(DomainEvent::from(ProviderCreated {
            provider_id: id.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: Msn::parse("123456").expect("msn"),
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("fp").expect("fingerprint"),
            public_url,
        })),
        event(DomainEvent::from(ProviderEnabled {})),
        event(DomainEvent::from(WebhookRegistered {
            registration_id: RegistrationId::parse("reg-1").expect("registration id"),
            url: webhook_url,
            events: WebhookEventType::all_epayment(),
            secret_version: version,
            secret_fingerprint: Fingerprint::parse("sfp").expect("fingerprint"),
            reason: RegistrationReason::Enabled,
        })),
    ];
    store
        .append(
            &StreamId::new(streams::provider_stream(&id)),
            ExpectedVersion::Any,
            provider_events,
        )
        .await
        .expect("provider appended");
    let vault = Arc::new(SecretVault::open(store.clone(), MasterKey::generate()).expect("vault"));
    vault
        .put_webhook_secret(&id, version, &WebhookSecret::new(SECRET))
        .expect("secret stored");
    let projections = ProjectionsHandle::default();
    paystate_projections::catch_up(&projections, store.as_ref()).expect("caught up");
    projections.mark_caught_up();
    tokio::spawn(paystate_projections::follow(
        projections.clone(),
        store.clone(),
        Duration::from_secs(60),
        std::future::pending(),
    ));

    let config = ServerConfig::new(
        "/nonexistent-fuzz-data",
        "127.0.0.1:9".parse().expect("address"),
        AdminToken::new(ADMIN_TOKEN).expect("admin token"),
    );
    let vipps = "http://127.0.0.1:9".parse().expect("Vipps URL");
    let webhook_apis = paystate_server::registration::vipps_apis(vault.clone(), Some(&vipps));
    paystate_server::app::app(AppState::new(AppParts {
        store,
        config: Arc::new(config),
        projections,
        vault,
        webhook_apis,
        rejections: Arc::new(RejectionBudget::new(2)),
        metrics: paystate_server::metrics::install(),
    }))
}
