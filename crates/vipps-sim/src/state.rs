//! The simulator's shared state: one lock over everything the APIs change, so an operation,
//! its event and the fan-out of that event to deliveries happen as one step, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::http::StatusCode;
use paystate_vipps::signature::{RegisteredUrl, WebhookSecret};
use serde::Serialize;
use uuid::Uuid;

use crate::config::{Concealed, SimConfig};
use crate::delivery::Dispatcher;
use crate::epayment::model::Payment;
use crate::events::{EventName, PaymentEvent};
use crate::faults::Faults;
use crate::ids::{Msn, Reference};

/// Shared by every handler and by the delivery workers.
#[derive(Debug)]
pub(crate) struct SimState {
    pub config: SimConfig,
    /// std `Mutex`: it is never held across an `.await`, and every critical section is short.
    world: Mutex<World>,
    /// std `Mutex` for the same reason; read at fan-out and before every attempt so a change
    /// applies at once.
    faults: Mutex<Faults>,
    pub dispatcher: Dispatcher,
}

/// Everything the Vipps APIs create.
#[derive(Debug, Default)]
pub(crate) struct World {
    /// Keyed by the access token itself, concealed so `Debug` of the state cannot leak it.
    pub tokens: HashMap<Concealed, IssuedToken>,
    /// In registration order, which is also the default fan-out order.
    pub registrations: Vec<Registration>,
    pub payments: HashMap<(Msn, Reference), Payment>,
    pub idempotent_answers: HashMap<IdempotencyScope, StoredAnswer>,
}

/// An access token the token endpoint handed out.
#[derive(Debug)]
pub(crate) struct IssuedToken {
    pub msn: Msn,
    pub subscription_key: Concealed,
    pub expires_at: Instant,
}

/// A webhook registration.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub id: Uuid,
    pub msn: Msn,
    pub url: RegisteredUrl,
    pub events: Vec<EventName>,
    pub secret: WebhookSecret,
}

/// A registration as tests and the control endpoint see it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationInfo {
    /// The registration id (also `Webhook-Id` on its deliveries).
    pub id: Uuid,
    /// The merchant it belongs to.
    pub msn: String,
    /// The URL as registered.
    pub url: String,
    /// The event types it subscribes to.
    pub events: Vec<String>,
}

impl Registration {
    pub fn info(&self) -> RegistrationInfo {
        RegistrationInfo {
            id: self.id,
            msn: self.msn.to_string(),
            url: self.url.as_str().to_owned(),
            events: self
                .events
                .iter()
                .map(|name| name.event_type().to_owned())
                .collect(),
        }
    }
}

/// Which operation an `Idempotency-Key` was used for: the same key on a different payment or
/// operation is a different request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IdempotencyScope {
    pub msn: Msn,
    pub operation: &'static str,
    /// Empty for create, where the reference is in the body.
    pub reference: String,
    pub key: String,
}

/// The answer first given under an `Idempotency-Key`, replayed for every repeat.
#[derive(Debug, Clone)]
pub(crate) struct StoredAnswer {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl SimState {
    pub fn new(config: SimConfig, dispatcher: Dispatcher) -> Arc<Self> {
        let faults = config.faults.clone();
        Arc::new(Self {
            config,
            world: Mutex::new(World::default()),
            faults: Mutex::new(faults),
            dispatcher,
        })
    }

    /// Locks the world. A panic while holding it cannot leave it half-updated in a way that
    /// matters more than stopping would, so a poisoned lock is simply taken over.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
    }

    /// Uses up one `decline_operations` fault if any is left.
    pub fn take_decline(&self) -> bool {
        let mut faults = self
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if faults.decline_operations == 0 {
            return false;
        }
        faults.decline_operations -= 1;
        true
    }

    /// Hands `event` to every registration of its merchant subscribed to its type. Called with
    /// the world locked, right after the operation, so fan-out order is event order.
    pub fn publish(self: &Arc<Self>, world: &World, event: &PaymentEvent) {
        let subscribed: Vec<Registration> = world
            .registrations
            .iter()
            .filter(|registration| {
                registration.msn == event.msn && registration.events.contains(&event.name)
            })
            .cloned()
            .collect();
        self.dispatcher
            .enqueue(self, subscribed, event, &self.faults());
    }
}

impl World {
    pub fn registration(&self, id: Uuid) -> Option<&Registration> {
        self.registrations
            .iter()
            .find(|registration| registration.id == id)
    }
}
