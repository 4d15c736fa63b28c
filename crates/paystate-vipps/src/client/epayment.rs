//! ePayment API v1: payment state, events, and the operations (VIPPS.md §5).

use paystate_domain::{Amount, Currency, Environment, Reference};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{read_json, VippsApiError, VippsClient};
use crate::payload::EpaymentEvent;

/// An amount with its currency, as the ePayment API writes it: `{"currency", "value"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: Currency,
    /// Minor units.
    pub value: Amount,
}

/// `state` of a payment. Capture, refund and cancel never change it once `AUTHORIZED`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum PaymentState {
    Created,
    Authorized,
    Aborted,
    Expired,
    Terminated,
    /// A state this version does not know, as sent.
    Unknown(String),
}

impl From<String> for PaymentState {
    fn from(state: String) -> Self {
        match state.as_str() {
            "CREATED" => PaymentState::Created,
            "AUTHORIZED" => PaymentState::Authorized,
            "ABORTED" => PaymentState::Aborted,
            "EXPIRED" => PaymentState::Expired,
            "TERMINATED" => PaymentState::Terminated,
            _ => PaymentState::Unknown(state),
        }
    }
}

/// The running totals of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregate {
    pub authorized_amount: Money,
    pub cancelled_amount: Money,
    pub captured_amount: Money,
    pub refunded_amount: Money,
}

/// A payment as `GET /epayment/v1/payments/{reference}` and the operations answer it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub reference: String,
    pub state: PaymentState,
    #[serde(default)]
    pub amount: Option<Money>,
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// The `pspReference` of the operation that produced this answer (or of the payment).
    #[serde(default)]
    pub psp_reference: Option<String>,
    #[serde(default)]
    pub redirect_url: Option<String>,
}

/// A payment to create (`POST /epayment/v1/payments`), for demos and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePayment {
    pub amount: Money,
    pub reference: Reference,
    /// `WEB_REDIRECT`, `PUSH_MESSAGE`, `NATIVE_REDIRECT` or `QR`.
    pub user_flow: String,
    pub return_url: Option<String>,
    pub payment_description: Option<String>,
    /// The customer's phone number (`4791234567`), for `PUSH_MESSAGE` and test approval.
    pub customer_phone_number: Option<String>,
}

/// The answer to a created payment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPayment {
    pub reference: String,
    #[serde(default)]
    pub redirect_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    amount: Money,
    payment_method: PaymentMethod,
    reference: &'a str,
    user_flow: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Customer<'a>>,
}

#[derive(Serialize)]
struct PaymentMethod {
    #[serde(rename = "type")]
    method: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Customer<'a> {
    phone_number: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModificationBody {
    modification_amount: Money,
}

#[derive(Serialize)]
struct ApproveBody<'a> {
    customer: Customer<'a>,
}

fn to_json(body: &impl Serialize) -> Result<Vec<u8>, VippsApiError> {
    serde_json::to_vec(body).map_err(|error| VippsApiError::InvalidRequest(error.to_string()))
}

impl VippsClient {
    /// `GET /epayment/v1/payments/{reference}`: state and aggregate.
    pub async fn get_payment(&self, reference: &Reference) -> Result<Payment, VippsApiError> {
        let answer = self
            .call(
                Method::GET,
                &format!("/epayment/v1/payments/{reference}"),
                None,
                None,
            )
            .await?;
        read_json(&answer.body, "payment")
    }

    /// `GET /epayment/v1/payments/{reference}/events`: the payment's events, parsed like webhook
    /// bodies. The list omits `msn`; this client's MSN is filled in so each event has its full
    /// identity. Each item is parsed on its own: one that cannot be read does not hide the
    /// others.
    pub async fn get_payment_events(
        &self,
        reference: &Reference,
    ) -> Result<Vec<Result<EpaymentEvent, VippsApiError>>, VippsApiError> {
        let answer = self
            .call(
                Method::GET,
                &format!("/epayment/v1/payments/{reference}/events"),
                None,
                None,
            )
            .await?;
        let items: Vec<Value> = read_json(&answer.body, "payment events")?;
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(index, mut item)| {
                if let Value::Object(fields) = &mut item {
                    fields
                        .entry("msn")
                        .or_insert_with(|| Value::String(self.msn().as_str().to_owned()));
                }
                let bytes = serde_json::to_vec(&item)
                    .map_err(|error| VippsApiError::InvalidResponse(error.to_string()))?;
                EpaymentEvent::parse(bytes).map_err(|error| {
                    VippsApiError::InvalidResponse(format!("payment event {index}: {error}"))
                })
            })
            .collect())
    }

    /// `POST /epayment/v1/payments` (demos and tests).
    pub async fn create_payment(
        &self,
        payment: &CreatePayment,
        idempotency_key: &str,
    ) -> Result<CreatedPayment, VippsApiError> {
        let body = to_json(&CreateBody {
            amount: payment.amount,
            payment_method: PaymentMethod { method: "WALLET" },
            reference: payment.reference.as_str(),
            user_flow: &payment.user_flow,
            return_url: payment.return_url.as_deref(),
            payment_description: payment.payment_description.as_deref(),
            customer: payment
                .customer_phone_number
                .as_deref()
                .map(|phone_number| Customer { phone_number }),
        })?;
        let answer = self
            .call(
                Method::POST,
                "/epayment/v1/payments",
                Some(body),
                Some(idempotency_key),
            )
            .await?;
        read_json(&answer.body, "created payment")
    }

    /// `POST /epayment/v1/payments/{reference}/capture` of `amount`.
    pub async fn capture(
        &self,
        reference: &Reference,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Payment, VippsApiError> {
        self.modify(reference, "capture", amount, idempotency_key)
            .await
    }

    /// `POST /epayment/v1/payments/{reference}/refund` of `amount`.
    pub async fn refund(
        &self,
        reference: &Reference,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Payment, VippsApiError> {
        self.modify(reference, "refund", amount, idempotency_key)
            .await
    }

    /// `POST /epayment/v1/payments/{reference}/cancel`: the whole uncaptured amount.
    pub async fn cancel(
        &self,
        reference: &Reference,
        idempotency_key: &str,
    ) -> Result<Payment, VippsApiError> {
        let path = format!("/epayment/v1/payments/{reference}/cancel");
        let answer = self
            .call(Method::POST, &path, None, Some(idempotency_key))
            .await?;
        read_json(&answer.body, "cancelled payment")
    }

    /// `POST /epayment/v1/test/payments/{reference}/approve`: approves a payment as the
    /// customer would, in the test environment only.
    pub async fn force_approve(
        &self,
        reference: &Reference,
        customer_phone_number: &str,
        idempotency_key: &str,
    ) -> Result<(), VippsApiError> {
        if self.config().environment == Environment::Production {
            return Err(VippsApiError::InvalidRequest(
                "force approve exists only in the test environment".into(),
            ));
        }
        let body = to_json(&ApproveBody {
            customer: Customer {
                phone_number: customer_phone_number,
            },
        })?;
        let path = format!("/epayment/v1/test/payments/{reference}/approve");
        self.call(Method::POST, &path, Some(body), Some(idempotency_key))
            .await?;
        Ok(())
    }

    async fn modify(
        &self,
        reference: &Reference,
        operation: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Payment, VippsApiError> {
        let body = to_json(&ModificationBody {
            modification_amount: amount,
        })?;
        let path = format!("/epayment/v1/payments/{reference}/{operation}");
        let answer = self
            .call(Method::POST, &path, Some(body), Some(idempotency_key))
            .await?;
        read_json(&answer.body, operation)
    }
}
