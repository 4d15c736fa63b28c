//! Events of a provider stream (`provider-{id}`): configuration, webhook registrations and
//! rejected deliveries.

use super::StoredEvent;
use crate::ids::{
    Environment, Fingerprint, HttpUrl, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A provider was set up. It starts disabled: nothing talks to Vipps until it is enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCreated {
    pub provider_id: ProviderId,
    pub kind: ProviderKind,
    pub environment: Environment,
    pub msn: Msn,
    /// The webhook event types to subscribe to.
    pub events: Vec<WebhookEventType>,
    /// Fingerprint of the credential set (client id, client secret, subscription key).
    pub credentials_fingerprint: Fingerprint,
    /// The externally reachable base URL the webhook URL is built from.
    pub public_url: HttpUrl,
}

impl StoredEvent for ProviderCreated {
    const TYPE_NAME: &'static str = "provider_created";
    const SCHEMA_VERSION: u32 = 1;
}

/// The provider was enabled: it will keep one webhook registration at Vipps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderEnabled {}

impl StoredEvent for ProviderEnabled {
    const TYPE_NAME: &'static str = "provider_enabled";
    const SCHEMA_VERSION: u32 = 1;
}

/// The provider was disabled. Its registrations are left alone (deliveries already on their
/// way still verify); re-enabling registers again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderDisabled {}

impl StoredEvent for ProviderDisabled {
    const TYPE_NAME: &'static str = "provider_disabled";
    const SCHEMA_VERSION: u32 = 1;
}

/// New credentials were stored (apart from the log, encrypted); only their fingerprint is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsUpdated {
    pub credentials_fingerprint: Fingerprint,
}

impl StoredEvent for CredentialsUpdated {
    const TYPE_NAME: &'static str = "credentials_updated";
    const SCHEMA_VERSION: u32 = 1;
}

/// The provider moved between the test and the production environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentChanged {
    pub from: Environment,
    pub to: Environment,
}

impl StoredEvent for EnvironmentChanged {
    const TYPE_NAME: &'static str = "environment_changed";
    const SCHEMA_VERSION: u32 = 1;
}

/// The public base URL changed, so the webhook URL Vipps must call changed too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUrlChanged {
    pub from: HttpUrl,
    pub to: HttpUrl,
}

impl StoredEvent for PublicUrlChanged {
    const TYPE_NAME: &'static str = "public_url_changed";
    const SCHEMA_VERSION: u32 = 1;
}

/// Why a webhook registration was made (SPEC §3.2, VIPPS.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationReason {
    /// The provider went to enabled (the first time, or again).
    Enabled,
    /// Credentials changed while enabled (possibly another merchant account).
    CredentialsChanged,
    /// Test <-> production while enabled: registrations live per environment.
    EnvironmentChanged,
    /// The webhook URL changed while enabled.
    PublicUrlChanged,
    /// "Register" was asked for and there was no working registration.
    Manual,
    /// "Re-register with a new secret" was asked for.
    Rotate,
    /// Reconciliation found the registration missing or its secret out of sync.
    Repair,
}

impl RegistrationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationReason::Enabled => "enabled",
            RegistrationReason::CredentialsChanged => "credentials_changed",
            RegistrationReason::EnvironmentChanged => "environment_changed",
            RegistrationReason::PublicUrlChanged => "public_url_changed",
            RegistrationReason::Manual => "manual",
            RegistrationReason::Rotate => "rotate",
            RegistrationReason::Repair => "repair",
        }
    }
}

/// A (re-)registration is needed. The registration reactor acts on it: it registers at Vipps,
/// stores the secret under `secret_version_next`, records [`WebhookRegistered`] or
/// [`WebhookRegistrationFailed`], and deletes registrations this one supersedes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistrationRequested {
    pub reason: RegistrationReason,
    /// The secret version the new registration's secret will get. Decided here, so a retried
    /// registration never skips or reuses a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version_next: Option<SecretVersion>,
}

impl StoredEvent for WebhookRegistrationRequested {
    const TYPE_NAME: &'static str = "webhook_registration_requested";
    const SCHEMA_VERSION: u32 = 1;
}

/// "Register" was asked for while a working registration exists (or one is being made): the
/// request is recorded, and nothing is registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistrationSkipped {
    pub requested: RegistrationReason,
    /// The working registration, if there is one (else a registration is already pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<RegistrationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<SecretVersion>,
}

impl StoredEvent for WebhookRegistrationSkipped {
    const TYPE_NAME: &'static str = "webhook_registration_skipped";
    const SCHEMA_VERSION: u32 = 1;
}

/// Vipps accepted a registration (201). The secret itself is stored apart from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistered {
    pub registration_id: RegistrationId,
    pub url: HttpUrl,
    pub events: Vec<WebhookEventType>,
    pub secret_version: SecretVersion,
    pub secret_fingerprint: Fingerprint,
    pub reason: RegistrationReason,
}

impl StoredEvent for WebhookRegistered {
    const TYPE_NAME: &'static str = "webhook_registered";
    const SCHEMA_VERSION: u32 = 1;
}

/// A registration attempt failed; the reactor retries at `retry_at` if set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRegistrationFailed {
    pub reason: RegistrationReason,
    /// What went wrong, for the operator (`last_registration_error`). Must never hold a secret,
    /// a token or a credential; at most [`MAX_ERROR_TEXT`] characters (see [`bounded_text`]).
    pub error: String,
    /// 1 for the first attempt of this request.
    pub attempt: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
}

impl StoredEvent for WebhookRegistrationFailed {
    const TYPE_NAME: &'static str = "webhook_registration_failed";
    const SCHEMA_VERSION: u32 = 1;
}

/// Why a registration was deleted at Vipps (or found gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// A newer registration of ours replaced it (re-registration, rotation).
    Superseded,
    /// Our URL, but an id we never recorded: we cannot know its secret, so its deliveries could
    /// never verify; it only causes failed deliveries and blocked payments.
    UnknownSecret,
    /// A second registration of the same URL and events we made (the "14 registrations" case).
    Duplicate,
    /// Vipps no longer lists it (Vipps deletes registrations unresponsive for two weeks).
    GoneRemotely,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionReason::Superseded => "superseded",
            DeletionReason::UnknownSecret => "unknown_secret",
            DeletionReason::Duplicate => "duplicate",
            DeletionReason::GoneRemotely => "gone_remotely",
        }
    }
}

/// A registration of ours was deleted at Vipps, or found deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeleted {
    pub registration_id: RegistrationId,
    /// The secret version of the deleted registration, if we knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<SecretVersion>,
    pub why: DeletionReason,
}

impl StoredEvent for WebhookDeleted {
    const TYPE_NAME: &'static str = "webhook_deleted";
    const SCHEMA_VERSION: u32 = 1;
}

/// The `401` code a rejected delivery was answered with (SPEC §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    MissingSignature,
    InvalidSignature,
    ContentHashMismatch,
    StaleDate,
}

impl RejectionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::MissingSignature => "missing_signature",
            RejectionCode::InvalidSignature => "invalid_signature",
            RejectionCode::ContentHashMismatch => "content_hash_mismatch",
            RejectionCode::StaleDate => "stale_date",
        }
    }
}

/// What the verifier could tell about why a delivery failed, for troubleshooting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectionDiagnosis {
    /// The signature matches a secret version no longer accepted: the secret is out of sync.
    OldSecretVersion { secret_version: SecretVersion },
    /// The signature would match with the request's own `Host` header instead of the
    /// registered host: a proxy rewrote `Host`.
    HostRewritten { request_host: String },
    /// The signature would match with the request's own path instead of the registered path
    /// and query: a proxy rewrote the path, or the registered URL is stale.
    PathRewritten { request_target: String },
    /// The signature matches when the secret is base64-decoded and used as the key: the
    /// sender decodes the secret, which Vipps does not.
    DecodedSecretKey { secret_version: SecretVersion },
    /// `x-ms-content-sha256` does not match the body: the body changed in transit.
    BodyChanged,
    /// `x-ms-date` is this many seconds away from our clock (positive: in the future).
    ClockSkew { skew_seconds: i64 },
    /// No `Authorization` or `X-Vipps-Authorization` header, or one that does not parse.
    NoSignature,
    /// Nothing more could be told.
    Unknown,
}

/// The headers of a rejected delivery that help troubleshooting. The signature is not kept: a
/// rejected request is untrusted input, and it has no use once rejected. Each text is bounded
/// by [`bounded_text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HeaderSummary {
    pub x_ms_date: Option<String>,
    pub x_ms_content_sha256: Option<String>,
    /// Which header carried the signature: `authorization` or `x-vipps-authorization`.
    pub authorization_header: Option<String>,
    pub host: Option<String>,
    pub webhook_id: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
}

/// A delivery failed verification. Nothing of it enters a payment's state. Bounded: after the
/// first N per provider per window the ingestion path counts instead
/// ([`WebhookRejectionsSuppressed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRejected {
    pub provider_id: ProviderId,
    pub code: RejectionCode,
    pub diagnosis: RejectionDiagnosis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    pub headers: HeaderSummary,
    /// Lower-case hex SHA-256 of the raw body.
    pub body_sha256: String,
    pub body_size: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl StoredEvent for WebhookRejected {
    const TYPE_NAME: &'static str = "webhook_rejected";
    const SCHEMA_VERSION: u32 = 1;
}

/// `count` rejections in `[window_start, window_end)` were counted, not recorded one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRejectionsSuppressed {
    pub provider_id: ProviderId,
    pub count: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
}

impl StoredEvent for WebhookRejectionsSuppressed {
    const TYPE_NAME: &'static str = "webhook_rejections_suppressed";
    const SCHEMA_VERSION: u32 = 1;
}

/// The longest free text (error messages, header values) an event keeps.
pub const MAX_ERROR_TEXT: usize = 512;

/// `text` cut to at most `max` characters, control characters replaced, so free text from
/// outside cannot bloat or garble an event.
pub fn bounded_text(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
