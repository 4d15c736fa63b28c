//! Decisions: given a provider and a command, the events to record. Pure functions; the caller
//! appends the events with the stream version it folded, so two racing commands cannot both
//! succeed on a stale view.

use super::aggregate::{Provider, ProviderState};
use crate::events::{
    CredentialsUpdated, DomainEvent, EnvironmentChanged, ProviderCreated, ProviderDisabled,
    ProviderEnabled, PublicUrlChanged, RegistrationReason, WebhookRegistrationRequested,
    WebhookRegistrationSkipped,
};
use crate::ids::{Environment, Fingerprint, HttpUrl, IdError, ProviderId};

/// A change an operator (or a reactor) asks of an existing provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderCommand {
    Enable,
    Disable,
    UpdateCredentials {
        credentials_fingerprint: Fingerprint,
    },
    ChangeEnvironment {
        to: Environment,
    },
    ChangePublicUrl {
        to: HttpUrl,
    },
    /// Ensure one working registration: register only if there is none.
    Register,
    /// Register a new webhook with a new secret, whatever exists (the old one is deleted after).
    Rotate,
    /// Reconciliation found the registration missing or unusable: register again.
    Repair,
}

/// What a command leads to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The events to append to the provider stream, in order. Empty when nothing changes.
    pub events: Vec<DomainEvent>,
    /// Whether the events ask for a (re-)registration, and why.
    pub registration: Option<RegistrationReason>,
}

impl Decision {
    fn unchanged() -> Decision {
        Decision::default()
    }

    pub fn is_noop(&self) -> bool {
        self.events.is_empty()
    }
}

/// Why a command cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("provider {0} already exists")]
    ProviderExists(ProviderId),
    #[error("provider {0} is disabled; enable it to register webhooks")]
    ProviderDisabled(ProviderId),
    #[error("provider {0} has used every secret version")]
    SecretVersionsExhausted(ProviderId),
    /// The public URL cannot be the base of a webhook URL (query, fragment, too long).
    #[error("public URL cannot hold the webhook path: {0}")]
    InvalidPublicUrl(#[source] IdError),
}

/// The events that create a provider, if it does not exist yet. A new provider is disabled.
pub fn decide_create(
    existing: Option<&Provider>,
    created: ProviderCreated,
) -> Result<Decision, DecisionError> {
    if let Some(existing) = existing {
        return Err(DecisionError::ProviderExists(existing.id.clone()));
    }
    created
        .public_url
        .webhook_url(&created.provider_id)
        .map_err(DecisionError::InvalidPublicUrl)?;
    Ok(Decision {
        events: vec![created.into()],
        registration: None,
    })
}

/// The events a command leads to (VIPPS.md §6, SPEC §3.2):
///
/// | command | while disabled | while enabled |
/// |---|---|---|
/// | enable | `provider_enabled` + register (`enabled`) | nothing |
/// | disable | nothing | `provider_disabled` |
/// | credentials | `credentials_updated` | + register (`credentials_changed`) |
/// | environment | `environment_changed` | + register (`environment_changed`) |
/// | public URL | `public_url_changed` | + register (`public_url_changed`) |
/// | register | error | register (`manual`) unless a working registration exists or one is pending: then `webhook_registration_skipped` |
/// | rotate | error | register (`rotate`), always |
/// | repair | nothing | register (`repair`) unless one is pending |
///
/// A change to the value the provider already has records nothing. Registration is never
/// decided per payment: no payment event reaches this function.
pub fn decide(provider: &Provider, command: &ProviderCommand) -> Result<Decision, DecisionError> {
    let enabled = provider.state == ProviderState::Enabled;
    match command {
        ProviderCommand::Enable if enabled => Ok(Decision::unchanged()),
        ProviderCommand::Enable => with_registration(
            provider,
            ProviderEnabled {}.into(),
            RegistrationReason::Enabled,
        ),
        ProviderCommand::Disable if !enabled => Ok(Decision::unchanged()),
        ProviderCommand::Disable => Ok(Decision {
            events: vec![ProviderDisabled {}.into()],
            registration: None,
        }),
        ProviderCommand::UpdateCredentials {
            credentials_fingerprint,
        } => {
            if credentials_fingerprint == &provider.credentials_fingerprint {
                return Ok(Decision::unchanged());
            }
            let change = CredentialsUpdated {
                credentials_fingerprint: credentials_fingerprint.clone(),
            };
            change_then_register(
                provider,
                change.into(),
                RegistrationReason::CredentialsChanged,
            )
        }
        ProviderCommand::ChangeEnvironment { to } => {
            if *to == provider.environment {
                return Ok(Decision::unchanged());
            }
            let change = EnvironmentChanged {
                from: provider.environment,
                to: *to,
            };
            change_then_register(
                provider,
                change.into(),
                RegistrationReason::EnvironmentChanged,
            )
        }
        ProviderCommand::ChangePublicUrl { to } => {
            if *to == provider.public_url {
                return Ok(Decision::unchanged());
            }
            to.webhook_url(&provider.id)
                .map_err(DecisionError::InvalidPublicUrl)?;
            let change = PublicUrlChanged {
                from: provider.public_url.clone(),
                to: to.clone(),
            };
            change_then_register(
                provider,
                change.into(),
                RegistrationReason::PublicUrlChanged,
            )
        }
        ProviderCommand::Register if !enabled => {
            Err(DecisionError::ProviderDisabled(provider.id.clone()))
        }
        ProviderCommand::Register => {
            let working = provider.working_registration();
            if working.is_some() || provider.pending.is_some() {
                let skipped = WebhookRegistrationSkipped {
                    requested: RegistrationReason::Manual,
                    registration_id: working.map(|r| r.registration_id.clone()),
                    secret_version: working.map(|r| r.secret_version),
                };
                return Ok(Decision {
                    events: vec![skipped.into()],
                    registration: None,
                });
            }
            registration_only(provider, RegistrationReason::Manual)
        }
        ProviderCommand::Rotate if !enabled => {
            Err(DecisionError::ProviderDisabled(provider.id.clone()))
        }
        ProviderCommand::Rotate => registration_only(provider, RegistrationReason::Rotate),
        ProviderCommand::Repair if !enabled || provider.pending.is_some() => {
            Ok(Decision::unchanged())
        }
        ProviderCommand::Repair => registration_only(provider, RegistrationReason::Repair),
    }
}

/// `change`, followed by a registration request when the provider is enabled.
fn change_then_register(
    provider: &Provider,
    change: DomainEvent,
    reason: RegistrationReason,
) -> Result<Decision, DecisionError> {
    if provider.state == ProviderState::Enabled {
        with_registration(provider, change, reason)
    } else {
        Ok(Decision {
            events: vec![change],
            registration: None,
        })
    }
}

fn with_registration(
    provider: &Provider,
    first: DomainEvent,
    reason: RegistrationReason,
) -> Result<Decision, DecisionError> {
    let mut decision = registration_only(provider, reason)?;
    decision.events.insert(0, first);
    Ok(decision)
}

fn registration_only(
    provider: &Provider,
    reason: RegistrationReason,
) -> Result<Decision, DecisionError> {
    let next = provider
        .next_secret_version()
        .ok_or_else(|| DecisionError::SecretVersionsExhausted(provider.id.clone()))?;
    let request = WebhookRegistrationRequested {
        reason,
        secret_version_next: Some(next),
    };
    Ok(Decision {
        events: vec![request.into()],
        registration: Some(reason),
    })
}
