//! Derives state, aggregate and anomalies from a set of distinct facts (VIPPS.md §5).
//!
//! Only the set matters, never its order: sums are commutative, and where an order is needed
//! (is a capture after a cancel?) the provider's own `timestamp` is used, not arrival.

use super::anomaly::PaymentAnomaly;
use super::projection::RecordedFact;
use super::state::{PaymentAggregate, PaymentState};
use crate::events::{IngestAnomaly, PaymentEventRecorded};
use crate::ids::{Amount, Currency, Msn, PaymentEventName};
use std::collections::BTreeSet;

pub(super) struct Derived {
    pub msn: Option<Msn>,
    pub currency: Option<Currency>,
    pub amount: Option<Amount>,
    pub state: PaymentState,
    pub aggregate: PaymentAggregate,
    pub anomalies: BTreeSet<PaymentAnomaly>,
}

/// Sums amounts, remembering whether any sum overflowed.
#[derive(Default)]
struct Sum {
    total: Amount,
    count: u64,
    overflowed: bool,
}

impl Sum {
    fn add(&mut self, amount: Amount) {
        self.count = self.count.saturating_add(1);
        match self.total.checked_add(amount) {
            Some(total) => self.total = total,
            None => {
                self.total = self.total.saturating_add(amount);
                self.overflowed = true;
            }
        }
    }
}

/// Successful facts that move state or money, by name, from facts that passed the checks.
#[derive(Default)]
struct Moves<'a> {
    created: Vec<&'a PaymentEventRecorded>,
    authorized: Sum,
    captured: Sum,
    refunded: Sum,
    cancels: Vec<&'a PaymentEventRecorded>,
    captures: Vec<&'a PaymentEventRecorded>,
    finals: Vec<&'a PaymentEventRecorded>,
    aborted: bool,
    expired: bool,
    terminated: bool,
}

pub(super) fn derive(facts: &[RecordedFact]) -> Derived {
    let mut anomalies = BTreeSet::new();
    let usable: Vec<&PaymentEventRecorded> = facts
        .iter()
        .map(|recorded| &recorded.fact)
        .filter(|fact| !matches!(fact.anomaly, Some(IngestAnomaly::MsnMismatch { .. })))
        .collect();
    let anchor = anchor(&usable);
    let msn = anchor.map(|fact| fact.msn.clone());
    let currency = anchor.map(|fact| fact.currency);

    let mut moves = Moves::default();
    for recorded in facts {
        let fact = &recorded.fact;
        match &fact.anomaly {
            // The name itself says so; it is listed once, below, as `unknown_event_name`.
            Some(IngestAnomaly::UnknownEventName { .. }) | None => {}
            Some(anomaly) => {
                anomalies.insert(PaymentAnomaly::Ingest {
                    anomaly: anomaly.clone(),
                });
                if matches!(anomaly, IngestAnomaly::MsnMismatch { .. }) {
                    continue;
                }
            }
        }
        if let PaymentEventName::Unknown(name) = &fact.name {
            anomalies.insert(PaymentAnomaly::UnknownEventName {
                name: name.clone(),
                psp_reference: fact.psp_reference.clone(),
            });
            continue;
        }
        if let Some(expected) = &msn {
            if &fact.msn != expected {
                anomalies.insert(PaymentAnomaly::MsnMismatch {
                    expected: expected.clone(),
                    found: fact.msn.clone(),
                    psp_reference: fact.psp_reference.clone(),
                });
                continue;
            }
        }
        if let Some(expected) = currency {
            if fact.currency != expected {
                anomalies.insert(PaymentAnomaly::CurrencyMismatch {
                    expected,
                    found: fact.currency,
                    psp_reference: fact.psp_reference.clone(),
                });
                continue;
            }
        }
        if fact.success {
            moves.record(fact);
        }
    }
    let (state, aggregate, amount) = moves.settle(&mut anomalies);
    Derived {
        msn,
        currency,
        amount,
        state,
        aggregate,
        anomalies,
    }
}

/// The state alone, as [`derive`] settles it, without allocating: the projections derive it
/// after every fact to keep their state index current.
pub(super) fn derive_state(facts: &[RecordedFact]) -> PaymentState {
    let usable = || {
        facts
            .iter()
            .map(|recorded| &recorded.fact)
            .filter(|fact| !matches!(fact.anomaly, Some(IngestAnomaly::MsnMismatch { .. })))
    };
    // As `anchor`, in the same order of preference.
    let anchor =
        earliest(usable().filter(|fact| fact.success && fact.name == PaymentEventName::Created))
            .or_else(|| earliest(usable().filter(|fact| fact.name.is_known())))
            .or_else(|| earliest(usable()));
    let (mut authorized, mut cancelled, mut aborted, mut expired, mut terminated) =
        (false, false, false, false, false);
    for fact in usable() {
        let other_anchor =
            anchor.is_some_and(|anchor| fact.msn != anchor.msn || fact.currency != anchor.currency);
        if !fact.success || other_anchor {
            continue;
        }
        match fact.name {
            PaymentEventName::Authorized
            | PaymentEventName::Captured
            | PaymentEventName::Refunded => authorized = true,
            PaymentEventName::Cancelled => cancelled = true,
            PaymentEventName::Aborted => aborted = true,
            PaymentEventName::Expired => expired = true,
            PaymentEventName::Terminated => terminated = true,
            PaymentEventName::Created | PaymentEventName::Unknown(_) => {}
        }
    }
    if authorized {
        PaymentState::Authorized
    } else if terminated || cancelled {
        PaymentState::Terminated
    } else if aborted {
        PaymentState::Aborted
    } else if expired {
        PaymentState::Expired
    } else {
        PaymentState::Created
    }
}

/// The first fact of the smallest timestamp, as `min_by_key` picks it.
fn earliest<'a>(
    candidates: impl Iterator<Item = &'a PaymentEventRecorded>,
) -> Option<&'a PaymentEventRecorded> {
    candidates.fold(None, |best, fact| match best {
        Some(best) if best.timestamp <= fact.timestamp => Some(best),
        _ => Some(fact),
    })
}

/// The fact that fixes the payment's MSN and currency: its successful CREATED, else its
/// earliest fact by the provider's timestamp (ties broken by identity, as `facts` is sorted).
fn anchor<'a>(facts: &[&'a PaymentEventRecorded]) -> Option<&'a PaymentEventRecorded> {
    facts
        .iter()
        .copied()
        .filter(|fact| fact.success && fact.name == PaymentEventName::Created)
        .min_by_key(|fact| fact.timestamp)
        .or_else(|| {
            facts
                .iter()
                .copied()
                .filter(|fact| fact.name.is_known())
                .min_by_key(|fact| fact.timestamp)
        })
        .or_else(|| facts.iter().copied().min_by_key(|fact| fact.timestamp))
}

impl<'a> Moves<'a> {
    fn record(&mut self, fact: &'a PaymentEventRecorded) {
        match fact.name {
            PaymentEventName::Created => self.created.push(fact),
            PaymentEventName::Authorized => self.authorized.add(fact.amount),
            PaymentEventName::Captured => {
                self.captured.add(fact.amount);
                self.captures.push(fact);
            }
            PaymentEventName::Refunded => self.refunded.add(fact.amount),
            PaymentEventName::Cancelled => self.cancels.push(fact),
            PaymentEventName::Aborted => {
                self.aborted = true;
                self.finals.push(fact);
            }
            PaymentEventName::Expired => {
                self.expired = true;
                self.finals.push(fact);
            }
            PaymentEventName::Terminated => {
                self.terminated = true;
                self.finals.push(fact);
            }
            PaymentEventName::Unknown(_) => {}
        }
    }

    fn settle(
        self,
        anomalies: &mut BTreeSet<PaymentAnomaly>,
    ) -> (PaymentState, PaymentAggregate, Option<Amount>) {
        let authorized = self.authorized.total;
        let captured = self.captured.total;
        let refunded = self.refunded.total;
        if self.authorized.overflowed || self.captured.overflowed || self.refunded.overflowed {
            anomalies.insert(PaymentAnomaly::AmountOverflow);
        }
        if self.authorized.count > 1 {
            anomalies.insert(PaymentAnomaly::MultipleAuthorizations {
                count: self.authorized.count,
            });
        }

        // A capture or refund proves an authorization even before the AUTHORIZED fact arrives.
        let is_authorized =
            self.authorized.count > 0 || self.captured.count > 0 || self.refunded.count > 0;
        let mut outcomes = BTreeSet::new();
        if is_authorized {
            outcomes.insert(PaymentState::Authorized);
        }
        if self.aborted {
            outcomes.insert(PaymentState::Aborted);
        }
        if self.expired {
            outcomes.insert(PaymentState::Expired);
        }
        if self.terminated {
            outcomes.insert(PaymentState::Terminated);
        }
        if outcomes.len() > 1 {
            anomalies.insert(PaymentAnomaly::ConflictingFinalStates {
                states: outcomes.into_iter().collect(),
            });
        }

        let cancelled_at = self.cancels.iter().map(|cancel| cancel.timestamp).min();
        let state = if is_authorized {
            PaymentState::Authorized
        } else if self.terminated || cancelled_at.is_some() {
            PaymentState::Terminated
        } else if self.aborted {
            PaymentState::Aborted
        } else if self.expired {
            PaymentState::Expired
        } else {
            PaymentState::Created
        };

        let amount = self
            .created
            .iter()
            .min_by_key(|fact| fact.timestamp)
            .map(|fact| fact.amount)
            .or_else(|| (self.authorized.count > 0).then_some(authorized))
            .or_else(|| {
                self.cancels
                    .iter()
                    .chain(self.finals.iter())
                    .min_by_key(|fact| fact.timestamp)
                    .map(|fact| fact.amount)
            });

        let cancelled = match (state, cancelled_at) {
            // Cancel after authorization cancels what was not captured.
            (PaymentState::Authorized, Some(_)) => authorized.saturating_sub(captured),
            // Cancel before authorization: the whole amount, nothing authorized.
            (PaymentState::Terminated, _) => amount.unwrap_or(Amount::ZERO),
            _ => Amount::ZERO,
        };

        if let Some(cancelled_at) = cancelled_at {
            for capture in self.captures.iter().filter(|c| c.timestamp > cancelled_at) {
                anomalies.insert(PaymentAnomaly::CaptureAfterCancel {
                    psp_reference: capture.psp_reference.clone(),
                });
            }
        }
        if captured > authorized {
            anomalies.insert(PaymentAnomaly::CapturedExceedsAuthorized {
                captured,
                authorized,
            });
        }
        if refunded > captured {
            anomalies.insert(PaymentAnomaly::RefundedExceedsCaptured { refunded, captured });
        }

        let aggregate = PaymentAggregate {
            authorized,
            captured,
            refunded,
            cancelled,
        };
        (state, aggregate, amount)
    }
}
