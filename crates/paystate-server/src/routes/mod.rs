//! Route groups, one module each. Every group exposes `router() -> OpenApiRouter<AppState>`, so
//! the OpenAPI document is generated from the same definitions that serve requests.

pub mod dto;
pub mod events;
pub mod ops;
pub mod payments;
pub mod read_your_writes;
