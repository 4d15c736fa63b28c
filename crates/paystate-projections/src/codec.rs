//! The compact binary form of one payment (postcard): what is persisted under
//! `payment/{provider}/{reference}` and what a payment not changed since the last commit is
//! kept as in memory.
//!
//! A payment holds the provider and reference once (the provider comes from the key, not
//! the value); its facts do not repeat them, nor the MSN when it is the first fact's. Known
//! event names and currencies are one-byte codes, times are seconds, nanoseconds and offset,
//! integers are varints, and a PSP reference (an idempotency key) stores only what it does
//! not share with the front of the payment's reference (its PSP reference). The rare,
//! free-form ingest anomalies are JSON text inside, as the event log has them.
//! The value starts with the reference ([`Head`]), so that a key is compared without decoding
//! the facts.

use paystate_domain::events::{FactSource, IngestAnomaly, PaymentEventRecorded};
use paystate_domain::payment::{PaymentParts, PaymentProjection, PaymentState, RecordedFact};
use paystate_domain::{
    Amount, Currency, Msn, PaymentEventName, ProviderId, PspReference, Reference,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::{OffsetDateTime, UtcOffset};

/// Why a stored payment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("not a stored payment: {0}")]
    Format(#[from] postcard::Error),
    #[error("an ingest anomaly is not readable: {0}")]
    Anomaly(#[from] serde_json::Error),
    #[error("the reference is not valid: {0}")]
    Reference(#[from] paystate_domain::IdError),
    #[error("the facts are not a payment's: {0}")]
    Parts(#[from] paystate_domain::payment::PartsError),
    #[error("a shared prefix is longer than its text")]
    Shared,
    #[error("an unknown code")]
    Code,
    #[error("a time out of range")]
    Time,
}

/// The start of a stored payment: its reference, read to compare keys without decoding.
#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    pub reference: &'a str,
}

#[derive(Serialize)]
struct PaymentOut<'a> {
    reference: &'a str,
    first_position: u64,
    state: PaymentState,
    /// The MSN of the first fact; a fact with this MSN stores none of its own.
    msn: &'a str,
    facts: Vec<FactOut<'a>>,
    conflicts: &'a BTreeSet<(PaymentEventName, PspReference)>,
    duplicates: u64,
    ingest_anomalies: Vec<String>,
    first_seen_at: Option<Time>,
    last_event_at: Option<Time>,
    position: u64,
}

#[derive(Serialize)]
struct FactOut<'a> {
    msn: Option<&'a str>,
    /// Front-coded against the payment's reference.
    psp_reference: Shared<'a>,
    name: Name<'a>,
    amount: Amount,
    currency: u8,
    timestamp: Time,
    /// Front-coded against the fact's PSP reference.
    idempotency_key: Option<Shared<'a>>,
    success: bool,
    source: FactSource,
    anomaly: Option<String>,
    position: u64,
    recorded_at: Time,
}

#[derive(Deserialize)]
struct PaymentIn<'a> {
    reference: &'a str,
    first_position: u64,
    state: PaymentState,
    msn: &'a str,
    #[serde(borrow)]
    facts: Vec<FactIn<'a>>,
    conflicts: BTreeSet<(PaymentEventName, PspReference)>,
    duplicates: u64,
    ingest_anomalies: Vec<String>,
    first_seen_at: Option<Time>,
    last_event_at: Option<Time>,
    position: u64,
}

#[derive(Deserialize)]
struct FactIn<'a> {
    msn: Option<&'a str>,
    #[serde(borrow)]
    psp_reference: Shared<'a>,
    #[serde(borrow)]
    name: Name<'a>,
    amount: Amount,
    currency: u8,
    timestamp: Time,
    #[serde(borrow)]
    idempotency_key: Option<Shared<'a>>,
    success: bool,
    source: FactSource,
    anomaly: Option<String>,
    position: u64,
    recorded_at: Time,
}

/// A text stored as the length of the prefix it shares with a known text, and the rest: PSP
/// references often extend the payment's reference, idempotency keys their PSP reference.
#[derive(Serialize, Deserialize)]
struct Shared<'a> {
    prefix: u32,
    rest: &'a str,
}

impl<'a> Shared<'a> {
    fn against(base: &str, text: &'a str) -> Shared<'a> {
        let mut prefix = base
            .bytes()
            .zip(text.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        while !text.is_char_boundary(prefix) {
            prefix -= 1;
        }
        Shared {
            prefix: u32::try_from(prefix).unwrap_or(0),
            rest: text.get(prefix..).unwrap_or(text),
        }
    }

    fn resolve(&self, base: &str) -> Result<String, CodecError> {
        let prefix = usize::try_from(self.prefix).unwrap_or(usize::MAX);
        let head = base.get(..prefix).ok_or(CodecError::Shared)?;
        Ok(format!("{head}{}", self.rest))
    }
}

/// An event name: one of the eight known ones by its place in [`PaymentEventName::KNOWN`].
#[derive(Serialize, Deserialize)]
enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

impl<'a> Name<'a> {
    fn of(name: &'a PaymentEventName) -> Name<'a> {
        PaymentEventName::KNOWN
            .iter()
            .position(|known| known == name)
            .and_then(|index| u8::try_from(index).ok())
            .map_or(Name::Other(name.as_str()), Name::Known)
    }

    fn name(&self) -> Result<PaymentEventName, CodecError> {
        match self {
            Name::Known(index) => PaymentEventName::KNOWN
                .get(usize::from(*index))
                .cloned()
                .ok_or(CodecError::Code),
            Name::Other(text) => Ok(PaymentEventName::parse(text)),
        }
    }
}

const CURRENCIES: [Currency; 3] = [Currency::Nok, Currency::Dkk, Currency::Eur];

fn currency_code(currency: Currency) -> u8 {
    match currency {
        Currency::Nok => 0,
        Currency::Dkk => 1,
        Currency::Eur => 2,
    }
}

/// A time as seconds and nanoseconds since the epoch, with its UTC offset in seconds.
#[derive(Serialize, Deserialize)]
struct Time(i64, u32, i32);

impl Time {
    fn of(time: OffsetDateTime) -> Time {
        Time(
            time.unix_timestamp(),
            time.nanosecond(),
            time.offset().whole_seconds(),
        )
    }

    fn time(&self) -> Result<OffsetDateTime, CodecError> {
        let offset = UtcOffset::from_whole_seconds(self.2).map_err(|_| CodecError::Time)?;
        OffsetDateTime::from_unix_timestamp(self.0)
            .and_then(|time| time.replace_nanosecond(self.1))
            .ok()
            .and_then(|time| time.checked_to_offset(offset))
            .ok_or(CodecError::Time)
    }
}

fn optional_time(time: &Option<Time>) -> Result<Option<OffsetDateTime>, CodecError> {
    time.as_ref().map(Time::time).transpose()
}

/// A decoded payment with what the listing index keeps beside it.
#[derive(Debug)]
pub(crate) struct StoredPayment {
    pub projection: PaymentProjection,
    pub first_position: u64,
    pub state: PaymentState,
}

fn anomaly_text(anomaly: &IngestAnomaly) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(anomaly).unwrap_or_default()
}

/// Encodes a payment; `first_position` and `state` are the listing index's.
pub(crate) fn encode(
    projection: &PaymentProjection,
    first_position: u64,
    state: PaymentState,
) -> Vec<u8> {
    let reference = projection.reference().as_str();
    let msn = projection
        .facts()
        .first()
        .map_or("", |recorded| recorded.fact.msn.as_str());
    let facts = projection
        .facts()
        .iter()
        .map(|recorded| {
            let fact = &recorded.fact;
            let psp_reference = fact.psp_reference.as_str();
            FactOut {
                msn: (fact.msn.as_str() != msn).then_some(fact.msn.as_str()),
                psp_reference: Shared::against(reference, psp_reference),
                name: Name::of(&fact.name),
                amount: fact.amount,
                currency: currency_code(fact.currency),
                timestamp: Time::of(fact.timestamp),
                idempotency_key: fact
                    .idempotency_key
                    .as_deref()
                    .map(|key| Shared::against(psp_reference, key)),
                success: fact.success,
                source: fact.source,
                anomaly: fact.anomaly.as_ref().map(anomaly_text),
                position: recorded.position,
                recorded_at: Time::of(recorded.recorded_at),
            }
        })
        .collect();
    let out = PaymentOut {
        reference,
        first_position,
        state,
        msn,
        facts,
        conflicts: projection.conflicts(),
        duplicates: projection.duplicates(),
        ingest_anomalies: projection
            .ingest_anomalies()
            .iter()
            .map(anomaly_text)
            .collect(),
        first_seen_at: projection.first_seen_at().map(Time::of),
        last_event_at: projection.last_event_at().map(Time::of),
        position: projection.position(),
    };
    // Plain data: serializing cannot fail; an empty value would be refused at load (a
    // rebuild), never misread.
    postcard::to_stdvec(&out).unwrap_or_default()
}

/// Reads the start of a stored payment.
pub(crate) fn head(bytes: &[u8]) -> Result<Head<'_>, CodecError> {
    Ok(postcard::take_from_bytes::<Head<'_>>(bytes)?.0)
}

/// Decodes a payment of `provider_id`.
pub(crate) fn decode(provider_id: &ProviderId, bytes: &[u8]) -> Result<StoredPayment, CodecError> {
    let stored: PaymentIn<'_> = postcard::from_bytes(bytes)?;
    let reference = Reference::parse(stored.reference)?;
    let payment_msn = match stored.facts.is_empty() {
        true => None,
        false => Some(Msn::parse(stored.msn)?),
    };
    let mut facts = Vec::with_capacity(stored.facts.len());
    for fact in stored.facts {
        let anomaly = match fact.anomaly {
            Some(text) => Some(serde_json::from_str(&text)?),
            None => None,
        };
        let msn = match (fact.msn, &payment_msn) {
            (Some(msn), _) => Msn::parse(msn)?,
            (None, Some(msn)) => msn.clone(),
            (None, None) => return Err(CodecError::Shared),
        };
        let psp_reference =
            PspReference::try_from(fact.psp_reference.resolve(reference.as_str())?)?;
        let idempotency_key = match fact.idempotency_key {
            Some(key) => Some(key.resolve(psp_reference.as_str())?),
            None => None,
        };
        facts.push(RecordedFact {
            fact: PaymentEventRecorded {
                provider_id: provider_id.clone(),
                msn,
                reference: reference.clone(),
                psp_reference,
                name: fact.name.name()?,
                amount: fact.amount,
                currency: *CURRENCIES
                    .get(usize::from(fact.currency))
                    .ok_or(CodecError::Code)?,
                timestamp: fact.timestamp.time()?,
                idempotency_key,
                success: fact.success,
                source: fact.source,
                anomaly,
            },
            position: fact.position,
            recorded_at: fact.recorded_at.time()?,
        });
    }
    let ingest_anomalies = stored
        .ingest_anomalies
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<BTreeSet<IngestAnomaly>, _>>()?;
    let projection = PaymentProjection::from_parts(PaymentParts {
        provider_id: provider_id.clone(),
        reference,
        facts,
        conflicts: stored.conflicts,
        duplicates: stored.duplicates,
        ingest_anomalies,
        first_seen_at: optional_time(&stored.first_seen_at)?,
        last_event_at: optional_time(&stored.last_event_at)?,
        position: stored.position,
    })?;
    Ok(StoredPayment {
        projection,
        first_position: stored.first_position,
        state: stored.state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_domain::events::{DomainEvent, EventMeta};

    fn fact(msn: &str, psp: &str, name: &str, key: Option<&str>) -> PaymentEventRecorded {
        PaymentEventRecorded {
            provider_id: ProviderId::parse("vipps-test").unwrap(),
            msn: Msn::parse(msn).unwrap(),
            reference: Reference::parse("order-0001").unwrap(),
            psp_reference: PspReference::parse(psp).unwrap(),
            name: PaymentEventName::parse(name),
            amount: Amount::from_minor_units(1234),
            currency: Currency::Dkk,
            timestamp: time::macros::datetime!(2025-01-14 09:30:01.123456789 +02:00),
            idempotency_key: key.map(str::to_owned),
            success: true,
            source: FactSource::Poll,
            anomaly: Some(IngestAnomaly::InvalidField {
                field: "amount".to_owned(),
                error: "ø is not a digit".to_owned(),
            }),
        }
    }

    #[test]
    fn a_payment_reads_back_as_it_was_written() {
        let events = [
            fact(
                "123456",
                "order-0001-created",
                "CREATED",
                Some("order-0001-created-ø"),
            ),
            fact("0123456", "psp-9", "SOMETHING_NEW", Some("other")),
            fact("123456", "order-0001", "CAPTURED", None),
        ]
        .map(DomainEvent::from);
        let projection = PaymentProjection::fold(
            ProviderId::parse("vipps-test").unwrap(),
            Reference::parse("order-0001").unwrap(),
            events.iter().enumerate().map(|(i, event)| {
                let meta = EventMeta {
                    position: i as u64 + 7,
                    recorded_at: time::macros::datetime!(2025-01-14 10:00:00.5 -05:30),
                };
                (meta, event)
            }),
        );
        let bytes = encode(&projection, 7, PaymentState::Authorized);
        assert_eq!(head(&bytes).unwrap().reference, "order-0001");
        let stored = decode(projection.provider_id(), &bytes).unwrap();
        assert_eq!(stored.projection, projection);
        assert_eq!(
            (stored.first_position, stored.state),
            (7, PaymentState::Authorized)
        );
        let times = |p: &PaymentProjection| {
            p.facts()
                .iter()
                .map(|f| (f.fact.timestamp.offset(), f.recorded_at.offset()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            times(&stored.projection),
            times(&projection),
            "offsets are kept"
        );
        assert!(decode(projection.provider_id(), &bytes[..bytes.len() / 2]).is_err());
    }
}
