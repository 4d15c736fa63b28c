//! Re-verifying one stored delivery: the signature Vipps sent must still match the stored raw
//! body under the secret version recorded for it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paystate_domain::events::WebhookReceived;
use paystate_vipps::signature::{content_sha256, signature, string_to_sign};
use paystate_vipps::WebhookSecret;

/// Why a stored delivery no longer verifies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryFault {
    #[error("the stored body is not base64")]
    BodyNotBase64,
    #[error("the stored body does not match its x-ms-content-sha256 (body changed after it was received)")]
    BodyHashMismatch,
    #[error(
        "the signature does not match secret version {version} (body, headers or secret changed)"
    )]
    SignatureMismatch { version: u32 },
}

/// Checks `receipt` against `secret`, the secret of the version the receipt names.
///
/// The comparison need not be constant-time: this runs offline on stored data, where no caller
/// can time it to forge a signature.
pub fn reverify(receipt: &WebhookReceived, secret: &WebhookSecret) -> Result<(), DeliveryFault> {
    let body = BASE64
        .decode(&receipt.body_base64)
        .map_err(|_| DeliveryFault::BodyNotBase64)?;
    let signed = &receipt.signed;
    if content_sha256(&body) != signed.x_ms_content_sha256 {
        return Err(DeliveryFault::BodyHashMismatch);
    }
    let to_sign = string_to_sign(
        &signed.path_and_query,
        &signed.x_ms_date,
        &signed.host,
        &signed.x_ms_content_sha256,
    );
    if signature(secret, &to_sign) != signed.signature {
        return Err(DeliveryFault::SignatureMismatch {
            version: receipt.verification.secret_version.get(),
        });
    }
    Ok(())
}
