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
