//! What can go wrong when loading the master key or opening sealed secrets.

use paystate_store::StoreError;
use std::path::PathBuf;

/// Why a master key could not be obtained. Never repeats the key material it was given.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The text is neither 64 hex digits nor standard base64 of exactly 32 bytes.
    #[error("{origin}: a master key must be 32 bytes written as 64 hex digits or as standard base64 (44 characters)")]
    Malformed { origin: String },
    /// The store holds secrets sealed with a master key, and no key is given: a new one would
    /// not open them.
    #[error("the store holds secrets sealed with a master key, but PAYSTATE_MASTER_KEY is not set and {path} does not exist; restore that file from a backup (or set PAYSTATE_MASTER_KEY to the key): a new key would not open the stored secrets")]
    Missing { path: PathBuf },
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why the vault could not store or return a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The records were sealed under another master key. Nothing was decrypted.
    #[error("the master key does not match the key the stored secrets were sealed with; use the original key (PAYSTATE_MASTER_KEY, or the master.key file of the data directory)")]
    WrongMasterKey,
    /// The record has the right key id but fails authentication: it was changed on disk or
    /// copied to another slot (provider, version or kind).
    #[error("the sealed {kind} of provider {provider} ({label}) fails authentication: it was altered or moved")]
    Tampered {
        kind: &'static str,
        provider: String,
        /// The secret version, or the credentials' fingerprint.
        label: String,
    },
    /// The record is shorter than its header or has an unknown format byte.
    #[error("the sealed {kind} of provider {provider} is not a vault record ({reason})")]
    Malformed {
        kind: &'static str,
        provider: String,
        reason: &'static str,
    },
    /// A different secret is already stored under this version; versions are write-once.
    #[error("provider {provider} already has a different webhook secret version {version}")]
    VersionTaken { provider: String, version: u32 },
    /// The record decrypted, but its content is not what this kind of secret holds.
    #[error("the sealed {kind} of provider {provider} has unreadable content")]
    Undecodable {
        kind: &'static str,
        provider: String,
    },
    /// The store refused the read or write.
    #[error("secret storage failed: {0}")]
    Store(#[from] StoreError),
}
