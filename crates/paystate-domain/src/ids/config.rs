//! Closed vocabularies of provider configuration: environment, provider kind, secret version.

use super::error::{echo, IdError};
use std::fmt;

/// Declares the `FromStr`, `TryFrom`, `Display` and `String` conversions of a closed-name enum
/// that has `parse(&str)` and `as_str()`.
macro_rules! closed_name {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<$name, IdError> {
                $name::parse(input)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(input: &str) -> Result<$name, IdError> {
                $name::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(input: String) -> Result<$name, IdError> {
                $name::parse(&input)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }
    };
}

/// Which Vipps MobilePay environment a provider talks to (VIPPS.md §1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Environment {
    /// The test environment ("MT"), `https://apitest.vipps.no`.
    Test,
    /// Production, `https://api.vipps.no`.
    Production,
}

impl Environment {
    /// Parses `"test"` or `"production"` (exactly; no aliases).
    pub fn parse(input: &str) -> Result<Environment, IdError> {
        match input {
            "test" => Ok(Environment::Test),
            "production" => Ok(Environment::Production),
            other => Err(IdError::NotOneOf {
                field: "environment",
                rule: "one of test, production",
                got: echo(other),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

closed_name!(Environment);

/// Which payment provider protocol a provider speaks. Only Vipps MobilePay exists today.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum ProviderKind {
    Vipps,
}

impl ProviderKind {
    /// Parses `"vipps"`.
    pub fn parse(input: &str) -> Result<ProviderKind, IdError> {
        match input {
            "vipps" => Ok(ProviderKind::Vipps),
            other => Err(IdError::NotOneOf {
                field: "kind",
                rule: "vipps",
                got: echo(other),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Vipps => "vipps",
        }
    }
}

closed_name!(ProviderKind);

/// The version number of a provider's webhook secret: 1 for the first registration, and one
/// more for each new registration. Versions only grow, so a version names one secret forever
/// and an audit can find the secret that verified a stored delivery.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct SecretVersion(u32);

impl SecretVersion {
    /// The version of a provider's first secret.
    pub const FIRST: SecretVersion = SecretVersion(1);
    const RULE: &'static str = "an integer from 1 to 4294967295";

    pub fn new(version: u32) -> Result<SecretVersion, IdError> {
        if version == 0 {
            Err(IdError::Range {
                field: "secret_version",
                rule: Self::RULE,
            })
        } else {
            Ok(SecretVersion(version))
        }
    }

    /// Parses a decimal string, e.g. `"2"`.
    pub fn parse(input: &str) -> Result<SecretVersion, IdError> {
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::Range {
                field: "secret_version",
                rule: Self::RULE,
            });
        }
        let version = input.parse::<u32>().map_err(|_| IdError::Range {
            field: "secret_version",
            rule: Self::RULE,
        })?;
        SecretVersion::new(version)
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// The version after this one, or `None` once `u32::MAX` is used (four billion rotations).
    pub fn next(self) -> Option<SecretVersion> {
        self.0.checked_add(1).map(SecretVersion)
    }
}

impl fmt::Display for SecretVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SecretVersion {
    type Err = IdError;
    fn from_str(input: &str) -> Result<SecretVersion, IdError> {
        SecretVersion::parse(input)
    }
}

impl TryFrom<&str> for SecretVersion {
    type Error = IdError;
    fn try_from(input: &str) -> Result<SecretVersion, IdError> {
        SecretVersion::parse(input)
    }
}

impl TryFrom<u32> for SecretVersion {
    type Error = IdError;
    fn try_from(version: u32) -> Result<SecretVersion, IdError> {
        SecretVersion::new(version)
    }
}

impl From<SecretVersion> for u32 {
    fn from(version: SecretVersion) -> u32 {
        version.0
    }
}
