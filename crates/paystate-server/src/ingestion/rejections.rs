//! Bounded recording of rejected deliveries: the first N per provider per minute are recorded
//! in full (`webhook_rejected`), the rest only counted (`webhook_rejections_suppressed`, one
//! event per provider and minute), so a flood of forgeries cannot grow the log without limit.

use paystate_domain::events::{DomainEvent, WebhookRejectionsSuppressed};
use paystate_domain::{streams, ProviderId};
use paystate_store::{EventStore, ExpectedVersion, NewEvent, StreamId};
use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Whether a rejection is recorded in full or only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Record,
    Count,
}

/// A finished window with suppressed rejections, to be recorded as one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressedWindow {
    pub provider_id: ProviderId,
    pub count: u64,
    pub window_start: OffsetDateTime,
    pub window_end: OffsetDateTime,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: OffsetDateTime,
    recorded: u32,
    suppressed: u64,
}

/// The per-provider, per-minute budget of full rejection records.
#[derive(Debug)]
pub struct RejectionBudget {
    per_minute: u32,
    /// A std mutex: held for a map lookup, never across an `.await`. One entry per known
    /// provider (unknown providers are answered 404 before reaching it).
    windows: Mutex<HashMap<ProviderId, Window>>,
}

const WINDOW: Duration = Duration::minutes(1);

fn window_start(now: OffsetDateTime) -> OffsetDateTime {
    let seconds = now.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(seconds - seconds.rem_euclid(60)).unwrap_or(now)
}

impl RejectionBudget {
    pub fn new(per_minute: u32) -> RejectionBudget {
        RejectionBudget {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Decides for one rejection at `now`; also returns the provider's previous window if it
    /// ended with suppressed rejections that must now be recorded.
    pub fn admit(
        &self,
        provider: &ProviderId,
        now: OffsetDateTime,
    ) -> (Admission, Option<SuppressedWindow>) {
        let start = window_start(now);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows.entry(provider.clone()).or_insert(Window {
            start,
            recorded: 0,
            suppressed: 0,
        });
        let mut finished = None;
        if window.start != start {
            if window.suppressed > 0 {
                finished = Some(SuppressedWindow {
                    provider_id: provider.clone(),
                    count: window.suppressed,
                    window_start: window.start,
                    window_end: window.start + WINDOW,
                });
            }
            *window = Window {
                start,
                recorded: 0,
                suppressed: 0,
            };
        }
        let admission = if window.recorded < self.per_minute {
            window.recorded += 1;
            Admission::Record
        } else {
            window.suppressed += 1;
            Admission::Count
        };
        (admission, finished)
    }

    /// Takes every window with suppressed rejections that ended before `now` (or every one,
    /// with `all`, at shutdown).
    pub fn take_finished(&self, now: OffsetDateTime, all: bool) -> Vec<SuppressedWindow> {
        let current = window_start(now);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut finished = Vec::new();
        for (provider, window) in windows.iter_mut() {
            if window.suppressed > 0 && (all || window.start < current) {
                finished.push(SuppressedWindow {
                    provider_id: provider.clone(),
                    count: window.suppressed,
                    window_start: window.start,
                    window_end: (window.start + WINDOW).min(now.max(window.start)),
                });
                window.suppressed = 0;
            }
        }
        windows.retain(|_, window| window.start >= current);
        finished
    }
}

/// Appends one `webhook_rejections_suppressed` event to the provider's stream.
pub async fn record_suppressed(store: &dyn EventStore, window: SuppressedWindow) {
    let stream = StreamId::new(streams::provider_stream(&window.provider_id));
    let event = DomainEvent::from(WebhookRejectionsSuppressed {
        provider_id: window.provider_id,
        count: window.count,
        window_start: window.window_start,
        window_end: window.window_end,
    });
    let new = NewEvent::new(
        event.type_name(),
        event.schema_version(),
        event.to_payload(),
    );
    if let Err(error) = store.append(&stream, ExpectedVersion::Any, vec![new]).await {
        tracing::warn!(%error, "could not record the count of suppressed rejections");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_040 + seconds).unwrap()
    }

    #[test]
    fn the_first_n_per_minute_are_recorded_then_counted() {
        let budget = RejectionBudget::new(2);
        let provider = ProviderId::parse("vipps-test").unwrap();
        let admissions: Vec<Admission> = (0..5).map(|i| budget.admit(&provider, at(i)).0).collect();
        assert_eq!(
            admissions,
            [
                Admission::Record,
                Admission::Record,
                Admission::Count,
                Admission::Count,
                Admission::Count
            ]
        );
        // The next minute starts a new budget and reports the three counted ones.
        let (admission, finished) = budget.admit(&provider, at(60));
        assert_eq!(admission, Admission::Record);
        let finished = finished.expect("the previous window had suppressed rejections");
        assert_eq!(finished.count, 3);
        assert_eq!(finished.window_end - finished.window_start, WINDOW);
    }

    #[test]
    fn finished_windows_are_taken_once() {
        let budget = RejectionBudget::new(0);
        let provider = ProviderId::parse("vipps-test").unwrap();
        budget.admit(&provider, at(1));
        budget.admit(&provider, at(2));
        assert!(
            budget.take_finished(at(3), false).is_empty(),
            "the window is still open"
        );
        let taken = budget.take_finished(at(61), false);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].count, 2);
        assert!(budget.take_finished(at(62), true).is_empty());
    }
}
