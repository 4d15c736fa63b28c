//! The export format: one JSON object per line, one line per envelope, every field of the
//! envelope kept exactly so that an import reproduces the same records and hashes.
//!
//! ```text
//! {"position":1,"stream":"provider-vipps-test","stream_version":1,"event_id":"0193…",
//!  "event_type":"provider_created","schema_version":1,
//!  "recorded_at":"2026-11-28T06:40:01.123456789Z","correlation_id":null,"causation_id":null,
//!  "dedupe_key":null,"payload_utf8":"{\"provider_id\":…}","prev_hash":"00…","hash":"9f…"}
//! ```
//!
//! The payload is the stored bytes (never upcast): as `payload_utf8` when they are UTF-8
//! (readable with `jq`), else as `payload_base64`. Hashes are lowercase hex. `recorded_at` is
//! RFC 3339 with all nine fraction digits the store keeps.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paystate_store::{Envelope, Hash, Position, StreamId, StreamVersion};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One exported envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub dedupe_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_utf8: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Why a line is not an exported envelope.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not an exported envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("exactly one of payload_utf8 and payload_base64 must be present")]
    Payload,
    #[error("payload_base64 is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("{field} is not 64 hex digits")]
    HashHex { field: &'static str },
}

impl LogLine {
    /// The line for a stored envelope (read with `read_all_raw`, so bytes are as stored).
    pub fn from_envelope(envelope: &Envelope) -> LogLine {
        let (payload_utf8, payload_base64) = match std::str::from_utf8(&envelope.payload) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(BASE64.encode(&envelope.payload))),
        };
        LogLine {
            position: envelope.position.0,
            stream: envelope.stream.as_str().to_owned(),
            stream_version: envelope.stream_version.0,
            event_id: envelope.event_id,
            event_type: envelope.event_type.clone(),
            schema_version: envelope.schema_version,
            recorded_at: envelope.recorded_at,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            dedupe_key: envelope.dedupe_key.clone(),
            payload_utf8,
            payload_base64,
            prev_hash: hex::encode(envelope.prev_hash),
            hash: hex::encode(envelope.hash),
        }
    }

    /// Parses one line of an export.
    pub fn parse(line: &str) -> Result<LogLine, LineError> {
        Ok(serde_json::from_str(line)?)
    }

    /// The envelope this line describes. The store checks its hash and chain on import.
    pub fn into_envelope(self) -> Result<Envelope, LineError> {
        let payload = match (self.payload_utf8, self.payload_base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(encoded)) => BASE64.decode(encoded)?,
            _ => return Err(LineError::Payload),
        };
        Ok(Envelope {
            position: Position(self.position),
            stream: StreamId::new(self.stream),
            stream_version: StreamVersion(self.stream_version),
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            recorded_at: self.recorded_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            dedupe_key: self.dedupe_key,
            payload,
            prev_hash: parse_hash(&self.prev_hash, "prev_hash")?,
            hash: parse_hash(&self.hash, "hash")?,
        })
    }
}

fn parse_hash(text: &str, field: &'static str) -> Result<Hash, LineError> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).map_err(|_| LineError::HashHex { field })?;
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: Vec<u8>) -> Envelope {
        Envelope {
            position: Position(3),
            stream: StreamId::new("payment-vipps-test.acme-order-1001"),
            stream_version: StreamVersion(2),
            event_id: Uuid::now_v7(),
            event_type: "payment_event_recorded".into(),
            schema_version: 1,
            recorded_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_312_001_123_456_789)
                .unwrap(),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            dedupe_key: Some("payment:vipps-test:123456:acme-order-1001:CAPTURED:p1".into()),
            payload,
            prev_hash: [7u8; 32],
            hash: [9u8; 32],
        }
    }

    fn round_trip(original: &Envelope) -> Envelope {
        let text = serde_json::to_string(&LogLine::from_envelope(original)).unwrap();
        assert!(!text.contains('\n'), "one envelope must be one line");
        LogLine::parse(&text).unwrap().into_envelope().unwrap()
    }

    #[test]
    fn a_json_payload_travels_as_readable_text_and_comes_back_byte_for_byte() {
        let original = envelope(br#"{"name":"CAPTURED",  "amount":4000}"#.to_vec());
        let line = LogLine::from_envelope(&original);
        assert!(line.payload_utf8.as_deref().unwrap().contains("CAPTURED"));
        assert_eq!(round_trip(&original), original);
    }

    #[test]
    fn a_binary_payload_travels_as_base64_and_comes_back_byte_for_byte() {
        let original = envelope(vec![0xff, 0x00, 0xfe, b'{']);
        assert!(LogLine::from_envelope(&original).payload_base64.is_some());
        assert_eq!(round_trip(&original), original);
    }

    #[test]
    fn the_recorded_time_keeps_its_nanoseconds() {
        let original = envelope(b"{}".to_vec());
        assert_eq!(round_trip(&original).recorded_at, original.recorded_at);
    }

    #[test]
    fn broken_lines_are_refused_with_a_reason() {
        assert!(matches!(
            LogLine::parse("{\"position\":"),
            Err(LineError::Json(_))
        ));
        let mut line = LogLine::from_envelope(&envelope(b"{}".to_vec()));
        line.hash = "abc".into();
        assert!(matches!(
            line.clone().into_envelope(),
            Err(LineError::HashHex { field: "hash" })
        ));
        line.hash = hex::encode([1u8; 32]);
        line.payload_base64 = Some("AA==".into());
        assert!(matches!(line.into_envelope(), Err(LineError::Payload)));
    }
}
