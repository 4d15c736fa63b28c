//! The Access Token API and the checks every other Vipps call passes: a valid, unexpired
//! `Bearer` token, the subscription key and the merchant serial number it was issued for.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;

use crate::config::{Concealed, CredentialsPolicy, TokenNumberStyle};
use crate::ids::Msn;
use crate::problem::Problem;
use crate::state::{IssuedToken, SimState};

/// A lifetime no test outlives: the cap for token lifetimes too large for the clock.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The `resource` Vipps's token answer names.
const TOKEN_RESOURCE: &str = "00000002-0000-0000-c000-000000000000";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `POST /accesstoken/get`. The body is ignored (SDKs send none, or an empty one with
/// `Content-Type: application/json`), and so is any `Authorization: Bearer` with no token.
pub(crate) async fn issue_token(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let msn = header(&headers, "merchant-serial-number")
        .ok_or_else(|| Problem::unauthorized("Merchant-Serial-Number header is required"))?;
    let msn = Msn::parse(msn)
        .map_err(|_| Problem::unauthorized("Merchant-Serial-Number must be 4 to 10 digits"))?;
    let client_id = header(&headers, "client_id");
    let client_secret = header(&headers, "client_secret");
    let subscription_key = header(&headers, "ocp-apim-subscription-key");
    let (Some(client_id), Some(client_secret), Some(subscription_key)) =
        (client_id, client_secret, subscription_key)
    else {
        return Err(Problem::unauthorized(
            "client_id, client_secret and Ocp-Apim-Subscription-Key are required",
        ));
    };
    let accepted = match &state.config.credentials {
        CredentialsPolicy::AnyNonEmpty => true,
        CredentialsPolicy::KnownMerchants(merchants) => merchants.iter().any(|merchant| {
            merchant.msn == msn
                && merchant.client_id == client_id
                && merchant.client_secret.expose() == client_secret
                && merchant.subscription_key.expose() == subscription_key
        }),
    };
    if !accepted {
        return Err(Problem::unauthorized("invalid client credentials"));
    }

    let lifetime = state.config.token_lifetime;
    let access_token = new_token();
    let mut world = state.world();
    let now = Instant::now();
    // Expired tokens can never be used again; dropping them keeps the map bounded.
    world.tokens.retain(|_, issued| issued.expires_at > now);
    world.tokens.insert(
        Concealed::new(access_token.clone()),
        IssuedToken {
            msn,
            subscription_key: Concealed::new(subscription_key),
            // An absurd lifetime saturates to "never expires" rather than overflowing.
            expires_at: now.checked_add(lifetime).unwrap_or(now + FAR_FUTURE),
        },
    );
    drop(world);
    Ok(Json(token_answer(
        &access_token,
        lifetime,
        state.config.token_numbers,
    ))
    .into_response())
}

/// The token answer, fields in the documented order.
#[derive(Serialize)]
struct TokenAnswer<'a> {
    token_type: &'static str,
    expires_in: Value,
    ext_expires_in: Value,
    expires_on: Value,
    not_before: Value,
    resource: &'static str,
    access_token: &'a str,
}

fn token_answer(
    access_token: &str,
    lifetime: Duration,
    style: TokenNumberStyle,
) -> TokenAnswer<'_> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let lifetime = lifetime.as_secs();
    let number = |value: u64| match style {
        TokenNumberStyle::Strings => Value::String(value.to_string()),
        TokenNumberStyle::Numbers => Value::from(value),
    };
    TokenAnswer {
        token_type: "Bearer",
        expires_in: number(lifetime),
        ext_expires_in: number(lifetime),
        expires_on: number(now.saturating_add(lifetime)),
        not_before: number(now),
        resource: TOKEN_RESOURCE,
        access_token,
    }
}

/// A JWT-shaped opaque token: three base64url parts, like Vipps's.
fn new_token() -> String {
    let mut random = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut random);
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
    let (payload, signature) = random.split_at(16);
    format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The merchant a request is authenticated as. Extracting it performs the checks.
#[derive(Debug, Clone)]
pub(crate) struct Merchant {
    pub msn: Msn,
}

impl FromRequestParts<Arc<SimState>> for Merchant {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<SimState>,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let token = header(headers, "authorization")
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Problem::unauthorized("a Bearer access token is required"))?;
        let subscription_key = header(headers, "ocp-apim-subscription-key")
            .ok_or_else(|| Problem::unauthorized("Ocp-Apim-Subscription-Key header is required"))?;
        let msn = header(headers, "merchant-serial-number")
            .ok_or_else(|| Problem::forbidden("Merchant-Serial-Number header is required"))?;

        let world = state.world();
        let issued = world
            .tokens
            .get(&Concealed::new(token))
            .ok_or_else(|| Problem::unauthorized("the access token is not valid"))?;
        if Instant::now() >= issued.expires_at {
            return Err(Problem::unauthorized("the access token has expired"));
        }
        if issued.subscription_key.expose() != subscription_key {
            return Err(Problem::forbidden(
                "the subscription key is not the one the token was issued for",
            ));
        }
        if issued.msn.as_str() != msn {
            return Err(Problem::forbidden(
                "the Merchant-Serial-Number is not the one the token was issued for",
            ));
        }
        Ok(Merchant {
            msn: issued.msn.clone(),
        })
    }
}
