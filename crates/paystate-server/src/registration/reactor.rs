//! The registration reactor's loop: follow the log, decide which providers need a step, run
//! the steps one at a time, and wake providers whose retry or handover time has come.

use super::converge::{Converger, Wake};
use crate::providers::stream;
use crate::shutdown::StopSignal;
use paystate_domain::provider::{decide, ProviderCommand};
use paystate_domain::{HttpUrl, ProviderId};
use paystate_store::{Envelope, EnvelopeRef, EventStore, Position, Subscription, SubscriptionItem};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Event types of a provider stream that do not call for a step: deliveries and rejections are
/// the ingestion path's business, and the reactor schedules its own retry when it records a
/// failure.
const IGNORED_TYPES: &[&str] = &[
    "webhook_rejected",
    "webhook_rejections_suppressed",
    "webhook_registration_failed",
];

/// How long to wait before following the log again after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How often the reactor's lag is reported while it waits: it only wakes for provider events,
/// which are rare next to webhooks.
const LAG_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The reactor: owns the follow loop. Build with [`RegistrationReactor::new`], run with
/// [`RegistrationReactor::run`] under the server's task set.
#[derive(Debug)]
pub struct RegistrationReactor {
    converger: Converger,
    /// The public URL the server runs with; a provider recorded with another one gets a
    /// `public_url_changed` fact at start.
    public_url: HttpUrl,
    /// Where following the log starts, and the providers known up to there.
    start_after: Position,
    known: BTreeSet<ProviderId>,
}

/// Work waiting for the reactor, per provider.
#[derive(Debug, Default)]
struct Agenda {
    /// Providers to step as soon as possible; `true` = also compare with Vipps' list.
    now: BTreeMap<ProviderId, bool>,
    /// Providers to step at a later time.
    later: BTreeMap<ProviderId, OffsetDateTime>,
}

impl Agenda {
    fn mark(&mut self, id: ProviderId, reconcile: bool) {
        let entry = self.now.entry(id).or_insert(false);
        *entry |= reconcile;
    }

    fn next_wake(&self) -> Option<OffsetDateTime> {
        self.later.values().min().copied()
    }

    fn promote_due(&mut self, now: OffsetDateTime) {
        let due: Vec<ProviderId> = self
            .later
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.later.remove(&id);
            self.mark(id, false);
        }
    }
}

impl RegistrationReactor {
    /// A reactor that follows the log from its start.
    pub fn new(converger: Converger, public_url: HttpUrl) -> RegistrationReactor {
        RegistrationReactor {
            converger,
            public_url,
            start_after: Position::START,
            known: BTreeSet::new(),
        }
    }

    /// Follows the log only after `position`, taking `providers` as every provider created up
    /// to it (what the projections hold at start).
    pub fn starting_after(
        mut self,
        position: Position,
        providers: BTreeSet<ProviderId>,
    ) -> RegistrationReactor {
        self.start_after = position;
        self.known = providers;
        self
    }

    fn store(&self) -> &Arc<dyn EventStore> {
        &self.converger.store
    }

    /// Follows the log until `stop`: catches up (collecting providers and stepping nothing),
    /// records `public_url_changed` where the public URL differs, steps and reconciles every
    /// provider once, then steps providers as their streams change and as their wake-up times
    /// come. A step in progress is finished before stopping.
    pub async fn run(mut self, mut stop: StopSignal) {
        let mut seen = self.start_after;
        let mut subscription = self.subscribe(seen);
        let mut providers: BTreeSet<ProviderId> = std::mem::take(&mut self.known);
        let mut agenda = Agenda::default();
        let mut caught_up = false;
        let interval = self.converger.options.reconcile_interval;
        let mut next_reconcile = tokio::time::Instant::now() + interval;
        let mut lag_report = tokio::time::interval(LAG_REPORT_INTERVAL);

        loop {
            if caught_up {
                while let Some((id, reconcile)) = agenda.now.pop_first() {
                    if stop.is_stopped() {
                        return;
                    }
                    self.step(&id, reconcile, &mut agenda).await;
                }
            }
            let wake_in = agenda.next_wake().map(|at| {
                let delta = at - OffsetDateTime::now_utc();
                Duration::try_from(delta).unwrap_or(Duration::ZERO)
            });
            tokio::select! {
                biased;
                () = stop.stopped() => return,
                item = subscription.next() => match item {
                    Ok(SubscriptionItem::Event(envelope)) => {
                        seen = subscription.position();
                        if let Some((id, reconcile)) = wants_step(&envelope) {
                            providers.insert(id.clone());
                            agenda.mark(id, reconcile);
                        }
                        self.report_lag(seen);
                    }
                    Ok(SubscriptionItem::CaughtUp(position)) => {
                        seen = seen.max(position);
                        caught_up = true;
                        self.report_lag(seen);
                        for id in &providers {
                            self.record_public_url(id).await;
                            agenda.mark(id.clone(), true);
                        }
                        tracing::info!(providers = providers.len(), position = %seen, "registration reactor caught up");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "registration reactor could not read the log; retrying");
                        tokio::select! {
                            () = stop.stopped() => return,
                            () = tokio::time::sleep(STORE_RETRY) => {}
                        }
                        subscription = self.subscribe(seen);
                    }
                },
                _ = lag_report.tick() => self.report_lag(subscription.position()),
                () = sleep_or_forever(wake_in) => agenda.promote_due(OffsetDateTime::now_utc()),
                () = tokio::time::sleep_until(next_reconcile) => {
                    next_reconcile = tokio::time::Instant::now() + interval;
                    for id in &providers {
                        agenda.mark(id.clone(), true);
                    }
                }
            }
        }
    }

    async fn step(&self, id: &ProviderId, reconcile: bool, agenda: &mut Agenda) {
        match self
            .converger
            .step(id, reconcile, OffsetDateTime::now_utc())
            .await
        {
            Ok(Wake::OnChange) => {
                agenda.later.remove(id);
            }
            Ok(Wake::At(at)) => {
                agenda.later.insert(id.clone(), at);
            }
            Err(error) => {
                tracing::warn!(provider = %id, %error, "registration step failed; will retry");
                let retry_at = OffsetDateTime::now_utc() + self.converger.options.backoff.initial;
                agenda.later.insert(id.clone(), retry_at);
            }
        }
    }

    /// Records `public_url_changed` if the provider was set up under another public URL.
    async fn record_public_url(&self, id: &ProviderId) {
        let to = self.public_url.clone();
        let outcome =
            stream::append_decided::<stream::StreamError, _>(&**self.store(), id, |provider| {
                let Some(provider) = provider else {
                    return Ok(Vec::new());
                };
                Ok(decide(
                    provider,
                    &ProviderCommand::ChangePublicUrl { to: to.clone() },
                )
                .map(|decision| decision.events)
                .unwrap_or_default())
            })
            .await;
        match outcome {
            Ok(appended) if appended.last_position.is_some() => {
                tracing::info!(provider = %id, public_url = %to, "the public URL changed since the provider was last registered");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(provider = %id, %error, "could not record the public URL change")
            }
        }
    }

    /// Follows the log after `after`, copying only the events of provider streams that can call
    /// for a step: the webhooks in between are passed over where they lie.
    fn subscribe(&self, after: Position) -> Subscription {
        Subscription::filtered(self.store().clone(), after, may_want_step)
    }

    fn report_lag(&self, seen: Position) {
        if let Ok(head) = self.store().head() {
            let lag = head.0.saturating_sub(seen.0);
            metrics::gauge!(crate::metrics::REACTOR_LAG, "reactor" => "registration")
                .set(lag as f64);
        }
    }
}

/// Whether an event, still borrowed from the store, can call for a step ([`wants_step`] decides).
fn may_want_step(envelope: &EnvelopeRef<'_>) -> bool {
    envelope.stream.starts_with("provider-") && !IGNORED_TYPES.contains(&envelope.event_type)
}

/// The provider an event concerns, if it calls for a step, and whether the step should also
/// compare with Vipps' list.
fn wants_step(envelope: &Envelope) -> Option<(ProviderId, bool)> {
    let name = envelope.stream.as_str().strip_prefix("provider-")?;
    if IGNORED_TYPES.contains(&envelope.event_type.as_str()) {
        return None;
    }
    let id = ProviderId::parse(name).ok()?;
    Some((id, true))
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
