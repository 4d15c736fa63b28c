//! The append-only event log of paystate.
//!
//! Every fact paystate learns (a verified webhook, a provider change, a registration outcome)
//! becomes an [`Envelope`] in one global, gapless, totally ordered sequence of positions.
//! This crate owns that sequence:
//!
//! - [`EventStore`] is the contract; [`SledStore`] keeps it on disk (embedded, durable) and
//!   [`MemoryStore`] keeps it in memory for tests. Both pass one conformance suite.
//! - Appends carry an [`ExpectedVersion`] per stream (optimistic concurrency) and an optional
//!   dedupe key per event: the first append of a key wins forever.
//! - Every envelope carries the SHA-256 of the previous one (a hash chain); [`EventStore::verify`]
//!   walks it and names the first bad position.
//! - An append returns only once its events are durable; concurrent appenders share one flush
//!   (group commit).
//! - [`EventStore::subscribe`] reads from a position, then follows the log live.
//! - Projections keep their state and checkpoint together ([`EventStore::commit_projection`]).
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

mod error;
mod event_store;
mod types;

pub use error::StoreError;
pub use event_store::{EventStore, KvOp, Subscription, SubscriptionItem};
pub use types::{
    AppendOutcome, Envelope, ExpectedVersion, Hash, NewEvent, Position, StreamId, StreamVersion,
    VerifyReport,
};
