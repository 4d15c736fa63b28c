//! Cleaning up: deleting registrations a newer one superseded, and reconciling a settled
//! provider with Vipps' list.

use super::api::{Deletion, Target, WebhookApi, WebhookApiError};
use super::converge::{AttemptError, Converger, StepError};
use super::journal;
use crate::providers::stream;
use paystate_domain::provider::{
    decide, reconcile, PlannedDeletion, Provider, ProviderCommand, RemoteClass,
};
use paystate_domain::RegistrationId;
use std::sync::Arc;

impl Converger {
    /// Deletes a superseded registration where it lives (the environment and credentials it
    /// was made with), falling back to the provider's current ones.
    pub(super) async fn delete_superseded(
        &self,
        provider: &Provider,
        deletion: &PlannedDeletion,
    ) -> Result<(), AttemptError> {
        let current = Self::target(provider);
        let made_with = match deletion.secret_version {
            Some(version) => {
                journal::get(&*self.store, &provider.id, version)?.map(|entry| Target {
                    environment: entry.environment,
                    credentials_fingerprint: entry.credentials_fingerprint,
                    ..current.clone()
                })
            }
            None => None,
        };
        let mut targets = Vec::new();
        targets.extend(made_with.filter(|target| *target != current));
        targets.push(current);
        let mut last_error = None;
        for target in &targets {
            match self.delete_at(target, &deletion.registration_id).await {
                Ok(_) => {
                    self.record_deleted(
                        &provider.id,
                        &deletion.registration_id,
                        deletion.secret_version,
                        deletion.why,
                        true,
                    )
                    .await?;
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.map_or_else(
            || AttemptError::Visible("no target to delete at".into()),
            AttemptError::from,
        ))
    }

    async fn delete_at(
        &self,
        target: &Target,
        registration_id: &RegistrationId,
    ) -> Result<Deletion, WebhookApiError> {
        let api: Arc<dyn WebhookApi> = self.apis.connect(target)?;
        api.delete(registration_id).await
    }

    /// Compares the settled provider with Vipps' list: removes registrations for our URL whose
    /// secret we do not hold, records registrations that vanished, and asks for a repair when
    /// the working registration is missing or its secret is not in the vault.
    pub(super) async fn reconcile(&self, provider: &Provider) -> Result<(), AttemptError> {
        let api = self.apis.connect(&Self::target(provider))?;
        let remote = api.list().await?;
        let plan = reconcile(provider, &remote);
        for deletion in &plan.delete {
            let class = plan
                .remote
                .iter()
                .find(|c| c.webhook.id == deletion.registration_id)
                .map(|c| c.class);
            api.delete(&deletion.registration_id).await?;
            tracing::info!(provider = %provider.id, registration_id = %deletion.registration_id,
                why = ?deletion.why, "deleted a stray webhook registration");
            let only_if_live = class != Some(RemoteClass::OursUnknownSecret);
            self.record_deleted(
                &provider.id,
                &deletion.registration_id,
                deletion.secret_version,
                deletion.why,
                only_if_live,
            )
            .await?;
        }
        for gone in &plan.gone {
            tracing::warn!(provider = %provider.id, registration_id = %gone.registration_id,
                "Vipps no longer lists our webhook registration");
            self.record_deleted(
                &provider.id,
                &gone.registration_id,
                gone.secret_version,
                gone.why,
                true,
            )
            .await?;
        }
        // A registration whose secret the vault does not hold (a data directory restored from
        // an export, which carries no secrets) can never verify a delivery: replace it.
        let secret_missing = match &provider.current {
            Some(current) => self
                .vault
                .webhook_secret(&provider.id, current.secret_version)?
                .is_none(),
            None => false,
        };
        if secret_missing {
            tracing::warn!(provider = %provider.id, "the current webhook secret is not in the vault; registering anew");
        }
        if plan.register.is_some() || secret_missing {
            stream::append_decided::<StepError, _>(&*self.store, &provider.id, |now_provider| {
                let Some(now_provider) = now_provider else {
                    return Ok(Vec::new());
                };
                Ok(decide(now_provider, &ProviderCommand::Repair)
                    .map(|decision| decision.events)
                    .unwrap_or_default())
            })
            .await?;
        }
        Ok(())
    }
}
