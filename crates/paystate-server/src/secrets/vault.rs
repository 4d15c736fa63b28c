//! [`SecretVault`]: webhook secrets and API credentials, sealed, in the store's side trees.

use super::error::VaultError;
use super::listed::{ListedSecrets, Listing};
use super::master_key::MasterKey;
use super::opened::OpenedSecrets;
use super::sealed::{Sealer, SecretKind, Slot};
use paystate_domain::{Fingerprint, ProviderId, SecretVersion};
use paystate_store::EventStore;
use paystate_vipps::client::Credentials;
use paystate_vipps::WebhookSecret;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The side-tree namespace of the vault. Side trees are never part of the log, its hash chain
/// or an export.
pub const VAULT_NAMESPACE: &str = "secrets";

/// The plaintext of the key-check record.
const KEY_CHECK_PLAINTEXT: &[u8] = b"paystate vault key check";
/// The provider field of the key-check slot; not a valid `ProviderId`, so it cannot collide.
const KEY_CHECK_OWNER: &str = "-vault-";
/// Where the key-check record lives.
fn key_check_slot() -> Slot<'static> {
    Slot {
        kind: SecretKind::KeyCheck,
        provider: KEY_CHECK_OWNER,
        label: String::new(),
    }
}

/// The label of a provider's most recently stored credentials.
const LATEST_CREDENTIALS: &str = "latest";

/// Stores each provider's webhook secrets (every version, kept for audits) and API credentials
/// (every set, by fingerprint, plus the latest), each record encrypted with XChaCha20-Poly1305
/// under the master key and bound to its provider, kind and version or fingerprint.
///
/// Methods are synchronous: side-tree reads and writes do not wait on the log's group commit.
pub struct SecretVault {
    store: Arc<dyn EventStore>,
    sealer: Sealer,
    opened: OpenedSecrets,
    listed: ListedSecrets,
}

impl SecretVault {
    /// Opens the vault on `store`'s side trees. On the first open it seals a key-check record;
    /// on later opens it checks it, so a wrong master key fails here with
    /// [`VaultError::WrongMasterKey`] rather than at the first webhook.
    pub fn open(
        store: Arc<dyn EventStore>,
        master_key: MasterKey,
    ) -> Result<SecretVault, VaultError> {
        let vault = SecretVault {
            store,
            sealer: Sealer::new(&master_key),
            opened: OpenedSecrets::default(),
            listed: ListedSecrets::default(),
        };
        let slot = key_check_slot();
        match vault.read(&slot)? {
            Some(plaintext) if plaintext.as_slice() == KEY_CHECK_PLAINTEXT => {}
            Some(_) => {
                return Err(VaultError::Undecodable {
                    kind: slot.kind.name(),
                    provider: slot.provider.to_string(),
                })
            }
            None => vault.write(&slot, KEY_CHECK_PLAINTEXT)?,
        }
        Ok(vault)
    }

    /// Whether `store` already holds a vault: then only the master key it was sealed with can
    /// open it, and generating a new one would be a mistake.
    pub fn exists_in(store: &dyn EventStore) -> Result<bool, VaultError> {
        let slot = key_check_slot();
        Ok(store
            .side_get(VAULT_NAMESPACE, &slot.storage_key())?
            .is_some())
    }

    /// Stores `credentials` for `provider` under their fingerprint, and as the provider's
    /// latest credentials, and returns the fingerprint (what events record). Every credential
    /// set ever stored stays readable by its fingerprint, so whoever acts on the log uses the
    /// credentials the log names, even if a later store was never recorded.
    pub fn put_credentials(
        &self,
        provider: &ProviderId,
        credentials: &Credentials,
    ) -> Result<Fingerprint, VaultError> {
        let fingerprint = credentials.fingerprint();
        let plaintext = encode_credentials(credentials);
        self.write(
            &credentials_slot(provider, fingerprint.as_str()),
            &plaintext,
        )?;
        self.write(&credentials_slot(provider, LATEST_CREDENTIALS), &plaintext)?;
        Ok(fingerprint)
    }

    /// `provider`'s most recently stored credentials.
    pub fn credentials(&self, provider: &ProviderId) -> Result<Option<Credentials>, VaultError> {
        self.read_credentials(&credentials_slot(provider, LATEST_CREDENTIALS))
    }

    /// The credentials of `provider` with this fingerprint, if they were ever stored.
    pub fn credentials_by_fingerprint(
        &self,
        provider: &ProviderId,
        fingerprint: &Fingerprint,
    ) -> Result<Option<Credentials>, VaultError> {
        self.read_credentials(&credentials_slot(provider, fingerprint.as_str()))
    }

    fn read_credentials(&self, slot: &Slot<'_>) -> Result<Option<Credentials>, VaultError> {
        self.read(slot)?
            .map(|plaintext| decode_credentials(slot, &plaintext))
            .transpose()
    }

    /// Stores `secret` as `provider`'s webhook secret `version`. Versions are write-once: storing
    /// the same secret again is a no-op, storing a different one under a taken version fails
    /// with [`VaultError::VersionTaken`], because stored deliveries name the version that
    /// verified them.
    pub fn put_webhook_secret(
        &self,
        provider: &ProviderId,
        version: SecretVersion,
        secret: &WebhookSecret,
    ) -> Result<(), VaultError> {
        if let Some(existing) = self.webhook_secret(provider, version)? {
            return if existing == *secret {
                Ok(())
            } else {
                Err(VaultError::VersionTaken {
                    provider: provider.to_string(),
                    version: version.get(),
                })
            };
        }
        self.write(&webhook_slot(provider, version), secret.expose().as_bytes())
    }

    /// `provider`'s webhook secret `version`, if stored.
    pub fn webhook_secret(
        &self,
        provider: &ProviderId,
        version: SecretVersion,
    ) -> Result<Option<WebhookSecret>, VaultError> {
        let slot = webhook_slot(provider, version);
        self.read(&slot)?
            .map(|plaintext| decode_webhook_secret(&slot, &plaintext))
            .transpose()
    }

    /// Every stored webhook secret version of `provider`, oldest first. Called on every
    /// delivery: while the store has taken no side write since the last listing, that listing
    /// is the answer; otherwise the records are read again, and a record already opened in
    /// this form is not decrypted again.
    pub fn webhook_secrets(&self, provider: &ProviderId) -> Result<Listing, VaultError> {
        // Read before the scan: a write the scan might miss then changes the count.
        let side_writes = self.store.side_writes();
        if let Some(secrets) = self.listed.get(provider, side_writes) {
            return Ok(secrets);
        }
        let secrets = self.read_webhook_secrets(provider)?;
        self.listed.put(provider, side_writes, &secrets);
        Ok(secrets)
    }

    fn read_webhook_secrets(&self, provider: &ProviderId) -> Result<Listing, VaultError> {
        let prefix = format!(
            "{}/{}/",
            SecretKind::WebhookSecret.name(),
            provider.as_str()
        );
        let mut secrets = Vec::new();
        for (key, record) in self.store.side_scan(VAULT_NAMESPACE, prefix.as_bytes())? {
            let version = key
                .get(prefix.len()..)
                .and_then(parse_version)
                .ok_or_else(|| VaultError::Malformed {
                    kind: SecretKind::WebhookSecret.name(),
                    provider: provider.to_string(),
                    reason: "storage key without a secret version",
                })?;
            let secret = self.opened.get_or_open(&key, &record, || {
                let slot = webhook_slot(provider, version);
                let plaintext = self.sealer.open(&slot, &record)?;
                decode_webhook_secret(&slot, &plaintext)
            })?;
            secrets.push((version, secret));
        }
        Ok(secrets)
    }

    /// The highest webhook secret version stored for `provider`, if any. A registration picks a
    /// version above both this and the log's, so a secret stored just before a crash is never
    /// overwritten.
    pub fn latest_webhook_secret_version(
        &self,
        provider: &ProviderId,
    ) -> Result<Option<SecretVersion>, VaultError> {
        // The versions are in the storage keys: nothing needs decrypting.
        let prefix = format!(
            "{}/{}/",
            SecretKind::WebhookSecret.name(),
            provider.as_str()
        );
        Ok(self
            .store
            .side_scan(VAULT_NAMESPACE, prefix.as_bytes())?
            .iter()
            .filter_map(|(key, _)| key.get(prefix.len()..).and_then(parse_version))
            .max())
    }

    fn write(&self, slot: &Slot<'_>, plaintext: &[u8]) -> Result<(), VaultError> {
        let record = self.sealer.seal(slot, plaintext)?;
        self.store
            .side_put(VAULT_NAMESPACE, &slot.storage_key(), &record)?;
        Ok(())
    }

    fn read(&self, slot: &Slot<'_>) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        match self.store.side_get(VAULT_NAMESPACE, &slot.storage_key())? {
            Some(record) => Ok(Some(self.sealer.open(slot, &record)?)),
            None => Ok(None),
        }
    }
}

impl fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVault")
            .field("namespace", &VAULT_NAMESPACE)
            .field("master_key", &"***")
            .finish()
    }
}

fn webhook_slot(provider: &ProviderId, version: SecretVersion) -> Slot<'_> {
    Slot {
        kind: SecretKind::WebhookSecret,
        provider: provider.as_str(),
        label: format!("{:010}", version.get()),
    }
}

fn credentials_slot<'a>(provider: &'a ProviderId, label: &str) -> Slot<'a> {
    Slot {
        kind: SecretKind::Credentials,
        provider: provider.as_str(),
        label: label.to_owned(),
    }
}

/// The sealed form of a credential set.
#[derive(Serialize, Deserialize)]
struct CredentialsRecord {
    client_id: String,
    client_secret: String,
    subscription_key: String,
}

fn encode_credentials(credentials: &Credentials) -> Zeroizing<Vec<u8>> {
    let record = CredentialsRecord {
        client_id: credentials.client_id.clone(),
        client_secret: credentials.client_secret.expose().to_owned(),
        subscription_key: credentials.subscription_key.expose().to_owned(),
    };
    // Serializing three strings cannot fail.
    let bytes = Zeroizing::new(serde_json::to_vec(&record).unwrap_or_default());
    let CredentialsRecord {
        client_secret,
        subscription_key,
        ..
    } = record;
    drop(Zeroizing::new(client_secret));
    drop(Zeroizing::new(subscription_key));
    bytes
}

fn decode_credentials(slot: &Slot<'_>, plaintext: &[u8]) -> Result<Credentials, VaultError> {
    let record: CredentialsRecord =
        serde_json::from_slice(plaintext).map_err(|_| VaultError::Undecodable {
            kind: slot.kind.name(),
            provider: slot.provider.to_string(),
        })?;
    Ok(Credentials::new(
        record.client_id,
        record.client_secret,
        record.subscription_key,
    ))
}

fn decode_webhook_secret(slot: &Slot<'_>, plaintext: &[u8]) -> Result<WebhookSecret, VaultError> {
    std::str::from_utf8(plaintext)
        .map(WebhookSecret::new)
        .map_err(|_| VaultError::Undecodable {
            kind: slot.kind.name(),
            provider: slot.provider.to_string(),
        })
}

fn parse_version(digits: &[u8]) -> Option<SecretVersion> {
    let text = std::str::from_utf8(digits).ok()?;
    let number: u32 = text.parse().ok()?;
    SecretVersion::new(number).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_store::MemoryStore;

    const SECRET_1: &str =
        "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";
    const SECRET_2: &str =
        "4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMhbCn8vVaimKRcKmqSvy5yQY4ZDSa9ba6tU0zxeA==";

    fn store() -> Arc<dyn EventStore> {
        Arc::new(MemoryStore::new())
    }

    fn provider(id: &str) -> ProviderId {
        ProviderId::parse(id).unwrap()
    }

    fn version(n: u32) -> SecretVersion {
        SecretVersion::new(n).unwrap()
    }

    fn all_side_bytes(store: &Arc<dyn EventStore>) -> Vec<u8> {
        store
            .side_scan(VAULT_NAMESPACE, b"")
            .unwrap()
            .into_iter()
            .flat_map(|(key, value)| key.into_iter().chain(value))
            .collect()
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[test]
    fn webhook_secrets_round_trip_and_every_version_is_kept() {
        let vault = SecretVault::open(store(), MasterKey::generate()).unwrap();
        let id = provider("vipps-test");
        assert_eq!(vault.webhook_secret(&id, version(1)).unwrap(), None);
        assert_eq!(vault.latest_webhook_secret_version(&id).unwrap(), None);

        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        vault
            .put_webhook_secret(&id, version(2), &WebhookSecret::new(SECRET_2))
            .unwrap();

        let first = vault.webhook_secret(&id, version(1)).unwrap().unwrap();
        let second = vault.webhook_secret(&id, version(2)).unwrap().unwrap();
        assert_eq!(first.expose(), SECRET_1);
        assert_eq!(second.expose(), SECRET_2);
        let listed: Vec<(u32, String)> = vault
            .webhook_secrets(&id)
            .unwrap()
            .into_iter()
            .map(|(v, s)| (v.get(), s.expose().to_string()))
            .collect();
        assert_eq!(
            listed,
            vec![(1, SECRET_1.to_string()), (2, SECRET_2.to_string())]
        );
        assert_eq!(
            vault.latest_webhook_secret_version(&id).unwrap(),
            Some(version(2))
        );
    }

    #[test]
    fn versions_sort_numerically_and_providers_do_not_mix() {
        let vault = SecretVault::open(store(), MasterKey::generate()).unwrap();
        let a = provider("a");
        let ab = provider("a-b");
        for n in [10, 2, 9] {
            vault
                .put_webhook_secret(&a, version(n), &WebhookSecret::new(format!("s{n}")))
                .unwrap();
        }
        vault
            .put_webhook_secret(&ab, version(1), &WebhookSecret::new("other"))
            .unwrap();
        let versions: Vec<u32> = vault
            .webhook_secrets(&a)
            .unwrap()
            .iter()
            .map(|(v, _)| v.get())
            .collect();
        assert_eq!(versions, vec![2, 9, 10]);
        assert_eq!(vault.webhook_secrets(&ab).unwrap().len(), 1);
    }

    #[test]
    fn a_version_is_write_once() {
        let vault = SecretVault::open(store(), MasterKey::generate()).unwrap();
        let id = provider("vipps-test");
        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        let error = vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_2))
            .unwrap_err();
        assert!(
            matches!(error, VaultError::VersionTaken { version: 1, .. }),
            "{error:?}"
        );
        assert_eq!(
            vault
                .webhook_secret(&id, version(1))
                .unwrap()
                .unwrap()
                .expose(),
            SECRET_1
        );
    }

    #[test]
    fn secrets_are_not_stored_in_clear() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        vault
            .put_webhook_secret(&provider("p1"), version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        let bytes = all_side_bytes(&store);
        assert!(!bytes.is_empty());
        assert!(!contains(&bytes, SECRET_1));
        assert!(!contains(&bytes, &SECRET_1[..16]));
    }

    #[test]
    fn a_wrong_master_key_fails_at_open_with_a_clear_error() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        vault
            .put_webhook_secret(&provider("p1"), version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        drop(vault);
        let error = SecretVault::open(store, MasterKey::generate()).unwrap_err();
        assert!(matches!(error, VaultError::WrongMasterKey), "{error:?}");
        assert!(error.to_string().contains("master key"), "{error}");
    }

    #[test]
    fn the_right_key_reopens_the_vault() {
        let store = store();
        let key = MasterKey::generate();
        let vault = SecretVault::open(store.clone(), key.clone()).unwrap();
        vault
            .put_webhook_secret(&provider("p1"), version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        drop(vault);
        let vault = SecretVault::open(store, key).unwrap();
        let secret = vault
            .webhook_secret(&provider("p1"), version(1))
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), SECRET_1);
    }

    #[test]
    fn tampered_ciphertext_is_an_error_not_garbage() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        let id = provider("p1");
        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        let key = webhook_slot(&id, version(1)).storage_key();
        let mut record = store.side_get(VAULT_NAMESPACE, &key).unwrap().unwrap();
        let last = record.len() - 1;
        record[last] ^= 0x80;
        store.side_put(VAULT_NAMESPACE, &key, &record).unwrap();

        let error = vault.webhook_secret(&id, version(1)).unwrap_err();
        assert!(
            matches!(&error, VaultError::Tampered { label, .. } if label == "0000000001"),
            "{error:?}"
        );
        assert!(vault.webhook_secrets(&id).is_err());
    }

    #[test]
    fn a_record_tampered_after_it_was_read_is_an_error_on_the_next_read() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        let id = provider("p1");
        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        assert_eq!(vault.webhook_secrets(&id).unwrap().len(), 1);

        let key = webhook_slot(&id, version(1)).storage_key();
        let mut record = store.side_get(VAULT_NAMESPACE, &key).unwrap().unwrap();
        let last = record.len() - 1;
        record[last] ^= 0x80;
        store.side_put(VAULT_NAMESPACE, &key, &record).unwrap();

        let error = vault.webhook_secrets(&id).unwrap_err();
        assert!(matches!(error, VaultError::Tampered { .. }), "{error:?}");
    }

    #[test]
    fn versions_stored_by_another_vault_on_the_same_store_are_read() {
        let store = store();
        let server = SecretVault::open(store.clone(), MasterKey::from_bytes([7; 32])).unwrap();
        let offline = SecretVault::open(store, MasterKey::from_bytes([7; 32])).unwrap();
        let id = provider("p1");
        offline
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        assert_eq!(server.webhook_secrets(&id).unwrap().len(), 1);

        offline
            .put_webhook_secret(&id, version(2), &WebhookSecret::new(SECRET_2))
            .unwrap();
        let listed: Vec<(u32, String)> = server
            .webhook_secrets(&id)
            .unwrap()
            .into_iter()
            .map(|(v, s)| (v.get(), s.expose().to_string()))
            .collect();
        assert_eq!(
            listed,
            vec![(1, SECRET_1.to_string()), (2, SECRET_2.to_string())]
        );
    }

    #[test]
    fn a_record_copied_to_another_provider_or_version_is_refused() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        let victim = provider("victim");
        vault
            .put_webhook_secret(&victim, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        let record = store
            .side_get(
                VAULT_NAMESPACE,
                &webhook_slot(&victim, version(1)).storage_key(),
            )
            .unwrap()
            .unwrap();
        let attacker = provider("attacker");
        for (owner, v) in [(&attacker, version(1)), (&victim, version(2))] {
            store
                .side_put(
                    VAULT_NAMESPACE,
                    &webhook_slot(owner, v).storage_key(),
                    &record,
                )
                .unwrap();
            assert!(matches!(
                vault.webhook_secret(owner, v),
                Err(VaultError::Tampered { .. })
            ));
        }
    }

    #[test]
    fn debug_and_errors_hide_everything() {
        let key = MasterKey::generate();
        let vault = SecretVault::open(store(), key.clone()).unwrap();
        let id = provider("p1");
        vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_1))
            .unwrap();
        let secret = vault.webhook_secret(&id, version(1)).unwrap();
        let error = vault
            .put_webhook_secret(&id, version(1), &WebhookSecret::new(SECRET_2))
            .unwrap_err();
        let printed = format!("{vault:?} {key:?} {secret:?} {error:?} {error}");
        assert!(printed.contains("***"), "{printed}");
        for needle in [SECRET_1, SECRET_2, &SECRET_1[..12], &SECRET_2[..12]] {
            assert!(!printed.contains(needle), "{printed}");
        }
    }

    fn credentials(secret: &str) -> Credentials {
        Credentials::new("client-id-1", secret, format!("subscription-{secret}"))
    }

    #[test]
    fn credentials_round_trip_by_fingerprint_and_as_latest() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        let id = provider("vipps-test");
        assert!(vault.credentials(&id).unwrap().is_none());

        let first = credentials("client-secret-one");
        let second = credentials("client-secret-two");
        let first_fingerprint = vault.put_credentials(&id, &first).unwrap();
        let second_fingerprint = vault.put_credentials(&id, &second).unwrap();
        assert_eq!(first_fingerprint, first.fingerprint());
        assert_ne!(first_fingerprint, second_fingerprint);

        assert_eq!(vault.credentials(&id).unwrap(), Some(second.clone()));
        assert_eq!(
            vault
                .credentials_by_fingerprint(&id, &first_fingerprint)
                .unwrap(),
            Some(first)
        );
        assert_eq!(
            vault
                .credentials_by_fingerprint(&id, &second_fingerprint)
                .unwrap(),
            Some(second)
        );
        assert!(vault
            .credentials_by_fingerprint(&provider("other"), &first_fingerprint)
            .unwrap()
            .is_none());

        let bytes = all_side_bytes(&store);
        for needle in [
            "client-secret-one",
            "client-secret-two",
            "subscription-client",
        ] {
            assert!(!contains(&bytes, needle), "{needle} stored in clear");
        }
    }

    #[test]
    fn tampered_credentials_are_an_error() {
        let store = store();
        let vault = SecretVault::open(store.clone(), MasterKey::generate()).unwrap();
        let id = provider("vipps-test");
        vault.put_credentials(&id, &credentials("s3cret")).unwrap();
        let key = credentials_slot(&id, LATEST_CREDENTIALS).storage_key();
        let mut record = store.side_get(VAULT_NAMESPACE, &key).unwrap().unwrap();
        record[40] ^= 0x01;
        store.side_put(VAULT_NAMESPACE, &key, &record).unwrap();
        assert!(matches!(
            vault.credentials(&id),
            Err(VaultError::Tampered {
                kind: "credentials",
                ..
            })
        ));
    }

    #[test]
    fn credentials_debug_hides_the_secrets() {
        let vault = SecretVault::open(store(), MasterKey::generate()).unwrap();
        let id = provider("vipps-test");
        vault
            .put_credentials(&id, &credentials("very-secret-value"))
            .unwrap();
        let read = vault.credentials(&id).unwrap();
        let printed = format!("{read:?} {vault:?}");
        assert!(!printed.contains("very-secret-value"), "{printed}");
        assert!(!printed.contains("subscription-very"), "{printed}");
    }
}
