//! Writing the index entries of a batch (each touched stream's `stream_heads` entry, and for a
//! long stream its `stream_index` and `dedupe_hashes` entries), and completing them after a
//! crash.
//!
//! The writer stores a batch's chunks first (one atomic sled batch), then its index entries,
//! then `indexed_through` = the batch's last position. sled recovers a prefix of its log: a
//! write is recovered only if every write made before it is too. So after a crash every index
//! entry points at an event that is there, and only the last batch of chunks can lack its
//! index entries (those of a batch are written before the next batch's chunks). Opening the
//! store writes them again from the chunks, before any new append is decided.
//!
//! This replaces a sled transaction over the log and index trees: a transaction reads every key it
//! writes (to return the old value) and records read and write sets, which cost about as much
//! as the writes themselves.

use super::chunk::for_each_record;
use super::layout::{
    dedupe_hash_key, indexed_through, run_value, set_indexed_through, storage_error,
    stream_index_key, stream_prefix, upgrade_format, Run, Trees,
};
use super::stream_heads::{dedupe_hash, HeadCache, StreamHead};
use crate::codec::decode_record;
use crate::error::StoreError;
use crate::types::{Envelope, Position, StreamId, StreamVersion};
use std::collections::HashMap;
use std::path::Path;

/// Writes the index entries of consecutive envelopes that are already in the `events` tree,
/// then moves `indexed_through` to the last of them.
///
/// `heads` holds stream entries as stored before this batch (any stream not in it is read
/// from the store); on return it holds the entries of the streams the batch touched as
/// written.
pub(crate) fn write_index_entries(
    trees: &Trees,
    path: &Path,
    envelopes: &[Envelope],
    heads: &mut HeadCache,
) -> Result<(), StoreError> {
    let Some(last) = envelopes.last() else {
        return Ok(());
    };
    let storage = |error| storage_error(path, error);
    for StreamBatch {
        stream,
        runs,
        dedupe,
    } in by_stream(envelopes)
    {
        let mut head = match heads.take(stream) {
            Some(head) => head,
            None => load_head(trees, path, stream)?.unwrap_or_else(StreamHead::empty),
        };
        // An indexed stream's entry is written once, when the stream moves to the index trees:
        // from then on its version is that of its last `stream_index` entry.
        let entry_stays = matches!(head, StreamHead::Indexed { .. });
        let moved = head.apply(&runs, &dedupe);
        // Hashes before runs: after a crash, a run that is there has its hashes (a hash whose
        // run is missing is harmless, every hash is confirmed against its event), so writing
        // the missing entries again may skip every run that is there.
        for &(hash, position) in &moved.dedupe {
            trees
                .dedupe_hashes
                .merge(dedupe_hash_key(stream, hash), position.to_be_bytes())
                .map_err(storage)?;
        }
        for run in &moved.runs {
            trees
                .stream_index
                .insert(
                    stream_index_key(stream, StreamVersion(run.last_version)),
                    &run_value(
                        StreamVersion(run.first_version),
                        Position(run.first_position),
                    ),
                )
                .map_err(storage)?;
        }
        if !entry_stays {
            trees
                .stream_heads
                .insert(stream.as_str().as_bytes(), head.encode())
                .map_err(storage)?;
        }
        heads.put(stream.clone(), head);
    }
    set_indexed_through(&trees.meta, last.position.0).map_err(storage)
}

/// A stream's entry with its current version, as the writer needs it: `None` for a stream
/// with no event. An indexed stream's version is read from its last run.
pub(crate) fn load_head(
    trees: &Trees,
    path: &Path,
    stream: &StreamId,
) -> Result<Option<StreamHead>, StoreError> {
    match stored_head(trees, path, stream)? {
        Some(StreamHead::Indexed {
            last_version,
            legacy,
        }) => {
            let last_run = last_run_version(trees, path, stream)?;
            // A stream of a format 3 store with no run has no event.
            if legacy && last_version == 0 && last_run.is_none() {
                return Ok(None);
            }
            Ok(Some(StreamHead::Indexed {
                last_version: last_run.map_or(last_version, |run| run.max(last_version)),
                legacy,
            }))
        }
        other => Ok(other),
    }
}

/// A stream's entry as stored, for readers, who find an indexed stream's versions in its runs:
/// an indexed entry's `last_version` is the version at which it moved (0 for a stream written
/// before a format 3 store was upgraded, which has no entry), and `None` means no event.
pub(crate) fn stored_head(
    trees: &Trees,
    path: &Path,
    stream: &StreamId,
) -> Result<Option<StreamHead>, StoreError> {
    let stored = trees
        .stream_heads
        .get(stream.as_str().as_bytes())
        .map_err(|error| storage_error(path, error))?
        .map(|bytes| StreamHead::decode(&bytes))
        .transpose()?;
    Ok(match stored {
        None if trees.legacy => Some(StreamHead::Indexed {
            last_version: 0,
            legacy: true,
        }),
        other => other,
    })
}

/// The last version of the stream's last `stream_index` entry.
fn last_run_version(
    trees: &Trees,
    path: &Path,
    stream: &StreamId,
) -> Result<Option<u64>, StoreError> {
    let prefix = stream_prefix(stream);
    let last = trees
        .stream_index
        .get_lt(stream_index_key(stream, StreamVersion(u64::MAX)))
        .map_err(|error| storage_error(path, error))?;
    match last {
        Some((key, value)) if key.starts_with(&prefix) => {
            Ok(Some(Run::parse(prefix.len(), &key, &value)?.last_version))
        }
        _ => Ok(None),
    }
}

/// Brings the indexes up to `head` (the last stored position) when opening: writes the entries
/// of the events after `indexed_through`, and upgrades a format 1 store. Returns why the store
/// must refuse writes, if it must.
pub(crate) fn complete(trees: &Trees, path: &Path, head: Position) -> Result<(), StoreError> {
    let storage = |error| storage_error(path, error);
    let Some(indexed) = indexed_through(&trees.meta, path)? else {
        // Format 1 wrote chunks and index entries in one transaction: all are there.
        return upgrade_format(&trees.meta, head.0).map_err(storage);
    };
    if indexed > head.0 {
        return Err(StoreError::Corrupt {
            position: indexed,
            reason: format!("the indexes reach position {indexed}, the log ends at {head}"),
        });
    }
    if indexed == head.0 {
        return Ok(());
    }
    let mut missing = Vec::new();
    for_each_record(
        &trees.events,
        path,
        Position(indexed).next(),
        head,
        |position, bytes| {
            missing.push(decode_record(position, bytes)?);
            Ok(true)
        },
    )?;
    tracing::info!(
        from = indexed + 1,
        to = head.0,
        "writing the index entries of the last batch, which a crash cut off"
    );
    write_index_entries(trees, path, &missing, &mut HeadCache::new(missing.len()))
}

/// What one batch adds to one stream's index entries.
struct StreamBatch<'e> {
    stream: &'e StreamId,
    /// In version order.
    runs: Vec<Run>,
    /// `(dedupe hash, position)` of each dedupe key.
    dedupe: Vec<(u64, u64)>,
}

/// A batch's runs and dedupe keys, per stream in order of first appearance. A run is a
/// stretch of consecutive envelopes of one stream whose versions and positions both advance
/// by one.
fn by_stream(envelopes: &[Envelope]) -> Vec<StreamBatch<'_>> {
    let mut streams: Vec<StreamBatch<'_>> = Vec::new();
    let mut slots: HashMap<&StreamId, usize> = HashMap::new();
    let mut index = 0;
    while let Some(first) = envelopes.get(index) {
        let mut last = first;
        for next in &envelopes[index + 1..] {
            let continues = next.stream == first.stream
                && next.stream_version.0 == last.stream_version.0.saturating_add(1)
                && next.position.0 == last.position.0.saturating_add(1);
            if !continues {
                break;
            }
            last = next;
        }
        let count = (last.position.0 - first.position.0) as usize + 1;
        let slot = *slots.entry(&first.stream).or_insert_with(|| {
            streams.push(StreamBatch {
                stream: &first.stream,
                runs: Vec::new(),
                dedupe: Vec::new(),
            });
            streams.len() - 1
        });
        let StreamBatch { runs, dedupe, .. } = &mut streams[slot];
        runs.push(Run {
            first_version: first.stream_version.0,
            last_version: last.stream_version.0,
            first_position: first.position.0,
        });
        for envelope in &envelopes[index..index + count] {
            if let Some(key) = &envelope.dedupe_key {
                dedupe.push((dedupe_hash(key), envelope.position.0));
            }
        }
        index += count;
    }
    streams
}
