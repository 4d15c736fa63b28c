//! The delivery log: one record per attempt (and per dropped delivery), in the order they
//! happened, so tests can await a condition instead of sleeping.
//!
//! It keeps the most recent [`SimConfig::delivery_log_capacity`](crate::SimConfig) records and
//! discards the oldest beyond that, so a simulator that runs for long stays within bounded
//! memory. A record's `seq` counts every record ever appended, discarded or not, and the
//! totals (attempts, delivered, dropped, discarded) cover the whole run.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

/// One line of the delivery log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// Position in the log, from 0.
    pub seq: u64,
    /// One event copy to one registration; all its attempts share this id.
    pub delivery_id: u64,
    /// The registration (also the `Webhook-Id` header).
    pub registration_id: Uuid,
    /// The merchant.
    pub msn: String,
    /// The payment.
    pub reference: String,
    /// The event name, e.g. `CAPTURED`.
    pub event: String,
    /// The operation's PSP reference.
    pub psp_reference: String,
    /// Which copy, from 1 (more than one with the `deliveries_per_event` fault).
    pub copy: u32,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The `x-ms-date` the attempt was signed with, when one was signed.
    pub x_ms_date: Option<String>,
    /// Whether it was signed with a wrong secret on purpose.
    pub wrong_secret: bool,
    /// What happened.
    pub outcome: AttemptOutcome,
}

impl DeliveryRecord {
    /// True when the receiver accepted this attempt and the simulator counted it.
    pub fn delivered(&self) -> bool {
        matches!(self.outcome, AttemptOutcome::Answered { status } if (200..300).contains(&status))
    }

    /// True when this records a delivery given up for good rather than an attempt: its
    /// registration was deleted or its retries ran out.
    pub fn dropped(&self) -> bool {
        matches!(
            self.outcome,
            AttemptOutcome::RegistrationDeleted | AttemptOutcome::GaveUp
        )
    }
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered with this status (2xx = delivered, anything else = retry).
    Answered {
        /// The HTTP status.
        status: u16,
    },
    /// No answer: connection refused, timeout, reset.
    Failed {
        /// Why, in words.
        error: String,
    },
    /// Not sent: the `fail_first_attempts` fault in `unreachable` mode.
    NotSent,
    /// Sent and answered, but treated as failed: `fail_first_attempts` in `answer_lost` mode.
    AnswerLost {
        /// The status the receiver gave.
        status: u16,
    },
    /// Not sent and never will be: the registration was deleted.
    RegistrationDeleted,
    /// Not sent and never will be: still failing when the retry schedule ran out.
    GaveUp,
}

/// Counts over every record ever appended, including those no longer kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogTotals {
    /// Records appended: the next record's `seq`.
    pub appended: u64,
    /// Attempts made (records that are not [`DeliveryRecord::dropped`]).
    pub attempts: u64,
    /// Attempts the receiver accepted.
    pub delivered: u64,
    /// Deliveries given up for good.
    pub dropped: u64,
    /// Records discarded, oldest first, to stay within the capacity.
    pub discarded: u64,
}

/// The most recent records and the totals, behind one lock so that they always agree.
#[derive(Debug)]
struct Kept {
    records: VecDeque<DeliveryRecord>,
    capacity: NonZeroUsize,
    totals: LogTotals,
}

/// The log and a signal that fires on every append.
#[derive(Debug)]
pub(crate) struct DeliveryLog {
    /// std `Mutex`: appends and snapshots are short and never span an `.await`.
    kept: Mutex<Kept>,
    /// The number of records appended so far; waiters re-check their condition when it
    /// changes.
    appended: watch::Sender<u64>,
}

impl DeliveryLog {
    /// An empty log that keeps at most `capacity` records.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            kept: Mutex::new(Kept {
                // Grows as records come, so a large capacity costs nothing until it is used.
                records: VecDeque::new(),
                capacity,
                totals: LogTotals::default(),
            }),
            appended: watch::Sender::new(0),
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn append(&self, mut record: DeliveryRecord) {
        tracing::info!(
            registration = %record.registration_id,
            reference = %record.reference,
            event = %record.event,
            copy = record.copy,
            attempt = record.attempt,
            outcome = ?record.outcome,
            "webhook delivery"
        );
        let appended = {
            let mut kept = self.kept();
            let totals = &mut kept.totals;
            record.seq = totals.appended;
            totals.appended += 1;
            if record.dropped() {
                totals.dropped += 1;
            } else {
                totals.attempts += 1;
            }
            if record.delivered() {
                totals.delivered += 1;
            }
            if kept.records.len() >= kept.capacity.get() {
                kept.records.pop_front();
                kept.totals.discarded += 1;
            }
            kept.records.push_back(record);
            kept.totals.appended
        };
        self.appended.send_replace(appended);
    }

    /// The records kept, oldest first.
    pub fn snapshot(&self) -> Vec<DeliveryRecord> {
        self.kept().records.iter().cloned().collect()
    }

    /// The records kept whose `seq` is at least `since`, oldest first.
    pub fn snapshot_since(&self, since: u64) -> Vec<DeliveryRecord> {
        let kept = self.kept();
        // Records are kept in `seq` order without gaps.
        let oldest = kept.records.front().map_or(0, |record| record.seq);
        let skip = usize::try_from(since.saturating_sub(oldest)).unwrap_or(usize::MAX);
        kept.records.iter().skip(skip).cloned().collect()
    }

    /// The counts over the whole run.
    pub fn totals(&self) -> LogTotals {
        self.kept().totals
    }

    /// Waits until `condition` holds for the records kept, or `timeout` passes; returns them as
    /// they were when the condition held, or `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&[DeliveryRecord]) -> bool,
    ) -> Option<Vec<DeliveryRecord>> {
        let mut appended = self.appended.subscribe();
        let deadline = super::deadline_after(timeout);
        loop {
            appended.borrow_and_update();
            let records = self.snapshot();
            if condition(&records) {
                return Some(records);
            }
            match tokio::time::timeout_at(deadline, appended.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: AttemptOutcome) -> DeliveryRecord {
        DeliveryRecord {
            seq: u64::MAX,
            delivery_id: 0,
            registration_id: Uuid::nil(),
            msn: "123456".into(),
            reference: "order-1".into(),
            event: "CREATED".into(),
            psp_reference: "psp-1".into(),
            copy: 1,
            attempt: 1,
            x_ms_date: None,
            wrong_secret: false,
            outcome,
        }
    }

    fn log_of(capacity: usize) -> DeliveryLog {
        DeliveryLog::new(NonZeroUsize::new(capacity).unwrap())
    }

    fn seqs(records: &[DeliveryRecord]) -> Vec<u64> {
        records.iter().map(|record| record.seq).collect()
    }

    #[test]
    fn it_keeps_the_most_recent_records_and_counts_the_rest() {
        let log = log_of(3);
        for n in 0..10 {
            let outcome = if n % 2 == 0 {
                AttemptOutcome::Answered { status: 200 }
            } else {
                AttemptOutcome::Answered { status: 500 }
            };
            log.append(record(outcome));
            assert!(log.snapshot().len() <= 3);
        }
        log.append(record(AttemptOutcome::GaveUp));
        assert_eq!(seqs(&log.snapshot()), [8, 9, 10]);
        assert_eq!(
            log.totals(),
            LogTotals {
                appended: 11,
                attempts: 10,
                delivered: 5,
                dropped: 1,
                discarded: 8,
            }
        );
    }

    #[test]
    fn since_counts_in_seq_not_in_what_is_kept() {
        let log = log_of(4);
        for _ in 0..10 {
            log.append(record(AttemptOutcome::NotSent));
        }
        assert_eq!(seqs(&log.snapshot_since(0)), [6, 7, 8, 9]);
        assert_eq!(seqs(&log.snapshot_since(8)), [8, 9]);
        assert_eq!(seqs(&log.snapshot_since(10)), Vec::<u64>::new());
        assert_eq!(seqs(&log.snapshot_since(u64::MAX)), Vec::<u64>::new());
    }

    #[test]
    fn below_the_capacity_nothing_is_discarded() {
        let log = log_of(100);
        for _ in 0..100 {
            log.append(record(AttemptOutcome::Answered { status: 204 }));
        }
        assert_eq!(seqs(&log.snapshot()), (0..100).collect::<Vec<u64>>());
        assert_eq!(log.totals().discarded, 0);
    }
}
