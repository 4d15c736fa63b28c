//! JSON objects only. serde's derived struct deserializers also accept a JSON array and fill the
//! fields from it by position, so `["vipps-test", "vipps", ...]` would pass for a provider. The
//! admin API's bodies are objects (SPEC §3.2): [`Shape`] tells an object apart from every other
//! JSON value before the struct sees it, and [`optional_object`] applies the same rule to a nested
//! struct field.

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A JSON value read as `T` if it is an object, or only named if it is anything else.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape<T> {
    /// The value was an object and deserialized as `T`.
    Object(T),
    /// The value was not an object: its kind with an article, e.g. `an array` or `null`.
    Other(&'static str),
}

impl<T> Shape<T> {
    /// `T`, or an error saying that a JSON object was required instead of what came.
    pub fn into_object<E: de::Error>(self) -> Result<T, E> {
        match self {
            Shape::Object(value) => Ok(value),
            Shape::Other(kind) => Err(E::custom(format!("must be a JSON object, not {kind}"))),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shape<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

/// For `#[serde(default, deserialize_with = "optional_object")]` on an `Option` of a struct:
/// `null` or absent is `None`, an object is `Some`, anything else is refused.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Shape<T>>::deserialize(deserializer)?
        .map(Shape::into_object)
        .transpose()
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = Shape<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Shape::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The parser insists that a sequence is read to its end before it checks what follows.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Other("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::Other("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Other("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Other("null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A struct that, derived as usual, would also accept `["a", 1]`.
    #[derive(Debug, PartialEq, Eq, Deserialize)]
    struct Pair {
        name: String,
        count: u32,
        #[serde(default, deserialize_with = "optional_object")]
        inner: Option<Inner>,
    }

    #[derive(Debug, PartialEq, Eq, Deserialize)]
    struct Inner {
        value: String,
    }

    fn shape(json: &str) -> Result<Shape<Pair>, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn derived_structs_accept_arrays_which_is_why_this_exists() {
        let positional: Pair = serde_json::from_str(r#"["a", 1, null]"#).unwrap();
        assert_eq!(positional.name, "a");
    }

    #[test]
    fn an_object_is_read_as_the_struct() {
        let read = shape(r#"{"name": "a", "count": 1, "inner": {"value": "v"}}"#).unwrap();
        let expected = Pair {
            name: "a".into(),
            count: 1,
            inner: Some(Inner { value: "v".into() }),
        };
        assert_eq!(read, Shape::Object(expected));
    }

    #[test]
    fn every_other_top_level_value_is_named() {
        for (json, kind) in [
            (r#"["a", 1, null]"#, "an array"),
            ("[[1, [2]], {}]", "an array"),
            (r#""a""#, "a string"),
            ("7", "a number"),
            ("-7", "a number"),
            ("7.5", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            assert_eq!(shape(json).unwrap(), Shape::Other(kind), "{json}");
        }
    }

    #[test]
    fn the_struct_still_reports_its_own_errors() {
        let error = shape(r#"{"name": "a"}"#).unwrap_err();
        assert!(
            error.to_string().contains("missing field `count`"),
            "{error}"
        );
        let error = shape(r#"{"name": "a", "count": 1, "name": "b"}"#).unwrap_err();
        assert!(error.to_string().contains("duplicate field"), "{error}");
        assert!(shape(r#"["a", 1"#).is_err());
    }

    #[test]
    fn a_nested_struct_must_be_an_object_or_null() {
        let read = shape(r#"{"name": "a", "count": 1, "inner": null}"#).unwrap();
        assert!(matches!(read, Shape::Object(Pair { inner: None, .. })));
        let read = shape(r#"{"name": "a", "count": 1}"#).unwrap();
        assert!(matches!(read, Shape::Object(Pair { inner: None, .. })));
        let error = shape(r#"{"name": "a", "count": 1, "inner": ["v"]}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("must be a JSON object, not an array"),
            "{error}"
        );
    }
}
