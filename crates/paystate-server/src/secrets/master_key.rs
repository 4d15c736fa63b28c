//! The 32-byte key every vault record is sealed under.
//!
//! It comes from `PAYSTATE_MASTER_KEY` (64 hex digits, or standard padded base64 of 32 bytes)
//! when set, otherwise from `{data}/master.key`, which is generated on first start with mode 0600
//! and holds the key as 64 hex digits and a newline.

use super::error::MasterKeyError;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable that carries the master key.
pub const MASTER_KEY_ENV: &str = "PAYSTATE_MASTER_KEY";

/// The file name of the generated master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The vault's root key. `Debug` prints `***`; there is no `Display`; the bytes are wiped on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

/// Where the master key in use came from, for the start-up log line (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// From `PAYSTATE_MASTER_KEY`.
    Environment,
    /// Read from an existing key file.
    File(PathBuf),
    /// Generated now and written to this file.
    Generated(PathBuf),
}

impl MasterKey {
    /// A key from raw bytes (tests and callers that manage keys themselves).
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    /// Parses 64 hex digits or standard padded base64 of 32 bytes; surrounding whitespace is
    /// ignored. `origin` names where the text came from, for the error message.
    pub fn parse(text: &str, origin: &str) -> Result<MasterKey, MasterKeyError> {
        let text = text.trim();
        let malformed = || MasterKeyError::Malformed {
            origin: origin.to_string(),
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(text, bytes.as_mut()).map_err(|_| malformed())?;
            return Ok(MasterKey(bytes));
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| malformed())?,
        );
        if decoded.len() != 32 {
            return Err(malformed());
        }
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey(bytes))
    }

    /// The key from `env_value` when given (the value of `PAYSTATE_MASTER_KEY`), otherwise from
    /// `{data_dir}/master.key`, generating that file on first start.
    pub fn resolve(
        env_value: Option<&str>,
        data_dir: &Path,
    ) -> Result<(MasterKey, MasterKeySource), MasterKeyError> {
        match env_value {
            Some(value) => Ok((
                MasterKey::parse(value, MASTER_KEY_ENV)?,
                MasterKeySource::Environment,
            )),
            None => MasterKey::load_or_generate(data_dir),
        }
    }

    /// [`MasterKey::resolve`] with the value of `PAYSTATE_MASTER_KEY` from the process
    /// environment (an empty value counts as unset).
    pub fn from_environment(
        data_dir: &Path,
    ) -> Result<(MasterKey, MasterKeySource), MasterKeyError> {
        let env_value = std::env::var(MASTER_KEY_ENV)
            .ok()
            .map(Zeroizing::new)
            .filter(|value| !value.trim().is_empty());
        MasterKey::resolve(env_value.as_deref().map(String::as_str), data_dir)
    }

    /// Checks `PAYSTATE_MASTER_KEY` when it is set, without using it: a start-up can refuse a
    /// malformed key before it writes anything into the data directory.
    pub fn check_environment() -> Result<(), MasterKeyError> {
        let env_value = std::env::var(MASTER_KEY_ENV)
            .ok()
            .map(Zeroizing::new)
            .filter(|value| !value.trim().is_empty());
        match env_value {
            Some(value) => MasterKey::parse(&value, MASTER_KEY_ENV).map(drop),
            None => Ok(()),
        }
    }

    /// Fails with [`MasterKeyError::Missing`] unless a key is given: `PAYSTATE_MASTER_KEY` is
    /// set, or `{data_dir}/master.key` exists.
    pub fn require_existing(data_dir: &Path) -> Result<(), MasterKeyError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let from_env = std::env::var(MASTER_KEY_ENV)
            .ok()
            .map(Zeroizing::new)
            .is_some_and(|value| !value.trim().is_empty());
        if from_env || path.exists() {
            Ok(())
        } else {
            Err(MasterKeyError::Missing { path })
        }
    }

    /// Reads `{data_dir}/master.key`, or creates it (mode 0600, never overwriting) with a fresh
    /// key when it does not exist.
    pub fn load_or_generate(
        data_dir: &Path,
    ) -> Result<(MasterKey, MasterKeySource), MasterKeyError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let io = |source| MasterKeyError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                warn_if_readable_by_others(&path);
                let key = MasterKey::parse(&text, &path.display().to_string())?;
                return Ok((key, MasterKeySource::File(path)));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(error)),
        }
        paystate_store::private_dir::create_all(data_dir).map_err(io)?;
        let key = MasterKey::generate();
        match write_new_private_file(&path, &key) {
            Ok(()) => Ok((key, MasterKeySource::Generated(path))),
            // Another process created it between our read and our create: use theirs.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
                let key = MasterKey::parse(&text, &path.display().to_string())?;
                Ok((key, MasterKeySource::File(path)))
            }
            Err(error) => Err(io(error)),
        }
    }

    /// A short, non-reversible tag of this key, stored in every record so that a record sealed
    /// under another key is reported as "wrong master key" rather than "tampered".
    pub(crate) fn key_id(&self) -> [u8; 8] {
        let digest = self.derive(b"paystate vault key id v1");
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        id
    }

    /// The AEAD key, derived so that the master key itself never touches a cipher directly and
    /// the key id reveals nothing about it.
    pub(crate) fn sealing_key(&self) -> Zeroizing<[u8; 32]> {
        self.derive(b"paystate vault sealing key v1")
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn write_new_private_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut text = Zeroizing::new(hex::encode(key.0.as_ref()));
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    // Make the new directory entry durable too, so a crash cannot lose the key while keeping
    // records sealed under it.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the master key file is readable by other users; restrict it with chmod 600"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parses_hex_and_base64_to_the_same_key() {
        let from_hex = MasterKey::parse(HEX, "test").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(HEX).unwrap());
        let from_b64 = MasterKey::parse(&format!("  {b64}\n"), "test").unwrap();
        assert_eq!(from_hex.key_id(), from_b64.key_id());
        assert_eq!(*from_hex.0, core::array::from_fn(|i| i as u8));
    }

    #[test]
    fn rejects_wrong_lengths_and_alphabets_without_echoing_input() {
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        for bad in [
            "",
            "abc",
            &HEX[..62],
            &format!("{HEX}00"),
            &short,
            "not base64 at all!!",
        ] {
            let error = MasterKey::parse(bad, "PAYSTATE_MASTER_KEY").unwrap_err();
            let message = error.to_string();
            assert!(message.contains("PAYSTATE_MASTER_KEY"), "{message}");
            if bad.len() > 3 {
                assert!(!message.contains(bad), "{message}");
            }
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = MasterKey::parse(HEX, "test").unwrap();
        assert_eq!(format!("{key:?}"), "***");
        assert_eq!(format!("{:?}", Some(key)), "Some(***)");
    }

    #[test]
    fn generates_a_private_file_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = MasterKey::load_or_generate(dir.path()).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        assert_eq!(source, MasterKeySource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, source) = MasterKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(source, MasterKeySource::File(path));
        assert_eq!(first.key_id(), second.key_id());
    }

    #[test]
    fn the_environment_value_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (from_file, _) = MasterKey::load_or_generate(dir.path()).unwrap();
        let (from_env, source) = MasterKey::resolve(Some(HEX), dir.path()).unwrap();
        assert_eq!(source, MasterKeySource::Environment);
        assert_ne!(from_env.key_id(), from_file.key_id());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            MasterKey::generate().key_id(),
            MasterKey::generate().key_id()
        );
    }
}
