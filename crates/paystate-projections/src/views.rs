//! The in-memory read models and how one envelope changes them.

use crate::decode::{self, Batch, BatchEnvelope, Event, FactFields, Receipt};
use crate::payments::{Body, PaymentTable, Slot};
use paystate_domain::events::{
    DecodeError, DomainEvent, EventMeta, PaymentEventRecorded, StoredEvent,
};
use paystate_domain::payment::{PaymentProjection, PaymentState, PaymentView};
use paystate_domain::provider::{Provider, ProviderView};
use paystate_domain::{Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference};
use paystate_store::{Envelope, EnvelopeRef, Position};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// A payment's key: the provider it came through and its reference.
pub type PaymentKey = (ProviderId, Reference);

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
///
/// Folding is idempotent per entry: a provider or payment passes over an event at or below the
/// last position folded into it. Live, events always come after; after a crash, stored entries
/// may already hold events past the stored checkpoint (see [`crate::persist`]), and catching
/// up from the checkpoint must not count them twice.
#[derive(Debug, Clone, Default)]
pub struct Projections {
    pub(crate) applied: Position,
    pub(crate) providers: BTreeMap<ProviderId, Provider>,
    pub(crate) payments: PaymentTable,
    pub(crate) skipped: Skipped,
    /// What changed since the last persist, so a commit writes only that.
    pub(crate) dirty: Dirty,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Dirty {
    pub providers: BTreeSet<ProviderId>,
    /// Payment slots.
    pub payments: BTreeSet<u32>,
    pub skipped: bool,
    /// Set while rebuilding from the log, which persists nothing: marking every payment of
    /// the log dirty would only fill a set nobody reads.
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

    fn mark_payment(&mut self, slot: u32) {
        if !self.paused {
            self.payments.insert(slot);
        }
    }
}

/// Two projections are equal when they hold the same content, whatever each has persisted
/// and whichever payments each keeps decoded.
impl PartialEq for Projections {
    fn eq(&self, other: &Projections) -> bool {
        self.applied == other.applied
            && self.providers == other.providers
            && self.skipped == other.skipped
            && self.payments.len() == other.payments.len()
            && (0..self.payments.len()).all(|index| {
                let number = u32::try_from(index).unwrap_or(u32::MAX);
                self.same_payment(number, other, other.find_slot_of(self, number))
            })
    }
}
impl Eq for Projections {}

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
    ///
    /// Every payment is put in its stored form now, one at a time, which is what that commit
    /// writes: the commit then copies a few hundred bytes per payment, not a decoded copy of
    /// each beside its encoding (which doubled the memory of a rebuild being persisted).
    pub fn mark_all_changed(&mut self) {
        self.payments.compact_all();
        let slots = u32::try_from(self.payments.len()).unwrap_or(u32::MAX);
        self.dirty = Dirty {
            providers: self.providers.keys().cloned().collect(),
            payments: (0..slots).collect(),
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

    fn slot_of(&self, provider: &ProviderId, reference: &str) -> Option<u32> {
        let number = self.payments.provider_number(provider.as_str())?;
        self.payments.find(number, reference)
    }

    /// In `self`, the slot of the payment at slot `number` of `other`.
    fn find_slot_of(&self, other: &Projections, number: u32) -> Option<u32> {
        let slot = other.payments.slot(number)?;
        let provider = other.payments.provider_id(slot.provider)?;
        self.slot_of(provider, PaymentTable::reference(slot))
    }

    /// Whether slot `number` of `self` and slot `theirs` of `other` hold the same payment.
    fn same_payment(&self, number: u32, other: &Projections, theirs: Option<u32>) -> bool {
        let (Some(mine), Some(theirs)) = (self.payments.slot(number), theirs) else {
            return false;
        };
        let Some(their_slot) = other.payments.slot(theirs) else {
            return false;
        };
        mine.first_position == their_slot.first_position
            && mine.state == their_slot.state
            && self.payments.projection(number) == other.payments.projection(theirs)
    }

    /// A payment's fold: borrowed when it is held decoded, decoded from its compact form
    /// otherwise.
    pub fn payment(
        &self,
        provider: &ProviderId,
        reference: &Reference,
    ) -> Option<Cow<'_, PaymentProjection>> {
        let number = self.slot_of(provider, reference.as_str())?;
        self.payments.projection(number)
    }

    pub fn payment_view(
        &self,
        provider: &ProviderId,
        reference: &Reference,
    ) -> Option<PaymentView> {
        self.payment(provider, reference)
            .map(|projection| projection.view())
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
        let table = &self.payments;
        let from = table.first_after(after);
        let slots: Box<dyn Iterator<Item = u32>> = match (provider, state) {
            (Some(provider), state) => match table.provider_number(provider.as_str()) {
                None => Box::new(std::iter::empty()),
                Some(number) => match state {
                    Some(state) => Box::new(table.of_provider_in_state(number, state, from)),
                    None => Box::new(table.of_provider(number, after).iter().copied()),
                },
            },
            (None, state) => Box::new(
                (from..u32::try_from(table.len()).unwrap_or(u32::MAX)).filter(move |&number| {
                    state.is_none_or(|s| table.slot(number).is_some_and(|slot| slot.state == s))
                }),
            ),
        };
        let mut payments = Vec::new();
        let mut last = None;
        for number in slots.take(limit) {
            if let (Some(slot), Some(projection)) = (table.slot(number), table.projection(number)) {
                payments.push(projection.view());
                last = Some(slot.first_position);
            }
        }
        let next = if payments.len() == limit { last } else { None };
        PaymentPage { payments, next }
    }

    /// Applies one envelope. Envelopes at or before [`Projections::applied`] are ignored, so
    /// re-delivery after a restart is harmless.
    pub fn apply(&mut self, envelope: &Envelope) {
        self.apply_borrowed(&envelope.as_borrowed());
    }

    /// As [`Projections::apply`], for an envelope borrowed from the store
    /// ([`paystate_store::EventStore::scan_all`]).
    pub fn apply_borrowed(&mut self, envelope: &EnvelopeRef<'_>) {
        if envelope.position > self.applied {
            let mut batch = Batch::with_capacity(1);
            batch.push(envelope);
            for envelope in batch.envelopes() {
                self.apply_envelope(envelope);
            }
        }
    }

    /// Applies one envelope of a [`Batch`].
    pub(crate) fn apply_envelope(&mut self, envelope: BatchEnvelope<'_>) {
        if envelope.position <= self.applied {
            return;
        }
        self.applied = envelope.position;
        let meta = EventMeta {
            position: envelope.position.0,
            recorded_at: envelope.recorded_at,
        };
        let (event_type, schema_version, payload) = match envelope.event {
            Event::Receipt(receipt) => {
                return self.apply_receipt(envelope.provider_stream, meta, receipt);
            }
            Event::Undecodable(error) => return self.undecodable(meta, error),
            Event::Stored {
                event_type,
                schema_version,
                payload,
            } => (event_type, schema_version, payload),
        };
        // The common case, a payment fact in a payment stream, borrows its text.
        if envelope.provider_stream.is_none() {
            if let Some(fields) = decode::fact_fields(event_type, schema_version, payload) {
                match fields.and_then(|fields| self.fact(fields)) {
                    Ok((fact, provider, found)) => {
                        let found =
                            found.ok_or_else(|| (fact.provider_id.clone(), fact.reference.clone()));
                        let event = DomainEvent::PaymentEventRecorded(fact);
                        self.fold_payment(meta, provider, found, event);
                    }
                    Err(error) => self.undecodable(meta, &error),
                }
                return;
            }
        }
        match decode::full(event_type, schema_version, payload) {
            Ok(event) => {
                self.apply_to_provider(envelope.provider_stream, meta, &event);
                self.apply_to_payment(meta, event);
            }
            Err(DecodeError::UnknownType { .. }) => {
                self.skipped.unknown_types += 1;
                self.dirty.skipped = true;
            }
            Err(error) => self.undecodable(meta, &error),
        }
    }

    fn undecodable(&mut self, meta: EventMeta, error: &DecodeError) {
        tracing::warn!(position = meta.position, %error, "undecodable event skipped by the projections");
        self.skipped.undecodable += 1;
        self.dirty.skipped = true;
    }

    /// A payment fact from its borrowed fields, each checked by its type's rule, with its
    /// provider's number and its payment's slot if known. The provider id and the reference
    /// of a known payment are copied from the projections, not parsed.
    fn fact(
        &mut self,
        fields: FactFields<'_>,
    ) -> Result<(PaymentEventRecorded, u32, Option<u32>), DecodeError> {
        let malformed = |error: paystate_domain::IdError| DecodeError::Malformed {
            type_name: PaymentEventRecorded::TYPE_NAME,
            schema_version: PaymentEventRecorded::SCHEMA_VERSION,
            message: error.to_string(),
        };
        let provider = self
            .payments
            .intern_text(&fields.provider_id)
            .map_err(malformed)?;
        let msn = Msn::parse(&fields.msn).map_err(malformed)?;
        let psp_reference = PspReference::parse(&fields.psp_reference).map_err(malformed)?;
        let currency = Currency::parse(&fields.currency).map_err(malformed)?;
        let found = self.payments.find(provider, &fields.reference);
        let known = found.and_then(|number| self.payments.reference_of(number));
        let reference = match known {
            Some(reference) => reference,
            None => Reference::parse(&fields.reference).map_err(malformed)?,
        };
        let provider_id = match self.payments.provider_id(provider) {
            Some(id) => id.clone(),
            None => ProviderId::parse(&fields.provider_id).map_err(malformed)?,
        };
        let fact = PaymentEventRecorded {
            provider_id,
            msn,
            reference,
            psp_reference,
            name: PaymentEventName::parse(&fields.name),
            amount: fields.amount,
            currency,
            timestamp: fields.timestamp,
            idempotency_key: fields.idempotency_key.map(Cow::into_owned),
            success: fields.success,
            source: fields.source,
            anomaly: fields.anomaly,
        };
        Ok((fact, provider, found))
    }

    /// A receipt counts on its provider; in a provider's own stream it is folded as any
    /// other event of that stream.
    fn apply_receipt(&mut self, provider_stream: Option<&str>, meta: EventMeta, receipt: &Receipt) {
        let provider = match self.payments.intern_text(receipt.provider_id()) {
            Ok(provider) => provider,
            Err(error) => {
                let error = DecodeError::Malformed {
                    type_name: paystate_domain::events::WebhookReceived::TYPE_NAME,
                    schema_version: paystate_domain::events::WebhookReceived::SCHEMA_VERSION,
                    message: error.to_string(),
                };
                return self.undecodable(meta, &error);
            }
        };
        if let Some(owner) = provider_stream {
            match self.stream_owner(owner) {
                Some(id) if id.as_str() == receipt.provider_id() => {}
                Some(_) => return,
                None => return self.orphaned(),
            }
        }
        let Some(id) = self.payments.provider_id(provider) else {
            return;
        };
        if let Some(counted) = self.providers.get_mut(id) {
            if counted.position < meta.position {
                counted.count_receipt(meta, receipt.received_at);
                self.dirty.mark_provider(id);
            }
        }
    }

    fn stream_owner(&self, owner: &str) -> Option<ProviderId> {
        ProviderId::parse(owner)
            .ok()
            .filter(|id| self.providers.contains_key(id))
    }

    fn orphaned(&mut self) {
        self.skipped.orphaned += 1;
        self.dirty.skipped = true;
    }

    fn apply_to_provider(
        &mut self,
        provider_stream: Option<&str>,
        meta: EventMeta,
        event: &DomainEvent,
    ) {
        if let Some(owner) = provider_stream {
            if let DomainEvent::ProviderCreated(created) = event {
                let id = created.provider_id.clone();
                if !self.providers.contains_key(&id) {
                    self.dirty.mark_provider(&id);
                    self.providers.insert(id, Provider::created(meta, created));
                }
                return;
            }
            match self.stream_owner(owner) {
                Some(id) => self.apply_provider_event(&id, meta, event),
                None => self.orphaned(),
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
            if provider.position < meta.position {
                provider.apply(meta, event);
                self.dirty.mark_provider(id);
            }
        }
    }

    fn apply_to_payment(&mut self, meta: EventMeta, event: DomainEvent) {
        let (provider_id, reference) = match &event {
            DomainEvent::PaymentEventRecorded(fact) => {
                (&fact.provider_id, Cow::Borrowed(&fact.reference))
            }
            DomainEvent::WebhookDuplicate(duplicate) => (
                &duplicate.provider_id,
                Cow::Borrowed(&duplicate.identity.reference),
            ),
            DomainEvent::WebhookAnomaly(anomaly) => {
                let Some(reference) = anomaly
                    .reference_raw
                    .as_deref()
                    .and_then(|raw| Reference::parse(raw).ok())
                else {
                    return;
                };
                (&anomaly.provider_id, Cow::Owned(reference))
            }
            _ => return,
        };
        let provider = self.payments.intern(provider_id);
        let found = self
            .payments
            .find(provider, reference.as_str())
            .ok_or_else(|| (provider_id.clone(), reference.into_owned()));
        self.fold_payment(meta, provider, found, event);
    }

    /// Folds `event` into the payment at slot `found`, or else into a new payment of the key
    /// given.
    fn fold_payment(
        &mut self,
        meta: EventMeta,
        provider: u32,
        found: Result<u32, PaymentKey>,
        event: DomainEvent,
    ) {
        let number = match found {
            Ok(number) => number,
            Err((provider_id, reference)) => {
                let mut projection = PaymentProjection::new(provider_id, reference);
                fold(&mut projection, meta, event);
                // An event that turns out to say nothing about the payment makes no entry.
                if !projection.is_empty() {
                    let number = self.payments.push(Slot {
                        provider,
                        first_position: meta.position,
                        state: projection.state(),
                        body: Body::Decoded(Box::new(projection)),
                    });
                    self.dirty.mark_payment(number);
                }
                return;
            }
        };
        let Some(slot) = self.payments.decoded_mut(number) else {
            return;
        };
        let Body::Decoded(projection) = &mut slot.body else {
            return;
        };
        if projection.position() >= meta.position {
            return;
        }
        fold(projection, meta, event);
        let (old, new) = (slot.state, projection.state());
        if old != new {
            self.payments.restate(number, old, new);
        }
        self.dirty.mark_payment(number);
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
        let mut payments: BTreeMap<(String, String), &str> = BTreeMap::new();
        for (first, second, alone) in [
            (self, other, "only in the first"),
            (other, self, "only in the second"),
        ] {
            for (index, slot) in first.payments.slots().iter().enumerate() {
                let number = u32::try_from(index).unwrap_or(u32::MAX);
                let theirs = second.find_slot_of(first, number);
                let verdict = match theirs {
                    None => alone,
                    Some(_) if first.same_payment(number, second, theirs) => continue,
                    Some(_) => "differs",
                };
                let provider = first
                    .payments
                    .provider_id(slot.provider)
                    .map(ProviderId::to_string)
                    .unwrap_or_default();
                let key = (provider, PaymentTable::reference(slot).to_owned());
                payments.entry(key).or_insert(verdict);
            }
        }
        for ((provider, reference), verdict) in payments {
            found.push(format!("payment {provider}/{reference} {verdict}"));
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

/// Folds one event into a payment, moving a fact in rather than copying it.
fn fold(projection: &mut PaymentProjection, meta: EventMeta, event: DomainEvent) {
    match event {
        DomainEvent::PaymentEventRecorded(fact) => projection.apply_fact(meta, fact),
        other => projection.apply(meta, &other),
    }
}
