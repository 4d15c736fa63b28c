//! The append-only event log of paystate.
//!
//! Every fact paystate learns (a verified webhook, a provider change, a registration outcome)
//! becomes an [`Envelope`] in one global, gapless, totally ordered sequence of positions.
//! This crate owns that sequence:
//!
//! - [`EventStore`] is the contract; [`SledStore`] keeps it on disk (embedded, durable) and
//!   [`MemoryStore`] keeps it in memory for tests. Both pass one conformance suite.
//! - Appends carry an [`ExpectedVersion`] per stream (optimistic concurrency) and an optional
//!   dedupe key per event: the first append of a key to a stream wins forever.
//! - Every envelope carries the SHA-256 of the previous one (a hash chain); [`EventStore::verify`]
//!   walks it and names the first bad position.
//! - An append returns only once its events are durable; concurrent appenders share one flush
//!   (group commit).
//! - [`Subscription`] reads from a position, then follows the log live;
//!   [`EventStore::scan_all`] walks the log without copying events ([`EnvelopeRef`]).
//! - Projections keep their state and checkpoint together ([`EventStore::commit_projection`]).
//! - Old event schemas are upcast on read ([`Upcasters`]); stored bytes are never rewritten.
//!
//! Module map: `types` (the values at the boundary), `error`, `event_store` (the trait and
//! subscriptions), `sequencer` (deciding a batch: versions, dedupe, positions, event ids,
//! chain), `codec` (record encoding and the chain hash), `upcast` and `options` (what a store
//! is opened with), `stats`, `memory`, and `sled_store`: `layout` (trees, keys, recognising a
//! store), `chunk` (one commit's records in one value), `writer` (the writer and sync threads:
//! group commit), `stream_heads` (a stream's version, runs and dedupe hashes in one entry),
//! `indexes` (index entries, completed on open after a crash), `lookup` (a stream's runs and
//! dedupe keys from its entry or the index trees), `recent` (the
//! latest durable events in memory), `disk_sync` (the fsync after sled's flush).
//! `docs/store.md` describes the write path, what durable means, recovery and the on-disk
//! format.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), paystate_store::StoreError> {
//! use paystate_store::{AppendOutcome, EventStore, ExpectedVersion, MemoryStore, NewEvent, Position, StreamId};
//! let store = MemoryStore::new();
//! let stream = StreamId::new("payment-vipps-test-acme-order-1001");
//! let delivery = NewEvent::new("webhook_received", 1, b"{}".to_vec()).with_dedupe_key("delivery-1");
//! let first = store.append(&stream, ExpectedVersion::NoStream, vec![delivery.clone()]).await?;
//! assert!(matches!(first, AppendOutcome::Appended { first: Position(1), .. }));
//! // The same delivery again appends nothing.
//! let again = store.append(&stream, ExpectedVersion::Any, vec![delivery]).await?;
//! assert!(matches!(again, AppendOutcome::Duplicate { original_position: Position(1), .. }));
//! assert_eq!(store.read_all(Position::START, 10)?.len(), 1);
//! assert_eq!(store.verify()?.first_bad, None);
//! # Ok(()) }
//! ```
//!
//! On disk:
//!
//! ```no_run
//! # async fn example() -> Result<(), paystate_store::StoreError> {
//! use paystate_store::{EventStore, ExpectedVersion, NewEvent, SledStore, StreamId};
//! let store = SledStore::open("./paystate-data")?;
//! let event = NewEvent::new("provider_created", 1, br#"{"id":"vipps-test"}"#.to_vec());
//! let outcome = store
//!     .append(&StreamId::new("provider-vipps-test"), ExpectedVersion::NoStream, vec![event])
//!     .await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

mod codec;
mod error;
mod event_store;
mod memory;
mod names;
mod options;
pub mod private_dir;
mod sequencer;
mod sled_store;
mod stats;
mod types;
mod upcast;

pub use error::StoreError;
pub use event_store::{EventStore, KvOp, KvPairs, Subscription, SubscriptionItem};
pub use memory::MemoryStore;
pub use options::{StoreOptions, DEFAULT_CACHE_CAPACITY_BYTES};
pub use sled_store::{SledStore, FORMAT_VERSION};
pub use stats::StoreStats;
pub use types::{
    AppendOutcome, Envelope, EnvelopeRef, ExpectedVersion, Hash, NewEvent, Position, StreamId,
    StreamVersion, VerifyReport,
};
pub use upcast::{UpcastFn, Upcasters};
