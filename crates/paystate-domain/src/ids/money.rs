//! Money: the three currencies Vipps MobilePay settles in, and amounts in minor units.

use super::error::{echo, IdError};
use std::fmt;

/// A currency Vipps MobilePay ePayment accepts (VIPPS.md §4). Serialized as its ISO 4217 code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    Nok,
    Dkk,
    Eur,
}

impl Currency {
    const RULE: &'static str = "one of NOK, DKK, EUR";

    /// Parses an upper-case ISO 4217 code (`NOK`, `DKK`, `EUR`); anything else is an error.
    pub fn parse(input: &str) -> Result<Currency, IdError> {
        match input {
            "NOK" => Ok(Currency::Nok),
            "DKK" => Ok(Currency::Dkk),
            "EUR" => Ok(Currency::Eur),
            other => Err(IdError::NotOneOf {
                field: "currency",
                rule: Self::RULE,
                got: echo(other),
            }),
        }
    }

    /// How many digits of an amount are below the major unit: 2 for all three (øre, cent).
    pub const fn minor_unit_digits(self) -> u32 {
        match self {
            Currency::Nok | Currency::Dkk | Currency::Eur => 2,
        }
    }

    /// The ISO 4217 code, e.g. `"NOK"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Nok => "NOK",
            Currency::Dkk => "DKK",
            Currency::Eur => "EUR",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Currency, IdError> {
        Currency::parse(input)
    }
}

impl TryFrom<&str> for Currency {
    type Error = IdError;
    fn try_from(input: &str) -> Result<Currency, IdError> {
        Currency::parse(input)
    }
}

impl TryFrom<String> for Currency {
    type Error = IdError;
    fn try_from(input: String) -> Result<Currency, IdError> {
        Currency::parse(&input)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.as_str().to_owned()
    }
}

/// An amount in its currency, for people: `Money(Amount::from_minor_units(49900), Currency::Nok)`
/// shows as `499.00 NOK`. Stored and served amounts stay integers of minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub Amount, pub Currency);

impl Money {
    /// The amount in major units with its minor digits, without the currency: `499.00`.
    pub fn number(self) -> String {
        let Money(amount, currency) = self;
        let digits = currency.minor_unit_digits();
        let scale = 10u64.pow(digits);
        let minor = amount.minor_units();
        format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = digits as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number(), self.1)
    }
}

/// A non-negative amount of money in minor units (øre, cent), as Vipps sends it.
///
/// Serialized as a JSON integer. Arithmetic is checked: an overflow is an `Option::None` for the
/// caller to turn into an anomaly, never a wrap or a panic. Amounts carry no currency; a payment
/// carries one currency for all its amounts.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    const RULE: &'static str = "a non-negative integer number of minor units";

    pub const fn from_minor_units(minor_units: u64) -> Amount {
        Amount(minor_units)
    }

    /// Parses a decimal string of minor units, e.g. `"49900"`.
    pub fn parse(input: &str) -> Result<Amount, IdError> {
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::Range {
                field: "amount",
                rule: Self::RULE,
            });
        }
        input
            .parse::<u64>()
            .map(Amount)
            .map_err(|_| IdError::Range {
                field: "amount",
                rule: "at most 18446744073709551615 minor units",
            })
    }

    /// Converts a signed JSON value; negative values are an error.
    pub fn from_signed(value: i64) -> Result<Amount, IdError> {
        u64::try_from(value)
            .map(Amount)
            .map_err(|_| IdError::Range {
                field: "amount",
                rule: Self::RULE,
            })
    }

    pub const fn minor_units(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// `self + other`, or `u64::MAX` minor units on overflow.
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Amount {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Amount, IdError> {
        Amount::parse(input)
    }
}

impl TryFrom<&str> for Amount {
    type Error = IdError;
    fn try_from(input: &str) -> Result<Amount, IdError> {
        Amount::parse(input)
    }
}

impl From<u64> for Amount {
    fn from(minor_units: u64) -> Amount {
        Amount(minor_units)
    }
}
