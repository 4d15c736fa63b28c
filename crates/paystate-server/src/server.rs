//! Starting and stopping one server: [`run`] (opens the store in the data directory) and
//! [`run_with_store`] (any [`EventStore`], e.g. in memory).

use crate::config::{ConfigError, ServerConfig};
use crate::http::serve::{ConnectionOptions, Drained};
use crate::ingestion::rejections::{self, RejectionBudget};
use crate::secrets::{MasterKey, MasterKeyError, SecretVault, VaultError};
use crate::shutdown::BackgroundTasks;
use crate::state::{AppParts, AppState};
use paystate_projections::{ProjectionError, ProjectionsHandle};
use paystate_store::{EventStore, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Projections(#[from] ProjectionError),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server on `listener` with the sled store in `config.data_dir` until `shutdown`
/// resolves, then stops accepting, finishes in-flight requests, stops background tasks and
/// closes the store.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    // Installed before the store opens, so the figures the store reports while opening (its
    // head) are recorded too.
    crate::metrics::install();
    let store = crate::store::open(&config.data_dir)?;
    run_with_store(listener, config, store, shutdown).await
}

/// As [`run`], on a store the caller opened. The store is closed on return.
pub async fn run_with_store(
    listener: TcpListener,
    config: ServerConfig,
    store: Arc<dyn EventStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let config = Arc::new(config);
    let metrics = crate::metrics::install();
    // A master key is generated only for a store that holds no sealed secrets yet.
    if SecretVault::exists_in(store.as_ref())? {
        MasterKey::require_existing(&config.data_dir)?;
    }
    let (master_key, key_source) = MasterKey::from_environment(&config.data_dir)?;
    tracing::info!(source = ?key_source, "master key loaded");
    let vault = Arc::new(SecretVault::open(store.clone(), master_key)?);

    let projections = ProjectionsHandle::open(store.as_ref())?;
    let webhook_apis =
        crate::registration::vipps_apis(vault.clone(), config.vipps_base_url.as_ref());
    let state = AppState::new(AppParts {
        store: store.clone(),
        config: config.clone(),
        projections,
        vault,
        webhook_apis: webhook_apis.clone(),
        rejections: Arc::new(RejectionBudget::new(config.rejection_record_budget)),
        metrics,
    });
    let mut tasks = BackgroundTasks::new();
    spawn_background(&state, &mut tasks);
    crate::polling::start(&mut tasks, &state, webhook_apis);
    let app = crate::app::app(state);

    let address = listener.local_addr()?;
    tracing::info!(%address, public_url = %config.public_url, data = %config.data_dir.display(), "listening");

    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
    };
    let options = ConnectionOptions {
        header_read_timeout: config.header_read_timeout,
        shutdown_grace: config.shutdown_grace,
    };
    if crate::http::serve::serve(listener, app, options, signal).await == Drained::TimedOut {
        tracing::warn!(grace = ?config.shutdown_grace, "in-flight requests did not finish in time; closing anyway");
    }

    tasks.shutdown(config.shutdown_grace).await;
    store.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// How often rejection counts of finished minutes are recorded.
const SUPPRESSED_FLUSH_INTERVAL: Duration = Duration::from_secs(15);

/// Every background task of a server: each gets the stop signal and finishes its step on
/// shutdown. Reactors on the log are spawned here.
fn spawn_background(state: &AppState, tasks: &mut BackgroundTasks) {
    if let Err(error) = crate::registration::start(tasks, state, state.config.registration) {
        tracing::error!(%error, "the public URL cannot be a webhook base: webhooks will not be registered");
    }

    let (projections, store, interval) = (
        state.projections.clone(),
        state.store.clone(),
        state.config.projection_commit_interval,
    );
    tasks.spawn("projections", move |mut stop| async move {
        paystate_projections::follow(
            projections,
            store,
            interval,
            async move { stop.stopped().await },
        )
        .await;
    });

    let (budget, store) = (state.rejections.clone(), state.store.clone());
    tasks.spawn("rejection counts", move |mut stop| async move {
        let mut ticker = tokio::time::interval(SUPPRESSED_FLUSH_INTERVAL);
        loop {
            let all = tokio::select! {
                () = stop.stopped() => true,
                _ = ticker.tick() => false,
            };
            for window in budget.take_finished(time::OffsetDateTime::now_utc(), all) {
                rejections::record_suppressed(store.as_ref(), window).await;
            }
            if all {
                break;
            }
        }
    });

    let (projections, store) = (state.projections.clone(), state.store.clone());
    tasks.spawn("lag gauge and provider counters", move |mut stop| async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        let mut announced = std::collections::HashSet::new();
        loop {
            tokio::select! {
                () = stop.stopped() => break,
                _ = ticker.tick() => {
                    // Every known provider's counters exist, at 0 until a delivery,
                    // including those the projections learn while catching up after a start.
                    let new: Vec<_> = projections.read(|projections| {
                        projections
                            .providers()
                            .filter(|provider| !announced.contains(&provider.id))
                            .map(|provider| provider.id.clone())
                            .collect()
                    });
                    for id in new {
                        crate::metrics::announce_provider(id.as_str());
                        announced.insert(id);
                    }
                    if let Ok(head) = store.head() {
                        metrics::gauge!(crate::metrics::LOG_HEAD).set(head.0 as f64);
                        let lag = head.0.saturating_sub(projections.applied().0);
                        metrics::gauge!(crate::metrics::REACTOR_LAG, "reactor" => "projections").set(lag as f64);
                    }
                }
            }
        }
    });
}
