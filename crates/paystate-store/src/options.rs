//! How a store is opened.

use crate::upcast::Upcasters;

/// Settings shared by every [`crate::EventStore`] implementation.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Applied on every read except [`crate::EventStore::read_all_raw`].
    pub upcasters: Upcasters,
    /// The most events the writer takes into one group commit; bounds a commit's latency.
    pub max_batch_events: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            upcasters: Upcasters::default(),
            max_batch_events: 4096,
        }
    }
}

impl StoreOptions {
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> StoreOptions {
        self.upcasters = upcasters;
        self
    }
}
