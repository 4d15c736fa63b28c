//! What every request handler can reach: [`AppState`], one shared [`AppParts`].

use crate::config::ServerConfig;
use crate::ingestion::plan::VerificationPlans;
use crate::ingestion::record::AppendMetrics;
use crate::ingestion::rejections::RejectionBudget;
use crate::routes::ops::OpenApiDocument;
use crate::secrets::SecretVault;
use metrics_exporter_prometheus::PrometheusHandle;
use paystate_projections::ProjectionsHandle;
use paystate_store::EventStore;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// Shared state of one running server. Every handler and middleware gets a clone per request,
/// so it is one `Arc` (one reference count), not a handle per part; the parts are reached
/// through `Deref` (`state.store`, `state.config`, ...).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What a server's handlers share.
pub struct AppParts {
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

/// The parts and what the server derives from them once.
pub(crate) struct Shared {
    parts: AppParts,
    /// Per provider, what verifying its deliveries needs, derived from the provider as the
    /// projections last showed it (see [`VerificationPlans`]).
    pub(crate) plans: VerificationPlans,
    /// `/openapi.json`, serialized on first request.
    pub(crate) openapi: OnceLock<OpenApiDocument>,
    /// The histograms of ingestion's appends.
    pub(crate) append_metrics: AppendMetrics,
}

impl AppState {
    /// The state of a server with these parts. Its metric handles come from the recorder
    /// behind `parts.metrics`, so that one is installed by now.
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(Shared {
            parts,
            plans: VerificationPlans::default(),
            openapi: OnceLock::new(),
            append_metrics: AppendMetrics::register(),
        }))
    }

    /// What is derived from the parts and cached for the server's lifetime.
    pub(crate) fn shared(&self) -> &Shared {
        &self.0
    }
}

impl Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0.parts
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.parts.fmt(f)
    }
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppParts")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("applied", &self.projections.applied())
            .finish_non_exhaustive()
    }
}
