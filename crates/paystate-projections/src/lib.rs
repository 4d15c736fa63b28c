//! The projection engine of paystate: read models folded from the event log.
//!
//! Placeholder for the server skeleton: the handle that request handlers read and wait on.
//! The views and the follower that fills them come with the domain catalogue.

mod handle;

pub use handle::ProjectionsHandle;
