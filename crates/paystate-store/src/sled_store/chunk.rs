//! Chunks: the consecutive records of one group commit, stored as one sled value.
//!
//! sled pays per key on both paths (a write copies the tree node it lands in; an iterator step
//! re-validates its position), so records are grouped. A chunk is keyed by the big-endian
//! position of its LAST record, so the chunk that holds position `p` is the first key `>= p`
//! and every lookup is a forward seek.
//!
//! Layout: tag `CHUNK_TAG_V1`, first position u64 BE, record count u32 BE, then per record
//! its length u32 BE and its bytes (see `codec`). A chunk holds whole appends (an import
//! may spread over several chunks), so each chunk can be written with one atomic insert.

use super::layout::{be_u64, position_key, storage_error};
use crate::codec::encode_record_into;
use crate::error::StoreError;
use crate::sequencer::Unit;
use crate::types::{Envelope, Position};
use std::path::Path;

const CHUNK_TAG_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4;

/// Records are packed into one chunk up to this size (a single larger record gets a chunk of
/// its own). sled keeps values inline in its leaf nodes, splits a leaf above 16 entries and
/// writes a node larger than 128 KiB (a quarter of its 512 KiB segment) to a separate blob
/// file; 17 chunks of 6 KiB stay below that.
pub(crate) const MAX_CHUNK_BYTES: usize = 6 * 1024;

/// Encodes a batch's envelopes as chunks; returns (last position, chunk) pairs.
///
/// Each record is encoded straight into the chunk it goes to, after a length placeholder. A
/// chunk that grows past [`MAX_CHUNK_BYTES`] is cut at the latest place it may be cut that
/// leaves records before it: the start of the current append (an append is never split, so
/// each chunk is a whole number of appends and can be written with an atomic insert of its
/// own), or, inside an import, the start of the current record. A single append larger than
/// the limit makes a chunk of its own.
pub(crate) fn encode_chunks(
    envelopes: &[Envelope],
    units: &[Unit],
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut chunks = Vec::new();
    let mut current: Option<OpenChunk> = None;
    let mut start = 0;
    for unit in units {
        let records = envelopes.get(start..unit.end).ok_or_else(|| {
            StoreError::Invalid(format!(
                "a batch unit ends at {} of {}",
                unit.end,
                envelopes.len()
            ))
        })?;
        start = unit.end;
        for (index, envelope) in records.iter().enumerate() {
            let chunk = current.get_or_insert_with(|| OpenChunk::new(envelope.position.0));
            if index == 0 || unit.import {
                chunk.mark_cut(envelope.position.0);
            }
            chunk.push(envelope)?;
            if chunk.bytes.len() > MAX_CHUNK_BYTES {
                if let Some(full) = chunk.cut() {
                    chunks.push(full);
                }
            }
        }
    }
    if let Some(chunk) = current {
        chunks.push(chunk.finish());
    }
    Ok(chunks)
}

/// A chunk being filled.
struct OpenChunk {
    first: u64,
    count: u32,
    bytes: Vec<u8>,
    /// The latest place the chunk may be cut: (byte offset, records before it, position of
    /// the record after it).
    cut: (usize, u32, u64),
}

impl OpenChunk {
    fn new(first: u64) -> OpenChunk {
        let mut bytes = Vec::with_capacity(MAX_CHUNK_BYTES + 1024);
        bytes.push(CHUNK_TAG_V1);
        bytes.extend_from_slice(&first.to_be_bytes());
        bytes.extend_from_slice(&[0; 4]);
        OpenChunk {
            first,
            count: 0,
            bytes,
            cut: (HEADER_LEN, 0, first),
        }
    }

    /// Records that the chunk may be cut before the record at `position`, about to be pushed.
    fn mark_cut(&mut self, position: u64) {
        self.cut = (self.bytes.len(), self.count, position);
    }

    fn push(&mut self, envelope: &Envelope) -> Result<(), StoreError> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        encode_record_into(envelope, &mut self.bytes)?;
        let record_len = u32::try_from(self.bytes.len() - start - 4).map_err(|_| {
            StoreError::Invalid(format!("event at {} is too large", envelope.position))
        })?;
        self.bytes[start..start + 4].copy_from_slice(&record_len.to_be_bytes());
        self.count += 1;
        Ok(())
    }

    /// Cuts the chunk at its cut mark, if records precede it: returns the full part and keeps
    /// the rest open as a new chunk.
    fn cut(&mut self) -> Option<(u64, Vec<u8>)> {
        let (offset, before, next_first) = self.cut;
        if before == 0 {
            return None;
        }
        let rest = self.bytes.split_off(offset);
        let after = self.count - before;
        let mut next = OpenChunk::new(next_first);
        next.bytes.extend_from_slice(&rest);
        next.count = after;
        let full = std::mem::replace(self, next);
        Some(
            OpenChunk {
                count: before,
                ..full
            }
            .finish(),
        )
    }

    fn finish(mut self) -> (u64, Vec<u8>) {
        self.bytes[9..13].copy_from_slice(&self.count.to_be_bytes());
        (self.first + u64::from(self.count) - 1, self.bytes)
    }
}

/// A stored chunk, checked against the key it was found under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk<'a> {
    pub first: u64,
    pub last: u64,
    body: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// Parses the header of the chunk stored under `last` (its last position).
    pub fn parse(last: u64, bytes: &'a [u8]) -> Result<Chunk<'a>, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            position: last,
            reason: format!("chunk ending at {last}: {reason}"),
        };
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or_else(|| corrupt("truncated header"))?;
        if header[0] != CHUNK_TAG_V1 {
            return Err(corrupt("unknown chunk tag"));
        }
        let first = u64::from_be_bytes(header[1..9].try_into().map_err(|_| corrupt("header"))?);
        let count = u32::from_be_bytes(header[9..13].try_into().map_err(|_| corrupt("header"))?);
        if count == 0 || first.checked_add(u64::from(count) - 1) != Some(last) {
            return Err(corrupt("header does not match its key"));
        }
        Ok(Chunk {
            first,
            last,
            body: &bytes[HEADER_LEN..],
        })
    }

    /// The records in position order, each with its position. A framing error ends the
    /// iteration with an error naming the first position that could not be read.
    pub fn records(&self) -> Records<'a> {
        Records {
            next: self.first,
            last: self.last,
            rest: self.body,
        }
    }
}

/// How many bytes of chunks one sled range reads before [`for_each_record`] opens a new one.
///
/// sled 0.34 applies an access to a page against its cache bound only once the page's shard
/// (one of 256) has queued 64 accesses, and a range touches each leaf page once: it keeps the
/// leaf it is reading. A long scan through one range therefore kept nearly every page it read,
/// whatever the cache capacity: a rebuild of a 980,000-event log (730 MB of chunks) peaked at
/// 730 MB. A new range descends the tree again, an access to every page on its way, so the
/// shards fill and evict as the scan goes: the same rebuild peaks at about 350 MB, and is no
/// slower (the kernel hands out fewer fresh pages).
const BYTES_PER_RANGE: usize = 12 * 1024;

/// Calls `visit` with every record stored in `events` from position `from` to `to` in order,
/// until it returns `false`. A missing or unreadable record is `Corrupt` naming its position.
pub(crate) fn for_each_record(
    events: &sled::Tree,
    path: &Path,
    from: Position,
    to: Position,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut expected = from.0;
    while expected <= to.0 {
        let mut read = 0;
        // Chunks are keyed by their last position: the first key >= `expected` holds it.
        for entry in events.range(position_key(Position(expected))..) {
            let (key, value) = entry.map_err(|e| storage_error(path, e))?;
            let chunk = be_u64(&key, 0, "a chunk key")
                .and_then(|last| Chunk::parse(last, &value))
                .map_err(|error| StoreError::Corrupt {
                    position: expected,
                    reason: error.to_string(),
                })?;
            if chunk.first > expected {
                return Err(StoreError::Corrupt {
                    position: expected,
                    reason: "missing from the log".into(),
                });
            }
            for record in chunk.records() {
                let (position, bytes) = record?;
                if position < expected {
                    continue;
                }
                if position > to.0 || !visit(position, bytes)? {
                    return Ok(());
                }
                expected = position + 1;
            }
            if expected > to.0 {
                // Done: the chunk after `to` is not read (nor, if damaged, reported).
                return Ok(());
            }
            read += value.len();
            if read >= BYTES_PER_RANGE {
                break;
            }
        }
        if read < BYTES_PER_RANGE && expected <= to.0 {
            // The range ended before `to`.
            return Err(StoreError::Corrupt {
                position: expected,
                reason: "missing from the log".into(),
            });
        }
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct Records<'a> {
    next: u64,
    last: u64,
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u64, &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.last {
            return None;
        }
        let position = self.next;
        let framed = self
            .rest
            .get(..4)
            .and_then(|len| <[u8; 4]>::try_from(len).ok())
            .map(|len| u32::from_be_bytes(len) as usize)
            .and_then(|len| Some((self.rest.get(4..4 + len)?, len)));
        match framed {
            Some((record, len)) => {
                self.rest = &self.rest[4 + len..];
                self.next += 1;
                Some(Ok((position, record)))
            }
            None => {
                self.next = self.last + 1;
                Some(Err(StoreError::Corrupt {
                    position,
                    reason: "the record's framing is truncated".into(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_record;
    use crate::sled_store::test_envelopes::envelope;

    /// Every envelope an append of its own.
    fn one_per_append(envelopes: &[Envelope]) -> Vec<Unit> {
        (1..=envelopes.len())
            .map(|end| Unit { end, import: false })
            .collect()
    }

    /// The (first, last) positions of each chunk.
    fn spans(chunks: &[(u64, Vec<u8>)]) -> Vec<(u64, u64)> {
        chunks
            .iter()
            .map(|(last, bytes)| {
                let chunk = Chunk::parse(*last, bytes).unwrap();
                (chunk.first, chunk.last)
            })
            .collect()
    }

    /// A temporary sled tree holding `envelopes` in chunks, as the writer stores them.
    fn stored(envelopes: &[Envelope]) -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("events").unwrap();
        for (last, bytes) in encode_chunks(envelopes, &one_per_append(envelopes)).unwrap() {
            tree.insert(last.to_be_bytes(), bytes).unwrap();
        }
        (db, tree)
    }

    /// The positions `for_each_record` visits from `from` to `to`, stopping after `stop_at`.
    fn visited(
        tree: &sled::Tree,
        from: u64,
        to: u64,
        stop_at: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut positions = Vec::new();
        for_each_record(
            tree,
            Path::new("test"),
            Position(from),
            Position(to),
            |position, bytes| {
                assert_eq!(decode_record(position, bytes)?.position.0, position);
                positions.push(position);
                Ok(position < stop_at)
            },
        )?;
        Ok(positions)
    }

    #[test]
    fn a_scan_through_many_ranges_visits_every_record_once_in_order() {
        // Records of about 1 KiB: a few per chunk, and a new range every two or three chunks.
        let envelopes: Vec<Envelope> = (1..=300).map(|p| envelope(p, 1000)).collect();
        let (_db, tree) = stored(&envelopes);
        let stored_bytes: usize = tree.iter().values().map(|value| value.unwrap().len()).sum();
        assert!(stored_bytes > 20 * BYTES_PER_RANGE);
        for (from, to) in [
            (1, 300),
            (2, 300),
            (7, 151),
            (150, 150),
            (299, 300),
            (1, 1),
            (301, 300),
        ] {
            assert_eq!(
                visited(&tree, from, to, u64::MAX).unwrap(),
                (from..=to).collect::<Vec<_>>(),
                "from {from} to {to}"
            );
        }
        assert_eq!(
            visited(&tree, 3, 300, 200).unwrap(),
            (3..=200).collect::<Vec<_>>(),
            "a visit that answers false ends the scan"
        );
    }

    #[test]
    fn any_missing_chunk_is_named_wherever_it_falls_among_the_ranges() {
        let envelopes: Vec<Envelope> = (1..=300).map(|p| envelope(p, 1000)).collect();
        let keys: Vec<u64> = stored(&envelopes)
            .1
            .iter()
            .keys()
            .map(|key| be_u64(&key.unwrap(), 0, "key").unwrap())
            .collect();
        assert!(keys.len() > 20, "{} chunks", keys.len());
        // Each chunk removed in turn: a read of the whole log, and one that starts after a
        // chunk that is still there, stop at the missing chunk's first position, after
        // visiting everything before it.
        for (index, missing) in keys.iter().enumerate() {
            let (_db, tree) = stored(&envelopes);
            let stored_chunk = tree.get(missing.to_be_bytes()).unwrap().unwrap();
            let first = Chunk::parse(*missing, &stored_chunk).unwrap().first;
            tree.remove(missing.to_be_bytes()).unwrap();
            let from = if index > 0 { keys[index - 1] } else { 1 };
            for from in [1, from] {
                let mut seen = Vec::new();
                let error = for_each_record(
                    &tree,
                    Path::new("test"),
                    Position(from),
                    Position(300),
                    |p, _| {
                        seen.push(p);
                        Ok(true)
                    },
                )
                .unwrap_err();
                assert!(
                    matches!(&error, StoreError::Corrupt { position, .. } if *position == first),
                    "chunk ending at {missing}, from {from}: {error:?}"
                );
                let expected: Vec<u64> = (from..first).collect();
                assert_eq!(seen, expected, "chunk ending at {missing}, from {from}");
            }
        }
    }

    #[test]
    fn chunks_split_by_size_and_round_trip() {
        let envelopes: Vec<Envelope> = (5..205).map(|p| envelope(p, 700)).collect();
        let chunks = encode_chunks(&envelopes, &one_per_append(&envelopes)).unwrap();
        assert!(chunks.len() > 1);
        let mut decoded = Vec::new();
        for (last, bytes) in &chunks {
            assert!(bytes.len() <= MAX_CHUNK_BYTES);
            for record in Chunk::parse(*last, bytes).unwrap().records() {
                let (position, bytes) = record.unwrap();
                decoded.push(decode_record(position, bytes).unwrap());
            }
        }
        assert_eq!(decoded, envelopes);
    }

    #[test]
    fn an_oversized_record_gets_its_own_chunk() {
        let envelopes = vec![
            envelope(1, 10),
            envelope(2, MAX_CHUNK_BYTES * 2),
            envelope(3, 10),
        ];
        let chunks = encode_chunks(&envelopes, &one_per_append(&envelopes)).unwrap();
        assert_eq!(spans(&chunks), vec![(1, 1), (2, 2), (3, 3)]);
    }

    #[test]
    fn an_append_is_never_split_across_chunks() {
        // Appends of three records of 1 KiB: a chunk of 6 KiB takes one whole append and
        // part of the next by size, so every cut has to move back to an append's start.
        let envelopes: Vec<Envelope> = (1..=30).map(|p| envelope(p, 1024)).collect();
        let units: Vec<Unit> = (1..=10)
            .map(|n| Unit {
                end: n * 3,
                import: false,
            })
            .collect();
        let chunks = encode_chunks(&envelopes, &units).unwrap();
        let spans = spans(&chunks);
        assert!(spans.len() > 1, "{spans:?}");
        for (first, last) in &spans {
            assert_eq!(
                (first - 1) % 3,
                0,
                "a chunk starts inside an append: {spans:?}"
            );
            assert_eq!(last % 3, 0, "a chunk ends inside an append: {spans:?}");
        }
        assert_eq!(spans.first().unwrap().0, 1);
        assert_eq!(spans.last().unwrap().1, 30);
    }

    #[test]
    fn an_append_larger_than_a_chunk_stays_whole() {
        let envelopes: Vec<Envelope> = (1..=12).map(|p| envelope(p, 1024)).collect();
        let units = [
            Unit {
                end: 1,
                import: false,
            },
            Unit {
                end: 11,
                import: false,
            },
            Unit {
                end: 12,
                import: false,
            },
        ];
        let chunks = encode_chunks(&envelopes, &units).unwrap();
        assert_eq!(spans(&chunks), vec![(1, 1), (2, 11), (12, 12)]);
    }

    #[test]
    fn an_import_is_cut_between_any_two_records() {
        let envelopes: Vec<Envelope> = (1..=30).map(|p| envelope(p, 1024)).collect();
        let units = [Unit {
            end: 30,
            import: true,
        }];
        let chunks = encode_chunks(&envelopes, &units).unwrap();
        let spans = spans(&chunks);
        assert!(spans.len() >= 5, "{spans:?}");
        for ((_, last), (first, _)) in spans.iter().zip(spans.iter().skip(1)) {
            assert_eq!(last + 1, *first);
        }
        for (last, bytes) in &chunks {
            assert!(bytes.len() <= MAX_CHUNK_BYTES, "chunk ending at {last}");
        }
    }

    #[test]
    fn damaged_framing_is_an_error_not_a_panic() {
        let envelopes = [envelope(1, 10), envelope(2, 10)];
        let (last, bytes) = encode_chunks(&envelopes, &one_per_append(&envelopes))
            .unwrap()
            .remove(0);
        assert!(Chunk::parse(last + 1, &bytes).is_err());
        for len in 0..bytes.len() {
            if let Ok(chunk) = Chunk::parse(last, &bytes[..len]) {
                assert!(chunk.records().any(|r| r.is_err()), "prefix {len}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever the chunk layout (records of 1 byte to 3 KB, so chunks of one record to
        /// many, and a new sled range every 12 KiB) and whatever `from`, `to` and stopping
        /// point: the records visited are exactly `from` onwards, in order, each once, up to
        /// `to` or the stop; a `to` past the end is `Corrupt` at the first missing position.
        #[test]
        fn any_read_of_any_layout_visits_each_record_once_in_order(
            sizes in proptest::collection::vec(1usize..3_000, 1..120),
            from in 1u64..130,
            to in 0u64..130,
            stop in 1u64..140,
        ) {
            let envelopes: Vec<Envelope> = sizes
                .iter()
                .zip(1u64..)
                .map(|(&size, position)| envelope(position, size))
                .collect();
            let last = envelopes.len() as u64;
            let (_db, tree) = stored(&envelopes);
            let mut seen = Vec::new();
            let result = for_each_record(&tree, Path::new("test"), Position(from), Position(to), |position, bytes| {
                assert_eq!(decode_record(position, bytes)?.position.0, position);
                seen.push(position);
                Ok(position < stop)
            });
            let upper = to.min(last);
            let stopped_at = from.max(stop);
            let (expected, error_at) = if from > to {
                (Vec::new(), None)
            } else if stopped_at <= upper {
                ((from..=stopped_at).collect(), None)
            } else if to <= last {
                ((from..=upper).collect(), None)
            } else {
                ((from..=upper).collect(), Some(from.max(last + 1)))
            };
            proptest::prop_assert_eq!(&seen, &expected);
            match (result, error_at) {
                (Ok(()), None) => {}
                (Err(StoreError::Corrupt { position, .. }), Some(at)) => proptest::prop_assert_eq!(position, at),
                (other, _) => proptest::prop_assert!(false, "{other:?}, expected an error at {error_at:?}"),
            }
        }

    }

    proptest::proptest! {
        /// Whatever bytes sit under whatever key, reading them is an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(last in 0u64..1_000, bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(chunk) = Chunk::parse(last, &bytes) {
                for (position, record) in chunk.records().flatten() {
                    let _ = decode_record(position, record);
                }
            }
        }

        /// Flipping any byte of a stored chunk is either still readable or reported, never a
        /// panic; when it is readable, the hash chain is what catches it.
        #[test]
        fn flipped_bytes_never_panic(index in 0usize..2_000, mask in 1u8..=255) {
            let envelopes = [envelope(1, 40), envelope(2, 40)];
            let (last, mut bytes) = encode_chunks(&envelopes, &one_per_append(&envelopes)).unwrap().remove(0);
            let index = index % bytes.len();
            bytes[index] ^= mask;
            if let Ok(chunk) = Chunk::parse(last, &bytes) {
                for (position, record) in chunk.records().flatten() {
                    let _ = decode_record(position, record);
                }
            }
        }
    }
}
