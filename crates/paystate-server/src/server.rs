//! Starting and stopping one server: [`run`] (opens the store in the data directory) and
//! [`run_with_store`] (any [`EventStore`], e.g. in memory).

use crate::config::{ConfigError, ServerConfig};
use crate::secrets::{MasterKey, MasterKeyError, SecretVault, VaultError};
use crate::shutdown::BackgroundTasks;
use crate::state::AppState;
use paystate_projections::ProjectionsHandle;
use paystate_store::{EventStore, StoreError};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    let (master_key, key_source) = MasterKey::from_environment(&config.data_dir)?;
    tracing::info!(source = ?key_source, "master key loaded");
    let vault = Arc::new(SecretVault::open(store.clone(), master_key)?);

    let projections = ProjectionsHandle::new(store.head()?);
    projections.mark_caught_up();
    let tasks = BackgroundTasks::new();

    let state = AppState {
        store: store.clone(),
        config: config.clone(),
        projections,
        vault,
        metrics,
    };
    let app = crate::app::app(state);

    let address = listener.local_addr()?;
    tracing::info!(%address, public_url = %config.public_url, data = %config.data_dir.display(), "listening");

    // The shutdown future is observed twice: by axum (stop accepting, drain connections) and
    // by the grace timer that bounds the drain, so it goes through a watch.
    let (stopping_tx, mut stopping_rx) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stopping_tx.send(true);
    };
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    let grace = config.shutdown_grace;
    let drain_deadline = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        result = serve => result,
        () = drain_deadline => {
            tracing::warn!(?grace, "in-flight requests did not finish in time; closing anyway");
            Ok(())
        }
    };

    tasks.shutdown(config.shutdown_grace).await;
    let closed = store.close().await;
    served?;
    closed?;
    tracing::info!("stopped");
    Ok(())
}
