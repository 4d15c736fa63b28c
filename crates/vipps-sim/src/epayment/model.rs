//! The ePayment state model (VIPPS.md §5) as plain functions: what an operation does to a
//! payment and what Vipps refuses. No IO; the HTTP layer calls these under its lock.

use serde::Serialize;
use time::OffsetDateTime;

use paystate_domain::PspReference;

use crate::events::{EventName, PaymentEvent};
use crate::ids::{Money, Msn, Reference};

/// A payment's `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    /// Waiting for the user.
    Created,
    /// Approved by the user; money can be captured.
    Authorized,
    /// The user aborted.
    Aborted,
    /// The user did not act in time.
    Expired,
    /// The merchant cancelled before authorization.
    Terminated,
}

impl PaymentState {
    /// The state as Vipps writes it, e.g. `AUTHORIZED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Authorized => "AUTHORIZED",
            Self::Aborted => "ABORTED",
            Self::Expired => "EXPIRED",
            Self::Terminated => "TERMINATED",
        }
    }
}

/// How the user pays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    /// The Vipps MobilePay app.
    #[default]
    Wallet,
    /// A card entered on the landing page.
    Card,
}

impl PaymentMethod {
    /// Parses `WALLET` or `CARD`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "WALLET" => Some(Self::Wallet),
            "CARD" => Some(Self::Card),
            _ => None,
        }
    }
}

/// The running totals, in minor units of the payment's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aggregate {
    /// Authorized by the user.
    pub authorized: u64,
    /// Captured so far.
    pub captured: u64,
    /// Refunded so far.
    pub refunded: u64,
    /// Cancelled (not to be captured).
    pub cancelled: u64,
}

/// Why Vipps refuses an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The operation is not allowed in the payment's state.
    #[error("{operation} is not allowed when the payment is {}", state.as_str())]
    WrongState {
        /// The operation asked for.
        operation: &'static str,
        /// The payment's state.
        state: PaymentState,
    },
    /// The amount's currency is not the payment's.
    #[error("the currency must be the payment's currency")]
    CurrencyMismatch,
    /// A zero amount.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// Capture after (part of) the payment was cancelled.
    #[error("nothing can be captured after a cancel")]
    CaptureAfterCancel,
    /// Capture above what is authorized and not yet captured.
    #[error("capture of {requested} exceeds the capturable remainder {capturable}")]
    CaptureExceedsAuthorized {
        /// Asked for.
        requested: u64,
        /// Still capturable.
        capturable: u64,
    },
    /// Refund above what is captured and not yet refunded.
    #[error("refund of {requested} exceeds the refundable remainder {refundable}")]
    RefundExceedsCaptured {
        /// Asked for.
        requested: u64,
        /// Still refundable.
        refundable: u64,
    },
    /// Cancel when everything authorized is already captured or cancelled.
    #[error("nothing is left to cancel")]
    NothingToCancel,
}

/// One payment and its history.
#[derive(Clone, Debug)]
pub struct Payment {
    /// The merchant.
    pub msn: Msn,
    /// The merchant's reference.
    pub reference: Reference,
    /// The amount asked for at creation.
    pub amount: Money,
    /// The PSP reference of the creation.
    pub psp_reference: PspReference,
    /// How the user pays (`WALLET` unless created otherwise).
    pub payment_method: PaymentMethod,
    /// The current state.
    pub state: PaymentState,
    /// The running totals.
    pub aggregate: Aggregate,
    /// Every event, oldest first.
    pub events: Vec<PaymentEvent>,
}

/// What an operation carries besides its amount.
#[derive(Clone, Debug)]
pub struct OperationContext {
    /// The PSP reference Vipps gives this operation.
    pub psp_reference: PspReference,
    /// The merchant's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// When it happens.
    pub at: OffsetDateTime,
}

impl Payment {
    /// A new payment in `CREATED`, with its `CREATED` event.
    pub fn create(
        msn: Msn,
        reference: Reference,
        amount: Money,
        context: OperationContext,
    ) -> Self {
        let mut payment = Self {
            msn,
            reference,
            amount,
            psp_reference: context.psp_reference.clone(),
            payment_method: PaymentMethod::default(),
            state: PaymentState::Created,
            aggregate: Aggregate::default(),
            events: Vec::new(),
        };
        payment.record(EventName::Created, amount.value, context);
        payment
    }

    /// The user approves (the test environment's force-approve): `CREATED -> AUTHORIZED`.
    pub fn authorize(&mut self, context: OperationContext) -> Result<&PaymentEvent, Refusal> {
        self.require_state(PaymentState::Created, "approve")?;
        self.state = PaymentState::Authorized;
        self.aggregate.authorized = self.amount.value;
        Ok(self.record(EventName::Authorized, self.amount.value, context))
    }

    /// The user aborts: `CREATED -> ABORTED`.
    pub fn abort(&mut self, context: OperationContext) -> Result<&PaymentEvent, Refusal> {
        self.require_state(PaymentState::Created, "abort")?;
        self.state = PaymentState::Aborted;
        Ok(self.record(EventName::Aborted, self.amount.value, context))
    }

    /// The user does not act in time: `CREATED -> EXPIRED`.
    pub fn expire(&mut self, context: OperationContext) -> Result<&PaymentEvent, Refusal> {
        self.require_state(PaymentState::Created, "expire")?;
        self.state = PaymentState::Expired;
        Ok(self.record(EventName::Expired, self.amount.value, context))
    }

    /// Captures part or all of the authorized, uncaptured, uncancelled amount.
    pub fn capture(
        &mut self,
        amount: Money,
        context: OperationContext,
    ) -> Result<&PaymentEvent, Refusal> {
        self.require_state(PaymentState::Authorized, "capture")?;
        let value = self.check_amount(amount)?;
        if self.aggregate.cancelled > 0 {
            return Err(Refusal::CaptureAfterCancel);
        }
        let capturable = self.aggregate.authorized - self.aggregate.captured;
        if value > capturable {
            return Err(Refusal::CaptureExceedsAuthorized {
                requested: value,
                capturable,
            });
        }
        self.aggregate.captured += value;
        Ok(self.record(EventName::Captured, value, context))
    }

    /// Refunds part or all of the captured, unrefunded amount.
    pub fn refund(
        &mut self,
        amount: Money,
        context: OperationContext,
    ) -> Result<&PaymentEvent, Refusal> {
        self.require_state(PaymentState::Authorized, "refund")?;
        let value = self.check_amount(amount)?;
        let refundable = self.aggregate.captured - self.aggregate.refunded;
        if value > refundable {
            return Err(Refusal::RefundExceedsCaptured {
                requested: value,
                refundable,
            });
        }
        self.aggregate.refunded += value;
        Ok(self.record(EventName::Refunded, value, context))
    }

    /// Cancels: before authorization the whole payment (`TERMINATED`), after it the whole
    /// uncaptured remainder (`CANCELLED`, state stays `AUTHORIZED`).
    pub fn cancel(&mut self, context: OperationContext) -> Result<&PaymentEvent, Refusal> {
        match self.state {
            PaymentState::Created => {
                self.state = PaymentState::Terminated;
                self.aggregate.cancelled = self.amount.value;
                Ok(self.record(EventName::Terminated, self.amount.value, context))
            }
            PaymentState::Authorized => {
                let remaining =
                    self.aggregate.authorized - self.aggregate.captured - self.aggregate.cancelled;
                if remaining == 0 {
                    return Err(Refusal::NothingToCancel);
                }
                self.aggregate.cancelled += remaining;
                Ok(self.record(EventName::Cancelled, remaining, context))
            }
            state => Err(Refusal::WrongState {
                operation: "cancel",
                state,
            }),
        }
    }

    /// Records an operation that was valid but failed downstream (a card processor declined
    /// it): its event with `success: false`; no state or money changes.
    pub fn decline(&mut self, accepted: PaymentEvent) -> &PaymentEvent {
        self.events.push(PaymentEvent {
            success: false,
            ..accepted
        });
        let last = self.events.len() - 1;
        &self.events[last]
    }

    fn require_state(&self, wanted: PaymentState, operation: &'static str) -> Result<(), Refusal> {
        if self.state == wanted {
            Ok(())
        } else {
            Err(Refusal::WrongState {
                operation,
                state: self.state,
            })
        }
    }

    fn check_amount(&self, amount: Money) -> Result<u64, Refusal> {
        if amount.currency != self.amount.currency {
            return Err(Refusal::CurrencyMismatch);
        }
        if amount.value == 0 {
            return Err(Refusal::ZeroAmount);
        }
        Ok(amount.value)
    }

    fn record(&mut self, name: EventName, value: u64, context: OperationContext) -> &PaymentEvent {
        self.events.push(PaymentEvent {
            msn: self.msn.clone(),
            reference: self.reference.clone(),
            psp_reference: context.psp_reference,
            name,
            amount: Money {
                currency: self.amount.currency,
                value,
            },
            timestamp: context.at,
            idempotency_key: context.idempotency_key,
            success: true,
        });
        let last = self.events.len() - 1;
        &self.events[last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Currency;

    fn nok(value: u64) -> Money {
        Money {
            currency: Currency::Nok,
            value,
        }
    }

    fn context() -> OperationContext {
        OperationContext {
            psp_reference: crate::events::new_psp_reference(),
            idempotency_key: None,
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn authorized(value: u64) -> Payment {
        let mut payment = Payment::create(
            Msn::parse("123456").unwrap(),
            Reference::parse("order-0001").unwrap(),
            nok(value),
            context(),
        );
        payment.authorize(context()).unwrap();
        payment
    }

    #[test]
    fn partial_captures_and_refunds_add_up_to_their_limits() {
        let mut payment = authorized(1000);
        assert_eq!(
            payment.capture(nok(600), context()).unwrap().amount,
            nok(600)
        );
        assert_eq!(
            payment.capture(nok(401), context()),
            Err(Refusal::CaptureExceedsAuthorized {
                requested: 401,
                capturable: 400
            })
        );
        payment.capture(nok(400), context()).unwrap();
        payment.refund(nok(700), context()).unwrap();
        assert_eq!(
            payment.refund(nok(301), context()),
            Err(Refusal::RefundExceedsCaptured {
                requested: 301,
                refundable: 300
            })
        );
        assert_eq!(payment.state, PaymentState::Authorized);
        assert_eq!(
            payment.aggregate,
            Aggregate {
                authorized: 1000,
                captured: 1000,
                refunded: 700,
                cancelled: 0
            }
        );
    }

    #[test]
    fn cancel_after_partial_capture_cancels_the_rest_and_blocks_captures() {
        let mut payment = authorized(1000);
        payment.capture(nok(300), context()).unwrap();
        let cancelled = payment.cancel(context()).unwrap();
        assert_eq!(
            (cancelled.name, cancelled.amount),
            (EventName::Cancelled, nok(700))
        );
        assert_eq!(
            payment.capture(nok(1), context()),
            Err(Refusal::CaptureAfterCancel)
        );
        assert_eq!(payment.cancel(context()), Err(Refusal::NothingToCancel));
        payment.refund(nok(300), context()).unwrap();
    }

    #[test]
    fn cancel_before_authorization_terminates() {
        let mut payment = Payment::create(
            Msn::parse("123456").unwrap(),
            Reference::parse("order-0002").unwrap(),
            nok(500),
            context(),
        );
        assert_eq!(
            payment.cancel(context()).unwrap().name,
            EventName::Terminated
        );
        assert_eq!(payment.state, PaymentState::Terminated);
        assert_eq!(payment.aggregate.cancelled, 500);
        assert_eq!(payment.aggregate.authorized, 0);
        assert!(matches!(
            payment.authorize(context()),
            Err(Refusal::WrongState { .. })
        ));
        assert!(matches!(
            payment.cancel(context()),
            Err(Refusal::WrongState { .. })
        ));
    }

    #[test]
    fn money_rules_refuse_wrong_currency_zero_and_unauthorized() {
        let mut payment = authorized(1000);
        let euros = Money {
            currency: Currency::Eur,
            value: 10,
        };
        assert_eq!(
            payment.capture(euros, context()),
            Err(Refusal::CurrencyMismatch)
        );
        assert_eq!(payment.capture(nok(0), context()), Err(Refusal::ZeroAmount));
        let mut fresh = Payment::create(
            Msn::parse("123456").unwrap(),
            Reference::parse("order-0003").unwrap(),
            nok(500),
            context(),
        );
        assert!(matches!(
            fresh.capture(nok(1), context()),
            Err(Refusal::WrongState { .. })
        ));
        fresh.abort(context()).unwrap();
        assert!(matches!(
            fresh.expire(context()),
            Err(Refusal::WrongState { .. })
        ));
    }

    #[test]
    fn a_declined_operation_is_recorded_but_moves_no_money() {
        let mut payment = authorized(1000);
        let mut trial = payment.clone();
        let accepted = trial.capture(nok(400), context()).unwrap().clone();
        let declined = payment.decline(accepted).clone();
        assert_eq!(
            (declined.name, declined.success),
            (EventName::Captured, false)
        );
        assert_eq!(payment.aggregate.captured, 0);
        assert_eq!(payment.events.len(), 3);
        assert_eq!(
            payment.capture(nok(1000), context()).unwrap().amount,
            nok(1000)
        );
    }

    #[test]
    fn refusals_name_the_state_as_vipps_writes_it() {
        let mut payment = authorized(100);
        let refusal = payment.authorize(context()).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "approve is not allowed when the payment is AUTHORIZED"
        );
    }
}
