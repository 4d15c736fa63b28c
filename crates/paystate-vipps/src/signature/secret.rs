//! The webhook secret Vipps returns once, when a webhook is registered.

use std::sync::{Arc, OnceLock};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// HMAC-SHA256, the MAC Vipps signs deliveries with.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Domain-separation prefix for [`WebhookSecret::fingerprint`], so the fingerprint can never be
/// confused with (or replayed as) any other SHA-256 the system computes over the secret.
const FINGERPRINT_DOMAIN: &[u8] = b"paystate/vipps/webhook-secret-fingerprint/v1\0";

/// Number of hex characters kept in a fingerprint: 64 bits, enough to tell secrets apart in
/// logs and records, far too little to help anyone guess the secret.
const FINGERPRINT_HEX_LEN: usize = 16;

/// A Vipps webhook secret.
///
/// Vipps's secret looks like base64 (88 characters) but it is used as-is: the HMAC key is the
/// secret string's UTF-8 bytes. The value never appears in `Debug` output and the type has no
/// `Display`; [`WebhookSecret::expose`] is the one deliberate way to read it.
///
/// Cloning is cheap (the secret is shared), and the HMAC keyed with it is prepared once per
/// secret: a key longer than a SHA-256 block (Vipps's are) is itself hashed before use, which
/// would otherwise be repeated for every delivery.
#[derive(Clone)]
pub struct WebhookSecret(Arc<Shared>);

struct Shared {
    text: String,
    /// The MAC state after the key, cloned for each message.
    keyed: OnceLock<HmacSha256>,
}

impl WebhookSecret {
    /// Wraps a secret exactly as Vipps returned it (no trimming, no decoding).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::new(Shared {
            text: secret.into(),
            keyed: OnceLock::new(),
        }))
    }

    /// The secret string, for storing it encrypted or handing it to a signer.
    pub fn expose(&self) -> &str {
        &self.0.text
    }

    /// The HMAC key: the secret's UTF-8 bytes, never base64-decoded.
    pub(crate) fn hmac_key(&self) -> &[u8] {
        self.0.text.as_bytes()
    }

    /// A MAC keyed with [`WebhookSecret::hmac_key`], ready for a message.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.0
            .keyed
            .get_or_init(|| {
                #[allow(clippy::expect_used)]
                HmacSha256::new_from_slice(self.hmac_key())
                    .expect("HMAC accepts keys of any length")
            })
            .clone()
    }

    /// A short, non-reversible identifier of this secret (16 hex characters), for logs and
    /// records that must say *which* secret without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_DOMAIN);
        hasher.update(self.0.text.as_bytes());
        let mut hex = hex::encode(hasher.finalize());
        hex.truncate(FINGERPRINT_HEX_LEN);
        hex
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Equality in constant time, so comparing secrets leaks nothing through timing.
impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.hmac_key().ct_eq(other.hmac_key()).into()
    }
}

impl Eq for WebhookSecret {}

impl From<String> for WebhookSecret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

/// Deserializes from a plain JSON string (as in the Webhooks API's 201 answer). There is no
/// `Serialize`: a secret leaves the process only through [`WebhookSecret::expose`].
impl<'de> serde::Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";

    #[test]
    fn debug_hides_the_secret() {
        let secret = WebhookSecret::new(SECRET);
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
    }

    #[test]
    fn expose_returns_the_secret_unchanged() {
        assert_eq!(WebhookSecret::new(SECRET).expose(), SECRET);
        assert_eq!(WebhookSecret::new(SECRET).hmac_key(), SECRET.as_bytes());
    }

    #[test]
    fn fingerprint_is_short_stable_and_distinct() {
        let a = WebhookSecret::new(SECRET);
        let b = WebhookSecret::new(format!("{SECRET}x"));
        assert_eq!(a.fingerprint().len(), 16);
        assert!(a.fingerprint().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.fingerprint(), WebhookSecret::new(SECRET).fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!SECRET.contains(&a.fingerprint()));
    }

    #[test]
    fn fingerprint_is_domain_separated_from_a_plain_hash() {
        let plain = hex::encode(Sha256::digest(SECRET.as_bytes()));
        assert!(!plain.starts_with(&WebhookSecret::new(SECRET).fingerprint()));
    }

    #[test]
    fn equality_compares_the_whole_value() {
        assert_eq!(WebhookSecret::new("abc"), WebhookSecret::new("abc"));
        assert_ne!(WebhookSecret::new("abc"), WebhookSecret::new("abd"));
        assert_ne!(WebhookSecret::new("abc"), WebhookSecret::new("abcd"));
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let secret: WebhookSecret = serde_json::from_str(&format!("\"{SECRET}\"")).unwrap();
        assert_eq!(secret.expose(), SECRET);
    }
}
