//! The JSON shapes of the `/providers` routes (SPEC §3.2). These are HTTP types, separate from
//! the stored events and the domain's view; inputs are plain strings checked field by field so
//! that a `400 invalid_request` names the field that broke a rule.

use paystate_domain::provider::{ClassifiedWebhook, ProviderView, RemoteClass, WebhookCounters};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// `POST /providers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CreateProviderRequest {
    /// 1 to 63 of `[a-z0-9_-]`, starting with a letter or digit, e.g. `vipps-test`.
    #[schema(example = "vipps-test")]
    pub id: Option<String>,
    /// `vipps`.
    #[schema(example = "vipps")]
    pub kind: Option<String>,
    /// `test` or `production`.
    #[schema(example = "test")]
    pub environment: Option<String>,
    /// The merchant serial number: 4 to 10 digits.
    #[schema(example = "123456")]
    pub msn: Option<String>,
    /// A JSON object, like the body of `PUT /providers/{id}/credentials`.
    #[serde(default, deserialize_with = "crate::http::object::optional_object")]
    pub credentials: Option<CredentialsRequest>,
    /// Webhook event types to subscribe to; default: all eight ePayment events.
    pub events: Option<Vec<String>>,
}

/// API credentials of a merchant (`PUT /providers/{id}/credentials`, and inside
/// `POST /providers`). Stored encrypted, never answered; `Debug` prints `***` for the secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct CredentialsRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub subscription_key: Option<String>,
}

impl fmt::Debug for CredentialsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsRequest")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("subscription_key", &"***")
            .finish()
    }
}

/// `PUT /providers/{id}/environment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
pub struct EnvironmentRequest {
    /// `test` or `production`.
    #[schema(example = "production")]
    pub environment: Option<String>,
}

/// The provider view (SPEC §3.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderBody {
    pub id: String,
    pub kind: String,
    pub environment: String,
    pub msn: String,
    /// `enabled` or `disabled`.
    pub state: String,
    /// The current registration at Vipps; `null` until registered.
    pub webhook: Option<WebhookBody>,
    /// Registrations made over the provider's life.
    pub registrations_total: u64,
    /// The last failed registration attempt, until one succeeds.
    pub last_registration_error: Option<String>,
    /// A non-reversible fingerprint of the stored credentials.
    pub credentials_fingerprint: String,
    pub webhooks: WebhookCountersBody,
    /// The log position the view reflects.
    pub position: u64,
}

/// The registration deliveries come through.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookBody {
    pub registration_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret_version: u32,
    /// RFC 3339.
    pub registered_at: String,
    /// `enabled`, `credentials_changed`, `environment_changed`, `public_url_changed`,
    /// `manual`, `rotate` or `repair`.
    pub reason: String,
}

/// Deliveries received for the provider.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookCountersBody {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// RFC 3339, or `null` before the first delivery.
    pub last_received_at: Option<String>,
}

/// `GET /providers`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderListBody {
    pub providers: Vec<ProviderBody>,
}

/// `GET /providers/{id}/webhook/remote`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemoteWebhooksBody {
    pub provider_id: String,
    pub msn: String,
    /// The URL our registrations use.
    pub our_url: String,
    pub webhooks: Vec<RemoteWebhookBody>,
}

/// One registration Vipps lists for the MSN.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemoteWebhookBody {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `ours_current`, `ours_old` (ours, superseded or unknown secret) or `foreign`.
    pub class: String,
    /// `true` when the URL is ours but paystate holds no secret for it (it is deleted by
    /// reconciliation).
    pub unknown_secret: bool,
    pub secret_version: Option<u32>,
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<&ProviderView> for ProviderBody {
    fn from(view: &ProviderView) -> ProviderBody {
        ProviderBody {
            id: view.id.to_string(),
            kind: view.kind.as_str().to_owned(),
            environment: view.environment.as_str().to_owned(),
            msn: view.msn.to_string(),
            state: match view.state {
                paystate_domain::provider::ProviderState::Enabled => "enabled",
                paystate_domain::provider::ProviderState::Disabled => "disabled",
            }
            .to_owned(),
            webhook: view.webhook.as_ref().map(|webhook| WebhookBody {
                registration_id: webhook.registration_id.to_string(),
                url: webhook.url.to_string(),
                events: webhook.events.iter().map(ToString::to_string).collect(),
                secret_version: webhook.secret_version.get(),
                registered_at: rfc3339(webhook.registered_at),
                reason: webhook.reason.as_str().to_owned(),
            }),
            registrations_total: view.registrations_total,
            last_registration_error: view.last_registration_error.clone(),
            credentials_fingerprint: view.credentials_fingerprint.to_string(),
            webhooks: WebhookCountersBody::from(&view.webhooks),
            position: view.position,
        }
    }
}

impl From<&WebhookCounters> for WebhookCountersBody {
    fn from(counters: &WebhookCounters) -> WebhookCountersBody {
        WebhookCountersBody {
            accepted: counters.accepted,
            duplicates: counters.duplicates,
            rejected: counters.rejected,
            last_received_at: counters.last_received_at.map(rfc3339),
        }
    }
}

impl From<&ClassifiedWebhook> for RemoteWebhookBody {
    fn from(classified: &ClassifiedWebhook) -> RemoteWebhookBody {
        let (class, unknown_secret) = match classified.class {
            RemoteClass::OursCurrent => ("ours_current", false),
            RemoteClass::OursOld => ("ours_old", false),
            RemoteClass::OursUnknownSecret => ("ours_old", true),
            RemoteClass::Foreign => ("foreign", false),
        };
        RemoteWebhookBody {
            id: classified.webhook.id.to_string(),
            url: classified.webhook.url.to_string(),
            events: classified
                .webhook
                .events
                .iter()
                .map(ToString::to_string)
                .collect(),
            class: class.to_owned(),
            unknown_secret,
            secret_version: classified.secret_version.map(|version| version.get()),
        }
    }
}
