//! Persisting the projections in the store's projection state, with their checkpoint, and
//! loading them back.
//!
//! Layout under the projection name [`PROJECTION_NAME`]:
//! - `meta/format` -> [`FORMAT`]: a state written in another format is dropped and rebuilt;
//! - `meta/skipped` -> JSON [`Skipped`];
//! - `provider/{id}` -> JSON of the provider aggregate;
//! - `payment/{provider}/{reference}` -> JSON [`PaymentEntry`] (neither id contains `/`).
//!
//! Only what changed since the last commit is written; state and checkpoint go in one atomic
//! commit, so after a crash the stored state is exactly the state as of its checkpoint.

use crate::error::ProjectionError;
use crate::views::{Dirty, PaymentEntry, PaymentKey, Projections, Skipped};
use paystate_domain::provider::Provider;
use paystate_domain::ProviderId;
use paystate_store::{EventStore, KvOp, Position};

/// The name of the projection state in the store.
pub const PROJECTION_NAME: &str = "views";
/// The layout version of the persisted state.
pub const FORMAT: &[u8] = b"1";

const FORMAT_KEY: &[u8] = b"meta/format";
const SKIPPED_KEY: &[u8] = b"meta/skipped";
const PROVIDER_PREFIX: &str = "provider/";
const PAYMENT_PREFIX: &str = "payment/";

/// What a commit will write: copied under the lock, serialized and written outside it, so
/// readers (every ingestion request looks its provider up) never wait for the JSON encoding.
#[derive(Debug)]
pub(crate) struct PendingCommit {
    pub checkpoint: Position,
    pub dirty: Dirty,
    skipped: Option<Skipped>,
    providers: Vec<(ProviderId, Option<Provider>)>,
    payments: Vec<(PaymentKey, Option<PaymentEntry>)>,
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
    let payments = dirty
        .payments
        .iter()
        .map(|key| (key.clone(), projections.payments.get(key).cloned()))
        .collect();
    Some(PendingCommit {
        checkpoint: projections.applied,
        skipped: dirty.skipped.then(|| projections.skipped.clone()),
        providers,
        payments,
        dirty,
    })
}

impl PendingCommit {
    /// The store operations of this commit: the format marker and every changed entry.
    pub(crate) fn ops(&self) -> Vec<KvOp> {
        let mut ops = Vec::with_capacity(2 + self.providers.len() + self.payments.len());
        ops.push(KvOp::Put {
            key: FORMAT_KEY.to_vec(),
            value: FORMAT.to_vec(),
        });
        if let Some(skipped) = &self.skipped {
            ops.push(put_json(SKIPPED_KEY.to_vec(), skipped));
        }
        for (id, provider) in &self.providers {
            let key = format!("{PROVIDER_PREFIX}{id}").into_bytes();
            match provider {
                Some(provider) => ops.push(put_json(key, provider)),
                None => ops.push(KvOp::Delete { key }),
            }
        }
        for ((provider, reference), entry) in &self.payments {
            let key = format!("{PAYMENT_PREFIX}{provider}/{reference}").into_bytes();
            match entry {
                Some(entry) => ops.push(put_json(key, entry)),
                None => ops.push(KvOp::Delete { key }),
            }
        }
        ops
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
    for (key, value) in store.projection_scan(PROJECTION_NAME, PAYMENT_PREFIX.as_bytes())? {
        match serde_json::from_slice::<PaymentEntry>(&value) {
            Ok(entry) => {
                let key = (
                    entry.projection.provider_id().clone(),
                    entry.projection.reference().clone(),
                );
                projections.payments.insert(key, entry);
            }
            Err(error) => return unusable(&String::from_utf8_lossy(&key), &error),
        }
    }
    projections.reindex();
    Ok(Some(projections))
}

fn unusable(key: &str, error: &serde_json::Error) -> Result<Option<Projections>, ProjectionError> {
    tracing::warn!(key, %error, "persisted projection entry unreadable; rebuilding from the log");
    Ok(None)
}
