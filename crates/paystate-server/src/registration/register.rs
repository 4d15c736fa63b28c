//! Registering: reconcile with Vipps' list, register, seal the secret, journal, record; or
//! record the failure with its retry time.

use super::api::NewRegistration;
use super::converge::{AttemptError, Converger, StepError, Wake, REGISTRATION_OUTCOMES_TOTAL};
use super::journal::{self, JournalEntry};
use crate::providers::stream;
use paystate_domain::events::{
    bounded_text, DeletionReason, RegistrationReason, WebhookRegistered, WebhookRegistrationFailed,
    MAX_ERROR_TEXT,
};
use paystate_domain::provider::{PendingRegistration, Provider};
use paystate_domain::{Fingerprint, ProviderId};
use time::OffsetDateTime;

impl Converger {
    pub(super) async fn register(
        &self,
        provider: &Provider,
        pending: &PendingRegistration,
        now: OffsetDateTime,
    ) -> Result<Wake, StepError> {
        let error = match self.try_register(provider, pending).await {
            Ok(()) => return Ok(Wake::OnChange),
            Err(AttemptError::Internal(error)) => return Err(error),
            Err(AttemptError::Visible(error)) => error,
        };
        let attempt = pending.failed_attempts.saturating_add(1);
        let delay = self.options.backoff.delay(attempt, rand::random::<f64>());
        let retry_at = now + delay;
        tracing::warn!(provider = %provider.id, reason = pending.reason.as_str(), attempt, %error,
            retry_in = ?delay, "webhook registration failed");
        metrics::counter!(REGISTRATION_OUTCOMES_TOTAL, "provider" => provider.id.to_string(), "outcome" => "failed")
            .increment(1);
        let failed = WebhookRegistrationFailed {
            reason: pending.reason,
            error: bounded_text(&error, MAX_ERROR_TEXT),
            attempt,
            retry_at: Some(retry_at),
        };
        let request = pending.position;
        stream::append_decided::<StepError, _>(&*self.store, &provider.id, |now_provider| {
            // Record the failure only against the request it belongs to.
            let same_request = now_provider
                .and_then(|p| p.pending.as_ref())
                .is_some_and(|p| p.position == request);
            Ok(if same_request {
                vec![failed.clone().into()]
            } else {
                Vec::new()
            })
        })
        .await?;
        Ok(Wake::At(retry_at))
    }

    async fn try_register(
        &self,
        provider: &Provider,
        pending: &PendingRegistration,
    ) -> Result<(), AttemptError> {
        let url = provider.webhook_url().map_err(|_| {
            AttemptError::Visible("the webhook URL built from the public URL is too long".into())
        })?;
        let target = Self::target(provider);
        let api = self.apis.connect(&target)?;
        let requested = pending
            .secret_version
            .or_else(|| provider.next_secret_version())
            .ok_or_else(|| AttemptError::Visible("every secret version has been used".into()))?;
        let remote = api.list().await?;

        // A registration made before a crash, not yet recorded: record it instead of making
        // another one.
        let journal = journal::entries(&*self.store, &provider.id)?;
        for entry in &journal {
            let unrecorded = entry.secret_version >= requested
                && provider.live_registration(&entry.registration_id).is_none();
            if !unrecorded
                || entry.url != url
                || !remote.iter().any(|w| w.id == entry.registration_id)
            {
                continue;
            }
            if let Some(secret) = self
                .vault
                .webhook_secret(&provider.id, entry.secret_version)?
            {
                let fingerprint = fingerprint_of(&secret)?;
                tracing::info!(provider = %provider.id, registration_id = %entry.registration_id,
                    secret_version = %entry.secret_version, "recording a registration made before a restart");
                self.record_registered(&provider.id, entry, fingerprint, pending.reason)
                    .await?;
                metrics::counter!(REGISTRATION_OUTCOMES_TOTAL, "provider" => provider.id.to_string(), "outcome" => "adopted")
                    .increment(1);
                return Ok(());
            }
        }

        // Registrations for our URL whose secret we do not hold can never verify; they would
        // only duplicate deliveries and fail them. Remove them before adding ours, and with
        // them any registration made before a crash that can no longer be recorded (for an
        // older request or an earlier URL).
        for webhook in &remote {
            if provider.live_registration(&webhook.id).is_some() {
                continue;
            }
            let made_by_us = journal
                .iter()
                .find(|entry| entry.registration_id == webhook.id);
            if webhook.url != url && made_by_us.is_none() {
                continue;
            }
            api.delete(&webhook.id).await?;
            let retired = provider
                .retired
                .iter()
                .any(|r| r.registration_id == webhook.id);
            if !retired {
                let (version, why) = match made_by_us {
                    Some(entry) => (Some(entry.secret_version), DeletionReason::Superseded),
                    None => (None, DeletionReason::UnknownSecret),
                };
                self.record_deleted(&provider.id, &webhook.id, version, why, false)
                    .await?;
            }
        }

        let NewRegistration { id, secret } = api.register(&url, &provider.events).await?;
        // Versions are write-once: a secret sealed before a crash keeps its version, and this
        // one takes the next.
        let version = match self.vault.latest_webhook_secret_version(&provider.id)? {
            Some(latest) if latest >= requested => latest.next().ok_or_else(|| {
                AttemptError::Visible("every secret version has been used".into())
            })?,
            _ => requested,
        };
        let fingerprint = fingerprint_of(&secret)?;
        self.vault
            .put_webhook_secret(&provider.id, version, &secret)?;
        let entry = JournalEntry {
            registration_id: id,
            secret_version: version,
            url,
            events: provider.events.clone(),
            environment: provider.environment,
            credentials_fingerprint: provider.credentials_fingerprint.clone(),
        };
        journal::put(&*self.store, &provider.id, &entry)?;
        self.record_registered(&provider.id, &entry, fingerprint, pending.reason)
            .await?;
        tracing::info!(provider = %provider.id, registration_id = %entry.registration_id,
            secret_version = %version, reason = pending.reason.as_str(), "webhook registered");
        metrics::counter!(REGISTRATION_OUTCOMES_TOTAL, "provider" => provider.id.to_string(), "outcome" => "registered")
            .increment(1);
        Ok(())
    }

    async fn record_registered(
        &self,
        id: &ProviderId,
        entry: &JournalEntry,
        secret_fingerprint: Fingerprint,
        reason: RegistrationReason,
    ) -> Result<(), StepError> {
        let registered = WebhookRegistered {
            registration_id: entry.registration_id.clone(),
            url: entry.url.clone(),
            events: entry.events.clone(),
            secret_version: entry.secret_version,
            secret_fingerprint,
            reason,
        };
        stream::append_decided::<StepError, _>(&*self.store, id, |provider| {
            let known = provider.is_some_and(|p| {
                p.live_registration(&registered.registration_id).is_some()
                    || p.retired
                        .iter()
                        .any(|r| r.registration_id == registered.registration_id)
            });
            Ok(if known {
                Vec::new()
            } else {
                vec![registered.clone().into()]
            })
        })
        .await?;
        Ok(())
    }
}

fn fingerprint_of(secret: &paystate_vipps::WebhookSecret) -> Result<Fingerprint, AttemptError> {
    Fingerprint::parse(&secret.fingerprint())
        .map_err(|_| AttemptError::Visible("the secret fingerprint could not be formed".into()))
}
