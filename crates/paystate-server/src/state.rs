//! What every request handler can reach.

use crate::config::ServerConfig;
use crate::ingestion::rejections::RejectionBudget;
use crate::secrets::SecretVault;
use metrics_exporter_prometheus::PrometheusHandle;
use paystate_projections::ProjectionsHandle;
use paystate_store::EventStore;
use std::sync::Arc;

/// Shared state of one running server. Cloning is cheap (every field is a handle).
#[derive(Clone)]
pub struct AppState {
    /// The event log: the only source of truth.
    pub store: Arc<dyn EventStore>,
    pub config: Arc<ServerConfig>,
    /// Live read models folded from the log; handlers read them and wait on their position.
    pub projections: ProjectionsHandle,
    /// Webhook secrets and API credentials, encrypted at rest, kept apart from the log.
    pub vault: Arc<SecretVault>,
    /// The per-provider budget of full rejection records.
    pub rejections: Arc<RejectionBudget>,
    /// The Vipps Webhooks API per provider target, shared by the registration reactor and the
    /// provider routes so that access tokens are fetched once and reused.
    pub webhook_apis: Arc<dyn crate::registration::WebhookApiFactory>,
    /// Renders `/metrics`; the recorder behind it is process-wide.
    pub metrics: PrometheusHandle,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("applied", &self.projections.applied())
            .finish_non_exhaustive()
    }
}
