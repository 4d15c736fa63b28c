//! Webhooks API v1: register, list, delete. A second registration of the same URL is a second
//! registration with its own id and secret, as at Vipps.
//!
//! Unlike Vipps, plain `http://` URLs are accepted, so receivers on loopback can be registered.
//! URLs are stored normalized ([`RegisteredUrl`]): that form is listed and signed over.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use paystate_vipps::signature::RegisteredUrl;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::Merchant;
use crate::delivery::attempt::random_secret;
use crate::events::EventName;
use crate::problem::Problem;
use crate::state::{Registration, SimState};

/// Vipps's limit on registrations per event type per merchant.
pub const REGISTRATIONS_PER_EVENT_TYPE: usize = 25;

#[derive(Deserialize)]
struct RegisterRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
}

/// `POST /webhooks/v1/webhooks` -> 201 `{"id", "secret"}`.
pub(crate) async fn register(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    body: Bytes,
) -> Result<Response, Problem> {
    let request: RegisterRequest = serde_json::from_slice(&body)
        .map_err(|error| Problem::validation("body", format!("not valid JSON: {error}")))?;
    let url = request
        .url
        .ok_or_else(|| Problem::validation("url", "is required"))?;
    let url = RegisteredUrl::parse(&url)
        .map_err(|error| Problem::validation("url", error.to_string()))?;
    let event_types = request.events.unwrap_or_default();
    if event_types.is_empty() {
        return Err(Problem::validation(
            "events",
            "must name at least one event type",
        ));
    }
    let mut events: Vec<EventName> = Vec::with_capacity(event_types.len());
    for event_type in &event_types {
        let name = EventName::from_event_type(event_type).ok_or_else(|| {
            Problem::validation("events", format!("unknown event type {event_type:?}"))
        })?;
        if !events.contains(&name) {
            events.push(name);
        }
    }

    let mut world = state.world();
    for name in &events {
        let in_use = world
            .registrations
            .iter()
            .filter(|r| r.msn == merchant.msn && r.events.contains(name))
            .count();
        if in_use >= REGISTRATIONS_PER_EVENT_TYPE {
            return Err(Problem::validation(
                "events",
                format!(
                    "at most {REGISTRATIONS_PER_EVENT_TYPE} registrations per event type; {} has {in_use}",
                    name.event_type()
                ),
            ));
        }
    }
    let id = Uuid::new_v4();
    let secret = random_secret();
    let answer = json!({ "id": id, "secret": secret.expose() });
    world.registrations.push(Registration {
        id,
        msn: merchant.msn,
        url,
        events,
        secret,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /webhooks/v1/webhooks` -> 200 `{"webhooks": [{"id", "url", "events"}]}`, no secrets.
pub(crate) async fn list(State(state): State<Arc<SimState>>, merchant: Merchant) -> Response {
    let world = state.world();
    let webhooks: Vec<_> = world
        .registrations
        .iter()
        .filter(|registration| registration.msn == merchant.msn)
        .map(|registration| {
            let info = registration.info();
            json!({ "id": info.id, "url": info.url, "events": info.events })
        })
        .collect();
    Json(json!({ "webhooks": webhooks })).into_response()
}

/// `DELETE /webhooks/v1/webhooks/{id}` -> 204; its pending deliveries stop.
pub(crate) async fn delete(
    State(state): State<Arc<SimState>>,
    merchant: Merchant,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let unknown = || Problem::not_found(format!("no webhook with id {id:?}"));
    let parsed = Uuid::parse_str(&id).map_err(|_| unknown())?;
    let mut world = state.world();
    let position = world
        .registrations
        .iter()
        .position(|r| r.id == parsed && r.msn == merchant.msn)
        .ok_or_else(unknown)?;
    world.registrations.remove(position);
    Ok(StatusCode::NO_CONTENT)
}
