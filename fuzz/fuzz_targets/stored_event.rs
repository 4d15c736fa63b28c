//! Feeds arbitrary stored events (a catalogue type name or any name, a schema version, any
//! payload bytes, any stream) as they would be read back from the log: to
//! `DomainEvent::decode` and, as envelopes in sequence, to `Projections::apply`, whose own
//! scanner reads payment facts and receipts without serde_json when it can.
//!
//! Checks: nothing panics; a payload that decodes encodes again to bytes that decode to the
//! same event; applying the same envelopes to two fresh projections gives equal projections.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paystate_domain::events::{DomainEvent, CATALOGUE};
use paystate_projections::Projections;
use paystate_store::{Envelope, Position, StreamId, StreamVersion};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Arbitrary, Debug)]
enum TypeName<'a> {
    /// An index into the catalogue of stored types.
    Known(u8),
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Stored<'a> {
    type_name: TypeName<'a>,
    /// `None`: the type's current schema version.
    schema_version: Option<u32>,
    stream: &'a str,
    recorded_at_seconds: i32,
    payload: &'a [u8],
}

fuzz_target!(|events: Vec<Stored<'_>>| {
    let mut envelopes = Vec::new();
    for (index, stored) in events.into_iter().take(8).enumerate() {
        let (type_name, current) = match stored.type_name {
            TypeName::Known(index) => CATALOGUE[usize::from(index) % CATALOGUE.len()],
            TypeName::Other(name) => (name, 1),
        };
        let schema_version = stored.schema_version.unwrap_or(current);
        if let Ok(event) = DomainEvent::decode(type_name, schema_version, stored.payload) {
            check_round_trip(&event);
        }
        let position = index as u64 + 1;
        envelopes.push(Envelope {
            position: Position(position),
            stream: StreamId::new(stored.stream),
            stream_version: StreamVersion(position),
            event_id: Uuid::from_u128(u128::from(position)),
            event_type: type_name.to_owned(),
            schema_version,
            recorded_at: OffsetDateTime::from_unix_timestamp(stored.recorded_at_seconds.into())
                .expect("an i32 of seconds is a time"),
            correlation_id: None,
            causation_id: None,
            dedupe_key: None,
            payload: stored.payload.to_vec(),
            prev_hash: [0; 32],
            hash: [0; 32],
        });
    }
    let mut first = Projections::default();
    let mut second = Projections::default();
    for envelope in &envelopes {
        first.apply(envelope);
        second.apply(envelope);
    }
    let differences = first.differences(&second);
    assert!(differences.is_empty(), "{differences:?}");
});

fn check_round_trip(event: &DomainEvent) {
    let Ok(payload) = event.try_to_payload() else {
        // A time RFC 3339 cannot write: refused, never stored as a wrong event.
        return;
    };
    let decoded = DomainEvent::decode(event.type_name(), event.schema_version(), &payload)
        .unwrap_or_else(|error| panic!("re-encoded {event:?} does not decode: {error}"));
    assert_eq!(&decoded, event);
}
