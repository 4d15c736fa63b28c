//! Reading paystate's views during the story: waiting for a payment to reach a state, one-line
//! summaries, and the final provider view and payments table.

use super::api::Api;
use super::story::PROVIDER;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use paystate_domain::{Amount, Currency, Money};
use serde_json::Value;

fn payment_path(reference: &str) -> String {
    format!("/payments/{PROVIDER}/{reference}")
}

/// Waits until paystate's view of `reference` satisfies `condition`.
pub async fn wait_payment(
    api: &Api,
    reference: &str,
    what: &str,
    condition: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    api.wait_for(&payment_path(reference), what, condition)
        .await
}

/// One amount of a payment view's aggregate.
pub fn aggregate(view: &Value, field: &str) -> u64 {
    view["aggregate"][field].as_u64().unwrap_or(0)
}

/// An amount of a payment view, held in minor units, in its currency's major units (`499.00`).
fn major(view: &Value, minor_units: u64) -> String {
    match view["currency"].as_str().map(Currency::parse) {
        Some(Ok(currency)) => Money(Amount::from_minor_units(minor_units), currency).number(),
        _ => minor_units.to_string(),
    }
}

/// A payment view in one line.
pub fn summary(view: &Value) -> String {
    format!(
        "{} {}: state {}, authorized {}, captured {}, refunded {}, cancelled {} {}",
        view["provider_id"].as_str().unwrap_or("?"),
        view["reference"].as_str().unwrap_or("?"),
        view["state"].as_str().unwrap_or("?"),
        major(view, aggregate(view, "authorized")),
        major(view, aggregate(view, "captured")),
        major(view, aggregate(view, "refunded")),
        major(view, aggregate(view, "cancelled")),
        view["currency"].as_str().unwrap_or("")
    )
}

/// Prints the provider view and every payment of the provider.
pub async fn print_results(api: &Api) -> anyhow::Result<()> {
    crate::say!("\n== Provider view (GET /providers/{PROVIDER}) ==")?;
    let provider = api
        .ok(api.get(&format!("/providers/{PROVIDER}")), "provider view")
        .await?;
    crate::say!(
        "{}",
        serde_json::to_string_pretty(&provider).unwrap_or_default()
    )?;

    crate::say!("\n== Payments (GET /payments?provider_id={PROVIDER}) ==")?;
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
                major(payment, payment["amount"].as_u64().unwrap_or(0)),
                payment["currency"].as_str().unwrap_or("")
            ),
            major(payment, aggregate(payment, "authorized")),
            major(payment, aggregate(payment, "captured")),
            major(payment, aggregate(payment, "refunded")),
            major(payment, aggregate(payment, "cancelled")),
            payment["events"].to_string(),
            payment["duplicates"].to_string(),
        ]);
    }
    crate::say!("{table}")?;
    Ok(())
}
