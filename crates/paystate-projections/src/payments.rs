//! The payment table: every payment in one vector in listing order, found through a hash of
//! its key, each kept either decoded (changed since the last commit, or built by a rebuild)
//! or in its compact stored form ([`crate::codec`]).
//!
//! Nothing here copies a provider id or a reference per payment: providers are interned to a
//! small number, the key lookup stores only a 64-bit hash and a slot number (the key itself is
//! read from the payment), and the listing filters hold slot numbers. Slots are in order of
//! first position because a payment is created by the first event about it and positions only
//! grow (a load sorts them once), so the listing order needs no index of its own.

use crate::codec::{self, StoredPayment};
use paystate_domain::payment::{PaymentProjection, PaymentState};
use paystate_domain::ProviderId;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// One payment and what the listing index needs of it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The interned provider.
    pub provider: u32,
    /// The position of the first event about this payment: the listing order.
    pub first_position: u64,
    /// The state last derived, kept so the state index is updated without a re-derive.
    pub state: PaymentState,
    pub body: Body,
}

/// A payment's fold, decoded or in its stored form.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Decoded(Box<PaymentProjection>),
    Encoded(Box<[u8]>),
}

/// The number of [`PaymentState`]s, for per-state indexes.
const STATES: usize = 5;

fn state_index(state: PaymentState) -> usize {
    match state {
        PaymentState::Created => 0,
        PaymentState::Authorized => 1,
        PaymentState::Aborted => 2,
        PaymentState::Expired => 3,
        PaymentState::Terminated => 4,
    }
}

/// A hasher for keys that already are hashes.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Every payment, with its lookup and listing indexes.
#[derive(Debug, Clone, Default)]
pub(crate) struct PaymentTable {
    /// Seeded per process: the hashes are never stored.
    hasher: RandomState,
    providers: Vec<ProviderId>,
    provider_numbers: HashMap<Box<str>, u32>,
    slots: Vec<Slot>,
    /// Key hash -> slot, for the first payment with that hash.
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// Slots whose key hash an earlier payment already had (searched one by one).
    collided: Vec<u32>,
    /// Per interned provider: its slots, ascending.
    by_provider: Vec<Vec<u32>>,
    /// Per interned provider and state: its slots, ascending.
    by_provider_state: Vec<[BTreeSet<u32>; STATES]>,
    /// How many slots hold their payment decoded.
    decoded: usize,
}

impl PaymentTable {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn slot(&self, number: u32) -> Option<&Slot> {
        self.slots.get(number as usize)
    }

    pub fn provider_id(&self, number: u32) -> Option<&ProviderId> {
        self.providers.get(number as usize)
    }

    /// The number of a provider already seen.
    pub fn provider_number(&self, id: &str) -> Option<u32> {
        self.provider_numbers.get(id).copied()
    }

    /// The number of a provider, interning it when first seen.
    pub fn intern(&mut self, id: &ProviderId) -> u32 {
        if let Some(number) = self.provider_numbers.get(id.as_str()) {
            return *number;
        }
        let number = u32::try_from(self.providers.len()).unwrap_or(u32::MAX);
        self.providers.push(id.clone());
        self.provider_numbers.insert(Box::from(id.as_str()), number);
        self.by_provider.push(Vec::new());
        self.by_provider_state.push(Default::default());
        number
    }

    /// The number of the provider `id` names, interning it when first seen; an error when
    /// `id` is not a valid provider id.
    pub fn intern_text(&mut self, id: &str) -> Result<u32, paystate_domain::IdError> {
        match self.provider_numbers.get(id) {
            Some(number) => Ok(*number),
            None => Ok(self.intern(&ProviderId::parse(id)?)),
        }
    }

    /// The reference of slot `number`'s payment, as its type.
    pub fn reference_of(&self, number: u32) -> Option<paystate_domain::Reference> {
        let slot = self.slot(number)?;
        match &slot.body {
            Body::Decoded(projection) => Some(projection.reference().clone()),
            Body::Encoded(_) => paystate_domain::Reference::parse(Self::reference(slot)).ok(),
        }
    }

    fn key_hash(&self, provider: u32, reference: &str) -> u64 {
        self.hasher.hash_one((provider, reference))
    }

    /// The reference of a slot's payment.
    pub fn reference(slot: &Slot) -> &str {
        match &slot.body {
            Body::Decoded(projection) => projection.reference().as_str(),
            Body::Encoded(bytes) => codec::head(bytes).map_or("", |head| head.reference),
        }
    }

    fn is_at(&self, number: u32, provider: u32, reference: &str) -> bool {
        self.slot(number)
            .is_some_and(|slot| slot.provider == provider && Self::reference(slot) == reference)
    }

    /// The slot of a payment.
    pub fn find(&self, provider: u32, reference: &str) -> Option<u32> {
        let hash = self.key_hash(provider, reference);
        let first = *self.by_hash.get(&hash)?;
        if self.is_at(first, provider, reference) {
            return Some(first);
        }
        self.collided
            .iter()
            .copied()
            .find(|&number| self.is_at(number, provider, reference))
    }

    /// Adds a payment whose first position follows every other's; returns its slot.
    pub fn push(&mut self, slot: Slot) -> u32 {
        let number = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(slot);
        self.index(number);
        number
    }

    /// Enters slot `number` (the last one indexed so far) in the lookup and listing indexes.
    fn index(&mut self, number: u32) {
        let Some(slot) = self.slots.get(number as usize) else {
            return;
        };
        let hash = self.key_hash(slot.provider, Self::reference(slot));
        let (provider, state) = (slot.provider as usize, slot.state);
        if matches!(slot.body, Body::Decoded(_)) {
            self.decoded += 1;
        }
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push(number),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(number);
            }
        }
        if let Some(slots) = self.by_provider.get_mut(provider) {
            slots.push(number);
        }
        if let Some(states) = self.by_provider_state.get_mut(provider) {
            states[state_index(state)].insert(number);
        }
    }

    /// How many payments are held decoded.
    pub fn decoded(&self) -> usize {
        self.decoded
    }

    /// Puts every payment held decoded in its stored form, to bound memory while many
    /// payments change between two commits (catching up after a start). A commit then
    /// writes those bytes as they are.
    pub fn compact_all(&mut self) {
        for slot in &mut self.slots {
            if let Body::Decoded(projection) = &slot.body {
                let bytes = codec::encode(projection, slot.first_position, slot.state);
                slot.body = Body::Encoded(bytes.into_boxed_slice());
            }
        }
        self.decoded = 0;
    }

    /// Payments loaded in any order, into a table that holds none yet: sorted into listing
    /// order in place, then indexed.
    pub fn insert_loaded(&mut self, mut loaded: Vec<Slot>) {
        loaded.sort_unstable_by_key(|slot| slot.first_position);
        debug_assert!(self.slots.is_empty(), "loading into a table with payments");
        self.slots = loaded;
        for index in 0..self.slots.len() {
            self.index(u32::try_from(index).unwrap_or(u32::MAX));
        }
    }

    /// The slot's payment, decoded for changing. A stored form that no longer decodes (it was
    /// checked when loaded, so only a bug could cause it) is logged and yields `None`.
    pub fn decoded_mut(&mut self, number: u32) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(number as usize)?;
        if let Body::Encoded(bytes) = &slot.body {
            let provider_id = self.providers.get(slot.provider as usize)?;
            match codec::decode(provider_id, bytes) {
                Ok(stored) => {
                    slot.body = Body::Decoded(Box::new(stored.projection));
                    self.decoded += 1;
                }
                Err(error) => {
                    tracing::error!(%error, "a payment kept in memory does not decode");
                    return None;
                }
            }
        }
        Some(slot)
    }

    /// Moves a slot between state indexes after its state changed.
    pub fn restate(&mut self, number: u32, old: PaymentState, new: PaymentState) {
        let Some(slot) = self.slots.get_mut(number as usize) else {
            return;
        };
        slot.state = new;
        if let Some(states) = self.by_provider_state.get_mut(slot.provider as usize) {
            states[state_index(old)].remove(&number);
            states[state_index(new)].insert(number);
        }
    }

    /// Replaces a decoded payment by its stored form, if it is still `committed`.
    pub fn compact(&mut self, number: u32, committed: &PaymentProjection, bytes: Vec<u8>) {
        if let Some(slot) = self.slots.get_mut(number as usize) {
            if matches!(&slot.body, Body::Decoded(projection) if **projection == *committed) {
                slot.body = Body::Encoded(bytes.into_boxed_slice());
                self.decoded = self.decoded.saturating_sub(1);
            }
        }
    }

    /// The slot's payment, decoded (borrowed when it already is).
    pub fn projection(&self, number: u32) -> Option<Cow<'_, PaymentProjection>> {
        let slot = self.slot(number)?;
        match &slot.body {
            Body::Decoded(projection) => Some(Cow::Borrowed(projection)),
            Body::Encoded(bytes) => {
                let provider_id = self.provider_id(slot.provider)?;
                match codec::decode(provider_id, bytes) {
                    Ok(StoredPayment { projection, .. }) => Some(Cow::Owned(projection)),
                    Err(error) => {
                        tracing::error!(%error, "a payment kept in memory does not decode");
                        None
                    }
                }
            }
        }
    }

    /// The first slot whose first position is after `after`.
    pub fn first_after(&self, after: u64) -> u32 {
        let index = self
            .slots
            .partition_point(|slot| slot.first_position <= after);
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    /// A provider's slots after `after`, ascending.
    pub fn of_provider(&self, provider: u32, after: u64) -> &[u32] {
        let Some(slots) = self.by_provider.get(provider as usize) else {
            return &[];
        };
        let start = slots.partition_point(|&number| {
            self.slot(number)
                .is_some_and(|slot| slot.first_position <= after)
        });
        slots.get(start..).unwrap_or(&[])
    }

    /// A provider's slots in `state` from slot `from` on, ascending.
    pub fn of_provider_in_state(
        &self,
        provider: u32,
        state: PaymentState,
        from: u32,
    ) -> impl Iterator<Item = u32> + '_ {
        self.by_provider_state
            .get(provider as usize)
            .into_iter()
            .flat_map(move |states| states[state_index(state)].range(from..).copied())
    }
}
