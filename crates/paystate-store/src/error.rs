//! Errors shaped by what the caller can do about them.

use crate::types::{ExpectedVersion, StreamVersion};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency failed: re-read the stream and decide again.
    #[error("stream {stream}: expected version {expected:?}, actual {actual}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: StreamVersion,
    },
    /// The directory exists but is not a paystate store.
    #[error("{path}: not a paystate store ({reason})")]
    NotAStore { path: PathBuf, reason: String },
    /// The store was written by a newer paystate.
    #[error("{path}: store format version {found} is newer than this paystate understands ({supported})")]
    FormatTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The store's files are damaged: sled cannot read them, or the log lost events it had
    /// made durable. Reads may still work; nothing is written.
    #[error("{path}: the store is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    /// The store is in use by another process.
    #[error("{path}: the store is locked by another process (is `paystate serve` running?)")]
    Locked { path: PathBuf },
    /// A record could not be decoded.
    #[error("corrupt record at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    /// The append could not be made durable; nothing acknowledged was lost, retry later.
    #[error("the store could not make the write durable: {0}")]
    Unavailable(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
