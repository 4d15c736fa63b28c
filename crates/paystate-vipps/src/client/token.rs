//! The access token: its answer, read tolerantly, and a cache refreshed before expiry.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use super::credentials::ApiSecret;
use super::error::VippsApiError;

/// A token from `POST /accesstoken/get`.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: ApiSecret,
    /// How long the token lives from when it was received.
    pub lifetime: Duration,
}

/// The answer's fields. The numeric ones come as JSON strings in some versions and as numbers
/// in others (VIPPS.md §1), so they are read as raw values.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token_type: Option<String>,
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    expires_on: Option<Value>,
}

/// A non-negative integer sent as a JSON number or a string of digits.
fn seconds(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number
            .as_u64()
            .or_else(|| number.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    }
}

impl AccessToken {
    /// Reads a token answer; `now` is the wall clock, needed only when the lifetime is given
    /// as `expires_on` (Unix seconds) without `expires_in`.
    pub fn parse(body: &[u8], now: SystemTime) -> Result<Self, VippsApiError> {
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|error| {
            VippsApiError::InvalidResponse(format!("access token answer: {error}"))
        })?;
        if let Some(token_type) = answer.token_type.as_deref() {
            if !token_type.eq_ignore_ascii_case("bearer") {
                return Err(VippsApiError::InvalidResponse(format!(
                    "token_type is {token_type:?}, not Bearer"
                )));
            }
        }
        let token = answer
            .access_token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                VippsApiError::InvalidResponse("access token answer has no access_token".into())
            })?;
        let lifetime = match seconds(answer.expires_in.as_ref()) {
            Some(expires_in) => Duration::from_secs(expires_in),
            None => {
                let expires_on = seconds(answer.expires_on.as_ref()).ok_or_else(|| {
                    VippsApiError::InvalidResponse(
                        "access token answer has neither expires_in nor expires_on".into(),
                    )
                })?;
                let now_unix = now
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                Duration::from_secs(expires_on.saturating_sub(now_unix))
            }
        };
        Ok(Self {
            token: ApiSecret::new(token),
            lifetime,
        })
    }
}

/// The longest a cached token is trusted, whatever its answer claims.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// A cached token and when to stop using it.
#[derive(Debug)]
pub(crate) struct CachedToken {
    pub token: ApiSecret,
    pub refresh_at: Instant,
}

impl CachedToken {
    /// Caches `token` received at `received_at`, to be refreshed `margin` before it expires;
    /// the margin is at most half the lifetime, so a short-lived token is still reused.
    pub fn new(token: AccessToken, received_at: Instant, margin: Duration) -> Self {
        // Vipps tokens live at most 24 h; a larger claim is capped so the arithmetic below
        // cannot overflow and a bogus answer cannot pin a token forever.
        let lifetime = token.lifetime.min(MAX_TOKEN_LIFETIME);
        let margin = margin.min(lifetime / 2);
        let refresh_at = received_at
            .checked_add(lifetime.saturating_sub(margin))
            .unwrap_or(received_at);
        Self {
            token: token.token,
            refresh_at,
        }
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<AccessToken, VippsApiError> {
        AccessToken::parse(
            body.as_bytes(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn numeric_fields_may_be_strings_or_numbers() {
        let as_strings = r#"{"token_type":"Bearer","expires_in":"3600","ext_expires_in":"3600","expires_on":"1700003600","not_before":"1700000000","resource":"00000002-0000-0000-c000-000000000000","access_token":"eyJ0"}"#;
        let as_numbers = r#"{"token_type":"Bearer","expires_in":86400,"ext_expires_in":86400,"expires_on":1700086400,"not_before":1700000000,"resource":"r","access_token":"eyJ0"}"#;
        assert_eq!(
            parse(as_strings).unwrap().lifetime,
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse(as_numbers).unwrap().lifetime,
            Duration::from_secs(86400)
        );
        assert_eq!(parse(as_numbers).unwrap().token.expose(), "eyJ0");
    }

    #[test]
    fn expires_on_is_used_when_expires_in_is_absent() {
        let body = r#"{"token_type":"Bearer","expires_on":"1700000600","access_token":"t"}"#;
        assert_eq!(parse(body).unwrap().lifetime, Duration::from_secs(600));
        let past = r#"{"token_type":"Bearer","expires_on":1600000000,"access_token":"t"}"#;
        assert_eq!(parse(past).unwrap().lifetime, Duration::ZERO);
    }

    #[test]
    fn unusable_answers_are_invalid_responses() {
        for body in [
            "not json",
            r#"{"token_type":"Bearer","expires_in":3600}"#,
            r#"{"token_type":"Bearer","expires_in":3600,"access_token":""}"#,
            r#"{"token_type":"Bearer","access_token":"t"}"#,
            r#"{"token_type":"Bearer","expires_in":"soon","access_token":"t"}"#,
            r#"{"token_type":"Basic","expires_in":3600,"access_token":"t"}"#,
        ] {
            assert!(
                matches!(parse(body), Err(VippsApiError::InvalidResponse(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_never_repeat_the_token() {
        let error =
            parse(r#"{"token_type":"Basic","expires_in":3600,"access_token":"very-secret-token"}"#)
                .unwrap_err();
        assert!(!error.to_string().contains("very-secret-token"));
    }

    #[test]
    fn the_cache_refreshes_a_margin_before_expiry() {
        let start = Instant::now();
        let token = |secs| AccessToken {
            token: ApiSecret::new("t"),
            lifetime: Duration::from_secs(secs),
        };
        let cached = CachedToken::new(token(3600), start, Duration::from_secs(300));
        assert!(cached.is_fresh(start + Duration::from_secs(3299)));
        assert!(!cached.is_fresh(start + Duration::from_secs(3300)));
        // A 10-minute token with a 5-minute margin is reused for 5 minutes; a 2-minute one for 1.
        let short = CachedToken::new(token(120), start, Duration::from_secs(300));
        assert!(short.is_fresh(start + Duration::from_secs(59)));
        assert!(!short.is_fresh(start + Duration::from_secs(60)));
        assert!(!CachedToken::new(token(0), start, Duration::from_secs(300)).is_fresh(start));
        let absurd = CachedToken::new(token(u64::MAX), start, Duration::from_secs(300));
        assert!(!absurd.is_fresh(start + Duration::from_secs(48 * 3600)));
    }

    proptest::proptest! {
        #[test]
        fn any_answer_parses_or_errors_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = AccessToken::parse(&body, SystemTime::now());
        }

        #[test]
        fn any_numeric_field_shape_is_handled(expires_in in "[ -~]{0,30}", number in proptest::prelude::any::<f64>()) {
            let as_text = format!(r#"{{"access_token":"t","expires_in":{}}}"#, serde_json::Value::from(expires_in));
            let _ = AccessToken::parse(as_text.as_bytes(), SystemTime::now());
            let as_number = format!(r#"{{"access_token":"t","expires_in":{}}}"#, serde_json::Value::from(number));
            if let Ok(token) = AccessToken::parse(as_number.as_bytes(), SystemTime::now()) {
                let _ = CachedToken::new(token, Instant::now(), Duration::from_secs(300));
            }
        }
    }
}
