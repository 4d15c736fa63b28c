//! Secrets at rest: the master key and the vault of webhook secrets and API credentials.
//!
//! - [`MasterKey`]: 32 bytes from `PAYSTATE_MASTER_KEY` (hex or base64) or a generated
//!   `{data}/master.key` (mode 0600).
//! - [`SecretVault`]: each secret sealed with XChaCha20-Poly1305 (random nonce per record, the
//!   provider, kind and version or fingerprint bound as associated data) and kept in the store's
//!   side trees, never in the log or an export. Webhook secret versions are write-once and kept
//!   forever, so an audit can re-verify any stored delivery; every credential set is kept under
//!   its fingerprint, so whoever acts on the log uses the credentials the log names. Webhook
//!   secrets read on every delivery are listed again only after a side write to the store
//!   (`listed`), and opened once per sealed record (`opened`): a changed record is opened
//!   again.
//!
//! Every secret-bearing type prints `***` in `Debug` and has no `Display`.
//!
//! ```
//! use std::sync::Arc;
//! use paystate_domain::{ProviderId, SecretVersion};
//! use paystate_server::secrets::{MasterKey, SecretVault};
//! use paystate_store::{EventStore, MemoryStore};
//! use paystate_vipps::WebhookSecret;
//!
//! let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
//! let vault = SecretVault::open(store, MasterKey::generate())?;
//! let provider = ProviderId::parse("vipps-test")?;
//! vault.put_webhook_secret(&provider, SecretVersion::FIRST, &WebhookSecret::new("s3cret"))?;
//! let secret = vault.webhook_secret(&provider, SecretVersion::FIRST)?.expect("stored");
//! assert_eq!(secret.expose(), "s3cret");
//! assert_eq!(format!("{secret:?}"), "***");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod listed;
mod master_key;
mod opened;
mod sealed;
mod vault;

pub use error::{MasterKeyError, VaultError};
pub use master_key::{MasterKey, MasterKeySource, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use vault::{SecretVault, VAULT_NAMESPACE};
