//! Appending what a poll found. Each event becomes a `payment_event_recorded` fact with source
//! `poll`, under the same dedupe key as a webhook of that identity: a fact already known (from
//! a webhook or an earlier poll) is not recorded again, and a webhook arriving after the poll
//! that found its fact is recorded as a duplicate delivery.

use crate::error::ApiError;
use crate::ingestion::record::{append, flag_anomaly, new_event, AppendMetrics};
use paystate_domain::events::{DomainEvent, FactSource};
use paystate_domain::provider::Provider;
use paystate_domain::streams;
use paystate_store::{AppendOutcome, EventStore, Position};
use paystate_vipps::payload::EpaymentEvent;
use uuid::Uuid;

/// What became of one polled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolledFact {
    /// Not known before: recorded now, at this position.
    Recorded { position: Position },
    /// Already recorded, from a webhook or an earlier poll.
    Known,
    /// Not a usable fact (a field missing or out of range); nothing is recorded, since a poll
    /// answer is not a delivery that Vipps would otherwise lose.
    Unreadable { error: String },
}

/// Records `event`, read from the ePayment API for `provider`, unless its fact is known.
pub async fn record_polled(
    store: &dyn EventStore,
    metrics: &AppendMetrics,
    provider: &Provider,
    event: &EpaymentEvent,
    correlation: Uuid,
) -> Result<PolledFact, ApiError> {
    let mut fact = match event.to_recorded(&provider.id, FactSource::Poll) {
        Ok(fact) => fact,
        Err(error) => {
            return Ok(PolledFact::Unreadable {
                error: error.to_string(),
            })
        }
    };
    flag_anomaly(&mut fact, &provider.msn);
    let stream = streams::payment_stream(&provider.id, &fact.reference);
    let identity = fact.identity();
    let key = streams::payment_dedupe_key(
        &provider.id,
        &identity.msn,
        &identity.reference,
        &identity.name,
        &identity.psp_reference,
    );
    let fact = new_event(&DomainEvent::from(fact), correlation).with_dedupe_key(key);
    Ok(match append(store, metrics, &stream, vec![fact]).await? {
        AppendOutcome::Appended { last, .. } => PolledFact::Recorded { position: last },
        AppendOutcome::Duplicate { .. } => PolledFact::Known,
    })
}
