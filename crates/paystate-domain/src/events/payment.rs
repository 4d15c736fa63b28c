//! Events of payment streams (`payment-{provider}.{reference}`) and of a provider's unmatched
//! stream: receipts of authentic deliveries, the payment facts they carry, duplicates and
//! anomalies.

use super::StoredEvent;
use crate::ids::{
    Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference, RegistrationId,
    SecretVersion,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which header carried a delivery's signature. Both carry the same value (VIPPS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorizationHeader {
    Authorization,
    XVippsAuthorization,
}

/// Everything needed to re-verify a stored delivery later with the secret of `secret_version`:
/// the string to sign is rebuilt from these fields and the raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeaders {
    /// `x-ms-date` exactly as received.
    pub x_ms_date: String,
    /// `x-ms-content-sha256` exactly as received.
    pub x_ms_content_sha256: String,
    /// The host used in the string to sign (the registered URL's host, not the request's).
    pub host: String,
    /// The path and query used in the string to sign (from the registered URL).
    pub path_and_query: String,
    pub authorization_header: AuthorizationHeader,
    /// The base64 HMAC from the authorization header. Not a secret: it reveals nothing about
    /// the key, and an audit needs it to re-verify.
    pub signature: String,
}

/// The outcome of verification, as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationSummary {
    /// The secret version whose HMAC matched.
    pub secret_version: SecretVersion,
    /// The registration that secret belongs to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<RegistrationId>,
    /// `x-ms-date` minus the receive time, in seconds.
    pub date_skew_seconds: i64,
    /// Whether a secret version older than the current one verified (during rotation).
    pub older_secret: bool,
}

/// An authentic delivery was received: the receipt, kept verbatim so it can be re-verified and
/// re-parsed. Recorded in the payment's stream, or in the provider's unmatched stream when the
/// body names no valid reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReceived {
    pub provider_id: ProviderId,
    /// The `Webhook-Id` header (the registration id in observed traffic), bounded text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// The raw body as received, base64 (standard, padded).
    pub body_base64: String,
    pub signed: SignedHeaders,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub verification: VerificationSummary,
}

impl StoredEvent for WebhookReceived {
    const TYPE_NAME: &'static str = "webhook_received";
    const SCHEMA_VERSION: u32 = 1;
}

/// Where a payment fact came from: a verified webhook, or polling the ePayment API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum FactSource {
    #[default]
    Webhook,
    Poll,
}

/// Something authentic but unexpected about a fact or a delivery. Recorded and answered 200,
/// never an error (VIPPS.md §3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IngestAnomaly {
    /// The body is not the JSON of an ePayment event; `error` says why (bounded text).
    Unparseable { error: String },
    /// A field is present but breaks its rule, e.g. a reference of 3 characters.
    InvalidField { field: String, error: String },
    /// The MSN in the body is not the provider's.
    MsnMismatch { expected: Msn, got: Msn },
    /// The name is not one of the eight known ones; the fact is kept and changes nothing.
    UnknownEventName { name: String },
}

/// One payment fact: an ePayment event from a webhook or from polling. Its identity is
/// `(msn, reference, name, psp_reference)`; the store's dedupe key
/// ([`crate::streams::payment_dedupe_key`]) makes the first one win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEventRecorded {
    pub provider_id: ProviderId,
    pub msn: Msn,
    pub reference: Reference,
    pub psp_reference: PspReference,
    pub name: PaymentEventName,
    /// This operation's amount (for captures and refunds, the part captured or refunded).
    pub amount: Amount,
    pub currency: Currency,
    /// The provider's time of the operation.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub source: FactSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<IngestAnomaly>,
}

impl StoredEvent for PaymentEventRecorded {
    const TYPE_NAME: &'static str = "payment_event_recorded";
    const SCHEMA_VERSION: u32 = 1;
}

/// The identity of a payment fact (VIPPS.md §3: there is no event id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PaymentEventIdentity {
    pub msn: Msn,
    pub reference: Reference,
    pub name: PaymentEventName,
    pub psp_reference: PspReference,
}

impl PaymentEventRecorded {
    pub fn identity(&self) -> PaymentEventIdentity {
        PaymentEventIdentity {
            msn: self.msn.clone(),
            reference: self.reference.clone(),
            name: self.name.clone(),
            psp_reference: self.psp_reference.clone(),
        }
    }
}

/// An authentic delivery of a fact already recorded at `original_position` (a late 200, or the
/// overlap of two registrations during rotation). The delivery itself is a fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDuplicate {
    pub provider_id: ProviderId,
    pub original_position: u64,
    pub identity: PaymentEventIdentity,
    /// The secret version that verified this copy.
    pub secret_version: SecretVersion,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Set when this copy says something else than the recorded fact (another amount, time,
    /// outcome...): what it says, and the delivery itself, so that nothing authentic is lost.
    /// The recorded fact stays as it is; the payment shows a `conflicting_duplicate` anomaly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Box<ConflictingCopy>>,
}

/// A duplicate delivery whose content differs from the fact recorded under its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictingCopy {
    /// The fact this copy would have recorded.
    pub fact: PaymentEventRecorded,
    /// The delivery, as a `webhook_received` would have stored it (raw body, signed headers,
    /// verification), so `verify` re-verifies it.
    pub receipt: WebhookReceived,
}

impl StoredEvent for WebhookDuplicate {
    const TYPE_NAME: &'static str = "webhook_duplicate";
    const SCHEMA_VERSION: u32 = 1;
}

/// An authentic delivery whose body could not become a [`PaymentEventRecorded`]: unparseable,
/// a field breaking its rule, or a reference that is not valid. Recorded in the payment stream
/// when a valid reference could be read, else in the provider's unmatched stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAnomaly {
    pub provider_id: ProviderId,
    pub anomaly: IngestAnomaly,
    /// The reference as it appeared in the body, bounded text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_raw: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl StoredEvent for WebhookAnomaly {
    const TYPE_NAME: &'static str = "webhook_anomaly";
    const SCHEMA_VERSION: u32 = 1;
}
