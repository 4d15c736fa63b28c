//! How a store is opened.

use crate::upcast::Upcasters;

/// Settings shared by every [`crate::EventStore`] implementation.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Applied on every read except [`crate::EventStore::read_all_raw`].
    pub upcasters: Upcasters,
    /// The most events the writer takes into one group commit; bounds a commit's latency.
    pub max_batch_events: usize,
    /// Bytes of sled's page cache. sled's own default (1 GiB) lets the resident memory grow
    /// with the log; reads beyond the cache come from the OS page cache instead.
    pub cache_capacity_bytes: u64,
}

/// The default page cache: holds the hot tail of the log and the indexes' upper levels.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            upcasters: Upcasters::default(),
            max_batch_events: 4096,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
        }
    }
}

impl StoreOptions {
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> StoreOptions {
        self.upcasters = upcasters;
        self
    }

    pub fn with_cache_capacity_bytes(mut self, bytes: u64) -> StoreOptions {
        self.cache_capacity_bytes = bytes;
        self
    }
}
