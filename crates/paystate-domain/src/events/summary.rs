//! One line of plain English per event, for audit timelines and histories.

use super::{
    bounded_text, DomainEvent, FactSource, IngestAnomaly, RejectionCode, RejectionDiagnosis,
};

/// The longest summary, in characters; free text inside (error messages) is cut to fit.
const MAX_SUMMARY: usize = 1024;

impl DomainEvent {
    /// What this event records, in one line, e.g. `webhook reg-1 registered (secret version
    /// 2, reason credentials_changed)`. Built only from the event's own fields, which never
    /// hold a secret. Control characters in free text become spaces, so it stays one line.
    pub fn summary(&self) -> String {
        bounded_text(&self.unbounded_summary(), MAX_SUMMARY)
    }

    fn unbounded_summary(&self) -> String {
        match self {
            DomainEvent::ProviderCreated(e) => format!(
                "provider {} created ({} {}, MSN {}), disabled",
                e.provider_id, e.kind, e.environment, e.msn
            ),
            DomainEvent::ProviderEnabled(_) => "provider enabled".to_owned(),
            DomainEvent::ProviderDisabled(_) => "provider disabled".to_owned(),
            DomainEvent::CredentialsUpdated(e) => {
                format!(
                    "credentials updated (fingerprint {})",
                    e.credentials_fingerprint
                )
            }
            DomainEvent::EnvironmentChanged(e) => {
                format!("environment changed from {} to {}", e.from, e.to)
            }
            DomainEvent::PublicUrlChanged(e) => {
                format!("public URL changed from {} to {}", e.from, e.to)
            }
            DomainEvent::WebhookRegistrationRequested(e) => match e.secret_version_next {
                Some(version) => format!(
                    "webhook registration requested (reason {}, secret version {version})",
                    e.reason.as_str()
                ),
                None => format!(
                    "webhook registration requested (reason {})",
                    e.reason.as_str()
                ),
            },
            DomainEvent::WebhookRegistrationSkipped(e) => match &e.registration_id {
                Some(id) => format!("registration not needed: webhook {id} is working"),
                None => "registration not needed: one is already pending".to_owned(),
            },
            DomainEvent::WebhookRegistered(e) => format!(
                "webhook {} registered at {} (secret version {}, reason {})",
                e.registration_id,
                e.url,
                e.secret_version,
                e.reason.as_str()
            ),
            DomainEvent::WebhookRegistrationFailed(e) => format!(
                "webhook registration attempt {} failed: {}",
                e.attempt, e.error
            ),
            DomainEvent::WebhookDeleted(e) => {
                format!("webhook {} deleted ({})", e.registration_id, e.why.as_str())
            }
            DomainEvent::WebhookRejected(e) => format!(
                "delivery rejected: {} ({})",
                e.code.as_str(),
                rejection_cause(e.code, &e.diagnosis)
            ),
            DomainEvent::WebhookRejectionsSuppressed(e) => {
                format!("{} more deliveries rejected (counted only)", e.count)
            }
            DomainEvent::WebhookReceived(e) => format!(
                "authentic delivery received (secret version {})",
                e.verification.secret_version
            ),
            DomainEvent::PaymentEventRecorded(e) => format!(
                "{} {} {}(psp {}){}",
                e.name,
                crate::Money(e.amount, e.currency),
                if e.success { "" } else { "failed " },
                e.psp_reference,
                match e.source {
                    FactSource::Webhook => "",
                    FactSource::Poll => ", found by polling Vipps: no webhook had delivered it",
                }
            ),
            DomainEvent::WebhookDuplicate(e) => format!(
                "duplicate delivery of {} (psp {}), first recorded at position {}{}",
                e.identity.name,
                e.identity.psp_reference,
                e.original_position,
                match &e.conflict {
                    None => String::new(),
                    Some(copy) => format!(
                        ", saying something else: {} {}{}; the recorded fact stands",
                        copy.fact.name,
                        crate::Money(copy.fact.amount, copy.fact.currency),
                        if copy.fact.success { "" } else { " failed" }
                    ),
                }
            ),
            DomainEvent::WebhookAnomaly(e) => {
                format!("authentic delivery not usable: {}", e.anomaly.summary())
            }
        }
    }
}

/// The diagnosis in words; without one, what the code alone still tells.
fn rejection_cause(code: RejectionCode, found: &RejectionDiagnosis) -> String {
    match (code, found) {
        (RejectionCode::InvalidSignature, RejectionDiagnosis::Unknown) => {
            "no accepted secret, old or current, verifies it, and nothing else explains it"
                .to_owned()
        }
        (RejectionCode::ContentHashMismatch, RejectionDiagnosis::Unknown) => {
            "no accepted secret signs its headers either: not sent under a secret paystate holds"
                .to_owned()
        }
        _ => diagnosis(found),
    }
}

fn diagnosis(diagnosis: &RejectionDiagnosis) -> String {
    match diagnosis {
        RejectionDiagnosis::OldSecretVersion { secret_version } => {
            format!("signed with secret version {secret_version}, no longer accepted: secret out of sync")
        }
        RejectionDiagnosis::HostRewritten { request_host } => {
            format!("would verify with Host {request_host}: a proxy rewrote Host")
        }
        RejectionDiagnosis::PathRewritten { request_target } => {
            format!("would verify with path {request_target}: a proxy rewrote the path")
        }
        RejectionDiagnosis::DecodedSecretKey { secret_version } => {
            format!("signed with secret version {secret_version} base64-decoded as the key")
        }
        RejectionDiagnosis::BodyChanged => "body changed in transit".to_owned(),
        RejectionDiagnosis::ClockSkew { skew_seconds } => {
            format!("x-ms-date is {skew_seconds} s off")
        }
        RejectionDiagnosis::NoSignature => "no usable authorization header".to_owned(),
        RejectionDiagnosis::Unknown => "no further diagnosis".to_owned(),
    }
}

impl IngestAnomaly {
    /// What was wrong with the delivery, in words, e.g. `invalid amount.value (...)`.
    pub fn summary(&self) -> String {
        match self {
            IngestAnomaly::Unparseable { error } => format!("unparseable body ({error})"),
            IngestAnomaly::InvalidField { field, error } => format!("invalid {field} ({error})"),
            IngestAnomaly::MsnMismatch { expected, got } => {
                format!("MSN {got} is not the provider's {expected}")
            }
            IngestAnomaly::UnknownEventName { name } => format!("unknown event name {name}"),
        }
    }
}
