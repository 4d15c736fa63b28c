//! The payment projection: the set of distinct facts about one payment, and the view derived
//! from it.

use super::anomaly::PaymentAnomaly;
use super::derive::{derive, derive_state};
use super::state::{PaymentAggregate, PaymentState};
use crate::events::{DomainEvent, EventMeta, IngestAnomaly, PaymentEventRecorded};
use crate::ids::{Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// One distinct payment fact, with where the log first recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFact {
    pub fact: PaymentEventRecorded,
    pub position: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

/// Everything known about one payment, folded from its stream.
///
/// The fold keeps a **set** of distinct facts keyed by identity `(msn, reference, name,
/// psp_reference)`; state, aggregate and anomalies are derived from that set, never from the
/// order facts arrived in. So any permutation of the same facts, with any duplicates, gives the
/// same [`PaymentView::state`] and [`PaymentView::aggregate`], and "as of position N" is simply
/// the fold of the events up to N ([`PaymentProjection::fold_until`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentProjection {
    provider_id: ProviderId,
    reference: Reference,
    /// Sorted by identity; one entry per identity.
    facts: Vec<RecordedFact>,
    /// Identities seen twice with different content.
    conflicts: BTreeSet<(PaymentEventName, PspReference)>,
    duplicates: u64,
    /// Anomalies recorded by `webhook_anomaly` for this payment.
    ingest_anomalies: BTreeSet<IngestAnomaly>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    first_seen_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    last_event_at: Option<OffsetDateTime>,
    position: u64,
}

/// The fields of a [`PaymentProjection`], for encodings that store them their own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentParts {
    pub provider_id: ProviderId,
    pub reference: Reference,
    /// One per identity, in identity order (as [`PaymentProjection::facts`]).
    pub facts: Vec<RecordedFact>,
    pub conflicts: BTreeSet<(PaymentEventName, PspReference)>,
    pub duplicates: u64,
    pub ingest_anomalies: BTreeSet<IngestAnomaly>,
    pub first_seen_at: Option<OffsetDateTime>,
    pub last_event_at: Option<OffsetDateTime>,
    pub position: u64,
}

/// Why [`PaymentParts`] are not the parts of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error("a fact belongs to another payment")]
    ForeignFact,
    #[error("facts are not one per identity in identity order")]
    Unordered,
}

/// A payment as the API shows it (SPEC §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub provider_id: ProviderId,
    pub reference: Reference,
    pub msn: Option<Msn>,
    pub state: PaymentState,
    pub currency: Option<Currency>,
    /// The payment's amount (from CREATED, else AUTHORIZED, else the first final fact).
    pub amount: Option<Amount>,
    pub aggregate: PaymentAggregate,
    /// Distinct facts (duplicates not counted), unknown names included.
    pub events: u64,
    /// Deliveries of a fact already recorded.
    pub duplicates: u64,
    pub anomalies: Vec<PaymentAnomaly>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_event_at: Option<OffsetDateTime>,
    /// The position of the last event folded in.
    pub position: u64,
}

impl PaymentProjection {
    /// The projection of a payment nothing is known about yet.
    pub fn new(provider_id: ProviderId, reference: Reference) -> PaymentProjection {
        PaymentProjection {
            provider_id,
            reference,
            facts: Vec::new(),
            conflicts: BTreeSet::new(),
            duplicates: 0,
            ingest_anomalies: BTreeSet::new(),
            first_seen_at: None,
            last_event_at: None,
            position: 0,
        }
    }

    /// Folds every event in.
    pub fn fold<'a>(
        provider_id: ProviderId,
        reference: Reference,
        events: impl IntoIterator<Item = (EventMeta, &'a DomainEvent)>,
    ) -> PaymentProjection {
        let mut projection = PaymentProjection::new(provider_id, reference);
        for (meta, event) in events {
            projection.apply(meta, event);
        }
        projection
    }

    /// The projection as of position `at`: folds only events at positions up to `at`.
    pub fn fold_until<'a>(
        provider_id: ProviderId,
        reference: Reference,
        events: impl IntoIterator<Item = (EventMeta, &'a DomainEvent)>,
        at: u64,
    ) -> PaymentProjection {
        let upto = events.into_iter().filter(|(meta, _)| meta.position <= at);
        PaymentProjection::fold(provider_id, reference, upto)
    }

    /// The projection as of time `at`: folds only events recorded at or before `at`.
    pub fn fold_until_time<'a>(
        provider_id: ProviderId,
        reference: Reference,
        events: impl IntoIterator<Item = (EventMeta, &'a DomainEvent)>,
        at: OffsetDateTime,
    ) -> PaymentProjection {
        let upto = events
            .into_iter()
            .filter(|(meta, _)| meta.recorded_at <= at);
        PaymentProjection::fold(provider_id, reference, upto)
    }

    /// Folds one event in. Events about other payments or providers, and types that say
    /// nothing about a payment, change nothing, so the projection can be fed the global log.
    pub fn apply(&mut self, meta: EventMeta, event: &DomainEvent) {
        match event {
            DomainEvent::PaymentEventRecorded(fact)
                if self.is_mine(&fact.provider_id, &fact.reference) =>
            {
                self.insert_fact(meta, Cow::Borrowed(fact));
            }
            DomainEvent::WebhookDuplicate(duplicate)
                if self.is_mine(&duplicate.provider_id, &duplicate.identity.reference) =>
            {
                self.duplicates = self.duplicates.saturating_add(1);
                if duplicate.conflict.is_some() {
                    self.conflicts.insert((
                        duplicate.identity.name.clone(),
                        duplicate.identity.psp_reference.clone(),
                    ));
                }
            }
            DomainEvent::WebhookAnomaly(anomaly)
                if anomaly.provider_id == self.provider_id
                    && anomaly.reference_raw.as_deref() == Some(self.reference.as_str()) =>
            {
                self.ingest_anomalies.insert(anomaly.anomaly.clone());
            }
            _ => return,
        }
        self.note_event(meta);
    }

    /// As [`PaymentProjection::apply`] of a `payment_event_recorded`, taking the fact by value
    /// so that folding a fact decoded for this purpose copies nothing.
    pub fn apply_fact(&mut self, meta: EventMeta, fact: PaymentEventRecorded) {
        if self.is_mine(&fact.provider_id, &fact.reference) {
            self.insert_fact(meta, Cow::Owned(fact));
            self.note_event(meta);
        }
    }

    fn note_event(&mut self, meta: EventMeta) {
        self.position = self.position.max(meta.position);
        self.first_seen_at = Some(
            self.first_seen_at
                .map_or(meta.recorded_at, |first| first.min(meta.recorded_at)),
        );
        self.last_event_at = Some(
            self.last_event_at
                .map_or(meta.recorded_at, |last| last.max(meta.recorded_at)),
        );
    }

    fn is_mine(&self, provider_id: &ProviderId, reference: &Reference) -> bool {
        provider_id == &self.provider_id && reference == &self.reference
    }

    fn insert_fact(&mut self, meta: EventMeta, fact: Cow<'_, PaymentEventRecorded>) {
        let found = self
            .facts
            .binary_search_by(|existing| compare_identity(&existing.fact, &fact));
        match found {
            Err(index) => self.facts.insert(
                index,
                RecordedFact {
                    fact: fact.into_owned(),
                    position: meta.position,
                    recorded_at: meta.recorded_at,
                },
            ),
            Ok(index) => {
                self.duplicates = self.duplicates.saturating_add(1);
                let Some(kept) = self.facts.get_mut(index) else {
                    return;
                };
                if !kept.fact.says_the_same(&fact) {
                    self.conflicts
                        .insert((fact.name.clone(), fact.psp_reference.clone()));
                }
                // Whatever the arrival order, the same copy is kept: the smallest content.
                if compare_content(&fact, &kept.fact) == Ordering::Less {
                    kept.fact = fact.into_owned();
                }
                kept.position = kept.position.min(meta.position);
                kept.recorded_at = kept.recorded_at.min(meta.recorded_at);
            }
        }
    }

    pub fn provider_id(&self) -> &ProviderId {
        &self.provider_id
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The distinct facts, ordered by identity.
    pub fn facts(&self) -> &[RecordedFact] {
        &self.facts
    }

    /// Identities seen twice with different content.
    pub fn conflicts(&self) -> &BTreeSet<(PaymentEventName, PspReference)> {
        &self.conflicts
    }

    /// Deliveries of a fact already recorded.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Anomalies recorded by `webhook_anomaly` for this payment.
    pub fn ingest_anomalies(&self) -> &BTreeSet<IngestAnomaly> {
        &self.ingest_anomalies
    }

    /// When the log recorded the earliest event folded in.
    pub fn first_seen_at(&self) -> Option<OffsetDateTime> {
        self.first_seen_at
    }

    /// When the log recorded the latest event folded in.
    pub fn last_event_at(&self) -> Option<OffsetDateTime> {
        self.last_event_at
    }

    /// Everything the projection holds, by value: for a compact encoding of it.
    pub fn into_parts(self) -> PaymentParts {
        PaymentParts {
            provider_id: self.provider_id,
            reference: self.reference,
            facts: self.facts,
            conflicts: self.conflicts,
            duplicates: self.duplicates,
            ingest_anomalies: self.ingest_anomalies,
            first_seen_at: self.first_seen_at,
            last_event_at: self.last_event_at,
            position: self.position,
        }
    }

    /// The projection that [`PaymentProjection::into_parts`] gave `parts`, or why `parts`
    /// cannot be one: facts of another payment, or not one per identity in identity order.
    pub fn from_parts(parts: PaymentParts) -> Result<PaymentProjection, PartsError> {
        let foreign = parts.facts.iter().any(|recorded| {
            recorded.fact.provider_id != parts.provider_id
                || recorded.fact.reference != parts.reference
        });
        if foreign {
            return Err(PartsError::ForeignFact);
        }
        let ordered = parts.facts.windows(2).all(
            |pair| matches!(pair, [a, b] if compare_identity(&a.fact, &b.fact) == Ordering::Less),
        );
        if !ordered {
            return Err(PartsError::Unordered);
        }
        Ok(PaymentProjection {
            provider_id: parts.provider_id,
            reference: parts.reference,
            facts: parts.facts,
            conflicts: parts.conflicts,
            duplicates: parts.duplicates,
            ingest_anomalies: parts.ingest_anomalies,
            first_seen_at: parts.first_seen_at,
            last_event_at: parts.last_event_at,
            position: parts.position,
        })
    }

    /// Whether nothing about this payment has been folded in (an API answers 404).
    pub fn is_empty(&self) -> bool {
        self.position == 0
    }

    /// The position of the last event folded in (0 if none).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The state alone, as [`PaymentProjection::view`] derives it, without building the view
    /// (the projections re-index a payment by state after every event).
    pub fn state(&self) -> PaymentState {
        derive_state(&self.facts)
    }

    /// The view, derived from the set of facts.
    pub fn view(&self) -> PaymentView {
        let derived = derive(&self.facts);
        let mut anomalies: BTreeSet<PaymentAnomaly> = derived.anomalies;
        anomalies.extend(self.conflicts.iter().map(|(name, psp_reference)| {
            PaymentAnomaly::ConflictingDuplicate {
                name: name.clone(),
                psp_reference: psp_reference.clone(),
            }
        }));
        anomalies.extend(
            self.ingest_anomalies
                .iter()
                .map(|anomaly| PaymentAnomaly::Ingest {
                    anomaly: anomaly.clone(),
                }),
        );
        PaymentView {
            provider_id: self.provider_id.clone(),
            reference: self.reference.clone(),
            msn: derived.msn,
            state: derived.state,
            currency: derived.currency,
            amount: derived.amount,
            aggregate: derived.aggregate,
            events: u64::try_from(self.facts.len()).unwrap_or(u64::MAX),
            duplicates: self.duplicates,
            anomalies: anomalies.into_iter().collect(),
            first_seen_at: self.first_seen_at,
            last_event_at: self.last_event_at,
            position: self.position,
        }
    }
}

fn compare_identity(a: &PaymentEventRecorded, b: &PaymentEventRecorded) -> Ordering {
    (&a.msn, &a.reference, &a.name, &a.psp_reference).cmp(&(
        &b.msn,
        &b.reference,
        &b.name,
        &b.psp_reference,
    ))
}

type Content<'a> = (
    Amount,
    Currency,
    OffsetDateTime,
    bool,
    &'a Option<String>,
    &'a Option<IngestAnomaly>,
);

impl PaymentEventRecorded {
    /// Whether `other`, a fact of the same identity, says the same: the whole [`content`]
    /// when both came the same way; only money and outcome when one was found by polling,
    /// since the ePayment API may write a time or a null key differently than a webhook body.
    pub fn says_the_same(&self, other: &PaymentEventRecorded) -> bool {
        if self.source == other.source {
            content(self) == content(other)
        } else {
            (self.amount, self.currency, self.success)
                == (other.amount, other.currency, other.success)
        }
    }
}

/// What two deliveries of one identity must agree on (the source may differ: the same fact
/// can come from a webhook and from polling).
fn content(fact: &PaymentEventRecorded) -> Content<'_> {
    (
        fact.amount,
        fact.currency,
        fact.timestamp,
        fact.success,
        &fact.idempotency_key,
        &fact.anomaly,
    )
}

fn compare_content(a: &PaymentEventRecorded, b: &PaymentEventRecorded) -> Ordering {
    content(a)
        .cmp(&content(b))
        .then_with(|| a.source.cmp(&b.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::FactSource;

    fn fact(reference: &str, name: &str, psp: &str, amount: u64) -> PaymentEventRecorded {
        PaymentEventRecorded {
            provider_id: ProviderId::parse("vipps-test").unwrap(),
            msn: Msn::parse("123456").unwrap(),
            reference: Reference::parse(reference).unwrap(),
            psp_reference: PspReference::parse(psp).unwrap(),
            name: PaymentEventName::parse(name),
            amount: Amount::from_minor_units(amount),
            currency: Currency::Nok,
            timestamp: OffsetDateTime::UNIX_EPOCH,
            idempotency_key: None,
            success: true,
            source: FactSource::Webhook,
            anomaly: None,
        }
    }

    fn meta(position: u64) -> EventMeta {
        EventMeta {
            position,
            recorded_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn folded() -> PaymentProjection {
        let facts = [
            fact("order-0001", "CREATED", "p1", 100),
            fact("order-0001", "AUTHORIZED", "p1", 100),
            fact("order-0001", "CREATED", "p1", 99),
            fact("order-0001", "CAPTURED", "p2", 40),
        ];
        let events: Vec<DomainEvent> = facts.into_iter().map(DomainEvent::from).collect();
        PaymentProjection::fold(
            ProviderId::parse("vipps-test").unwrap(),
            Reference::parse("order-0001").unwrap(),
            events
                .iter()
                .enumerate()
                .map(|(i, e)| (meta(i as u64 + 1), e)),
        )
    }

    #[test]
    fn applying_a_fact_by_value_folds_as_applying_it_by_reference() {
        let mut by_value = PaymentProjection::new(
            ProviderId::parse("vipps-test").unwrap(),
            Reference::parse("order-0001").unwrap(),
        );
        for (i, fact) in [
            fact("order-0001", "CREATED", "p1", 100),
            fact("order-0001", "AUTHORIZED", "p1", 100),
            fact("order-0001", "CREATED", "p1", 99),
            fact("order-0001", "CAPTURED", "p2", 40),
            fact("order-0002", "CAPTURED", "p3", 40),
        ]
        .into_iter()
        .enumerate()
        {
            by_value.apply_fact(meta(i as u64 + 1), fact);
        }
        assert_eq!(by_value, folded());
        assert_eq!(by_value.conflicts().len(), 1);
        assert_eq!(by_value.duplicates(), 1);
    }

    /// Every subset of a set of facts that disagree in every way the derivation looks at:
    /// the state alone is the state of the whole view.
    #[test]
    fn the_state_alone_is_the_state_of_the_view() {
        let other_msn = |mut fact: PaymentEventRecorded| {
            fact.msn = Msn::parse("654321").unwrap();
            fact
        };
        let failed = |mut fact: PaymentEventRecorded| {
            fact.success = false;
            fact
        };
        let mut later = fact("order-0001", "CREATED", "p9", 100);
        later.timestamp += time::Duration::seconds(5);
        later.currency = Currency::Dkk;
        // Ties with the CREATED of `p1` on time: the first in identity order is the anchor.
        let mut tied = fact("order-0001", "CREATED", "p0", 100);
        tied.currency = Currency::Eur;
        let mut mismatched = fact("order-0001", "AUTHORIZED", "p8", 100);
        mismatched.anomaly = Some(IngestAnomaly::MsnMismatch {
            expected: Msn::parse("123456").unwrap(),
            got: Msn::parse("654321").unwrap(),
        });
        let candidates = [
            fact("order-0001", "CREATED", "p1", 100),
            other_msn(fact("order-0001", "AUTHORIZED", "p2", 100)),
            failed(fact("order-0001", "CAPTURED", "p3", 100)),
            fact("order-0001", "CANCELLED", "p4", 100),
            fact("order-0001", "ABORTED", "p5", 100),
            fact("order-0001", "EXPIRED", "p6", 100),
            fact("order-0001", "REFUNDED", "p7", 100),
            fact("order-0001", "SOMETHING_NEW", "p0", 100),
            later,
            tied,
            mismatched,
            fact("order-0001", "TERMINATED", "pa", 100),
        ];
        for subset in 0u32..(1 << candidates.len()) {
            let events: Vec<DomainEvent> = candidates
                .iter()
                .enumerate()
                .filter(|(i, _)| subset & (1 << i) != 0)
                .map(|(_, fact)| DomainEvent::from(fact.clone()))
                .collect();
            let projection = PaymentProjection::fold(
                ProviderId::parse("vipps-test").unwrap(),
                Reference::parse("order-0001").unwrap(),
                events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (meta(i as u64 + 1), e)),
            );
            assert_eq!(
                projection.state(),
                projection.view().state,
                "subset {subset:b}"
            );
        }
    }

    #[test]
    fn a_polled_copy_differs_from_a_webhook_copy_only_in_money_or_outcome() {
        let webhook = fact("order-0001", "CAPTURED", "psp-2", 300);
        let polled = PaymentEventRecorded {
            source: FactSource::Poll,
            timestamp: OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(120),
            idempotency_key: Some("k-1".into()),
            ..webhook.clone()
        };
        assert!(webhook.says_the_same(&polled) && polled.says_the_same(&webhook));
        let other_amount = PaymentEventRecorded {
            amount: Amount::from_minor_units(200),
            ..polled.clone()
        };
        assert!(!webhook.says_the_same(&other_amount));
        // Two webhook copies must agree on everything.
        let later = PaymentEventRecorded {
            source: FactSource::Webhook,
            ..polled
        };
        assert!(!webhook.says_the_same(&later));

        let mut projection =
            PaymentProjection::new(webhook.provider_id.clone(), webhook.reference.clone());
        projection.apply_fact(meta(1), webhook);
        projection.apply_fact(meta(2), later);
        assert_eq!(projection.conflicts().len(), 1);
    }

    #[test]
    fn parts_give_back_the_same_projection() {
        let projection = folded();
        let parts = projection.clone().into_parts();
        assert_eq!(PaymentProjection::from_parts(parts), Ok(projection));
    }

    #[test]
    fn parts_with_facts_out_of_order_or_of_another_payment_are_refused() {
        let mut unordered = folded().into_parts();
        unordered.facts.reverse();
        assert_eq!(
            PaymentProjection::from_parts(unordered),
            Err(PartsError::Unordered)
        );
        let mut foreign = folded().into_parts();
        foreign.facts[0].fact.reference = Reference::parse("order-0009").unwrap();
        assert_eq!(
            PaymentProjection::from_parts(foreign),
            Err(PartsError::ForeignFact)
        );
    }
}
