//! What a fact changed: the differences between a view before and after it, field by field.
//!
//! Views are compared as JSON (the same shape the HTTP API answers), flattened to dotted field
//! names, so a new view field shows up in audits without code here. Money fields are shown in
//! major units with their currency ("captured 0.00 -> 40.00 NOK"), though views hold minor units.

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
};

/// Every field counts: for comparing two views of the same moment.
pub const EXACT: ViewShape = ViewShape {
    ignored: &[],
    money: &[],
    identity: &[],
};

pub const PROVIDER: ViewShape = ViewShape {
    ignored: &[
        "position",
        "webhook.registered_at",
        "webhooks.last_received_at",
    ],
    money: &[],
    identity: &["id"],
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
                let (from, to) = match (&currency, money) {
                    (Some(currency), true) => {
                        (with_currency(from, currency), with_currency(to, currency))
                    }
                    _ => (from.to_owned(), to.to_owned()),
                };
                Change {
                    field: field.clone(),
                    from,
                    to,
                }
            })
        })
        .map(|mut change| {
            // "40.00 NOK -> 80.00 NOK" reads better as "40.00 -> 80.00 NOK".
            if let Some(currency) = &currency {
                let suffix = format!(" {currency}");
                if change.to.ends_with(&suffix) && change.from.ends_with(&suffix) {
                    change.from.truncate(change.from.len() - suffix.len());
                }
            }
            change
        })
        .collect()
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
