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

/// Opens (creating if needed) the sled store of `data_dir`.
pub fn open(data_dir: &Path) -> Result<Arc<dyn EventStore>, StoreError> {
    let store = paystate_store::SledStore::open(store_path(data_dir))?;
    Ok(Arc::new(store))
}
