//! The usual alternative: axum + PostgreSQL.
//!
//! - [`cluster`]: a throwaway cluster started by `scripts/postgres.sh`.
//! - [`alternative`]: the receiver a team would write: verify each webhook, then one INSERT of
//!   the raw webhook and one UPSERT of the payment row in one transaction.

pub mod alternative;
pub mod cluster;

pub use alternative::{AlternativeConfig, AlternativeServer};
pub use cluster::PostgresCluster;
