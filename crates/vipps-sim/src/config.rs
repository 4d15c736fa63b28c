//! Everything the simulator can be told at start: credentials policy, token shape, delivery
//! timing. Fault knobs live in [`crate::faults`] because they can change while it runs.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::faults::Faults;
use crate::ids::Msn;

/// The simulator's configuration, validated by construction and passed to
/// [`crate::Simulator::start`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Which credentials the token endpoint accepts.
    pub credentials: CredentialsPolicy,
    /// How long an access token stays valid (Vipps test: one hour).
    pub token_lifetime: Duration,
    /// Whether `expires_in` and friends are JSON strings or numbers (Vipps has sent both).
    pub token_numbers: TokenNumberStyle,
    /// Retry timing for webhook deliveries.
    pub retry: RetrySchedule,
    /// How long a receiver has to answer one delivery attempt before it counts as failed.
    pub delivery_timeout: Duration,
    /// Fault knobs in force at start; change them later with [`crate::SimHandle::set_faults`].
    pub faults: Faults,
    /// How many delivery-log records are kept; beyond it the oldest are discarded (and
    /// counted in [`crate::SimStats::log_discarded`]). Default
    /// [`SimConfig::DEFAULT_DELIVERY_LOG_CAPACITY`].
    pub delivery_log_capacity: NonZeroUsize,
}

impl Default for SimConfig {
    /// Vipps's test environment as documented: open credentials, one-hour tokens, numeric
    /// token fields as strings, 10 s delivery timeout, backoff up to hourly for seven days;
    /// the most recent 10 000 delivery-log records kept.
    fn default() -> Self {
        Self {
            credentials: CredentialsPolicy::AnyNonEmpty,
            token_lifetime: Duration::from_secs(3600),
            token_numbers: TokenNumberStyle::Strings,
            retry: RetrySchedule::default(),
            delivery_timeout: Duration::from_secs(10),
            faults: Faults::default(),
            delivery_log_capacity: SimConfig::DEFAULT_DELIVERY_LOG_CAPACITY,
        }
    }
}

impl SimConfig {
    /// Delivery-log records kept by default: far more than a test or a demo makes, a few
    /// megabytes at most for a simulator left running under load.
    pub const DEFAULT_DELIVERY_LOG_CAPACITY: NonZeroUsize = match NonZeroUsize::new(10_000) {
        Some(capacity) => capacity,
        None => NonZeroUsize::MIN,
    };

    /// A configuration for tests: retries after a few milliseconds, give up after a few
    /// seconds, two-second delivery timeout. Everything else as [`SimConfig::default`].
    pub fn for_tests() -> Self {
        Self {
            retry: RetrySchedule {
                backoff: vec![
                    Duration::from_millis(5),
                    Duration::from_millis(10),
                    Duration::from_millis(20),
                ],
                give_up_after: Duration::from_secs(5),
            },
            delivery_timeout: Duration::from_secs(2),
            ..Self::default()
        }
    }
}

/// Which credentials `POST /accesstoken/get` accepts.
#[derive(Clone, Debug)]
pub enum CredentialsPolicy {
    /// Any non-empty `client_id`, `client_secret` and `Ocp-Apim-Subscription-Key` for a
    /// well-formed `Merchant-Serial-Number`. Convenient for local runs; the real service
    /// checks them against the merchant's keys.
    AnyNonEmpty,
    /// Only these merchants, each with exactly its own keys.
    KnownMerchants(Vec<MerchantCredentials>),
}

/// One merchant's API keys, as the Vipps portal hands them out.
#[derive(Clone)]
pub struct MerchantCredentials {
    /// The merchant serial number.
    pub msn: Msn,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Concealed,
    /// `Ocp-Apim-Subscription-Key`.
    pub subscription_key: Concealed,
}

impl fmt::Debug for MerchantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantCredentials")
            .field("msn", &self.msn)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("subscription_key", &self.subscription_key)
            .finish()
    }
}

impl MerchantCredentials {
    /// Parses `MSN:CLIENT_ID:CLIENT_SECRET:SUBSCRIPTION_KEY` (the `--merchant` flag). The first
    /// three colons split the parts, so the subscription key may itself contain colons.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let mut parts = spec.splitn(4, ':');
        let (Some(msn), Some(client_id), Some(client_secret), Some(subscription_key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ConfigError::MerchantSpec);
        };
        let msn = Msn::parse(msn).map_err(|_| ConfigError::MerchantSpec)?;
        if client_id.is_empty() || client_secret.is_empty() || subscription_key.is_empty() {
            return Err(ConfigError::MerchantSpec);
        }
        Ok(Self {
            msn,
            client_id: client_id.to_owned(),
            client_secret: Concealed::new(client_secret),
            subscription_key: Concealed::new(subscription_key),
        })
    }
}

/// A credential that must never be printed: `Debug` shows `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Concealed(String);

impl Concealed {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential, for comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Concealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How the token endpoint writes `expires_in`, `ext_expires_in`, `expires_on`, `not_before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenNumberStyle {
    /// `"expires_in": "3600"`: what the Access Token API documents.
    #[default]
    Strings,
    /// `"expires_in": 3600`: seen from other versions.
    Numbers,
}

/// When a failed delivery is tried again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Wait after the n-th failed attempt; the last entry repeats (an empty list waits 1 s).
    pub backoff: Vec<Duration>,
    /// A delivery still failing this long after its first attempt is dropped for good
    /// (Vipps: seven days).
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            backoff: [5, 30, 120, 600, 1800, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            give_up_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl RetrySchedule {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(index)
            .or_else(|| self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// Invalid configuration text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A `--merchant` value that is not `MSN:CLIENT_ID:CLIENT_SECRET:SUBSCRIPTION_KEY`.
    #[error("a merchant is MSN:CLIENT_ID:CLIENT_SECRET:SUBSCRIPTION_KEY with a 4-10 digit MSN and no empty part")]
    MerchantSpec,
    /// A duration that is not a number followed by `ms`, `s`, `m`, `h` or `d`.
    #[error("a duration is a whole number followed by ms, s, m, h or d, e.g. 250ms or 7d")]
    Duration,
    /// A backoff list with no entry.
    #[error("the backoff schedule needs at least one duration")]
    EmptyBackoff,
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(ConfigError::Duration)?;
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| ConfigError::Duration)?;
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(ConfigError::Duration),
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or(ConfigError::Duration)
}

/// Parses a comma-separated backoff list such as `1s,5s,30s,2m`.
pub fn parse_backoff(text: &str) -> Result<Vec<Duration>, ConfigError> {
    let waits = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if waits.is_empty() {
        return Err(ConfigError::EmptyBackoff);
    }
    Ok(waits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Err(ConfigError::Duration));
        assert_eq!(parse_duration("s"), Err(ConfigError::Duration));
        assert_eq!(parse_duration("5x"), Err(ConfigError::Duration));
    }

    #[test]
    fn backoff_repeats_its_last_wait() {
        let schedule = RetrySchedule {
            backoff: parse_backoff("1s, 5s").unwrap(),
            give_up_after: Duration::from_secs(60),
        };
        assert_eq!(schedule.wait_after(1), Duration::from_secs(1));
        assert_eq!(schedule.wait_after(2), Duration::from_secs(5));
        assert_eq!(schedule.wait_after(9), Duration::from_secs(5));
        assert_eq!(parse_backoff(" , "), Err(ConfigError::EmptyBackoff));
    }

    #[test]
    fn merchant_spec_needs_four_parts_and_hides_its_secrets() {
        let merchant = MerchantCredentials::parse("123456:id:secret:key").unwrap();
        assert_eq!(merchant.msn.as_str(), "123456");
        let printed = format!("{merchant:?}");
        assert!(!printed.contains("secret\"") && !printed.contains("key\""));
        assert!(printed.contains("***"));
        assert!(MerchantCredentials::parse("12:id:secret:key").is_err());
        assert!(MerchantCredentials::parse("123456:id::key").is_err());
        assert!(MerchantCredentials::parse("123456:id:secret").is_err());
    }
}
