//! Turning request bodies into domain values, field by field, so that a `400 invalid_request`
//! names the field that broke a rule. Credential values are never echoed in an error.

use super::dto::{CreateProviderRequest, CredentialsRequest};
use crate::error::ApiError;
use paystate_domain::events::ProviderCreated;
use paystate_domain::{
    Environment, HttpUrl, Msn, ProviderId, ProviderKind, WebhookEventType, EPAYMENT_EVENT_TYPES,
};
use paystate_vipps::client::Credentials;

/// The longest credential value accepted; Vipps' keys are far shorter.
const MAX_CREDENTIAL_LEN: usize = 512;

/// A provider id from a path segment.
pub fn provider_id(raw: &str) -> Result<ProviderId, ApiError> {
    ProviderId::parse(raw).map_err(|error| ApiError::invalid_field("provider_id", error))
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::invalid_field(field, "is required"))
}

/// An environment name (`test` or `production`).
pub fn environment(value: &Option<String>, field: &str) -> Result<Environment, ApiError> {
    Environment::parse(required(value, field)?)
        .map_err(|error| ApiError::invalid_field(field, error))
}

/// Credentials: each value present, at most 512 characters, visible ASCII only (they travel
/// in HTTP headers). `prefix` is prepended to field names (`credentials.` inside a provider).
pub fn credentials(body: &CredentialsRequest, prefix: &str) -> Result<Credentials, ApiError> {
    let client_id = credential(&body.client_id, &format!("{prefix}client_id"))?;
    let client_secret = credential(&body.client_secret, &format!("{prefix}client_secret"))?;
    let subscription_key =
        credential(&body.subscription_key, &format!("{prefix}subscription_key"))?;
    Ok(Credentials::new(client_id, client_secret, subscription_key))
}

fn credential(value: &Option<String>, field: &str) -> Result<String, ApiError> {
    let value = required(value, field)?;
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {MAX_CREDENTIAL_LEN} characters"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            field,
            "must be visible ASCII characters without spaces",
        ));
    }
    Ok(value.to_owned())
}

/// The webhook event types to subscribe to: all eight ePayment types when omitted; otherwise a
/// non-empty list of them, duplicates dropped, order kept.
fn events(requested: &Option<Vec<String>>) -> Result<Vec<WebhookEventType>, ApiError> {
    let Some(requested) = requested else {
        return Ok(WebhookEventType::all_epayment());
    };
    if requested.is_empty() {
        return Err(ApiError::invalid_field(
            "events",
            "must name at least one event type",
        ));
    }
    let mut events: Vec<WebhookEventType> = Vec::with_capacity(requested.len());
    for (index, name) in requested.iter().enumerate() {
        let field = format!("events[{index}]");
        if !EPAYMENT_EVENT_TYPES.contains(&name.as_str()) {
            return Err(ApiError::invalid_field(
                &field,
                format!("must be one of {}", EPAYMENT_EVENT_TYPES.join(", ")),
            ));
        }
        let event = WebhookEventType::parse(name)
            .map_err(|error| ApiError::invalid_field(&field, error))?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// The `provider_created` fact and the credentials of a `POST /providers` body. `public_url`
/// is the server's, recorded so that a later change of it is noticed.
pub fn create(
    body: &CreateProviderRequest,
    public_url: &str,
) -> Result<(ProviderCreated, Credentials), ApiError> {
    let provider_id = ProviderId::parse(required(&body.id, "id")?)
        .map_err(|error| ApiError::invalid_field("id", error))?;
    let kind = ProviderKind::parse(required(&body.kind, "kind")?)
        .map_err(|error| ApiError::invalid_field("kind", error))?;
    let environment = environment(&body.environment, "environment")?;
    let msn = Msn::parse(required(&body.msn, "msn")?)
        .map_err(|error| ApiError::invalid_field("msn", error))?;
    let credentials = match &body.credentials {
        Some(credentials_body) => credentials(credentials_body, "credentials.")?,
        None => return Err(ApiError::invalid_field("credentials", "is required")),
    };
    let events = events(&body.events)?;
    let public_url = HttpUrl::parse(public_url).map_err(ApiError::internal)?;
    let created = ProviderCreated {
        provider_id,
        kind,
        environment,
        msn,
        events,
        credentials_fingerprint: credentials.fingerprint(),
        public_url,
    };
    Ok((created, credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> CreateProviderRequest {
        serde_json::from_value(json).unwrap()
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "id": "vipps-test", "kind": "vipps", "environment": "test", "msn": "123456",
            "credentials": {"client_id": "id", "client_secret": "top-secret-value", "subscription_key": "sub-key-value"}
        })
    }

    fn field_error(json: serde_json::Value) -> String {
        let error = create(&body(json), "https://pay.example.no").unwrap_err();
        assert_eq!(error.code(), "invalid_request");
        error.message().to_owned()
    }

    #[test]
    fn a_valid_body_defaults_to_every_epayment_event() {
        let (created, credentials) = create(&body(valid()), "https://pay.example.no").unwrap();
        assert_eq!(created.provider_id.as_str(), "vipps-test");
        assert_eq!(created.events.len(), 8);
        assert_eq!(created.credentials_fingerprint, credentials.fingerprint());
        assert_eq!(created.public_url.as_str(), "https://pay.example.no");
    }

    #[test]
    fn each_broken_field_is_named() {
        let cases = [
            ("id", serde_json::json!("Not Valid")),
            ("kind", serde_json::json!("stripe")),
            ("environment", serde_json::json!("staging")),
            ("msn", serde_json::json!("12")),
        ];
        for (field, value) in cases {
            let mut json = valid();
            json[field] = value;
            let message = field_error(json);
            assert!(
                message.starts_with(&format!("{field}: ")),
                "{field}: {message}"
            );
        }
        for field in ["id", "kind", "environment", "msn", "credentials"] {
            let mut json = valid();
            json.as_object_mut().unwrap().remove(field);
            assert_eq!(field_error(json), format!("{field}: is required"));
        }
    }

    #[test]
    fn credential_errors_name_the_field_but_never_the_value() {
        for field in ["client_id", "client_secret", "subscription_key"] {
            let mut json = valid();
            json["credentials"][field] = serde_json::json!("has a space secret-ish");
            let message = field_error(json);
            assert!(
                message.starts_with(&format!("credentials.{field}: ")),
                "{message}"
            );
            assert!(!message.contains("secret-ish"), "{message}");
        }
        let mut json = valid();
        json["credentials"]["client_secret"] = serde_json::json!("x".repeat(513));
        assert!(field_error(json).starts_with("credentials.client_secret: must be at most"));
    }

    #[test]
    fn events_are_checked_and_deduplicated() {
        let mut json = valid();
        json["events"] = serde_json::json!([
            "epayments.payment.captured.v1",
            "epayments.payment.created.v1",
            "epayments.payment.captured.v1"
        ]);
        let (created, _) = create(&body(json), "https://pay.example.no").unwrap();
        let names: Vec<&str> = created.events.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "epayments.payment.captured.v1",
                "epayments.payment.created.v1"
            ]
        );

        let mut json = valid();
        json["events"] = serde_json::json!([]);
        assert!(field_error(json).starts_with("events: "));
        let mut json = valid();
        json["events"] = serde_json::json!(["epayments.payment.created.v1", "recurring.charge.v1"]);
        assert!(field_error(json).starts_with("events[1]: must be one of"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut json = valid();
        json["client_secret"] = serde_json::json!("misplaced");
        assert!(serde_json::from_value::<CreateProviderRequest>(json).is_err());
    }
}
