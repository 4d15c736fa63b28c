//! A query string's values checked before they are read: a parameter a route reads whose value
//! is not UTF-8 once percent-decoded is refused by name, its value quoted as sent
//! (`provider_id: is not valid UTF-8 once percent-decoded (sent as %ff)`). The query reader
//! would have put U+FFFD in place of such bytes, and a message would then quote a `'�'` that
//! was never sent. Parameters a route does not read stay ignored, whatever their bytes.

use crate::error::{bounded, ApiError};
use percent_encoding::percent_decode_str;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// Refuses the first parameter of `query` named in `read` whose value is not UTF-8.
pub fn refuse_values_not_utf8(query: &str, read: &[&str]) -> Result<(), ApiError> {
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_str(key).decode_utf8_lossy();
        if read.contains(&key.as_ref()) && percent_decode_str(value).decode_utf8().is_err() {
            return Err(ApiError::invalid_field(
                &key,
                format!(
                    "is not valid UTF-8 once percent-decoded (sent as {})",
                    bounded(value)
                ),
            ));
        }
    }
    Ok(())
}

/// The parameters `T` reads: the field names its derived `Deserialize` declares (none for a
/// type that is not a struct).
pub fn parameters<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // Reading stops at the declaration: the error is the expected end, not a failure.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that reads nothing but the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("only the field names are read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
