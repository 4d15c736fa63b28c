//! End-to-end tests: the real paystate server over HTTP, alone or against the Vipps simulator.
//!
//! One test binary; one module per concern.

mod connections;
mod crash;
mod hostile;
mod ingestion;
mod polling;
mod providers;
mod queries;
mod serve;
