//! The delivery log: one record per attempt (and per dropped delivery), in the order they
//! happened, so tests can await a condition instead of sleeping.

use std::sync::Mutex;
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

/// The log and a signal that fires on every append.
#[derive(Debug)]
pub(crate) struct DeliveryLog {
    /// std `Mutex`: appends and snapshots are short and never span an `.await`.
    records: Mutex<Vec<DeliveryRecord>>,
    /// Bumped after every append; waiters re-check their condition when it changes.
    appended: watch::Sender<u64>,
}

impl Default for DeliveryLog {
    fn default() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            appended: watch::Sender::new(0),
        }
    }
}

impl DeliveryLog {
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
        let count = {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            record.seq = records.len() as u64;
            records.push(record);
            records.len() as u64
        };
        self.appended.send_replace(count);
    }

    pub fn snapshot(&self) -> Vec<DeliveryRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until `condition` holds for the log, or `timeout` passes; returns the log as it
    /// was when the condition held, or `None` on timeout.
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
