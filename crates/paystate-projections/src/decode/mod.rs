//! Reading envelopes into batches for the projections, apart from applying them, so that a
//! rebuild reads the log on one core while it applies on the other.
//!
//! A [`Batch`] copies what the projections need of each envelope into one buffer (no
//! allocation per event) and decodes the receipts right away: a `webhook_received` carries
//! the raw body (base64) and the signed headers, which no projection reads, so only its
//! provider and receive time are decoded ([`Receipt`]) and the rest is skipped unread. The
//! skipped fields must still be present, so a receipt the full decoder calls malformed for a
//! missing field is malformed here too.
//!
//! Payment facts are decoded when applied, borrowing their text from the batch
//! ([`FactFields`]): only the fields a payment keeps are copied, each checked by its type's
//! rule as the full decoder would. Every other type goes through [`DomainEvent::decode`].

use paystate_domain::events::{
    DecodeError, DomainEvent, FactSource, IngestAnomaly, PaymentEventRecorded, StoredEvent,
    WebhookReceived,
};
use paystate_domain::{Amount, ProviderId};
use paystate_store::{EnvelopeRef, Position};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;
use time::OffsetDateTime;

/// Envelopes read from the log, with their text in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    position: Position,
    recorded_at: OffsetDateTime,
    /// For events of a provider's own stream (`provider-{id}`): the text after the prefix.
    provider_stream: Option<Range<usize>>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Receipt(Result<Receipt, DecodeError>),
    Stored {
        event_type: Range<usize>,
        schema_version: u32,
        payload: Range<usize>,
    },
}

/// One envelope of a batch, as the projections apply it.
#[derive(Debug)]
pub(crate) struct BatchEnvelope<'a> {
    pub position: Position,
    pub recorded_at: OffsetDateTime,
    pub provider_stream: Option<&'a str>,
    pub event: Event<'a>,
}

/// What an envelope holds, as far as the projections are concerned.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    Receipt(&'a Receipt),
    /// Any type but `webhook_received`, still to be decoded.
    Stored {
        event_type: &'a str,
        schema_version: u32,
        payload: &'a [u8],
    },
    /// A receipt that did not decode.
    Undecodable(&'a DecodeError),
}

/// The longest provider id (its rule allows 63 characters).
const MAX_PROVIDER_ID: usize = 63;

/// The part of a `webhook_received` the projections use. The provider id is kept inline and
/// checked against its rule when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    provider_len: u8,
    provider: [u8; MAX_PROVIDER_ID],
    pub received_at: OffsetDateTime,
}

impl Receipt {
    pub fn provider_id(&self) -> &str {
        let text = self
            .provider
            .get(..usize::from(self.provider_len))
            .unwrap_or(&[]);
        std::str::from_utf8(text).unwrap_or("")
    }
}

/// The fields of [`WebhookReceived`], each required as there, with only two of them read.
#[derive(Deserialize)]
struct ReceiptFields<'a> {
    #[serde(borrow)]
    provider_id: Cow<'a, str>,
    #[serde(rename = "body_base64")]
    _body_base64: IgnoredAny,
    #[serde(rename = "signed")]
    _signed: IgnoredAny,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    #[serde(rename = "verification")]
    _verification: IgnoredAny,
}

/// The fields of [`PaymentEventRecorded`] as stored, text borrowed.
#[derive(Deserialize)]
pub(crate) struct FactFields<'a> {
    #[serde(borrow)]
    pub provider_id: Cow<'a, str>,
    #[serde(borrow)]
    pub msn: Cow<'a, str>,
    #[serde(borrow)]
    pub reference: Cow<'a, str>,
    #[serde(borrow)]
    pub psp_reference: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub amount: Amount,
    #[serde(borrow)]
    pub currency: Cow<'a, str>,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, borrow)]
    pub idempotency_key: Option<Cow<'a, str>>,
    pub success: bool,
    #[serde(default)]
    pub source: FactSource,
    #[serde(default)]
    pub anomaly: Option<IngestAnomaly>,
}

/// Decodes a stored payload of `payment_event_recorded` at its current schema version into
/// borrowed fields; `None` for any other type or version (decode those in full).
pub(crate) fn fact_fields<'a>(
    event_type: &str,
    schema_version: u32,
    payload: &'a [u8],
) -> Option<Result<FactFields<'a>, DecodeError>> {
    if event_type != PaymentEventRecorded::TYPE_NAME
        || schema_version != PaymentEventRecorded::SCHEMA_VERSION
    {
        return None;
    }
    Some(
        serde_json::from_slice(payload).map_err(|error| DecodeError::Malformed {
            type_name: PaymentEventRecorded::TYPE_NAME,
            schema_version,
            message: error.to_string(),
        }),
    )
}

/// Decodes any stored event in full.
pub(crate) fn full(
    event_type: &str,
    schema_version: u32,
    payload: &[u8],
) -> Result<DomainEvent, DecodeError> {
    DomainEvent::decode(event_type, schema_version, payload)
}

const PROVIDER_STREAM_PREFIX: &str = "provider-";

impl Batch {
    pub fn with_capacity(events: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(events * 512),
            items: Vec::with_capacity(events),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the batch, keeping its buffers for the next one.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    /// The position of the last envelope.
    pub fn last_position(&self) -> Option<Position> {
        self.items.last().map(|item| item.position)
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// Adds one envelope; a receipt is decoded now.
    pub fn push(&mut self, envelope: &EnvelopeRef<'_>) {
        let provider_stream = envelope
            .stream
            .strip_prefix(PROVIDER_STREAM_PREFIX)
            .map(|owner| self.copy(owner.as_bytes()));
        let body = if envelope.event_type == WebhookReceived::TYPE_NAME {
            Body::Receipt(decode_receipt(envelope.schema_version, &envelope.payload))
        } else {
            Body::Stored {
                event_type: self.copy(envelope.event_type.as_bytes()),
                schema_version: envelope.schema_version,
                payload: self.copy(&envelope.payload),
            }
        };
        self.items.push(Item {
            position: envelope.position,
            recorded_at: envelope.recorded_at,
            provider_stream,
            body,
        });
    }

    fn text(&self, range: &Range<usize>) -> &str {
        self.bytes
            .get(range.clone())
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// The envelopes, in log order.
    pub fn envelopes(&self) -> impl Iterator<Item = BatchEnvelope<'_>> {
        self.items.iter().map(|item| BatchEnvelope {
            position: item.position,
            recorded_at: item.recorded_at,
            provider_stream: item.provider_stream.as_ref().map(|range| self.text(range)),
            event: match &item.body {
                Body::Receipt(Ok(receipt)) => Event::Receipt(receipt),
                Body::Receipt(Err(error)) => Event::Undecodable(error),
                Body::Stored {
                    event_type,
                    schema_version,
                    payload,
                } => Event::Stored {
                    event_type: self.text(event_type),
                    schema_version: *schema_version,
                    payload: self.bytes.get(payload.clone()).unwrap_or(&[]),
                },
            },
        })
    }
}

fn decode_receipt(schema_version: u32, payload: &[u8]) -> Result<Receipt, DecodeError> {
    let malformed = |message: String| DecodeError::Malformed {
        type_name: WebhookReceived::TYPE_NAME,
        schema_version,
        message,
    };
    if schema_version != WebhookReceived::SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            type_name: WebhookReceived::TYPE_NAME,
            found: schema_version,
            supported: WebhookReceived::SCHEMA_VERSION,
        });
    }
    let fields: ReceiptFields<'_> =
        serde_json::from_slice(payload).map_err(|error| malformed(error.to_string()))?;
    let id = fields.provider_id.as_bytes();
    let mut provider = [0; MAX_PROVIDER_ID];
    match (provider.get_mut(..id.len()), u8::try_from(id.len())) {
        (Some(inline), Ok(provider_len)) => {
            inline.copy_from_slice(id);
            Ok(Receipt {
                provider_len,
                provider,
                received_at: fields.received_at,
            })
        }
        // Too long to be a provider id: the message is the rule's.
        _ => Err(malformed(
            ProviderId::parse(&fields.provider_id)
                .err()
                .map_or_else(|| "provider_id too long".to_owned(), |e| e.to_string()),
        )),
    }
}
