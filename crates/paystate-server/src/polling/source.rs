//! Where a poll reads a payment's events: the ePayment API of the provider's merchant, through
//! the same cached clients (and access tokens) as the registration reactor.

use crate::registration::{Target, VippsWebhooks};
use futures::future::BoxFuture;
use paystate_domain::Reference;
use paystate_vipps::payload::EpaymentEvent;
use std::fmt;

/// Reads `GET /epayment/v1/payments/{reference}/events` for a provider's merchant.
pub trait PaymentEventsSource: Send + Sync + fmt::Debug {
    /// The payment's events, each with the merchant's MSN, oldest first, each item read on its
    /// own; an error (of the call, or of one item) is a sentence naming what failed.
    fn payment_events<'a>(
        &'a self,
        target: &'a Target,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Vec<Result<EpaymentEvent, String>>, String>>;
}

impl PaymentEventsSource for VippsWebhooks {
    fn payment_events<'a>(
        &'a self,
        target: &'a Target,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Vec<Result<EpaymentEvent, String>>, String>> {
        Box::pin(async move {
            let api = self.api(target).map_err(|error| error.to_string())?;
            let items = api
                .client()
                .get_payment_events(reference)
                .await
                .map_err(|error| format!("get payment events: {error}"))?;
            Ok(items
                .into_iter()
                .map(|item| item.map_err(|error| error.to_string()))
                .collect())
        })
    }
}
