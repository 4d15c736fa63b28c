//! Ordered delivery lanes. A lane is the queue of one registration's deliveries for one
//! payment; it exists exactly while a worker task is draining it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::seq::SliceRandom;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::attempt::{deliver, Delivery};
use super::log::DeliveryLog;
use crate::config::SimConfig;
use crate::events::PaymentEvent;
use crate::faults::{Faults, RegistrationOrder};
use crate::ids::Reference;
use crate::state::{Registration, SimState};

/// Ordering holds per registration and payment, so that pair names a lane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LaneKey {
    pub registration_id: Uuid,
    pub reference: Reference,
}

#[derive(Debug)]
struct Lane {
    queue: VecDeque<Delivery>,
    /// Wakes a worker that holds an event back for the reorder fault when a later one arrives.
    arrived: Arc<Notify>,
}

/// Owns the lanes, the worker tasks and the HTTP client.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    /// std `Mutex`: only queue pushes and pops happen under it, never an `.await`.
    lanes: Mutex<HashMap<LaneKey, Lane>>,
    /// Every worker task, so shutdown can stop them all. std `Mutex`: spawning is synchronous.
    workers: Mutex<JoinSet<()>>,
    pub client: reqwest::Client,
    pub log: DeliveryLog,
    next_delivery_id: AtomicU64,
    /// Deliveries enqueued and not yet delivered, dropped or given up.
    pub pending: AtomicU64,
}

impl Dispatcher {
    pub fn new(config: &SimConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.delivery_timeout)
            // Vipps does not follow redirects: a 3xx is a failed delivery.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Vipps MobilePay Webhooks (vipps-sim)")
            .build()?;
        Ok(Self {
            lanes: Mutex::new(HashMap::new()),
            workers: Mutex::new(JoinSet::new()),
            client,
            log: DeliveryLog::new(config.delivery_log_capacity),
            next_delivery_id: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        })
    }

    fn lanes(&self) -> MutexGuard<'_, HashMap<LaneKey, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event` for each registration, applying the fan-out faults (copies, order,
    /// stagger), and starts a worker for every lane that has none.
    pub fn enqueue(
        &self,
        state: &Arc<SimState>,
        mut registrations: Vec<Registration>,
        event: &PaymentEvent,
        faults: &Faults,
    ) {
        match faults.registration_order {
            RegistrationOrder::Registered => {}
            RegistrationOrder::Reversed => registrations.reverse(),
            RegistrationOrder::Shuffled => registrations.shuffle(&mut rand::thread_rng()),
        }
        let body: Arc<[u8]> = event.webhook_body().into();
        let copies = faults.deliveries_per_event.max(1);
        let mut lanes = self.lanes();
        for (position, registration) in registrations.into_iter().enumerate() {
            let stagger = faults
                .registration_stagger
                .saturating_mul(u32::try_from(position).unwrap_or(u32::MAX));
            let key = LaneKey {
                registration_id: registration.id,
                reference: event.reference.clone(),
            };
            for copy in 1..=copies {
                let delivery = Delivery {
                    id: self.next_delivery_id.fetch_add(1, Ordering::Relaxed),
                    copy,
                    event: event.clone(),
                    body: Arc::clone(&body),
                    stagger,
                    reordered: false,
                };
                self.pending.fetch_add(1, Ordering::Relaxed);
                match lanes.get_mut(&key) {
                    Some(lane) => {
                        lane.queue.push_back(delivery);
                        lane.arrived.notify_one();
                    }
                    None => {
                        lanes.insert(
                            key.clone(),
                            Lane {
                                queue: VecDeque::from([delivery]),
                                arrived: Arc::new(Notify::new()),
                            },
                        );
                        self.spawn_worker(Arc::clone(state), key.clone());
                    }
                }
            }
        }
    }

    fn spawn_worker(&self, state: Arc<SimState>, key: LaneKey) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished workers so the set does not grow with every payment ever made.
        while workers.try_join_next().is_some() {}
        workers.spawn(drain_lane(state, key));
    }

    /// Stops every worker; queued deliveries are abandoned, as they would be if Vipps stopped.
    pub fn shutdown(&self) {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
    }

    /// Takes the lane's next delivery, or removes the lane when it is empty (the worker then
    /// ends; the next enqueue starts a new one).
    fn next_in_lane(&self, key: &LaneKey) -> Option<(Delivery, Arc<Notify>)> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(key)?;
        match lane.queue.pop_front() {
            Some(delivery) => Some((delivery, Arc::clone(&lane.arrived))),
            None => {
                lanes.remove(key);
                None
            }
        }
    }

    /// If a later delivery is queued in the lane, puts `held` back in front of the queue and
    /// replaces it with the later one; answers whether it did.
    fn swap_with_next(&self, key: &LaneKey, held: &mut Delivery) -> bool {
        let mut lanes = self.lanes();
        let Some(lane) = lanes.get_mut(key) else {
            return false;
        };
        match lane.queue.pop_front() {
            Some(mut later) => {
                later.reordered = true;
                std::mem::swap(held, &mut later);
                lane.queue.push_front(later);
                true
            }
            None => false,
        }
    }
}

async fn drain_lane(state: Arc<SimState>, key: LaneKey) {
    while let Some((delivery, arrived)) = state.dispatcher.next_in_lane(&key) {
        let window = state.faults().reorder_within_payment;
        let delivery = if window.is_zero() || delivery.reordered {
            delivery
        } else {
            hold_for_reorder(&state, &key, delivery, &arrived, window).await
        };
        deliver(&state, &key, delivery).await;
    }
}

/// The reorder fault: wait up to `window` for a later event of the same payment and, if one
/// comes, deliver it first.
async fn hold_for_reorder(
    state: &SimState,
    key: &LaneKey,
    mut held: Delivery,
    arrived: &Notify,
    window: Duration,
) -> Delivery {
    held.reordered = true;
    let deadline = super::deadline_after(window);
    loop {
        if state.dispatcher.swap_with_next(key, &mut held) {
            return held;
        }
        if tokio::time::timeout_at(deadline, arrived.notified())
            .await
            .is_err()
        {
            return held;
        }
    }
}
