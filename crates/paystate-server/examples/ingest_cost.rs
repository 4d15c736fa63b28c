//! The server's own cost per webhook, in process: the whole router (layers, verification,
//! parsing, encoding) on the in-memory store, without sockets or a disk.
//!
//! Prints the wall time per accepted webhook. Under `valgrind --tool=callgrind` (instructions)
//! or `valgrind --tool=dhat` (allocations), the difference of two runs with different request
//! counts gives the cost per webhook without the set-up.
//!
//! ```text
//! cargo run --release -p paystate-server --example ingest_cost -- 20000
//! ```

use axum::body::Body;
use axum::http::{Request, StatusCode};
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
use std::time::{Instant, SystemTime};
use tower::ServiceExt;

const SECRET: &str =
    "4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMhbCn8vVaimKRcKmqSvy5yQY4ZDSa9ba6tU0zxeA==";

fn event(event: DomainEvent) -> NewEvent {
    NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);

    // As `paystate serve` logs (INFO), into a sink: what the log lines cost, not the terminal.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(std::io::sink)
        .init();

    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let id = ProviderId::parse("bench-shop")?;
    let public_url = HttpUrl::parse("https://pay.example.no")?;
    let webhook_url = public_url.webhook_url(&id)?;
    let version = SecretVersion::new(1)?;
    let provider_events = vec![
        event(DomainEvent::from(ProviderCreated {
            provider_id: id.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: Msn::parse("123456")?,
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("fp")?,
            public_url,
        })),
        event(DomainEvent::from(ProviderEnabled {})),
        event(DomainEvent::from(WebhookRegistered {
            registration_id: RegistrationId::parse("reg-1")?,
            url: webhook_url.clone(),
            events: WebhookEventType::all_epayment(),
            secret_version: version,
            secret_fingerprint: Fingerprint::parse("sfp")?,
            reason: RegistrationReason::Enabled,
        })),
    ];
    store
        .append(
            &StreamId::new(streams::provider_stream(&id)),
            ExpectedVersion::Any,
            provider_events,
        )
        .await?;
    let vault = Arc::new(SecretVault::open(store.clone(), MasterKey::generate())?);
    let secret = WebhookSecret::new(SECRET);
    vault.put_webhook_secret(&id, version, &secret)?;
    let projections = ProjectionsHandle::default();
    paystate_projections::catch_up(&projections, store.as_ref())?;
    projections.mark_caught_up();

    let config = ServerConfig::new(
        "/nonexistent-cost-data",
        "127.0.0.1:9".parse()?,
        AdminToken::new("cost-admin-token-0123456789")?,
    );
    let vipps = "http://127.0.0.1:9".parse()?;
    let webhook_apis = paystate_server::registration::vipps_apis(vault.clone(), Some(&vipps));
    let state = AppState::new(AppParts {
        store,
        config: Arc::new(config),
        projections,
        vault,
        webhook_apis,
        rejections: Arc::new(RejectionBudget::new(2)),
        metrics: paystate_server::metrics::install(),
    });
    let app = paystate_server::app::app(state);

    let url = RegisteredUrl::parse(webhook_url.as_str())?;
    let names = ["CREATED", "AUTHORIZED", "CAPTURED"];
    let mut elapsed = std::time::Duration::ZERO;
    for n in 0..requests {
        let body = format!(
            r#"{{"msn":"123456","reference":"order-{}","pspReference":"psp-{n}","name":"{}","amount":{{"currency":"NOK","value":49900}},"timestamp":"2025-01-14T09:30:01.123Z","idempotencyKey":null,"success":true}}"#,
            n / 3,
            names[(n % 3) as usize]
        );
        let signed = sign_delivery(
            &secret,
            &url,
            body.as_bytes(),
            &imf_fixdate(SystemTime::now()),
        );
        let mut request = Request::post(url.path_and_query())
            .header("host", url.host_for_signing())
            .header("content-type", "application/json")
            .header("webhook-id", "reg-1");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let request = request.body(Body::from(body))?;

        let started = Instant::now();
        let response = app.clone().oneshot(request).await?;
        let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        elapsed += started.elapsed();
        let answer = answer?;
        if !answer.starts_with(br#"{"status":"accepted""#) {
            return Err(format!(
                "request {n}: {:?} {}",
                StatusCode::OK,
                String::from_utf8_lossy(&answer)
            )
            .into());
        }
    }
    println!(
        "{requests} webhooks: {:.1} µs per webhook",
        elapsed.as_secs_f64() * 1e6 / requests as f64
    );
    Ok(())
}
