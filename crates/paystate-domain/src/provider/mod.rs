//! The provider aggregate and its decisions.
//!
//! - [`Provider`] is folded from the provider stream ([`Provider::replay`], [`Provider::apply`]).
//! - [`decide`] turns a [`ProviderCommand`] into the events to record, including whether a
//!   (re-)registration is needed and why.
//! - [`Provider::accepted_secret_versions`] says which secret versions may verify a delivery.
//! - [`reconcile`] classifies Vipps' list of webhooks and plans deletions and repairs.
//! - [`Provider::view`] is the API's provider view.

mod aggregate;
mod decide;
mod reconcile;
mod secrets;
mod view;

pub use aggregate::{
    FoldError, PendingRegistration, Provider, ProviderState, Registration, RegistrationError,
    RetiredRegistration, WebhookCounters,
};
pub use decide::{decide, decide_create, Decision, DecisionError, ProviderCommand};
pub use reconcile::{
    reconcile, superseded_registrations, ClassifiedWebhook, PlannedDeletion, Reconciliation,
    RemoteClass, RemoteWebhook,
};
pub use secrets::DEFAULT_SECRET_GRACE;
pub use view::{ProviderView, WebhookView};
