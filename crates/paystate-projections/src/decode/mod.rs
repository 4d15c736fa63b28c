//! Reading envelopes into batches for the projections, apart from applying them, so that a
//! rebuild reads the log on one core while it applies on the other.
//!
//! A [`Batch`] copies what the projections need of each envelope into one buffer (no
//! allocation per event) and decodes the receipts right away: only a receipt's provider and
//! receive time ([`Receipt`], in `receipt`). Payment facts are decoded when applied,
//! borrowing their text from the batch ([`FactFields`], in `fact`). Every other type goes
//! through [`DomainEvent::decode`].
//!
//! Receipts and facts are read first with [`crate::scan::Scanner`], which reads exactly the
//! compact JSON this code writes, and with serde_json when the scanner declines: a payload
//! is undecodable exactly when serde_json rejects it, whichever path read it.

mod fact;
mod receipt;
#[cfg(test)]
mod tests;

pub(crate) use fact::{fact_fields, FactFields};
pub(crate) use receipt::Receipt;

use paystate_domain::events::{DecodeError, DomainEvent, StoredEvent, WebhookReceived};
use paystate_store::{EnvelopeRef, Position};
use receipt::decode_receipt;
use std::ops::Range;
use time::format_description::well_known::Rfc3339;
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

/// Decodes any stored event in full.
pub(crate) fn full(
    event_type: &str,
    schema_version: u32,
    payload: &[u8],
) -> Result<DomainEvent, DecodeError> {
    DomainEvent::decode(event_type, schema_version, payload)
}

/// An RFC 3339 time, as `time::serde::rfc3339` reads one; `None` where it would fail.
fn rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
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
