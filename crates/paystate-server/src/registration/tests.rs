//! The convergence step against a scripted Webhooks API: each test states a situation (a
//! request, a failure, a crash at some point, a stray registration) and checks the facts
//! recorded and what is left registered.

use super::api::{
    Deletion, NewRegistration, Target, WebhookApi, WebhookApiError, WebhookApiFactory,
};
use super::converge::{Converger, ReactorOptions, Wake};
use super::journal::{self, JournalEntry};
use super::Backoff;
use crate::providers::stream;
use crate::secrets::{MasterKey, SecretVault};
use futures::future::BoxFuture;
use paystate_domain::events::{DomainEvent, ProviderCreated};
use paystate_domain::provider::{decide, Provider, ProviderCommand, RemoteWebhook};
use paystate_domain::{
    Environment, Fingerprint, HttpUrl, Msn, ProviderId, ProviderKind, RegistrationId,
    SecretVersion, WebhookEventType,
};
use paystate_store::{EventStore, MemoryStore, StreamVersion};
use paystate_vipps::WebhookSecret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

const PUBLIC_URL: &str = "https://pay.example.no";

/// One merchant's registrations in one environment, as the fake Vipps keeps them.
#[derive(Debug, Default)]
struct FakeAccount {
    registrations: Vec<(RemoteWebhook, String)>,
    registered: u32,
    deleted: Vec<RegistrationId>,
    failures_left: u32,
    next_id: u32,
}

/// A Webhooks API per environment, each with its own registrations.
#[derive(Debug, Default)]
struct FakeVipps {
    accounts: Mutex<HashMap<Environment, FakeAccount>>,
}

#[derive(Debug)]
struct FakeApi {
    vipps: Arc<FakeVipps>,
    environment: Environment,
}

impl FakeVipps {
    fn with<R>(&self, environment: Environment, f: impl FnOnce(&mut FakeAccount) -> R) -> R {
        let mut accounts = self.accounts.lock().unwrap();
        f(accounts.entry(environment).or_default())
    }

    fn ids(&self, environment: Environment) -> Vec<String> {
        self.with(environment, |a| {
            a.registrations
                .iter()
                .map(|(w, _)| w.id.to_string())
                .collect()
        })
    }

    fn add(&self, environment: Environment, url: &str, secret: &str) -> RegistrationId {
        self.with(environment, |a| {
            a.next_id += 1;
            let id =
                RegistrationId::parse(&format!("{}-stray-{}", environment.as_str(), a.next_id))
                    .unwrap();
            a.registrations.push((
                RemoteWebhook {
                    id: id.clone(),
                    url: HttpUrl::parse(url).unwrap(),
                    events: WebhookEventType::all_epayment(),
                },
                secret.to_owned(),
            ));
            id
        })
    }
}

impl WebhookApi for FakeApi {
    fn list(&self) -> BoxFuture<'_, Result<Vec<RemoteWebhook>, WebhookApiError>> {
        Box::pin(async move {
            self.vipps.with(self.environment, |a| {
                if a.failures_left > 0 {
                    a.failures_left -= 1;
                    return Err(WebhookApiError::new("Vipps answered 503"));
                }
                Ok(a.registrations.iter().map(|(w, _)| w.clone()).collect())
            })
        })
    }

    fn register<'a>(
        &'a self,
        url: &'a HttpUrl,
        events: &'a [WebhookEventType],
    ) -> BoxFuture<'a, Result<NewRegistration, WebhookApiError>> {
        Box::pin(async move {
            self.vipps.with(self.environment, |a| {
                a.next_id += 1;
                a.registered += 1;
                let id = RegistrationId::parse(&format!(
                    "{}-reg-{}",
                    self.environment.as_str(),
                    a.next_id
                ))
                .unwrap();
                let secret = format!("secret-{}-{}", self.environment.as_str(), a.next_id);
                a.registrations.push((
                    RemoteWebhook {
                        id: id.clone(),
                        url: url.clone(),
                        events: events.to_vec(),
                    },
                    secret.clone(),
                ));
                Ok(NewRegistration {
                    id,
                    secret: WebhookSecret::new(secret),
                })
            })
        })
    }

    fn delete<'a>(
        &'a self,
        id: &'a RegistrationId,
    ) -> BoxFuture<'a, Result<Deletion, WebhookApiError>> {
        Box::pin(async move {
            self.vipps.with(self.environment, |a| {
                let before = a.registrations.len();
                a.registrations.retain(|(w, _)| &w.id != id);
                a.deleted.push(id.clone());
                Ok(if a.registrations.len() < before {
                    Deletion::Deleted
                } else {
                    Deletion::AlreadyGone
                })
            })
        })
    }
}

impl WebhookApiFactory for Arc<FakeVipps> {
    fn connect(&self, target: &Target) -> Result<Arc<dyn WebhookApi>, WebhookApiError> {
        Ok(Arc::new(FakeApi {
            vipps: self.clone(),
            environment: target.environment,
        }))
    }
}

struct World {
    store: Arc<dyn EventStore>,
    vault: Arc<SecretVault>,
    vipps: Arc<FakeVipps>,
    converger: Converger,
    id: ProviderId,
}

fn world() -> World {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let vault = Arc::new(SecretVault::open(store.clone(), MasterKey::generate()).unwrap());
    let vipps = Arc::new(FakeVipps::default());
    let converger = Converger {
        store: store.clone(),
        vault: vault.clone(),
        apis: Arc::new(vipps.clone()),
        options: ReactorOptions {
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            handover: Duration::from_secs(5),
            reconcile_interval: Duration::from_secs(600),
        },
    };
    World {
        store,
        vault,
        vipps,
        converger,
        id: ProviderId::parse("vipps-test").unwrap(),
    }
}

impl World {
    fn our_url(&self) -> String {
        format!("{PUBLIC_URL}/webhooks/vipps/{}", self.id)
    }

    async fn create(&self) {
        let created: DomainEvent = ProviderCreated {
            provider_id: self.id.clone(),
            kind: ProviderKind::Vipps,
            environment: Environment::Test,
            msn: Msn::parse("123456").unwrap(),
            events: WebhookEventType::all_epayment(),
            credentials_fingerprint: Fingerprint::parse("c0ffee").unwrap(),
            public_url: HttpUrl::parse(PUBLIC_URL).unwrap(),
        }
        .into();
        stream::append_decided::<stream::StreamError, _>(&*self.store, &self.id, |_| {
            Ok(vec![created.clone()])
        })
        .await
        .unwrap();
    }

    async fn command(&self, command: ProviderCommand) {
        stream::append_decided::<stream::StreamError, _>(&*self.store, &self.id, |provider| {
            Ok(decide(provider.unwrap(), &command).unwrap().events)
        })
        .await
        .unwrap();
    }

    async fn enabled(&self) {
        self.create().await;
        self.command(ProviderCommand::Enable).await;
    }

    async fn step_at(&self, now: OffsetDateTime) -> Wake {
        self.converger.step(&self.id, true, now).await.unwrap()
    }

    async fn step(&self) -> Wake {
        self.step_at(OffsetDateTime::now_utc()).await
    }

    fn provider(&self) -> Provider {
        stream::load(&*self.store, &self.id)
            .unwrap()
            .unwrap()
            .provider
    }

    fn types(&self) -> Vec<String> {
        self.store
            .read_stream(&stream::stream_of(&self.id), StreamVersion(0), 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    fn payload(&self, event_type: &str) -> Vec<serde_json::Value> {
        self.store
            .read_stream(&stream::stream_of(&self.id), StreamVersion(0), 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .map(|e| serde_json::from_slice(&e.payload).unwrap())
            .collect()
    }
}

fn version(n: u32) -> SecretVersion {
    SecretVersion::new(n).unwrap()
}

#[tokio::test]
async fn enabling_registers_once_and_seals_the_secret_before_recording_it() {
    let w = world();
    w.enabled().await;
    assert_eq!(w.step().await, Wake::OnChange);

    let provider = w.provider();
    let current = provider.current.clone().expect("registered");
    assert_eq!(current.secret_version, version(1));
    assert_eq!(current.url.as_str(), w.our_url());
    assert!(provider.pending.is_none());
    let secret = w.vault.webhook_secret(&w.id, version(1)).unwrap().unwrap();
    assert_eq!(current.secret_fingerprint.as_str(), secret.fingerprint());
    assert_eq!(
        w.vipps.ids(Environment::Test),
        vec![current.registration_id.to_string()]
    );
    let registered = &w.payload("webhook_registered")[0];
    assert_eq!(registered["reason"], "enabled");
    assert!(!registered.to_string().contains(secret.expose()));

    // Nothing more to do: a second step registers nothing.
    assert_eq!(w.step().await, Wake::OnChange);
    assert_eq!(w.vipps.with(Environment::Test, |a| a.registered), 1);
    assert_eq!(
        w.types()
            .iter()
            .filter(|t| *t == "webhook_registered")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_disabled_provider_is_left_alone() {
    let w = world();
    w.create().await;
    assert_eq!(w.step().await, Wake::OnChange);
    assert!(w.vipps.ids(Environment::Test).is_empty());
}

#[tokio::test]
async fn failures_are_recorded_with_backoff_and_heal_on_retry() {
    let w = world();
    w.enabled().await;
    w.vipps.with(Environment::Test, |a| a.failures_left = 2);
    let start = OffsetDateTime::now_utc();

    let Wake::At(first_retry) = w.step_at(start).await else {
        panic!("expected a retry time")
    };
    assert!(
        first_retry >= start + Duration::from_secs(2)
            && first_retry <= start + Duration::from_millis(2500)
    );
    let error = w.provider().last_registration_error.unwrap();
    assert_eq!(
        (error.attempt, error.error.as_str()),
        (1, "Vipps answered 503")
    );

    // Before the retry time nothing is attempted.
    assert_eq!(w.step_at(start).await, Wake::At(first_retry));
    assert_eq!(w.vipps.with(Environment::Test, |a| a.failures_left), 1);

    let Wake::At(second_retry) = w.step_at(first_retry).await else {
        panic!("expected a retry time")
    };
    assert!(second_retry >= first_retry + Duration::from_secs(4));
    assert_eq!(w.provider().last_registration_error.unwrap().attempt, 2);

    assert_eq!(w.step_at(second_retry).await, Wake::OnChange);
    let provider = w.provider();
    assert!(provider.last_registration_error.is_none());
    assert_eq!(provider.current.unwrap().secret_version, version(1));
    let failed = w.payload("webhook_registration_failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1]["attempt"], 2);
    assert_eq!(failed[1]["reason"], "enabled");
}

#[tokio::test]
async fn a_registration_made_before_a_crash_is_recorded_not_repeated() {
    let w = world();
    w.enabled().await;
    // The previous run registered, sealed the secret and wrote the journal, then died.
    let id = w
        .vipps
        .add(Environment::Test, &w.our_url(), "secret-from-before");
    w.vault
        .put_webhook_secret(&w.id, version(1), &WebhookSecret::new("secret-from-before"))
        .unwrap();
    journal::put(
        &*w.store,
        &w.id,
        &JournalEntry {
            registration_id: id.clone(),
            secret_version: version(1),
            url: HttpUrl::parse(&w.our_url()).unwrap(),
            events: WebhookEventType::all_epayment(),
            environment: Environment::Test,
            credentials_fingerprint: Fingerprint::parse("c0ffee").unwrap(),
        },
    )
    .unwrap();

    assert_eq!(w.step().await, Wake::OnChange);
    assert_eq!(w.vipps.with(Environment::Test, |a| a.registered), 0);
    let current = w.provider().current.unwrap();
    assert_eq!(current.registration_id, id);
    assert_eq!(current.secret_version, version(1));
    assert_eq!(w.vipps.ids(Environment::Test), vec![id.to_string()]);
}

#[tokio::test]
async fn a_registration_whose_secret_was_lost_in_a_crash_is_replaced() {
    let w = world();
    w.enabled().await;
    // Vipps created it, but the process died before the secret was stored.
    let lost = w.vipps.add(Environment::Test, &w.our_url(), "never-seen");

    assert_eq!(w.step().await, Wake::OnChange);
    let remaining = w.vipps.ids(Environment::Test);
    assert_eq!(remaining.len(), 1);
    assert_ne!(remaining[0], lost.to_string());
    let deleted = w.payload("webhook_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["why"], "unknown_secret");
    assert_eq!(deleted[0]["registration_id"], lost.to_string());
    assert_eq!(
        w.provider().current.unwrap().registration_id.to_string(),
        remaining[0]
    );
}

#[tokio::test]
async fn a_registration_made_before_a_crash_for_an_earlier_url_is_deleted_not_adopted() {
    let w = world();
    w.enabled().await;
    // The previous run registered an earlier URL, sealed and journaled it, then died; the
    // server now runs under another public URL.
    let earlier = "https://old.example.no/webhooks/vipps/vipps-test";
    let id = w
        .vipps
        .add(Environment::Test, earlier, "secret-from-before");
    w.vault
        .put_webhook_secret(&w.id, version(1), &WebhookSecret::new("secret-from-before"))
        .unwrap();
    journal::put(
        &*w.store,
        &w.id,
        &JournalEntry {
            registration_id: id.clone(),
            secret_version: version(1),
            url: HttpUrl::parse(earlier).unwrap(),
            events: WebhookEventType::all_epayment(),
            environment: Environment::Test,
            credentials_fingerprint: Fingerprint::parse("c0ffee").unwrap(),
        },
    )
    .unwrap();

    assert_eq!(w.step().await, Wake::OnChange);
    let current = w.provider().current.unwrap();
    assert_eq!(current.url.as_str(), w.our_url());
    assert_eq!(current.secret_version, version(2));
    assert_eq!(
        w.vipps.ids(Environment::Test),
        vec![current.registration_id.to_string()]
    );
    let deleted = w.payload("webhook_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["registration_id"], id.to_string());
    assert_eq!(deleted[0]["why"], "superseded");
    assert_eq!(deleted[0]["secret_version"], 1);
}

#[tokio::test]
async fn a_secret_sealed_before_a_crash_keeps_its_version() {
    let w = world();
    w.enabled().await;
    // Sealed under version 1, but the journal entry was never written.
    w.vault
        .put_webhook_secret(&w.id, version(1), &WebhookSecret::new("orphan"))
        .unwrap();
    w.vipps.add(Environment::Test, &w.our_url(), "orphan");

    assert_eq!(w.step().await, Wake::OnChange);
    let current = w.provider().current.unwrap();
    assert_eq!(current.secret_version, version(2));
    assert_eq!(
        w.vault
            .webhook_secret(&w.id, version(1))
            .unwrap()
            .unwrap()
            .expose(),
        "orphan"
    );
    assert_eq!(w.vipps.ids(Environment::Test).len(), 1);
}

#[tokio::test]
async fn rotation_registers_anew_then_deletes_the_old_after_the_handover() {
    let w = world();
    w.enabled().await;
    w.step().await;
    let old = w.provider().current.unwrap();

    w.command(ProviderCommand::Rotate).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(w.step_at(now).await, Wake::OnChange);
    let provider = w.provider();
    let new = provider.current.clone().unwrap();
    assert_eq!(
        (new.secret_version, new.reason.as_str()),
        (version(2), "rotate")
    );
    assert_eq!(provider.older.len(), 1);

    // During the handover both registrations exist.
    let Wake::At(due) = w.step_at(now).await else {
        panic!("expected the handover end")
    };
    assert_eq!(due, new.registered_at + Duration::from_secs(5));
    assert_eq!(w.vipps.ids(Environment::Test).len(), 2);

    assert_eq!(w.step_at(due).await, Wake::OnChange);
    assert_eq!(
        w.vipps.ids(Environment::Test),
        vec![new.registration_id.to_string()]
    );
    let deleted = w.payload("webhook_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0]["registration_id"],
        old.registration_id.to_string()
    );
    assert_eq!(deleted[0]["why"], "superseded");
    assert_eq!(deleted[0]["secret_version"], 1);
    // Both secrets stay in the vault for audits.
    assert!(w.vault.webhook_secret(&w.id, version(1)).unwrap().is_some());
    assert!(w.vault.webhook_secret(&w.id, version(2)).unwrap().is_some());
}

#[tokio::test]
async fn an_environment_change_deletes_the_old_registration_where_it_lives() {
    let w = world();
    w.enabled().await;
    w.step().await;
    w.command(ProviderCommand::ChangeEnvironment {
        to: Environment::Production,
    })
    .await;
    let now = OffsetDateTime::now_utc();
    w.step_at(now).await;
    let current = w.provider().current.unwrap();
    assert_eq!(current.reason.as_str(), "environment_changed");
    assert_eq!(
        w.vipps.ids(Environment::Production),
        vec![current.registration_id.to_string()]
    );

    w.step_at(now + Duration::from_secs(60)).await;
    assert!(w.vipps.ids(Environment::Test).is_empty());
    assert_eq!(w.vipps.ids(Environment::Production).len(), 1);
}

#[tokio::test]
async fn reconciliation_removes_strays_for_our_url_and_leaves_foreign_ones() {
    let w = world();
    w.enabled().await;
    w.step().await;
    let ours = w.provider().current.unwrap().registration_id;
    let stray = w.vipps.add(Environment::Test, &w.our_url(), "unknown");
    let foreign = w
        .vipps
        .add(Environment::Test, "https://shop.example.no/vipps", "theirs");

    assert_eq!(w.step().await, Wake::OnChange);
    let mut left = w.vipps.ids(Environment::Test);
    left.sort();
    let mut expected = vec![ours.to_string(), foreign.to_string()];
    expected.sort();
    assert_eq!(left, expected);
    let deleted = w.payload("webhook_deleted");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["registration_id"], stray.to_string());
    assert_eq!(deleted[0]["why"], "unknown_secret");
    // Our registration is untouched.
    assert_eq!(w.provider().current.unwrap().registration_id, ours);
}

#[tokio::test]
async fn a_registration_vipps_dropped_is_recorded_and_repaired() {
    let w = world();
    w.enabled().await;
    w.step().await;
    let gone = w.provider().current.unwrap().registration_id;
    w.vipps.with(Environment::Test, |a| a.registrations.clear());

    w.step().await;
    let deleted = w.payload("webhook_deleted");
    assert_eq!(deleted[0]["why"], "gone_remotely");
    assert_eq!(deleted[0]["registration_id"], gone.to_string());
    assert!(w.provider().pending.is_some());

    w.step().await;
    let current = w.provider().current.unwrap();
    assert_eq!(
        (current.secret_version, current.reason.as_str()),
        (version(2), "repair")
    );
    assert_eq!(
        w.vipps.ids(Environment::Test),
        vec![current.registration_id.to_string()]
    );
}

#[tokio::test]
async fn a_registration_whose_secret_is_not_in_the_vault_is_replaced() {
    let w = world();
    w.enabled().await;
    w.step().await;
    let first = w.provider().current.unwrap();
    // An empty vault, as after importing the log into a new data directory (an export
    // carries no secrets): the log names secret version 1, but nothing can verify with it.
    let empty =
        Arc::new(SecretVault::open(Arc::new(MemoryStore::new()), MasterKey::generate()).unwrap());
    let w = World {
        vault: empty.clone(),
        converger: Converger {
            vault: empty,
            ..w.converger
        },
        ..w
    };
    let now = OffsetDateTime::now_utc();
    w.step_at(now).await;
    assert!(w.provider().pending.is_some(), "a repair is requested");
    w.step_at(now).await;
    let current = w.provider().current.unwrap();
    assert_eq!(
        (current.secret_version, current.reason.as_str()),
        (version(2), "repair")
    );
    assert!(w.vault.webhook_secret(&w.id, version(2)).unwrap().is_some());
    w.step_at(now + Duration::from_secs(60)).await;
    assert_eq!(
        w.vipps.ids(Environment::Test),
        vec![current.registration_id.to_string()]
    );
    assert!(!w
        .vipps
        .ids(Environment::Test)
        .contains(&first.registration_id.to_string()));
}

mod reactor_loop {
    use super::*;
    use crate::registration::RegistrationReactor;
    use crate::shutdown::BackgroundTasks;
    use paystate_store::Position;

    /// Waits, without sleeping, until the log holds `count` events of `event_type`; gives up
    /// after `PATIENCE`.
    async fn await_events(
        store: &Arc<dyn EventStore>,
        event_type: &str,
        count: usize,
    ) -> Vec<serde_json::Value> {
        const PATIENCE: Duration = Duration::from_secs(10);
        let mut head = store.watch_head();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found: Vec<serde_json::Value> = store
                .read_all(Position::START, 10_000)
                .unwrap()
                .into_iter()
                .filter(|e| e.event_type == event_type)
                .map(|e| serde_json::from_slice(&e.payload).unwrap())
                .collect();
            if found.len() >= count {
                return found;
            }
            let changed = tokio::time::timeout_at(deadline, head.changed()).await;
            assert!(
                matches!(changed, Ok(Ok(()))),
                "timed out waiting for {count} {event_type}"
            );
        }
    }

    fn spawn(w: &World, public_url: &str) -> BackgroundTasks {
        let converger = Converger {
            store: w.store.clone(),
            vault: w.vault.clone(),
            apis: Arc::new(w.vipps.clone()),
            options: w.converger.options,
        };
        let reactor = RegistrationReactor::new(converger, HttpUrl::parse(public_url).unwrap());
        let mut tasks = BackgroundTasks::new();
        tasks.spawn("registration reactor", move |stop| reactor.run(stop));
        tasks
    }

    #[tokio::test]
    async fn follows_the_log_and_registers_when_a_provider_is_enabled() {
        let w = world();
        let tasks = spawn(&w, PUBLIC_URL);
        w.create().await;
        w.command(ProviderCommand::Enable).await;
        let registered = await_events(&w.store, "webhook_registered", 1).await;
        assert_eq!(registered[0]["reason"], "enabled");
        assert_eq!(w.vipps.ids(Environment::Test).len(), 1);
        tasks.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_new_public_url_at_start_is_recorded_and_re_registered() {
        let w = world();
        w.enabled().await;
        w.step().await;
        let tasks = spawn(&w, "https://new.example.no/pay");
        let changed = await_events(&w.store, "public_url_changed", 1).await;
        assert_eq!(changed[0]["to"], "https://new.example.no/pay");
        let registered = await_events(&w.store, "webhook_registered", 2).await;
        assert_eq!(registered[1]["reason"], "public_url_changed");
        assert_eq!(
            registered[1]["url"],
            format!("https://new.example.no/pay/webhooks/vipps/{}", w.id)
        );
        tasks.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn a_failing_deletion_is_retried_with_growing_delays() {
    let w = world();
    w.enabled().await;
    w.step().await;
    w.command(ProviderCommand::Rotate).await;
    let start = OffsetDateTime::now_utc();
    w.step_at(start).await;
    let due = w.provider().current.unwrap().registered_at + Duration::from_secs(5);
    let failing = Arc::new(FailingDeletes(w.vipps.clone()));
    let w = World {
        converger: Converger {
            apis: failing,
            ..w.converger
        },
        ..w
    };

    let Wake::At(first) = w.step_at(due).await else {
        panic!("a retry time")
    };
    assert_eq!(first, due + Duration::from_secs(2));
    let later = due + Duration::from_secs(20);
    let Wake::At(second) = w.step_at(later).await else {
        panic!("a retry time")
    };
    assert_eq!(second, later + Duration::from_secs(20));
    let much_later = due + Duration::from_secs(3600);
    let Wake::At(third) = w.step_at(much_later).await else {
        panic!("a retry time")
    };
    assert_eq!(
        third,
        much_later + Duration::from_secs(60),
        "capped at the backoff's maximum"
    );
    assert_eq!(w.vipps.ids(Environment::Test).len(), 2, "nothing deleted");
    assert!(w.payload("webhook_deleted").is_empty());
}

/// The fake Vipps, except that every delete fails.
#[derive(Debug)]
struct FailingDeletes(Arc<FakeVipps>);

#[derive(Debug)]
struct FailingDeleteApi(Arc<dyn WebhookApi>);

impl WebhookApi for FailingDeleteApi {
    fn list(&self) -> BoxFuture<'_, Result<Vec<RemoteWebhook>, WebhookApiError>> {
        self.0.list()
    }

    fn register<'a>(
        &'a self,
        url: &'a HttpUrl,
        events: &'a [WebhookEventType],
    ) -> BoxFuture<'a, Result<NewRegistration, WebhookApiError>> {
        self.0.register(url, events)
    }

    fn delete<'a>(
        &'a self,
        _id: &'a RegistrationId,
    ) -> BoxFuture<'a, Result<Deletion, WebhookApiError>> {
        Box::pin(async { Err(WebhookApiError::new("delete webhook: Vipps answered 500")) })
    }
}

impl WebhookApiFactory for FailingDeletes {
    fn connect(&self, target: &Target) -> Result<Arc<dyn WebhookApi>, WebhookApiError> {
        Ok(Arc::new(FailingDeleteApi(self.0.connect(target)?)))
    }
}
