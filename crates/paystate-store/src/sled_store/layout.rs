//! Where things live in the sled database, and how a directory is recognised as a store.
//!
//! The directory also holds the file `PAYSTATE_STORE`, written before anything else, and
//! `durable-head`, the last durable position and its hash (see `head_record`).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `paystate.meta` | `marker`, `format_version`, `indexed_through` | `paystate-store`, u32 BE, u64 BE |
//! | `events` | position of the chunk's last record, u64 BE | chunk of records (see `chunk`) |
//! | `stream_heads` | stream UTF-8 | the stream's version, and while it is short its runs and dedupe hashes (see `stream_heads`) |
//! | `stream_index` | stream UTF-8, `0xFF`, last version of a run u64 BE | first version of the run u64 BE, its position u64 BE |
//! | `dedupe_hashes` | stream UTF-8, `0xFF`, dedupe hash u64 BE | positions u64 BE of the events whose keys have that hash (almost always one) |
//! | `dedupe` | dedupe key UTF-8 | position u64 BE (written by format 3 and older only) |
//! | `projection_checkpoints` | projection name | position u64 BE (format 2 and older) |
//! | `projection/{name}` | caller's key; `0xFF checkpoint` | caller's value; position u64 BE |
//! | `side/{namespace}` | caller's key | caller's value |
//!
//! A run is a stretch of one append (or import) in which a stream's versions and the global
//! positions both go up by one, so one index entry covers a whole append. A short stream keeps
//! its runs and dedupe hashes in its `stream_heads` entry; a long one keeps them in
//! `stream_index` and `dedupe_hashes`. `0xFF` never occurs in UTF-8, so a stream's entries in
//! those two trees are exactly the keys that start with its name followed by `0xFF`, and they
//! sort by version (by hash). A dedupe key is unique within its stream.
//!
//! A store upgraded from format 3 or older has the meta key `legacy_indexes`: its streams
//! written before the upgrade have no `stream_heads` entry until their next append, their runs
//! are in `stream_index` and their dedupe keys in `dedupe`.

use crate::error::StoreError;
use crate::types::{Position, StreamId, StreamVersion};
use std::path::{Path, PathBuf};

/// The on-disk format this build writes and the newest it can read.
///
/// - 1: a batch's chunks and index entries were written in one sled transaction.
/// - 2: a batch's chunks are written first, then its index entries, then `indexed_through`;
///   after a crash the indexes may lack the last batch, and opening adds it back. A format 1
///   store is upgraded when opened (its indexes are complete: `indexed_through` = its head).
/// - 3: a projection's checkpoint is kept in the projection's own tree under
///   the key `0xFF checkpoint`, written with its state in one atomic sled batch; the
///   `projection_checkpoints` tree is read only for projections last committed by an older
///   format. A format 2 store is upgraded when opened (nothing else changes).
/// - 4: each stream has a `stream_heads` entry holding its version, and while it is short its
///   runs and the hashes of its dedupe keys; dedupe keys are unique within a stream. A format 3
///   store is upgraded when opened: nothing is rewritten, the store is marked as having legacy
///   indexes, which are read for the streams written before.
pub const FORMAT_VERSION: u32 = 4;

pub(crate) const META_TREE: &str = "paystate.meta";
pub(crate) const EVENTS_TREE: &str = "events";
const STREAM_HEADS_TREE: &str = "stream_heads";
const STREAM_INDEX_TREE: &str = "stream_index";
const DEDUPE_HASHES_TREE: &str = "dedupe_hashes";
const DEDUPE_TREE: &str = "dedupe";
const CHECKPOINTS_TREE: &str = "projection_checkpoints";

const MARKER_KEY: &[u8] = b"marker";
const MARKER_VALUE: &[u8] = b"paystate-store";
const FORMAT_VERSION_KEY: &[u8] = b"format_version";
/// The last position whose stream-index and dedupe entries are known to be written.
const INDEXED_THROUGH_KEY: &[u8] = b"indexed_through";
/// Present once a store written by format 3 or older is upgraded: streams may lack a
/// `stream_heads` entry and have their index entries in `stream_index` and `dedupe`.
const LEGACY_INDEXES_KEY: &[u8] = b"legacy_indexes";

/// Where a projection's checkpoint lives in its own tree (format 3). `0xFF` never starts a
/// UTF-8 key, and scans of the projection's state pass over this key.
pub(crate) const PROJECTION_CHECKPOINT_KEY: &[u8] = b"\xffcheckpoint";

/// The fixed trees of an open store.
#[derive(Debug, Clone)]
pub(crate) struct Trees {
    pub meta: sled::Tree,
    pub events: sled::Tree,
    pub stream_heads: sled::Tree,
    pub stream_index: sled::Tree,
    pub dedupe_hashes: sled::Tree,
    pub dedupe: sled::Tree,
    pub checkpoints: sled::Tree,
    /// Whether the store was upgraded from format 3 or older (see the module's text).
    pub legacy: bool,
}

impl Trees {
    pub fn open(db: &sled::Db, path: &Path) -> Result<Trees, StoreError> {
        let open = |name: &str| db.open_tree(name).map_err(|e| storage_error(path, e));
        let meta = open(META_TREE)?;
        let stream_index = open(STREAM_INDEX_TREE)?;
        let dedupe = open(DEDUPE_TREE)?;
        let legacy = meta
            .contains_key(LEGACY_INDEXES_KEY)
            .map_err(|e| storage_error(path, e))?
            || (stored_format(&meta, path)? < 4 && !(stream_index.is_empty() && dedupe.is_empty()));
        let dedupe_hashes = open(DEDUPE_HASHES_TREE)?;
        dedupe_hashes.set_merge_operator(add_position);
        Ok(Trees {
            meta,
            events: open(EVENTS_TREE)?,
            stream_heads: open(STREAM_HEADS_TREE)?,
            stream_index,
            dedupe_hashes,
            dedupe,
            checkpoints: open(CHECKPOINTS_TREE)?,
            legacy,
        })
    }
}

/// The format version a store records (checked against this build's when it opened).
fn stored_format(meta: &sled::Tree, path: &Path) -> Result<u32, StoreError> {
    let version = meta
        .get(FORMAT_VERSION_KEY)
        .map_err(|e| storage_error(path, e))?;
    Ok(version
        .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
        .map_or(FORMAT_VERSION, u32::from_be_bytes))
}

/// Records that the store holds index entries of format 3 or older, before anything of
/// format 4 is written (a no-op for other stores).
pub(crate) fn mark_legacy_indexes(trees: &Trees) -> sled::Result<()> {
    if trees.legacy {
        trees.meta.insert(LEGACY_INDEXES_KEY, &[1u8])?;
    }
    Ok(())
}

pub(crate) fn projection_tree_name(projection: &str) -> String {
    format!("projection/{projection}")
}

pub(crate) fn side_tree_name(namespace: &str) -> String {
    format!("side/{namespace}")
}

pub(crate) fn position_key(position: Position) -> [u8; 8] {
    position.0.to_be_bytes()
}

pub(crate) fn stream_prefix(stream: &StreamId) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.as_str().len() + 9);
    key.extend_from_slice(stream.as_str().as_bytes());
    key.push(0xFF);
    key
}

pub(crate) fn stream_index_key(stream: &StreamId, version: StreamVersion) -> Vec<u8> {
    let mut key = stream_prefix(stream);
    key.extend_from_slice(&version.0.to_be_bytes());
    key
}

/// The `dedupe_hashes` key of a stream's dedupe hash.
pub(crate) fn dedupe_hash_key(stream: &StreamId, hash: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.as_str().len() + 9);
    key.extend_from_slice(stream.as_str().as_bytes());
    key.push(0xFF);
    key.extend_from_slice(&hash.to_be_bytes());
    key
}

/// The merge operator of `dedupe_hashes`: adds a position (u64 BE) to those already under the
/// key, once (writing a batch's entries again after a crash adds nothing).
fn add_position(_key: &[u8], stored: Option<&[u8]>, position: &[u8]) -> Option<Vec<u8>> {
    let stored = stored.unwrap_or_default();
    if stored.chunks(8).any(|known| known == position) {
        return Some(stored.to_vec());
    }
    Some([stored, position].concat())
}

pub(crate) fn run_value(first_version: StreamVersion, first_position: Position) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&first_version.0.to_be_bytes());
    value[8..].copy_from_slice(&first_position.0.to_be_bytes());
    value
}

/// One stream index entry: versions `first_version..=last_version` at positions starting at
/// `first_position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub first_version: u64,
    pub last_version: u64,
    pub first_position: u64,
}

impl Run {
    pub fn parse(prefix_len: usize, key: &[u8], value: &[u8]) -> Result<Run, StoreError> {
        let last_version = key
            .get(prefix_len..)
            .ok_or_else(|| StoreError::Corrupt {
                position: 0,
                reason: "a stream index key is too short".into(),
            })
            .and_then(|suffix| be_u64(suffix, 0, "a stream index key"))?;
        let run = Run {
            first_version: be_u64(value, 0, "a stream index entry")?,
            last_version,
            first_position: be_u64(value, 1, "a stream index entry")?,
        };
        if run.first_version == 0 || run.first_version > run.last_version {
            return Err(StoreError::Corrupt {
                position: run.first_position,
                reason: "a stream index entry has an empty version range".into(),
            });
        }
        Ok(run)
    }

    pub fn last_position(&self) -> u64 {
        self.first_position
            .saturating_add(self.last_version - self.first_version)
    }
}

/// Reads a big-endian u64 from a stored value that must be exactly `8 * index + 8` long or
/// longer; `what` names the value in the error.
pub(crate) fn be_u64(bytes: &[u8], index: usize, what: &str) -> Result<u64, StoreError> {
    bytes
        .get(index * 8..index * 8 + 8)
        .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("{what} is {} bytes long", bytes.len()),
        })
}

pub(crate) fn storage_error(path: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => StoreError::Unavailable(format!("{}: {other}", path.display())),
    }
}

/// A file written before sled creates anything, so a directory whose first open was killed
/// half-way is still recognised as a store (and finished) rather than refused.
const MARKER_FILE: &str = "PAYSTATE_STORE";
const MARKER_FILE_TEXT: &str = "This directory is a paystate event store. Do not edit its files.\n";

/// Opens the sled database at `path`, creating a new store if the directory is missing or
/// empty, and refusing anything that is not a paystate store this build can read.
pub(crate) fn open_database(
    path: &Path,
    cache_capacity_bytes: u64,
) -> Result<sled::Db, StoreError> {
    let not_a_store = |reason: &str| StoreError::NotAStore {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fresh = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => return Err(not_a_store("it is not a directory")),
        Ok(_) => std::fs::read_dir(path).map_err(io)?.next().is_none(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            crate::private_dir::create_all(path).map_err(io)?;
            true
        }
        Err(error) => return Err(io(error)),
    };
    let marker = path.join(MARKER_FILE);
    if fresh {
        write_marker_file(path, &marker).map_err(io)?;
    } else if !marker.is_file() {
        return Err(not_a_store("it holds other files and no paystate marker"));
    }

    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .open()
        .map_err(|error| classify_open_error(path, error))?;
    check_or_initialize(&db, path)?;
    Ok(db)
}

fn write_marker_file(dir: &Path, marker: &Path) -> std::io::Result<()> {
    let mut file = std::fs::File::create(marker)?;
    std::io::Write::write_all(&mut file, MARKER_FILE_TEXT.as_bytes())?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

fn classify_open_error(path: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(source) if source.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        sled::Error::Corruption { at, .. } => StoreError::Damaged {
            path: path.to_path_buf(),
            reason: format!(
                "sled cannot read its database file (corrupted data{}); restore the data directory from a backup or an export",
                at.map(|at| format!(" at {at:?}")).unwrap_or_default()
            ),
        },
        other => StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: format!("the database cannot be opened: {other}"),
        },
    }
}

fn check_or_initialize(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    let not_a_store = |reason: String| StoreError::NotAStore {
        path: path.to_path_buf(),
        reason,
    };
    let has_meta = db
        .tree_names()
        .iter()
        .any(|name| name == META_TREE.as_bytes());
    if has_meta {
        let meta = db
            .open_tree(META_TREE)
            .map_err(|e| storage_error(path, e))?;
        if let Some(marker) = meta.get(MARKER_KEY).map_err(|e| storage_error(path, e))? {
            if marker != MARKER_VALUE {
                return Err(not_a_store("its marker names something else".into()));
            }
            let version = meta
                .get(FORMAT_VERSION_KEY)
                .map_err(|e| storage_error(path, e))?
                .ok_or_else(|| not_a_store("the format version is missing".into()))?;
            let found = <[u8; 4]>::try_from(version.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| not_a_store("the format version is unreadable".into()))?;
            if found > FORMAT_VERSION {
                return Err(StoreError::FormatTooNew {
                    path: path.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            return Ok(());
        }
    }
    // The marker file is there but the database has no marker yet: a first open was
    // interrupted. Finish it, unless something has already been written.
    for name in db.tree_names() {
        let tree = db.open_tree(&name).map_err(|e| storage_error(path, e))?;
        if !tree.is_empty() {
            return Err(not_a_store(
                "its database has data but no paystate marker".into(),
            ));
        }
    }
    let meta = db
        .open_tree(META_TREE)
        .map_err(|e| storage_error(path, e))?;
    let mut batch = sled::Batch::default();
    batch.insert(FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes());
    batch.insert(INDEXED_THROUGH_KEY, &0u64.to_be_bytes());
    batch.insert(MARKER_KEY, MARKER_VALUE);
    meta.apply_batch(batch)
        .map_err(|e| storage_error(path, e))?;
    db.flush().map_err(|e| storage_error(path, e))?;
    Ok(())
}

/// How far the indexes are known to be complete; `None` in a format 1 store, whose indexes
/// are always complete.
pub(crate) fn indexed_through(meta: &sled::Tree, path: &Path) -> Result<Option<u64>, StoreError> {
    meta.get(INDEXED_THROUGH_KEY)
        .map_err(|e| storage_error(path, e))?
        .map(|value| be_u64(&value, 0, "the indexed position"))
        .transpose()
}

/// Records that every index entry up to `position` is written (not yet durable: the next
/// flush makes it so).
pub(crate) fn set_indexed_through(meta: &sled::Tree, position: u64) -> sled::Result<()> {
    meta.insert(INDEXED_THROUGH_KEY, &position.to_be_bytes())
        .map(|_| ())
}

/// Records `position` as indexed and the store as this build's format, in one atomic write.
pub(crate) fn upgrade_format(meta: &sled::Tree, position: u64) -> sled::Result<()> {
    let mut batch = sled::Batch::default();
    batch.insert(INDEXED_THROUGH_KEY, &position.to_be_bytes());
    batch.insert(FORMAT_VERSION_KEY, &FORMAT_VERSION.to_be_bytes());
    meta.apply_batch(batch)
}

/// Records this build's format version if the store has an older one (after everything an
/// upgrade needs is in place).
pub(crate) fn record_format_version(meta: &sled::Tree) -> sled::Result<()> {
    let current = FORMAT_VERSION.to_be_bytes();
    if meta.get(FORMAT_VERSION_KEY)?.as_deref() != Some(current.as_slice()) {
        meta.insert(FORMAT_VERSION_KEY, &current)?;
    }
    Ok(())
}

/// Files sled keeps under a store directory, for fsync.
pub(crate) fn data_file(path: &Path) -> PathBuf {
    path.join("db")
}

pub(crate) fn blobs_dir(path: &Path) -> PathBuf {
    path.join("blobs")
}

#[cfg(test)]
mod tests {
    use super::add_position;

    #[test]
    fn a_dedupe_hash_entry_gains_each_position_once() {
        let first = 7u64.to_be_bytes();
        let second = 9u64.to_be_bytes();
        let one = add_position(b"k", None, &first).unwrap();
        assert_eq!(one, first);
        // The same batch written again after a crash adds nothing.
        assert_eq!(add_position(b"k", Some(&one), &first).unwrap(), one);
        // Another key of the stream with the same hash adds its position.
        let two = add_position(b"k", Some(&one), &second).unwrap();
        assert_eq!(two, [first, second].concat());
    }
}
