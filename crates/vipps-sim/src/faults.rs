//! Fault knobs: ways the simulator misbehaves on purpose, the way Vipps's delivery does in
//! real life (duplicates, reordering, delays, lost attempts, wrong signatures). They can be
//! changed while it runs, through [`crate::SimHandle::set_faults`] or `POST /_sim/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The fault knobs in force. JSON form (every field optional, durations in milliseconds):
///
/// ```json
/// {"deliveries_per_event": 2, "registration_order": "reversed", "registration_stagger_ms": 50,
///  "reorder_within_payment_ms": 0, "delay_ms": 0, "delay_jitter_ms": 0,
///  "fail_first_attempts": 1, "fail_mode": "unreachable", "sign_with_wrong_secret": false,
///  "decline_operations": 0}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Each event is delivered this many times to each subscribed registration (1 = normal;
    /// 2 or more = duplicates, as after a late 200). 0 is treated as 1.
    pub deliveries_per_event: u32,
    /// The order in which an event is handed to the registrations subscribed to it.
    pub registration_order: RegistrationOrder,
    /// The k-th registration in that order waits k times this before its first attempt, so
    /// the order becomes visible to receivers.
    #[serde(rename = "registration_stagger_ms", with = "millis")]
    pub registration_stagger: Duration,
    /// When non-zero, an event waits up to this long for the next event of the same payment
    /// on the same registration, and if one comes, the later event is delivered first.
    /// This breaks the per-payment order on purpose, to test receivers that must not depend on it.
    #[serde(rename = "reorder_within_payment_ms", with = "millis")]
    pub reorder_within_payment: Duration,
    /// Fixed wait before the first attempt of every delivery.
    #[serde(rename = "delay_ms", with = "millis")]
    pub delay: Duration,
    /// Random extra wait, uniformly between zero and this, added to `delay`.
    #[serde(rename = "delay_jitter_ms", with = "millis")]
    pub delay_jitter: Duration,
    /// The first N attempts of every delivery fail (then the retry schedule applies).
    pub fail_first_attempts: u32,
    /// How those forced failures look to the receiver.
    pub fail_mode: FailMode,
    /// Sign with a random secret instead of the registration's: every delivery fails
    /// verification at a correct receiver.
    pub sign_with_wrong_secret: bool,
    /// The next N otherwise valid capture, refund or cancel requests are declined by the
    /// "payment processor": the API answers 400 problem+json, no money moves, and the
    /// operation's event is emitted with `success: false` and its own PSP reference. Counts
    /// down as it is used.
    pub decline_operations: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            deliveries_per_event: 1,
            registration_order: RegistrationOrder::Registered,
            registration_stagger: Duration::ZERO,
            reorder_within_payment: Duration::ZERO,
            delay: Duration::ZERO,
            delay_jitter: Duration::ZERO,
            fail_first_attempts: 0,
            fail_mode: FailMode::Unreachable,
            sign_with_wrong_secret: false,
            decline_operations: 0,
        }
    }
}

/// The order in which one event is fanned out to the registrations subscribed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationOrder {
    /// Oldest registration first.
    #[default]
    Registered,
    /// Newest registration first.
    Reversed,
    /// A fresh random order for every event.
    Shuffled,
}

/// What a forced failed attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// The request is never sent, as if the receiver could not be reached.
    #[default]
    Unreachable,
    /// The request is sent and the receiver answers, but the answer is treated as lost,
    /// so the receiver sees the same event again on the retry.
    AnswerLost,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_optional_and_in_milliseconds() {
        let faults: Faults =
            serde_json::from_str(r#"{"delay_ms": 250, "registration_order": "reversed"}"#).unwrap();
        assert_eq!(faults.delay, Duration::from_millis(250));
        assert_eq!(faults.registration_order, RegistrationOrder::Reversed);
        assert_eq!(faults.deliveries_per_event, 1);
        let round_trip: Faults =
            serde_json::from_value(serde_json::to_value(&faults).unwrap()).unwrap();
        assert_eq!(round_trip, faults);
    }

    #[test]
    fn unknown_knobs_are_refused() {
        assert!(serde_json::from_str::<Faults>(r#"{"dleay_ms": 5}"#).is_err());
    }
}
