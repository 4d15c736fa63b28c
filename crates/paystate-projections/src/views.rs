//! The in-memory read models and how one envelope changes them.

use paystate_domain::events::{DomainEvent, EventMeta};
use paystate_domain::payment::{PaymentProjection, PaymentState, PaymentView};
use paystate_domain::provider::{Provider, ProviderView};
use paystate_domain::{ProviderId, Reference};
use paystate_store::{Envelope, Position};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A payment's key: the provider it came through and its reference.
pub type PaymentKey = (ProviderId, Reference);

/// One payment in the projections: its fold, plus what the listing index needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEntry {
    pub projection: PaymentProjection,
    /// The position of the first event about this payment: the listing order.
    pub first_position: u64,
    /// The state last derived, kept so the state index can be updated without a re-derive.
    pub state: PaymentState,
}

/// Counts of envelopes the projections could not use. They never stop the projections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Envelopes of a type this version does not know (written by a newer version).
    pub unknown_types: u64,
    /// Envelopes of a known type whose payload could not be decoded.
    pub undecodable: u64,
    /// Provider-stream events before that provider's `provider_created`.
    pub orphaned: u64,
}

/// Every read model, as of [`Projections::applied`].
///
/// Applying the same envelopes in log order always gives an equal value, which is what
/// `replay --verify` compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projections {
    pub(crate) applied: Position,
    pub(crate) providers: BTreeMap<ProviderId, Provider>,
    pub(crate) payments: BTreeMap<PaymentKey, PaymentEntry>,
    /// Listing order: first position -> payment.
    pub(crate) by_first_position: BTreeMap<u64, PaymentKey>,
    /// Listing filter: provider -> first positions.
    pub(crate) by_provider: BTreeMap<ProviderId, BTreeSet<u64>>,
    /// Listing filter: (provider, state) -> first positions.
    pub(crate) by_provider_state: BTreeMap<(ProviderId, PaymentState), BTreeSet<u64>>,
    pub(crate) skipped: Skipped,
    /// Keys changed since the last persist, so a commit writes only what changed.
    pub(crate) dirty: Dirty,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Dirty {
    pub providers: BTreeSet<ProviderId>,
    pub payments: BTreeSet<PaymentKey>,
    pub skipped: bool,
    /// Set while rebuilding from the log, which persists nothing: marking every payment of
    /// the log dirty would only copy every key once more.
    pub paused: bool,
}

impl Dirty {
    /// How many entries a commit would write.
    pub(crate) fn len(&self) -> usize {
        self.providers.len() + self.payments.len() + usize::from(self.skipped)
    }

    fn mark_provider(&mut self, id: &ProviderId) {
        if !self.paused && !self.providers.contains(id) {
            self.providers.insert(id.clone());
        }
    }

    fn mark_payment(&mut self, key: PaymentKey) {
        if !self.paused {
            self.payments.insert(key);
        }
    }
}

/// Dirty tracking is bookkeeping, not state: two projections with the same content are equal
/// whatever they have persisted.
impl PartialEq for Dirty {
    fn eq(&self, _: &Dirty) -> bool {
        true
    }
}
impl Eq for Dirty {}

/// A page of payment views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPage {
    pub payments: Vec<PaymentView>,
    /// The cursor for the next page (`after`), if there may be more.
    pub next: Option<u64>,
}

impl Projections {
    /// Marks every view as changed, so the next commit writes all of them: for projections
    /// built by [`crate::rebuild`], which tracks no changes, that replace the persisted state.
    pub fn mark_all_changed(&mut self) {
        self.dirty = Dirty {
            providers: self.providers.keys().cloned().collect(),
            payments: self.payments.keys().cloned().collect(),
            skipped: true,
            paused: false,
        };
    }

    /// The position up to which every envelope has been applied.
    pub fn applied(&self) -> Position {
        self.applied
    }

    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Provider> {
        self.providers.get(id)
    }

    pub fn provider_view(&self, id: &ProviderId) -> Option<ProviderView> {
        self.providers.get(id).map(Provider::view)
    }

    /// Every provider, ordered by id.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    pub fn payment(
        &self,
        provider: &ProviderId,
        reference: &Reference,
    ) -> Option<&PaymentProjection> {
        self.payments
            .get(&(provider.clone(), reference.clone()))
            .map(|entry| &entry.projection)
    }

    pub fn payment_view(
        &self,
        provider: &ProviderId,
        reference: &Reference,
    ) -> Option<PaymentView> {
        self.payment(provider, reference)
            .map(PaymentProjection::view)
    }

    pub fn payment_count(&self) -> usize {
        self.payments.len()
    }

    /// Payments in the order they were first seen, after cursor `after`, optionally only one
    /// provider's and only in one state. At most `limit` (at least 1).
    pub fn list_payments(
        &self,
        provider: Option<&ProviderId>,
        state: Option<PaymentState>,
        after: u64,
        limit: usize,
    ) -> PaymentPage {
        let limit = limit.max(1);
        let start = std::ops::Bound::Excluded(after);
        let keys: Box<dyn Iterator<Item = (u64, &PaymentKey)>> = match (provider, state) {
            (Some(provider), Some(state)) => Box::new(self.listed(
                self.by_provider_state.get(&(provider.clone(), state)),
                after,
            )),
            (Some(provider), None) => Box::new(self.listed(self.by_provider.get(provider), after)),
            (None, state) => Box::new(
                self.by_first_position
                    .range((start, std::ops::Bound::Unbounded))
                    .map(|(position, key)| (*position, key))
                    .filter(move |(_, key)| {
                        state.is_none_or(|s| {
                            self.payments
                                .get(*key)
                                .is_some_and(|entry| entry.state == s)
                        })
                    }),
            ),
        };
        let mut payments = Vec::new();
        let mut last = None;
        for (position, key) in keys.take(limit) {
            if let Some(entry) = self.payments.get(key) {
                payments.push(entry.projection.view());
                last = Some(position);
            }
        }
        let next = if payments.len() == limit { last } else { None };
        PaymentPage { payments, next }
    }

    /// The payments at `positions` (first positions) after `after`, in order.
    fn listed<'a>(
        &'a self,
        positions: Option<&'a BTreeSet<u64>>,
        after: u64,
    ) -> impl Iterator<Item = (u64, &'a PaymentKey)> + 'a {
        positions
            .into_iter()
            .flat_map(move |positions| {
                positions.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            })
            .filter_map(|position| {
                self.by_first_position
                    .get(position)
                    .map(|key| (*position, key))
            })
    }

    /// Applies one envelope. Envelopes at or before [`Projections::applied`] are ignored, so
    /// re-delivery after a restart is harmless.
    pub fn apply(&mut self, envelope: &Envelope) {
        if envelope.position <= self.applied {
            return;
        }
        self.applied = envelope.position;
        let event = match DomainEvent::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        ) {
            Ok(event) => event,
            Err(paystate_domain::events::DecodeError::UnknownType { .. }) => {
                self.skipped.unknown_types += 1;
                self.dirty.skipped = true;
                return;
            }
            Err(error) => {
                tracing::warn!(position = envelope.position.0, %error, "undecodable event skipped by the projections");
                self.skipped.undecodable += 1;
                self.dirty.skipped = true;
                return;
            }
        };
        let meta = EventMeta {
            position: envelope.position.0,
            recorded_at: envelope.recorded_at,
        };
        self.apply_to_provider(envelope.stream.as_str(), meta, &event);
        self.apply_to_payment(meta, &event);
    }

    fn apply_to_provider(&mut self, stream: &str, meta: EventMeta, event: &DomainEvent) {
        if stream.starts_with("provider-") {
            if let DomainEvent::ProviderCreated(created) = event {
                let id = created.provider_id.clone();
                if !self.providers.contains_key(&id) {
                    self.dirty.mark_provider(&id);
                    self.providers.insert(id, Provider::created(meta, created));
                }
                return;
            }
            let owner = stream
                .strip_prefix("provider-")
                .and_then(|id| ProviderId::parse(id).ok())
                .filter(|id| self.providers.contains_key(id));
            match owner {
                Some(id) => self.apply_provider_event(&id, meta, event),
                None => {
                    self.skipped.orphaned += 1;
                    self.dirty.skipped = true;
                }
            }
            return;
        }
        // Deliveries recorded in payment and unmatched streams count on their provider.
        let provider = match event {
            DomainEvent::WebhookReceived(e) => Some(&e.provider_id),
            DomainEvent::WebhookDuplicate(e) => Some(&e.provider_id),
            DomainEvent::WebhookRejected(e) => Some(&e.provider_id),
            DomainEvent::WebhookRejectionsSuppressed(e) => Some(&e.provider_id),
            _ => None,
        };
        if let Some(id) = provider.cloned() {
            self.apply_provider_event(&id, meta, event);
        }
    }

    fn apply_provider_event(&mut self, id: &ProviderId, meta: EventMeta, event: &DomainEvent) {
        if let Some(provider) = self.providers.get_mut(id) {
            provider.apply(meta, event);
            self.dirty.mark_provider(id);
        }
    }

    fn apply_to_payment(&mut self, meta: EventMeta, event: &DomainEvent) {
        let key = match event {
            DomainEvent::PaymentEventRecorded(fact) => {
                (fact.provider_id.clone(), fact.reference.clone())
            }
            DomainEvent::WebhookDuplicate(duplicate) => (
                duplicate.provider_id.clone(),
                duplicate.identity.reference.clone(),
            ),
            DomainEvent::WebhookAnomaly(anomaly) => {
                let Some(reference) = anomaly
                    .reference_raw
                    .as_deref()
                    .and_then(|raw| Reference::parse(raw).ok())
                else {
                    return;
                };
                (anomaly.provider_id.clone(), reference)
            }
            _ => return,
        };
        // Looked up before inserting so that an event about a known payment copies no key.
        if !self.payments.contains_key(&key) {
            self.payments.insert(
                key.clone(),
                PaymentEntry {
                    projection: PaymentProjection::new(key.0.clone(), key.1.clone()),
                    first_position: meta.position,
                    state: PaymentState::Created,
                },
            );
        }
        let Some(entry) = self.payments.get_mut(&key) else {
            return;
        };
        let was_new = entry.projection.is_empty();
        let old_state = entry.state;
        entry.projection.apply(meta, event);
        if entry.projection.is_empty() {
            // The event turned out to say nothing about this payment: keep no empty entry.
            self.payments.remove(&key);
            return;
        }
        entry.state = entry.projection.state();
        let (first_position, new_state) = (entry.first_position, entry.state);
        if was_new {
            self.by_first_position.insert(first_position, key.clone());
            self.by_provider
                .entry(key.0.clone())
                .or_default()
                .insert(first_position);
        } else if old_state != new_state {
            if let Some(set) = self.by_provider_state.get_mut(&(key.0.clone(), old_state)) {
                set.remove(&first_position);
            }
        }
        if was_new || old_state != new_state {
            self.by_provider_state
                .entry((key.0.clone(), new_state))
                .or_default()
                .insert(first_position);
        }
        self.dirty.mark_payment(key);
    }

    /// Rebuilds the listing indexes from the payments (after loading persisted state).
    pub(crate) fn reindex(&mut self) {
        self.by_first_position.clear();
        self.by_provider.clear();
        self.by_provider_state.clear();
        for (key, entry) in &self.payments {
            self.by_first_position
                .insert(entry.first_position, key.clone());
            self.by_provider
                .entry(key.0.clone())
                .or_default()
                .insert(entry.first_position);
            self.by_provider_state
                .entry((key.0.clone(), entry.state))
                .or_default()
                .insert(entry.first_position);
        }
    }

    /// What differs between two projections, in words (empty when equal): for
    /// `replay --verify`.
    pub fn differences(&self, other: &Projections) -> Vec<String> {
        let mut found = Vec::new();
        if self.applied != other.applied {
            found.push(format!(
                "applied position {} vs {}",
                self.applied, other.applied
            ));
        }
        let provider_ids: BTreeSet<&ProviderId> = self
            .providers
            .keys()
            .chain(other.providers.keys())
            .collect();
        for id in provider_ids {
            match (self.providers.get(id), other.providers.get(id)) {
                (Some(a), Some(b)) if a != b => found.push(format!("provider {id} differs")),
                (Some(_), None) => found.push(format!("provider {id} only in the first")),
                (None, Some(_)) => found.push(format!("provider {id} only in the second")),
                _ => {}
            }
        }
        let payment_keys: BTreeSet<&PaymentKey> =
            self.payments.keys().chain(other.payments.keys()).collect();
        for key in payment_keys {
            let (provider, reference) = key;
            match (self.payments.get(key), other.payments.get(key)) {
                (Some(a), Some(b)) if a != b => {
                    found.push(format!("payment {provider}/{reference} differs"))
                }
                (Some(_), None) => {
                    found.push(format!("payment {provider}/{reference} only in the first"))
                }
                (None, Some(_)) => {
                    found.push(format!("payment {provider}/{reference} only in the second"))
                }
                _ => {}
            }
        }
        if self.skipped != other.skipped {
            found.push(format!(
                "skipped counts {:?} vs {:?}",
                self.skipped, other.skipped
            ));
        }
        found
    }
}
