//! The receiver a team would build instead of paystate: axum + PostgreSQL. Each webhook is
//! verified with the same verifier paystate uses, then, in one transaction, the raw delivery
//! is INSERTed and the payment row UPSERTed; the commit waits for the WAL flush
//! (`synchronous_commit = on`), so a 200 is as durable as paystate's.
//!
//! It runs in its own process (`paystate-bench alternative ...`) with a pool of connections.

use super::cluster::PostgresCluster;
use crate::error::BenchError;
use crate::targets::child::{free_loopback_address, ChildServer};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use paystate_domain::SecretVersion;
use paystate_vipps::signature::{RegisteredUrl, WebhookSecret};
use paystate_vipps::verify::{verify_delivery, DeliveryRequest, DEFAULT_TOLERANCE};
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Statement};

/// The environment variable that hands the webhook secret to the child process (not its
/// command line, which `ps` shows).
pub const SECRET_ENV: &str = "PAYSTATE_BENCH_WEBHOOK_SECRET";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    provider_id TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    signature_headers TEXT NOT NULL,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS payments (
    provider_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    state TEXT NOT NULL,
    currency TEXT NOT NULL,
    authorized BIGINT NOT NULL,
    captured BIGINT NOT NULL,
    events INTEGER NOT NULL,
    last_event_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider_id, reference)
);";

const INSERT_DELIVERY: &str =
    "INSERT INTO webhook_deliveries (provider_id, signature_headers, body) \
     VALUES ($1, $2, $3)";

const UPSERT_PAYMENT: &str = "INSERT INTO payments AS p \
     (provider_id, reference, state, currency, authorized, captured, events, last_event_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 1, now()) \
     ON CONFLICT (provider_id, reference) DO UPDATE SET \
       state = CASE WHEN EXCLUDED.state = 'CREATED' THEN p.state ELSE EXCLUDED.state END, \
       authorized = p.authorized + EXCLUDED.authorized, \
       captured = p.captured + EXCLUDED.captured, \
       events = p.events + 1, \
       last_event_at = now()";

/// What the alternative receiver needs.
#[derive(Debug, Clone)]
pub struct AlternativeConfig {
    /// `tokio-postgres` connection string.
    pub postgres: String,
    pub provider_id: String,
    pub registered_url: RegisteredUrl,
    pub secret: WebhookSecret,
    /// Connections in the pool (what a team would configure; requests beyond wait).
    pub pool_size: usize,
}

/// One pooled connection with its prepared statements.
struct Connection {
    client: Client,
    insert_delivery: Statement,
    upsert_payment: Statement,
}

/// A fixed pool: a semaphore counts idle connections, a std mutex guards the idle list (held
/// for a push or a pop only, never across an await).
struct Pool {
    idle: Mutex<Vec<Connection>>,
    available: Semaphore,
}

struct Pooled<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    async fn connect(config: &AlternativeConfig) -> Result<Pool, BenchError> {
        let mut idle = Vec::with_capacity(config.pool_size);
        for index in 0..config.pool_size.max(1) {
            let (client, connection) = tokio_postgres::connect(&config.postgres, NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    eprintln!("alternative: a PostgreSQL connection ended: {error}");
                }
            });
            if index == 0 {
                client.batch_execute(SCHEMA).await?;
            }
            client.batch_execute("SET synchronous_commit = on").await?;
            let insert_delivery = client.prepare(INSERT_DELIVERY).await?;
            let upsert_payment = client.prepare(UPSERT_PAYMENT).await?;
            idle.push(Connection {
                client,
                insert_delivery,
                upsert_payment,
            });
        }
        let size = idle.len();
        Ok(Pool {
            idle: Mutex::new(idle),
            available: Semaphore::new(size),
        })
    }

    async fn get(&self) -> Option<Pooled<'_>> {
        let permit = self.available.acquire().await.ok()?;
        let connection = self.idle.lock().ok()?.pop()?;
        Some(Pooled {
            pool: self,
            connection: Some(connection),
            _permit: permit,
        })
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Some(connection), Ok(mut idle)) = (self.connection.take(), self.pool.idle.lock()) {
            idle.push(connection);
        }
    }
}

struct AppState {
    pool: Pool,
    provider_id: String,
    registered_url: RegisteredUrl,
    secret: WebhookSecret,
}

/// The fields of an ePayment event the payment row needs.
#[derive(Deserialize)]
struct EventBody {
    reference: String,
    name: String,
    amount: EventAmount,
}

#[derive(Deserialize)]
struct EventAmount {
    currency: String,
    value: i64,
}

/// Serves the alternative on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: AlternativeConfig,
) -> Result<(), BenchError> {
    let pool = Pool::connect(&config).await?;
    let state = Arc::new(AppState {
        pool,
        provider_id: config.provider_id,
        registered_url: config.registered_url,
        secret: config.secret,
    });
    let router = Router::new()
        .route("/webhooks/vipps/{provider_id}", post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    axum::serve(listener, router)
        .await
        .map_err(BenchError::io("serving the alternative"))
}

async fn receive(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(version) = SecretVersion::new(1) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let verified = verify_delivery(
        &DeliveryRequest::new(&headers, &body),
        &state.registered_url,
        &[(version, &state.secret)],
        time::OffsetDateTime::now_utc(),
        DEFAULT_TOLERANCE,
    );
    let Ok(verified) = verified else {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_signature"}"#).into_response();
    };
    let signature_headers = format!(
        "x-ms-date={};x-ms-content-sha256={};signature={}",
        verified.signed.x_ms_date, verified.signed.x_ms_content_sha256, verified.signed.signature
    );
    let event = serde_json::from_slice::<EventBody>(&body).ok();
    match record(&state, &signature_headers, &body, event.as_ref()).await {
        Ok(()) => (StatusCode::OK, r#"{"status":"accepted"}"#).into_response(),
        Err(error) => {
            eprintln!("alternative: recording failed: {error}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"unavailable"}"#,
            )
                .into_response()
        }
    }
}

async fn record(
    state: &AppState,
    signature_headers: &str,
    body: &[u8],
    event: Option<&EventBody>,
) -> Result<(), BenchError> {
    let mut pooled = state
        .pool
        .get()
        .await
        .ok_or_else(|| BenchError::Setup("the connection pool is closed".into()))?;
    let Some(connection) = pooled.connection.as_mut() else {
        return Err(BenchError::Setup("no pooled connection".into()));
    };
    let transaction = connection.client.transaction().await?;
    transaction
        .execute(
            &connection.insert_delivery,
            &[&state.provider_id, &signature_headers, &body],
        )
        .await?;
    if let Some(event) = event {
        let (row_state, authorized, captured) = match event.name.as_str() {
            "AUTHORIZED" => ("AUTHORIZED", event.amount.value, 0),
            "CAPTURED" => ("AUTHORIZED", 0, event.amount.value),
            other => (other, 0, 0),
        };
        transaction
            .execute(
                &connection.upsert_payment,
                &[
                    &state.provider_id,
                    &event.reference,
                    &row_state,
                    &event.amount.currency,
                    &authorized,
                    &captured,
                ],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// The alternative as a child process on a free loopback port.
#[derive(Debug)]
pub struct AlternativeServer {
    pub server: ChildServer,
}

impl AlternativeServer {
    /// Starts `bench_exe alternative` against `cluster`.
    pub async fn start(
        bench_exe: &Path,
        cluster: &PostgresCluster,
        provider_id: &str,
        registered_url: &RegisteredUrl,
        secret: &WebhookSecret,
        pool_size: usize,
        log: &Path,
    ) -> Result<AlternativeServer, BenchError> {
        let address = free_loopback_address()?;
        let mut command = tokio::process::Command::new(bench_exe);
        command
            .arg("alternative")
            .arg("--listen")
            .arg(address.to_string())
            .arg("--postgres")
            .arg(cluster.connection())
            .arg("--provider-id")
            .arg(provider_id)
            .arg("--registered-url")
            .arg(registered_url.as_str())
            .arg("--pool-size")
            .arg(pool_size.to_string())
            .env(SECRET_ENV, secret.expose());
        let server =
            ChildServer::start("the alternative", command, address, "/healthz", log).await?;
        Ok(AlternativeServer { server })
    }
}
