//! Reconciliation: compare what Vipps lists for the MSN with what the provider's log says, and
//! decide what to delete and whether to register again.

use super::aggregate::{Provider, ProviderState};
use crate::events::{DeletionReason, RegistrationReason};
use crate::ids::{HttpUrl, RegistrationId, SecretVersion, WebhookEventType};
use serde::{Deserialize, Serialize};

/// One entry of `GET /webhooks/v1/webhooks` (Vipps lists no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWebhook {
    pub id: RegistrationId,
    pub url: HttpUrl,
    pub events: Vec<WebhookEventType>,
}

/// What a remote webhook is to this provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteClass {
    /// The provider's current registration.
    OursCurrent,
    /// An older registration of ours, recorded but superseded.
    OursOld,
    /// Our webhook URL, but an id we never recorded: its secret is unknown to us, so its
    /// deliveries cannot verify.
    OursUnknownSecret,
    /// Someone else's (another URL, another system on the same MSN): never touched.
    Foreign,
}

/// A remote webhook with its class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedWebhook {
    pub webhook: RemoteWebhook,
    pub class: RemoteClass,
    /// The secret version, for ours.
    pub secret_version: Option<SecretVersion>,
}

/// A registration to delete at Vipps (then record `webhook_deleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedDeletion {
    pub registration_id: RegistrationId,
    pub secret_version: Option<SecretVersion>,
    pub why: DeletionReason,
}

/// The outcome of comparing the remote list with the log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Every remote webhook, classified, in the order Vipps listed them.
    pub remote: Vec<ClassifiedWebhook>,
    /// Registrations to delete at Vipps.
    pub delete: Vec<PlannedDeletion>,
    /// Registrations the log holds as live that Vipps no longer lists: record them deleted
    /// (`webhook_deleted`, why `gone_remotely`) without calling Vipps.
    pub gone: Vec<PlannedDeletion>,
    /// Whether to register again, and why (always `repair`).
    pub register: Option<RegistrationReason>,
}

/// Classifies each remote webhook and decides deletions:
///
/// - older registrations of ours are deleted once the current one is listed (deleting them
///   earlier could leave the provider with no working registration);
/// - our URL with an unknown id is deleted (`unknown_secret`), unless a registration is pending:
///   that may be the one being made, whose `webhook_registered` is not recorded yet;
/// - foreign webhooks are never deleted;
/// - an enabled provider whose working registration is not listed, with nothing pending, needs
///   a `repair` registration.
pub fn reconcile(provider: &Provider, remote: &[RemoteWebhook]) -> Reconciliation {
    let our_url = provider.webhook_url().ok();
    let current_id = provider.current.as_ref().map(|c| &c.registration_id);
    let current_listed = current_id.is_some_and(|id| remote.iter().any(|w| &w.id == id));

    let mut reconciliation = Reconciliation::default();
    for webhook in remote {
        let known = provider.live_registration(&webhook.id);
        let retired = provider
            .retired
            .iter()
            .find(|retired| retired.registration_id == webhook.id);
        let (class, secret_version) = if Some(&webhook.id) == current_id {
            (RemoteClass::OursCurrent, known.map(|r| r.secret_version))
        } else if let Some(registration) = known {
            (RemoteClass::OursOld, Some(registration.secret_version))
        } else if let Some(retired) = retired.filter(|r| r.secret_version.is_some()) {
            // Recorded as deleted, yet still listed: the delete did not take. Ours and old.
            (RemoteClass::OursOld, retired.secret_version)
        } else if our_url.as_ref() == Some(&webhook.url) {
            (RemoteClass::OursUnknownSecret, None)
        } else {
            (RemoteClass::Foreign, None)
        };
        let deletion = match class {
            RemoteClass::OursOld if current_listed => Some(DeletionReason::Superseded),
            RemoteClass::OursUnknownSecret if provider.pending.is_none() => {
                Some(DeletionReason::UnknownSecret)
            }
            _ => None,
        };
        if let Some(why) = deletion {
            reconciliation.delete.push(PlannedDeletion {
                registration_id: webhook.id.clone(),
                secret_version,
                why,
            });
        }
        reconciliation.remote.push(ClassifiedWebhook {
            webhook: webhook.clone(),
            class,
            secret_version,
        });
    }

    for registration in provider.live_registrations() {
        if !remote.iter().any(|w| w.id == registration.registration_id) {
            reconciliation.gone.push(PlannedDeletion {
                registration_id: registration.registration_id.clone(),
                secret_version: Some(registration.secret_version),
                why: DeletionReason::GoneRemotely,
            });
        }
    }

    let working_listed = provider
        .working_registration()
        .is_some_and(|working| remote.iter().any(|w| w.id == working.registration_id));
    if provider.state == ProviderState::Enabled && provider.pending.is_none() && !working_listed {
        reconciliation.register = Some(RegistrationReason::Repair);
    }
    reconciliation
}

/// The older registrations to delete now that the current one is registered (after a
/// re-registration or a rotation), without asking Vipps for its list first.
pub fn superseded_registrations(provider: &Provider) -> Vec<PlannedDeletion> {
    if provider.current.is_none() {
        return Vec::new();
    }
    provider
        .older
        .iter()
        .map(|older| PlannedDeletion {
            registration_id: older.registration_id.clone(),
            secret_version: Some(older.secret_version),
            why: DeletionReason::Superseded,
        })
        .collect()
}
