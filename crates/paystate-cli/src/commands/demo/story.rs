//! The scripted story, step by step, through the real HTTP APIs: paystate's admin and query
//! API, and the simulator's ePayment API as a merchant's backend would call it.

use super::api::Api;
use super::stage::Stage;
use anyhow::{bail, Context};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use paystate_domain::events::{DomainEvent, WebhookRejected};
use paystate_domain::{Amount, Currency, Environment, Msn, Reference};
use paystate_vipps::client::epayment::{CreatePayment, Money};
use paystate_vipps::signature::imf_fixdate;
use paystate_vipps::{
    sign_delivery, ClientConfig, Credentials, RegisteredUrl, VippsClient, WebhookSecret,
};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use vipps_sim::Faults;

pub const PROVIDER: &str = "vipps-demo";
const MSN: &str = "123456";
const CUSTOMER_PHONE: &str = "4712345678";
/// The payment whose audit timeline the demo prints.
pub const AUDITED: &str = "acme-order-1001";

/// The merchant's side of the story: the ePayment API at the simulator.
struct Merchant {
    vipps: VippsClient,
}

impl Merchant {
    fn new(sim_base: &str) -> anyhow::Result<Merchant> {
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

    async fn create(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
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

    async fn approve(&self, reference: &str) -> anyhow::Result<()> {
        self.vipps
            .force_approve(
                &Reference::parse(reference)?,
                CUSTOMER_PHONE,
                &VippsClient::new_idempotency_key(),
            )
            .await
            .with_context(|| format!("approving {reference} at the simulator"))
    }

    async fn capture(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
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

    async fn refund(&self, reference: &str, amount: u64) -> anyhow::Result<()> {
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

fn step(number: u32, title: &str) {
    println!("\n== {number}. {title} ==");
}

fn payment_path(reference: &str) -> String {
    format!("/payments/{PROVIDER}/{reference}")
}

/// Waits until paystate's view of `reference` satisfies `condition`.
async fn wait_payment(
    api: &Api,
    reference: &str,
    what: &str,
    condition: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    api.wait_for(&payment_path(reference), what, condition)
        .await
}

fn aggregate(view: &Value, field: &str) -> u64 {
    view["aggregate"][field].as_u64().unwrap_or(0)
}

fn summary(view: &Value) -> String {
    format!(
        "{} {}: state {}, authorized {}, captured {}, refunded {}, cancelled {} {}",
        view["provider_id"].as_str().unwrap_or("?"),
        view["reference"].as_str().unwrap_or("?"),
        view["state"].as_str().unwrap_or("?"),
        aggregate(view, "authorized"),
        aggregate(view, "captured"),
        aggregate(view, "refunded"),
        aggregate(view, "cancelled"),
        view["currency"].as_str().unwrap_or("")
    )
}

/// Runs the whole story on a started stage.
pub async fn tell(stage: &Stage) -> anyhow::Result<()> {
    let api = &stage.api;
    let merchant = Merchant::new(&stage.sim.base_url())?;

    step(1, "A provider is created (disabled) through the admin API");
    let created = api
        .ok(
            api.post(
                "/providers",
                json!({
                    "id": PROVIDER, "kind": "vipps", "environment": "test", "msn": MSN,
                    "credentials": {"client_id": "demo-client-id", "client_secret": "demo-client-secret",
                                    "subscription_key": "demo-subscription-key"}
                }),
            ),
            "POST /providers",
        )
        .await?;
    println!(
        "POST /providers -> state {}, webhook {}",
        created["state"], created["webhook"]
    );

    step(
        2,
        "It is enabled; the registration reactor registers its webhook at Vipps by itself",
    );
    api.ok(
        api.post(&format!("/providers/{PROVIDER}/enable"), json!({})),
        "enable",
    )
    .await?;
    let registered = api
        .wait_for(
            &format!("/providers/{PROVIDER}"),
            "the webhook registration",
            |view| !view["webhook"].is_null(),
        )
        .await?;
    println!(
        "webhook {} registered at {} with secret version {} (reason {})",
        registered["webhook"]["registration_id"]
            .as_str()
            .unwrap_or("?"),
        registered["webhook"]["url"].as_str().unwrap_or("?"),
        registered["webhook"]["secret_version"],
        registered["webhook"]["reason"].as_str().unwrap_or("?"),
    );

    step(
        3,
        "Payments are created at Vipps and authorized by the customer (force-approve)",
    );
    merchant.create(AUDITED, 49900).await?;
    merchant.create("acme-order-1002", 12000).await?;
    merchant.approve(AUDITED).await?;
    merchant.approve("acme-order-1002").await?;
    for reference in [AUDITED, "acme-order-1002"] {
        let view = wait_payment(api, reference, "the authorization webhook", |view| {
            view["state"] == "AUTHORIZED"
        })
        .await?;
        println!("{}", summary(&view));
    }

    step(
        4,
        "Part of acme-order-1001 is captured, then part of that refunded",
    );
    merchant.capture(AUDITED, 20000).await?;
    merchant.refund(AUDITED, 5000).await?;
    let view = wait_payment(api, AUDITED, "the capture and refund webhooks", |view| {
        aggregate(view, "captured") == 20000 && aggregate(view, "refunded") == 5000
    })
    .await?;
    println!("{}", summary(&view));

    step(
        5,
        "Vipps delivers a webhook twice (simulator knob deliveries_per_event = 2)",
    );
    stage.sim.set_faults(Faults {
        deliveries_per_event: 2,
        ..Faults::default()
    });
    merchant.capture("acme-order-1002", 12000).await?;
    let view = wait_payment(api, "acme-order-1002", "the duplicate delivery", |view| {
        view["duplicates"].as_u64().unwrap_or(0) >= 1
    })
    .await?;
    stage.sim.set_faults(Faults::default());
    println!(
        "{}; duplicate deliveries recorded: {} (the money counted once, the delivery kept as a fact)",
        summary(&view),
        view["duplicates"]
    );

    step(
        6,
        "Vipps delivers out of order (knob reorder_within_payment_ms = 1000)",
    );
    stage.sim.set_faults(Faults {
        reorder_within_payment: Duration::from_millis(1000),
        ..Faults::default()
    });
    merchant.create("acme-order-1003", 7500).await?;
    merchant.approve("acme-order-1003").await?;
    let view = wait_payment(
        api,
        "acme-order-1003",
        "both webhooks of acme-order-1003",
        |view| view["events"].as_u64().unwrap_or(0) >= 2,
    )
    .await?;
    stage.sim.set_faults(Faults::default());
    let order: Vec<String> = stage
        .sim
        .deliveries()
        .iter()
        .filter(|record| record.reference == "acme-order-1003" && record.delivered())
        .map(|record| record.event.clone())
        .collect();
    println!(
        "delivered in the order {}; paystate's view: {}",
        order.join(" then "),
        summary(&view)
    );

    step(
        7,
        "Forged webhooks are rejected, each with its diagnosis, and change nothing",
    );
    let webhook_url = registered["webhook"]["url"]
        .as_str()
        .context("the registered webhook URL")?;
    for forgery in [Forgery::ForeignSecret, Forgery::BodyChanged] {
        let (status, answer) = forge(webhook_url, forgery).await?;
        println!(
            "{}: POST {webhook_url} -> HTTP {status} {answer}",
            forgery.describe()
        );
    }
    let history = api
        .ok(
            api.get(&format!("/providers/{PROVIDER}/history")),
            "provider history",
        )
        .await?;
    for rejected in history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["type"] == "webhook_rejected")
    {
        let summary = serde_json::from_value::<WebhookRejected>(rejected["data"].clone())
            .map(|event| DomainEvent::from(event).summary())
            .unwrap_or_else(|_| rejected["data"].to_string());
        println!("recorded at position {}: {summary}", rejected["position"]);
    }
    let view = wait_payment(api, AUDITED, "the payment view", |_| true).await?;
    println!("acme-order-1001 unchanged: {}", summary(&view));

    step(
        8,
        "The webhook secret is rotated: a new registration with a new secret, the old one deleted",
    );
    api.ok(
        api.post(&format!("/providers/{PROVIDER}/webhook/rotate"), json!({})),
        "rotate",
    )
    .await?;
    let rotated = api
        .wait_for(&format!("/providers/{PROVIDER}"), "the rotation", |view| {
            view["webhook"]["secret_version"].as_u64().unwrap_or(0) >= 2
        })
        .await?;
    println!(
        "webhook {} now uses secret version {} (reason {})",
        rotated["webhook"]["registration_id"]
            .as_str()
            .unwrap_or("?"),
        rotated["webhook"]["secret_version"],
        rotated["webhook"]["reason"].as_str().unwrap_or("?")
    );
    // Until the old registration is deleted, Vipps delivers through both (the overlap that
    // makes rotation safe); waiting for the deletion makes the next delivery the new secret's.
    let history = api
        .wait_for(
            &format!("/providers/{PROVIDER}/history"),
            "the old registration's deletion",
            |history| {
                history["events"].as_array().is_some_and(|events| {
                    events
                        .iter()
                        .any(|event| event["type"] == "webhook_deleted")
                })
            },
        )
        .await?;
    if let Some(deleted) = history["events"].as_array().and_then(|events| {
        events
            .iter()
            .find(|event| event["type"] == "webhook_deleted")
    }) {
        println!(
            "old webhook {} deleted at Vipps ({}), recorded at position {}",
            deleted["data"]["registration_id"].as_str().unwrap_or("?"),
            deleted["data"]["why"].as_str().unwrap_or("?"),
            deleted["position"]
        );
    }
    merchant.refund("acme-order-1002", 2000).await?;
    let view = wait_payment(
        api,
        "acme-order-1002",
        "a webhook signed with the new secret",
        |view| aggregate(view, "refunded") == 2000,
    )
    .await?;
    println!(
        "after the rotation, verified with secret version 2: {}",
        summary(&view)
    );

    print_results(api).await?;

    // The simulator stops with the demo. Left enabled, the provider would make a later
    // `paystate serve` on this directory call the real Vipps test API with the demo's made-up
    // credentials; disabled, its registrations and history stay as they are.
    let disabled = api
        .ok(
            api.post(&format!("/providers/{PROVIDER}/disable"), json!({})),
            "disable",
        )
        .await?;
    if disabled["state"] != "disabled" {
        bail!("the provider did not become disabled: {disabled}");
    }
    println!(
        "\nFinally the provider is disabled: a later `paystate serve` on this directory will not \
         call the real Vipps with the demo's made-up credentials."
    );
    Ok(())
}

/// Two ways a request can fail to be a delivery from Vipps.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// Signed correctly, but with a secret the provider never had.
    ForeignSecret,
    /// Its body is not the one its `x-ms-content-sha256` and signature were made for.
    BodyChanged,
}

impl Forgery {
    fn describe(self) -> &'static str {
        match self {
            Forgery::ForeignSecret => "signed with a foreign secret",
            Forgery::BodyChanged => "body changed after signing",
        }
    }
}

/// Sends a plausible REFUNDED delivery for the audited payment, forged as `forgery` says.
async fn forge(webhook_url: &str, forgery: Forgery) -> anyhow::Result<(u16, Value)> {
    let url = RegisteredUrl::parse(webhook_url).context("the registered webhook URL")?;
    let body = |value: u64| {
        json!({
            "msn": MSN, "reference": AUDITED, "pspReference": "forged-refund-1", "name": "REFUNDED",
            "amount": {"currency": "NOK", "value": value}, "timestamp": "2025-01-14T09:30:01.123Z",
            "idempotencyKey": null, "success": true
        })
        .to_string()
    };
    let signed_body = body(100);
    let sent_body = match forgery {
        Forgery::ForeignSecret => signed_body.clone(),
        Forgery::BodyChanged => body(20000),
    };
    let foreign_secret = WebhookSecret::new("not-the-provider-secret-0123456789");
    let headers = sign_delivery(
        &foreign_secret,
        &url,
        signed_body.as_bytes(),
        &imf_fixdate(SystemTime::now()),
    );
    let mut request = reqwest::Client::new()
        .post(webhook_url)
        .header("content-type", "application/json")
        .body(sent_body);
    for (name, value) in headers.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.context("sending a forged webhook")?;
    let status = response.status().as_u16();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    if status != 401 {
        bail!("a forged webhook was answered {status} {answer}, not 401");
    }
    Ok((status, answer))
}

async fn print_results(api: &Api) -> anyhow::Result<()> {
    println!("\n== Provider view (GET /providers/{PROVIDER}) ==");
    let provider = api
        .ok(api.get(&format!("/providers/{PROVIDER}")), "provider view")
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&provider).unwrap_or_default()
    );

    println!("\n== Payments (GET /payments?provider_id={PROVIDER}) ==");
    let page = api
        .ok(
            api.get(&format!("/payments?provider_id={PROVIDER}&limit=100")),
            "payments",
        )
        .await?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "reference",
        "state",
        "amount",
        "authorized",
        "captured",
        "refunded",
        "cancelled",
        "facts",
        "duplicates",
    ]);
    for payment in page["payments"].as_array().into_iter().flatten() {
        table.add_row([
            payment["reference"].as_str().unwrap_or("?").to_owned(),
            payment["state"].as_str().unwrap_or("?").to_owned(),
            format!(
                "{} {}",
                payment["amount"],
                payment["currency"].as_str().unwrap_or("")
            ),
            aggregate(payment, "authorized").to_string(),
            aggregate(payment, "captured").to_string(),
            aggregate(payment, "refunded").to_string(),
            aggregate(payment, "cancelled").to_string(),
            payment["events"].to_string(),
            payment["duplicates"].to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}
