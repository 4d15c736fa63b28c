//! The stored event catalogue: names, versions, encode/decode, and no secrets in any event.

use crate::support::{at, fact, msn, provider_id};
use paystate_domain::events::*;
use paystate_domain::{
    Environment, Fingerprint, HttpUrl, ProviderKind, RegistrationId, SecretVersion,
    WebhookEventType,
};
use std::collections::BTreeSet;

fn url() -> HttpUrl {
    HttpUrl::parse("https://pay.example.no/webhooks/vipps/vipps-test").unwrap()
}

fn fingerprint() -> Fingerprint {
    Fingerprint::parse("sha256:0123abcd").unwrap()
}

/// One filled-in sample of every stored type.
fn samples() -> Vec<DomainEvent> {
    let registration_id = RegistrationId::parse("6f1c0f5e-8a4e-4f57-a1b0-0c2f5a6b7c8d").unwrap();
    let payment = fact(2, "CAPTURED", 300);
    let receipt: DomainEvent = WebhookReceived {
        provider_id: provider_id(),
        webhook_id: Some(registration_id.to_string()),
        body_base64: "eyJtc24iOiIxMjM0NTYifQ==".into(),
        signed: SignedHeaders {
            x_ms_date: "Tue, 14 Jan 2025 09:30:05 GMT".into(),
            x_ms_content_sha256: "0ksT260wi1nTDtpRtPNbEdvztimXe/fZVTHD+2fPkZY=".into(),
            host: "pay.example.no".into(),
            path_and_query: "/webhooks/vipps/vipps-test".into(),
            authorization_header: AuthorizationHeader::XVippsAuthorization,
            signature: "S7HJs6Kc6w1qPwUmmY66WWQL1YCcLo2DbXoR0VvN/Vk=".into(),
        },
        received_at: at(5),
        verification: VerificationSummary {
            secret_version: SecretVersion::new(2).unwrap(),
            registration_id: Some(registration_id.clone()),
            date_skew_seconds: -3,
            older_secret: false,
        },
    }
    .into();
    vec![
        ProviderCreated {
            provider_id: provider_id(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: msn(),
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: fingerprint(),
            public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
        }
        .into(),
        ProviderEnabled {}.into(),
        ProviderDisabled {}.into(),
        CredentialsUpdated {
            credentials_fingerprint: fingerprint(),
        }
        .into(),
        EnvironmentChanged {
            from: Environment::Test,
            to: Environment::Production,
        }
        .into(),
        PublicUrlChanged {
            from: HttpUrl::parse("https://old.example.no").unwrap(),
            to: HttpUrl::parse("https://pay.example.no").unwrap(),
        }
        .into(),
        WebhookRegistrationRequested {
            reason: RegistrationReason::CredentialsChanged,
            secret_version_next: Some(SecretVersion::new(2).unwrap()),
        }
        .into(),
        WebhookRegistrationSkipped {
            requested: RegistrationReason::Manual,
            registration_id: Some(registration_id.clone()),
            secret_version: Some(SecretVersion::FIRST),
        }
        .into(),
        WebhookRegistered {
            registration_id: registration_id.clone(),
            url: url(),
            events: WebhookEventType::all_epayment(),
            secret_version: SecretVersion::new(2).unwrap(),
            secret_fingerprint: fingerprint(),
            reason: RegistrationReason::CredentialsChanged,
        }
        .into(),
        WebhookRegistrationFailed {
            reason: RegistrationReason::Enabled,
            error: bounded_text("401 Unauthorized from /accesstoken/get", MAX_ERROR_TEXT),
            attempt: 2,
            retry_at: Some(at(120)),
        }
        .into(),
        WebhookDeleted {
            registration_id: registration_id.clone(),
            secret_version: Some(SecretVersion::FIRST),
            why: DeletionReason::Superseded,
        }
        .into(),
        WebhookRejected {
            provider_id: provider_id(),
            code: RejectionCode::InvalidSignature,
            diagnosis: RejectionDiagnosis::OldSecretVersion {
                secret_version: SecretVersion::FIRST,
            },
            remote_addr: Some("203.0.113.7:40000".into()),
            headers: HeaderSummary {
                x_ms_date: Some("Tue, 14 Jan 2025 09:30:05 GMT".into()),
                authorization_header: Some("authorization".into()),
                host: Some("pay.example.no".into()),
                ..HeaderSummary::default()
            },
            body_sha256: "d24b13dbad30d629d50ecec1e8f34d11dcefdb6297b5def7d95531dfe767c996".into(),
            body_size: 272,
            received_at: at(5),
        }
        .into(),
        WebhookRejectionsSuppressed {
            provider_id: provider_id(),
            count: 950,
            window_start: at(0),
            window_end: at(60),
        }
        .into(),
        receipt.clone(),
        payment.clone().into(),
        WebhookDuplicate {
            provider_id: provider_id(),
            original_position: 42,
            identity: payment.identity(),
            secret_version: SecretVersion::FIRST,
            received_at: at(9),
            conflict: None,
        }
        .into(),
        WebhookDuplicate {
            provider_id: provider_id(),
            original_position: 42,
            identity: payment.identity(),
            secret_version: SecretVersion::FIRST,
            received_at: at(9),
            conflict: Some(Box::new(ConflictingCopy {
                fact: PaymentEventRecorded {
                    amount: paystate_domain::Amount::from_minor_units(990),
                    ..payment.clone()
                },
                receipt: match &receipt {
                    DomainEvent::WebhookReceived(receipt) => receipt.clone(),
                    _ => unreachable!("the receipt sample"),
                },
            })),
        }
        .into(),
        WebhookAnomaly {
            provider_id: provider_id(),
            anomaly: IngestAnomaly::Unparseable {
                error: "expected value at line 1 column 1".into(),
            },
            reference_raw: None,
            received_at: at(10),
        }
        .into(),
    ]
}

#[test]
fn every_type_has_a_sample_and_a_unique_snake_case_name() {
    let sampled: BTreeSet<_> = samples().iter().map(DomainEvent::type_name).collect();
    let catalogue: BTreeSet<_> = CATALOGUE.iter().map(|(name, _)| *name).collect();
    assert_eq!(sampled, catalogue);
    assert_eq!(catalogue.len(), CATALOGUE.len(), "names are unique");
    for name in catalogue {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
    }
}

#[test]
fn the_types_spec_3_3_requires_exist() {
    let names: BTreeSet<_> = CATALOGUE.iter().map(|(name, _)| *name).collect();
    for required in [
        "provider_created",
        "provider_enabled",
        "provider_disabled",
        "credentials_updated",
        "environment_changed",
        "webhook_registered",
        "webhook_registration_failed",
        "webhook_deleted",
        "webhook_received",
        "webhook_duplicate",
        "webhook_rejected",
        "payment_event_recorded",
    ] {
        assert!(names.contains(required), "{required}");
    }
}

#[test]
fn every_event_decodes_to_itself() {
    for event in samples() {
        let payload = event.to_payload();
        let decoded = DomainEvent::decode(event.type_name(), event.schema_version(), &payload);
        assert_eq!(decoded.as_ref(), Ok(&event), "{}", event.type_name());
    }
}

#[test]
fn webhook_registered_holds_the_fields_the_api_promises() {
    let registered = samples()
        .into_iter()
        .find(|e| e.type_name() == "webhook_registered")
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&registered.to_payload()).unwrap();
    for field in [
        "registration_id",
        "url",
        "events",
        "secret_version",
        "secret_fingerprint",
        "reason",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert_eq!(json["reason"], "credentials_changed");
}

#[test]
fn an_unknown_type_is_an_error_to_keep_not_a_panic() {
    let error = DomainEvent::decode("payment_teleported", 1, b"{}").unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnknownType {
            type_name: "payment_teleported".into(),
            schema_version: 1
        }
    );
}

#[test]
fn a_version_this_code_does_not_read_is_an_error() {
    let error = DomainEvent::decode("provider_enabled", 7, b"{}").unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::UnsupportedVersion {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn invalid_values_in_stored_bytes_are_malformed_not_accepted() {
    for payload in [
        &br#"{"credentials_fingerprint": "has space"}"#[..],
        b"not json",
        b"",
        &[0xff, 0xfe],
    ] {
        let result = DomainEvent::decode("credentials_updated", 1, payload);
        assert!(
            matches!(result, Err(DecodeError::Malformed { .. })),
            "{result:?}"
        );
    }
    let mut fact: serde_json::Value =
        serde_json::from_slice(&DomainEvent::from(fact(0, "CREATED", 1)).to_payload()).unwrap();
    fact["msn"] = "12".into();
    let result = DomainEvent::decode("payment_event_recorded", 1, fact.to_string().as_bytes());
    assert!(
        matches!(result, Err(DecodeError::Malformed { .. })),
        "{result:?}"
    );
}

/// Field names that would mean a secret or credential is stored; versions and fingerprints of
/// secrets are fine.
fn secret_like(key: &str) -> bool {
    let allowed = [
        "secret_version",
        "secret_version_next",
        "secret_fingerprint",
        "credentials_fingerprint",
        // A flag: "an older secret version verified this delivery".
        "older_secret",
    ];
    let suspicious = [
        "secret",
        "password",
        "token",
        "client_id",
        "subscription_key",
        "credential",
    ];
    !allowed.contains(&key) && suspicious.iter().any(|word| key.contains(word))
}

fn keys(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                into.push(key.clone());
                keys(value, into);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, into)),
        _ => {}
    }
}

#[test]
fn no_event_has_a_field_for_a_secret_or_credential() {
    for event in samples() {
        let json: serde_json::Value = serde_json::from_slice(&event.to_payload()).unwrap();
        let mut found = Vec::new();
        keys(&json, &mut found);
        let bad: Vec<_> = found.iter().filter(|key| secret_like(key)).collect();
        assert!(bad.is_empty(), "{}: {bad:?}", event.type_name());
    }
}

#[test]
fn a_time_rfc_3339_cannot_write_is_an_encode_error_not_a_panic() {
    let failed = WebhookRegistrationFailed {
        reason: RegistrationReason::Enabled,
        error: "timeout".into(),
        attempt: 1,
        retry_at: Some(time::macros::datetime!(-0001-01-01 0:00 UTC)),
    };
    let event = DomainEvent::from(failed);
    let error = event.try_to_payload().unwrap_err();
    assert_eq!(error.type_name, "webhook_registration_failed");
    let stored = event.to_payload();
    let decoded = DomainEvent::decode(event.type_name(), event.schema_version(), &stored);
    assert!(
        matches!(decoded, Err(DecodeError::Malformed { .. })),
        "{decoded:?}"
    );
}

#[test]
fn every_event_has_a_one_line_summary() {
    for event in samples() {
        let summary = event.summary();
        assert!(
            !summary.is_empty() && !summary.contains('\n'),
            "{}: {summary:?}",
            event.type_name()
        );
    }
    let summaries: Vec<String> = samples().iter().map(DomainEvent::summary).collect();
    assert!(
        summaries.contains(&"CAPTURED 3.00 NOK (psp psp-2)".to_owned()),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s
                .ends_with("saying something else: CAPTURED 9.90 NOK; the recorded fact stands")),
        "{summaries:#?}"
    );
    let mut polled = fact(2, "CAPTURED", 300);
    polled.source = FactSource::Poll;
    assert_eq!(
        DomainEvent::from(polled).summary(),
        "CAPTURED 3.00 NOK (psp psp-2), found by polling Vipps: no webhook had delivered it"
    );
    assert!(
        summaries.iter().any(|s| s.contains("secret out of sync")),
        "{summaries:#?}"
    );
    assert!(
        summaries.iter().any(|s| s.ends_with("(superseded)")),
        "{summaries:#?}"
    );
}

#[test]
fn bounded_text_cuts_and_cleans() {
    assert_eq!(bounded_text("a\nb\u{7}c", 10), "a b c");
    assert_eq!(bounded_text(&"é".repeat(1000), 5), "ééééé");
}

#[test]
fn dedupe_keys_and_stream_names_never_collide() {
    use paystate_domain::streams::{
        payment_dedupe_key, payment_stream, provider_stream, unmatched_stream,
    };
    use paystate_domain::{PaymentEventName, PspReference, Reference};
    let provider = provider_id();
    let reference = Reference::parse("acme-order-1001").unwrap();
    assert_eq!(provider_stream(&provider), "provider-vipps-test");
    assert_eq!(
        payment_stream(&provider, &reference),
        "payment-vipps-test.acme-order-1001"
    );
    assert_eq!(unmatched_stream(&provider), "unmatched-vipps-test");

    // "vipps" + "test-acme-order" must not share a stream with "vipps-test" + "acme-order".
    let a = payment_stream(
        &paystate_domain::ProviderId::parse("vipps").unwrap(),
        &Reference::parse("test-acme-order").unwrap(),
    );
    let b = payment_stream(&provider, &Reference::parse("acme-order").unwrap());
    assert_ne!(a, b);

    // An unknown name and a PSP reference holding ':' cannot be shifted into each other.
    let key = |name: &str, psp: &str| {
        payment_dedupe_key(
            &provider,
            &msn(),
            &reference,
            &PaymentEventName::parse(name),
            &PspReference::parse(psp).unwrap(),
        )
    };
    assert_ne!(key("X:Y", "Z"), key("X", "Y:Z"));
    assert_ne!(key("X%3AY", "Z"), key("X:Y", "Z"));
    assert_eq!(
        key("CAPTURED", "psp-1"),
        "payment:vipps-test:123456:acme-order-1001:CAPTURED:psp-1"
    );
    // The keys already in a log are matched byte for byte: the escaping never changes.
    assert_eq!(
        key("NEW:KIND%1", "psp:1%"),
        "payment:vipps-test:123456:acme-order-1001:NEW%3AKIND%251:psp%3A1%25"
    );
}
