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
    let plain = [
        "payment",
        provider.as_str(),
        msn.as_str(),
        reference.as_str(),
    ];
    let (name, psp_reference) = (name.as_str(), psp_reference.as_str());
    // One allocation (unless something needs escaping): this runs for every delivery.
    let separators = plain.len() + 1;
    let length = plain.iter().map(|part| part.len()).sum::<usize>()
        + name.len()
        + psp_reference.len()
        + separators;
    let mut key = String::with_capacity(length);
    for part in plain {
        key.push_str(part);
        key.push(':');
    }
    push_escaped(&mut key, name);
    key.push(':');
    push_escaped(&mut key, psp_reference);
    key
}

/// Appends `text` with `%` as `%25` and `:` as `%3A`.
fn push_escaped(key: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            c => key.push(c),
        }
    }
}
