//! `amount.value` exactly as the body wrote it, for an error that quotes it.
//!
//! A JSON number that is no 64-bit integer is read as a float, and a float does not repeat the
//! digits that were sent: thirty digits come back as `1e+30`, `2000.0` as written but `2e3` as
//! `2000.0`. Only such a value, which is refused anyway, sends the body through this second,
//! borrowing read; every integer is read once, as before.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    amount: Amount<'a>,
}

#[derive(Deserialize)]
struct Amount<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
}

/// The text of `amount.value` in `raw`, as sent; `None` if the body has none (or is not JSON).
pub(crate) fn amount_value(raw: &[u8]) -> Option<&str> {
    serde_json::from_slice::<Body<'_>>(raw)
        .ok()
        .map(|body| body.amount.value.get())
}
