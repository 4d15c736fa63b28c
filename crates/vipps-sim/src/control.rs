//! The simulator's own control plane under `/_sim/`: fault knobs, the delivery log,
//! registrations, statistics, and the user actions Vipps's test environment has no API for.
//! No authentication: it exists for tests on loopback.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::epayment::api::{user_action, UserAction};
use crate::faults::Faults;
use crate::ids::Msn;
use crate::problem::Problem;
use crate::server::stats_of;
use crate::state::SimState;

/// `GET /_sim/faults`: the knobs in force.
pub(crate) async fn get_faults(State(state): State<Arc<SimState>>) -> Json<Faults> {
    Json(state.faults())
}

/// `POST /_sim/faults`: replaces every knob (omitted fields take their defaults) and answers
/// the knobs now in force.
pub(crate) async fn set_faults(
    State(state): State<Arc<SimState>>,
    body: Bytes,
) -> Result<Json<Faults>, Problem> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|error| Problem::validation("body", error.to_string()))?;
    state.set_faults(faults.clone());
    Ok(Json(faults))
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    /// Only records with `seq >= since`.
    since: Option<u64>,
}

/// `GET /_sim/deliveries[?since=SEQ]`: the delivery log as kept (the most recent records),
/// one record per attempt.
pub(crate) async fn deliveries(
    State(state): State<Arc<SimState>>,
    Query(query): Query<LogQuery>,
) -> Response {
    let records = state
        .dispatcher
        .log
        .snapshot_since(query.since.unwrap_or(0));
    Json(records).into_response()
}

/// `GET /_sim/registrations`: every merchant's registrations, without secrets.
pub(crate) async fn registrations(State(state): State<Arc<SimState>>) -> Response {
    let world = state.world();
    let infos: Vec<_> = world.registrations.iter().map(|r| r.info()).collect();
    Json(infos).into_response()
}

/// `GET /_sim/stats`: counters.
pub(crate) async fn stats(State(state): State<Arc<SimState>>) -> Response {
    Json(stats_of(&state)).into_response()
}

/// `POST /_sim/payments/{msn}/{reference}/{approve|abort|expire}`: what the user does in the
/// app. `approve` is the same as the test API's force-approve, without a token.
pub(crate) async fn user_acts(
    State(state): State<Arc<SimState>>,
    Path((msn, reference, action)): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let msn = Msn::parse(&msn).map_err(|_| Problem::validation("msn", "must be 4 to 10 digits"))?;
    let action = match action.as_str() {
        "approve" => UserAction::Approve,
        "abort" => UserAction::Abort,
        "expire" => UserAction::Expire,
        _ => {
            return Err(Problem::not_found(
                "the actions are approve, abort and expire",
            ))
        }
    };
    user_action(&state, &msn, &reference, None, action)?;
    Ok(StatusCode::OK)
}
