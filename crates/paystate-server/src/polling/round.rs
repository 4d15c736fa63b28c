//! One polling round: for each enabled provider, the due payments (see [`super::due`]), their
//! events read from Vipps, and what was missing recorded.

use super::due::{is_due, PollMemory};
use super::record::{record_polled, PolledFact};
use super::source::PaymentEventsSource;
use crate::ingestion::record::AppendMetrics;
use crate::metrics::{PAYMENT_POLLS_TOTAL, POLLED_EVENTS_TOTAL};
use crate::registration::Target;
use paystate_domain::payment::PaymentState;
use paystate_domain::provider::{Provider, ProviderState};
use paystate_domain::Reference;
use paystate_projections::ProjectionsHandle;
use paystate_store::EventStore;
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

/// What a round did, summed over providers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundSummary {
    pub polled: usize,
    pub failed: usize,
    /// Events no webhook had delivered, recorded by this round.
    pub recorded: usize,
}

/// The payment poller: what it reads and writes, and its memory of recent polls.
#[derive(Debug)]
pub struct PaymentPoller {
    pub store: Arc<dyn EventStore>,
    pub projections: ProjectionsHandle,
    pub source: Arc<dyn PaymentEventsSource>,
    pub metrics: AppendMetrics,
    /// How long a payment must be without a new fact before it is polled, and how long
    /// after a poll it waits for the next.
    pub quiet: Duration,
    pub memory: PollMemory,
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

    /// The provider's due payments, open ones first seen first, at most
    /// [`MAX_POLLS_PER_PROVIDER_ROUND`].
    fn due_payments(&self, provider: &Provider) -> Vec<Reference> {
        let (now, monotonic_now) = (OffsetDateTime::now_utc(), Instant::now());
        let mut due = Vec::new();
        for state in [PaymentState::Created, PaymentState::Authorized] {
            let mut after = 0;
            loop {
                let page = self.projections.read(|projections| {
                    projections.list_payments(Some(&provider.id), Some(state), after, PAGE)
                });
                for view in &page.payments {
                    let last_poll = self.memory.last_poll(&provider.id, &view.reference);
                    if is_due(view, now, self.quiet, last_poll, monotonic_now) {
                        due.push(view.reference.clone());
                        if due.len() == MAX_POLLS_PER_PROVIDER_ROUND {
                            return due;
                        }
                    }
                }
                match page.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
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
            self.memory.remember(
                provider.id.clone(),
                reference,
                polled_at,
                found_new,
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
        for event in &events {
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
