//! Identifiers that are text with a rule: provider ids, MSNs, references, PSP references,
//! registration ids, fingerprints, URLs and webhook event types.

use super::error::{IdError, TextRule};

/// Declares a string newtype whose only constructor checks `$rule`, with `as_str`, `Display`,
/// `FromStr`, `TryFrom<&str>`, `TryFrom<String>` and serde that validates on deserialize.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        text_id!($(#[$doc])* $name, $rule, |_| Ok(()));
    };
    ($(#[$doc:meta])* $name:ident, $rule:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The rule every value of this type satisfies.
            pub(crate) const RULE: TextRule = $rule;

            fn check(input: &str) -> Result<(), IdError> {
                Self::RULE.check(input)?;
                let extra: fn(&str) -> Result<(), IdError> = $extra;
                extra(input)
            }

            /// Checks `input` against the rule and wraps it.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                Self::check(input)?;
                Ok(Self(input.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(input: String) -> Result<Self, IdError> {
                Self::check(&input)?;
                Ok(Self(input))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

text_id!(
    /// The operator's name for a provider, e.g. `vipps-test`.
    ///
    /// Rule: 1 to 63 characters of `[a-z0-9_-]`, starting with `[a-z0-9]`. It appears in the
    /// webhook URL path and in stream names, so it is lowercase (URLs and humans disagree about
    /// case) and holds no `.`, `/` or `:` (the stream-name separators).
    ProviderId,
    TextRule {
        field: "provider_id",
        rule: "1 to 63 characters of [a-z0-9_-], starting with a letter or digit",
        min: 1,
        max: 63,
        allowed: |index, c| is_lower_alnum(c) || (index > 0 && (c == '-' || c == '_')),
    }
);

text_id!(
    /// A Vipps MobilePay merchant serial number: 4 to 10 ASCII digits, leading zeros kept.
    Msn,
    TextRule {
        field: "msn",
        rule: "4 to 10 digits",
        min: 4,
        max: 10,
        allowed: |_, c| c.is_ascii_digit(),
    }
);

text_id!(
    /// The merchant's payment reference: `[a-zA-Z0-9-]{8,64}` (VIPPS.md §4).
    Reference,
    TextRule {
        field: "reference",
        rule: "8 to 64 characters of [a-zA-Z0-9-]",
        min: 8,
        max: 64,
        allowed: |_, c| c.is_ascii_alphanumeric() || c == '-',
    }
);

text_id!(
    /// The provider's id of one payment operation (create, capture, refund, cancel).
    ///
    /// Rule: 1 to 128 printable ASCII characters without spaces. Vipps documents no format
    /// (UUIDs and digit strings are seen), so the rule only keeps it bounded and printable.
    PspReference,
    TextRule {
        field: "psp_reference",
        rule: "1 to 128 printable ASCII characters without spaces",
        min: 1,
        max: 128,
        allowed: |_, c| c.is_ascii_graphic(),
    }
);

text_id!(
    /// The id Vipps gives a webhook registration (a UUID in practice; it also arrives as the
    /// `Webhook-Id` header of each delivery).
    ///
    /// Rule: 1 to 128 characters of `[A-Za-z0-9._-]`: the Webhooks API promises no format, so
    /// the rule is loose but keeps the id safe in URLs, logs and keys.
    RegistrationId,
    TextRule {
        field: "registration_id",
        rule: "1 to 128 characters of [A-Za-z0-9._-]",
        min: 1,
        max: 128,
        allowed: |_, c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    }
);

text_id!(
    /// A non-reversible fingerprint of a secret or a credential set, e.g. `sha256:3f2a…`.
    ///
    /// Events carry fingerprints, never secrets. The domain does not compute them (it has no
    /// hash function); whoever holds the secret does. Rule: 1 to 128 characters of
    /// `[A-Za-z0-9:+/=_-]` (hex, base64 and a scheme prefix all fit).
    Fingerprint,
    TextRule {
        field: "fingerprint",
        rule: "1 to 128 characters of [A-Za-z0-9:+/=_-]",
        min: 1,
        max: 128,
        allowed: |_, c| c.is_ascii_alphanumeric() || matches!(c, ':' | '+' | '/' | '=' | '_' | '-'),
    }
);

text_id!(
    /// A webhook event type as registered at Vipps, e.g. `epayments.payment.captured.v1`.
    ///
    /// Rule: 1 to 128 characters of `[a-z0-9._-]`.
    WebhookEventType,
    TextRule {
        field: "event_type",
        rule: "1 to 128 characters of [a-z0-9._-]",
        min: 1,
        max: 128,
        allowed: |_, c| is_lower_alnum(c) || matches!(c, '.' | '_' | '-'),
    }
);

/// The eight ePayment webhook event types (VIPPS.md §4), the default subscription.
pub const EPAYMENT_EVENT_TYPES: [&str; 8] = [
    "epayments.payment.created.v1",
    "epayments.payment.aborted.v1",
    "epayments.payment.expired.v1",
    "epayments.payment.cancelled.v1",
    "epayments.payment.captured.v1",
    "epayments.payment.refunded.v1",
    "epayments.payment.authorized.v1",
    "epayments.payment.terminated.v1",
];

impl WebhookEventType {
    /// All eight ePayment event types, in the order of VIPPS.md §4.
    pub fn all_epayment() -> Vec<WebhookEventType> {
        EPAYMENT_EVENT_TYPES
            .iter()
            .map(|name| WebhookEventType((*name).to_owned()))
            .collect()
    }
}

text_id!(
    /// An absolute `http://` or `https://` URL: a public base URL or a registered webhook URL.
    ///
    /// Rule: 1 to 2048 printable ASCII characters without spaces, starting with `http://` or
    /// `https://` followed by a host. The domain compares URLs as registered (byte for byte), as
    /// Vipps signs them; it does not normalise them.
    HttpUrl,
    TextRule {
        field: "url",
        rule: "an http:// or https:// URL of at most 2048 printable ASCII characters",
        min: 1,
        max: 2048,
        allowed: |_, c| c.is_ascii_graphic(),
    },
    check_scheme_and_host
);

fn check_scheme_and_host(input: &str) -> Result<(), IdError> {
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"));
    let host_present = rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.starts_with('?')
            && !rest.starts_with('#')
    });
    if host_present {
        Ok(())
    } else {
        Err(IdError::Range {
            field: HttpUrl::RULE.field,
            rule: "an http:// or https:// URL with a host",
        })
    }
}

impl HttpUrl {
    /// The URL a provider's webhooks are registered at: `{base}/webhooks/vipps/{provider_id}`,
    /// with one trailing `/` of the base dropped so the path never holds `//`.
    ///
    /// Fails if the base has a query or a fragment (the path could not be appended), or if the
    /// result would be longer than the URL rule allows.
    pub fn webhook_url(&self, provider_id: &ProviderId) -> Result<HttpUrl, IdError> {
        if let Some((index, found)) = self
            .0
            .chars()
            .enumerate()
            .find(|(_, c)| matches!(c, '?' | '#'))
        {
            return Err(IdError::Character {
                field: "public_url",
                rule: "a base URL without query or fragment",
                index,
                found,
            });
        }
        let base = self.0.strip_suffix('/').unwrap_or(&self.0);
        HttpUrl::parse(&format!("{base}/webhooks/vipps/{provider_id}"))
    }
}
