//! Stream names and dedupe keys: how facts are grouped in the log and how a payment fact is
//! recognised when it arrives again.
//!
//! Names are built from validated ids only. A provider id holds no `.` and no `:`, and a
//! reference holds neither, so `.` separates them without ambiguity: no two (provider,
//! reference) pairs share a stream.

use crate::ids::{Msn, PaymentEventName, ProviderId, PspReference, Reference};

/// `provider-{id}`: configuration, registrations and rejections of one provider.
pub fn provider_stream(provider: &ProviderId) -> String {
    format!("provider-{provider}")
}

/// `payment-{provider}.{reference}`: every fact about one payment.
pub fn payment_stream(provider: &ProviderId, reference: &Reference) -> String {
    format!("payment-{provider}.{reference}")
}

/// `unmatched-{provider}`: authentic deliveries whose body names no valid reference.
pub fn unmatched_stream(provider: &ProviderId) -> String {
    format!("unmatched-{provider}")
}

/// The dedupe key of a payment fact with identity `(msn, reference, name, psp_reference)`,
/// scoped to the provider: `payment:{provider}:{msn}:{reference}:{name}:{psp_reference}`.
///
/// `name` (an unknown name is free text) and `psp_reference` may contain `:`, so both are
/// percent-escaped (`%` as `%25`, `:` as `%3A`); distinct identities always give distinct keys.
pub fn payment_dedupe_key(
    provider: &ProviderId,
    msn: &Msn,
    reference: &Reference,
    name: &PaymentEventName,
    psp_reference: &PspReference,
) -> String {
    format!(
        "payment:{provider}:{msn}:{reference}:{}:{}",
        escape(name.as_str()),
        escape(psp_reference.as_str())
    )
}

fn escape(text: &str) -> String {
    text.replace('%', "%25").replace(':', "%3A")
}
