//! The one error type of the benchmark library; the binary wraps it in `anyhow`.

use std::path::PathBuf;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("HTTP to {what}: {message}")]
    Http { what: String, message: String },
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("rebuilding the projections: {0}")]
    Projections(#[from] paystate_projections::ProjectionError),
    #[error("the event store at {path}: {source}")]
    Store {
        path: PathBuf,
        source: paystate_store::StoreError,
    },
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}
