//! One provider's convergence step: bring what Vipps has registered in line with what the log
//! asks for, and record every outcome as a fact.
//!
//! The step is level-triggered: it reads the provider's current state from its stream and acts
//! on that, never on the event that woke it. So a replay, a duplicate wake-up or a restart after
//! a crash at any point leads to the same end state, and never to a second registration:
//!
//! | crash after | what the next step finds | what it does |
//! |---|---|---|
//! | Vipps created the registration | our URL listed, id unknown, no journal entry | deletes it (`unknown_secret`), registers again |
//! | the secret was sealed in the vault | as above (the secret is never used) | as above, under a higher secret version |
//! | the journal entry was written | id listed, journal entry and secret present | records it (`webhook_registered`), no new registration |
//! | as above, then the public URL changed | a journaled id for an earlier URL | deletes it (`superseded`), registers the current URL |
//! | `webhook_registered` was appended | nothing pending | deletes what it superseded, reconciles |

use super::api::{
    Deletion, NewRegistration, Target, WebhookApi, WebhookApiError, WebhookApiFactory,
};
use super::backoff::Backoff;
use super::journal::{self, JournalEntry};
use crate::providers::stream::{self, StreamError};
use crate::secrets::{SecretVault, VaultError};
use paystate_domain::events::{
    bounded_text, DeletionReason, DomainEvent, RegistrationReason, WebhookDeleted,
    WebhookRegistered, WebhookRegistrationFailed, MAX_ERROR_TEXT,
};
use paystate_domain::provider::{
    decide, reconcile, superseded_registrations, PendingRegistration, PlannedDeletion, Provider,
    ProviderCommand, ProviderState, RemoteClass,
};
use paystate_domain::{Fingerprint, ProviderId, RegistrationId, SecretVersion};
use paystate_store::{EventStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Metric: registration outcomes by `provider` and `outcome` (`registered`, `adopted`,
/// `failed`, `deleted`, `skipped_disabled`).
pub const REGISTRATION_OUTCOMES_TOTAL: &str = "paystate_webhook_registration_outcomes_total";

/// The reactor's tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorOptions {
    /// Backoff between failed registration attempts.
    pub backoff: Backoff,
    /// How long a superseded registration stays after its successor is recorded, so that
    /// deliveries Vipps already handed to it can still land (deleting a registration drops
    /// its queued deliveries).
    pub handover: Duration,
    /// How often an enabled provider's registrations are compared with Vipps' list, besides
    /// after every change and at start.
    pub reconcile_interval: Duration,
}

impl Default for ReactorOptions {
    fn default() -> Self {
        ReactorOptions {
            backoff: Backoff::default(),
            handover: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(15 * 60),
        }
    }
}

/// When a provider wants the reactor's attention again, besides on its next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Only when something changes.
    OnChange,
    /// At this time (a retry, or the end of a handover).
    At(OffsetDateTime),
}

/// Why a step stopped without recording its outcome (the store or the vault failed); the
/// reactor tries again later.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A registration attempt's failure: recorded as a fact, or (internal) retried silently.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// Worth telling the operator: recorded as `webhook_registration_failed`.
    #[error("{0}")]
    Visible(String),
    #[error(transparent)]
    Internal(StepError),
}

impl From<WebhookApiError> for AttemptError {
    fn from(error: WebhookApiError) -> AttemptError {
        AttemptError::Visible(error.message)
    }
}

macro_rules! internal_errors {
    ($($source:ty),+) => {
        $(impl From<$source> for AttemptError {
            fn from(error: $source) -> AttemptError {
                AttemptError::Internal(error.into())
            }
        })+
    };
}

internal_errors!(StepError, StreamError, StoreError, VaultError);

/// Carries out convergence steps for any provider.
#[derive(Debug)]
pub struct Converger {
    pub store: Arc<dyn EventStore>,
    pub vault: Arc<SecretVault>,
    pub apis: Arc<dyn WebhookApiFactory>,
    pub options: ReactorOptions,
}

impl Converger {
    /// One step for `id` at `now`. `reconcile` asks for a comparison with Vipps' list when the
    /// provider is otherwise settled.
    pub async fn step(
        &self,
        id: &ProviderId,
        reconcile: bool,
        now: OffsetDateTime,
    ) -> Result<Wake, StepError> {
        let Some(loaded) = stream::load(&*self.store, id)? else {
            return Ok(Wake::OnChange);
        };
        let provider = loaded.provider;
        // A disabled provider's registrations are left alone: deliveries already on their way
        // still verify, and enabling again registers anew.
        if provider.state != ProviderState::Enabled {
            return Ok(Wake::OnChange);
        }
        if let Some(pending) = provider.pending.clone() {
            let retry_at = provider
                .last_registration_error
                .as_ref()
                .and_then(|error| error.retry_at)
                .filter(|_| pending.failed_attempts > 0);
            if let Some(retry_at) = retry_at.filter(|retry_at| *retry_at > now) {
                return Ok(Wake::At(retry_at));
            }
            return self.register(&provider, &pending, now).await;
        }
        let superseded = superseded_registrations(&provider);
        if let (Some(current), false) = (&provider.current, superseded.is_empty()) {
            let due = current.registered_at + self.options.handover;
            if due > now {
                return Ok(Wake::At(due));
            }
            for deletion in &superseded {
                if let Err(error) = self.delete_superseded(&provider, deletion).await {
                    // Back off by as long as the deletion has been due, within the backoff's
                    // bounds: 2 s, 4 s, 8 s, ... for a deletion that keeps failing.
                    let overdue = Duration::try_from(now - due).unwrap_or_default();
                    let retry_at =
                        now + overdue.clamp(self.options.backoff.initial, self.options.backoff.max);
                    tracing::warn!(provider = %id, registration_id = %deletion.registration_id, %error,
                        "could not delete a superseded webhook registration; will retry");
                    return match error {
                        AttemptError::Visible(_) => Ok(Wake::At(retry_at)),
                        AttemptError::Internal(error) => Err(error),
                    };
                }
            }
            return Ok(Wake::OnChange);
        }
        if reconcile {
            match self.reconcile(&provider).await {
                Ok(()) => {}
                Err(AttemptError::Visible(error)) => {
                    tracing::warn!(provider = %id, %error, "could not compare registrations with Vipps");
                }
                Err(AttemptError::Internal(error)) => return Err(error),
            }
        }
        Ok(Wake::OnChange)
    }

    fn target(provider: &Provider) -> Target {
        Target {
            provider: provider.id.clone(),
            environment: provider.environment,
            msn: provider.msn.clone(),
            credentials_fingerprint: provider.credentials_fingerprint.clone(),
        }
    }

    async fn register(
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

    /// Appends `webhook_deleted` unless the registration is already recorded as deleted.
    /// `only_if_live` restricts it to registrations the log still counts as live.
    async fn record_deleted(
        &self,
        id: &ProviderId,
        registration_id: &RegistrationId,
        secret_version: Option<SecretVersion>,
        why: DeletionReason,
        only_if_live: bool,
    ) -> Result<(), StepError> {
        let deleted: DomainEvent = WebhookDeleted {
            registration_id: registration_id.clone(),
            secret_version,
            why,
        }
        .into();
        stream::append_decided::<StepError, _>(&*self.store, id, |provider| {
            let Some(provider) = provider else {
                return Ok(Vec::new());
            };
            let live = provider.live_registration(registration_id).is_some();
            let retired = provider
                .retired
                .iter()
                .any(|r| &r.registration_id == registration_id);
            let record = if only_if_live { live } else { !retired };
            Ok(if record {
                vec![deleted.clone()]
            } else {
                Vec::new()
            })
        })
        .await?;
        metrics::counter!(REGISTRATION_OUTCOMES_TOTAL, "provider" => id.to_string(), "outcome" => "deleted").increment(1);
        Ok(())
    }

    /// Deletes a superseded registration where it lives (the environment and credentials it
    /// was made with), falling back to the provider's current ones.
    async fn delete_superseded(
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
    async fn reconcile(&self, provider: &Provider) -> Result<(), AttemptError> {
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

fn fingerprint_of(secret: &paystate_vipps::WebhookSecret) -> Result<Fingerprint, AttemptError> {
    Fingerprint::parse(&secret.fingerprint())
        .map_err(|_| AttemptError::Visible("the secret fingerprint could not be formed".into()))
}
