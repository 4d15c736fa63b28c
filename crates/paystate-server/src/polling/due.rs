//! Which payments are due for a poll: pure decisions over payment views and the poller's
//! memory of its own recent polls.

use paystate_domain::payment::{PaymentState, PaymentView};
use paystate_domain::{ProviderId, Reference};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long after its last fact a payment is still polled: Vipps retries a delivery for up to
/// 7 days (VIPPS.md §3), so past that a missing webhook will never come and a payment that
/// quiet is left alone.
pub const HORIZON: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Whether a payment can still change without the merchant asking for it: the user has not
/// answered yet (`CREATED`), or money is authorized that is neither captured nor cancelled.
pub fn is_open(view: &PaymentView) -> bool {
    match view.state {
        PaymentState::Created => true,
        PaymentState::Authorized => {
            let aggregate = &view.aggregate;
            let settled = aggregate
                .captured
                .minor_units()
                .saturating_add(aggregate.cancelled.minor_units());
            settled < aggregate.authorized.minor_units()
        }
        PaymentState::Aborted | PaymentState::Expired | PaymentState::Terminated => false,
    }
}

/// The longest wait between two polls of one payment.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// This process's last poll of a payment, and how long the payment waits for its next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPoll {
    /// When the poll was made.
    pub at: Instant,
    /// How long after `at` the payment is due again (if it stays quiet).
    pub wait: Duration,
    /// The payment's last fact as the poll left it: a newer one (a webhook arrived since)
    /// makes the poll history irrelevant.
    pub last_fact: Option<OffsetDateTime>,
}

/// What one poll of a payment was: when, whether it recorded something new, and the time of
/// the payment's last fact afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    /// When the poll was made.
    pub at: Instant,
    /// Whether it recorded a fact no webhook had delivered.
    pub found_new: bool,
    /// The payment's last fact as the views showed it after the poll.
    pub last_fact: Option<OffsetDateTime>,
}

/// Whether `view` is due: open, quiet for at least `quiet` (no fact for that long) but not
/// past [`HORIZON`], and its wait since this process last polled it is over (a payment that
/// got a new fact since that poll starts afresh).
pub fn is_due(
    view: &PaymentView,
    now: OffsetDateTime,
    quiet: Duration,
    last_poll: Option<LastPoll>,
    monotonic_now: Instant,
) -> bool {
    let Some(last_fact) = view.last_event_at.or(view.first_seen_at) else {
        return false;
    };
    let silent_for = now - last_fact;
    is_open(view)
        && silent_for >= quiet
        && silent_for <= HORIZON
        && last_poll.is_none_or(|last| {
            last.last_fact != view.last_event_at
                || monotonic_now.saturating_duration_since(last.at) >= last.wait
        })
}

/// When this process last polled each payment, and how long each waits for its next poll: one
/// quiet period after a poll that found something, twice the previous wait (at most
/// [`MAX_WAIT`]) after one that found nothing, so a payment that stays open for days (money
/// authorized, captured at shipping) is asked about less and less often. Entries older than
/// [`HORIZON`] are forgotten.
#[derive(Debug, Default)]
pub struct PollMemory {
    polled: HashMap<(ProviderId, Reference), LastPoll>,
}

impl PollMemory {
    /// The last poll of this payment, if this process made one within [`HORIZON`].
    pub fn last_poll(&self, provider: &ProviderId, reference: &Reference) -> Option<LastPoll> {
        self.polled
            .get(&(provider.clone(), reference.clone()))
            .copied()
    }

    /// Records a poll (a failed one counts as finding nothing). Its wait is one quiet period
    /// after a poll that found something or the first poll since the payment's last fact, else
    /// twice the previous wait, at most [`MAX_WAIT`].
    pub fn remember(
        &mut self,
        provider: ProviderId,
        reference: Reference,
        poll: PollOutcome,
        quiet: Duration,
    ) {
        let entry = self.polled.entry((provider, reference));
        let wait = match &entry {
            std::collections::hash_map::Entry::Occupied(previous)
                if !poll.found_new && previous.get().last_fact == poll.last_fact =>
            {
                previous
                    .get()
                    .wait
                    .saturating_mul(2)
                    .clamp(quiet, MAX_WAIT.max(quiet))
            }
            _ => quiet,
        };
        let last = LastPoll {
            at: poll.at,
            wait,
            last_fact: poll.last_fact,
        };
        entry.and_modify(|kept| *kept = last).or_insert(last);
    }

    /// Drops polls made more than [`HORIZON`] before `now`.
    pub fn forget_old(&mut self, now: Instant) {
        self.polled
            .retain(|_, last| now.saturating_duration_since(last.at) <= HORIZON);
    }

    /// Payments remembered.
    pub fn len(&self) -> usize {
        self.polled.len()
    }

    /// Whether no payment is remembered.
    pub fn is_empty(&self) -> bool {
        self.polled.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paystate_domain::payment::{PaymentAggregate, PaymentProjection};
    use paystate_domain::Amount;

    const QUIET: Duration = Duration::from_secs(600);

    fn view(state: PaymentState, aggregate: PaymentAggregate, silent_secs: i64) -> PaymentView {
        let mut view = PaymentProjection::new(
            ProviderId::parse("vipps-test").unwrap(),
            Reference::parse("acme-order-1").unwrap(),
        )
        .view();
        view.state = state;
        view.aggregate = aggregate;
        view.last_event_at = Some(now() - time::Duration::seconds(silent_secs));
        view
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn aggregate(authorized: u64, captured: u64, cancelled: u64) -> PaymentAggregate {
        PaymentAggregate {
            authorized: Amount::from_minor_units(authorized),
            captured: Amount::from_minor_units(captured),
            refunded: Amount::ZERO,
            cancelled: Amount::from_minor_units(cancelled),
        }
    }

    fn due(view: &PaymentView, last_polled_secs_ago: Option<u64>, wait_secs: u64) -> bool {
        let monotonic = Instant::now() + Duration::from_secs(10 * 24 * 60 * 60);
        let last = last_polled_secs_ago.map(|secs| LastPoll {
            at: monotonic - Duration::from_secs(secs),
            wait: Duration::from_secs(wait_secs),
            last_fact: view.last_event_at,
        });
        is_due(view, now(), QUIET, last, monotonic)
    }

    fn poll(at: Instant, found_new: bool, last_fact_secs: i64) -> PollOutcome {
        PollOutcome {
            at,
            found_new,
            last_fact: Some(now() + time::Duration::seconds(last_fact_secs)),
        }
    }

    #[test]
    fn open_payments_are_those_that_can_still_change_on_their_own() {
        let none = aggregate(0, 0, 0);
        assert!(is_open(&view(PaymentState::Created, none, 0)));
        assert!(is_open(&view(
            PaymentState::Authorized,
            aggregate(1000, 0, 0),
            0
        )));
        assert!(is_open(&view(
            PaymentState::Authorized,
            aggregate(1000, 400, 500),
            0
        )));
        assert!(!is_open(&view(
            PaymentState::Authorized,
            aggregate(1000, 1000, 0),
            0
        )));
        assert!(!is_open(&view(
            PaymentState::Authorized,
            aggregate(1000, 400, 600),
            0
        )));
        for state in [
            PaymentState::Aborted,
            PaymentState::Expired,
            PaymentState::Terminated,
        ] {
            assert!(!is_open(&view(state, none, 0)), "{state}");
        }
    }

    #[test]
    fn a_payment_is_due_once_quiet_and_until_the_horizon() {
        let created = |silent| view(PaymentState::Created, aggregate(0, 0, 0), silent);
        assert!(!due(&created(599), None, 0));
        assert!(due(&created(600), None, 0));
        assert!(due(&created(HORIZON.as_secs() as i64), None, 0));
        assert!(!due(&created(HORIZON.as_secs() as i64 + 1), None, 0));
        // A payment whose facts are dated after the server's clock is not quiet.
        assert!(!due(&created(-30), None, 0));
        let captured = view(PaymentState::Authorized, aggregate(1000, 1000, 0), 3600);
        assert!(
            !due(&captured, None, 0),
            "settled payments are never polled"
        );
    }

    #[test]
    fn a_polled_payment_waits_before_the_next_poll_unless_it_moved_since() {
        let created = view(PaymentState::Created, aggregate(0, 0, 0), 3600);
        assert!(!due(&created, Some(0), 600));
        assert!(!due(&created, Some(1199), 1200));
        assert!(due(&created, Some(1200), 1200));
        // A webhook brought a fact after the poll: the long wait no longer applies.
        let monotonic = Instant::now() + Duration::from_secs(10 * 24 * 60 * 60);
        let before = LastPoll {
            at: monotonic - Duration::from_secs(700),
            wait: MAX_WAIT,
            last_fact: Some(now() - time::Duration::seconds(7200)),
        };
        let moved = view(PaymentState::Created, aggregate(0, 0, 0), 650);
        assert!(is_due(&moved, now(), QUIET, Some(before), monotonic));
    }

    #[test]
    fn the_wait_doubles_while_polls_find_nothing_and_resets_when_one_does() {
        let mut memory = PollMemory::default();
        let start = Instant::now();
        let provider = ProviderId::parse("vipps-test").unwrap();
        let reference = Reference::parse("acme-order-1").unwrap();
        let wait = |memory: &PollMemory| memory.last_poll(&provider, &reference).unwrap().wait;
        let remember = |memory: &mut PollMemory, outcome| {
            memory.remember(provider.clone(), reference.clone(), outcome, QUIET)
        };
        remember(&mut memory, poll(start, false, -3600));
        assert_eq!(wait(&memory), QUIET);
        remember(&mut memory, poll(start, false, -3600));
        assert_eq!(wait(&memory), QUIET * 2);
        remember(&mut memory, poll(start, false, -3600));
        assert_eq!(wait(&memory), QUIET * 4);
        for _ in 0..20 {
            remember(&mut memory, poll(start, false, -3600));
        }
        assert_eq!(wait(&memory), MAX_WAIT);
        remember(&mut memory, poll(start, true, 0));
        assert_eq!(wait(&memory), QUIET, "a poll that found something");
        remember(&mut memory, poll(start, false, 0));
        assert_eq!(wait(&memory), QUIET * 2);
        remember(&mut memory, poll(start, false, 60));
        assert_eq!(
            wait(&memory),
            QUIET,
            "a webhook brought a fact since the last poll"
        );
    }

    #[test]
    fn the_memory_forgets_polls_older_than_the_horizon() {
        let mut memory = PollMemory::default();
        let start = Instant::now();
        let provider = ProviderId::parse("vipps-test").unwrap();
        let (old, new) = (
            Reference::parse("acme-order-old").unwrap(),
            Reference::parse("acme-order-new").unwrap(),
        );
        memory.remember(provider.clone(), old.clone(), poll(start, false, 0), QUIET);
        memory.remember(
            provider.clone(),
            new.clone(),
            poll(start + QUIET, false, 0),
            QUIET,
        );
        memory.forget_old(start + HORIZON + Duration::from_secs(1));
        assert_eq!(memory.last_poll(&provider, &old), None);
        assert!(memory.last_poll(&provider, &new).is_some());
        assert_eq!(memory.len(), 1);
    }
}
