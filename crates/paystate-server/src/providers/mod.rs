//! Provider administration routes (`/providers...`).
//!
//! Starting point for the provider routes: the app merges [`router`] behind the admin token.

pub mod dto;
pub mod stream;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

/// The `/providers` route group.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
