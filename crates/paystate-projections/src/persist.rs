//! Persisting the projections in the store's projection state, with their checkpoint, and
//! loading them back.
//!
//! Layout under the projection name [`PROJECTION_NAME`]:
//! - `meta/format` -> [`FORMAT`]: a state written in another format is dropped and rebuilt;
//! - `meta/skipped` -> JSON [`Skipped`];
//! - `provider/{id}` -> JSON of the provider aggregate;
//! - `payment/{bucket}/{provider}/{reference}` -> the payment in its compact binary form
//!   (postcard, see `codec.rs`), which is also how a payment not changed since the last commit
//!   is kept in memory (neither id contains `/`). `{bucket}` is two hex digits of a fixed hash
//!   of provider and reference, which spreads payments evenly over 256 prefixes: a load reads
//!   one prefix at a time, so it never holds more than a 256th of the stored payments beside
//!   the ones it keeps.
//!
//! [`stored_payment_key`] and [`PersistedPayment`] read and write one stored payment, for tools
//! that inspect or repair the persisted state.
//!
//! Only what changed since the last commit is written, with
//! [`EventStore::commit_projection_idempotent`]: payments and providers first, one at a time
//! and beside the log's writer, then the format marker and the skipped-event totals together
//! with the checkpoint. After a crash between the two, stored payments and providers may hold
//! events after the checkpoint; each knows the last position folded into it, and folding
//! passes over an event at or below that position, so catching up from the checkpoint gives
//! exactly the state a rebuild gives. After a commit, the payments it wrote are kept in memory
//! in the form it wrote, unless they have changed again meanwhile.

use crate::codec;
use crate::error::ProjectionError;
use crate::payments::{Body, Slot};
use crate::views::{Dirty, Projections, Skipped};
use paystate_domain::payment::{PaymentProjection, PaymentState};
use paystate_domain::provider::Provider;
use paystate_domain::{ProviderId, Reference};
use paystate_store::{EventStore, KvOp, Position};

/// The name of the projection state in the store.
pub const PROJECTION_NAME: &str = "views";
/// The layout version of the persisted state: 3, payments in binary form, in buckets; 4, the
/// same layout, but entries may be ahead of the checkpoint after a crash, which a build that
/// does not fold idempotently must not load (it rebuilds instead).
pub const FORMAT: &[u8] = b"4";

const FORMAT_KEY: &[u8] = b"meta/format";
const SKIPPED_KEY: &[u8] = b"meta/skipped";
const PROVIDER_PREFIX: &str = "provider/";
const PAYMENT_PREFIX: &str = "payment/";

/// A changed payment, as copied under the lock.
#[derive(Debug)]
enum PendingPayment {
    /// Changed since it was last encoded: encoded outside the lock.
    Decoded {
        slot: u32,
        projection: Box<PaymentProjection>,
        first_position: u64,
        state: PaymentState,
    },
    /// Already in stored form (a rebuild marked as changed after a load, for instance).
    Encoded(Box<[u8]>),
}

/// What a commit will write: copied under the lock, encoded and written outside it, so
/// readers (every ingestion request looks its provider up) never wait for the encoding.
#[derive(Debug)]
pub(crate) struct PendingCommit {
    pub checkpoint: Position,
    pub dirty: Dirty,
    skipped: Option<Skipped>,
    providers: Vec<(ProviderId, Option<Provider>)>,
    payments: Vec<(String, PendingPayment)>,
}

/// The payments a commit encoded, to keep in memory in that form once it is durable.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    payments: Vec<(u32, Box<PaymentProjection>, Vec<u8>)>,
}

/// Takes the changes since the last commit out of `projections`; `None` if nothing changed.
pub(crate) fn take_changes(
    projections: &mut Projections,
    stored_checkpoint: Position,
) -> Option<PendingCommit> {
    let dirty = std::mem::take(&mut projections.dirty);
    if projections.applied == stored_checkpoint
        && dirty.providers.is_empty()
        && dirty.payments.is_empty()
        && !dirty.skipped
    {
        return None;
    }
    let providers = dirty
        .providers
        .iter()
        .map(|id| (id.clone(), projections.providers.get(id).cloned()))
        .collect();
    let table = &projections.payments;
    let payments = dirty
        .payments
        .iter()
        .filter_map(|&number| {
            let slot = table.slot(number)?;
            let provider = table.provider_id(slot.provider)?;
            let key = payment_key(provider, crate::payments::PaymentTable::reference(slot));
            let pending = match &slot.body {
                Body::Decoded(projection) => PendingPayment::Decoded {
                    slot: number,
                    projection: projection.clone(),
                    first_position: slot.first_position,
                    state: slot.state,
                },
                Body::Encoded(bytes) => PendingPayment::Encoded(bytes.clone()),
            };
            Some((key, pending))
        })
        .collect();
    Some(PendingCommit {
        checkpoint: projections.applied,
        skipped: dirty.skipped.then(|| projections.skipped.clone()),
        providers,
        payments,
        dirty,
    })
}

/// How many prefixes payments are spread over.
const BUCKETS: u16 = 256;

/// A payment's bucket: FNV-1a of `{provider}/{reference}`, fixed forever (it is stored).
fn bucket(provider: &str, reference: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in provider.bytes().chain(*b"/").chain(reference.bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    u16::try_from(hash % u32::from(BUCKETS)).unwrap_or(0)
}

fn bucket_prefix(bucket: u16) -> String {
    format!("{PAYMENT_PREFIX}{bucket:02x}/")
}

fn payment_key(provider: &ProviderId, reference: &str) -> String {
    let prefix = bucket_prefix(bucket(provider.as_str(), reference));
    format!("{prefix}{provider}/{reference}")
}

/// The key a payment is persisted under (for tools that inspect or repair the persisted
/// state; the server needs none of this).
pub fn stored_payment_key(provider: &ProviderId, reference: &Reference) -> Vec<u8> {
    payment_key(provider, reference.as_str()).into_bytes()
}

/// A payment as persisted under [`stored_payment_key`]: its fold and what the listing keeps
/// beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedPayment {
    pub projection: PaymentProjection,
    /// The position of the first event about it: the listing order.
    pub first_position: u64,
    /// The state it is listed under.
    pub state: PaymentState,
}

/// Why a persisted payment could not be read.
pub use crate::codec::CodecError as PersistedPaymentError;

impl PersistedPayment {
    /// Reads the value stored for a payment of `provider`.
    pub fn decode(
        provider: &ProviderId,
        bytes: &[u8],
    ) -> Result<PersistedPayment, PersistedPaymentError> {
        let stored = codec::decode(provider, bytes)?;
        Ok(PersistedPayment {
            projection: stored.projection,
            first_position: stored.first_position,
            state: stored.state,
        })
    }

    /// The value to store.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&self.projection, self.first_position, self.state)
    }
}

/// The store writes of one commit (see [`EventStore::commit_projection_idempotent`]).
#[derive(Debug, Default)]
pub(crate) struct CommitOps {
    /// Payments and providers, each knowing the last position folded into it: written one at
    /// a time, before the checkpoint.
    pub entries: Vec<KvOp>,
    /// The format marker, the running totals of skipped events and any removed provider:
    /// what cannot tell whether it already holds an event, written with the checkpoint.
    pub with_checkpoint: Vec<KvOp>,
}

impl PendingCommit {
    /// The store operations of this commit, and the payments encoded for them.
    pub(crate) fn into_ops(self) -> (CommitOps, Encoded) {
        let mut ops = CommitOps {
            entries: Vec::with_capacity(self.providers.len() + self.payments.len()),
            with_checkpoint: Vec::with_capacity(2),
        };
        let mut encoded = Encoded::default();
        ops.with_checkpoint.push(KvOp::Put {
            key: FORMAT_KEY.to_vec(),
            value: FORMAT.to_vec(),
        });
        if let Some(skipped) = &self.skipped {
            ops.with_checkpoint
                .push(put_json(SKIPPED_KEY.to_vec(), skipped));
        }
        for (id, provider) in &self.providers {
            let key = format!("{PROVIDER_PREFIX}{id}").into_bytes();
            match provider {
                Some(provider) => ops.entries.push(put_json(key, provider)),
                None => ops.with_checkpoint.push(KvOp::Delete { key }),
            }
        }
        for (key, pending) in self.payments {
            let value = match pending {
                PendingPayment::Decoded {
                    slot,
                    projection,
                    first_position,
                    state,
                } => {
                    let value = codec::encode(&projection, first_position, state);
                    encoded.payments.push((slot, projection, value.clone()));
                    value
                }
                PendingPayment::Encoded(bytes) => bytes.into_vec(),
            };
            ops.entries.push(KvOp::Put {
                key: key.into_bytes(),
                value,
            });
        }
        (ops, encoded)
    }
}

/// After a durable commit: keeps the payments it wrote in their stored form, each only if it
/// has not changed since it was copied.
pub(crate) fn keep_encoded(projections: &mut Projections, encoded: Encoded) {
    for (slot, projection, bytes) in encoded.payments {
        projections.payments.compact(slot, &projection, bytes);
    }
}

/// Puts the dirty marks of a failed commit back, so the next commit writes them.
pub(crate) fn restore_changes(projections: &mut Projections, failed: Dirty) {
    projections.dirty.providers.extend(failed.providers);
    projections.dirty.payments.extend(failed.payments);
    projections.dirty.skipped |= failed.skipped;
}

fn put_json<T: serde::Serialize>(key: Vec<u8>, value: &T) -> KvOp {
    // Serializing the views cannot fail (string keys, plain data); an empty value would be
    // refused at load and trigger a rebuild rather than a wrong state.
    KvOp::Put {
        key,
        value: serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// Loads the persisted projections, or `None` when there are none or they cannot be used
/// (another format, undecodable entries): the caller then rebuilds from the log.
///
/// Each payment is checked by decoding it once, then kept in its stored form: the bytes read
/// from the store become the in-memory payment, so loading copies no payment.
pub fn load(store: &dyn EventStore) -> Result<Option<Projections>, ProjectionError> {
    let Some(checkpoint) = store.projection_checkpoint(PROJECTION_NAME)? else {
        return Ok(None);
    };
    if checkpoint > store.head()? {
        // The log is shorter than what the state claims to reflect (a log restored from an
        // older backup): the state describes events that are not there.
        tracing::warn!(
            checkpoint = checkpoint.0,
            "persisted projections are ahead of the log; rebuilding from the log"
        );
        return Ok(None);
    }
    if store
        .projection_get(PROJECTION_NAME, FORMAT_KEY)?
        .as_deref()
        != Some(FORMAT)
    {
        tracing::info!("persisted projections have another format; rebuilding from the log");
        return Ok(None);
    }
    let mut projections = Projections {
        applied: checkpoint,
        ..Projections::default()
    };
    if let Some(bytes) = store.projection_get(PROJECTION_NAME, SKIPPED_KEY)? {
        match serde_json::from_slice::<Skipped>(&bytes) {
            Ok(skipped) => projections.skipped = skipped,
            Err(error) => return unusable("meta/skipped", &error),
        }
    }
    for (key, value) in store.projection_scan(PROJECTION_NAME, PROVIDER_PREFIX.as_bytes())? {
        match serde_json::from_slice::<Provider>(&value) {
            Ok(provider) => {
                projections.providers.insert(provider.id.clone(), provider);
            }
            Err(error) => return unusable(&String::from_utf8_lossy(&key), &error),
        }
    }
    let mut slots = Vec::new();
    for bucket in 0..BUCKETS {
        let prefix = bucket_prefix(bucket);
        for (key, value) in store.projection_scan(PROJECTION_NAME, prefix.as_bytes())? {
            match loaded_slot(&mut projections, &prefix, &key, value) {
                // First seen after the checkpoint: stored by a commit whose checkpoint a crash
                // cut off. Catching up creates it again, in listing order after every payment
                // kept here (listing pages rely on that order).
                Ok(slot) if slot.first_position > checkpoint.0 => {}
                Ok(slot) => slots.push(slot),
                Err(error) => return unusable(&String::from_utf8_lossy(&key), &error),
            }
        }
    }
    projections.payments.insert_loaded(slots);
    Ok(Some(projections))
}

/// One stored payment as a slot, checked: its key is in the bucket of the provider and the
/// reference it names, the value decodes and holds that reference.
fn loaded_slot(
    projections: &mut Projections,
    prefix: &str,
    key: &[u8],
    value: Vec<u8>,
) -> Result<Slot, Box<dyn std::error::Error>> {
    let key = std::str::from_utf8(key)?;
    let (provider, reference) = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('/'))
        .ok_or("not a payment key")?;
    if bucket_prefix(bucket(provider, reference)) != prefix {
        return Err("a payment key in another bucket".into());
    }
    let provider_id = ProviderId::parse(provider)?;
    let stored = codec::decode(&provider_id, &value)?;
    if stored.projection.reference().as_str() != reference {
        return Err("the key names another reference".into());
    }
    Ok(Slot {
        provider: projections.payments.intern(&provider_id),
        first_position: stored.first_position,
        state: stored.state,
        body: Body::Encoded(value.into_boxed_slice()),
    })
}

fn unusable(
    key: &str,
    error: &dyn std::fmt::Display,
) -> Result<Option<Projections>, ProjectionError> {
    tracing::warn!(key, %error, "persisted projection entry unreadable; rebuilding from the log");
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_fixed_and_spread() {
        // Stored keys depend on these values: they must never change.
        assert_eq!(bucket("vipps-test", "order-0001"), 161);
        assert_eq!(
            payment_key(&ProviderId::parse("p").unwrap(), "r"),
            format!("payment/{:02x}/p/r", bucket("p", "r"))
        );
        let mut counts = [0u32; BUCKETS as usize];
        for i in 0..25_600 {
            counts[usize::from(bucket("bench", &format!("fill0-c{}-p{i}", i % 64)))] += 1;
        }
        assert!(
            counts.iter().all(|&count| (50..=150).contains(&count)),
            "{counts:?}"
        );
    }
}
