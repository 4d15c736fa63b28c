//! The envelopes of the last few durable batches, kept in memory after their commit.
//!
//! A live projection follower reads the log right behind the head after every commit. Without
//! this, each of those reads seeks sled's `events` tree (taking sled's process-wide
//! concurrency lock, which the writer holds for the whole of each batch's write) and decodes
//! records the writer built a moment earlier. The writer already owns those envelopes; handing
//! them here instead of dropping them costs no copy.

use crate::error::StoreError;
use crate::types::{Envelope, Position};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many of the latest events are kept: a few batches at full load, about 5 MiB of
/// webhook-sized events.
pub(crate) const RECENT_EVENTS: usize = 4096;

/// The most payload bytes kept, so a few huge events (an import, an outsized payload) cannot
/// hold much memory. A batch above it is not kept at all; its readers go to sled.
pub(crate) const RECENT_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct RecentEvents {
    /// Whole batches in log order, each with contiguous positions, together contiguous. A
    /// batch is shared so a reader copies only the events it returns, outside the lock.
    batches: Mutex<Held>,
}

/// The batches and running totals of what they hold, so a push costs the same however many
/// events are kept.
#[derive(Debug, Default)]
struct Held {
    batches: VecDeque<(Arc<Vec<Envelope>>, usize)>,
    events: usize,
    bytes: usize,
}

fn payload_bytes(batch: &[Envelope]) -> usize {
    batch.iter().map(|envelope| envelope.payload.len()).sum()
}

impl RecentEvents {
    /// Adds a batch that has just become durable. Called before the head moves past it.
    pub fn push(&self, batch: Vec<Envelope>) {
        let Some(first) = batch.first().map(|envelope| envelope.position) else {
            return;
        };
        let Ok(mut held) = self.batches.lock() else {
            return;
        };
        let follows = held
            .batches
            .back()
            .and_then(|(last, _)| last.last())
            .is_none_or(|last| last.position.next() == first);
        if !follows {
            *held = Held::default();
        }
        let bytes = payload_bytes(&batch);
        held.events += batch.len();
        held.bytes += bytes;
        held.batches.push_back((Arc::new(batch), bytes));
        while held.events > RECENT_EVENTS || held.bytes > RECENT_BYTES {
            let Some((oldest, bytes)) = held.batches.pop_front() else {
                break;
            };
            held.events -= oldest.len();
            held.bytes -= bytes;
        }
    }

    /// Calls `each` with the held events after `after`, up to `head` and at most `limit` of
    /// them, in order, stopping at the first error. `None` when `after + 1` is no longer
    /// held: the reader goes to sled.
    pub fn for_each_after(
        &self,
        after: Position,
        head: Position,
        limit: usize,
        mut each: impl FnMut(&Envelope) -> Result<(), StoreError>,
    ) -> Option<Result<(), StoreError>> {
        let batches = self.from(after)?;
        let mut held = batches
            .iter()
            .flat_map(|batch| batch.iter())
            .skip_while(|envelope| envelope.position <= after)
            .take_while(|envelope| envelope.position <= head)
            .take(limit);
        Some(held.try_for_each(&mut each))
    }

    /// The batches holding positions after `after`, if the first of them, `after + 1`, is
    /// still here; `None` sends the reader to sled.
    pub fn from(&self, after: Position) -> Option<Vec<Arc<Vec<Envelope>>>> {
        let held = self.batches.lock().ok()?;
        let wanted = after.next();
        // The batches are in log order, so the one holding `wanted` is found by bisection: a
        // follower right behind the head wants the newest of up to 4,096 one-append batches.
        let start = held
            .batches
            .partition_point(|(batch, _)| batch.last().is_some_and(|last| last.position < wanted));
        let (batch, _) = held.batches.get(start)?;
        if batch.first().is_none_or(|first| first.position > wanted) {
            return None;
        }
        Some(
            held.batches
                .range(start..)
                .map(|(batch, _)| batch.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sled_store::test_envelopes::envelope;

    fn batch(positions: std::ops::RangeInclusive<u64>) -> Vec<Envelope> {
        sized_batch(positions, 0)
    }

    fn sized_batch(positions: std::ops::RangeInclusive<u64>, payload: usize) -> Vec<Envelope> {
        positions
            .map(|position| envelope(position, payload))
            .collect()
    }

    fn positions(batches: Option<Vec<Arc<Vec<Envelope>>>>) -> Option<Vec<u64>> {
        batches.map(|batches| {
            batches
                .iter()
                .flat_map(|batch| batch.iter().map(|e| e.position.0))
                .collect()
        })
    }

    #[test]
    fn serves_from_the_batch_holding_the_next_position() {
        let recent = RecentEvents::default();
        assert_eq!(positions(recent.from(Position::START)), None);
        recent.push(batch(1..=3));
        recent.push(batch(4..=5));
        assert_eq!(
            positions(recent.from(Position::START)),
            Some(vec![1, 2, 3, 4, 5])
        );
        assert_eq!(positions(recent.from(Position(3))), Some(vec![4, 5]));
        assert_eq!(positions(recent.from(Position(4))), Some(vec![4, 5]));
        assert_eq!(positions(recent.from(Position(5))), None);
    }

    #[test]
    fn finds_every_held_position_among_many_small_batches() {
        let recent = RecentEvents::default();
        // Batches of 1, 2 and 3 events, more than the bound holds: the oldest are gone.
        let mut next = 1u64;
        for size in (0..3000u64).map(|i| i % 3 + 1) {
            recent.push(batch(next..=next + size - 1));
            next += size;
        }
        let head = next - 1;
        let oldest_held = (1..=head)
            .find(|&p| recent.from(Position(p - 1)).is_some())
            .unwrap();
        assert!(oldest_held > 1, "the bound dropped the oldest batches");
        assert!(head - oldest_held < RECENT_EVENTS as u64);
        for after in oldest_held - 1..=head {
            let expected: Vec<u64> = if after == head {
                Vec::new()
            } else {
                (after + 1..=head).collect()
            };
            let served: Option<Vec<u64>> = positions(recent.from(Position(after)))
                .map(|held| held.into_iter().filter(|&p| p > after).collect());
            if after == head {
                assert_eq!(served, None, "nothing is held after the head");
            } else {
                assert_eq!(served, Some(expected), "after {after}");
            }
        }
        assert_eq!(positions(recent.from(Position(oldest_held - 2))), None);
    }

    #[test]
    fn forgets_the_oldest_batches_beyond_its_bound_and_restarts_on_a_gap() {
        let recent = RecentEvents::default();
        let size = RECENT_EVENTS as u64 / 2;
        recent.push(batch(1..=size));
        recent.push(batch(size + 1..=2 * size));
        recent.push(batch(2 * size + 1..=2 * size + 1));
        // More events than the bound: the oldest batch goes.
        assert_eq!(positions(recent.from(Position::START)), None);
        assert_eq!(
            positions(recent.from(Position(size))).map(|p| p.len()),
            Some(size as usize + 1)
        );
        recent.push(batch(2 * size + 3..=2 * size + 4));
        assert_eq!(positions(recent.from(Position(2 * size))), None);
        assert_eq!(
            positions(recent.from(Position(2 * size + 2))),
            Some(vec![2 * size + 3, 2 * size + 4])
        );
    }

    #[test]
    fn keeps_no_more_than_its_bytes() {
        let recent = RecentEvents::default();
        recent.push(sized_batch(1..=2, RECENT_BYTES / 4));
        recent.push(sized_batch(3..=4, RECENT_BYTES / 4));
        assert_eq!(
            positions(recent.from(Position::START)),
            Some(vec![1, 2, 3, 4])
        );
        recent.push(sized_batch(5..=5, RECENT_BYTES / 4));
        assert_eq!(positions(recent.from(Position::START)), None);
        assert_eq!(positions(recent.from(Position(2))), Some(vec![3, 4, 5]));
        // A batch larger than the bound is not kept; readers of it go to sled.
        recent.push(sized_batch(6..=6, RECENT_BYTES + 1));
        assert_eq!(positions(recent.from(Position(5))), None);
        assert_eq!(positions(recent.from(Position(4))), None);
    }
}
