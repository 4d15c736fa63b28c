//! HTTP plumbing shared by every route group: extractors (bodies are JSON objects, [`object`];
//! query values are UTF-8, [`query`]), bodies read within a size and a time limit ([`body`]),
//! the admin guard, fallbacks, the edge layer every request passes ([`edge`]: request id,
//! timeout, panic guard, JSON errors, request counts, access log), and the accept loop
//! ([`serve`]).

pub mod auth;
pub mod body;
pub mod edge;
pub mod extract;
pub mod fallback;
pub mod object;
pub mod query;
pub mod serve;
