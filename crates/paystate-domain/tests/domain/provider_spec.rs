//! The provider aggregate and its decisions, as SPEC §3.2 and VIPPS.md §6 state them.

use crate::support::{at, meta, msn, provider_id};
use paystate_domain::events::{
    DeletionReason, DomainEvent, ProviderCreated, RegistrationReason, WebhookDeleted,
    WebhookRegistered, WebhookRegistrationFailed,
};
use paystate_domain::provider::{
    decide, decide_create, reconcile, superseded_registrations, Decision, DecisionError, Provider,
    ProviderCommand, ProviderState, RemoteClass, RemoteWebhook,
};
use paystate_domain::{
    Environment, Fingerprint, HttpUrl, ProviderKind, RegistrationId, SecretVersion,
    WebhookEventType,
};
use time::Duration;

fn created() -> ProviderCreated {
    ProviderCreated {
        provider_id: provider_id(),
        kind: ProviderKind::Vipps,
        environment: Environment::Test,
        msn: msn(),
        events: WebhookEventType::all_epayment(),
        credentials_fingerprint: Fingerprint::parse("sha256:aaaa").unwrap(),
        public_url: HttpUrl::parse("https://pay.example.no").unwrap(),
    }
}

/// A provider built by recording every event its decisions produce, as the server would.
struct Recorder {
    provider: Provider,
    position: u64,
}

impl Recorder {
    fn new() -> Recorder {
        let decision = decide_create(None, created()).unwrap();
        let mut events = decision.events.into_iter();
        let Some(DomainEvent::ProviderCreated(first)) = events.next() else {
            panic!("create records provider_created first");
        };
        Recorder {
            provider: Provider::created(meta(1), &first),
            position: 1,
        }
    }

    fn record(&mut self, event: impl Into<DomainEvent>) {
        self.position += 1;
        self.provider.apply(meta(self.position), &event.into());
    }

    fn run(&mut self, command: ProviderCommand) -> Decision {
        let decision = decide(&self.provider, &command).unwrap();
        for event in decision.events.clone() {
            self.record(event);
        }
        decision
    }

    /// Plays the registration reactor: Vipps answers 201 for the pending request.
    fn registered(&mut self, id: &str) {
        let pending = self
            .provider
            .pending
            .clone()
            .expect("a registration is pending");
        self.record(WebhookRegistered {
            registration_id: RegistrationId::parse(id).unwrap(),
            url: self.provider.webhook_url().unwrap(),
            events: self.provider.events.clone(),
            secret_version: pending.secret_version.unwrap(),
            secret_fingerprint: Fingerprint::parse("sha256:bbbb").unwrap(),
            reason: pending.reason,
        });
    }

    fn enabled_and_registered() -> Recorder {
        let mut recorder = Recorder::new();
        recorder.run(ProviderCommand::Enable);
        recorder.registered("reg-1");
        recorder
    }
}

/// Runs `command` and checks the recorded event types and the registration reason.
fn check(
    recorder: &mut Recorder,
    command: ProviderCommand,
    types: &[&str],
    reason: Option<RegistrationReason>,
) {
    let decision = recorder.run(command.clone());
    let actual: Vec<_> = decision.events.iter().map(DomainEvent::type_name).collect();
    assert_eq!(actual, types, "{command:?}");
    assert_eq!(decision.registration, reason, "{command:?}");
}

const REQUESTED: &str = "webhook_registration_requested";

#[test]
fn a_new_provider_is_disabled_and_unregistered() {
    let recorder = Recorder::new();
    assert_eq!(recorder.provider.state, ProviderState::Disabled);
    assert!(recorder.provider.view().webhook.is_none());
    let again = decide_create(Some(&recorder.provider), created());
    assert_eq!(again, Err(DecisionError::ProviderExists(provider_id())));
}

#[test]
fn enabling_registers_and_enabling_again_does_nothing() {
    let mut recorder = Recorder::new();
    check(
        &mut recorder,
        ProviderCommand::Enable,
        &["provider_enabled", REQUESTED],
        Some(RegistrationReason::Enabled),
    );
    check(&mut recorder, ProviderCommand::Enable, &[], None);
}

#[test]
fn going_to_enabled_again_registers_again() {
    let mut recorder = Recorder::enabled_and_registered();
    check(
        &mut recorder,
        ProviderCommand::Disable,
        &["provider_disabled"],
        None,
    );
    check(
        &mut recorder,
        ProviderCommand::Enable,
        &["provider_enabled", REQUESTED],
        Some(RegistrationReason::Enabled),
    );
}

#[test]
fn changes_while_disabled_register_nothing() {
    let mut recorder = Recorder::new();
    let fingerprint = Fingerprint::parse("sha256:cccc").unwrap();
    check(
        &mut recorder,
        ProviderCommand::UpdateCredentials {
            credentials_fingerprint: fingerprint,
        },
        &["credentials_updated"],
        None,
    );
    check(
        &mut recorder,
        ProviderCommand::ChangeEnvironment {
            to: Environment::Production,
        },
        &["environment_changed"],
        None,
    );
    let url = HttpUrl::parse("https://new.example.no").unwrap();
    check(
        &mut recorder,
        ProviderCommand::ChangePublicUrl { to: url },
        &["public_url_changed"],
        None,
    );
}

#[test]
fn changes_while_enabled_register_with_their_reason() {
    let mut recorder = Recorder::enabled_and_registered();
    let fingerprint = Fingerprint::parse("sha256:cccc").unwrap();
    check(
        &mut recorder,
        ProviderCommand::UpdateCredentials {
            credentials_fingerprint: fingerprint,
        },
        &["credentials_updated", REQUESTED],
        Some(RegistrationReason::CredentialsChanged),
    );
    recorder.registered("reg-2");
    check(
        &mut recorder,
        ProviderCommand::ChangeEnvironment {
            to: Environment::Production,
        },
        &["environment_changed", REQUESTED],
        Some(RegistrationReason::EnvironmentChanged),
    );
    recorder.registered("reg-3");
    check(
        &mut recorder,
        ProviderCommand::ChangePublicUrl {
            to: HttpUrl::parse("https://new.example.no").unwrap(),
        },
        &["public_url_changed", REQUESTED],
        Some(RegistrationReason::PublicUrlChanged),
    );
}

#[test]
fn setting_a_value_the_provider_already_has_records_nothing() {
    let mut recorder = Recorder::enabled_and_registered();
    let same_fingerprint = recorder.provider.credentials_fingerprint.clone();
    check(
        &mut recorder,
        ProviderCommand::UpdateCredentials {
            credentials_fingerprint: same_fingerprint,
        },
        &[],
        None,
    );
    check(
        &mut recorder,
        ProviderCommand::ChangeEnvironment {
            to: Environment::Test,
        },
        &[],
        None,
    );
    let same_url = recorder.provider.public_url.clone();
    check(
        &mut recorder,
        ProviderCommand::ChangePublicUrl { to: same_url },
        &[],
        None,
    );
}

#[test]
fn manual_register_only_when_there_is_no_working_registration() {
    let mut recorder = Recorder::enabled_and_registered();
    check(
        &mut recorder,
        ProviderCommand::Register,
        &["webhook_registration_skipped"],
        None,
    );

    recorder.record(WebhookDeleted {
        registration_id: RegistrationId::parse("reg-1").unwrap(),
        secret_version: None,
        why: DeletionReason::GoneRemotely,
    });
    check(
        &mut recorder,
        ProviderCommand::Register,
        &[REQUESTED],
        Some(RegistrationReason::Manual),
    );
    // While that request is pending, asking again registers nothing more.
    check(
        &mut recorder,
        ProviderCommand::Register,
        &["webhook_registration_skipped"],
        None,
    );
}

#[test]
fn rotate_always_registers_and_needs_an_enabled_provider() {
    let mut recorder = Recorder::enabled_and_registered();
    check(
        &mut recorder,
        ProviderCommand::Rotate,
        &[REQUESTED],
        Some(RegistrationReason::Rotate),
    );
    recorder.registered("reg-2");
    check(
        &mut recorder,
        ProviderCommand::Rotate,
        &[REQUESTED],
        Some(RegistrationReason::Rotate),
    );

    let disabled = Recorder::new();
    for command in [ProviderCommand::Rotate, ProviderCommand::Register] {
        assert_eq!(
            decide(&disabled.provider, &command),
            Err(DecisionError::ProviderDisabled(provider_id()))
        );
    }
}

#[test]
fn secret_versions_only_grow() {
    let mut recorder = Recorder::enabled_and_registered();
    assert_eq!(
        recorder.provider.current.as_ref().unwrap().secret_version,
        SecretVersion::FIRST
    );
    // A request that fails still uses up its version: the next request never reuses it.
    recorder.run(ProviderCommand::Rotate);
    recorder.record(WebhookRegistrationFailed {
        reason: RegistrationReason::Rotate,
        error: "503 from Vipps".into(),
        attempt: 1,
        retry_at: Some(at(60)),
    });
    assert_eq!(
        recorder.provider.view().last_registration_error.as_deref(),
        Some("503 from Vipps")
    );
    recorder.run(ProviderCommand::Rotate);
    recorder.registered("reg-3");
    let view = recorder.provider.view();
    assert_eq!(
        view.webhook.unwrap().secret_version,
        SecretVersion::new(3).unwrap()
    );
    assert_eq!(view.last_registration_error, None);
    assert_eq!(view.registrations_total, 2);
}

#[test]
fn accepted_secret_versions_are_live_ones_and_recently_deleted_ones() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    recorder.registered("reg-2");
    let grace = Duration::minutes(10);
    let now = meta(recorder.position).recorded_at;
    let versions = |p: &Provider, now| -> Vec<u32> {
        p.accepted_secret_versions(now, grace)
            .into_iter()
            .map(SecretVersion::get)
            .collect()
    };
    assert_eq!(
        versions(&recorder.provider, now),
        [2, 1],
        "the old registration is still live"
    );

    let deletions = superseded_registrations(&recorder.provider);
    assert_eq!(deletions.len(), 1);
    recorder.record(WebhookDeleted {
        registration_id: deletions[0].registration_id.clone(),
        secret_version: deletions[0].secret_version,
        why: deletions[0].why,
    });
    let deleted_at = meta(recorder.position).recorded_at;
    assert_eq!(
        versions(&recorder.provider, deleted_at + Duration::minutes(9)),
        [2, 1]
    );
    assert_eq!(
        versions(&recorder.provider, deleted_at + Duration::minutes(10)),
        [2]
    );
}

#[test]
fn an_unbounded_grace_keeps_deleted_secrets_without_overflowing() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.record(WebhookDeleted {
        registration_id: RegistrationId::parse("reg-1").unwrap(),
        secret_version: Some(SecretVersion::FIRST),
        why: DeletionReason::GoneRemotely,
    });
    let versions = recorder
        .provider
        .accepted_secret_versions(at(1_000_000), Duration::MAX);
    assert_eq!(versions, [SecretVersion::FIRST]);
}

#[test]
fn a_pending_registrations_version_is_accepted_before_it_is_recorded() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    let now = meta(recorder.position).recorded_at;
    let versions: Vec<u32> = recorder
        .provider
        .accepted_secret_versions(now, Duration::ZERO)
        .into_iter()
        .map(SecretVersion::get)
        .collect();
    assert_eq!(versions, [2, 1]);
}

fn remote(id: &str, url: &str) -> RemoteWebhook {
    RemoteWebhook {
        id: RegistrationId::parse(id).unwrap(),
        url: HttpUrl::parse(url).unwrap(),
        events: WebhookEventType::all_epayment(),
    }
}

const OUR_URL: &str = "https://pay.example.no/webhooks/vipps/vipps-test";

#[test]
fn reconciliation_classifies_remote_webhooks_and_deletes_only_ours() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    recorder.registered("reg-2");
    let listed = [
        remote("reg-2", OUR_URL),
        remote("reg-1", OUR_URL),
        remote("stray-14", OUR_URL),
        remote("erp-hook", "https://erp.example.no/vipps"),
    ];
    let plan = reconcile(&recorder.provider, &listed);
    let classes: Vec<_> = plan.remote.iter().map(|w| w.class).collect();
    assert_eq!(
        classes,
        [
            RemoteClass::OursCurrent,
            RemoteClass::OursOld,
            RemoteClass::OursUnknownSecret,
            RemoteClass::Foreign
        ]
    );
    let deleted: Vec<_> = plan
        .delete
        .iter()
        .map(|d| (d.registration_id.as_str(), d.why))
        .collect();
    assert_eq!(
        deleted,
        [
            ("reg-1", DeletionReason::Superseded),
            ("stray-14", DeletionReason::UnknownSecret)
        ]
    );
    assert!(plan.gone.is_empty());
    assert_eq!(plan.register, None);
}

#[test]
fn reconciliation_deletes_again_what_it_deleted_but_vipps_still_lists() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    recorder.registered("reg-2");
    for (id, version, why) in [
        (
            "reg-1",
            Some(SecretVersion::FIRST),
            DeletionReason::Superseded,
        ),
        ("stray-14", None, DeletionReason::UnknownSecret),
    ] {
        recorder.record(WebhookDeleted {
            registration_id: RegistrationId::parse(id).unwrap(),
            secret_version: version,
            why,
        });
    }
    let listed = [
        remote("reg-2", OUR_URL),
        remote("reg-1", OUR_URL),
        remote("stray-14", OUR_URL),
    ];
    let plan = reconcile(&recorder.provider, &listed);
    let classes: Vec<_> = plan.remote.iter().map(|w| w.class).collect();
    assert_eq!(
        classes,
        [
            RemoteClass::OursCurrent,
            RemoteClass::OursOld,
            RemoteClass::OursUnknownSecret
        ]
    );
    let deleted: Vec<_> = plan
        .delete
        .iter()
        .map(|d| (d.registration_id.as_str(), d.why))
        .collect();
    assert_eq!(
        deleted,
        [
            ("reg-1", DeletionReason::Superseded),
            ("stray-14", DeletionReason::UnknownSecret)
        ]
    );
}

#[test]
fn reconciliation_repairs_a_registration_vipps_no_longer_lists() {
    let recorder = Recorder::enabled_and_registered();
    let plan = reconcile(
        &recorder.provider,
        &[remote("erp-hook", "https://erp.example.no/vipps")],
    );
    let gone: Vec<_> = plan
        .gone
        .iter()
        .map(|d| d.registration_id.as_str())
        .collect();
    assert_eq!(gone, ["reg-1"]);
    assert_eq!(plan.register, Some(RegistrationReason::Repair));
    assert!(plan.delete.is_empty(), "a foreign webhook is never deleted");
}

#[test]
fn reconciliation_keeps_old_registrations_until_the_current_one_is_listed() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    recorder.registered("reg-2");
    let plan = reconcile(&recorder.provider, &[remote("reg-1", OUR_URL)]);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.register, Some(RegistrationReason::Repair));
}

#[test]
fn reconciliation_leaves_unknown_ids_alone_while_a_registration_is_pending() {
    let mut recorder = Recorder::enabled_and_registered();
    recorder.run(ProviderCommand::Rotate);
    let plan = reconcile(
        &recorder.provider,
        &[remote("reg-1", OUR_URL), remote("just-made", OUR_URL)],
    );
    assert!(plan.delete.is_empty());
    assert_eq!(plan.register, None);
}

#[test]
fn repair_is_skipped_when_disabled_or_pending() {
    let disabled = Recorder::new();
    assert!(decide(&disabled.provider, &ProviderCommand::Repair)
        .unwrap()
        .is_noop());
    let mut recorder = Recorder::enabled_and_registered();
    check(
        &mut recorder,
        ProviderCommand::Repair,
        &[REQUESTED],
        Some(RegistrationReason::Repair),
    );
    check(&mut recorder, ProviderCommand::Repair, &[], None);
}

#[test]
fn the_provider_view_matches_the_api() {
    let recorder = Recorder::enabled_and_registered();
    let json = serde_json::to_value(recorder.provider.view()).unwrap();
    assert_eq!(json["id"], "vipps-test");
    assert_eq!(json["kind"], "vipps");
    assert_eq!(json["environment"], "test");
    assert_eq!(json["state"], "enabled");
    assert_eq!(json["webhook"]["registration_id"], "reg-1");
    assert_eq!(json["webhook"]["url"], OUR_URL);
    assert_eq!(json["webhook"]["secret_version"], 1);
    assert_eq!(json["webhook"]["reason"], "enabled");
    assert_eq!(json["registrations_total"], 1);
    assert_eq!(json["last_registration_error"], serde_json::Value::Null);
    assert_eq!(json["webhooks"]["accepted"], 0);
    assert_eq!(
        json["position"], 4,
        "created, enabled, requested, registered"
    );
}

#[test]
fn a_public_url_that_cannot_hold_the_webhook_path_is_refused() {
    let mut with_query = created();
    with_query.public_url = HttpUrl::parse("https://pay.example.no/?tenant=1").unwrap();
    assert!(matches!(
        decide_create(None, with_query),
        Err(DecisionError::InvalidPublicUrl(_))
    ));
    let recorder = Recorder::enabled_and_registered();
    let command = ProviderCommand::ChangePublicUrl {
        to: HttpUrl::parse("https://x.example.no/#f").unwrap(),
    };
    assert!(matches!(
        decide(&recorder.provider, &command),
        Err(DecisionError::InvalidPublicUrl(_))
    ));
}

#[test]
fn a_disabled_provider_has_no_registration_to_make() {
    let mut recorder = Recorder::new();
    recorder.run(ProviderCommand::Enable);
    assert!(recorder.provider.registration_to_make().is_some());
    recorder.run(ProviderCommand::Disable);
    assert!(recorder.provider.registration_to_make().is_none());
}

#[test]
fn deliveries_of_this_provider_are_counted_and_others_ignored() {
    use paystate_domain::events::{
        HeaderSummary, RejectionCode, RejectionDiagnosis, WebhookDuplicate, WebhookRejected,
        WebhookRejectionsSuppressed,
    };
    let mut recorder = Recorder::enabled_and_registered();
    let fact = crate::support::fact(0, "CREATED", 100);
    let duplicate = |provider: &str| WebhookDuplicate {
        provider_id: paystate_domain::ProviderId::parse(provider).unwrap(),
        original_position: 1,
        identity: fact.identity(),
        secret_version: SecretVersion::FIRST,
        received_at: at(3),
        conflict: None,
    };
    recorder.record(duplicate("vipps-test"));
    recorder.record(duplicate("someone-else"));
    recorder.record(WebhookRejected {
        provider_id: provider_id(),
        code: RejectionCode::StaleDate,
        diagnosis: RejectionDiagnosis::ClockSkew { skew_seconds: 900 },
        remote_addr: None,
        headers: HeaderSummary::default(),
        body_sha256: String::new(),
        body_size: 0,
        received_at: at(4),
    });
    recorder.record(WebhookRejectionsSuppressed {
        provider_id: provider_id(),
        count: 40,
        window_start: at(0),
        window_end: at(60),
    });
    let counters = recorder.provider.view().webhooks;
    assert_eq!(
        (counters.accepted, counters.duplicates, counters.rejected),
        (0, 1, 41)
    );
}

#[test]
fn a_provider_stream_must_start_with_provider_created() {
    let events = [DomainEvent::from(
        paystate_domain::events::ProviderEnabled {},
    )];
    let result = Provider::replay((1..).map(meta).zip(events.iter()));
    assert!(result.is_err());
    assert_eq!(Provider::replay(std::iter::empty()), Ok(None));
}
