//! The projection engine of paystate: read models folded from the event log, used by the
//! server (live) and by the CLI (`replay`, `audit`).
//!
//! - [`Projections`] holds every view: providers (with webhook counters), payments (folded by
//!   the domain's [`paystate_domain::payment::PaymentProjection`]) and a listing index by first
//!   appearance, provider and state. [`Projections::apply`] takes one envelope; unknown or
//!   undecodable types are counted ([`Skipped`]), never fatal.
//! - [`ProjectionsHandle`] shares the live projections: reads, a watch on the applied position
//!   for read-your-writes ([`ProjectionsHandle::wait_for`]), and [`ProjectionsHandle::commit`]
//!   that writes state and checkpoint atomically ([`persist`]).
//! - [`follow`] catches up from the checkpoint and then follows the log live;
//!   [`rebuild`] builds everything from scratch; [`Projections::differences`] compares two.
//! - [`history`]: history entries and time travel ([`payment_as_of`]).
//!
//! ```no_run
//! # fn example(store: &dyn paystate_store::EventStore) -> Result<(), paystate_projections::ProjectionError> {
//! let rebuilt = paystate_projections::rebuild(store)?;
//! let live = paystate_projections::ProjectionsHandle::open(store)?;
//! for difference in live.snapshot().differences(&rebuilt) {
//!     println!("{difference}");
//! }
//! # Ok(()) }
//! ```

mod codec;
mod decode;
mod engine;
mod error;
mod handle;
pub mod history;
mod payments;
pub mod persist;
mod views;

pub use engine::{catch_up, follow, rebuild, rebuild_with_progress, COMMIT_AFTER_CHANGES};
pub use error::ProjectionError;
pub use handle::ProjectionsHandle;
pub use history::{
    payment_as_of, payment_history, provider_as_of, provider_history, stream_history, AsOf,
    HistoryEntry,
};
pub use views::{PaymentKey, PaymentPage, Projections, Skipped};
