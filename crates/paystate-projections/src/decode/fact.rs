//! A payment fact decoded from borrowed text ([`FactFields`]): only the fields a payment keeps
//! are copied when applied, each checked by its type's rule as the full decoder would. The
//! compact form this code writes is read with [`Scanner`]; anything else with serde_json.

use super::rfc3339;
use crate::scan::{Scanner, Seen, MAX_DEPTH};
use paystate_domain::events::{
    DecodeError, FactSource, IngestAnomaly, PaymentEventRecorded, StoredEvent,
};
use paystate_domain::Amount;
use serde::Deserialize;
use std::borrow::Cow;
use time::OffsetDateTime;

/// The fields of [`PaymentEventRecorded`] as stored, text borrowed.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct FactFields<'a> {
    #[serde(borrow)]
    pub provider_id: Cow<'a, str>,
    #[serde(borrow)]
    pub msn: Cow<'a, str>,
    #[serde(borrow)]
    pub reference: Cow<'a, str>,
    #[serde(borrow)]
    pub psp_reference: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub amount: Amount,
    #[serde(borrow)]
    pub currency: Cow<'a, str>,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, borrow)]
    pub idempotency_key: Option<Cow<'a, str>>,
    pub success: bool,
    #[serde(default)]
    pub source: FactSource,
    #[serde(default)]
    pub anomaly: Option<IngestAnomaly>,
}

/// Decodes a stored payload of `payment_event_recorded` at its current schema version into
/// borrowed fields; `None` for any other type or version (decode those in full).
pub(crate) fn fact_fields<'a>(
    event_type: &str,
    schema_version: u32,
    payload: &'a [u8],
) -> Option<Result<FactFields<'a>, DecodeError>> {
    if event_type != PaymentEventRecorded::TYPE_NAME
        || schema_version != PaymentEventRecorded::SCHEMA_VERSION
    {
        return None;
    }
    Some(scan_fact(payload).map(Ok).unwrap_or_else(|| {
        serde_json::from_slice(payload).map_err(|error| DecodeError::Malformed {
            type_name: PaymentEventRecorded::TYPE_NAME,
            schema_version,
            message: error.to_string(),
        })
    }))
}

/// The fields of a fact written as serde_json writes one, read with [`Scanner`]; `None`
/// for anything else (or a value serde_json would reject), which is then left to serde_json.
/// The keys of a fact, as written.
const FACT_KEYS: [&str; 12] = [
    "provider_id",
    "msn",
    "reference",
    "psp_reference",
    "name",
    "amount",
    "currency",
    "timestamp",
    "idempotency_key",
    "success",
    "source",
    "anomaly",
];

pub(super) fn scan_fact(payload: &[u8]) -> Option<FactFields<'_>> {
    const PROVIDER_ID: u32 = 0;
    const MSN: u32 = 1;
    const REFERENCE: u32 = 2;
    const PSP_REFERENCE: u32 = 3;
    const NAME: u32 = 4;
    const AMOUNT: u32 = 5;
    const CURRENCY: u32 = 6;
    const TIMESTAMP: u32 = 7;
    const IDEMPOTENCY_KEY: u32 = 8;
    const SUCCESS: u32 = 9;
    const SOURCE: u32 = 10;
    const ANOMALY: u32 = 11;
    const REQUIRED: [u32; 9] = [
        PROVIDER_ID,
        MSN,
        REFERENCE,
        PSP_REFERENCE,
        NAME,
        AMOUNT,
        CURRENCY,
        TIMESTAMP,
        SUCCESS,
    ];
    let mut seen = Seen::default();
    let (mut provider_id, mut msn, mut reference, mut psp_reference) = ("", "", "", "");
    let (mut name, mut currency, mut idempotency_key) = ("", "", None);
    let (mut amount, mut timestamp, mut success) = (0, OffsetDateTime::UNIX_EPOCH, false);
    let mut source = FactSource::default();
    Scanner::new(payload)?.document(&FACT_KEYS, |scanner, key| {
        let (field, text) = match key {
            "provider_id" => (PROVIDER_ID, &mut provider_id),
            "msn" => (MSN, &mut msn),
            "reference" => (REFERENCE, &mut reference),
            "psp_reference" => (PSP_REFERENCE, &mut psp_reference),
            "name" => (NAME, &mut name),
            "currency" => (CURRENCY, &mut currency),
            "amount" => {
                seen.mark(AMOUNT)?;
                amount = scanner.unsigned()?;
                return Some(());
            }
            "timestamp" => {
                seen.mark(TIMESTAMP)?;
                timestamp = rfc3339(scanner.string()?)?;
                return Some(());
            }
            "idempotency_key" => {
                seen.mark(IDEMPOTENCY_KEY)?;
                if scanner.null().is_none() {
                    idempotency_key = Some(scanner.string()?);
                }
                return Some(());
            }
            "success" => {
                seen.mark(SUCCESS)?;
                success = scanner.boolean()?;
                return Some(());
            }
            "source" => {
                seen.mark(SOURCE)?;
                source = match scanner.string()? {
                    "webhook" => FactSource::Webhook,
                    "poll" => FactSource::Poll,
                    _ => return None,
                };
                return Some(());
            }
            // Only its absence is read here: an anomaly is rare and left to serde_json.
            "anomaly" => {
                seen.mark(ANOMALY)?;
                return scanner.null();
            }
            _ => return scanner.skip_value(MAX_DEPTH),
        };
        seen.mark(field)?;
        *text = scanner.string()?;
        Some(())
    })?;
    let required = REQUIRED.iter().fold(0, |bits, field| bits | 1 << field);
    seen.has_all(required).then(|| FactFields {
        provider_id: Cow::Borrowed(provider_id),
        msn: Cow::Borrowed(msn),
        reference: Cow::Borrowed(reference),
        psp_reference: Cow::Borrowed(psp_reference),
        name: Cow::Borrowed(name),
        amount: Amount::from_minor_units(amount),
        currency: Cow::Borrowed(currency),
        timestamp,
        idempotency_key: idempotency_key.map(Cow::Borrowed),
        success,
        source,
        anomaly: None,
    })
}
