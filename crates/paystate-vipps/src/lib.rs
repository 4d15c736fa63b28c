//! Vipps MobilePay adapter of paystate.
//!
//! - [`signature`]: webhook secrets, the registered URL, and signing a delivery exactly as Vipps
//!   does (VIPPS.md §2).
//!
//! ```
//! use paystate_vipps::signature::{sign_delivery, RegisteredUrl, WebhookSecret};
//!
//! let secret = WebhookSecret::new("4vBnTQ8ktulTg8HgGee1UZHqVX3tp+nz4aGT8Zwm9ZVqjfMhbCn8vVaimKRcKmqSvy5yQY4ZDSa9ba6tU0zxeA==");
//! let url = RegisteredUrl::parse("https://pay.example.no/hooks/vipps/v1?tenant=acme-42")?;
//! let headers = sign_delivery(&secret, &url, br#"{"msn":"123456"}"#, "Tue, 14 Jan 2025 09:30:05 GMT");
//! assert!(headers.authorization.starts_with("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="));
//! # Ok::<(), paystate_vipps::signature::UrlError>(())
//! ```

pub mod client;
pub mod payload;
pub mod signature;
pub mod verify;

pub use client::{ClientConfig, Credentials, VippsApiError, VippsClient};
pub use payload::{EpaymentEvent, VippsEventBody};
pub use signature::{sign_delivery, DeliveryHeaders, RegisteredUrl, WebhookSecret};
pub use verify::{verify_delivery, DeliveryRequest, Diagnosis, Rejection, Verified};
