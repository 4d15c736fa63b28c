//! Decoding an envelope into what the projections need of it, apart from applying it, so a
//! rebuild can decode on one core while it applies on the other, and the live follower can
//! decode outside the lock readers wait on.
//!
//! Every type decodes as [`DomainEvent::decode`] would, except `webhook_received`: its receipt
//! carries the raw body (base64) and the signed headers, which no projection reads, so only
//! its provider and receive time are decoded ([`Receipt`]) and the rest is skipped unread. The
//! other fields must still be present, so an envelope the full decoder calls malformed for a
//! missing field is malformed here too.

use paystate_domain::events::{DecodeError, DomainEvent, StoredEvent, WebhookReceived};
use paystate_domain::ProviderId;
use paystate_store::{EnvelopeRef, Position};
use serde::de::IgnoredAny;
use serde::Deserialize;
use time::OffsetDateTime;

/// One envelope, decoded for the projections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedEnvelope {
    pub position: Position,
    pub recorded_at: OffsetDateTime,
    /// For events of a provider's own stream (`provider-{id}`): the text after the prefix.
    pub provider_stream: Option<Box<str>>,
    pub event: Decoded,
}

/// What an envelope holds, as far as the projections are concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// A `webhook_received`, of which only these two fields are read.
    Receipt(Receipt),
    Event(Box<DomainEvent>),
    /// A type this version does not know.
    UnknownType,
    /// A known type whose payload does not decode.
    Undecodable(DecodeError),
}

/// The part of a `webhook_received` the projections use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub provider_id: ProviderId,
    pub received_at: OffsetDateTime,
}

/// The fields of [`WebhookReceived`], each required as there, with only two of them read.
#[derive(Deserialize)]
struct ReceiptFields<'a> {
    #[serde(borrow)]
    provider_id: std::borrow::Cow<'a, str>,
    body_base64: IgnoredAny,
    signed: IgnoredAny,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    verification: IgnoredAny,
}

const PROVIDER_STREAM_PREFIX: &str = "provider-";

/// Decodes one envelope.
pub(crate) fn decode(envelope: &EnvelopeRef<'_>) -> DecodedEnvelope {
    let provider_stream = envelope
        .stream
        .strip_prefix(PROVIDER_STREAM_PREFIX)
        .map(Box::from);
    let event = if envelope.event_type == WebhookReceived::TYPE_NAME {
        decode_receipt(envelope.schema_version, &envelope.payload)
    } else {
        match DomainEvent::decode(
            envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(event) => Decoded::Event(Box::new(event)),
            Err(DecodeError::UnknownType { .. }) => Decoded::UnknownType,
            Err(error) => Decoded::Undecodable(error),
        }
    };
    DecodedEnvelope {
        position: envelope.position,
        recorded_at: envelope.recorded_at,
        provider_stream,
        event,
    }
}

fn decode_receipt(schema_version: u32, payload: &[u8]) -> Decoded {
    let malformed = |message: String| {
        Decoded::Undecodable(DecodeError::Malformed {
            type_name: WebhookReceived::TYPE_NAME,
            schema_version,
            message,
        })
    };
    if schema_version != WebhookReceived::SCHEMA_VERSION {
        return Decoded::Undecodable(DecodeError::UnsupportedVersion {
            type_name: WebhookReceived::TYPE_NAME,
            found: schema_version,
            supported: WebhookReceived::SCHEMA_VERSION,
        });
    }
    let fields: ReceiptFields<'_> = match serde_json::from_slice(payload) {
        Ok(fields) => fields,
        Err(error) => return malformed(error.to_string()),
    };
    let _ = (fields.body_base64, fields.signed, fields.verification);
    match ProviderId::parse(&fields.provider_id) {
        Ok(provider_id) => Decoded::Receipt(Receipt {
            provider_id,
            received_at: fields.received_at,
        }),
        Err(error) => malformed(error.to_string()),
    }
}
