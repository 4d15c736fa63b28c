//! The provider view of `GET /providers/{id}` (SPEC §3.2).

use super::aggregate::{Provider, ProviderState, WebhookCounters};
use crate::events::RegistrationReason;
use crate::ids::{
    Environment, Fingerprint, HttpUrl, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The current registration as the provider view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub registration_id: RegistrationId,
    pub url: HttpUrl,
    pub events: Vec<WebhookEventType>,
    pub secret_version: SecretVersion,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    pub reason: RegistrationReason,
}

/// A provider as the API shows it. No secret or credential, only a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub environment: Environment,
    pub msn: Msn,
    pub state: ProviderState,
    pub webhook: Option<WebhookView>,
    pub registrations_total: u64,
    /// The last registration error, until a registration succeeds.
    pub last_registration_error: Option<String>,
    pub credentials_fingerprint: Fingerprint,
    pub webhooks: WebhookCounters,
    pub position: u64,
}

impl Provider {
    pub fn view(&self) -> ProviderView {
        ProviderView {
            id: self.id.clone(),
            kind: self.kind,
            environment: self.environment,
            msn: self.msn.clone(),
            state: self.state,
            webhook: self.current.as_ref().map(|current| WebhookView {
                registration_id: current.registration_id.clone(),
                url: current.url.clone(),
                events: current.events.clone(),
                secret_version: current.secret_version,
                registered_at: current.registered_at,
                reason: current.reason,
            }),
            registrations_total: self.registrations_total,
            last_registration_error: self
                .last_registration_error
                .as_ref()
                .map(|error| error.error.clone()),
            credentials_fingerprint: self.credentials_fingerprint.clone(),
            webhooks: self.webhooks.clone(),
            position: self.position,
        }
    }
}
