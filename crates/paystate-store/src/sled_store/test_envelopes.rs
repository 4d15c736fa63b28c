//! Envelopes for the unit tests of the sled store's parts: only the position and the payload
//! size vary; the hash chain is not checked at this level.

use crate::types::{Envelope, Position, StreamId, StreamVersion};
use time::OffsetDateTime;
use uuid::Uuid;

/// An envelope at `position` on stream `s` with `payload_len` bytes of payload.
pub(crate) fn envelope(position: u64, payload_len: usize) -> Envelope {
    Envelope {
        position: Position(position),
        stream: StreamId::new("s"),
        stream_version: StreamVersion(position),
        event_id: Uuid::now_v7(),
        event_type: "t".into(),
        schema_version: 1,
        recorded_at: OffsetDateTime::UNIX_EPOCH,
        correlation_id: None,
        causation_id: None,
        dedupe_key: None,
        payload: vec![7; payload_len],
        prev_hash: [0; 32],
        hash: [1; 32],
    }
}
