//! The real Webhooks API: [`paystate_vipps::client::VippsClient`] per target, with the
//! credentials the log names, read from the vault.

use super::api::{
    Deletion, NewRegistration, Target, WebhookApi, WebhookApiError, WebhookApiFactory,
};
use crate::secrets::SecretVault;
use futures::future::BoxFuture;
use paystate_domain::provider::RemoteWebhook;
use paystate_domain::{HttpUrl, RegistrationId, WebhookEventType};
use paystate_vipps::client::{ClientConfig, VippsApiError, VippsClient};
use paystate_vipps::signature::RegisteredUrl;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many clients are kept (each holds a cached access token); beyond it the cache starts
/// over. Old targets stay useful for deleting registrations superseded by a change.
const MAX_CACHED_CLIENTS: usize = 256;

/// Builds and caches one [`VippsClient`] per [`Target`], so an access token is fetched once
/// and reused until it nears expiry.
#[derive(Debug)]
pub struct VippsWebhooks {
    vault: Arc<SecretVault>,
    /// `--vipps-base-url`: replaces the environment's base URL for every provider.
    base_url_override: Option<String>,
    /// A std mutex: held only to look up or insert, never across an `.await`.
    clients: Mutex<HashMap<Target, Arc<VippsApi>>>,
}

impl VippsWebhooks {
    pub fn new(vault: Arc<SecretVault>, base_url_override: Option<String>) -> VippsWebhooks {
        VippsWebhooks {
            vault,
            base_url_override,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn build(&self, target: &Target) -> Result<VippsApi, WebhookApiError> {
        let credentials = self
            .vault
            .credentials_by_fingerprint(&target.provider, &target.credentials_fingerprint)
            .map_err(|error| WebhookApiError::new(format!("the stored credentials cannot be read: {error}")))?
            .ok_or_else(|| {
                WebhookApiError::new(format!(
                    "no stored credentials have the fingerprint {}; set them again with PUT /providers/{}/credentials",
                    target.credentials_fingerprint, target.provider
                ))
            })?;
        let mut config = ClientConfig::new(target.environment, target.msn.clone(), credentials);
        if let Some(base_url) = &self.base_url_override {
            config = config
                .with_base_url(base_url)
                .map_err(|error| api_error("configure", &error))?;
        }
        let client = VippsClient::new(config).map_err(|error| api_error("configure", &error))?;
        Ok(VippsApi { client })
    }
}

impl VippsWebhooks {
    /// The cached client of `target`, built on first use.
    pub fn api(&self, target: &Target) -> Result<Arc<VippsApi>, WebhookApiError> {
        let cached = self
            .clients
            .lock()
            .ok()
            .and_then(|clients| clients.get(target).cloned());
        if let Some(api) = cached {
            return Ok(api);
        }
        let api = Arc::new(self.build(target)?);
        if let Ok(mut clients) = self.clients.lock() {
            if clients.len() >= MAX_CACHED_CLIENTS {
                clients.clear();
            }
            clients.insert(target.clone(), api.clone());
        }
        Ok(api)
    }
}

impl WebhookApiFactory for VippsWebhooks {
    fn connect(&self, target: &Target) -> Result<Arc<dyn WebhookApi>, WebhookApiError> {
        Ok(self.api(target)?)
    }
}

/// One merchant's Vipps APIs in one environment (the Webhooks API, and the ePayment reads
/// the payment poller makes).
#[derive(Debug)]
pub struct VippsApi {
    client: VippsClient,
}

impl VippsApi {
    /// The client, for calls beyond the Webhooks API (the payment poller's ePayment reads).
    pub fn client(&self) -> &VippsClient {
        &self.client
    }
}

fn api_error(operation: &str, error: &VippsApiError) -> WebhookApiError {
    WebhookApiError::new(format!("{operation}: {error}"))
}

impl WebhookApi for VippsApi {
    fn list(&self) -> BoxFuture<'_, Result<Vec<RemoteWebhook>, WebhookApiError>> {
        Box::pin(async move {
            let listed = self
                .client
                .list_webhooks()
                .await
                .map_err(|error| api_error("list webhooks", &error))?;
            Ok(listed
                .into_iter()
                .filter_map(|info| {
                    // A URL that is not a valid http(s) URL cannot be ours; such an entry is
                    // left out rather than failing the whole list.
                    let url = HttpUrl::parse(&info.url).ok()?;
                    let events = info
                        .events
                        .iter()
                        .filter_map(|event| WebhookEventType::parse(event).ok())
                        .collect();
                    Some(RemoteWebhook {
                        id: info.id,
                        url,
                        events,
                    })
                })
                .collect())
        })
    }

    fn register<'a>(
        &'a self,
        url: &'a HttpUrl,
        events: &'a [WebhookEventType],
    ) -> BoxFuture<'a, Result<NewRegistration, WebhookApiError>> {
        Box::pin(async move {
            let url = RegisteredUrl::parse(url.as_str()).map_err(|error| {
                WebhookApiError::new(format!(
                    "register webhook: the URL {url} is not usable: {error}"
                ))
            })?;
            let registration = self
                .client
                .register_webhook(&url, events)
                .await
                .map_err(|error| api_error("register webhook", &error))?;
            Ok(NewRegistration {
                id: registration.id,
                secret: registration.secret,
            })
        })
    }

    fn delete<'a>(
        &'a self,
        id: &'a RegistrationId,
    ) -> BoxFuture<'a, Result<Deletion, WebhookApiError>> {
        Box::pin(async move {
            match self.client.delete_webhook(id).await {
                Ok(()) => Ok(Deletion::Deleted),
                Err(error) if error.status() == Some(404) => Ok(Deletion::AlreadyGone),
                Err(error) => Err(api_error("delete webhook", &error)),
            }
        })
    }
}
