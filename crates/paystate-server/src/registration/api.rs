//! The slice of the Vipps Webhooks API the reactor uses, as a trait so that its decisions can be
//! tested against a scripted fake; [`VippsWebhooks`](super::vipps::VippsWebhooks) is the real
//! one.

use futures::future::BoxFuture;
use paystate_domain::provider::RemoteWebhook;
use paystate_domain::{
    Environment, Fingerprint, HttpUrl, Msn, ProviderId, RegistrationId, WebhookEventType,
};
use paystate_vipps::WebhookSecret;
use std::fmt;
use std::sync::Arc;

/// A registration Vipps just created: its id and the secret it shows once.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub id: RegistrationId,
    pub secret: WebhookSecret,
}

/// What a delete came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Vipps did not know the id (already deleted): the goal is reached all the same.
    AlreadyGone,
}

/// A failed call, in words safe to record in `last_registration_error`: never a token, a
/// secret or a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebhookApiError {
    pub message: String,
}

impl WebhookApiError {
    pub fn new(message: impl Into<String>) -> WebhookApiError {
        WebhookApiError {
            message: message.into(),
        }
    }
}

/// The Webhooks API of one merchant (MSN) in one environment, with its credentials.
pub trait WebhookApi: Send + Sync + fmt::Debug {
    /// `GET /webhooks/v1/webhooks`.
    fn list(&self) -> BoxFuture<'_, Result<Vec<RemoteWebhook>, WebhookApiError>>;
    /// `POST /webhooks/v1/webhooks`.
    fn register<'a>(
        &'a self,
        url: &'a HttpUrl,
        events: &'a [WebhookEventType],
    ) -> BoxFuture<'a, Result<NewRegistration, WebhookApiError>>;
    /// `DELETE /webhooks/v1/webhooks/{id}`.
    fn delete<'a>(
        &'a self,
        id: &'a RegistrationId,
    ) -> BoxFuture<'a, Result<Deletion, WebhookApiError>>;
}

/// Whose Webhooks API to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub provider: ProviderId,
    pub environment: Environment,
    pub msn: Msn,
    /// Which stored credentials to use.
    pub credentials_fingerprint: Fingerprint,
}

/// Connects to the Webhooks API of a [`Target`].
pub trait WebhookApiFactory: Send + Sync + fmt::Debug {
    fn connect(&self, target: &Target) -> Result<Arc<dyn WebhookApi>, WebhookApiError>;
}
