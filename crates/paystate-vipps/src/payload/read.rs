//! The typed reader behind [`EventView::parse`]: one pass over the body straight into the
//! fields an event has, text borrowed from the body wherever it holds no escapes.
//!
//! It accepts and refuses what reading the body as a `serde_json::Value` and then picking the
//! fields out did: every value goes through the same parser, an unknown field sent twice counts
//! with its last value, a known field of the wrong JSON type is remembered by its type
//! and refused only after the whole body has been read (so the first field at fault is reported
//! in the same order), and everything the event does not model is read as a `Value` (kept as
//! [`EpaymentEvent::extra`](super::EpaymentEvent::extra), with the parser's nesting limit).
//! Two differences: a field the event models sent twice (`reference`, `amount.value`, ...) makes
//! the body ambiguous, and it is refused ([`PayloadError::RepeatedField`]) rather than read
//! with its last value, which a `Value` could not tell apart; and an `amount.value` that is a
//! number but no 64-bit integer is kept as the text sent ([`super::literal`]), not as the
//! float a `Value` holds, so that the error refusing it quotes what was sent.

use super::event::{echo, PayloadError};
use super::literal;
use super::view::{AmountView, EventView, ValueView};
use paystate_domain::PaymentEventName;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

/// Reads a body into its event and the fields the event does not model.
pub(crate) fn read(raw: &[u8]) -> Result<(EventView<'_>, Map<String, Value>), PayloadError> {
    let top: Top<'_> = serde_json::from_slice(raw)
        .map_err(|error| PayloadError::NotJson(echo(&error.to_string())))?;
    let Top(Some(fields)) = top else {
        return Err(PayloadError::NotAnObject);
    };
    fields.into_event(raw)
}

/// A known field's JSON value, reduced to what checking it needs.
enum Slot<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'a, str>),
    Array,
    Object,
}

impl Slot<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Slot::Null => "null",
            Slot::Bool(_) => "a boolean",
            Slot::Number(_) => "a number",
            Slot::Text(_) => "a string",
            Slot::Array => "an array",
            Slot::Object => "an object",
        }
    }
}

/// `amount`: an object with the two fields read, or any other value.
enum AmountSlot<'a> {
    Object {
        currency: Option<Slot<'a>>,
        value: Option<Slot<'a>>,
        /// The first of the two fields sent more than once, if one was.
        repeated: Option<&'static str>,
    },
    Other(Slot<'a>),
}

/// The whole body: the fields of an object, or `None` for any other JSON value (read through,
/// then refused).
struct Top<'a>(Option<Fields<'a>>);

#[derive(Default)]
struct Fields<'a> {
    msn: Option<Slot<'a>>,
    reference: Option<Slot<'a>>,
    psp_reference: Option<Slot<'a>>,
    name: Option<Slot<'a>>,
    amount: Option<AmountSlot<'a>>,
    timestamp: Option<Slot<'a>>,
    idempotency_key: Option<Slot<'a>>,
    success: Option<Slot<'a>>,
    extra: Map<String, Value>,
    /// The first modelled field sent more than once, if one was.
    repeated: Option<&'static str>,
    /// Whether `reference` was sent more than once: reported before any other repeat, since
    /// such a body names no payment.
    reference_repeated: bool,
}

/// Stores a modelled field's value, noting in `repeated` the first field sent twice.
fn fill<T>(
    slot: &mut Option<T>,
    value: T,
    field: &'static str,
    repeated: &mut Option<&'static str>,
) {
    if slot.is_some() {
        repeated.get_or_insert(field);
    }
    *slot = Some(value);
}

impl<'a> Fields<'a> {
    /// The shape checks, in the order the fields are documented; `raw` is the body read.
    fn into_event(
        self,
        raw: &'a [u8],
    ) -> Result<(EventView<'a>, Map<String, Value>), PayloadError> {
        // An ambiguous body is refused before anything in it is judged.
        if self.reference_repeated {
            return Err(PayloadError::RepeatedField("reference"));
        }
        if let Some(field) = self.repeated {
            return Err(PayloadError::RepeatedField(field));
        }
        if let Some(AmountSlot::Object {
            repeated: Some(field),
            ..
        }) = &self.amount
        {
            return Err(PayloadError::RepeatedField(field));
        }
        let msn = text(self.msn, "msn", true)?.ok_or(PayloadError::MissingField("msn"))?;
        let reference = text(self.reference, "reference", false)?
            .ok_or(PayloadError::MissingField("reference"))?;
        let psp_reference = text(self.psp_reference, "pspReference", false)?
            .ok_or(PayloadError::MissingField("pspReference"))?;
        let name = text(self.name, "name", false)?.ok_or(PayloadError::MissingField("name"))?;
        let amount = amount(self.amount, raw)?;
        let timestamp = text(self.timestamp, "timestamp", false)?;
        let idempotency_key = text(self.idempotency_key, "idempotencyKey", true)?;
        let success = match self.success {
            None | Some(Slot::Null) => None,
            Some(Slot::Bool(success)) => Some(success),
            Some(other) => {
                return Err(PayloadError::WrongType {
                    field: "success",
                    expected: "a boolean",
                    found: other.kind(),
                })
            }
        };
        let name = match name {
            Cow::Borrowed(name) => PaymentEventName::parse(name),
            Cow::Owned(name) => PaymentEventName::from(name),
        };
        let event = EventView {
            msn,
            reference,
            psp_reference,
            name,
            amount,
            timestamp,
            idempotency_key,
            success,
        };
        Ok((event, self.extra))
    }
}

/// A text field; `None` when absent or null. With `numbers_as_text`, a JSON number is accepted
/// and kept as its decimal text (an MSN sent as a number).
fn text<'a>(
    slot: Option<Slot<'a>>,
    field: &'static str,
    numbers_as_text: bool,
) -> Result<Option<Cow<'a, str>>, PayloadError> {
    match slot {
        None | Some(Slot::Null) => Ok(None),
        Some(Slot::Text(text)) => Ok(Some(text)),
        Some(Slot::Number(number)) if numbers_as_text => Ok(Some(Cow::Owned(number.to_string()))),
        Some(other) => Err(PayloadError::WrongType {
            field,
            expected: "a string",
            found: other.kind(),
        }),
    }
}

/// `amount`, from its slot; `raw` is the body, read again for a number that is no integer.
fn amount<'a>(
    slot: Option<AmountSlot<'a>>,
    raw: &'a [u8],
) -> Result<Option<AmountView<'a>>, PayloadError> {
    let (currency, value) = match slot {
        None | Some(AmountSlot::Other(Slot::Null)) => return Ok(None),
        // A repeated field within it was refused before (`Fields::into_event`).
        Some(AmountSlot::Object {
            currency, value, ..
        }) => (currency, value),
        Some(AmountSlot::Other(other)) => {
            return Err(PayloadError::WrongType {
                field: "amount",
                expected: "an object",
                found: other.kind(),
            })
        }
    };
    let currency = text(currency, "currency", false).map_err(|_| PayloadError::WrongType {
        field: "amount.currency",
        expected: "a string",
        found: "another type",
    })?;
    let value = match value {
        None | Some(Slot::Null) => None,
        Some(Slot::Text(text)) => Some(ValueView::Text(text)),
        Some(Slot::Number(number)) => match number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
        {
            Some(integer) => Some(ValueView::Integer(integer)),
            // A float would not repeat what was sent (`1e+30` for thirty digits).
            None => Some(ValueView::Text(
                literal::amount_value(raw)
                    .map_or_else(|| Cow::Owned(number.to_string()), Cow::Borrowed),
            )),
        },
        Some(other) => {
            return Err(PayloadError::WrongType {
                field: "amount.value",
                expected: "an integer",
                found: other.kind(),
            })
        }
    };
    Ok(Some(AmountView { currency, value }))
}

/// The keys of the body the event models; any other is kept by name.
enum Field {
    Msn,
    Reference,
    PspReference,
    Name,
    Amount,
    Timestamp,
    IdempotencyKey,
    Success,
    Other(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                Ok(match key {
                    "msn" => Field::Msn,
                    "reference" => Field::Reference,
                    "pspReference" => Field::PspReference,
                    "name" => Field::Name,
                    "amount" => Field::Amount,
                    "timestamp" => Field::Timestamp,
                    "idempotencyKey" => Field::IdempotencyKey,
                    "success" => Field::Success,
                    other => Field::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(FieldVisitor)
    }
}

/// The keys of `amount` that are read; the others are read through and dropped, as before.
enum AmountField {
    Currency,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for AmountField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountFieldVisitor;
        impl Visitor<'_> for AmountFieldVisitor {
            type Value = AmountField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<AmountField, E> {
                Ok(match key {
                    "currency" => AmountField::Currency,
                    "value" => AmountField::Value,
                    _ => AmountField::Other,
                })
            }
        }
        deserializer.deserialize_str(AmountFieldVisitor)
    }
}

/// Reads every element of an array as a `Value`: the same checks and nesting limit as before.
fn read_through_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Value>()?.is_some() {}
    Ok(())
}

/// Reads every entry of an object as a `Value`, for the same reason.
fn read_through_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<String, Value>()?.is_some() {}
    Ok(())
}

struct SlotVisitor;

impl<'de> Visitor<'de> for SlotVisitor {
    type Value = Slot<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Slot<'de>, E> {
        Ok(Slot::Bool(value))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Slot<'de>, E> {
        Ok(Slot::Number(value.into()))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Slot<'de>, E> {
        Ok(Slot::Number(value.into()))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Slot<'de>, E> {
        // As a `Value` reads it: a float that is no JSON number is null.
        Ok(Number::from_f64(value).map_or(Slot::Null, Slot::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Slot<'de>, E> {
        Ok(Slot::Text(Cow::Borrowed(value)))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Slot<'de>, E> {
        Ok(Slot::Text(Cow::Owned(value.to_owned())))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Slot<'de>, E> {
        Ok(Slot::Text(Cow::Owned(value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Slot<'de>, A::Error> {
        read_through_seq(seq)?;
        Ok(Slot::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Slot<'de>, A::Error> {
        read_through_map(map)?;
        Ok(Slot::Object)
    }
}

impl<'de> Deserialize<'de> for Slot<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SlotVisitor)
    }
}

/// Forwards the scalar and array cases of a visitor to [`SlotVisitor`], wrapped.
macro_rules! forward_to_slot {
    ($wrap:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Slot::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Slot::Null))
        }
        fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
            SlotVisitor.visit_bool(value).map($wrap)
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            SlotVisitor.visit_i64(value).map($wrap)
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            SlotVisitor.visit_u64(value).map($wrap)
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            SlotVisitor.visit_f64(value).map($wrap)
        }
        fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
            SlotVisitor.visit_borrowed_str(value).map($wrap)
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            SlotVisitor.visit_str(value).map($wrap)
        }
        fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
            SlotVisitor.visit_string(value).map($wrap)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            SlotVisitor.visit_seq(seq).map($wrap)
        }
    };
}

impl<'de> Deserialize<'de> for AmountSlot<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl<'de> Visitor<'de> for AmountVisitor {
            type Value = AmountSlot<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            forward_to_slot!(AmountSlot::Other);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut currency, mut value, mut repeated) = (None, None, None);
                while let Some(key) = map.next_key::<AmountField>()? {
                    match key {
                        AmountField::Currency => fill(
                            &mut currency,
                            map.next_value()?,
                            "amount.currency",
                            &mut repeated,
                        ),
                        AmountField::Value => {
                            fill(&mut value, map.next_value()?, "amount.value", &mut repeated)
                        }
                        AmountField::Other => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(AmountSlot::Object {
                    currency,
                    value,
                    repeated,
                })
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            forward_to_slot!(|_: Slot<'de>| Top(None));
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Field>()? {
                    let repeated = &mut fields.repeated;
                    match key {
                        Field::Msn => fill(&mut fields.msn, map.next_value()?, "msn", repeated),
                        Field::Reference => {
                            fields.reference_repeated |= fields.reference.is_some();
                            fill(
                                &mut fields.reference,
                                map.next_value()?,
                                "reference",
                                repeated,
                            )
                        }
                        Field::PspReference => fill(
                            &mut fields.psp_reference,
                            map.next_value()?,
                            "pspReference",
                            repeated,
                        ),
                        Field::Name => fill(&mut fields.name, map.next_value()?, "name", repeated),
                        Field::Amount => {
                            fill(&mut fields.amount, map.next_value()?, "amount", repeated)
                        }
                        Field::Timestamp => fill(
                            &mut fields.timestamp,
                            map.next_value()?,
                            "timestamp",
                            repeated,
                        ),
                        Field::IdempotencyKey => fill(
                            &mut fields.idempotency_key,
                            map.next_value()?,
                            "idempotencyKey",
                            repeated,
                        ),
                        Field::Success => {
                            fill(&mut fields.success, map.next_value()?, "success", repeated)
                        }
                        Field::Other(name) => {
                            let value = map.next_value::<Value>()?;
                            fields.extra.insert(name, value);
                        }
                    }
                }
                Ok(Top(Some(fields)))
            }
        }
        deserializer.deserialize_any(TopVisitor)
    }
}
