//! HTTP plumbing shared by every route group: extractors, the admin guard, fallbacks, and the
//! accept loop ([`serve`]).

pub mod auth;
pub mod extract;
pub mod fallback;
pub mod serve;
