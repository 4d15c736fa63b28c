//! The payment poller: VIPPS.md §3 asks merchants not to rely on webhooks alone, and a webhook
//! Vipps gave up on (after 7 days of failures) is lost for good. So a payment that is still
//! open (`CREATED`, or money authorized but neither captured nor cancelled) and has had no new
//! fact for a quiet period is polled: its events are read from
//! `GET /epayment/v1/payments/{reference}/events`, and each one not already recorded is
//! appended as a `payment_event_recorded` fact with source `poll`. The webhook dedupe key
//! makes the two paths meet: whichever comes second is a duplicate.
//!
//! Module map: [`due`] (which payments, pure), [`source`] (the ePayment read, behind a trait),
//! [`record`] (appending a polled event), [`round`] (one pass over the enabled providers).
//!
//! Only payments paystate has seen are polled: a reference is learnt from its first webhook.

pub mod due;
pub mod record;
pub mod round;
pub mod source;

pub use due::{is_due, is_open, LastPoll, PollMemory, PollOutcome, HORIZON, MAX_WAIT};
pub use record::{record_polled, PolledFact};
pub use round::{PaymentPoller, RoundSummary, MAX_POLLS_PER_PROVIDER_ROUND, VIEWS_PER_ROUND};
pub use source::PaymentEventsSource;

use crate::shutdown::BackgroundTasks;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// How often a round runs for a quiet period: a tenth of it, between 100 ms and 1 minute.
pub fn round_interval(quiet: Duration) -> Duration {
    (quiet / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Starts the poller under `tasks` when the configuration turns it on
/// ([`crate::ServerConfig::payment_poll_after`]).
pub fn start(tasks: &mut BackgroundTasks, state: &AppState, source: Arc<dyn PaymentEventsSource>) {
    let Some(quiet) = state.config.payment_poll_after else {
        tracing::info!("payment polling is off (--poll-after-secs 0)");
        return;
    };
    let mut poller = PaymentPoller {
        store: state.store.clone(),
        projections: state.projections.clone(),
        source,
        metrics: state.shared().append_metrics.clone(),
        quiet,
        memory: PollMemory::default(),
        cursors: Default::default(),
    };
    let every = round_interval(quiet);
    tasks.spawn("payment poller", move |mut stop| async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.stopped() => break,
                _ = ticker.tick() => {}
            }
            // The views it chooses from must be current: during the catch-up after a start,
            // a payment would look quieter than it is.
            if !poller.projections.is_caught_up() {
                continue;
            }
            tokio::select! {
                () = stop.stopped() => break,
                summary = poller.round() => {
                    if summary.polled > 0 {
                        tracing::debug!(polled = summary.polled, failed = summary.failed, recorded = summary.recorded, "payment polling round");
                    }
                }
            }
        }
    });
}
