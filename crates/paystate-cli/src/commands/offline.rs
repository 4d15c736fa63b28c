//! Opening a data directory for the offline commands (`replay`, `audit`, `verify`, `export`,
//! `import`).
//!
//! These commands open the embedded store themselves. sled allows one process per directory,
//! so while `paystate serve` runs on the same directory they refuse with a clear message
//! instead of waiting or reading a half-written state.

use anyhow::{bail, Context};
use paystate_store::{EventStore, SledStore, StoreError, StoreOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The footer of every offline command's `--help`: how it relates to a running server, and its
/// exit codes (see [`super::outcome`]).
pub const OFFLINE_AND_EXIT_HELP: &str = "\
Works offline on the data directory: stop `paystate serve` on that directory first. While a \
server runs on it, the store is locked and this command refuses with a message saying so.

Exit codes: 0 ok; 1 a problem was found (verify, replay --verify); 2 the command could not run \
(usage, I/O, missing or locked data directory, refused input).";

/// The `--data` flag shared by the offline commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// The data directory of `paystate serve` (it holds the store, the master key and the admin
    /// token).
    #[arg(long, env = "PAYSTATE_DATA", default_value = "./paystate-data")]
    pub data: PathBuf,
}

impl DataDirArg {
    /// Opens the store of an existing data directory; a missing one is an error (a typo must
    /// not create an empty store that then "verifies").
    pub fn open_existing(&self) -> anyhow::Result<Arc<SledStore>> {
        self.open_existing_within(Duration::ZERO)
    }

    /// As [`DataDirArg::open_existing`], waiting up to `wait` for the lock of a server that
    /// this process has just stopped: the last of sled's I/O work can hold the database file a
    /// moment after the store is dropped.
    pub fn open_existing_within(&self, wait: Duration) -> anyhow::Result<Arc<SledStore>> {
        let store_dir = paystate_server::store::store_path(&self.data);
        if !store_dir.is_dir() {
            bail!(
                "{} holds no paystate store (expected {}); pass the server's data directory with --data",
                self.data.display(),
                store_dir.display()
            );
        }
        open(&self.data, &store_dir, wait)
    }
}

fn open(data_dir: &Path, store_dir: &Path, wait: Duration) -> anyhow::Result<Arc<SledStore>> {
    match SledStore::open_within(store_dir, StoreOptions::default(), wait) {
        Ok(store) => Ok(Arc::new(store)),
        Err(StoreError::Locked { .. }) => bail!(
            "the data directory {} is in use by a running paystate server; stop `paystate serve` \
             on this directory and run this command again",
            data_dir.display()
        ),
        Err(error) => {
            Err(error).with_context(|| format!("opening the store in {}", data_dir.display()))
        }
    }
}

/// Flushes and closes the store so the directory is unlocked and consistent on exit.
pub async fn close(store: &SledStore) -> anyhow::Result<()> {
    store.close().await.context("closing the store")
}

/// A runtime for the few store calls that are async (append, import, close).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
