//! Vipps webhook signing (VIPPS.md §2): the secret, the registered URL, and the signer.
//!
//! - [`secret`]: [`WebhookSecret`], the HMAC key that never prints.
//! - [`url`]: [`RegisteredUrl`], the source of the signed `host` and `pathAndQuery`.
//! - [`sign`]: the string to sign and [`sign_delivery`], used by the simulator and tests;
//!   verification ([`crate::verify`]) is its exact inverse.

pub mod secret;
pub mod sign;
pub mod url;

#[cfg(test)]
pub(crate) mod vectors;

pub use secret::WebhookSecret;
pub use sign::{
    authorization_value, content_sha256, imf_fixdate, sign_delivery, signature, string_to_sign,
    DeliveryHeaders, AUTHORIZATION_SCHEME, SIGNED_HEADERS,
};
pub use url::{RegisteredUrl, UrlError};
