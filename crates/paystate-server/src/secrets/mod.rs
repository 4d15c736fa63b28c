//! Secrets at rest: the master key and the vault of webhook secrets and API credentials.
//!
//! - [`MasterKey`]: 32 bytes from `PAYSTATE_MASTER_KEY` (hex or base64) or a generated
//!   `{data}/master.key` (mode 0600).
//! - [`SecretVault`]: each secret sealed with XChaCha20-Poly1305 (random nonce per record, the
//!   provider, version and kind bound as associated data) and kept in the store's side trees,
//!   never in the log or an export. Webhook secret versions are write-once and kept forever, so
//!   an audit can re-verify any stored delivery.
//!
//! Every secret-bearing type prints `***` in `Debug` and has no `Display`.

mod error;
mod master_key;
mod sealed;
mod vault;

pub use error::{MasterKeyError, VaultError};
pub use master_key::{MasterKey, MasterKeySource, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use vault::{SecretVault, VAULT_NAMESPACE};
