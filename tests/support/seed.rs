//! A provider with a registered webhook, written straight into a store and vault: the facts
//! the provider routes and the registration reactor record, without going through them.

use paystate_domain::events::{
    DeletionReason, DomainEvent, ProviderCreated, RegistrationReason, WebhookDeleted,
    WebhookRegistered,
};
use paystate_domain::{
    streams, Environment, Fingerprint, HttpUrl, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use paystate_server::secrets::SecretVault;
use paystate_store::{EventStore, ExpectedVersion, NewEvent, StreamId};
use paystate_vipps::{RegisteredUrl, WebhookSecret};

/// What a test needs to know about a seeded provider.
#[derive(Debug, Clone)]
pub struct SeededProvider {
    pub id: ProviderId,
    pub msn: Msn,
    /// The registered webhook URL.
    pub url: RegisteredUrl,
    pub registration_id: String,
    pub secret: WebhookSecret,
}

/// Records provider `id` (MSN `msn`, webhooks at `{public_url}/webhooks/vipps/{id}`) with
/// registration `registration_id` whose secret, version 1, is `secret`.
pub async fn seed_provider(
    store: &dyn EventStore,
    vault: &SecretVault,
    id: &str,
    msn: &str,
    public_url: &str,
    registration_id: &str,
    secret: &str,
) -> SeededProvider {
    let id = ProviderId::parse(id).expect("provider id");
    let msn = Msn::parse(msn).expect("msn");
    let public_url = HttpUrl::parse(public_url).expect("public url");
    let url = public_url.webhook_url(&id).expect("webhook url");
    let secret = WebhookSecret::new(secret);
    let version = SecretVersion::FIRST;
    vault
        .put_webhook_secret(&id, version, &secret)
        .expect("store the secret");

    let events = [
        DomainEvent::from(ProviderCreated {
            provider_id: id.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: msn.clone(),
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("seeded-credentials").expect("fingerprint"),
            public_url,
        }),
        DomainEvent::from(WebhookRegistered {
            registration_id: RegistrationId::parse(registration_id).expect("registration id"),
            url: url.clone(),
            events: WebhookEventType::all_epayment(),
            secret_version: version,
            secret_fingerprint: Fingerprint::parse(&secret.fingerprint()).expect("fingerprint"),
            reason: RegistrationReason::Enabled,
        }),
    ];
    let new: Vec<NewEvent> = events
        .iter()
        .map(|event| {
            NewEvent::new(
                event.type_name(),
                event.schema_version(),
                event.to_payload(),
            )
        })
        .collect();
    store
        .append(
            &StreamId::new(streams::provider_stream(&id)),
            ExpectedVersion::NoStream,
            new,
        )
        .await
        .expect("append the provider");
    SeededProvider {
        id,
        msn,
        url: RegisteredUrl::parse(url.as_str()).expect("registered url"),
        registration_id: registration_id.to_owned(),
        secret,
    }
}

/// Rotates `provider` to a new registration with secret version 2 and records the old one as
/// deleted (what a rotation leaves in the log).
pub async fn rotate(
    store: &dyn EventStore,
    vault: &SecretVault,
    provider: &SeededProvider,
    registration_id: &str,
    secret: &str,
) {
    let secret = WebhookSecret::new(secret);
    let version = SecretVersion::FIRST.next().expect("version 2");
    vault
        .put_webhook_secret(&provider.id, version, &secret)
        .expect("store the secret");
    let url = HttpUrl::parse(provider.url.as_str()).expect("url");
    let events = [
        DomainEvent::from(WebhookRegistered {
            registration_id: RegistrationId::parse(registration_id).expect("registration id"),
            url,
            events: WebhookEventType::all_epayment(),
            secret_version: version,
            secret_fingerprint: Fingerprint::parse(&secret.fingerprint()).expect("fingerprint"),
            reason: RegistrationReason::Rotate,
        }),
        DomainEvent::from(WebhookDeleted {
            registration_id: RegistrationId::parse(&provider.registration_id)
                .expect("registration id"),
            secret_version: Some(SecretVersion::FIRST),
            why: DeletionReason::Superseded,
        }),
    ];
    let new: Vec<NewEvent> = events
        .iter()
        .map(|event| {
            NewEvent::new(
                event.type_name(),
                event.schema_version(),
                event.to_payload(),
            )
        })
        .collect();
    store
        .append(
            &StreamId::new(streams::provider_stream(&provider.id)),
            ExpectedVersion::Exists,
            new,
        )
        .await
        .expect("append the rotation");
}

/// Adds a live registration with secret `version` for `url` (the old one stays live, as during
/// a re-registration's handover after the public URL changed).
pub async fn add_registration(
    store: &dyn EventStore,
    vault: &SecretVault,
    provider: &SeededProvider,
    registration_id: &str,
    secret: &str,
    url: &str,
    version: u32,
) -> SeededProvider {
    let secret = WebhookSecret::new(secret);
    let version = SecretVersion::new(version).expect("version");
    vault
        .put_webhook_secret(&provider.id, version, &secret)
        .expect("store the secret");
    let registered = DomainEvent::from(WebhookRegistered {
        registration_id: RegistrationId::parse(registration_id).expect("registration id"),
        url: HttpUrl::parse(url).expect("url"),
        events: WebhookEventType::all_epayment(),
        secret_version: version,
        secret_fingerprint: Fingerprint::parse(&secret.fingerprint()).expect("fingerprint"),
        reason: RegistrationReason::PublicUrlChanged,
    });
    let new = NewEvent::new(
        registered.type_name(),
        registered.schema_version(),
        registered.to_payload(),
    );
    store
        .append(
            &StreamId::new(streams::provider_stream(&provider.id)),
            ExpectedVersion::Exists,
            vec![new],
        )
        .await
        .expect("append the registration");
    SeededProvider {
        id: provider.id.clone(),
        msn: provider.msn.clone(),
        url: RegisteredUrl::parse(url).expect("registered url"),
        registration_id: registration_id.to_owned(),
        secret,
    }
}
