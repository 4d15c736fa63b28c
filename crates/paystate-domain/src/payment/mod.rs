//! The payment projection: a fold of payment facts into state, aggregate and anomalies that
//! does not depend on arrival order or duplicates (VIPPS.md §5).
//!
//! - [`PaymentProjection`] keeps the set of distinct facts of one payment;
//!   [`PaymentProjection::view`] derives the [`PaymentView`] from it;
//!   [`PaymentProjection::into_parts`] and [`PaymentProjection::from_parts`] take it apart and
//!   back for compact encodings ([`PaymentParts`]).
//! - [`PaymentState`] and [`PaymentAggregate`] are the ePayment model;
//!   [`PaymentAnomaly`] lists what breaks it, as data.

mod anomaly;
mod derive;
mod projection;
mod state;

pub use anomaly::PaymentAnomaly;
pub use projection::{PartsError, PaymentParts, PaymentProjection, PaymentView, RecordedFact};
pub use state::{PaymentAggregate, PaymentState};
