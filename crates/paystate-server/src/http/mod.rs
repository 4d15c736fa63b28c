//! HTTP plumbing shared by every route group: extractors, the admin guard, fallbacks.

pub mod auth;
pub mod extract;
pub mod fallback;
