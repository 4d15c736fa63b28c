//! Builders shared by the tests: fixed ids, times and facts.

use paystate_domain::events::{EventMeta, FactSource, PaymentEventRecorded};
use paystate_domain::{
    Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference,
};
use time::{Duration, OffsetDateTime};

pub fn provider_id() -> ProviderId {
    ProviderId::parse("vipps-test").unwrap()
}

pub fn reference() -> Reference {
    Reference::parse("acme-order-1001").unwrap()
}

pub fn msn() -> Msn {
    Msn::parse("123456").unwrap()
}

/// A fixed instant plus `seconds`, so tests never read the clock.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_736_847_000).unwrap() + Duration::seconds(seconds)
}

/// Where the log recorded an event: position `position`, one second apart.
pub fn meta(position: u64) -> EventMeta {
    EventMeta {
        position,
        recorded_at: at(i64::try_from(position).unwrap()),
    }
}

/// A successful fact of this payment; the PSP reference and time come from `step`, the step's
/// place in the provider's history.
pub fn fact(step: usize, name: &str, amount: u64) -> PaymentEventRecorded {
    PaymentEventRecorded {
        provider_id: provider_id(),
        msn: msn(),
        reference: reference(),
        psp_reference: PspReference::parse(&format!("psp-{step}")).unwrap(),
        name: PaymentEventName::parse(name),
        amount: Amount::from_minor_units(amount),
        currency: Currency::Nok,
        timestamp: at(i64::try_from(step).unwrap() * 60),
        idempotency_key: None,
        success: true,
        source: FactSource::Webhook,
        anomaly: None,
    }
}
