//! The projection engine of paystate: read models folded from the event log, used by the
//! server (live) and by the CLI (`replay`, `audit`).
//!
//! - [`Projections`] holds every view: providers (with webhook counters), payments (folded by
//!   the domain's [`paystate_domain::payment::PaymentProjection`]) and the listing filters by
//!   provider and state. [`Projections::apply`] takes one envelope; unknown or undecodable
//!   types are counted ([`Skipped`]), never fatal.
//! - Payments live in one table in listing order (first position), found through a hash of
//!   their key; nothing copies a provider id or a reference per payment (providers are
//!   interned). A payment changed since the last commit is held decoded; once committed it is
//!   held in its compact stored form (postcard, a few hundred bytes), which is exactly what
//!   was persisted, and decoded again only to answer a query about it or to change it.
//! - Applying reads envelopes into batches (one reused buffer) and decodes only what the views
//!   use: a receipt's provider and time, not its body; a payment fact from borrowed text.
//!   Both are read by a strict scanner of the compact JSON this code writes (`scan`), and by
//!   serde_json whenever the scanner declines, so what counts as undecodable ([`Skipped`]) is
//!   exactly what serde_json rejects.
//! - [`ProjectionsHandle`] shares the live projections: reads, a watch on the applied position
//!   for read-your-writes ([`ProjectionsHandle::wait_for`]), and [`ProjectionsHandle::commit`]
//!   that writes what changed with the checkpoint atomically ([`persist`]).
//! - [`follow`] catches up from the checkpoint and then follows the log live, applying a batch
//!   under one lock; [`rebuild`] builds everything from scratch, reading on a second thread
//!   while applying; [`Projections::differences`] compares two.
//! - [`history`]: history entries and time travel ([`payment_as_of`]).
//!
//! Module map: `views` (the read models and applying), `payments` (the payment table),
//! `decode` (batches and what is decoded of each envelope: `decode::receipt`, `decode::fact`),
//! `scan` (the JSON scanner), `codec` (a payment's stored form),
//! [`persist`] (the stored layout, commit and load), `engine` (follow, rebuild, catch up),
//! `handle` ([`ProjectionsHandle`]), [`history`].
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
mod scan;
mod views;

pub use engine::{
    catch_up, follow, follow_with, rebuild, rebuild_with_progress, CommitPolicy,
    CATCH_UP_COMMIT_AFTER_CHANGES, COMMIT_AFTER_CHANGES,
};
pub use error::ProjectionError;
pub use handle::ProjectionsHandle;
pub use history::{
    payment_as_of, payment_history, provider_as_of, provider_history, stream_history, AsOf,
    HistoryEntry,
};
pub use views::{PaymentKey, PaymentPage, Projections, Skipped};
