//! One entry per stream in `stream_heads`: the stream's version and, while the stream is short,
//! its runs and the hashes of its dedupe keys.
//!
//! A payment stream takes a handful of appends in its life. With its runs and dedupe hashes in
//! one entry, an append rewrites one small value, where it used to insert two new keys at
//! random places in two trees (sled's dearest write). A stream that outgrows its entry (more
//! than [`INLINE_RUNS`] runs or [`INLINE_DEDUPE`] dedupe keys) moves them to `stream_index` and
//! `dedupe_hashes`, as format 3 kept every stream, and its entry is not written again: it says
//! the stream is indexed, and the stream's version is that of its last run.
//!
//! A dedupe hash is the first 8 bytes of the key's SHA-256. A hash that matches is only a
//! candidate: the event it points at is read and its stream and key compared, so two keys
//! sharing a hash never make a duplicate.
//!
//! Applying a batch is idempotent (runs at or below the entry's version are skipped), so
//! completing the indexes after a crash may apply a batch the entry already holds.

use super::layout::Run;
use crate::error::StoreError;
use crate::types::StreamId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The most runs an entry holds before its stream moves to `stream_index`.
pub(crate) const INLINE_RUNS: usize = 8;
/// The most dedupe hashes an entry holds before its stream moves them to `dedupe_hashes`.
pub(crate) const INLINE_DEDUPE: usize = 8;

const INLINE: u8 = 1;
const INDEXED: u8 = 2;

/// What `stream_heads` holds for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamHead {
    /// Every run and dedupe hash of the stream, in the entry.
    Inline(InlineHead),
    /// The runs are in `stream_index`, the dedupe hashes in `dedupe_hashes`. `legacy`: the
    /// stream was written before format 4, so its older dedupe keys are in `dedupe`. Stored,
    /// `last_version` is the version at which the stream moved; in memory (read with the last
    /// run, then kept by the writer) it is the current one.
    Indexed { last_version: u64, legacy: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InlineHead {
    pub last_version: u64,
    /// `(first version, first position)` of each run in version order; a run ends where the
    /// next one begins, the last at `last_version`.
    pub runs: Vec<(u64, u64)>,
    /// `(hash, position)` of each dedupe key.
    pub dedupe: Vec<(u64, u64)>,
}

/// Index entries a stream's entry no longer holds: they go to `stream_index` and
/// `dedupe_hashes` before the entry is written.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Moved {
    pub runs: Vec<Run>,
    pub dedupe: Vec<(u64, u64)>,
}

/// The hash under which a dedupe key is found.
pub(crate) fn dedupe_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

impl StreamHead {
    /// The entry of a stream with no event yet.
    pub fn empty() -> StreamHead {
        StreamHead::Inline(InlineHead::default())
    }

    pub fn last_version(&self) -> u64 {
        match self {
            StreamHead::Inline(head) => head.last_version,
            StreamHead::Indexed { last_version, .. } => *last_version,
        }
    }

    /// Adds a batch's runs of this stream (in version order) and the `(hash, position)` of its
    /// dedupe keys. Returns the entries that must be written to the index trees before this
    /// entry is.
    pub fn apply(&mut self, runs: &[Run], dedupe: &[(u64, u64)]) -> Moved {
        let applied = self.last_version();
        let runs: Vec<Run> = runs
            .iter()
            .copied()
            .filter(|run| run.last_version > applied)
            .collect();
        let Some(first_new) = runs.first().map(|run| run.first_position) else {
            return Moved::default();
        };
        let dedupe = dedupe
            .iter()
            .copied()
            .filter(|(_, position)| *position >= first_new);
        match self {
            StreamHead::Indexed { last_version, .. } => {
                *last_version = runs.last().map_or(*last_version, |run| run.last_version);
                Moved {
                    runs,
                    dedupe: dedupe.collect(),
                }
            }
            StreamHead::Inline(head) => {
                for run in &runs {
                    if head.last_position() != Some(run.first_position.wrapping_sub(1)) {
                        head.runs.push((run.first_version, run.first_position));
                    }
                    head.last_version = run.last_version;
                }
                head.dedupe.extend(dedupe);
                if head.runs.len() <= INLINE_RUNS && head.dedupe.len() <= INLINE_DEDUPE {
                    return Moved::default();
                }
                let moved = Moved {
                    runs: head.runs(),
                    dedupe: std::mem::take(&mut head.dedupe),
                };
                *self = StreamHead::Indexed {
                    last_version: head.last_version,
                    legacy: false,
                };
                moved
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            StreamHead::Inline(head) => {
                let mut out = Vec::with_capacity(11 + 16 * (head.runs.len() + head.dedupe.len()));
                out.push(INLINE);
                out.extend_from_slice(&head.last_version.to_be_bytes());
                for list in [&head.runs, &head.dedupe] {
                    // Both lists stay at or below their bound (far below 256) once applied.
                    out.push(list.len() as u8);
                    for (a, b) in list {
                        out.extend_from_slice(&a.to_be_bytes());
                        out.extend_from_slice(&b.to_be_bytes());
                    }
                }
                out
            }
            StreamHead::Indexed {
                last_version,
                legacy,
            } => {
                let mut out = Vec::with_capacity(10);
                out.push(INDEXED);
                out.extend_from_slice(&last_version.to_be_bytes());
                out.push(u8::from(*legacy));
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<StreamHead, StoreError> {
        let corrupt = || StoreError::Corrupt {
            position: 0,
            reason: format!("a stream head entry of {} bytes is unreadable", bytes.len()),
        };
        let mut reader = Reader { bytes, at: 0 };
        let kind = reader.byte().ok_or_else(corrupt)?;
        let last_version = reader.u64().ok_or_else(corrupt)?;
        let head = match kind {
            INLINE => {
                let mut lists = [Vec::new(), Vec::new()];
                for list in &mut lists {
                    let count = reader.byte().ok_or_else(corrupt)?;
                    for _ in 0..count {
                        let pair = reader.u64().zip(reader.u64()).ok_or_else(corrupt)?;
                        list.push(pair);
                    }
                }
                let [runs, dedupe] = lists;
                StreamHead::Inline(InlineHead {
                    last_version,
                    runs,
                    dedupe,
                })
            }
            INDEXED => StreamHead::Indexed {
                last_version,
                legacy: reader.byte().ok_or_else(corrupt)? != 0,
            },
            _ => return Err(corrupt()),
        };
        if reader.at != bytes.len() {
            return Err(corrupt());
        }
        if let StreamHead::Inline(inline) = &head {
            if !inline.is_consistent() {
                return Err(corrupt());
            }
        }
        Ok(head)
    }
}

impl InlineHead {
    /// The runs with their last versions.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = Vec::with_capacity(self.runs.len());
        for (index, &(first_version, first_position)) in self.runs.iter().enumerate() {
            let last_version = match self.runs.get(index + 1) {
                Some(&(next, _)) => next - 1,
                None => self.last_version,
            };
            runs.push(Run {
                first_version,
                last_version,
                first_position,
            });
        }
        runs
    }

    /// The position of the stream's last event.
    fn last_position(&self) -> Option<u64> {
        let &(first_version, first_position) = self.runs.last()?;
        Some(first_position + (self.last_version - first_version))
    }

    /// Versions start at 1 and go up run after run, every run holds at least one version.
    fn is_consistent(&self) -> bool {
        let starts_at_one = self.runs.first().is_none_or(|&(first, _)| first == 1);
        let ordered = self.runs.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let ends = self
            .runs
            .last()
            .map_or(self.last_version == 0, |&(first, _)| {
                first <= self.last_version
            });
        starts_at_one && ordered && ends
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn u64(&mut self) -> Option<u64> {
        let slice = self.bytes.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(u64::from_be_bytes(slice.try_into().ok()?))
    }
}

/// The entries of recently written streams, kept by the writer (their only writer, so they
/// stay exact) in two generations of at most `generation` entries each: when the young one is
/// full it becomes the old one and the old one is dropped. A payment's webhooks come close
/// together, so a small cache holds the streams being written; dropping a few thousand entries
/// at a time keeps the writer from stalling (emptying a cache of 65,536 entries took it about
/// 10 ms, a pause every append queued behind it waited out).
#[derive(Debug)]
pub(crate) struct HeadCache {
    young: HashMap<StreamId, StreamHead>,
    old: HashMap<StreamId, StreamHead>,
    generation: usize,
}

impl HeadCache {
    pub fn new(generation: usize) -> HeadCache {
        HeadCache {
            young: HashMap::new(),
            old: HashMap::new(),
            generation: generation.max(1),
        }
    }

    pub fn get(&self, stream: &StreamId) -> Option<&StreamHead> {
        self.young.get(stream).or_else(|| self.old.get(stream))
    }

    pub fn take(&mut self, stream: &StreamId) -> Option<StreamHead> {
        let young = self.young.remove(stream);
        let old = self.old.remove(stream);
        young.or(old)
    }

    pub fn put(&mut self, stream: StreamId, head: StreamHead) {
        if self.young.len() >= self.generation && !self.young.contains_key(&stream) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(stream, head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_two_generations_and_the_newest_entry() {
        let stream = |n: u32| StreamId::new(format!("s{n}"));
        let head = |version: u64| StreamHead::Indexed {
            last_version: version,
            legacy: false,
        };
        let mut cache = HeadCache::new(2);
        cache.put(stream(1), head(1));
        cache.put(stream(2), head(2));
        // The young generation is full: it becomes the old one.
        cache.put(stream(3), head(3));
        assert_eq!(cache.get(&stream(1)), Some(&head(1)));
        // Taking an entry from the old generation and putting it back moves it to the young.
        let taken = cache.take(&stream(1)).unwrap();
        assert_eq!(cache.get(&stream(1)), None);
        cache.put(stream(1), taken);
        cache.put(stream(4), head(4));
        // s2 was only in the old generation, which is gone now.
        assert_eq!(cache.get(&stream(2)), None);
        assert_eq!(cache.get(&stream(1)), Some(&head(1)));
        assert_eq!(cache.get(&stream(3)), Some(&head(3)));
        assert_eq!(cache.get(&stream(4)), Some(&head(4)));
        // Replacing an entry never drops a generation.
        cache.put(stream(4), head(5));
        assert_eq!(cache.get(&stream(1)), Some(&head(1)));
        assert_eq!(cache.get(&stream(4)), Some(&head(5)));
    }

    fn run(first_version: u64, last_version: u64, first_position: u64) -> Run {
        Run {
            first_version,
            last_version,
            first_position,
        }
    }

    #[test]
    fn a_short_stream_keeps_its_runs_and_hashes_in_its_entry() {
        let mut head = StreamHead::empty();
        let moved = head.apply(&[run(1, 2, 10)], &[(7, 11)]);
        assert_eq!(moved, Moved::default());
        let moved = head.apply(&[run(3, 4, 40)], &[(8, 41)]);
        assert_eq!(moved, Moved::default());
        let StreamHead::Inline(inline) = &head else {
            panic!("{head:?}")
        };
        assert_eq!(inline.runs(), vec![run(1, 2, 10), run(3, 4, 40)]);
        assert_eq!(inline.dedupe, vec![(7, 11), (8, 41)]);
        assert_eq!(StreamHead::decode(&head.encode()).unwrap(), head);
    }

    #[test]
    fn a_run_that_continues_the_last_one_in_the_log_extends_it() {
        let mut head = StreamHead::empty();
        head.apply(&[run(1, 2, 10)], &[]);
        head.apply(&[run(3, 3, 12)], &[]);
        let StreamHead::Inline(inline) = &head else {
            panic!("{head:?}")
        };
        assert_eq!(inline.runs(), vec![run(1, 3, 10)]);
    }

    #[test]
    fn applying_a_batch_again_changes_nothing() {
        let mut head = StreamHead::empty();
        head.apply(&[run(1, 2, 10)], &[(7, 11)]);
        let before = head.clone();
        assert_eq!(head.apply(&[run(1, 2, 10)], &[(7, 11)]), Moved::default());
        assert_eq!(head, before);
    }

    #[test]
    fn a_stream_past_either_bound_moves_everything_to_the_index_trees() {
        let mut head = StreamHead::empty();
        let mut expected_runs = Vec::new();
        for version in 1..=INLINE_RUNS as u64 {
            let position = version * 100;
            assert_eq!(
                head.apply(&[run(version, version, position)], &[]),
                Moved::default()
            );
            expected_runs.push(run(version, version, position));
        }
        let next = INLINE_RUNS as u64 + 1;
        expected_runs.push(run(next, next, 5000));
        let moved = head.apply(&[run(next, next, 5000)], &[(3, 5000)]);
        assert_eq!(moved.runs, expected_runs);
        assert_eq!(moved.dedupe, vec![(3, 5000)]);
        assert_eq!(
            head,
            StreamHead::Indexed {
                last_version: next,
                legacy: false
            }
        );
        // From then on every new entry goes to the index trees.
        let moved = head.apply(&[run(next + 1, next + 2, 6000)], &[(4, 6001)]);
        assert_eq!(moved.runs, vec![run(next + 1, next + 2, 6000)]);
        assert_eq!(moved.dedupe, vec![(4, 6001)]);
        assert_eq!(head.last_version(), next + 2);
        assert_eq!(StreamHead::decode(&head.encode()).unwrap(), head);

        let mut keyed = StreamHead::empty();
        let hashes: Vec<(u64, u64)> = (1..=INLINE_DEDUPE as u64 + 1).map(|n| (n, n)).collect();
        let moved = keyed.apply(&[run(1, hashes.len() as u64, 1)], &hashes);
        assert_eq!(moved.dedupe, hashes);
        assert_eq!(moved.runs, vec![run(1, hashes.len() as u64, 1)]);
    }

    #[test]
    fn damaged_entries_are_refused() {
        let mut head = StreamHead::empty();
        head.apply(&[run(1, 2, 10), run(3, 3, 20)], &[(7, 11)]);
        let bytes = head.encode();
        for cut in 0..bytes.len() {
            assert!(StreamHead::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(StreamHead::decode(&longer).is_err());
        let mut unknown = bytes.clone();
        unknown[0] = 9;
        assert!(StreamHead::decode(&unknown).is_err());
        // Runs out of version order.
        let mut disordered = bytes;
        disordered[10..18].copy_from_slice(&5u64.to_be_bytes());
        assert!(StreamHead::decode(&disordered).is_err());
    }

    #[test]
    fn dedupe_hashes_are_stable() {
        // Stored hashes must keep matching: the first 8 bytes of SHA-256("delivery-1").
        assert_eq!(dedupe_hash("delivery-1"), 0x0b22_0df1_9691_1513);
        assert_ne!(dedupe_hash("delivery-1"), dedupe_hash("delivery-2"));
    }
}
