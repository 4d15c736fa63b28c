//! The part of a `webhook_received` the projections use: its provider and receive time.
//!
//! A receipt carries the raw body (base64) and the signed headers, which no projection reads,
//! so they are skipped unread ([`ReceiptFields`]). The skipped fields must still be present,
//! so a receipt the full decoder calls malformed for a missing field is malformed here too.
//! The compact form this code writes is read with [`Scanner`]; anything else with serde_json.

use super::rfc3339;
use crate::scan::{Scanner, Seen, MAX_DEPTH};
use paystate_domain::events::{DecodeError, StoredEvent, WebhookReceived};
use paystate_domain::ProviderId;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use time::OffsetDateTime;

/// The longest provider id (its rule allows 63 characters).
const MAX_PROVIDER_ID: usize = 63;

/// The part of a `webhook_received` the projections use. The provider id is kept inline and
/// checked against its rule when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    provider_len: u8,
    provider: [u8; MAX_PROVIDER_ID],
    pub received_at: OffsetDateTime,
}

impl Receipt {
    pub fn provider_id(&self) -> &str {
        let text = self
            .provider
            .get(..usize::from(self.provider_len))
            .unwrap_or(&[]);
        std::str::from_utf8(text).unwrap_or("")
    }
}

/// The fields of [`WebhookReceived`], each required as there, with only two of them read.
#[derive(Deserialize)]
pub(super) struct ReceiptFields<'a> {
    #[serde(borrow)]
    pub provider_id: Cow<'a, str>,
    #[serde(rename = "body_base64")]
    _body_base64: IgnoredAny,
    #[serde(rename = "signed")]
    _signed: IgnoredAny,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(rename = "verification")]
    _verification: IgnoredAny,
}

/// The fields of a receipt written as serde_json writes one, read with [`Scanner`]: the
/// fields [`ReceiptFields`] requires, each once, the skipped ones checked as serde_json
/// checks a value it ignores. `None` for anything else, which is then left to serde_json.
/// The keys of a receipt, of its signed headers and of its verification, as written.
const RECEIPT_KEYS: [&str; 6] = [
    "provider_id",
    "webhook_id",
    "body_base64",
    "signed",
    "received_at",
    "verification",
];
const SIGNED_KEYS: [&str; 6] = [
    "x_ms_date",
    "x_ms_content_sha256",
    "host",
    "path_and_query",
    "authorization_header",
    "signature",
];
const VERIFICATION_KEYS: [&str; 4] = [
    "secret_version",
    "registration_id",
    "date_skew_seconds",
    "older_secret",
];

pub(super) fn scan_receipt(payload: &[u8]) -> Option<ReceiptFields<'_>> {
    const PROVIDER_ID: u32 = 0;
    const BODY: u32 = 1;
    const SIGNED: u32 = 2;
    const RECEIVED_AT: u32 = 3;
    const VERIFICATION: u32 = 4;
    let mut seen = Seen::default();
    let (mut provider_id, mut received_at) = ("", OffsetDateTime::UNIX_EPOCH);
    Scanner::new(payload)?.document(&RECEIPT_KEYS, |scanner, key| match key {
        "provider_id" => {
            seen.mark(PROVIDER_ID)?;
            provider_id = scanner.string()?;
            Some(())
        }
        "received_at" => {
            seen.mark(RECEIVED_AT)?;
            received_at = rfc3339(scanner.string()?)?;
            Some(())
        }
        "body_base64" => {
            seen.mark(BODY)?;
            scanner.skip_value(MAX_DEPTH)
        }
        "signed" => {
            seen.mark(SIGNED)?;
            scanner.skip_value_keyed(MAX_DEPTH, &SIGNED_KEYS)
        }
        "verification" => {
            seen.mark(VERIFICATION)?;
            scanner.skip_value_keyed(MAX_DEPTH, &VERIFICATION_KEYS)
        }
        _ => scanner.skip_value(MAX_DEPTH),
    })?;
    seen.has_all(0b11111).then_some(ReceiptFields {
        provider_id: Cow::Borrowed(provider_id),
        _body_base64: IgnoredAny,
        _signed: IgnoredAny,
        received_at,
        _verification: IgnoredAny,
    })
}

pub(crate) fn decode_receipt(schema_version: u32, payload: &[u8]) -> Result<Receipt, DecodeError> {
    let malformed = |message: String| DecodeError::Malformed {
        type_name: WebhookReceived::TYPE_NAME,
        schema_version,
        message,
    };
    if schema_version != WebhookReceived::SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            type_name: WebhookReceived::TYPE_NAME,
            found: schema_version,
            supported: WebhookReceived::SCHEMA_VERSION,
        });
    }
    let fields = match scan_receipt(payload) {
        Some(fields) => fields,
        None => serde_json::from_slice::<ReceiptFields<'_>>(payload)
            .map_err(|error| malformed(error.to_string()))?,
    };
    let id = fields.provider_id.as_bytes();
    let mut provider = [0; MAX_PROVIDER_ID];
    match (provider.get_mut(..id.len()), u8::try_from(id.len())) {
        (Some(inline), Ok(provider_len)) => {
            inline.copy_from_slice(id);
            Ok(Receipt {
                provider_len,
                provider,
                received_at: fields.received_at,
            })
        }
        // Too long to be a provider id: the message is the rule's.
        _ => Err(malformed(
            ProviderId::parse(&fields.provider_id)
                .err()
                .map_or_else(|| "provider_id too long".to_owned(), |e| e.to_string()),
        )),
    }
}
