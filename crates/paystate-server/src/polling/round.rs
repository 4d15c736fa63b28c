//! One polling round: for each enabled provider, the due payments (see [`super::due`]), their
//! events read from Vipps, and what was missing recorded.

use super::due::{is_due, PollMemory, PollOutcome};
use super::record::{record_polled, PolledFact};
use super::source::PaymentEventsSource;
use crate::ingestion::record::AppendMetrics;
use crate::metrics::{PAYMENT_POLLS_TOTAL, POLLED_EVENTS_TOTAL};
use crate::registration::Target;
use paystate_domain::payment::PaymentState;
use paystate_domain::provider::{Provider, ProviderState};
use paystate_domain::{ProviderId, Reference};
use paystate_projections::ProjectionsHandle;
use paystate_store::EventStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many payments of one provider are polled per round, so a backlog (the first
/// round after a long stop) is spread over rounds rather than sent to Vipps at once.
pub const MAX_POLLS_PER_PROVIDER_ROUND: usize = 100;
/// A provider's round stops after this many failed polls in a row: Vipps is unreachable or
/// refuses the credentials, and the next round tries again.
const MAX_FAILURES_IN_A_ROW: usize = 3;
/// Payments read from the projections per page, so the read lock is held briefly.
const PAGE: usize = 512;
/// At most this many payments per provider and state are looked at per round.
pub const VIEWS_PER_ROUND: usize = 8 * PAGE;

/// What a round did, summed over providers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundSummary {
    /// Payments whose events were asked for.
    pub polled: usize,
    /// Polls Vipps did not answer usefully.
    pub failed: usize,
    /// Events no webhook had delivered, recorded by this round.
    pub recorded: usize,
}

/// The payment poller: what it reads and writes, and its memory of recent polls.
#[derive(Debug)]
pub struct PaymentPoller {
    /// Where polled facts are appended.
    pub store: Arc<dyn EventStore>,
    /// The payment views due payments are chosen from.
    pub projections: ProjectionsHandle,
    /// The ePayment API reads.
    pub source: Arc<dyn PaymentEventsSource>,
    /// The append histograms ingestion records too.
    pub metrics: AppendMetrics,
    /// How long a payment must be without a new fact before it is polled, and how long
    /// after a poll it waits for the next.
    pub quiet: Duration,
    /// This process's recent polls and each payment's wait for the next.
    pub memory: PollMemory,
    /// Per provider and state, where the next round goes on looking (a listing cursor).
    pub cursors: HashMap<(ProviderId, PaymentState), u64>,
}

impl PaymentPoller {
    /// Polls the due payments of every enabled provider once.
    pub async fn round(&mut self) -> RoundSummary {
        let started = Instant::now();
        self.memory.forget_old(started);
        let providers: Vec<Provider> = self.projections.read(|projections| {
            projections
                .providers()
                .filter(|provider| provider.state == ProviderState::Enabled)
                .cloned()
                .collect()
        });
        let mut summary = RoundSummary::default();
        for provider in &providers {
            self.poll_provider(provider, &mut summary).await;
        }
        summary
    }

    /// The provider's due payments, at most [`MAX_POLLS_PER_PROVIDER_ROUND`]. Each round looks
    /// at no more than [`VIEWS_PER_ROUND`] payments per provider and state, going on next
    /// round where this one stopped, so a store of many old payments costs the same each round.
    fn due_payments(&mut self, provider: &Provider) -> Vec<Reference> {
        let (now, monotonic_now) = (OffsetDateTime::now_utc(), Instant::now());
        let mut due = Vec::new();
        for state in [PaymentState::Created, PaymentState::Authorized] {
            let cursor = self
                .cursors
                .entry((provider.id.clone(), state))
                .or_insert(0);
            let mut looked_at = 0;
            while looked_at < VIEWS_PER_ROUND && due.len() < MAX_POLLS_PER_PROVIDER_ROUND {
                let page = self.projections.read(|projections| {
                    projections.list_payments(Some(&provider.id), Some(state), *cursor, PAGE)
                });
                for view in &page.payments {
                    looked_at += 1;
                    let last_poll = self.memory.last_poll(&provider.id, &view.reference);
                    if is_due(view, now, self.quiet, last_poll, monotonic_now) {
                        due.push(view.reference.clone());
                    }
                }
                match page.next {
                    Some(next) => *cursor = next,
                    None => {
                        // The end: the next round starts over from the first payment.
                        *cursor = 0;
                        break;
                    }
                }
            }
        }
        due.truncate(MAX_POLLS_PER_PROVIDER_ROUND);
        due
    }

    async fn poll_provider(&mut self, provider: &Provider, summary: &mut RoundSummary) {
        let due = self.due_payments(provider);
        if due.is_empty() {
            return;
        }
        let target = Target {
            provider: provider.id.clone(),
            environment: provider.environment,
            msn: provider.msn.clone(),
            credentials_fingerprint: provider.credentials_fingerprint.clone(),
        };
        let correlation = Uuid::now_v7();
        let mut failures_in_a_row = 0;
        for reference in due {
            let polled_at = Instant::now();
            summary.polled += 1;
            let outcome = self
                .poll_payment(provider, &target, &reference, correlation)
                .await;
            let found_new = matches!(outcome, Ok(recorded) if recorded > 0);
            let last_fact = self.projections.read(|projections| {
                projections
                    .payment(&provider.id, &reference)
                    .and_then(|payment| payment.view().last_event_at)
            });
            self.memory.remember(
                provider.id.clone(),
                reference,
                PollOutcome {
                    at: polled_at,
                    found_new,
                    last_fact,
                },
                self.quiet,
            );
            match outcome {
                Ok(recorded) => {
                    failures_in_a_row = 0;
                    summary.recorded += recorded;
                }
                Err(PollError::Vipps) => {
                    summary.failed += 1;
                    failures_in_a_row += 1;
                    if failures_in_a_row == MAX_FAILURES_IN_A_ROW {
                        tracing::warn!(provider = %provider.id, "{MAX_FAILURES_IN_A_ROW} polls failed in a row; the provider's other payments wait for the next round");
                        return;
                    }
                }
                Err(PollError::Store) => return,
            }
        }
    }

    /// Polls one payment and records what is missing; the number of facts recorded.
    async fn poll_payment(
        &self,
        provider: &Provider,
        target: &Target,
        reference: &Reference,
        correlation: Uuid,
    ) -> Result<usize, PollError> {
        let label = provider.id.to_string();
        let events = match self.source.payment_events(target, reference).await {
            Ok(events) => events,
            Err(error) => {
                metrics::counter!(PAYMENT_POLLS_TOTAL, "provider" => label, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(provider = %provider.id, %reference, %error, "could not poll a payment's events at Vipps");
                return Err(PollError::Vipps);
            }
        };
        metrics::counter!(PAYMENT_POLLS_TOTAL, "provider" => label.clone(), "outcome" => "answered").increment(1);
        let mut recorded = 0;
        for item in &events {
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(provider = %provider.id, %reference, %error, "a polled payment event is not usable");
                    metrics::counter!(POLLED_EVENTS_TOTAL, "provider" => label.clone(), "outcome" => "unreadable").increment(1);
                    continue;
                }
            };
            let outcome = record_polled(
                self.store.as_ref(),
                &self.metrics,
                provider,
                event,
                correlation,
            )
            .await;
            let counted = match outcome {
                Ok(PolledFact::Recorded { position }) => {
                    recorded += 1;
                    tracing::info!(provider = %provider.id, %reference, event = %event.name, position = position.0, "recorded a payment event that no webhook had delivered");
                    "recorded"
                }
                Ok(PolledFact::Known) => "known",
                Ok(PolledFact::Unreadable { error }) => {
                    tracing::warn!(provider = %provider.id, %reference, %error, "a polled payment event is not usable");
                    "unreadable"
                }
                Err(error) => {
                    // The store refuses writes; the next round tries again.
                    tracing::error!(provider = %provider.id, %reference, error = %error.message(), "could not record a polled payment event");
                    return Err(PollError::Store);
                }
            };
            metrics::counter!(POLLED_EVENTS_TOTAL, "provider" => label.clone(), "outcome" => counted).increment(1);
        }
        Ok(recorded)
    }
}

/// Why a poll ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollError {
    /// Vipps did not answer usefully (logged and counted).
    Vipps,
    /// The store refused the write (logged); the provider's round ends.
    Store,
}
