//! Webhooks API v1: register, list, delete (VIPPS.md §1).

use paystate_domain::{RegistrationId, WebhookEventType};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{read_json, VippsApiError, VippsClient};
use crate::signature::{RegisteredUrl, WebhookSecret};

/// A new registration. The secret is shown by Vipps this once and cannot be read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: RegistrationId,
    pub secret: WebhookSecret,
}

/// A registration as listed by Vipps (the list never includes secrets).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookInfo {
    pub id: RegistrationId,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Serialize)]
struct RegisterBody<'a> {
    url: &'a str,
    events: Vec<&'a str>,
}

#[derive(Deserialize)]
struct RegisterAnswer {
    id: RegistrationId,
    secret: WebhookSecret,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    webhooks: Vec<WebhookInfo>,
}

impl VippsClient {
    /// `POST /webhooks/v1/webhooks`: registers `url` for `events`. Registering the same URL
    /// twice makes a second, independent registration with its own secret (VIPPS.md §1):
    /// reconcile with [`VippsClient::list_webhooks`] rather than registering blindly.
    pub async fn register_webhook(
        &self,
        url: &RegisteredUrl,
        events: &[WebhookEventType],
    ) -> Result<Registration, VippsApiError> {
        let body = RegisterBody {
            url: url.as_str(),
            events: events.iter().map(WebhookEventType::as_str).collect(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|error| VippsApiError::InvalidRequest(error.to_string()))?;
        let answer = self
            .call(Method::POST, "/webhooks/v1/webhooks", Some(body), None)
            .await?;
        // The answer holds the secret: an error here must not echo the body.
        let registered: RegisterAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
            VippsApiError::InvalidResponse(format!(
                "webhook registration answer ({}) is not {{\"id\", \"secret\"}} with a valid id",
                answer.status
            ))
        })?;
        if registered.secret.expose().is_empty() {
            return Err(VippsApiError::InvalidResponse(
                "webhook registration answer has an empty secret".into(),
            ));
        }
        Ok(Registration {
            id: registered.id,
            secret: registered.secret,
        })
    }

    /// `GET /webhooks/v1/webhooks`: every registration of this MSN.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookInfo>, VippsApiError> {
        let answer = self
            .call(Method::GET, "/webhooks/v1/webhooks", None, None)
            .await?;
        Ok(read_json::<ListAnswer>(&answer.body, "webhook list")?.webhooks)
    }

    /// `DELETE /webhooks/v1/webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &RegistrationId) -> Result<(), VippsApiError> {
        // A registration id holds only `[A-Za-z0-9._-]`: safe in a path as is.
        self.call(
            Method::DELETE,
            &format!("/webhooks/v1/webhooks/{id}"),
            None,
            None,
        )
        .await?;
        Ok(())
    }
}
