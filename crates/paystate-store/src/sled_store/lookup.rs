//! Reading a stream's runs and finding a dedupe key, from its `stream_heads` entry or the index
//! trees it points to. Used by the writer (which sees everything written) and by readers
//! (which stop at the durable head).

use super::chunk::for_each_record;
use super::layout::{
    be_u64, dedupe_hash_key, storage_error, stream_index_key, stream_prefix, Run, Trees,
};
use super::stream_heads::{dedupe_hash, StreamHead};
use crate::codec::decode_record_ref;
use crate::error::StoreError;
use crate::types::{Position, StreamId, StreamVersion};
use std::path::Path;

/// The stream's runs holding versions after `after`, in version order. An indexed stream's
/// runs are read as the caller goes, so a page of a long stream reads only what it returns.
pub(crate) fn runs_after<'a>(
    trees: &'a Trees,
    path: &'a Path,
    stream: &StreamId,
    head: &StreamHead,
    after: u64,
) -> Box<dyn Iterator<Item = Result<Run, StoreError>> + 'a> {
    if let StreamHead::Inline(inline) = head {
        let mut runs = inline.runs();
        runs.retain(|run| run.last_version > after);
        return Box::new(runs.into_iter().map(Ok));
    }
    let prefix_len = stream_prefix(stream).len();
    let range = stream_index_key(stream, StreamVersion(after.saturating_add(1)))
        ..=stream_index_key(stream, StreamVersion(u64::MAX));
    Box::new(trees.stream_index.range(range).map(move |entry| {
        let (key, value) = entry.map_err(|e| storage_error(path, e))?;
        Run::parse(prefix_len, &key, &value)
    }))
}

/// The stream's version counting only runs that start at or below `within`.
pub(crate) fn version_within(
    trees: &Trees,
    path: &Path,
    stream: &StreamId,
    head: &StreamHead,
    within: Position,
) -> Result<StreamVersion, StoreError> {
    let last = |run: Option<&Run>| StreamVersion(run.map_or(0, |run| run.last_version));
    if let StreamHead::Inline(inline) = head {
        let runs = inline.runs();
        return Ok(last(
            runs.iter().rev().find(|run| run.first_position <= within.0),
        ));
    }
    let prefix_len = stream_prefix(stream).len();
    let range = stream_index_key(stream, StreamVersion(0))
        ..=stream_index_key(stream, StreamVersion(u64::MAX));
    // From the last run back: only the newest can belong to a commit still being synced.
    for entry in trees.stream_index.range(range).rev() {
        let (key, value) = entry.map_err(|e| storage_error(path, e))?;
        let run = Run::parse(prefix_len, &key, &value)?;
        if run.first_position <= within.0 {
            return Ok(last(Some(&run)));
        }
    }
    Ok(StreamVersion(0))
}

/// The position of the event of `stream` that took `key`, among those at or below `within`.
pub(crate) fn dedupe_position(
    trees: &Trees,
    path: &Path,
    stream: &StreamId,
    head: &StreamHead,
    key: &str,
    within: Position,
) -> Result<Option<Position>, StoreError> {
    let storage = |error| storage_error(path, error);
    let hash = dedupe_hash(key);
    let mut candidates = Vec::new();
    match head {
        StreamHead::Inline(inline) => candidates.extend(
            inline
                .dedupe
                .iter()
                .filter(|(stored, _)| *stored == hash)
                .map(|(_, position)| *position),
        ),
        StreamHead::Indexed { legacy, .. } => {
            let hash_key = dedupe_hash_key(stream, hash);
            if let Some(positions) = trees.dedupe_hashes.get(&hash_key).map_err(storage)? {
                if positions.is_empty() || positions.len() % 8 != 0 {
                    return Err(StoreError::Corrupt {
                        position: 0,
                        reason: format!("a dedupe hash entry is {} bytes long", positions.len()),
                    });
                }
                for index in 0..positions.len() / 8 {
                    candidates.push(be_u64(&positions, index, "a dedupe hash entry")?);
                }
            }
            if *legacy {
                if let Some(value) = trees.dedupe.get(key.as_bytes()).map_err(storage)? {
                    candidates.push(be_u64(&value, 0, "a dedupe entry")?);
                }
            }
        }
    }
    for position in candidates {
        if position <= within.0 && holds_key(trees, path, position, stream, key)? {
            return Ok(Some(Position(position)));
        }
    }
    Ok(None)
}

/// Whether the event at `position` belongs to `stream` and took `key`: a hash names only
/// candidates, and a format 3 dedupe entry may belong to another stream.
fn holds_key(
    trees: &Trees,
    path: &Path,
    position: u64,
    stream: &StreamId,
    key: &str,
) -> Result<bool, StoreError> {
    let mut holds = false;
    for_each_record(
        &trees.events,
        path,
        Position(position),
        Position(position),
        |at, bytes| {
            let envelope = decode_record_ref(at, bytes)?;
            holds = envelope.stream == stream.as_str() && envelope.dedupe_key == Some(key);
            Ok(false)
        },
    )?;
    Ok(holds)
}
