//! The merchant's side of the story: a backend calling the ePayment API at the simulator, with
//! paystate's own Vipps client.

use super::story::MSN;
use anyhow::Context;
use paystate_domain::{Amount, Currency, Environment, Msn, Reference};
use paystate_vipps::client::epayment::{CreatePayment, Money};
use paystate_vipps::{ClientConfig, Credentials, VippsClient};

/// The phone number of the customer who approves every payment.
const CUSTOMER_PHONE: &str = "4712345678";

/// The merchant's side of the story: the ePayment API at the simulator.
pub struct Merchant {
    vipps: VippsClient,
}

impl Merchant {
    pub fn new(sim_base: &str) -> anyhow::Result<Merchant> {
        let config = ClientConfig::new(
            Environment::Test,
            Msn::parse(MSN)?,
            Credentials::new(
                "demo-client-id",
                "demo-client-secret",
                "demo-subscription-key",
            ),
        )
        .with_base_url(sim_base)?;
        Ok(Merchant {
            vipps: VippsClient::new(config)?,
        })
    }

    pub async fn create(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
        let payment = CreatePayment {
            amount: nok(amount)?,
            reference: Reference::parse(reference)?,
            user_flow: "WEB_REDIRECT".into(),
            return_url: Some("https://shop.example.no/return".into()),
            payment_description: Some("paystate demo".into()),
            customer_phone_number: None,
        };
        self.vipps
            .create_payment(&payment, &VippsClient::new_idempotency_key())
            .await
            .with_context(|| format!("creating {reference} at the simulator"))?;
        Ok(())
    }

    pub async fn approve(&self, reference: &str) -> anyhow::Result<()> {
        self.vipps
            .force_approve(
                &Reference::parse(reference)?,
                CUSTOMER_PHONE,
                &VippsClient::new_idempotency_key(),
            )
            .await
            .with_context(|| format!("approving {reference} at the simulator"))
    }

    pub async fn capture(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
        self.vipps
            .capture(
                &Reference::parse(reference)?,
                nok(amount)?,
                &VippsClient::new_idempotency_key(),
            )
            .await
            .with_context(|| format!("capturing {amount} of {reference}"))?;
        Ok(())
    }

    pub async fn refund(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
        self.vipps
            .refund(
                &Reference::parse(reference)?,
                nok(amount)?,
                &VippsClient::new_idempotency_key(),
            )
            .await
            .with_context(|| format!("refunding {amount} of {reference}"))?;
        Ok(())
    }
}

fn nok(value: u64) -> anyhow::Result<Money> {
    Ok(Money {
        currency: Currency::parse("NOK")?,
        value: Amount::parse(&value.to_string())?,
    })
}
