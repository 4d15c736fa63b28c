//! The Vipps MobilePay adapter of paystate: everything that speaks Vipps.
//!
//! Webhook deliveries are signed with HMAC-SHA256 over `POST`, the registered URL's path and
//! query, `x-ms-date`, the registered host and the body's SHA-256 (VIPPS.md §2). A signature off
//! by one byte rejects every real payment, so signing and verification share one
//! implementation and are tested against the documented vectors.
//!
//! # Module map
//! - [`signature`]: [`WebhookSecret`] (never printed), [`RegisteredUrl`] (the signed host and
//!   `pathAndQuery`), and [`sign_delivery`] (used by the simulator and tests).
//! - [`verify`]: [`verify_delivery`] from the raw body and a case-insensitive header view, against
//!   candidate secret versions; a [`Rejection`] carries the SPEC §3.1 code and a [`Diagnosis`]
//!   (secret out of sync, Host rewritten by a proxy, body changed, clock skew, decoded secret).
//! - [`payload`]: [`EpaymentEvent`], ePayment webhook bodies parsed tolerantly with their raw
//!   bytes and identity, converted to the domain's validated fact; [`VippsEventBody`] writes
//!   Vipps's exact JSON.
//! - [`client`]: [`VippsClient`] for the access token, the Webhooks API and ePayment, with
//!   problem+json answers as [`VippsApiError`].
//!
//! Nothing here panics on input: verification and parsing are property-tested with arbitrary
//! bytes and header values.
//!
//! # Example: sign a delivery, then verify it
//! ```
//! use std::time::Duration;
//! use paystate_domain::SecretVersion;
//! use paystate_vipps::signature::{sign_delivery, RegisteredUrl, WebhookSecret};
//! use paystate_vipps::verify::{verify_delivery, DeliveryRequest, RejectionCode};
//!
//! let secret = WebhookSecret::new("4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMhbCn8vVaimKRcKmqSvy5yQY4ZDSa9ba6tU0zxeA==");
//! let url = RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42")?;
//! let body = br#"{"msn":"123456","reference":"acme-order-1001"}"#;
//! let date = "Tue, 14 Jan 2025 09:30:05 GMT";
//!
//! // The sender's side.
//! let signed = sign_delivery(&secret, &url, body, date);
//! assert_eq!(signed.x_ms_date, date);
//!
//! // The receiver's side: raw body, received headers, the URL as registered, and every
//! // accepted secret version, current first.
//! let headers = signed.pairs();
//! let request = DeliveryRequest::new(&headers, body);
//! let now = time::macros::datetime!(2025-01-14 09:30:07 UTC);
//! let version = SecretVersion::new(1)?;
//! let verified = verify_delivery(&request, &url, &[(version, &secret)], now, Duration::from_secs(300))
//!     .expect("authentic");
//! assert_eq!(verified.secret_version, version);
//! assert_eq!(verified.date_skew_seconds, -2);
//!
//! // One changed byte in transit, and the delivery is refused with a precise code.
//! let tampered = br#"{"msn":"123456","reference":"acme-order-1002"}"#;
//! let rejection = verify_delivery(&DeliveryRequest::new(&headers, tampered), &url, &[(version, &secret)], now, Duration::from_secs(300))
//!     .unwrap_err();
//! assert_eq!(rejection.code(), RejectionCode::ContentHashMismatch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod payload;
pub mod signature;
pub mod verify;

pub use client::{ClientConfig, Credentials, VippsApiError, VippsClient};
pub use payload::{EpaymentEvent, VippsEventBody};
pub use signature::{sign_delivery, DeliveryHeaders, RegisteredUrl, WebhookSecret};
pub use verify::{verify_delivery, DeliveryRequest, Diagnosis, Rejection, Verified};
