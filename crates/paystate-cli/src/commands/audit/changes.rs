//! What a fact changed: the differences between a view before and after it, field by field.
//!
//! Views are compared as JSON (the same shape the HTTP API answers), flattened to dotted field
//! names, so a new view field shows up in audits without code here. Money fields are shown in
//! major units with their currency ("captured 0.00 -> 40.00 NOK"), though views hold minor units;
//! so are the amounts of a payment's anomalies, which are shown in words
//! ("captured 200.00 NOK exceeds authorized 100.00 NOK") rather than as the view's objects.

use paystate_domain::payment::PaymentAnomaly;
use paystate_domain::{Amount, Currency, Money};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

/// In words, as the audit table shows it: the amounts of the aggregate by their plain names
/// (`captured 0.00 -> 40.00 NOK`), every other field by its path in the view.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.field.strip_prefix("aggregate.").unwrap_or(&self.field);
        write!(f, "{name} {} -> {}", self.from, self.to)
    }
}

/// How a kind of view is compared.
#[derive(Debug, Clone, Copy)]
pub struct ViewShape {
    /// Fields that change with every fact and say nothing (positions, times, counts of facts).
    pub ignored: &'static [&'static str],
    /// Fields holding minor units in the view's `currency`.
    pub money: &'static [&'static str],
    /// Fields naming the subject itself; they say nothing when the view first appears.
    pub identity: &'static [&'static str],
    /// The field listing the payment's anomalies, shown in words.
    pub anomalies: Option<&'static str>,
}

pub const PAYMENT: ViewShape = ViewShape {
    ignored: &["position", "events", "first_seen_at", "last_event_at"],
    money: &[
        "amount",
        "aggregate.authorized",
        "aggregate.captured",
        "aggregate.refunded",
        "aggregate.cancelled",
    ],
    identity: &["provider_id", "reference"],
    anomalies: Some("anomalies"),
};

/// Every field counts: for comparing two views of the same moment.
pub const EXACT: ViewShape = ViewShape {
    ignored: &[],
    money: &[],
    identity: &[],
    anomalies: None,
};

pub const PROVIDER: ViewShape = ViewShape {
    ignored: &[
        "position",
        "webhook.registered_at",
        "webhooks.last_received_at",
    ],
    money: &[],
    identity: &["id"],
    anomalies: None,
};

/// The fields that differ between `before` and `after` (either may be `null`: no view yet).
///
/// When the view first appears, its identity and the fields that start empty (0, `[]`, none)
/// are left out: what is listed is what the first fact told.
pub fn changes(before: &Value, after: &Value, shape: ViewShape) -> Vec<Change> {
    let first_appearance = before.is_null();
    let before = flatten(before);
    let after = flatten(after);
    let currency = after
        .get("currency")
        .or_else(|| before.get("currency"))
        .filter(|currency| currency.as_str() != "none")
        .cloned();
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|field| !shape.ignored.contains(&field.as_str()))
        .filter(|field| !(first_appearance && shape.identity.contains(&field.as_str())))
        .filter(|field| {
            !(first_appearance
                && after
                    .get(*field)
                    .is_none_or(|value| matches!(value.as_str(), "0" | "[]" | "none")))
        })
        .filter_map(|field| {
            let from = before.get(field).map_or("none", String::as_str);
            let to = after.get(field).map_or("none", String::as_str);
            (from != to).then(|| {
                let money = shape.money.contains(&field.as_str());
                let anomalies = shape.anomalies == Some(field.as_str());
                let (from, to) = match (&currency, money) {
                    (Some(currency), true) => money_pair(from, to, currency),
                    _ if anomalies => (
                        anomaly_words(from, currency.as_deref()),
                        anomaly_words(to, currency.as_deref()),
                    ),
                    _ => (from.to_owned(), to.to_owned()),
                };
                Change {
                    field: field.clone(),
                    from,
                    to,
                }
            })
        })
        .collect()
}

/// Both sides of a money field in major units, the currency said once when both have it:
/// "40.00 NOK -> 80.00 NOK" reads better as "40.00 -> 80.00 NOK".
fn money_pair(from: &str, to: &str, currency: &str) -> (String, String) {
    let (mut from, to) = (with_currency(from, currency), with_currency(to, currency));
    let suffix = format!(" {currency}");
    if to.ends_with(&suffix) && from.ends_with(&suffix) {
        from.truncate(from.len() - suffix.len());
    }
    (from, to)
}

/// A payment's anomalies (the view's JSON list) in words, one after the other, their amounts
/// in major units of `currency`; an empty list is `none`, and text that is not such a list
/// is shown as it is.
fn anomaly_words(list: &str, currency: Option<&str>) -> String {
    let Ok(anomalies) = serde_json::from_str::<Vec<PaymentAnomaly>>(list) else {
        return list.to_owned();
    };
    if anomalies.is_empty() {
        return "none".to_owned();
    }
    let currency = currency.and_then(|currency| Currency::parse(currency).ok());
    anomalies
        .iter()
        .map(|anomaly| anomaly.summary(currency))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `"4000"` minor units of `"NOK"` as `40.00 NOK`; anything that is not an amount in a known
/// currency as it is, with the currency after it.
fn with_currency(amount: &str, currency: &str) -> String {
    if amount == "none" {
        return amount.to_owned();
    }
    match (amount.parse::<u64>(), Currency::parse(currency)) {
        (Ok(minor), Ok(known)) => Money(Amount::from_minor_units(minor), known).to_string(),
        _ => format!("{amount} {currency}"),
    }
}

/// `{"a": {"b": 1}, "c": [..]}` -> `{"a.b": "1", "c": "[..]"}`; `null` -> `"none"`.
fn flatten(value: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let field = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&field, inner, out);
                }
            }
            Value::Null if !prefix.is_empty() => {
                out.insert(prefix.to_owned(), "none".to_owned());
            }
            Value::Null => {}
            Value::String(text) => {
                out.insert(prefix.to_owned(), text.clone());
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(before: Value, after: Value, shape: ViewShape) -> Vec<String> {
        changes(&before, &after, shape)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn money_fields_carry_the_currency_once() {
        let before =
            json!({"state": "AUTHORIZED", "currency": "NOK", "aggregate": {"captured": 0}});
        let after =
            json!({"state": "AUTHORIZED", "currency": "NOK", "aggregate": {"captured": 4000}});
        assert_eq!(
            words(before, after, PAYMENT),
            ["captured 0.00 -> 40.00 NOK"]
        );
    }

    #[test]
    fn anomalies_are_told_in_words_with_amounts_in_major_units() {
        let before = json!({"currency": "NOK", "anomalies": []});
        let after = json!({"currency": "NOK", "anomalies": [
            {"kind": "captured_exceeds_authorized", "captured": 20000, "authorized": 10000},
            {"kind": "ingest", "anomaly": {"kind": "unknown_event_name", "name": "HELD"}}
        ]});
        assert_eq!(
            words(before, after, PAYMENT),
            [
                "anomalies none -> captured 200.00 NOK exceeds authorized 100.00 NOK; \
              unknown event name HELD"
            ]
        );
    }

    #[test]
    fn a_first_view_shows_what_the_first_fact_told_without_identity_empties_or_bookkeeping() {
        let after = json!({
            "provider_id": "vipps-test", "reference": "acme-order-1001", "state": "CREATED",
            "currency": "NOK", "amount": 49900, "aggregate": {"captured": 0}, "anomalies": [],
            "position": 3, "events": 1
        });
        assert_eq!(
            words(Value::Null, after, PAYMENT),
            [
                "amount none -> 499.00 NOK",
                "currency none -> NOK",
                "state none -> CREATED"
            ]
        );
    }

    #[test]
    fn nested_objects_appearing_are_reported_field_by_field() {
        let before = json!({"state": "enabled", "webhook": null});
        let after =
            json!({"state": "enabled", "webhook": {"secret_version": 2, "reason": "rotate"}});
        assert_eq!(
            words(before, after, PROVIDER),
            [
                "webhook.reason none -> rotate",
                "webhook.secret_version none -> 2"
            ]
        );
    }

    #[test]
    fn equal_views_change_nothing() {
        let view = json!({"state": "AUTHORIZED", "aggregate": {"captured": 10}});
        assert!(changes(&view, &view, PAYMENT).is_empty());
    }
}
