//! Where the embedded store lives inside a data directory, and opening it.
//!
//! The data directory holds the store in its own subdirectory next to the admin token and the
//! master key files, so that the store's directory holds nothing but the store.

use paystate_store::{EventStore, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The subdirectory of the data directory that holds the event store.
pub const STORE_DIR: &str = "store";

/// The path of the event store inside `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_DIR)
}

/// Opens (creating if needed) the sled store of `data_dir`. A store that opens but refuses
/// writes (damaged, see [`paystate_store::SledStore::refusal`]) is refused: a server on it could
/// acknowledge nothing.
pub fn open(data_dir: &Path) -> Result<Arc<dyn EventStore>, StoreError> {
    let path = store_path(data_dir);
    let store = paystate_store::SledStore::open(&path)?;
    if let Some(reason) = store.refusal() {
        return Err(StoreError::Damaged { path, reason });
    }
    Ok(Arc::new(store))
}
