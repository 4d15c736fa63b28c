//! Why a delivery was not accepted, and what could be told about the cause.

use std::fmt;

use paystate_domain::events::{RejectionCode, RejectionDiagnosis};
use paystate_domain::SecretVersion;

use super::authorization::MalformedAuthorization;

/// Which authorization header a value came from. Both carry the same value (VIPPS.md §2).
pub use paystate_domain::events::AuthorizationHeader;

/// The precise reason a delivery was rejected. [`Rejection::code`] folds these into the four
/// answer codes of SPEC §3.1.
///
/// Absent headers are `missing_signature`. Headers that are present but unusable (a malformed
/// authorization value, an unreadable date) are `invalid_signature`: something claimed to
/// sign the request, and the claim does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectionKind {
    /// Neither `Authorization` nor `X-Vipps-Authorization` is present.
    MissingAuthorization,
    /// `x-ms-date` is absent.
    MissingDate,
    /// `x-ms-content-sha256` is absent.
    MissingContentHash,
    /// An authorization header is present but is not a Vipps HMAC-SHA256 value.
    MalformedAuthorization {
        header: AuthorizationHeader,
        reason: MalformedAuthorization,
    },
    /// `x-ms-date` is not an HTTP date.
    MalformedDate,
    /// `x-ms-content-sha256` does not match the SHA-256 of the body received.
    ContentHashMismatch {
        /// The hash of the body as received.
        computed: String,
    },
    /// `x-ms-date` is further from the receiver's clock than the tolerance.
    StaleDate {
        skew_seconds: i64,
        tolerance_seconds: u64,
    },
    /// No accepted secret produces the signature.
    SignatureMismatch { secrets_tried: usize },
}

/// What could be told about the cause of a rejection, computed from a few extra HMACs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// The signature matches a secret version that is no longer accepted: the secret is out of
    /// sync (Vipps still signs with a registration the receiver has retired).
    SecretOutOfSync { secret_version: SecretVersion },
    /// The signature matches when the request's own `Host` header is used instead of the
    /// registered host: a proxy rewrote `Host`, or the receiver's registered URL is stale.
    HostRewritten {
        request_host: String,
        secret_version: SecretVersion,
    },
    /// The signature matches the path the request arrived at, not the registered path: a
    /// proxy rewrote the path, or the registered URL is stale.
    PathRewritten {
        request_target: String,
        secret_version: SecretVersion,
    },
    /// The signature matches with the base64-*decoded* secret as key: the sender decodes the
    /// secret, which Vipps does not.
    DecodedSecretKey { secret_version: SecretVersion },
    /// The body does not match `x-ms-content-sha256`. `signed_by` is the secret that signs the
    /// headers as sent, if any: then the sender was authentic and the body changed in transit.
    /// If none does, nothing authentic was sent, and the stored diagnosis is `unknown`.
    BodyChanged { signed_by: Option<SecretVersion> },
    /// `x-ms-date` is `skew_seconds` away from the receiver's clock (positive: in the future).
    /// `signed_by` is the secret whose signature holds, if any: an authentic but late delivery
    /// means clock skew or a replay; no valid signature means a forgery.
    ClockSkew {
        skew_seconds: i64,
        signed_by: Option<SecretVersion>,
    },
}

impl Diagnosis {
    /// This diagnosis in the vocabulary of the stored `webhook_rejected` event.
    pub fn to_domain(&self) -> RejectionDiagnosis {
        match self {
            Diagnosis::SecretOutOfSync { secret_version } => RejectionDiagnosis::OldSecretVersion {
                secret_version: *secret_version,
            },
            Diagnosis::HostRewritten { request_host, .. } => RejectionDiagnosis::HostRewritten {
                request_host: request_host.clone(),
            },
            Diagnosis::BodyChanged { signed_by: Some(_) } => RejectionDiagnosis::BodyChanged,
            // Nothing shows that the body changed in transit: nothing authentic was sent.
            Diagnosis::BodyChanged { signed_by: None } => RejectionDiagnosis::Unknown,
            Diagnosis::ClockSkew { skew_seconds, .. } => RejectionDiagnosis::ClockSkew {
                skew_seconds: *skew_seconds,
            },
            Diagnosis::PathRewritten { request_target, .. } => RejectionDiagnosis::PathRewritten {
                request_target: request_target.clone(),
            },
            Diagnosis::DecodedSecretKey { secret_version } => {
                RejectionDiagnosis::DecodedSecretKey {
                    secret_version: *secret_version,
                }
            }
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::SecretOutOfSync { secret_version } => write!(
                f,
                "the signature matches secret version {secret_version}, which is no longer accepted: \
                 the secret is out of sync; re-register the webhook"
            ),
            Diagnosis::HostRewritten { request_host, secret_version } => write!(
                f,
                "the signature matches secret version {secret_version} with the request's Host {request_host:?} \
                 instead of the registered host: a proxy rewrote Host, or the registered URL is stale"
            ),
            Diagnosis::PathRewritten { request_target, secret_version } => write!(
                f,
                "the signature matches secret version {secret_version} with the request path {request_target:?} \
                 instead of the registered path: a proxy rewrote the path, or the registered URL is stale"
            ),
            Diagnosis::DecodedSecretKey { secret_version } => write!(
                f,
                "the signature matches secret version {secret_version} used base64-decoded; Vipps uses the \
                 secret's text as the key"
            ),
            Diagnosis::BodyChanged { signed_by: Some(version) } => write!(
                f,
                "the headers are signed with secret version {version} but the body differs from what was \
                 signed: the body changed in transit"
            ),
            Diagnosis::BodyChanged { signed_by: None } => f.write_str(
                "no accepted secret signs the headers either: not sent under a secret paystate holds \
                 (a forgery, or a registration made outside paystate)",
            ),
            // The skew itself is told by the rejection's kind (`StaleDate`).
            Diagnosis::ClockSkew { signed_by: Some(version), .. } => write!(
                f,
                "the signature is valid (secret version {version}): clock skew or a replay"
            ),
            Diagnosis::ClockSkew { signed_by: None, .. } => f.write_str(
                "the signature is not valid either: a forgery, or a sender with a secret paystate \
                 does not hold",
            ),
        }
    }
}

/// A delivery that failed verification: what was wrong and, where it could be told, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    diagnosis: Option<Diagnosis>,
}

impl Rejection {
    pub(crate) fn new(kind: RejectionKind) -> Self {
        Self {
            kind,
            diagnosis: None,
        }
    }

    pub(crate) fn with_diagnosis(mut self, diagnosis: Option<Diagnosis>) -> Self {
        self.diagnosis = diagnosis;
        self
    }

    /// The precise reason.
    pub fn kind(&self) -> &RejectionKind {
        &self.kind
    }

    /// The cause, when a few extra HMACs could tell it.
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        self.diagnosis.as_ref()
    }

    /// The `401` answer code (SPEC §3.1).
    pub fn code(&self) -> RejectionCode {
        match self.kind {
            RejectionKind::MissingAuthorization
            | RejectionKind::MissingDate
            | RejectionKind::MissingContentHash => RejectionCode::MissingSignature,
            RejectionKind::MalformedAuthorization { .. }
            | RejectionKind::MalformedDate
            | RejectionKind::SignatureMismatch { .. } => RejectionCode::InvalidSignature,
            RejectionKind::ContentHashMismatch { .. } => RejectionCode::ContentHashMismatch,
            RejectionKind::StaleDate { .. } => RejectionCode::StaleDate,
        }
    }

    /// The diagnosis in the vocabulary of the stored `webhook_rejected` event.
    pub fn domain_diagnosis(&self) -> RejectionDiagnosis {
        match (&self.diagnosis, &self.kind) {
            (Some(diagnosis), _) => diagnosis.to_domain(),
            (
                None,
                RejectionKind::MissingAuthorization | RejectionKind::MalformedAuthorization { .. },
            ) => RejectionDiagnosis::NoSignature,
            (None, RejectionKind::ContentHashMismatch { .. }) => RejectionDiagnosis::BodyChanged,
            (None, RejectionKind::StaleDate { skew_seconds, .. }) => {
                RejectionDiagnosis::ClockSkew {
                    skew_seconds: *skew_seconds,
                }
            }
            (None, _) => RejectionDiagnosis::Unknown,
        }
    }

    /// A sentence for operators: what was wrong, then the diagnosis if any.
    pub fn message(&self) -> String {
        match &self.diagnosis {
            Some(diagnosis) => format!("{}; {diagnosis}", self.kind),
            None => self.kind.to_string(),
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectionKind::MissingAuthorization => f.write_str("no Authorization or X-Vipps-Authorization header"),
            RejectionKind::MissingDate => f.write_str("no x-ms-date header"),
            RejectionKind::MissingContentHash => f.write_str("no x-ms-content-sha256 header"),
            RejectionKind::MalformedAuthorization { header, reason } => {
                let name = match header {
                    AuthorizationHeader::Authorization => "Authorization",
                    AuthorizationHeader::XVippsAuthorization => "X-Vipps-Authorization",
                };
                write!(f, "the {name} header is malformed: {reason}")
            }
            RejectionKind::MalformedDate => f.write_str("x-ms-date is not an HTTP date (IMF-fixdate)"),
            RejectionKind::ContentHashMismatch { computed } => {
                write!(f, "x-ms-content-sha256 does not match the body (the body hashes to {computed})")
            }
            RejectionKind::StaleDate { skew_seconds, tolerance_seconds } => write!(
                f,
                "x-ms-date is {skew_seconds} s from the receiver's clock, outside the ±{tolerance_seconds} s window"
            ),
            RejectionKind::SignatureMismatch { secrets_tried: 0 } => {
                f.write_str("no secret is accepted for this provider, so no signature can match")
            }
            RejectionKind::SignatureMismatch { secrets_tried } => {
                write!(f, "the signature matches none of the {secrets_tried} accepted secret version(s)")
            }
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {}
