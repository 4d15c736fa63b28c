//! Read-your-writes for query routes: a read waits until the projections have applied
//! everything the log held when the request arrived, so a `GET` after a `200` reflects it.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use std::time::Duration;

/// How long a read waits for the projections before answering `503`.
const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

/// Waits for the projections to reach the current log head.
pub async fn wait_until_fresh(state: &AppState) -> Result<(), ApiError> {
    let head = state.store.head()?;
    if state.projections.applied() >= head || state.projections.wait_for(head, FRESHNESS_WAIT).await
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the projections are behind the log; retry shortly",
    ))
}
