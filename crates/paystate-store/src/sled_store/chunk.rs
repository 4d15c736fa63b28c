//! Chunks: the consecutive records of one group commit, stored as one sled value.
//!
//! sled pays per key on both paths (a write copies the tree node it lands in; an iterator step
//! re-validates its position), so records are grouped. A chunk is keyed by the big-endian
//! position of its LAST record, so the chunk that holds position `p` is the first key `>= p`
//! and every lookup is a forward seek.
//!
//! Layout: tag `CHUNK_TAG_V1`, first position u64 BE, record count u32 BE, then per record
//! its length u32 BE and its bytes (see `codec`). A chunk never spans two commits, so a
//! commit's chunks are all durable or none are.

use super::layout::{be_u64, position_key, storage_error};
use crate::codec::encode_record_into;
use crate::error::StoreError;
use crate::types::{Envelope, Position};
use std::path::Path;

const CHUNK_TAG_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4;

/// Records are packed into one chunk up to this size (a single larger record gets a chunk of
/// its own). sled keeps values inline in its leaf nodes, splits a leaf above 16 entries and
/// writes a node larger than 128 KiB (a quarter of its 512 KiB segment) to a separate blob
/// file; 17 chunks of 6 KiB stay below that.
pub(crate) const MAX_CHUNK_BYTES: usize = 6 * 1024;

/// Encodes consecutive envelopes as chunks; returns (last position, chunk) pairs.
///
/// Each record is encoded straight into the chunk it goes to, after a length placeholder.
/// When it overflows a chunk that already holds records, it moves to a new chunk.
pub(crate) fn encode_chunks(envelopes: &[Envelope]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let mut chunks = Vec::new();
    // (first position, record count, bytes)
    let mut current: Option<(u64, u32, Vec<u8>)> = None;
    for envelope in envelopes {
        let (first, count, bytes) = current.get_or_insert_with(|| new_chunk(envelope.position.0));
        let start = bytes.len();
        bytes.extend_from_slice(&[0; 4]);
        encode_record_into(envelope, bytes)?;
        let record_len = u32::try_from(bytes.len() - start - 4).map_err(|_| {
            StoreError::Invalid(format!("event at {} is too large", envelope.position))
        })?;
        bytes[start..start + 4].copy_from_slice(&record_len.to_be_bytes());
        if bytes.len() > MAX_CHUNK_BYTES && *count > 0 {
            let record = bytes.split_off(start);
            let full = std::mem::replace(bytes, new_chunk(envelope.position.0).2);
            chunks.push(finish(*first, *count, full));
            bytes.extend_from_slice(&record);
            *first = envelope.position.0;
            *count = 0;
        }
        *count += 1;
    }
    if let Some((first, count, bytes)) = current {
        chunks.push(finish(first, count, bytes));
    }
    Ok(chunks)
}

/// An empty chunk whose first record will be at `first`.
fn new_chunk(first: u64) -> (u64, u32, Vec<u8>) {
    let mut bytes = Vec::with_capacity(MAX_CHUNK_BYTES + 1024);
    bytes.push(CHUNK_TAG_V1);
    bytes.extend_from_slice(&first.to_be_bytes());
    bytes.extend_from_slice(&[0; 4]);
    (first, 0, bytes)
}

fn finish(first: u64, count: u32, mut bytes: Vec<u8>) -> (u64, Vec<u8>) {
    bytes[9..13].copy_from_slice(&count.to_be_bytes());
    (first + u64::from(count) - 1, bytes)
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

/// Calls `visit` with every record stored in `events` from position `from` to `to` in order,
/// until it returns `false`. A missing or unreadable record is `Corrupt` naming its position.
pub(crate) fn for_each_record(
    events: &sled::Tree,
    path: &Path,
    from: Position,
    to: Position,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    if from > to {
        return Ok(());
    }
    let mut expected = from.0;
    // Chunks are keyed by their last position: the first key >= `from` holds `from`.
    for entry in events.range(position_key(from)..) {
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
    }
    if expected <= to.0 {
        return Err(StoreError::Corrupt {
            position: expected,
            reason: "missing from the log".into(),
        });
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

    #[test]
    fn chunks_split_by_size_and_round_trip() {
        let envelopes: Vec<Envelope> = (5..205).map(|p| envelope(p, 700)).collect();
        let chunks = encode_chunks(&envelopes).unwrap();
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
        let lasts: Vec<u64> = encode_chunks(&envelopes)
            .unwrap()
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(lasts, vec![1, 2, 3]);
    }

    #[test]
    fn damaged_framing_is_an_error_not_a_panic() {
        let (last, bytes) = encode_chunks(&[envelope(1, 10), envelope(2, 10)])
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
            let (last, mut bytes) = encode_chunks(&[envelope(1, 40), envelope(2, 40)]).unwrap().remove(0);
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
