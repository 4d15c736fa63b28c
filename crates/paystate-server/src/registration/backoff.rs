//! When a failed registration is tried again: exponential backoff with a cap and jitter.

use std::time::Duration;

/// Exponential backoff: `initial * 2^(attempt-1)`, at most `max`, with up to a quarter of the
/// delay added at random so that many providers failing together (Vipps down) do not retry in
/// lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 2 s, 4 s, 8 s, ... capped at 15 minutes.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay before the attempt after failed attempt number `attempt` (1 for the first),
    /// without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.initial
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// [`Backoff::base_delay`] plus jitter in `[0, base/4]`, still at most `max`. `unit` is a
    /// random number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        let jitter = base.mul_f64(unit.clamp(0.0, 1.0) / 4.0);
        (base + jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=9).map(|a| backoff.base_delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.base_delay(u32::MAX), Duration::from_secs(60));
        assert_eq!(backoff.base_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_adds_at_most_a_quarter_and_never_passes_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(4),
            max: Duration::from_secs(10),
        };
        assert_eq!(backoff.delay(1, 0.0), Duration::from_secs(4));
        assert_eq!(
            backoff.delay(1, 0.999_999),
            Duration::from_secs(4).mul_f64(1.0 + 0.999_999 / 4.0)
        );
        assert_eq!(backoff.delay(2, 0.999), Duration::from_millis(9998));
        assert_eq!(backoff.delay(2, 1.0), Duration::from_secs(10));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(10));
    }
}
