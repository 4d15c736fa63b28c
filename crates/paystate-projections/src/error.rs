//! Errors of the projection engine.

use paystate_store::StoreError;

/// Why projections could not be loaded, followed or queried.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
}
