//! [`OpenedSecrets`]: webhook secrets already decrypted, keyed by the sealed record they came
//! from.
//!
//! When the store's side trees change (`listed`), a provider's sealed records are read again,
//! whoever wrote them (another vault on the same store, a restore); what is skipped is opening
//! a record that is byte for byte the one opened before. A new version, a rewritten or a
//! tampered record differs from the cached one and is opened, and checked, again.

use super::error::VaultError;
use paystate_vipps::WebhookSecret;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One opened record: the sealed bytes it was opened from and the secret they hold.
struct Opened {
    sealed: Vec<u8>,
    secret: WebhookSecret,
}

/// The cache. One entry per stored secret version: the vault never deletes a version, so it
/// holds at most what the store holds. No `Debug`: it holds secrets.
#[derive(Default)]
pub(crate) struct OpenedSecrets {
    by_storage_key: Mutex<HashMap<Vec<u8>, Opened>>,
}

impl OpenedSecrets {
    /// The secret sealed in `sealed` under `storage_key`: from the cache when the same bytes
    /// were opened before, else from `open`, which then replaces the entry. A failed `open`
    /// removes the entry, so nothing of a record that no longer opens is kept.
    pub(crate) fn get_or_open(
        &self,
        storage_key: &[u8],
        sealed: &[u8],
        open: impl FnOnce() -> Result<WebhookSecret, VaultError>,
    ) -> Result<WebhookSecret, VaultError> {
        if let Some(hit) = self
            .entries()
            .get(storage_key)
            .filter(|opened| opened.sealed == sealed)
        {
            return Ok(hit.secret.clone());
        }
        match open() {
            Ok(secret) => {
                let opened = Opened {
                    sealed: sealed.to_vec(),
                    secret: secret.clone(),
                };
                self.entries().insert(storage_key.to_vec(), opened);
                Ok(secret)
            }
            Err(error) => {
                self.entries().remove(storage_key);
                Err(error)
            }
        }
    }

    /// The map; a panic elsewhere while it was held leaves it consistent (every write is one
    /// insert or remove), so a poisoned lock is used as is.
    fn entries(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Opened>> {
        self.by_storage_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Result<WebhookSecret, VaultError> {
        Ok(WebhookSecret::new(text))
    }

    #[test]
    fn the_same_sealed_bytes_are_opened_once_and_changed_bytes_again() {
        let cache = OpenedSecrets::default();
        let mut opened = 0;
        let mut get = |sealed: &[u8], text: &str| {
            cache
                .get_or_open(b"k1", sealed, || {
                    opened += 1;
                    secret(text)
                })
                .unwrap()
                .expose()
                .to_owned()
        };
        assert_eq!(get(b"sealed-a", "first"), "first");
        assert_eq!(get(b"sealed-a", "unused"), "first");
        assert_eq!(get(b"sealed-b", "second"), "second");
        assert_eq!(opened, 2);
    }

    #[test]
    fn a_record_that_no_longer_opens_is_forgotten() {
        let cache = OpenedSecrets::default();
        cache.get_or_open(b"k1", b"a", || secret("s")).unwrap();
        let tampered = cache.get_or_open(b"k1", b"b", || {
            Err(VaultError::Malformed {
                kind: "webhook secret",
                provider: "p".to_owned(),
                reason: "test",
            })
        });
        assert!(tampered.is_err());
        // The original bytes are opened again rather than answered from a stale entry.
        let mut reopened = false;
        cache
            .get_or_open(b"k1", b"a", || {
                reopened = true;
                secret("s")
            })
            .unwrap();
        assert!(reopened);
    }
}
