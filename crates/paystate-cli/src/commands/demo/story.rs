//! The scripted story, step by step, through the real HTTP APIs: paystate's admin and query
//! API, and the simulator's ePayment API as a merchant's backend calls it.

use super::api::Api;
use super::forgery::{forge, Forgery};
use super::merchant::Merchant;
use super::stage::Stage;
use super::views::{aggregate, print_results, summary, wait_payment};
use anyhow::{bail, Context};
use paystate_domain::events::{DomainEvent, WebhookRejected};
use serde_json::{json, Value};
use std::time::Duration;
use vipps_sim::Faults;

pub const PROVIDER: &str = "vipps-demo";
pub const MSN: &str = "123456";
/// The payment whose audit timeline the demo prints.
pub const AUDITED: &str = "acme-order-1001";
/// The payment delivered twice and refunded after the rotation; its timeline is printed too.
pub const SECOND: &str = "acme-order-1002";
const THIRD: &str = "acme-order-1003";

/// Runs the whole story on a started stage.
pub async fn tell(stage: &Stage) -> anyhow::Result<()> {
    let api = &stage.api;
    let merchant = Merchant::new(&stage.sim.base_url())?;
    create_provider(api).await?;
    let webhook_url = enable(api).await?;
    authorize_payments(api, &merchant).await?;
    capture_and_refund(api, &merchant).await?;
    duplicate_delivery(stage, &merchant).await?;
    out_of_order_delivery(stage, &merchant).await?;
    forgeries(api, &webhook_url).await?;
    rotate_secret(api, &merchant).await?;
    print_results(api).await?;
    disable(api).await
}

fn step(number: u32, title: &str) -> anyhow::Result<()> {
    crate::say!("\n== {number}. {title} ==")
}

async fn create_provider(api: &Api) -> anyhow::Result<()> {
    step(1, "A provider is created (disabled) through the admin API")?;
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
    crate::say!(
        "POST /providers -> state {}, webhook {}",
        created["state"],
        created["webhook"]
    )?;
    Ok(())
}

/// Enables the provider and waits for the reactor's registration; its webhook URL.
async fn enable(api: &Api) -> anyhow::Result<String> {
    step(
        2,
        "It is enabled; the registration reactor registers its webhook at Vipps by itself",
    )?;
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
    let webhook = &registered["webhook"];
    let url = webhook["url"]
        .as_str()
        .context("the registered webhook URL")?;
    crate::say!(
        "webhook {} registered at {url} with secret version {} (reason {})",
        webhook["registration_id"].as_str().unwrap_or("?"),
        webhook["secret_version"],
        webhook["reason"].as_str().unwrap_or("?"),
    )?;
    Ok(url.to_owned())
}

async fn authorize_payments(api: &Api, merchant: &Merchant) -> anyhow::Result<()> {
    step(
        3,
        "Payments are created at Vipps and authorized by the customer (force-approve)",
    )?;
    merchant.create(AUDITED, 49900).await?;
    merchant.create(SECOND, 12000).await?;
    merchant.approve(AUDITED).await?;
    merchant.approve(SECOND).await?;
    for reference in [AUDITED, SECOND] {
        let view = wait_payment(api, reference, "the authorization webhook", |view| {
            view["state"] == "AUTHORIZED"
        })
        .await?;
        crate::say!("{}", summary(&view))?;
    }
    Ok(())
}

async fn capture_and_refund(api: &Api, merchant: &Merchant) -> anyhow::Result<()> {
    step(
        4,
        "Part of acme-order-1001 is captured, then part of that refunded",
    )?;
    merchant.capture(AUDITED, 20000).await?;
    merchant.refund(AUDITED, 5000).await?;
    let view = wait_payment(api, AUDITED, "the capture and refund webhooks", |view| {
        aggregate(view, "captured") == 20000 && aggregate(view, "refunded") == 5000
    })
    .await?;
    crate::say!("{}", summary(&view))?;
    Ok(())
}

async fn duplicate_delivery(stage: &Stage, merchant: &Merchant) -> anyhow::Result<()> {
    step(
        5,
        "Vipps delivers a webhook twice (simulator knob deliveries_per_event = 2)",
    )?;
    stage.sim.set_faults(Faults {
        deliveries_per_event: 2,
        ..Faults::default()
    });
    merchant.capture(SECOND, 12000).await?;
    let view = wait_payment(&stage.api, SECOND, "the duplicate delivery", |view| {
        view["duplicates"].as_u64().unwrap_or(0) >= 1
    })
    .await?;
    stage.sim.set_faults(Faults::default());
    crate::say!(
        "{}; duplicate deliveries recorded: {} (the money counted once, the delivery kept as a fact)",
        summary(&view),
        view["duplicates"]
    )?;
    Ok(())
}

async fn out_of_order_delivery(stage: &Stage, merchant: &Merchant) -> anyhow::Result<()> {
    step(
        6,
        "Vipps delivers out of order (knob reorder_within_payment_ms = 1000)",
    )?;
    // CREATED waits up to a second for a later event of its payment and goes after it; the
    // approval follows at once, so AUTHORIZED arrives first.
    stage.sim.set_faults(Faults {
        reorder_within_payment: Duration::from_millis(1000),
        ..Faults::default()
    });
    merchant.create(THIRD, 7500).await?;
    merchant.approve(THIRD).await?;
    let view = wait_payment(
        &stage.api,
        THIRD,
        "both webhooks of acme-order-1003",
        |view| view["events"].as_u64().unwrap_or(0) >= 2,
    )
    .await?;
    stage.sim.set_faults(Faults::default());
    let order: Vec<String> = stage
        .sim
        .deliveries()
        .iter()
        .filter(|record| record.reference == THIRD && record.delivered())
        .map(|record| record.event.clone())
        .collect();
    crate::say!(
        "delivered in the order {}; paystate's view: {}",
        order.join(" then "),
        summary(&view)
    )?;
    Ok(())
}

async fn forgeries(api: &Api, webhook_url: &str) -> anyhow::Result<()> {
    step(
        7,
        "Forged webhooks are rejected, each with its diagnosis, and change nothing",
    )?;
    for forgery in [Forgery::ForeignSecret, Forgery::BodyChanged] {
        let (status, answer) = forge(webhook_url, forgery).await?;
        crate::say!(
            "{}: POST {webhook_url} -> HTTP {status} {answer}",
            forgery.describe()
        )?;
    }
    let history = provider_history(api).await?;
    for rejected in history_of_type(&history, "webhook_rejected") {
        let summary = serde_json::from_value::<WebhookRejected>(rejected["data"].clone())
            .map(|event| DomainEvent::from(event).summary())
            .unwrap_or_else(|_| rejected["data"].to_string());
        crate::say!("recorded at position {}: {summary}", rejected["position"])?;
    }
    let view = wait_payment(api, AUDITED, "the payment view", |_| true).await?;
    crate::say!("acme-order-1001 unchanged: {}", summary(&view))?;
    Ok(())
}

async fn rotate_secret(api: &Api, merchant: &Merchant) -> anyhow::Result<()> {
    step(
        8,
        "The webhook secret is rotated: a new registration with a new secret, the old one deleted",
    )?;
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
    crate::say!(
        "webhook {} now uses secret version {} (reason {})",
        rotated["webhook"]["registration_id"]
            .as_str()
            .unwrap_or("?"),
        rotated["webhook"]["secret_version"],
        rotated["webhook"]["reason"].as_str().unwrap_or("?")
    )?;
    // Until the old registration is deleted, Vipps delivers through both (the overlap that
    // makes rotation safe); waiting for the deletion makes the next delivery the new secret's.
    let history = api
        .wait_for(
            &format!("/providers/{PROVIDER}/history"),
            "the old registration's deletion",
            |history| history_of_type(history, "webhook_deleted").next().is_some(),
        )
        .await?;
    if let Some(deleted) = history_of_type(&history, "webhook_deleted").next() {
        crate::say!(
            "old webhook {} deleted at Vipps ({}), recorded at position {}",
            deleted["data"]["registration_id"].as_str().unwrap_or("?"),
            deleted["data"]["why"].as_str().unwrap_or("?"),
            deleted["position"]
        )?;
    }
    merchant.refund(SECOND, 2000).await?;
    let view = wait_payment(
        api,
        SECOND,
        "a webhook signed with the new secret",
        |view| aggregate(view, "refunded") == 2000,
    )
    .await?;
    crate::say!(
        "after the rotation, verified with secret version 2: {}",
        summary(&view)
    )?;
    Ok(())
}

/// The simulator stops with the demo. Left enabled, the provider would make a later
/// `paystate serve` on this directory call the real Vipps test API with the demo's made-up
/// credentials; disabled, its registrations and history stay as they are.
async fn disable(api: &Api) -> anyhow::Result<()> {
    let disabled = api
        .ok(
            api.post(&format!("/providers/{PROVIDER}/disable"), json!({})),
            "disable",
        )
        .await?;
    if disabled["state"] != "disabled" {
        bail!("the provider did not become disabled: {disabled}");
    }
    crate::say!(
        "\nFinally the provider is disabled: a later `paystate serve` on this directory will not \
         call the real Vipps with the demo's made-up credentials."
    )?;
    Ok(())
}

/// After a story that did not finish (an error, Ctrl-C): disables the provider if it was
/// created, and says what became of it on standard error.
pub async fn disable_after_failure(api: &Api) {
    let answer = api
        .post(&format!("/providers/{PROVIDER}/disable"), json!({}))
        .await;
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => {
            eprintln!("the demo's provider {PROVIDER} was disabled");
        }
        // Never created: nothing to disable.
        Ok(answer) if answer.status == 404 => {}
        Ok(answer) => {
            eprintln!(
                "could not disable the demo's provider {PROVIDER}: HTTP {} {}",
                answer.status, answer.body
            );
        }
        Err(error) => {
            eprintln!("could not disable the demo's provider {PROVIDER}: {error:#}");
        }
    }
}

async fn provider_history(api: &Api) -> anyhow::Result<Value> {
    api.ok(
        api.get(&format!("/providers/{PROVIDER}/history")),
        "provider history",
    )
    .await
}

/// The entries of a `{"events": [...]}` history with this `type`, oldest first.
fn history_of_type<'a>(history: &'a Value, event_type: &'a str) -> impl Iterator<Item = &'a Value> {
    history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |event| event["type"] == event_type)
}
