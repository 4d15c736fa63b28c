//! Properties of the provider aggregate under arbitrary sequences of commands and registration
//! outcomes: secret versions only grow, and the current secret is always accepted.

use crate::support::{meta, msn, provider_id};
use paystate_domain::events::{
    DeletionReason, DomainEvent, ProviderCreated, WebhookDeleted, WebhookRegistered,
    WebhookRegistrationFailed,
};
use paystate_domain::provider::{
    decide, superseded_registrations, DecisionError, Provider, ProviderCommand, ProviderState,
};
use paystate_domain::{
    Environment, Fingerprint, HttpUrl, ProviderKind, RegistrationId, SecretVersion,
    WebhookEventType,
};
use proptest::prelude::*;
use time::Duration;

/// Something that happens to a provider: an operator command or a reactor outcome.
#[derive(Debug, Clone)]
enum Step {
    Command(ProviderCommand),
    /// Vipps answers 201 to the pending request.
    Registered,
    /// The attempt fails.
    Failed,
    /// The reactor deletes the registrations the current one supersedes.
    DeleteSuperseded,
    /// Vipps dropped the current registration.
    Gone,
}

fn step() -> impl Strategy<Value = Step> {
    let fingerprint = (0u8..3).prop_map(|n| Fingerprint::parse(&format!("sha256:{n}")).unwrap());
    let environment = prop_oneof![Just(Environment::Test), Just(Environment::Production)];
    let url =
        (0u8..3).prop_map(|n| HttpUrl::parse(&format!("https://host{n}.example.no")).unwrap());
    prop_oneof![
        Just(Step::Command(ProviderCommand::Enable)),
        Just(Step::Command(ProviderCommand::Disable)),
        fingerprint.prop_map(|f| Step::Command(ProviderCommand::UpdateCredentials {
            credentials_fingerprint: f
        })),
        environment.prop_map(|to| Step::Command(ProviderCommand::ChangeEnvironment { to })),
        url.prop_map(|to| Step::Command(ProviderCommand::ChangePublicUrl { to })),
        Just(Step::Command(ProviderCommand::Register)),
        Just(Step::Command(ProviderCommand::Rotate)),
        Just(Step::Command(ProviderCommand::Repair)),
        Just(Step::Registered),
        Just(Step::Registered),
        Just(Step::Failed),
        Just(Step::DeleteSuperseded),
        Just(Step::Gone),
    ]
}

/// The events a step records, given the provider as folded so far.
fn events_of(provider: &Provider, step: &Step, counter: usize) -> Vec<DomainEvent> {
    match step {
        Step::Command(command) => match decide(provider, command) {
            Ok(decision) => decision.events,
            Err(DecisionError::ProviderDisabled(_)) => {
                assert_eq!(provider.state, ProviderState::Disabled);
                Vec::new()
            }
            Err(other) => panic!("{command:?} failed: {other}"),
        },
        Step::Registered => match provider.registration_to_make() {
            Some(pending) => vec![WebhookRegistered {
                registration_id: RegistrationId::parse(&format!("reg-{counter}")).unwrap(),
                url: provider.webhook_url().unwrap(),
                events: provider.events.clone(),
                secret_version: pending.secret_version.unwrap(),
                secret_fingerprint: Fingerprint::parse(&format!("sha256:s{counter}")).unwrap(),
                reason: pending.reason,
            }
            .into()],
            None => Vec::new(),
        },
        Step::Failed => match provider.registration_to_make() {
            Some(pending) => vec![WebhookRegistrationFailed {
                reason: pending.reason,
                error: "timeout".into(),
                attempt: pending.failed_attempts + 1,
                retry_at: None,
            }
            .into()],
            None => Vec::new(),
        },
        Step::DeleteSuperseded => superseded_registrations(provider)
            .into_iter()
            .map(|planned| {
                WebhookDeleted {
                    registration_id: planned.registration_id,
                    secret_version: planned.secret_version,
                    why: planned.why,
                }
                .into()
            })
            .collect(),
        Step::Gone => provider
            .current
            .iter()
            .map(|current| {
                WebhookDeleted {
                    registration_id: current.registration_id.clone(),
                    secret_version: Some(current.secret_version),
                    why: DeletionReason::GoneRemotely,
                }
                .into()
            })
            .collect(),
    }
}

fn created() -> ProviderCreated {
    ProviderCreated {
        provider_id: provider_id(),
        kind: ProviderKind::Vipps,
        environment: Environment::Test,
        msn: msn(),
        events: WebhookEventType::all_epayment(),
        credentials_fingerprint: Fingerprint::parse("sha256:0").unwrap(),
        public_url: HttpUrl::parse("https://host0.example.no").unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn secret_versions_only_grow_and_the_current_one_is_accepted(steps in prop::collection::vec(step(), 0..40)) {
        let mut log: Vec<DomainEvent> = vec![created().into()];
        let mut provider = Provider::created(meta(1), &created());
        let mut versions_used: Vec<SecretVersion> = Vec::new();
        for (counter, step) in steps.iter().enumerate() {
            for event in events_of(&provider, step, counter) {
                let version = match &event {
                    DomainEvent::WebhookRegistrationRequested(request) => request.secret_version_next,
                    _ => None,
                };
                if let Some(version) = version {
                    prop_assert!(versions_used.iter().all(|used| *used < version), "{:?} reuses or goes back: {:?}", version, versions_used);
                    versions_used.push(version);
                }
                let before = provider.highest_secret_version;
                log.push(event);
                let position = log.len() as u64;
                provider.apply(meta(position), log.last().unwrap());
                prop_assert!(provider.highest_secret_version >= before);
            }
            if let Some(current) = &provider.current {
                let now = meta(log.len() as u64).recorded_at;
                prop_assert!(provider.accepts_secret_version(current.secret_version, now, Duration::ZERO));
                let newest_live = provider.live_registrations().map(|r| r.secret_version).max();
                prop_assert_eq!(newest_live, Some(current.secret_version));
            }
        }
        // Folding the recorded log from scratch gives the same provider.
        let replayed = Provider::replay((1..).map(meta).zip(log.iter())).unwrap().unwrap();
        prop_assert_eq!(replayed, provider);
    }
}
