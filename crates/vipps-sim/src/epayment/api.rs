//! ePayment HTTP handlers: create, get, events, capture, refund, cancel and the test
//! environment's force-approve. Every change publishes its event for webhook delivery.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::model::{OperationContext, Payment, PaymentMethod, Refusal};
use crate::auth::Merchant;
use crate::events::{new_psp_reference, PaymentEvent};
use crate::ids::{Currency, Money, Msn, Reference};
use crate::problem::Problem;
use crate::state::{IdempotencyScope, SimState, StoredAnswer, World};

const USER_FLOWS: [&str; 4] = ["PUSH_MESSAGE", "NATIVE_REDIRECT", "WEB_REDIRECT", "QR"];

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Problem::validation("Idempotency-Key", "header is required"))
}

fn parse_body(body: &Bytes) -> Result<Value, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|error| Problem::validation("body", format!("not valid JSON: {error}")))
}

fn parse_money(value: Option<&Value>, field: &str) -> Result<Money, Problem> {
    let value = value.ok_or_else(|| Problem::validation(field, "is required"))?;
    let currency = value
        .get("currency")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::validation(&format!("{field}.currency"), "is required"))?;
    let currency = Currency::parse(currency).map_err(|_| {
        Problem::validation(&format!("{field}.currency"), "must be NOK, DKK or EUR")
    })?;
    let minor_units = value
        .get("value")
        .and_then(Value::as_u64)
        .filter(|minor_units| *minor_units > 0)
        .ok_or_else(|| {
            Problem::validation(
                &format!("{field}.value"),
                "must be a positive integer in minor units",
            )
        })?;
    Ok(Money {
        currency,
        value: minor_units,
    })
}

fn parse_reference(raw: &str) -> Result<Reference, Problem> {
    Reference::parse(raw)
        .map_err(|_| Problem::validation("reference", "must match [a-zA-Z0-9-]{8,64}"))
}

fn refused(refusal: Refusal) -> Problem {
    Problem::refused(refusal.to_string())
}

fn not_found(reference: &str) -> Problem {
    Problem::not_found(format!("no payment with reference {reference:?}"))
}

fn context(idempotency_key: Option<String>) -> OperationContext {
    OperationContext {
        psp_reference: new_psp_reference(),
        idempotency_key,
        at: OffsetDateTime::now_utc(),
    }
}

fn money_json(currency: Currency, value: u64) -> Value {
    json!({ "currency": currency, "value": value })
}

fn payment_json(payment: &Payment) -> Value {
    let currency = payment.amount.currency;
    let aggregate = payment.aggregate;
    json!({
        "aggregate": {
            "authorizedAmount": money_json(currency, aggregate.authorized),
            "cancelledAmount": money_json(currency, aggregate.cancelled),
            "capturedAmount": money_json(currency, aggregate.captured),
            "refundedAmount": money_json(currency, aggregate.refunded),
        },
        "amount": payment.amount,
        "state": payment.state,
        "paymentMethod": { "type": payment.payment_method },
        "profile": {},
        "pspReference": payment.psp_reference,
        "redirectUrl": redirect_url(&payment.reference),
        "reference": payment.reference,
    })
}

fn redirect_url(reference: &Reference) -> String {
    format!("https://landing.vipps-sim.invalid/?reference={reference}")
}

/// Replays the answer stored under `scope`, or runs `operation` and stores its success.
/// Failures are not stored: the same key may be retried once the cause is fixed.
fn once(
    world: &mut World,
    scope: IdempotencyScope,
    operation: impl FnOnce(&mut World) -> Result<StoredAnswer, Problem>,
) -> Result<Response, Problem> {
    if let Some(answer) = world.idempotent_answers.get(&scope) {
        return Ok((answer.status, Json(answer.body.clone())).into_response());
    }
    let answer = operation(world)?;
    world.idempotent_answers.insert(scope, answer.clone());
    Ok((answer.status, Json(answer.body)).into_response())
}

/// `POST /epayment/v1/payments` -> 201 `{"reference", "redirectUrl"}`.
pub(crate) async fn create(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    let request = parse_body(&body)?;
    let amount = parse_money(request.get("amount"), "amount")?;
    let reference = request
        .get("reference")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::validation("reference", "is required"))?;
    let reference = parse_reference(reference)?;
    let method = request
        .pointer("/paymentMethod/type")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::validation("paymentMethod.type", "is required"))?;
    let method = PaymentMethod::parse(method)
        .ok_or_else(|| Problem::validation("paymentMethod.type", "must be WALLET or CARD"))?;
    let user_flow = request
        .get("userFlow")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::validation("userFlow", "is required"))?;
    if !USER_FLOWS.contains(&user_flow) {
        return Err(Problem::validation(
            "userFlow",
            "must be PUSH_MESSAGE, NATIVE_REDIRECT, WEB_REDIRECT or QR",
        ));
    }
    let redirects = matches!(user_flow, "WEB_REDIRECT" | "NATIVE_REDIRECT");
    if redirects && request.get("returnUrl").and_then(Value::as_str).is_none() {
        return Err(Problem::validation(
            "returnUrl",
            "is required for redirect user flows",
        ));
    }

    let scope = IdempotencyScope {
        msn: merchant.msn.clone(),
        operation: "create",
        reference: String::new(),
        key: key.clone(),
    };
    let mut world = state.world();
    once(&mut world, scope, |world| {
        let slot = (merchant.msn.clone(), reference.clone());
        if world.payments.contains_key(&slot) {
            return Err(Problem::conflict(format!(
                "reference {reference} is already used by another payment"
            )));
        }
        let mut payment = Payment::create(
            merchant.msn.clone(),
            reference.clone(),
            amount,
            context(Some(key)),
        );
        payment.payment_method = method;
        let created = payment.events.first().cloned();
        world.payments.insert(slot, payment);
        if let Some(event) = created {
            state.publish(world, &event);
        }
        Ok(StoredAnswer {
            status: StatusCode::CREATED,
            body: json!({ "redirectUrl": redirect_url(&reference), "reference": reference }),
        })
    })
}

/// `GET /epayment/v1/payments/{reference}`.
pub(crate) async fn get(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
) -> Result<Response, Problem> {
    let world = state.world();
    let payment = find(&world, &merchant.msn, &reference)?;
    Ok(Json(payment_json(payment)).into_response())
}

/// `GET /epayment/v1/payments/{reference}/events`.
pub(crate) async fn events(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
) -> Result<Response, Problem> {
    let world = state.world();
    let payment = find(&world, &merchant.msn, &reference)?;
    let entries: Vec<_> = payment
        .events
        .iter()
        .map(PaymentEvent::list_entry)
        .collect();
    Ok(Json(entries).into_response())
}

fn find<'a>(world: &'a World, msn: &Msn, reference: &str) -> Result<&'a Payment, Problem> {
    let parsed = Reference::parse(reference).map_err(|_| not_found(reference))?;
    world
        .payments
        .get(&(msn.clone(), parsed))
        .ok_or_else(|| not_found(reference))
}

/// Which money operation.
#[derive(Clone, Copy)]
enum Modification {
    Capture,
    Refund,
    Cancel,
}

impl Modification {
    fn name(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Refund => "refund",
            Self::Cancel => "cancel",
        }
    }
}

async fn modify(
    state: Arc<SimState>,
    merchant: Merchant,
    reference: String,
    headers: HeaderMap,
    body: Bytes,
    modification: Modification,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    let request = parse_body(&body)?;
    let amount = match modification {
        Modification::Cancel => None,
        Modification::Capture | Modification::Refund => Some(parse_money(
            request.get("modificationAmount"),
            "modificationAmount",
        )?),
    };
    let scope = IdempotencyScope {
        msn: merchant.msn.clone(),
        operation: modification.name(),
        reference: reference.clone(),
        key: key.clone(),
    };
    let mut world = state.world();
    once(&mut world, scope, |world| {
        let parsed = Reference::parse(&reference).map_err(|_| not_found(&reference))?;
        let payment = world
            .payments
            .get_mut(&(merchant.msn.clone(), parsed))
            .ok_or_else(|| not_found(&reference))?;
        let context = context(Some(key));
        // Applied to a copy first: a declined operation must be valid yet leave no trace
        // but its `success: false` event.
        let mut outcome = payment.clone();
        let event = match (modification, amount) {
            (Modification::Capture, Some(amount)) => outcome.capture(amount, context),
            (Modification::Refund, Some(amount)) => outcome.refund(amount, context),
            _ => outcome.cancel(context),
        }
        .map_err(refused)?
        .clone();
        if state.take_decline() {
            let declined = payment.decline(event).clone();
            state.publish(world, &declined);
            return Err(Problem::declined(format!(
                "{} was declined by the payment processor (pspReference {})",
                modification.name(),
                declined.psp_reference
            )));
        }
        *payment = outcome;
        let mut answer = payment_json(payment);
        if let Some(fields) = answer.as_object_mut() {
            fields.insert("pspReference".into(), json!(event.psp_reference));
            fields.remove("redirectUrl");
            fields.remove("paymentMethod");
            fields.remove("profile");
        }
        state.publish(world, &event);
        Ok(StoredAnswer {
            status: StatusCode::OK,
            body: answer,
        })
    })
}

/// `POST /epayment/v1/payments/{reference}/capture` with `{"modificationAmount"}`.
pub(crate) async fn capture(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    modify(
        state,
        merchant,
        reference,
        headers,
        body,
        Modification::Capture,
    )
    .await
}

/// `POST /epayment/v1/payments/{reference}/refund` with `{"modificationAmount"}`.
pub(crate) async fn refund(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    modify(
        state,
        merchant,
        reference,
        headers,
        body,
        Modification::Refund,
    )
    .await
}

/// `POST /epayment/v1/payments/{reference}/cancel`.
pub(crate) async fn cancel(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    modify(
        state,
        merchant,
        reference,
        headers,
        body,
        Modification::Cancel,
    )
    .await
}

/// `POST /epayment/v1/test/payments/{reference}/approve`: the test environment's stand-in for
/// the user approving in the app. Answers 200 with no body.
pub(crate) async fn force_approve(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let key = idempotency_key(&headers).ok();
    user_action(&state, &merchant.msn, &reference, key, UserAction::Approve)?;
    Ok(StatusCode::OK)
}

/// What the user (not the merchant) does to a payment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UserAction {
    Approve,
    Abort,
    Expire,
}

/// Applies a user action and publishes its event.
pub(crate) fn user_action(
    state: &Arc<SimState>,
    msn: &Msn,
    reference: &str,
    idempotency_key: Option<String>,
    action: UserAction,
) -> Result<(), Problem> {
    let parsed = Reference::parse(reference).map_err(|_| not_found(reference))?;
    let mut world = state.world();
    let payment = world
        .payments
        .get_mut(&(msn.clone(), parsed))
        .ok_or_else(|| not_found(reference))?;
    let context = context(idempotency_key);
    let event = match action {
        UserAction::Approve => payment.authorize(context),
        UserAction::Abort => payment.abort(context),
        UserAction::Expire => payment.expire(context),
    }
    .map_err(refused)?
    .clone();
    state.publish(&world, &event);
    Ok(())
}
