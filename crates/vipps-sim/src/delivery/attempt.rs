//! One delivery of one event copy to one registration: sign with a fresh date, send, log,
//! and retry on failure until delivered, the registration is deleted, or the schedule runs out.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use paystate_vipps::signature::{imf_fixdate, sign_delivery, WebhookSecret};
use rand::{Rng, RngCore};

use super::lanes::LaneKey;
use super::log::{AttemptOutcome, DeliveryRecord};
use crate::events::PaymentEvent;
use crate::faults::{FailMode, Faults};
use crate::state::{Registration, SimState};

/// A queued delivery.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub id: u64,
    pub copy: u32,
    pub event: PaymentEvent,
    /// The exact bytes every attempt sends: a retry re-signs, it never re-serializes.
    pub body: Arc<[u8]>,
    /// Wait before the first attempt from the registration-order fault.
    pub stagger: Duration,
    /// Already taken part in the reorder fault; never held back twice.
    pub reordered: bool,
}

pub(crate) async fn deliver(state: &SimState, key: &LaneKey, delivery: Delivery) {
    let faults = state.faults();
    tokio::time::sleep(
        delivery
            .stagger
            .saturating_add(first_attempt_delay(&faults)),
    )
    .await;
    let started = tokio::time::Instant::now();
    let retry = &state.config.retry;
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        let registration = state.world().registration(key.registration_id).cloned();
        let Some(registration) = registration else {
            finish(
                state,
                &delivery,
                key,
                attempt,
                AttemptOutcome::RegistrationDeleted,
            );
            return;
        };
        let faults = state.faults();
        let record = send_once(state, &registration, &delivery, attempt, &faults).await;
        if record.delivered() {
            state.dispatcher.pending.fetch_sub(1, Ordering::Relaxed);
            state.dispatcher.log.append(record);
            return;
        }
        state.dispatcher.log.append(record);
        let wait = retry.wait_after(attempt);
        if started.elapsed().saturating_add(wait) > retry.give_up_after {
            finish(state, &delivery, key, attempt, AttemptOutcome::GaveUp);
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

fn first_attempt_delay(faults: &Faults) -> Duration {
    let jitter_ms = u64::try_from(faults.delay_jitter.as_millis()).unwrap_or(u64::MAX);
    let jitter = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    };
    faults.delay.saturating_add(jitter)
}

async fn send_once(
    state: &SimState,
    registration: &Registration,
    delivery: &Delivery,
    attempt: u32,
    faults: &Faults,
) -> DeliveryRecord {
    let secret = if faults.sign_with_wrong_secret {
        random_secret()
    } else {
        registration.secret.clone()
    };
    let x_ms_date = imf_fixdate(SystemTime::now());
    let headers = sign_delivery(&secret, &registration.url, &delivery.body, &x_ms_date);
    let forced_failure = attempt <= faults.fail_first_attempts;
    let outcome = if forced_failure && faults.fail_mode == FailMode::Unreachable {
        AttemptOutcome::NotSent
    } else {
        let mut request = state
            .dispatcher
            .client
            .post(registration.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", registration.id.to_string())
            .body(delivery.body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) if forced_failure => AttemptOutcome::AnswerLost {
                status: response.status().as_u16(),
            },
            Ok(response) => AttemptOutcome::Answered {
                status: response.status().as_u16(),
            },
            Err(error) => AttemptOutcome::Failed {
                error: describe(&error),
            },
        }
    };
    let mut record = record(delivery, registration.id, attempt, outcome);
    record.x_ms_date = Some(x_ms_date);
    record.wrong_secret = faults.sign_with_wrong_secret;
    record
}

fn finish(
    state: &SimState,
    delivery: &Delivery,
    key: &LaneKey,
    attempt: u32,
    outcome: AttemptOutcome,
) {
    state.dispatcher.pending.fetch_sub(1, Ordering::Relaxed);
    state
        .dispatcher
        .log
        .append(record(delivery, key.registration_id, attempt, outcome));
}

fn record(
    delivery: &Delivery,
    registration_id: uuid::Uuid,
    attempt: u32,
    outcome: AttemptOutcome,
) -> DeliveryRecord {
    DeliveryRecord {
        seq: 0,
        delivery_id: delivery.id,
        registration_id,
        msn: delivery.event.msn.to_string(),
        reference: delivery.event.reference.to_string(),
        event: delivery.event.name.as_str().to_owned(),
        psp_reference: delivery.event.psp_reference.to_string(),
        copy: delivery.copy,
        attempt,
        x_ms_date: None,
        wrong_secret: false,
        outcome,
    }
}

/// Why a request got no answer, without the URL's query (which may carry a tenant token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// A fresh 88-character secret shaped like Vipps's: base64 of 64 random bytes.
pub(crate) fn random_secret() -> WebhookSecret {
    let mut bytes = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut bytes);
    WebhookSecret::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}
