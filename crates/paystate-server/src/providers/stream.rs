//! The provider stream (`provider-{id}`): folding it into a [`Provider`] and appending decided
//! events with optimistic concurrency, retried when another writer got there first.
//!
//! Both the admin routes and the registration reactor write through [`append_decided`], so a
//! decision is always taken on the stream version it is appended at.

use paystate_domain::events::{DecodeError, DomainEvent, EventMeta};
use paystate_domain::provider::{FoldError, Provider};
use paystate_domain::{streams, ProviderId};
use paystate_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, StoreError, StreamId,
    StreamVersion,
};

/// How many times a decision is retaken after losing a race before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Events read per page when folding a stream.
const PAGE: usize = 512;
/// Provider-stream events that only move delivery counters, which no decision reads (the
/// provider view's counters come from the projections). A forgery flood leaves many of them,
/// so folding for a decision skips them.
const COUNTED_ONLY: &[&str] = &["webhook_rejected", "webhook_rejections_suppressed"];

/// Why the provider stream could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded: the log holds something this version cannot read.
    #[error("provider stream {stream}: position {position}: {source}")]
    Decode {
        stream: String,
        position: u64,
        #[source]
        source: DecodeError,
    },
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// Other writers kept changing the stream while this one tried to append.
    #[error("provider stream {stream}: gave up after {attempts} concurrent changes")]
    Contention { stream: String, attempts: usize },
}

/// A provider folded from its stream, with the stream version the fold ends at.
#[derive(Debug, Clone)]
pub struct LoadedProvider {
    pub provider: Provider,
    pub version: StreamVersion,
}

/// The stream id of a provider.
pub fn stream_of(id: &ProviderId) -> StreamId {
    StreamId::new(streams::provider_stream(id))
}

/// Folds `id`'s stream for a decision; `None` if the provider does not exist. Events of types
/// this version does not know (written by a newer paystate) are skipped, and so are rejected
/// deliveries: the folded provider's delivery counters are not maintained here.
pub fn load(
    store: &dyn EventStore,
    id: &ProviderId,
) -> Result<Option<LoadedProvider>, StreamError> {
    let stream = stream_of(id);
    let mut decoded: Vec<(EventMeta, DomainEvent)> = Vec::new();
    let mut version = StreamVersion(0);
    loop {
        let page = store.read_stream(&stream, version, PAGE)?;
        let Some(last) = page.last() else { break };
        version = last.stream_version;
        for envelope in &page {
            if COUNTED_ONLY.contains(&envelope.event_type.as_str()) {
                continue;
            }
            match DomainEvent::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.payload,
            ) {
                Ok(event) => decoded.push((
                    EventMeta {
                        position: envelope.position.0,
                        recorded_at: envelope.recorded_at,
                    },
                    event,
                )),
                Err(DecodeError::UnknownType { .. }) => {}
                Err(source) => {
                    return Err(StreamError::Decode {
                        stream: stream.to_string(),
                        position: envelope.position.0,
                        source,
                    })
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    let provider = Provider::replay(decoded.iter().map(|(meta, event)| (*meta, event)))?;
    Ok(provider.map(|provider| LoadedProvider { provider, version }))
}

/// What [`append_decided`] did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The provider after the append (or as it was, when nothing was decided).
    pub provider: Option<Provider>,
    /// The position of the last appended event, or `None` if there was nothing to append.
    pub last_position: Option<Position>,
}

/// Folds the stream, asks `decide` for the events to append given the current provider (`None`
/// if it does not exist), and appends them at exactly the folded version. When another writer
/// appended in between, it folds and decides again. `decide` returning no events appends
/// nothing.
pub async fn append_decided<E, F>(
    store: &dyn EventStore,
    id: &ProviderId,
    mut decide: F,
) -> Result<Appended, E>
where
    E: From<StreamError>,
    F: FnMut(Option<&Provider>) -> Result<Vec<DomainEvent>, E>,
{
    let stream = stream_of(id);
    for _ in 0..MAX_ATTEMPTS {
        let loaded = load(store, id)?;
        let events = decide(loaded.as_ref().map(|loaded| &loaded.provider))?;
        if events.is_empty() {
            return Ok(Appended {
                provider: loaded.map(|loaded| loaded.provider),
                last_position: None,
            });
        }
        let expected = match &loaded {
            Some(loaded) => ExpectedVersion::Exact(loaded.version),
            None => ExpectedVersion::NoStream,
        };
        let batch = events
            .iter()
            .map(|event| {
                NewEvent::new(
                    event.type_name(),
                    event.schema_version(),
                    event.to_payload(),
                )
            })
            .collect();
        match store.append(&stream, expected, batch).await {
            Ok(AppendOutcome::Appended { last, .. }) => {
                let provider = load(store, id)?.map(|loaded| loaded.provider);
                return Ok(Appended {
                    provider,
                    last_position: Some(last),
                });
            }
            // Provider events carry no dedupe key, so this cannot happen; treat it as a lost
            // race and decide again on a fresh fold.
            Ok(AppendOutcome::Duplicate { .. }) => continue,
            Err(StoreError::Conflict { .. }) => continue,
            Err(error) => return Err(StreamError::Store(error).into()),
        }
    }
    Err(StreamError::Contention {
        stream: stream.to_string(),
        attempts: MAX_ATTEMPTS,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_domain::events::{ProviderCreated, ProviderEnabled};
    use paystate_domain::provider::ProviderState;
    use paystate_domain::{Environment, Fingerprint, HttpUrl, Msn, ProviderKind, WebhookEventType};
    use paystate_store::MemoryStore;

    fn created(id: &ProviderId) -> DomainEvent {
        ProviderCreated {
            provider_id: id.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: Msn::parse("123456").unwrap(),
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("abcd").unwrap(),
            public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
        }
        .into()
    }

    #[tokio::test]
    async fn creates_then_folds_what_it_appended() {
        let store = MemoryStore::new();
        let id = ProviderId::parse("vipps-test").unwrap();
        assert!(load(&store, &id).unwrap().is_none());
        let appended = append_decided::<StreamError, _>(&store, &id, |existing| {
            assert!(existing.is_none());
            Ok(vec![created(&id)])
        })
        .await
        .unwrap();
        assert_eq!(appended.last_position, Some(Position(1)));
        let provider = appended.provider.unwrap();
        assert_eq!(provider.state, ProviderState::Disabled);
        let loaded = load(&store, &id).unwrap().unwrap();
        assert_eq!(loaded.version, StreamVersion(1));
    }

    #[tokio::test]
    async fn a_lost_race_is_decided_again_on_the_new_stream() {
        let store = MemoryStore::new();
        let id = ProviderId::parse("vipps-test").unwrap();
        append_decided::<StreamError, _>(&store, &id, |_| Ok(vec![created(&id)]))
            .await
            .unwrap();
        let mut seen_versions = Vec::new();
        let appended = append_decided::<StreamError, _>(&store, &id, |existing| {
            let provider = existing.unwrap();
            seen_versions.push(provider.position);
            if seen_versions.len() == 1 {
                // Another writer appends between this fold and its append.
                let other = futures::executor::block_on(store.append(
                    &stream_of(&id),
                    ExpectedVersion::Any,
                    vec![NewEvent::new(
                        "provider_enabled",
                        1,
                        DomainEvent::from(ProviderEnabled {}).to_payload(),
                    )],
                ));
                assert!(other.is_ok());
            }
            Ok(vec![ProviderEnabled {}.into()])
        })
        .await
        .unwrap();
        assert_eq!(seen_versions, vec![1, 2]);
        assert_eq!(appended.last_position, Some(Position(3)));
    }

    #[tokio::test]
    async fn nothing_decided_appends_nothing() {
        let store = MemoryStore::new();
        let id = ProviderId::parse("vipps-test").unwrap();
        let appended = append_decided::<StreamError, _>(&store, &id, |_| Ok(Vec::new()))
            .await
            .unwrap();
        assert!(appended.provider.is_none());
        assert_eq!(appended.last_position, None);
        assert_eq!(store.head().unwrap(), Position(0));
    }

    #[tokio::test]
    async fn rejected_deliveries_count_in_the_version_but_are_not_decoded() {
        let store = MemoryStore::new();
        let id = ProviderId::parse("vipps-test").unwrap();
        append_decided::<StreamError, _>(&store, &id, |_| Ok(vec![created(&id)]))
            .await
            .unwrap();
        // A rejection record as ingestion writes it, and one this code could not even decode:
        // neither stops a decision.
        let rejected = serde_json::json!({"not": "read"}).to_string().into_bytes();
        for _ in 0..3 {
            store
                .append(
                    &stream_of(&id),
                    ExpectedVersion::Any,
                    vec![NewEvent::new("webhook_rejected", 1, rejected.clone())],
                )
                .await
                .unwrap();
        }
        let loaded = load(&store, &id).unwrap().unwrap();
        assert_eq!(loaded.version, StreamVersion(4));
        let appended = append_decided::<StreamError, _>(&store, &id, |provider| {
            assert_eq!(provider.unwrap().state, ProviderState::Disabled);
            Ok(vec![ProviderEnabled {}.into()])
        })
        .await
        .unwrap();
        assert_eq!(appended.last_position, Some(Position(5)));
        assert_eq!(appended.provider.unwrap().state, ProviderState::Enabled);
    }
}
