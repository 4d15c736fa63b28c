//! The stored event catalogue: every fact paystate records, as its own type with a stable
//! `snake_case` name and a schema version.
//!
//! These are storage schemas, not HTTP shapes: once a (type, version) has been written, its JSON
//! means the same forever. A change of meaning is a new schema version plus an upcaster in the
//! store; stored bytes are never rewritten (see `docs/events.md`).
//!
//! - [`StoredEvent`] gives each type its name and version.
//! - [`DomainEvent`] is the sum of all of them: encode with [`DomainEvent::to_payload`], decode
//!   with [`DomainEvent::decode`]. An unknown type is a [`DecodeError::UnknownType`] the caller
//!   can keep as "unknown" (a newer writer, an older reader), never a panic.

mod payment;
mod provider;
mod summary;

pub use payment::{
    AuthorizationHeader, ConflictingCopy, FactSource, IngestAnomaly, PaymentEventIdentity,
    PaymentEventRecorded, SignedHeaders, VerificationSummary, WebhookAnomaly, WebhookDuplicate,
    WebhookReceived,
};
pub use provider::{
    bounded_text, CredentialsUpdated, DeletionReason, EnvironmentChanged, HeaderSummary,
    ProviderCreated, ProviderDisabled, ProviderEnabled, PublicUrlChanged, RegistrationReason,
    RejectionCode, RejectionDiagnosis, WebhookDeleted, WebhookRegistered,
    WebhookRegistrationFailed, WebhookRegistrationRequested, WebhookRegistrationSkipped,
    WebhookRejected, WebhookRejectionsSuppressed, MAX_ERROR_TEXT,
};

use serde::{de::DeserializeOwned, Serialize};
use time::OffsetDateTime;

/// What the log says about where and when an event was recorded; folds take it beside the
/// event, so events need not repeat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's global position in the log.
    pub position: u64,
    /// When the log recorded it.
    pub recorded_at: OffsetDateTime,
}

/// A stored event schema: its type name and the schema version this code writes.
pub trait StoredEvent: Serialize + DeserializeOwned {
    /// Stable `snake_case` name, e.g. `webhook_registered`. Never changes once released.
    const TYPE_NAME: &'static str;
    /// The version of this type's JSON shape that this code writes and reads.
    const SCHEMA_VERSION: u32;
}

/// Why stored bytes could not become a [`DomainEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A type this code does not know (written by a newer version). Keep it as unknown.
    #[error("unknown event type {type_name:?} (schema version {schema_version})")]
    UnknownType {
        type_name: String,
        schema_version: u32,
    },
    /// A known type at a schema version this code cannot read: the store should have upcast it.
    #[error(
        "event type {type_name} has schema version {found}; this code reads version {supported}"
    )]
    UnsupportedVersion {
        type_name: &'static str,
        found: u32,
        supported: u32,
    },
    /// The payload is not valid JSON for the type, or a value breaks its rule.
    #[error("event type {type_name} version {schema_version}: {message}")]
    Malformed {
        type_name: &'static str,
        schema_version: u32,
        message: String,
    },
}

/// Why an event could not be written as JSON: a time outside what RFC 3339 can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event type {type_name} cannot be encoded: {message}")]
pub struct EncodeError {
    pub type_name: &'static str,
    pub message: String,
}

/// Declares [`DomainEvent`] over every stored type, with `From` for each and the dispatch of
/// name, version, encode and decode, so adding a type is one line here.
macro_rules! catalogue {
    ($($variant:ident),+ $(,)?) => {
        /// Any stored event of the catalogue.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum DomainEvent {
            $($variant($variant),)+
        }

        /// Every `(type name, schema version)` this code writes, for docs and store checks.
        pub const CATALOGUE: &[(&str, u32)] = &[
            $(($variant::TYPE_NAME, $variant::SCHEMA_VERSION),)+
        ];

        impl DomainEvent {
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(DomainEvent::$variant(_) => $variant::TYPE_NAME,)+
                }
            }

            pub fn schema_version(&self) -> u32 {
                match self {
                    $(DomainEvent::$variant(_) => $variant::SCHEMA_VERSION,)+
                }
            }

            /// The JSON to store under [`Self::type_name`] and [`Self::schema_version`].
            ///
            /// The only way encoding can fail is a time outside the years 0 to 9999, which
            /// RFC 3339 cannot write; that gives an empty payload (it decodes as
            /// [`DecodeError::Malformed`], never as a wrong event). Where a time comes from
            /// outside, prefer [`Self::try_to_payload`].
            pub fn to_payload(&self) -> Vec<u8> {
                self.try_to_payload().unwrap_or_default()
            }

            /// The JSON to store, or why it cannot be written.
            pub fn try_to_payload(&self) -> Result<Vec<u8>, EncodeError> {
                match self {
                    $(DomainEvent::$variant(event) => encode(event),)+
                }
            }

            /// Reads stored bytes back. `schema_version` must be the current one for the type
            /// (the store upcasts older ones before this is called).
            pub fn decode(
                type_name: &str,
                schema_version: u32,
                payload: &[u8],
            ) -> Result<DomainEvent, DecodeError> {
                match type_name {
                    $($variant::TYPE_NAME => decode_as::<$variant>(schema_version, payload)
                        .map(DomainEvent::$variant),)+
                    other => Err(DecodeError::UnknownType {
                        type_name: other.to_owned(),
                        schema_version,
                    }),
                }
            }
        }

        $(
            impl From<$variant> for DomainEvent {
                fn from(event: $variant) -> DomainEvent {
                    DomainEvent::$variant(event)
                }
            }
        )+
    };
}

catalogue!(
    ProviderCreated,
    ProviderEnabled,
    ProviderDisabled,
    CredentialsUpdated,
    EnvironmentChanged,
    PublicUrlChanged,
    WebhookRegistrationRequested,
    WebhookRegistrationSkipped,
    WebhookRegistered,
    WebhookRegistrationFailed,
    WebhookDeleted,
    WebhookRejected,
    WebhookRejectionsSuppressed,
    WebhookReceived,
    PaymentEventRecorded,
    WebhookDuplicate,
    WebhookAnomaly,
);

fn encode<E: StoredEvent>(event: &E) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(event).map_err(|error| EncodeError {
        type_name: E::TYPE_NAME,
        message: error.to_string(),
    })
}

fn decode_as<E: StoredEvent>(schema_version: u32, payload: &[u8]) -> Result<E, DecodeError> {
    if schema_version != E::SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            type_name: E::TYPE_NAME,
            found: schema_version,
            supported: E::SCHEMA_VERSION,
        });
    }
    serde_json::from_slice(payload).map_err(|error| DecodeError::Malformed {
        type_name: E::TYPE_NAME,
        schema_version,
        message: error.to_string(),
    })
}
