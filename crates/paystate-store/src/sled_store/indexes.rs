//! Writing the stream index and dedupe entries of a batch, and completing them after a crash.
//!
//! The writer stores a batch's chunks first (one atomic sled batch), then its index entries,
//! then `indexed_through` = the batch's last position. sled recovers a prefix of its log: a
//! write is recovered only if every write made before it is too. So after a crash every index
//! entry points at an event that is there, and only the last batch of chunks can lack its
//! index entries (those of a batch are written before the next batch's chunks). Opening the
//! store writes them again from the chunks, before any new append is decided.
//!
//! This replaces a sled transaction over the three trees: a transaction reads every key it
//! writes (to return the old value) and records read and write sets, which cost about as much
//! as the writes themselves.

use super::chunk::for_each_record;
use super::layout::{
    indexed_through, position_key, run_value, set_indexed_through, storage_error, stream_index_key,
    upgrade_format, Trees,
};
use crate::codec::decode_record;
use crate::error::StoreError;
use crate::types::{Envelope, Position};
use std::path::Path;

/// Writes the index entries of consecutive envelopes that are already in the `events` tree,
/// then moves `indexed_through` to the last of them.
pub(crate) fn write_index_entries(trees: &Trees, envelopes: &[Envelope]) -> sled::Result<()> {
    let Some(last) = envelopes.last() else {
        return Ok(());
    };
    for (key, value) in stream_runs(envelopes) {
        trees.stream_index.insert(key, &value)?;
    }
    for envelope in envelopes {
        if let Some(key) = &envelope.dedupe_key {
            trees
                .dedupe
                .insert(key.as_bytes(), &position_key(envelope.position))?;
        }
    }
    set_indexed_through(&trees.meta, last.position.0)
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
    write_index_entries(trees, &missing).map_err(storage)
}

/// The stream index entries for a batch: one per stretch of consecutive envelopes of one
/// stream whose versions and positions both advance by one.
fn stream_runs(envelopes: &[Envelope]) -> Vec<(Vec<u8>, [u8; 16])> {
    let mut runs = Vec::new();
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
        runs.push((
            stream_index_key(&first.stream, last.stream_version),
            run_value(first.stream_version, first.position),
        ));
        index += (last.position.0 - first.position.0) as usize + 1;
    }
    runs
}
