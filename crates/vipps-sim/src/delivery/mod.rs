//! Webhook delivery: fan-out of each event to the subscribed registrations, one ordered lane
//! per (registration, payment), retries with backoff, and the fault knobs.
//!
//! - [`lanes`]: the lanes and their workers; a failing event holds back the later events of
//!   the same payment on the same registration, and nothing else.
//! - [`attempt`]: one delivery: sign, send, log, retry.
//! - [`log`]: the delivery log tests await on.

pub(crate) mod attempt;
pub(crate) mod lanes;
pub(crate) mod log;

pub(crate) use lanes::Dispatcher;

/// `now + wait`, saturating far in the future instead of overflowing on absurd knob values.
pub(crate) fn deadline_after(wait: std::time::Duration) -> tokio::time::Instant {
    const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
    let now = tokio::time::Instant::now();
    now.checked_add(wait.min(FAR_FUTURE)).unwrap_or(now)
}
