use super::*;
use paystate_domain::events::{
    DeletionReason, DomainEvent, EventMeta, ProviderCreated, PublicUrlChanged, RegistrationReason,
    WebhookDeleted, WebhookReceived, WebhookRegistered,
};
use paystate_domain::{Environment, Fingerprint, ProviderKind, WebhookEventType};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2025-01-14 09:00 UTC);
const GRACE: time::Duration = time::Duration::minutes(10);

fn meta(position: u64, recorded_at: OffsetDateTime) -> EventMeta {
    EventMeta {
        position,
        recorded_at,
    }
}

fn version(n: u32) -> SecretVersion {
    SecretVersion::new(n).unwrap()
}

fn provider() -> Provider {
    let created = ProviderCreated {
        provider_id: ProviderId::parse("vipps-test").unwrap(),
        kind: ProviderKind::Vipps,
        environment: Environment::Test,
        msn: Msn::parse("123456").unwrap(),
        events: WebhookEventType::all_epayment(),
        credentials_fingerprint: Fingerprint::parse("fp").unwrap(),
        public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
    };
    Provider::created(meta(1, T0), &created)
}

fn registered(provider: &mut Provider, position: u64, id: &str, url: &str, secret: u32) {
    let event = DomainEvent::from(WebhookRegistered {
        registration_id: RegistrationId::parse(id).unwrap(),
        url: HttpUrl::parse(url).unwrap(),
        events: WebhookEventType::all_epayment(),
        secret_version: version(secret),
        secret_fingerprint: Fingerprint::parse("sfp").unwrap(),
        reason: RegistrationReason::Enabled,
    });
    provider.apply(meta(position, T0), &event);
}

fn receipt(provider: &Provider) -> DomainEvent {
    DomainEvent::from(
        serde_json::from_value::<WebhookReceived>(serde_json::json!({
            "provider_id": provider.id.as_str(),
            "body_base64": "e30=",
            "signed": {"x_ms_date": "d", "x_ms_content_sha256": "h", "host": "pay.example.no",
                       "path_and_query": "/webhooks/vipps/vipps-test",
                       "authorization_header": "authorization", "signature": "s"},
            "received_at": "2025-01-14T09:00:05Z",
            "verification": {"secret_version": 1, "date_skew_seconds": 0, "older_secret": false}
        }))
        .unwrap(),
    )
}

const OWN_URL: &str = "https://pay.example.no/webhooks/vipps/vipps-test";

#[test]
fn a_plan_lives_as_long_as_what_it_was_derived_from() {
    let plans = VerificationPlans::default();
    let mut provider = provider();
    registered(&mut provider, 2, "reg-1", OWN_URL, 1);
    let first = plans.plan_for(&provider, T0, GRACE);
    assert_eq!(first.accepted, vec![(version(1), Some(0))]);
    assert_eq!(first.urls[0].path_and_query(), "/webhooks/vipps/vipps-test");
    assert_eq!(
        first
            .registration_of(version(1))
            .map(RegistrationId::as_str),
        Some("reg-1")
    );

    // Deliveries change the provider's counters and position, not its plan.
    let delivery = receipt(&provider);
    provider.apply(meta(3, T0), &delivery);
    assert_eq!(provider.position, 3);
    assert!(Arc::ptr_eq(&first, &plans.plan_for(&provider, T0, GRACE)));

    // A new registration does.
    registered(
        &mut provider,
        4,
        "reg-2",
        "https://pay.example.no/other/path",
        2,
    );
    let second = plans.plan_for(&provider, T0, GRACE);
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(
        second.accepted,
        vec![(version(2), Some(1)), (version(1), Some(0))]
    );
    assert_eq!(second.urls[1].path_and_query(), "/other/path");
    assert_eq!(second.default_url, Some(0));
}

#[test]
fn a_changed_public_url_or_msn_gives_a_new_plan() {
    let plans = VerificationPlans::default();
    let mut provider = provider();
    let first = plans.plan_for(&provider, T0, GRACE);
    assert_eq!(first.accepted, Vec::new());
    assert_eq!(first.default_url, Some(0));

    provider.apply(
        meta(2, T0),
        &DomainEvent::from(PublicUrlChanged {
            from: HttpUrl::parse("https://pay.example.no").unwrap(),
            to: HttpUrl::parse("https://shop.example.no").unwrap(),
        }),
    );
    let moved = plans.plan_for(&provider, T0, GRACE);
    assert!(!Arc::ptr_eq(&first, &moved));
    assert_eq!(moved.urls[0].host_for_signing(), "shop.example.no");

    provider.msn = Msn::parse("654321").unwrap();
    let other_msn = plans.plan_for(&provider, T0, GRACE);
    assert!(!Arc::ptr_eq(&moved, &other_msn));
    assert_eq!(other_msn.msn.as_str(), "654321");
}

#[test]
fn a_retired_secret_is_accepted_until_its_grace_period_ends() {
    let plans = VerificationPlans::default();
    let mut provider = provider();
    registered(&mut provider, 2, "reg-1", OWN_URL, 1);
    registered(&mut provider, 3, "reg-2", OWN_URL, 2);
    let deleted = DomainEvent::from(WebhookDeleted {
        registration_id: RegistrationId::parse("reg-1").unwrap(),
        secret_version: Some(version(1)),
        why: DeletionReason::Superseded,
    });
    provider.apply(meta(4, T0), &deleted);

    let within = plans.plan_for(&provider, T0 + time::Duration::minutes(9), GRACE);
    assert_eq!(
        within.accepted,
        vec![(version(2), Some(0)), (version(1), Some(0))]
    );
    assert!(Arc::ptr_eq(
        &within,
        &plans.plan_for(&provider, T0 + time::Duration::minutes(9), GRACE)
    ));

    let after = plans.plan_for(&provider, T0 + GRACE, GRACE);
    assert_eq!(after.accepted, vec![(version(2), Some(0))]);
}
