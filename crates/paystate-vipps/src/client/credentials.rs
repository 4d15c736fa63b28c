//! API credentials and the system identification Vipps asks integrators to send.

use std::fmt;

use paystate_domain::Fingerprint;
use sha2::{Digest, Sha256};

/// A secret API value (client secret, subscription key, access token): `Debug` prints `***`,
/// there is no `Display`, and [`ApiSecret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSecret(String);

impl ApiSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for putting it in a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for ApiSecret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Domain-separation prefix of [`Credentials::fingerprint`].
const FINGERPRINT_DOMAIN: &[u8] = b"paystate/vipps/credentials-fingerprint/v1\0";

/// The credentials of one merchant sales unit, from the Vipps MobilePay portal.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `client_id`: an identifier, not a secret.
    pub client_id: String,
    pub client_secret: ApiSecret,
    /// The `Ocp-Apim-Subscription-Key`.
    pub subscription_key: ApiSecret,
}

impl Credentials {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        subscription_key: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: ApiSecret::new(client_secret),
            subscription_key: ApiSecret::new(subscription_key),
        }
    }

    /// A non-reversible fingerprint of the whole credential set (`sha256:` and 32 hex digits),
    /// so events can record that credentials changed without recording them.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_DOMAIN);
        for part in [
            &self.client_id,
            &self.client_secret.0,
            &self.subscription_key.0,
        ] {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let mut hex = hex::encode(hasher.finalize());
        hex.truncate(32);
        #[allow(clippy::expect_used)]
        Fingerprint::parse(&format!("sha256:{hex}"))
            .expect("`sha256:` and 32 hex digits satisfy the fingerprint rule")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("subscription_key", &self.subscription_key)
            .finish()
    }
}

/// The most characters Vipps accepts in each `Vipps-System-*` header.
pub const SYSTEM_HEADER_MAX_CHARS: usize = 30;

/// The values of the four `Vipps-System-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    name: String,
    version: String,
    plugin_name: String,
    plugin_version: String,
}

impl SystemInfo {
    /// Values are cut to 30 characters (Vipps's limit) and to visible ASCII, which is all an
    /// HTTP header can carry safely.
    pub fn new(name: &str, version: &str, plugin_name: &str, plugin_version: &str) -> Self {
        Self {
            name: header_text(name),
            version: header_text(version),
            plugin_name: header_text(plugin_name),
            plugin_version: header_text(plugin_version),
        }
    }

    /// `(header name, value)` for the four headers.
    pub fn headers(&self) -> [(&'static str, &str); 4] {
        [
            ("Vipps-System-Name", &self.name),
            ("Vipps-System-Version", &self.version),
            ("Vipps-System-Plugin-Name", &self.plugin_name),
            ("Vipps-System-Plugin-Version", &self.plugin_version),
        ]
    }
}

impl Default for SystemInfo {
    /// paystate and this crate, with the workspace version.
    fn default() -> Self {
        Self::new(
            "paystate",
            env!("CARGO_PKG_VERSION"),
            "paystate-vipps",
            env!("CARGO_PKG_VERSION"),
        )
    }
}

fn header_text(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(SYSTEM_HEADER_MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_every_secret() {
        let credentials = Credentials::new(
            "client-id-1",
            "client-secret-value",
            "subscription-key-value",
        );
        let shown = format!("{credentials:?}");
        assert!(shown.contains("client-id-1"));
        assert!(!shown.contains("client-secret-value"));
        assert!(!shown.contains("subscription-key-value"));
        assert_eq!(format!("{:?}", ApiSecret::new("x")), "***");
    }

    #[test]
    fn fingerprint_changes_with_any_part_and_hides_them() {
        let a = Credentials::new("id", "secret", "key");
        let fingerprint = a.fingerprint();
        assert!(fingerprint.as_str().starts_with("sha256:"));
        assert_eq!(fingerprint.as_str().len(), 7 + 32);
        assert_eq!(
            fingerprint,
            Credentials::new("id", "secret", "key").fingerprint()
        );
        assert_ne!(
            fingerprint,
            Credentials::new("id", "secret2", "key").fingerprint()
        );
        assert_ne!(
            fingerprint,
            Credentials::new("id", "secret", "key2").fingerprint()
        );
        assert_ne!(
            Credentials::new("ab", "c", "k").fingerprint(),
            Credentials::new("a", "bc", "k").fingerprint()
        );
    }

    #[test]
    fn system_headers_are_bounded() {
        let info = SystemInfo::new(&"n".repeat(40), "1.0\n", "plugin", "ø2");
        let headers = info.headers();
        assert_eq!(headers[0].1.len(), 30);
        assert_eq!(headers[1].1, "1.0");
        assert_eq!(headers[3].1, "2");
        for (_, value) in SystemInfo::default().headers() {
            assert!(!value.is_empty() && value.len() <= 30);
        }
        assert_eq!(
            SystemInfo::default().headers()[0],
            ("Vipps-System-Name", "paystate")
        );
    }
}
