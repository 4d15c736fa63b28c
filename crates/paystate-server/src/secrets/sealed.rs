//! The sealed record: one secret encrypted with XChaCha20-Poly1305 and bound to its slot.
//!
//! Layout (format 1): `0x01 | key id (8) | nonce (24) | ciphertext and tag`. The nonce is random
//! per record (192 bits, so random nonces never collide in practice). The associated data is the
//! format, the key id and the slot (kind, provider, version), length-prefixed, so a record copied
//! to another provider's or version's slot fails authentication instead of decrypting.

use super::error::VaultError;
use super::master_key::MasterKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const FORMAT: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;

/// What a record holds; part of its associated data and of its storage key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretKind {
    WebhookSecret,
    Credentials,
    /// A known plaintext sealed on first open, so a wrong master key is caught at start.
    KeyCheck,
}

impl SecretKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SecretKind::WebhookSecret => "webhook_secret",
            SecretKind::Credentials => "credentials",
            SecretKind::KeyCheck => "key_check",
        }
    }
}

/// Where a record lives: its kind, the provider it belongs to and its label (a secret
/// version, zero-padded so that a prefix scan lists versions in order, or a fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot<'a> {
    pub kind: SecretKind,
    pub provider: &'a str,
    pub label: String,
}

impl Slot<'_> {
    /// The side-store key: `kind/provider/label`.
    pub(crate) fn storage_key(&self) -> Vec<u8> {
        format!("{}/{}/{}", self.kind.name(), self.provider, self.label).into_bytes()
    }

    fn associated_data(&self, key_id: &[u8; KEY_ID_LEN]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(b"paystate-vault");
        aad.push(FORMAT);
        aad.extend_from_slice(key_id);
        for field in [
            self.kind.name().as_bytes(),
            self.provider.as_bytes(),
            self.label.as_bytes(),
        ] {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field);
        }
        aad
    }

    fn tampered(&self) -> VaultError {
        VaultError::Tampered {
            kind: self.kind.name(),
            provider: self.provider.to_string(),
            label: self.label.clone(),
        }
    }

    fn malformed(&self, reason: &'static str) -> VaultError {
        VaultError::Malformed {
            kind: self.kind.name(),
            provider: self.provider.to_string(),
            reason,
        }
    }
}

/// Seals and opens records under one master key.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    key_id: [u8; KEY_ID_LEN],
}

impl Sealer {
    pub(crate) fn new(master_key: &MasterKey) -> Sealer {
        let sealing_key = master_key.sealing_key();
        Sealer {
            cipher: XChaCha20Poly1305::new(sealing_key.as_ref().into()),
            key_id: master_key.key_id(),
        }
    }

    pub(crate) fn seal(&self, slot: &Slot<'_>, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = slot.associated_data(&self.key_id);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // Encryption fails only for messages beyond the cipher's length limit (256 GiB).
            .map_err(|_| slot.malformed("secret too large to seal"))?;
        let mut record = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        record.push(FORMAT);
        record.extend_from_slice(&self.key_id);
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&ciphertext);
        Ok(record)
    }

    pub(crate) fn open(
        &self,
        slot: &Slot<'_>,
        record: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if record.len() < HEADER_LEN + TAG_LEN {
            return Err(slot.malformed("shorter than a sealed record"));
        }
        let (header, ciphertext) = record.split_at(HEADER_LEN);
        let (format, rest) = header.split_at(1);
        let (key_id, nonce) = rest.split_at(KEY_ID_LEN);
        if format != [FORMAT] {
            return Err(slot.malformed("unknown record format"));
        }
        if key_id != self.key_id {
            return Err(VaultError::WrongMasterKey);
        }
        let aad = slot.associated_data(&self.key_id);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| slot.tampered())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(provider: &str, version: u64) -> Slot<'_> {
        Slot {
            kind: SecretKind::WebhookSecret,
            provider,
            label: version.to_string(),
        }
    }

    #[test]
    fn round_trips_and_uses_a_fresh_nonce_each_time() {
        let sealer = Sealer::new(&MasterKey::generate());
        let first = sealer.seal(&slot("p", 1), b"hello").unwrap();
        let second = sealer.seal(&slot("p", 1), b"hello").unwrap();
        assert_ne!(first, second);
        assert!(!first.windows(5).any(|w| w == b"hello"));
        assert_eq!(&*sealer.open(&slot("p", 1), &first).unwrap(), b"hello");
        assert_eq!(&*sealer.open(&slot("p", 1), &second).unwrap(), b"hello");
    }

    #[test]
    fn a_record_moved_to_another_slot_fails() {
        let sealer = Sealer::new(&MasterKey::generate());
        let record = sealer.seal(&slot("p", 1), b"hello").unwrap();
        for other in [slot("q", 1), slot("p", 2)] {
            assert!(matches!(
                sealer.open(&other, &record),
                Err(VaultError::Tampered { .. })
            ));
        }
        let as_credentials = Slot {
            kind: SecretKind::Credentials,
            ..slot("p", 1)
        };
        assert!(matches!(
            sealer.open(&as_credentials, &record),
            Err(VaultError::Tampered { .. })
        ));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let sealer = Sealer::new(&MasterKey::generate());
        let record = sealer.seal(&slot("p", 1), b"hello").unwrap();
        for index in 0..record.len() {
            let mut tampered = record.clone();
            tampered[index] ^= 0x01;
            let error = sealer.open(&slot("p", 1), &tampered).unwrap_err();
            let expected = match index {
                0 => matches!(error, VaultError::Malformed { .. }),
                1..=8 => matches!(error, VaultError::WrongMasterKey),
                _ => matches!(error, VaultError::Tampered { .. }),
            };
            assert!(expected, "byte {index}: {error:?}");
        }
    }

    #[test]
    fn truncated_records_are_malformed_not_panics() {
        let sealer = Sealer::new(&MasterKey::generate());
        let record = sealer.seal(&slot("p", 1), b"").unwrap();
        for len in 0..record.len() {
            assert!(sealer.open(&slot("p", 1), &record[..len]).is_err());
        }
    }

    #[test]
    fn another_key_is_reported_as_the_wrong_key() {
        let record = Sealer::new(&MasterKey::generate())
            .seal(&slot("p", 1), b"hello")
            .unwrap();
        let other = Sealer::new(&MasterKey::generate());
        assert!(matches!(
            other.open(&slot("p", 1), &record),
            Err(VaultError::WrongMasterKey)
        ));
    }
}
