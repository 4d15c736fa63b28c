//! The webhook URL as registered at Vipps: the source of `host` and `pathAndQuery` for signing.

use std::fmt;
use std::str::FromStr;

/// Why a string is not usable as a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("not a valid URL: {0}")]
    Invalid(#[from] url::ParseError),
    /// Vipps delivers over HTTP(S) only.
    #[error("unsupported scheme {0:?}: only https (or http for local testing) is allowed")]
    UnsupportedScheme(String),
    /// A URL such as `https:///path` has nothing to put in the signed `host`.
    #[error("the URL has no host")]
    MissingHost,
    /// `user:password@` would be stored and shown wherever the URL is; refuse it.
    #[error("the URL must not carry a user name or password")]
    Credentials,
    /// A fragment is never sent over HTTP, so it cannot be part of what Vipps signs.
    #[error("the URL must not have a #fragment")]
    Fragment,
}

/// A webhook URL as registered at Vipps.
///
/// Vipps signs the `host` and `pathAndQuery` of the URL **as registered**, so a receiver
/// behind a reverse proxy must take them from here, never from the request it received. The URL
/// is normalized once at parse time (WHATWG rules: lower-case host, default port dropped, empty
/// path becomes `/`); register [`RegisteredUrl::as_str`] so both sides sign the same text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegisteredUrl {
    url: url::Url,
    host_for_signing: String,
    path_and_query: String,
}

impl RegisteredUrl {
    /// Parses and checks a webhook URL.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let url = url::Url::parse(input)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(UrlError::UnsupportedScheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(UrlError::MissingHost)?;
        // `Url::port` is `None` when the port is absent *or* equals the scheme's default, which is
        // exactly Vipps's rule: `:port` is signed only when it is not the default.
        let host_for_signing = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(Self {
            url,
            host_for_signing,
            path_and_query,
        })
    }

    /// The signed `host`: the host, plus `:port` only when the port is not the scheme default.
    pub fn host_for_signing(&self) -> &str {
        &self.host_for_signing
    }

    /// The signed `pathAndQuery`: the path, plus `?query` when there is one. Not the full URL.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The normalized URL, the form to register at Vipps.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Whether this URL uses HTTPS, which Vipps requires outside local testing.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
}

impl FromStr for RegisteredUrl {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl fmt::Display for RegisteredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegisteredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RegisteredUrl")
            .field(&self.as_str())
            .finish()
    }
}

impl serde::Serialize for RegisteredUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RegisteredUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, host: &str, path_and_query: &str) {
        let url = RegisteredUrl::parse(input).unwrap();
        assert_eq!(url.host_for_signing(), host, "host of {input}");
        assert_eq!(
            url.path_and_query(),
            path_and_query,
            "pathAndQuery of {input}"
        );
    }

    #[test]
    fn host_and_path_follow_the_default_port_rule() {
        check(
            "https://pay.example.no/hooks/vipps/v1?tenant=acme-42",
            "pay.example.no",
            "/hooks/vipps/v1?tenant=acme-42",
        );
        check(
            "https://pay.example.no:443/hooks",
            "pay.example.no",
            "/hooks",
        );
        check("http://pay.example.no:80/hooks", "pay.example.no", "/hooks");
        check(
            "https://pay.example.no:8443/hooks/vipps/v1",
            "pay.example.no:8443",
            "/hooks/vipps/v1",
        );
        check("http://127.0.0.1:8080/h", "127.0.0.1:8080", "/h");
        check("https://pay.example.no:80/h", "pay.example.no:80", "/h");
        check("http://[::1]:9000/h?a=1&b=2", "[::1]:9000", "/h?a=1&b=2");
    }

    #[test]
    fn normalizes_case_and_empty_path() {
        check("https://PAY.Example.NO", "pay.example.no", "/");
        check("https://pay.example.no/Hooks/", "pay.example.no", "/Hooks/");
        assert_eq!(
            RegisteredUrl::parse("https://PAY.example.no")
                .unwrap()
                .as_str(),
            "https://pay.example.no/"
        );
    }

    #[test]
    fn refuses_what_cannot_be_signed() {
        assert!(matches!(
            RegisteredUrl::parse("not a url"),
            Err(UrlError::Invalid(_))
        ));
        assert_eq!(
            RegisteredUrl::parse("ftp://x.no/a"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(
            RegisteredUrl::parse("https://u:p@x.no/a"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            RegisteredUrl::parse("https://x.no/a#frag"),
            Err(UrlError::Fragment)
        );
        assert!(RegisteredUrl::parse("mailto:a@b.no").is_err());
    }

    #[test]
    fn round_trips_through_serde_and_from_str() {
        let url: RegisteredUrl = "https://pay.example.no:8443/h?x=1".parse().unwrap();
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, "\"https://pay.example.no:8443/h?x=1\"");
        assert_eq!(serde_json::from_str::<RegisteredUrl>(&json).unwrap(), url);
        assert!(serde_json::from_str::<RegisteredUrl>("\"ftp://x\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errors_without_panicking(input in "\\PC{0,80}") {
            if let Ok(url) = RegisteredUrl::parse(&input) {
                proptest::prop_assert!(url.path_and_query().starts_with('/'));
                proptest::prop_assert!(!url.host_for_signing().is_empty());
            }
        }

        #[test]
        fn http_urls_keep_a_non_default_port_only(host in "[a-z]{1,10}\\.no", port in proptest::prelude::any::<u16>(), path in "(/[a-z0-9]{0,5}){0,3}") {
            let url = RegisteredUrl::parse(&format!("https://{host}:{port}{path}")).unwrap();
            let expected = if port == 443 { host.clone() } else { format!("{host}:{port}") };
            proptest::prop_assert_eq!(url.host_for_signing(), expected);
        }
    }
}
