//! The servers under load, each in its own process:
//!
//! - [`paystate`]: `paystate serve` with a provider registered through the admin API against
//!   the [`vipps_stub`];
//! - [`ceiling`]: a bare axum handler (the most an axum server can do here);
//! - [`postgres`]: the usual alternative, axum + PostgreSQL.
//!
//! [`child`] starts and stops a child server; [`http_client`] makes one-off setup calls.

pub mod ceiling;
pub mod child;
pub mod http_client;
pub mod paystate;
pub mod postgres;
pub mod vipps_stub;

pub use child::ChildServer;
pub use paystate::{register_provider, BenchProvider, PaystateServer};
pub use vipps_stub::VippsStub;
