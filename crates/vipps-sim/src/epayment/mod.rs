//! ePayment API v1: the state model ([`model`]) and its HTTP face (`api`).

pub(crate) mod api;
pub mod model;
