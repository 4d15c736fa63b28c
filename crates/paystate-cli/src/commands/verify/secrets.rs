//! The webhook secrets a re-verification needs, read from the data directory's vault with the
//! server's master key, each version decrypted once.

use anyhow::Context;
use paystate_domain::{ProviderId, SecretVersion};
use paystate_server::secrets::{
    MasterKey, SecretVault, MASTER_KEY_ENV, MASTER_KEY_FILE, VAULT_NAMESPACE,
};
use paystate_store::{EventStore, SledStore};
use paystate_vipps::WebhookSecret;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where secrets come from: not looked at yet, an empty vault (an imported log), or the vault.
enum Source {
    Unopened,
    Empty,
    Vault(SecretVault),
}

/// Secrets by (provider, version). The vault is opened on the first delivery, so a log without
/// deliveries needs no master key, and an empty vault is never opened (opening writes its
/// key-check record).
pub struct SecretCache<'a> {
    store: Arc<SledStore>,
    data_dir: &'a Path,
    source: Source,
    secrets: HashMap<(ProviderId, SecretVersion), WebhookSecret>,
}

impl<'a> SecretCache<'a> {
    pub fn new(store: Arc<SledStore>, data_dir: &'a Path) -> SecretCache<'a> {
        SecretCache {
            store,
            data_dir,
            source: Source::Unopened,
            secrets: HashMap::new(),
        }
    }

    /// The secret `version` of `provider`: `Ok(Err(why))` when it is not available, which is a
    /// finding about the delivery that names it; `Err` when the vault cannot be opened at all.
    pub fn get(
        &mut self,
        provider: &ProviderId,
        version: SecretVersion,
    ) -> anyhow::Result<Result<WebhookSecret, String>> {
        let key = (provider.clone(), version);
        if let Some(secret) = self.secrets.get(&key) {
            return Ok(Ok(secret.clone()));
        }
        if matches!(self.source, Source::Unopened) {
            self.source = if self.store.side_scan(VAULT_NAMESPACE, b"")?.is_empty() {
                Source::Empty
            } else {
                Source::Vault(open_vault(self.store.clone(), self.data_dir)?)
            };
        }
        let vault = match &self.source {
            Source::Vault(vault) => vault,
            Source::Empty | Source::Unopened => {
                return Ok(Err(format!(
                    "secret version {} of provider {provider} is not available: this data \
                     directory's vault holds no secrets (an imported log carries none; see \
                     --chain-only)",
                    version.get()
                )))
            }
        };
        match vault.webhook_secret(provider, version) {
            Ok(Some(secret)) => {
                self.secrets.insert(key, secret.clone());
                Ok(Ok(secret))
            }
            Ok(None) => Ok(Err(format!(
                "secret version {} of provider {provider} is not in this data directory's vault",
                version.get()
            ))),
            Err(error) => Ok(Err(format!(
                "secret version {} of provider {provider} cannot be read from the vault: {error}",
                version.get()
            ))),
        }
    }
}

/// Opens the vault with the master key the server uses (`PAYSTATE_MASTER_KEY`, else
/// `{data}/master.key`), without ever generating one.
fn open_vault(store: Arc<SledStore>, data_dir: &Path) -> anyhow::Result<SecretVault> {
    let from_env = std::env::var(MASTER_KEY_ENV)
        .ok()
        .map(Zeroizing::new)
        .filter(|value| !value.trim().is_empty());
    let key_file = data_dir.join(MASTER_KEY_FILE);
    if from_env.is_none() && !key_file.is_file() {
        anyhow::bail!(
            "cannot re-verify deliveries: no master key ({MASTER_KEY_ENV} is not set and {} does \
             not exist); set it, or pass --chain-only",
            key_file.display()
        );
    }
    let (master_key, _) = MasterKey::resolve(from_env.as_deref().map(String::as_str), data_dir)
        .context("reading the master key")?;
    SecretVault::open(store, master_key).context("opening the secret vault")
}
