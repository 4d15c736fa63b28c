//! Verifying a Vipps webhook delivery (VIPPS.md §2), the exact inverse of
//! [`crate::signature::sign_delivery`].
//!
//! Checks, in order: the signature headers are present; they are well formed; the body matches
//! `x-ms-content-sha256`; `x-ms-date` is within the tolerance; the HMAC matches one of the
//! accepted secrets (current first) under the **registered** URL's host and path. On a signature
//! mismatch a few extra HMACs tell the likely cause ([`Diagnosis`]). MACs are compared in
//! constant time.
//!
//! Answer codes (SPEC §3.1): an absent `Authorization`/`X-Vipps-Authorization`, `x-ms-date` or
//! `x-ms-content-sha256` is `missing_signature`; a present but malformed authorization value or
//! an unreadable date is `invalid_signature` (something claimed to sign the request and the
//! claim does not hold); then `content_hash_mismatch`, `stale_date`, `invalid_signature`.
//!
//! - [`headers`]: [`HeaderLookup`] (case-insensitive header view) and [`DeliveryRequest`].
//! - [`authorization`]: parsing the `Authorization` value.
//! - [`rejection`]: [`Rejection`], [`RejectionKind`], [`Diagnosis`].
//! - [`audit`]: re-verifying a stored delivery; a bounded summary of a rejected one's headers.

pub mod audit;
pub mod authorization;
pub mod headers;
pub mod rejection;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use paystate_domain::events::{SignedHeaders, VerificationSummary};
use paystate_domain::{RegistrationId, SecretVersion};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::signature::secret::HmacSha256;
use crate::signature::sign::ToSign;
use crate::signature::{content_sha256, RegisteredUrl, WebhookSecret};
use authorization::{parse_authorization, ParsedAuthorization};
use hmac::Mac;

pub use audit::{header_summary, reverify_stored};
pub use authorization::MalformedAuthorization;
pub use headers::{DeliveryRequest, HeaderLookup};
pub use paystate_domain::events::RejectionCode;
pub use rejection::{AuthorizationHeader, Diagnosis, Rejection, RejectionKind};

/// The default tolerance on `x-ms-date`: ±300 s, the WooCommerce plugin's policy, which
/// re-signed retries satisfy (VIPPS.md §2).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A secret a delivery may be verified with, and its version.
pub type SecretCandidate<'a> = (SecretVersion, &'a WebhookSecret);

/// An authentic delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The secret version whose HMAC matched.
    pub secret_version: SecretVersion,
    /// Whether that was not the first (current) candidate: Vipps still signs with an older
    /// registration, as during a rotation.
    pub older_secret: bool,
    /// `x-ms-date` minus the receive time, in seconds.
    pub date_skew_seconds: i64,
    /// Which header carried the matching signature.
    pub authorization_header: AuthorizationHeader,
    /// What was signed, enough to re-verify the stored delivery later.
    pub signed: SignedHeaders,
}

impl Verified {
    /// The verification outcome as the stored `webhook_received` event records it.
    pub fn summary(&self, registration_id: Option<RegistrationId>) -> VerificationSummary {
        VerificationSummary {
            secret_version: self.secret_version,
            registration_id,
            date_skew_seconds: self.date_skew_seconds,
            older_secret: self.older_secret,
        }
    }
}

/// Verifies a delivery against the accepted secrets, current version first.
///
/// `url` is the provider's registered URL (never the request's own `Host`), `now` the receive
/// time and `tolerance` the allowed distance of `x-ms-date` from it. Never panics.
pub fn verify_delivery(
    request: &DeliveryRequest<'_>,
    url: &RegisteredUrl,
    candidates: &[SecretCandidate<'_>],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<Verified, Rejection> {
    Verifier {
        url,
        accepted: candidates,
        retired: &[],
        tolerance,
    }
    .verify(request, now)
}

/// Verification with every input spelled out, including secrets that are no longer accepted
/// but that a rejection may recognise ("secret out of sync").
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    /// The provider's registered URL: the signed host and path come from here.
    pub url: &'a RegisteredUrl,
    /// Secrets a delivery is accepted with, current version first.
    pub accepted: &'a [SecretCandidate<'a>],
    /// Retired secrets, never accepted, only tried to diagnose a rejection.
    pub retired: &'a [SecretCandidate<'a>],
    /// Allowed distance of `x-ms-date` from the receive time.
    pub tolerance: Duration,
}

/// The signature headers of a request, read but not yet checked.
struct Presented<'r> {
    /// The distinct well-formed signatures, in header order (at most one per header).
    signatures: [Option<(AuthorizationHeader, ParsedAuthorization<'r>)>; 2],
    date: &'r str,
    content_hash: &'r [u8],
}

impl<'r> Presented<'r> {
    fn signatures(&self) -> impl Iterator<Item = &(AuthorizationHeader, ParsedAuthorization<'r>)> {
        self.signatures.iter().flatten()
    }
}

/// How a secret becomes an HMAC key: as Vipps does, or as the classic bug does.
#[derive(Clone, Copy)]
enum KeyForm {
    Utf8,
    Base64Decoded,
}

impl KeyForm {
    /// A MAC keyed with `secret` in this form.
    fn mac(self, secret: &WebhookSecret) -> Option<HmacSha256> {
        match self {
            KeyForm::Utf8 => Some(secret.mac()),
            KeyForm::Base64Decoded => {
                let key = BASE64.decode(secret.hmac_key()).ok()?;
                HmacSha256::new_from_slice(&key).ok()
            }
        }
    }
}

impl Verifier<'_> {
    /// Verifies `request` received at `now`. Never panics.
    pub fn verify(
        &self,
        request: &DeliveryRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<Verified, Rejection> {
        let presented = read_presented(request)?;
        let date = httpdate::parse_http_date(presented.date)
            .map(OffsetDateTime::from)
            .map_err(|_| Rejection::new(RejectionKind::MalformedDate))?;
        let host = self.url.host_for_signing();
        let path = self.url.path_and_query();

        let computed_hash = content_sha256(request.body());
        if !bool::from(computed_hash.as_bytes().ct_eq(presented.content_hash)) {
            // Does the sender's signature hold over the hash it sent? Then the sender was
            // authentic and the body changed after signing.
            let signed_by =
                std::str::from_utf8(presented.content_hash)
                    .ok()
                    .and_then(|sent_hash| {
                        let to_sign = ToSign {
                            path_and_query: path,
                            x_ms_date: presented.date,
                            host,
                            content_sha256: sent_hash,
                        };
                        self.signer(self.accepted, &to_sign, &presented, KeyForm::Utf8)
                    });
            return Err(Rejection::new(RejectionKind::ContentHashMismatch {
                computed: computed_hash,
            })
            .with_diagnosis(Some(Diagnosis::BodyChanged {
                signed_by: signed_by.map(|(v, _)| v),
            })));
        }

        let to_sign = ToSign {
            path_and_query: path,
            x_ms_date: presented.date,
            host,
            content_sha256: &computed_hash,
        };
        // `x-ms-date` has whole seconds and the clock does not: the window is compared exactly
        // (300.4 s away is outside ±300 s). An accepted delivery records its skew in whole
        // seconds toward zero (a date sent this second reads 0, not -1); a rejected one tells
        // it rounded away from zero, so a date outside the window never reads as inside it.
        let skew = date - now;
        let skew_seconds = skew.whole_seconds();
        let matched = self.signer(self.accepted, &to_sign, &presented, KeyForm::Utf8);

        if skew.unsigned_abs() > self.tolerance {
            let tolerance_seconds = self.tolerance.as_secs();
            let skew_seconds = skew_seconds + i64::from(skew.subsec_nanoseconds().signum());
            return Err(Rejection::new(RejectionKind::StaleDate {
                skew_seconds,
                tolerance_seconds,
            })
            .with_diagnosis(Some(Diagnosis::ClockSkew {
                skew_seconds,
                signed_by: matched.map(|(v, _)| v),
            })));
        }

        let Some((secret_version, signature_index)) = matched else {
            let diagnosis = self.diagnose_mismatch(request, &presented, &computed_hash);
            return Err(Rejection::new(RejectionKind::SignatureMismatch {
                secrets_tried: self.accepted.len(),
            })
            .with_diagnosis(diagnosis));
        };
        let Some((authorization_header, signature)) = presented.signatures().nth(signature_index)
        else {
            // `signer` only returns indexes into `presented.signatures`.
            return Err(Rejection::new(RejectionKind::SignatureMismatch {
                secrets_tried: self.accepted.len(),
            }));
        };
        Ok(Verified {
            secret_version,
            older_secret: self
                .accepted
                .first()
                .is_some_and(|(current, _)| *current != secret_version),
            date_skew_seconds: skew_seconds,
            authorization_header: *authorization_header,
            signed: SignedHeaders {
                x_ms_date: presented.date.to_owned(),
                x_ms_content_sha256: computed_hash,
                host: host.to_owned(),
                path_and_query: path.to_owned(),
                authorization_header: *authorization_header,
                signature: signature.signature_text.to_owned(),
            },
        })
    }

    /// The first secret (in order) whose HMAC of `to_sign` equals one of the presented
    /// signatures, with the index of that signature. Each comparison is constant-time.
    fn signer(
        &self,
        secrets: &[SecretCandidate<'_>],
        to_sign: &ToSign<'_>,
        presented: &Presented<'_>,
        form: KeyForm,
    ) -> Option<(SecretVersion, usize)> {
        secrets.iter().find_map(|(version, secret)| {
            let mac = to_sign.mac_with(form.mac(secret)?);
            presented
                .signatures()
                .position(|(_, sent)| bool::from(mac.ct_eq(&sent.signature)))
                .map(|index| (*version, index))
        })
    }

    /// Tries the likely causes of a signature mismatch, cheapest and most common first.
    fn diagnose_mismatch(
        &self,
        request: &DeliveryRequest<'_>,
        presented: &Presented<'_>,
        content_hash: &str,
    ) -> Option<Diagnosis> {
        let host = self.url.host_for_signing();
        let path = self.url.path_and_query();
        let all: Vec<SecretCandidate<'_>> =
            self.accepted.iter().chain(self.retired).copied().collect();

        let registered = ToSign {
            path_and_query: path,
            x_ms_date: presented.date,
            host,
            content_sha256: content_hash,
        };
        if let Some((secret_version, _)) =
            self.signer(self.retired, &registered, presented, KeyForm::Utf8)
        {
            return Some(Diagnosis::SecretOutOfSync { secret_version });
        }
        if let Some(request_host) = request.arrival_host() {
            if !request_host.is_empty() && request_host != host {
                let to_sign = ToSign {
                    host: request_host,
                    ..registered
                };
                if let Some((secret_version, _)) =
                    self.signer(&all, &to_sign, presented, KeyForm::Utf8)
                {
                    return Some(Diagnosis::HostRewritten {
                        request_host: request_host.to_owned(),
                        secret_version,
                    });
                }
            }
        }
        if let Some(target) = request.request_target.filter(|target| *target != path) {
            let to_sign = ToSign {
                path_and_query: target,
                ..registered
            };
            if let Some((secret_version, _)) = self.signer(&all, &to_sign, presented, KeyForm::Utf8)
            {
                return Some(Diagnosis::PathRewritten {
                    request_target: target.to_owned(),
                    secret_version,
                });
            }
        }
        self.signer(&all, &registered, presented, KeyForm::Base64Decoded)
            .map(|(secret_version, _)| Diagnosis::DecodedSecretKey { secret_version })
    }
}

/// Reads the three signature headers: all must be present (else `missing_signature`), and
/// at least one authorization value must be well formed.
fn read_presented<'r>(request: &DeliveryRequest<'r>) -> Result<Presented<'r>, Rejection> {
    const AUTHORIZATION_HEADERS: [(&str, AuthorizationHeader); 2] = [
        ("authorization", AuthorizationHeader::Authorization),
        (
            "x-vipps-authorization",
            AuthorizationHeader::XVippsAuthorization,
        ),
    ];
    let raw_authorizations = AUTHORIZATION_HEADERS
        .map(|(name, which)| request.headers.header(name).map(|value| (which, value)));
    if raw_authorizations.iter().all(Option::is_none) {
        return Err(Rejection::new(RejectionKind::MissingAuthorization));
    }
    let date = match request.text("x-ms-date") {
        None => return Err(Rejection::new(RejectionKind::MissingDate)),
        Some(Err(())) => return Err(Rejection::new(RejectionKind::MalformedDate)),
        Some(Ok(date)) => date,
    };
    let Some(content_hash) = request.headers.header("x-ms-content-sha256") else {
        return Err(Rejection::new(RejectionKind::MissingContentHash));
    };

    let mut signatures = [None, None];
    let mut stored = 0;
    let mut first_error = None;
    let mut previous: Option<&[u8]> = None;
    for (which, value) in raw_authorizations.into_iter().flatten() {
        // Both headers normally carry the same value: read it once.
        if previous == Some(value) {
            continue;
        }
        previous = Some(value);
        match parse_authorization(value) {
            Ok(parsed) if signatures.iter().flatten().any(|(_, seen)| *seen == parsed) => {}
            Ok(parsed) => {
                if let Some(slot) = signatures.get_mut(stored) {
                    *slot = Some((which, parsed));
                    stored += 1;
                }
            }
            Err(reason) => {
                first_error.get_or_insert(RejectionKind::MalformedAuthorization {
                    header: which,
                    reason,
                });
            }
        }
    }
    if stored == 0 {
        return Err(Rejection::new(
            first_error.unwrap_or(RejectionKind::MissingAuthorization),
        ));
    }
    Ok(Presented {
        signatures,
        date,
        content_hash: content_hash.trim_ascii(),
    })
}

#[cfg(test)]
mod tests;
