//! Which events the projections count as undecodable: exactly the receipts and facts the
//! reference decoders reject, over a log of corrupted copies, whether rebuilt or applied one
//! envelope at a time.
//!
//! The references: a fact must decode in full ([`DomainEvent::decode`]); a receipt must be
//! JSON with its provider (valid by its rule), receive time, body, signed headers and
//! verification, the last three of any JSON type (the projections never read them).

use paystate_domain::events::{
    AuthorizationHeader, DomainEvent, FactSource, PaymentEventRecorded, ProviderCreated,
    SignedHeaders, StoredEvent, VerificationSummary, WebhookReceived,
};
use paystate_domain::{
    streams, Amount, Currency, Environment, Fingerprint, HttpUrl, Msn, PaymentEventName,
    ProviderId, ProviderKind, PspReference, Reference, SecretVersion, WebhookEventType,
};
use paystate_projections::{rebuild, Projections};
use paystate_store::{EventStore, ExpectedVersion, MemoryStore, NewEvent, Position, StreamId};
use serde::de::IgnoredAny;
use serde::Deserialize;
use time::OffsetDateTime;

fn provider_id() -> ProviderId {
    ProviderId::parse("vipps-test").unwrap()
}

fn reference() -> Reference {
    Reference::parse("order-0001").unwrap()
}

fn receipt() -> Vec<u8> {
    DomainEvent::from(WebhookReceived {
        provider_id: provider_id(),
        webhook_id: Some("6f1d7c3e-2b1a-4c55-9e0f-1a2b3c4d5e6f".to_owned()),
        body_base64: "eyJtc24iOiIxMjM0NTYiLCJyZWZlcmVuY2UiOiJvcmRlci0wMDAxIn0=".to_owned(),
        signed: SignedHeaders {
            x_ms_date: "Tue, 14 Jan 2025 09:30:02 GMT".to_owned(),
            x_ms_content_sha256: "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned(),
            host: "pay.example.no".to_owned(),
            path_and_query: "/webhooks/vipps/vipps-test".to_owned(),
            authorization_header: AuthorizationHeader::Authorization,
            signature: "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=".to_owned(),
        },
        received_at: OffsetDateTime::from_unix_timestamp(1_736_847_005).unwrap(),
        verification: VerificationSummary {
            secret_version: SecretVersion::FIRST,
            registration_id: None,
            date_skew_seconds: 0,
            older_secret: false,
        },
    })
    .to_payload()
}

fn fact() -> Vec<u8> {
    DomainEvent::from(PaymentEventRecorded {
        provider_id: provider_id(),
        msn: Msn::parse("123456").unwrap(),
        reference: reference(),
        psp_reference: PspReference::parse("order-0001-created").unwrap(),
        name: PaymentEventName::parse("CREATED"),
        amount: Amount::from_minor_units(13_600),
        currency: Currency::parse("NOK").unwrap(),
        timestamp: OffsetDateTime::UNIX_EPOCH,
        idempotency_key: Some("order-0001-created-key".to_owned()),
        success: true,
        source: FactSource::Webhook,
        anomaly: None,
    })
    .to_payload()
}

/// The receipt as the projections read it.
#[derive(Deserialize)]
#[allow(dead_code)]
struct ReceiptReference {
    provider_id: String,
    body_base64: IgnoredAny,
    signed: IgnoredAny,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    verification: IgnoredAny,
}

fn receipt_is_undecodable(payload: &[u8]) -> bool {
    serde_json::from_slice::<ReceiptReference>(payload).map_or(true, |receipt| {
        ProviderId::parse(&receipt.provider_id).is_err()
    })
}

fn fact_is_undecodable(payload: &[u8]) -> bool {
    DomainEvent::decode(
        PaymentEventRecorded::TYPE_NAME,
        PaymentEventRecorded::SCHEMA_VERSION,
        payload,
    )
    .is_err()
}

/// Copies of `payload` with one byte deleted or replaced (by a quote, a backslash, a
/// control character, a space or a byte that is not UTF-8), at every position.
fn corrupted(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in 0..payload.len() {
        let mut deleted = payload.to_vec();
        deleted.remove(at);
        out.push(deleted);
        for noise in [b'"', b'\\', 0x01, b' ', 0xff, b'0'] {
            let mut replaced = payload.to_vec();
            replaced[at] = noise;
            out.push(replaced);
        }
    }
    out
}

#[tokio::test]
async fn undecodable_counts_exactly_the_receipts_and_facts_the_reference_decoders_reject() {
    let store = MemoryStore::new();
    let created = DomainEvent::from(ProviderCreated {
        provider_id: provider_id(),
        kind: ProviderKind::Vipps,
        environment: Environment::Test,
        msn: Msn::parse("123456").unwrap(),
        events: WebhookEventType::all_epayment(),
        credentials_fingerprint: Fingerprint::parse("fp").unwrap(),
        public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
    });
    let provider_stream = StreamId::new(streams::provider_stream(&provider_id()));
    store
        .append(
            &provider_stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(
                created.type_name(),
                created.schema_version(),
                created.to_payload(),
            )],
        )
        .await
        .unwrap();
    let payment_stream = StreamId::new(streams::payment_stream(&provider_id(), &reference()));
    let mut expected = 0u64;
    let mut events = 0u64;
    for (type_name, payload, is_undecodable) in [
        (
            WebhookReceived::TYPE_NAME,
            receipt(),
            receipt_is_undecodable as fn(&[u8]) -> bool,
        ),
        (PaymentEventRecorded::TYPE_NAME, fact(), fact_is_undecodable),
    ] {
        assert!(!is_undecodable(&payload));
        let copies = corrupted(&payload);
        for chunk in copies.chunks(256) {
            let batch = chunk
                .iter()
                .map(|copy| {
                    expected += u64::from(is_undecodable(copy));
                    NewEvent::new(type_name, 1, copy.clone())
                })
                .collect();
            store
                .append(&payment_stream, ExpectedVersion::Any, batch)
                .await
                .unwrap();
        }
        events += copies.len() as u64;
    }
    assert!(
        expected > 0 && expected < events,
        "{expected} of {events} undecodable"
    );

    let rebuilt = rebuild(&store).unwrap();
    assert_eq!(rebuilt.skipped().undecodable, expected);

    let mut one_by_one = Projections::default();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for envelope in &page {
            one_by_one.apply(envelope);
        }
    }
    assert_eq!(one_by_one.skipped().undecodable, expected);
    assert!(one_by_one.differences(&rebuilt).is_empty());
}
