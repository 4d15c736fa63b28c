//! The on-disk record encoding and the canonical encoding the hash chain covers.
//!
//! A stored record is one tag byte ([`RECORD_TAG_V1`]) followed by a postcard-encoded
//! [`RecordV1`]. The tag lets a later format store records side by side with old ones.
//!
//! The hash does not depend on postcard: it is SHA-256 over a fixed, length-prefixed layout
//! (see [`envelope_hash`]) so that an export read back by another implementation, or by a later
//! version of this one, verifies the same way.

use crate::error::StoreError;
use crate::types::{Envelope, EnvelopeRef, Hash, Position, StreamVersion};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

/// First byte of every stored record of format version 1.
pub(crate) const RECORD_TAG_V1: u8 = 1;

/// Domain separation for the chain hash, so no other SHA-256 in the system can collide with it.
const HASH_DOMAIN: &[u8] = b"paystate.envelope.v1\0";

/// The hash the first record chains on.
pub(crate) const GENESIS_HASH: Hash = [0u8; 32];

/// Bytes that postcard writes as one length-prefixed run (not element by element) and that
/// decode borrowed from the stored record.
#[derive(Clone, Copy)]
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(deserializer).map(Raw)
    }
}

/// A record as postcard sees it. Borrowed on decode so strings and payloads are copied once.
#[derive(Serialize, Deserialize)]
struct RecordV1<'a> {
    position: u64,
    stream: &'a str,
    stream_version: u64,
    #[serde(borrow)]
    event_id: Raw<'a>,
    event_type: &'a str,
    schema_version: u32,
    recorded_at_unix_nanos: i128,
    #[serde(borrow)]
    correlation_id: Option<Raw<'a>>,
    #[serde(borrow)]
    causation_id: Option<Raw<'a>>,
    #[serde(borrow)]
    dedupe_key: Option<&'a str>,
    #[serde(borrow)]
    payload: Raw<'a>,
    #[serde(borrow)]
    prev_hash: Raw<'a>,
    #[serde(borrow)]
    hash: Raw<'a>,
}

/// Encodes an envelope as a stored record.
pub(crate) fn encode_record(envelope: &Envelope) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(128 + envelope.payload.len());
    encode_record_into(envelope, &mut out)?;
    Ok(out)
}

/// Appends the stored record of `envelope` to `out` (a chunk being filled, so the record is
/// not copied a second time).
pub(crate) fn encode_record_into(envelope: &Envelope, out: &mut Vec<u8>) -> Result<(), StoreError> {
    let record = RecordV1 {
        position: envelope.position.0,
        stream: envelope.stream.as_str(),
        stream_version: envelope.stream_version.0,
        event_id: Raw(envelope.event_id.as_bytes()),
        event_type: &envelope.event_type,
        schema_version: envelope.schema_version,
        recorded_at_unix_nanos: envelope.recorded_at.unix_timestamp_nanos(),
        correlation_id: envelope
            .correlation_id
            .as_ref()
            .map(|id| Raw(id.as_bytes())),
        causation_id: envelope.causation_id.as_ref().map(|id| Raw(id.as_bytes())),
        dedupe_key: envelope.dedupe_key.as_deref(),
        payload: Raw(&envelope.payload),
        prev_hash: Raw(&envelope.prev_hash),
        hash: Raw(&envelope.hash),
    };
    out.push(RECORD_TAG_V1);
    postcard::to_io(&record, out).map_err(|error| {
        StoreError::Invalid(format!(
            "event at position {} cannot be encoded: {error}",
            envelope.position
        ))
    })?;
    Ok(())
}

/// Decodes a stored record; `position` is the key it was found under, used in errors and
/// checked against the position inside the record.
pub(crate) fn decode_record(position: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
    decode_record_ref(position, bytes).map(EnvelopeRef::into_envelope)
}

/// As [`decode_record`], borrowing strings, payload and hashes from `bytes` (the payload is
/// always [`Cow::Borrowed`]).
pub(crate) fn decode_record_ref<'a>(
    position: u64,
    bytes: &'a [u8],
) -> Result<EnvelopeRef<'a>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let (tag, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    if *tag != RECORD_TAG_V1 {
        return Err(corrupt(format!("unknown record tag {tag}")));
    }
    let (record, rest): (RecordV1<'a>, &[u8]) = postcard::take_from_bytes(body)
        .map_err(|error| corrupt(format!("undecodable: {error}")))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", rest.len())));
    }
    if record.position != position {
        return Err(corrupt(format!(
            "record claims position {} but is stored at {position}",
            record.position
        )));
    }
    let uuid = |bytes: Raw<'_>, field: &str| {
        Uuid::from_slice(bytes.0).map_err(|_| corrupt(format!("{field} is not 16 bytes")))
    };
    let hash = |bytes: Raw<'a>, field: &str| -> Result<&'a Hash, StoreError> {
        <&Hash>::try_from(bytes.0).map_err(|_| corrupt(format!("{field} is not 32 bytes")))
    };
    Ok(EnvelopeRef {
        position: Position(record.position),
        stream: record.stream,
        stream_version: StreamVersion(record.stream_version),
        event_id: uuid(record.event_id, "event id")?,
        event_type: record.event_type,
        schema_version: record.schema_version,
        recorded_at: OffsetDateTime::from_unix_timestamp_nanos(record.recorded_at_unix_nanos)
            .map_err(|_| corrupt("recorded time out of range".into()))?,
        correlation_id: record
            .correlation_id
            .map(|id| uuid(id, "correlation id"))
            .transpose()?,
        causation_id: record
            .causation_id
            .map(|id| uuid(id, "causation id"))
            .transpose()?,
        dedupe_key: record.dedupe_key,
        payload: Cow::Borrowed(record.payload.0),
        prev_hash: hash(record.prev_hash, "previous hash")?,
        hash: hash(record.hash, "hash")?,
    })
}

/// SHA-256 over the canonical encoding of every envelope field except `hash`.
///
/// Layout, in order (integers big-endian, `str`/bytes prefixed by their length as u64,
/// optional fields by one byte 0 = absent / 1 = present):
/// domain tag `paystate.envelope.v1\0`, position u64, stream str, stream version u64,
/// event id 16 bytes, event type str, schema version u32, recorded time as i128 Unix
/// nanoseconds, correlation id opt 16 bytes, causation id opt 16 bytes, dedupe key opt str,
/// payload bytes, previous hash 32 bytes.
pub(crate) fn envelope_hash(envelope: &EnvelopeRef<'_>) -> Hash {
    fn bytes(hasher: &mut Sha256, value: &[u8]) {
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    fn optional(hasher: &mut Sha256, value: Option<&[u8]>, prefixed: bool) {
        match value {
            None => hasher.update([0u8]),
            Some(value) => {
                hasher.update([1u8]);
                if prefixed {
                    bytes(hasher, value);
                } else {
                    hasher.update(value);
                }
            }
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(envelope.position.0.to_be_bytes());
    bytes(&mut hasher, envelope.stream.as_bytes());
    hasher.update(envelope.stream_version.0.to_be_bytes());
    hasher.update(envelope.event_id.as_bytes());
    bytes(&mut hasher, envelope.event_type.as_bytes());
    hasher.update(envelope.schema_version.to_be_bytes());
    hasher.update(envelope.recorded_at.unix_timestamp_nanos().to_be_bytes());
    optional(
        &mut hasher,
        envelope
            .correlation_id
            .as_ref()
            .map(|id| id.as_bytes().as_slice()),
        false,
    );
    optional(
        &mut hasher,
        envelope
            .causation_id
            .as_ref()
            .map(|id| id.as_bytes().as_slice()),
        false,
    );
    optional(&mut hasher, envelope.dedupe_key.map(str::as_bytes), true);
    bytes(&mut hasher, &envelope.payload);
    hasher.update(envelope.prev_hash);
    hasher.finalize().into()
}

/// Checks one record against the chain: the position that must come next and the hash the
/// previous record ended with. Returns why it is bad, if it is.
pub(crate) fn chain_fault(
    envelope: &EnvelopeRef<'_>,
    expected: Position,
    prev_hash: &Hash,
) -> Option<String> {
    if envelope.position != expected {
        return Some(format!(
            "expected position {expected}, found {}",
            envelope.position
        ));
    }
    if envelope.prev_hash != prev_hash {
        return Some("previous hash does not match the hash of the record before".into());
    }
    if &envelope_hash(envelope) != envelope.hash {
        return Some("hash does not match the record's contents".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StreamId;

    fn sample() -> Envelope {
        let mut envelope = Envelope {
            position: Position(7),
            stream: StreamId::new("payment-1"),
            stream_version: StreamVersion(2),
            event_id: Uuid::now_v7(),
            event_type: "payment_captured".into(),
            schema_version: 3,
            recorded_at: OffsetDateTime::now_utc(),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            dedupe_key: Some("key".into()),
            payload: b"{\"amount\":100}".to_vec(),
            prev_hash: [9u8; 32],
            hash: [0u8; 32],
        };
        envelope.hash = envelope_hash(&envelope.as_borrowed());
        envelope
    }

    #[test]
    fn a_record_round_trips_exactly() {
        let envelope = sample();
        let bytes = encode_record(&envelope).unwrap();
        assert_eq!(decode_record(7, &bytes).unwrap(), envelope);
    }

    #[test]
    fn a_record_under_the_wrong_key_is_corrupt() {
        let bytes = encode_record(&sample()).unwrap();
        assert!(matches!(
            decode_record(8, &bytes),
            Err(StoreError::Corrupt { position: 8, .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode_record(&sample()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_record(7, &bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = sample();
        let changes: Vec<fn(&mut Envelope)> = vec![
            |e| e.position = Position(8),
            |e| e.stream = StreamId::new("payment-2"),
            |e| e.stream_version = StreamVersion(3),
            |e| e.event_id = Uuid::now_v7(),
            |e| e.event_type = "payment_cancelled".into(),
            |e| e.schema_version = 4,
            |e| e.recorded_at += time::Duration::nanoseconds(1),
            |e| e.correlation_id = None,
            |e| e.causation_id = Some(Uuid::nil()),
            |e| e.dedupe_key = None,
            |e| e.payload.push(b' '),
            |e| e.prev_hash[31] ^= 1,
        ];
        for (index, change) in changes.into_iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(
                envelope_hash(&changed.as_borrowed()),
                base.hash,
                "field change {index}"
            );
        }
    }
}
