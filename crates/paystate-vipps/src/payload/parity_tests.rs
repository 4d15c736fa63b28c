//! The typed reader against the reading it replaced: the body as a `serde_json::Value`, then
//! the fields picked out. Both must accept the same bodies, read the same fields and refuse
//! with the same error, whatever the body, but for the two differences `read` documents.

use super::event::echo;
use super::*;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// What the `Value` reading made of a body: every public field of an [`EpaymentEvent`].
#[derive(Debug, PartialEq)]
struct Read {
    msn: String,
    reference: String,
    psp_reference: String,
    name: PaymentEventName,
    amount: Option<WireAmount>,
    timestamp: Option<String>,
    idempotency_key: Option<String>,
    success: Option<bool>,
    extra: Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn take_text(
    fields: &mut Map<String, Value>,
    field: &'static str,
    numbers_as_text: bool,
) -> Result<Option<String>, PayloadError> {
    match fields.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Number(number)) if numbers_as_text => Ok(Some(number.to_string())),
        Some(other) => Err(PayloadError::WrongType {
            field,
            expected: "a string",
            found: kind(&other),
        }),
    }
}

/// `amount`; `raw` is the body, where a number that is no integer is read as written.
fn take_amount(
    fields: &mut Map<String, Value>,
    raw: &[u8],
) -> Result<Option<WireAmount>, PayloadError> {
    let mut amount = match fields.remove("amount") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(amount)) => amount,
        Some(other) => {
            return Err(PayloadError::WrongType {
                field: "amount",
                expected: "an object",
                found: kind(&other),
            })
        }
    };
    let currency =
        take_text(&mut amount, "currency", false).map_err(|_| PayloadError::WrongType {
            field: "amount.currency",
            expected: "a string",
            found: "another type",
        })?;
    let value = match amount.remove("value") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(event::WireValue::Text(text)),
        Some(Value::Number(number)) => match number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
        {
            Some(integer) => Some(event::WireValue::Integer(integer)),
            None => Some(event::WireValue::Text(amount_value_as_written(raw))),
        },
        Some(other) => {
            return Err(PayloadError::WrongType {
                field: "amount.value",
                expected: "an integer",
                found: kind(&other),
            })
        }
    };
    Ok(Some(WireAmount { currency, value }))
}

/// The `Value` reading, as it was.
fn value_reading(raw: &[u8]) -> Result<Read, PayloadError> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|error| PayloadError::NotJson(echo(&error.to_string())))?;
    let Value::Object(mut fields) = value else {
        return Err(PayloadError::NotAnObject);
    };
    let msn = take_text(&mut fields, "msn", true)?.ok_or(PayloadError::MissingField("msn"))?;
    let reference = take_text(&mut fields, "reference", false)?
        .ok_or(PayloadError::MissingField("reference"))?;
    let psp_reference = take_text(&mut fields, "pspReference", false)?
        .ok_or(PayloadError::MissingField("pspReference"))?;
    let name = take_text(&mut fields, "name", false)?.ok_or(PayloadError::MissingField("name"))?;
    let amount = take_amount(&mut fields, raw)?;
    let timestamp = take_text(&mut fields, "timestamp", false)?;
    let idempotency_key = take_text(&mut fields, "idempotencyKey", true)?;
    let success = match fields.remove("success") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(success)) => Some(success),
        Some(other) => {
            return Err(PayloadError::WrongType {
                field: "success",
                expected: "a boolean",
                found: kind(&other),
            })
        }
    };
    Ok(Read {
        msn,
        reference,
        psp_reference,
        name: PaymentEventName::from(name),
        amount,
        timestamp,
        idempotency_key,
        success,
        extra: fields,
    })
}

/// The top-level fields an event is read from.
const MODELLED: [&str; 8] = [
    "msn",
    "reference",
    "pspReference",
    "name",
    "amount",
    "timestamp",
    "idempotencyKey",
    "success",
];

/// The modelled field the typed reader must refuse as sent twice, found from the keys as
/// written (a `Value` keeps only the last of equal keys): `reference` first; else at the top
/// level the field whose second appearance comes first; else within `amount` (its last
/// appearance, the one read).
fn repeated_modelled_field(raw: &[u8]) -> Option<&'static str> {
    // Only a body the parser accepts has fields at all (the keys reader below skips values
    // without the parser's checks, such as numbers out of range).
    serde_json::from_slice::<Value>(raw).ok()?;
    let read: Keys = serde_json::from_slice(raw).ok()?;
    let top = read.keys?;
    let first_repeated = |keys: &[String], modelled: &[&'static str]| {
        let mut seen = Vec::new();
        keys.iter().find_map(|key| {
            let field = modelled.iter().find(|field| **field == key.as_str())?;
            if seen.contains(field) {
                Some(*field)
            } else {
                seen.push(*field);
                None
            }
        })
    };
    let references = top.iter().filter(|key| *key == "reference").count();
    if references > 1 {
        return Some("reference");
    }
    first_repeated(&top, &MODELLED).or_else(|| {
        let amount = read.amount.as_ref()?.keys.as_deref()?;
        first_repeated(amount, &["currency", "value"]).map(|field| match field {
            "currency" => "amount.currency",
            _ => "amount.value",
        })
    })
}

/// The text of `amount.value` as written (the last `amount`'s last `value`), read by [`Keys`].
fn amount_value_as_written(raw: &[u8]) -> String {
    serde_json::from_slice::<Keys>(raw)
        .ok()
        .and_then(|read| read.amount?.value)
        .expect("a body with amount.value")
}

/// A JSON value's keys as written, in order, when it is an object (`None` for any other value),
/// those of its last `amount` member, read the same way, and the text of its last `value`.
#[derive(Default)]
struct Keys {
    keys: Option<Vec<String>>,
    amount: Option<Box<Keys>>,
    value: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut read = Keys::default();
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "amount" {
                        read.amount = Some(Box::new(map.next_value()?));
                    } else if key == "value" {
                        let value: Box<serde_json::value::RawValue> = map.next_value()?;
                        read.value = Some(value.get().to_owned());
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                    keys.push(key);
                }
                read.keys = Some(keys);
                Ok(read)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Keys::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Keys, E> {
                Ok(Keys::default())
            }
            fn visit_unit<E>(self) -> Result<Keys, E> {
                Ok(Keys::default())
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Both readers on one body: the same event (and the same view of it), or the same error.
fn assert_same_reading(raw: &[u8]) -> Result<(), TestCaseError> {
    if let Some(field) = repeated_modelled_field(raw) {
        prop_assert_eq!(
            EpaymentEvent::parse(raw.to_vec()).err(),
            Some(PayloadError::RepeatedField(field)),
            "body {:?}",
            String::from_utf8_lossy(raw)
        );
        return Ok(());
    }
    let expected = value_reading(raw);
    let typed = EpaymentEvent::parse(raw.to_vec()).map(|event| {
        prop_assert_eq!(event.raw(), raw);
        let view = EventView::parse(raw).expect("the view reads what the event reads");
        prop_assert_eq!(&view, &event.view());
        Ok(Read {
            msn: event.msn,
            reference: event.reference,
            psp_reference: event.psp_reference,
            name: event.name,
            amount: event.amount,
            timestamp: event.timestamp,
            idempotency_key: event.idempotency_key,
            success: event.success,
            extra: event.extra,
        })
    });
    let typed = match typed {
        Ok(read) => Ok(read?),
        Err(error) => {
            prop_assert_eq!(EventView::parse(raw).err(), Some(error.clone()));
            Err(error)
        }
    };
    prop_assert_eq!(typed, expected, "body {:?}", String::from_utf8_lossy(raw));
    Ok(())
}

/// Field names: the modelled ones (one escaped), an `amount` key, and unknown ones.
fn key() -> impl Strategy<Value = &'static str> {
    let mut keys = MODELLED.to_vec();
    keys.extend([
        "currency",
        "value",
        "ms\\u006e",
        "userDetails",
        "captureGuaranteedUntil",
    ]);
    prop::sample::select(keys)
}

/// JSON text of any scalar type, with escapes and odd numbers.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        prop_oneof![
            Just("1.5"),
            Just("-0"),
            Just("1e3"),
            Just("1e400"),
            Just("18446744073709551616"),
            Just("123456.0"),
        ]
        .prop_map(str::to_owned),
        "[a-zA-Z0-9 -]{0,12}".prop_map(|text| format!("\"{text}\"")),
        Just(r#""acme\u002dorder\n\"1\"""#.to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just("\"NOK\"".to_owned()),
        Just("\"AUTHORIZED\"".to_owned()),
        Just("\"2025-01-14T09:30:01.123Z\"".to_owned()),
    ]
}

/// JSON text of any type, nested too.
fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|entries| object(&entries)),
        ]
    })
}

fn object(entries: &[(&str, String)]) -> String {
    let fields: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("\"{key}\":{value}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// An `amount`: an object with each of its two fields absent or of any type, sometimes with
/// another field, or a value of another type.
fn amount() -> impl Strategy<Value = String> {
    let field = |name: &'static str| {
        prop::option::of(prop_oneof![3 => scalar(), 1 => value()].prop_map(move |v| (name, v)))
    };
    prop_oneof![
        4 => (field("currency"), field("value"), prop::option::of(value().prop_map(|v| ("note", v))))
            .prop_map(|(currency, value, note)| {
                let entries: Vec<(&str, String)> =
                    [currency, value, note].into_iter().flatten().collect();
                object(&entries)
            }),
        1 => value(),
    ]
}

/// A body close to a real one: the usual fields, some replaced, repeated or added, then
/// possibly cut short or followed by more text.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let usual = vec![
        ("msn", "\"123456\"".to_owned()),
        ("reference", "\"acme-order-1001\"".to_owned()),
        ("pspReference", "\"psp-1\"".to_owned()),
        ("name", "\"AUTHORIZED\"".to_owned()),
        ("amount", r#"{"currency":"NOK","value":49900}"#.to_owned()),
        ("timestamp", "\"2025-01-14T09:30:01.123Z\"".to_owned()),
        ("idempotencyKey", "null".to_owned()),
        ("success", "true".to_owned()),
    ];
    (
        prop::option::of(amount()),
        prop::collection::vec((0..usual.len(), any::<bool>()), 0..4),
        prop::collection::vec((key(), value()), 0..4),
        0usize..3,
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(amount, dropped, added, ending, cut)| {
            let mut entries = usual.clone();
            if let Some(amount) = amount {
                entries[4].1 = amount;
            }
            for (index, drop) in dropped {
                let index = index.min(entries.len().saturating_sub(1));
                if index >= entries.len() {
                    break;
                }
                if drop {
                    entries.remove(index);
                } else {
                    entries[index].1 = "null".to_owned();
                }
            }
            entries.extend(added);
            let mut text = object(&entries).into_bytes();
            match ending {
                1 => text.truncate(cut.index(text.len() + 1)),
                2 => text.extend_from_slice(b" x"),
                _ => {}
            }
            text
        })
}

#[test]
fn corner_cases_read_the_same() {
    for body in [
        "",
        " ",
        "null",
        "\"text\"",
        "[1,{\"msn\":1}]",
        "{}",
        r#"{"msn":"1","msn":null,"reference":"r","pspReference":"p","name":"N"}"#,
        r#"{"msn":null,"msn":"1","reference":"r","pspReference":"p","name":"N"}"#,
        r#"{"msn":123456.0,"reference":"r","pspReference":"p","name":"N","idempotencyKey":7}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"value":1.5,"value":"7","currency":null,"x":[]}}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"value":{},"currency":"NOK"}}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"currency":5}}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":[]}"#,
        r#"{"msn":"1","reference":"r\u00e6","pspReference":"p","name":"\u0041UTHORIZED","x":{"y":[null]},"x":2}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","success":1e400}"#,
        r#"{"msn":[],"reference":{}}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"currency":"NOK","value":-1}}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"value":1e3,"x":{"value":2}},"value":3}"#,
        r#"{"msn":"1","reference":"r","pspReference":"p","name":"N","amount":{"value": 1000000000000000000000000000000 }}"#,
    ] {
        assert_same_reading(body.as_bytes()).unwrap();
    }
    let deep = format!(
        r#"{{"msn":"1","reference":"r","pspReference":"p","name":"N","x":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(matches!(
        EpaymentEvent::parse(deep.clone().into_bytes()),
        Err(PayloadError::NotJson(_))
    ));
    assert_same_reading(deep.as_bytes()).unwrap();
    let deep_known = format!(r#"{{"msn":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    assert_same_reading(deep_known.as_bytes()).unwrap();
}

proptest! {
    // Many cases: a body reaches the amount's checks only when its identity fields survive.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn bodies_near_a_real_one_read_the_same(raw in body()) {
        assert_same_reading(&raw)?;
    }

    #[test]
    fn arbitrary_bytes_read_the_same(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        assert_same_reading(&raw)?;
    }
}
