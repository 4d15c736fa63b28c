//! [`ListedSecrets`]: each provider's webhook secrets as last listed from the store, kept
//! while the store has taken no side write since.
//!
//! Ingestion needs every secret version of a provider on each delivery. Listing them is a scan
//! of the store's side tree; the store counts its side writes
//! ([`paystate_store::EventStore::side_writes`]), and a listing made at one count is the
//! listing at any later read of the same count. Any side write (a new version, whoever on
//! this store wrote it) makes every provider's listing stale, so the store stays the only
//! source of truth.

use paystate_domain::{ProviderId, SecretVersion};
use paystate_vipps::WebhookSecret;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A provider's secret versions, oldest first, as the vault lists them.
pub(crate) type Listing = Vec<(SecretVersion, WebhookSecret)>;

/// One provider's listing and the store's side-write count read before the scan that made it.
struct Listed {
    side_writes: u64,
    secrets: Listing,
}

/// The cache: one entry per provider that was listed. No `Debug`: it holds secrets.
#[derive(Default)]
pub(crate) struct ListedSecrets {
    by_provider: Mutex<HashMap<ProviderId, Listed>>,
}

impl ListedSecrets {
    /// The listing of `provider` made at `side_writes`, if that is the one kept.
    pub(crate) fn get(&self, provider: &ProviderId, side_writes: u64) -> Option<Listing> {
        self.entries()
            .get(provider)
            .filter(|listed| listed.side_writes == side_writes)
            .map(|listed| listed.secrets.clone())
    }

    /// Keeps `secrets`, listed by a scan that began at `side_writes`.
    pub(crate) fn put(&self, provider: &ProviderId, side_writes: u64, secrets: &Listing) {
        self.entries().insert(
            provider.clone(),
            Listed {
                side_writes,
                secrets: secrets.clone(),
            },
        );
    }

    /// The map; every write is one insert, so a lock poisoned by a panic elsewhere is used as
    /// is.
    fn entries(&self) -> MutexGuard<'_, HashMap<ProviderId, Listed>> {
        self.by_provider
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(texts: &[&str]) -> Listing {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                (
                    SecretVersion::new(i as u32 + 1).unwrap(),
                    WebhookSecret::new(*text),
                )
            })
            .collect()
    }

    fn exposed(listing: Option<Listing>) -> Option<Vec<String>> {
        listing.map(|secrets| {
            secrets
                .iter()
                .map(|(_, secret)| secret.expose().to_owned())
                .collect()
        })
    }

    #[test]
    fn a_listing_is_answered_only_at_the_count_it_was_made_at() {
        let cache = ListedSecrets::default();
        let a = ProviderId::parse("a").unwrap();
        let b = ProviderId::parse("b").unwrap();
        assert!(cache.get(&a, 0).is_none());
        cache.put(&a, 3, &listing(&["one", "two"]));
        assert_eq!(
            exposed(cache.get(&a, 3)),
            Some(vec!["one".into(), "two".into()])
        );
        assert!(cache.get(&a, 4).is_none());
        assert!(cache.get(&b, 3).is_none());
        cache.put(&a, 4, &listing(&["one"]));
        assert_eq!(exposed(cache.get(&a, 4)), Some(vec!["one".into()]));
        assert!(cache.get(&a, 3).is_none());
    }
}
