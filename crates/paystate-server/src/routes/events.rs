//! `/events`: the log itself (SPEC §3.4). Admin token.

use super::dto::{EnvelopeDto, EventPageDto};
use crate::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use paystate_store::Position;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Cursor and page size of the log listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this position (default 0: from the start).
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of the log, in position order.
#[utoipa::path(get, path = "/events", tag = "events",
    security(("admin_token" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of envelopes", body = EventPageDto),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventPageDto>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid_field("limit", "must be 1 to 1000"));
    }
    let envelopes = state
        .store
        .read_all(Position(query.after.unwrap_or(0)), limit)?;
    let next = if envelopes.len() == limit {
        envelopes.last().map(|last| last.position.0)
    } else {
        None
    };
    Ok(Json(EventPageDto {
        events: envelopes.iter().map(EnvelopeDto::from).collect(),
        next,
    }))
}

/// One envelope. A `webhook_received` holds the raw body (base64), the signed headers and the
/// verification result, so the delivery can be re-verified later.
#[utoipa::path(get, path = "/events/{position}", tag = "events",
    security(("admin_token" = [])),
    params(("position" = u64, Path, description = "Global log position, from 1")),
    responses(
        (status = 200, description = "The envelope", body = EnvelopeDto),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "unknown_event", body = ErrorBody)))]
pub async fn get_event(
    State(state): State<AppState>,
    ApiPath(position): ApiPath<u64>,
) -> Result<Json<EnvelopeDto>, ApiError> {
    let envelope = state
        .store
        .read_event(Position(position))?
        .ok_or_else(|| ApiError::not_found("unknown_event", "no event at this position"))?;
    Ok(Json(EnvelopeDto::from(&envelope)))
}
