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
//!
//! Registering is in the `register` module, deleting and reconciling in `cleanup`.

use super::api::{Target, WebhookApiError, WebhookApiFactory};
use super::backoff::Backoff;
use crate::providers::stream::{self, StreamError};
use crate::secrets::{SecretVault, VaultError};
use paystate_domain::events::{DeletionReason, DomainEvent, WebhookDeleted};
use paystate_domain::provider::{superseded_registrations, Provider, ProviderState};
use paystate_domain::{ProviderId, RegistrationId, SecretVersion};
use paystate_store::{EventStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Metric: registration outcomes by `provider` and `outcome` (`registered`, `adopted`,
/// `failed`, `deleted`).
pub const REGISTRATION_OUTCOMES_TOTAL: &str = "paystate_webhook_registration_outcomes_total";

/// The reactor's tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorOptions {
    /// Backoff between failed registration attempts.
    pub backoff: Backoff,
    /// How long a superseded registration stays after its successor is recorded, so that
    /// deliveries Vipps already handed to it can still land: Vipps retries a failed delivery
    /// on its registration for up to 7 days (VIPPS.md §3), and once that registration is
    /// deleted there is nothing left to deliver it to. Its default,
    /// [`ReactorOptions::DEFAULT_HANDOVER`], covers Vipps' first retries of a delivery that
    /// failed just before the change.
    pub handover: Duration,
    /// How often an enabled provider's registrations are compared with Vipps' list, besides
    /// after every change and at start.
    pub reconcile_interval: Duration,
}

impl ReactorOptions {
    /// The default handover: ten minutes, as long as the default grace period of an old
    /// secret, so a rotation keeps both registrations delivering for that long.
    pub const DEFAULT_HANDOVER: Duration = Duration::from_secs(10 * 60);
    /// The longest handover: Vipps gives up on a delivery after 7 days, so a registration kept
    /// longer has nothing left to deliver.
    pub const MAX_HANDOVER: Duration = Duration::from_secs(7 * 24 * 60 * 60);
}

impl Default for ReactorOptions {
    fn default() -> Self {
        ReactorOptions {
            backoff: Backoff::default(),
            handover: ReactorOptions::DEFAULT_HANDOVER,
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
pub(super) enum AttemptError {
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

    pub(super) fn target(provider: &Provider) -> Target {
        Target {
            provider: provider.id.clone(),
            environment: provider.environment,
            msn: provider.msn.clone(),
            credentials_fingerprint: provider.credentials_fingerprint.clone(),
        }
    }

    /// Appends `webhook_deleted` unless the registration is already recorded as deleted.
    /// `only_if_live` restricts it to registrations the log still counts as live.
    pub(super) async fn record_deleted(
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
}
