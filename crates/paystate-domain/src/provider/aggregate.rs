//! The provider aggregate: the state of one provider, folded from its stream.

use crate::events::{
    DomainEvent, EventMeta, ProviderCreated, RegistrationReason, WebhookRegistered,
};
use crate::ids::{
    Environment, Fingerprint, HttpUrl, IdError, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Whether a provider keeps a webhook registration at Vipps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderState {
    Disabled,
    Enabled,
}

/// One registration of ours at Vipps, as recorded by `webhook_registered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub registration_id: RegistrationId,
    pub url: HttpUrl,
    pub events: Vec<WebhookEventType>,
    pub secret_version: SecretVersion,
    pub secret_fingerprint: Fingerprint,
    pub reason: RegistrationReason,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    pub position: u64,
}

/// A registration that was deleted: its secret is still accepted for a grace period after
/// `deleted_at`, for deliveries already on their way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredRegistration {
    pub registration_id: RegistrationId,
    pub secret_version: Option<SecretVersion>,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
}

/// A registration that was asked for and has not succeeded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistration {
    pub reason: RegistrationReason,
    pub secret_version: Option<SecretVersion>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Failed attempts so far.
    pub failed_attempts: u32,
    pub position: u64,
}

/// The last failed registration attempt, until a registration succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationError {
    pub reason: RegistrationReason,
    pub error: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
}

/// Counts of deliveries for this provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookCounters {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_received_at: Option<OffsetDateTime>,
}

/// One provider, folded from its stream (and, for [`WebhookCounters`], from the deliveries
/// recorded for it in payment streams).
///
/// Build it with [`Provider::created`] from the stream's first event, then [`Provider::apply`]
/// every later one in log order; or [`Provider::replay`] a whole stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub environment: Environment,
    pub msn: Msn,
    pub events: Vec<WebhookEventType>,
    pub state: ProviderState,
    pub credentials_fingerprint: Fingerprint,
    pub public_url: HttpUrl,
    /// The registration deliveries should come through: the newest one not deleted.
    pub current: Option<Registration>,
    /// Older registrations of ours still registered at Vipps (not yet deleted).
    pub older: Vec<Registration>,
    /// Deleted registrations, for the secret grace period and audits.
    pub retired: Vec<RetiredRegistration>,
    pub pending: Option<PendingRegistration>,
    /// The highest secret version ever requested or registered.
    pub highest_secret_version: Option<SecretVersion>,
    pub registrations_total: u64,
    pub last_registration_error: Option<RegistrationError>,
    pub webhooks: WebhookCounters,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The position of the last event folded in.
    pub position: u64,
}

/// Why a provider stream could not be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// The stream's first event was not `provider_created`.
    #[error("provider stream starts with {found} at position {position}, not provider_created")]
    NotCreatedFirst { found: &'static str, position: u64 },
}

impl Provider {
    /// The provider as its `provider_created` event describes it: disabled, never registered.
    pub fn created(meta: EventMeta, event: &ProviderCreated) -> Provider {
        Provider {
            id: event.provider_id.clone(),
            kind: event.kind,
            environment: event.environment,
            msn: event.msn.clone(),
            events: event.events.clone(),
            state: ProviderState::Disabled,
            credentials_fingerprint: event.credentials_fingerprint.clone(),
            public_url: event.public_url.clone(),
            current: None,
            older: Vec::new(),
            retired: Vec::new(),
            pending: None,
            highest_secret_version: None,
            registrations_total: 0,
            last_registration_error: None,
            webhooks: WebhookCounters::default(),
            created_at: meta.recorded_at,
            position: meta.position,
        }
    }

    /// Folds a whole stream in log order; `Ok(None)` for an empty stream.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = (EventMeta, &'a DomainEvent)>,
    ) -> Result<Option<Provider>, FoldError> {
        let mut provider: Option<Provider> = None;
        for (meta, event) in events {
            match (&mut provider, event) {
                (None, DomainEvent::ProviderCreated(created)) => {
                    provider = Some(Provider::created(meta, created));
                }
                (None, other) => {
                    return Err(FoldError::NotCreatedFirst {
                        found: other.type_name(),
                        position: meta.position,
                    })
                }
                (Some(provider), event) => provider.apply(meta, event),
            }
        }
        Ok(provider)
    }

    /// Folds one event in. Events of other types, and deliveries of other providers, change
    /// nothing; a second `provider_created` is ignored (the store's `no_stream` check prevents
    /// it).
    pub fn apply(&mut self, meta: EventMeta, event: &DomainEvent) {
        match event {
            DomainEvent::ProviderEnabled(_) => self.state = ProviderState::Enabled,
            DomainEvent::ProviderDisabled(_) => self.state = ProviderState::Disabled,
            DomainEvent::CredentialsUpdated(event) => {
                self.credentials_fingerprint = event.credentials_fingerprint.clone();
            }
            DomainEvent::EnvironmentChanged(event) => self.environment = event.to,
            DomainEvent::PublicUrlChanged(event) => self.public_url = event.to.clone(),
            DomainEvent::WebhookRegistrationRequested(event) => {
                self.raise_secret_version(event.secret_version_next);
                self.pending = Some(PendingRegistration {
                    reason: event.reason,
                    secret_version: event.secret_version_next,
                    requested_at: meta.recorded_at,
                    failed_attempts: 0,
                    position: meta.position,
                });
            }
            DomainEvent::WebhookRegistered(event) => self.apply_registered(meta, event),
            DomainEvent::WebhookRegistrationFailed(event) => {
                if let Some(pending) = &mut self.pending {
                    pending.failed_attempts = pending.failed_attempts.saturating_add(1);
                }
                self.last_registration_error = Some(RegistrationError {
                    reason: event.reason,
                    error: event.error.clone(),
                    attempt: event.attempt,
                    failed_at: meta.recorded_at,
                    retry_at: event.retry_at,
                });
            }
            DomainEvent::WebhookDeleted(event) => {
                self.apply_deleted(meta, &event.registration_id, event.secret_version)
            }
            DomainEvent::WebhookRejected(event) if event.provider_id == self.id => {
                self.webhooks.rejected = self.webhooks.rejected.saturating_add(1);
            }
            DomainEvent::WebhookRejectionsSuppressed(event) if event.provider_id == self.id => {
                self.webhooks.rejected = self.webhooks.rejected.saturating_add(event.count);
            }
            DomainEvent::WebhookReceived(event) if event.provider_id == self.id => {
                return self.count_receipt(meta, event.received_at);
            }
            DomainEvent::WebhookDuplicate(event) if event.provider_id == self.id => {
                self.webhooks.duplicates = self.webhooks.duplicates.saturating_add(1);
            }
            _ => return,
        }
        self.position = self.position.max(meta.position);
    }

    /// Counts an authentic delivery of this provider received at `received_at`: what folding
    /// its `webhook_received` does. Readers that decode only these two fields of a receipt
    /// (the projections skip its body) call this instead of [`Provider::apply`].
    pub fn count_receipt(&mut self, meta: EventMeta, received_at: OffsetDateTime) {
        self.webhooks.accepted = self.webhooks.accepted.saturating_add(1);
        self.webhooks.last_received_at = Some(
            self.webhooks
                .last_received_at
                .map_or(received_at, |last| last.max(received_at)),
        );
        self.position = self.position.max(meta.position);
    }

    fn apply_registered(&mut self, meta: EventMeta, event: &WebhookRegistered) {
        self.raise_secret_version(Some(event.secret_version));
        let registration = Registration {
            registration_id: event.registration_id.clone(),
            url: event.url.clone(),
            events: event.events.clone(),
            secret_version: event.secret_version,
            secret_fingerprint: event.secret_fingerprint.clone(),
            reason: event.reason,
            registered_at: meta.recorded_at,
            position: meta.position,
        };
        // The newest secret version is current; a late `webhook_registered` of an older
        // request (possible when requests overlap) joins the older ones instead.
        let newer_than_current = self
            .current
            .as_ref()
            .is_none_or(|current| registration.secret_version > current.secret_version);
        if newer_than_current {
            if let Some(previous) = self.current.replace(registration) {
                self.older.push(previous);
            }
        } else {
            self.older.push(registration);
        }
        self.registrations_total = self.registrations_total.saturating_add(1);
        let satisfied = self.pending.as_ref().is_some_and(|pending| {
            pending
                .secret_version
                .is_none_or(|version| version <= event.secret_version)
        });
        if satisfied {
            self.pending = None;
            self.last_registration_error = None;
        }
    }

    fn apply_deleted(
        &mut self,
        meta: EventMeta,
        registration_id: &RegistrationId,
        secret_version: Option<SecretVersion>,
    ) {
        let mut known_version = secret_version;
        if self
            .current
            .as_ref()
            .is_some_and(|current| &current.registration_id == registration_id)
        {
            known_version = self
                .current
                .take()
                .map(|r| r.secret_version)
                .or(known_version);
        }
        if let Some(index) = self
            .older
            .iter()
            .position(|older| &older.registration_id == registration_id)
        {
            known_version = Some(self.older.remove(index).secret_version);
        }
        self.retired.push(RetiredRegistration {
            registration_id: registration_id.clone(),
            secret_version: known_version,
            deleted_at: meta.recorded_at,
        });
    }

    fn raise_secret_version(&mut self, version: Option<SecretVersion>) {
        if let Some(version) = version {
            self.highest_secret_version = Some(
                self.highest_secret_version
                    .map_or(version, |highest| highest.max(version)),
            );
        }
    }

    /// The URL Vipps must call for this provider: `{public_url}/webhooks/vipps/{id}`.
    pub fn webhook_url(&self) -> Result<HttpUrl, IdError> {
        self.public_url.webhook_url(&self.id)
    }

    /// The version the next new secret gets: one more than any version ever requested or
    /// registered, so versions only grow. `None` only after `u32::MAX` versions.
    pub fn next_secret_version(&self) -> Option<SecretVersion> {
        match self.highest_secret_version {
            None => Some(SecretVersion::FIRST),
            Some(highest) => highest.next(),
        }
    }

    /// The current registration if it still matches what the provider wants: its URL is the
    /// provider's webhook URL and it subscribes to the provider's events.
    pub fn working_registration(&self) -> Option<&Registration> {
        let url = self.webhook_url().ok()?;
        self.current
            .as_ref()
            .filter(|current| current.url == url && same_events(&current.events, &self.events))
    }

    /// The registration the reactor should make now: the pending request, while enabled. A
    /// request left pending by a disable waits until the provider is enabled again (which
    /// records a newer request anyway).
    pub fn registration_to_make(&self) -> Option<&PendingRegistration> {
        self.pending
            .as_ref()
            .filter(|_| self.state == ProviderState::Enabled)
    }

    /// Every registration of ours still registered at Vipps: current first, then older ones.
    pub fn live_registrations(&self) -> impl Iterator<Item = &Registration> {
        self.current.iter().chain(self.older.iter())
    }

    /// Finds a live registration by id.
    pub fn live_registration(&self, id: &RegistrationId) -> Option<&Registration> {
        self.live_registrations()
            .find(|registration| &registration.registration_id == id)
    }
}

fn same_events(a: &[WebhookEventType], b: &[WebhookEventType]) -> bool {
    let mut a: Vec<_> = a.iter().collect();
    let mut b: Vec<_> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}
