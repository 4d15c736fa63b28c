//! `paystate import`: load an export into an empty data directory.

use super::log_line::LogLine;
use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::{bail, Context};
use paystate_store::{Envelope, EventStore, SledStore};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Load an export into an empty data directory.
///
/// Reads the JSON lines of `paystate export` from standard input and keeps every position, id,
/// time and hash.
///
/// The store checks every record (position, stream version, recomputed hash, chain onto the one
/// before) as it is written; then the projections are built from the imported log. A non-empty
/// store or a broken file is refused with the reason and nothing is changed: a data directory
/// this command creates is written in batches and removed again if anything is refused; an
/// existing empty store is written in one atomic batch. The export carries no secrets:
/// deliveries can only be re-verified (`paystate verify`) where the secrets are (see
/// `verify --help`).
///
/// Examples:
///   paystate import --data ./restored < log.jsonl
///   paystate export --data ./paystate-data | paystate import --data ./copy
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataDirArg,
}

/// How many envelopes go to the store at once when importing into a store this command
/// created: memory stays bounded, and a refusal removes the whole store anyway.
const BATCH: usize = 1000;

pub fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let created = CreatedPaths::before_open(&args.data.data);
    let store = args.data.open_or_create()?;
    // Into an existing (empty) store everything goes in one atomic batch, because that store
    // cannot be removed on a refusal; into a new one, in bounded batches.
    let batch = if created.0.is_some() {
        BATCH
    } else {
        usize::MAX
    };
    let runtime = offline::runtime()?;
    let result = runtime.block_on(import_into(&store, std::io::stdin().lock(), batch));
    let closed = runtime.block_on(offline::close(&store));
    drop(store);
    let (events, head_hash) = match result.and_then(|done| closed.map(|()| done)) {
        Ok(done) => done,
        Err(error) => {
            created.remove();
            return Err(error);
        }
    };
    eprintln!(
        "imported {events} events into {}; chain head hash {}",
        args.data.data.display(),
        hex::encode(head_hash)
    );
    Ok(Outcome::Clean)
}

/// Reads the export line by line and hands it to the store `batch` envelopes at a time; the
/// first bad line stops it with its line number.
async fn import_into(
    store: &SledStore,
    input: impl BufRead,
    batch: usize,
) -> anyhow::Result<(u64, paystate_store::Hash)> {
    let head = store.head()?;
    if head.0 != 0 {
        bail!(
            "the store already holds {head} events; import only into an empty data directory \
             (nothing was changed)"
        );
    }
    let mut pending: Vec<Envelope> = Vec::new();
    let mut count = 0u64;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number} of the input"))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = LogLine::parse(&line)
            .and_then(LogLine::into_envelope)
            .with_context(|| format!("line {number} is broken; nothing was imported"))?;
        if count == 0 && envelope.position.0 != 1 {
            bail!(
                "the input starts at position {}, not 1 (an `export --after` tail?); only a full \
                 export can be imported into an empty data directory; nothing was imported",
                envelope.position
            );
        }
        count += 1;
        pending.push(envelope);
        if pending.len() >= batch {
            write(store, std::mem::take(&mut pending)).await?;
        }
    }
    if count == 0 {
        bail!("the input holds no events; nothing was imported");
    }
    write(store, pending).await?;
    // Build the persisted projections now, so that `replay --verify` and a server started on
    // this directory find them current.
    super::replay::rebuild_and_persist(store, |_| {})?;
    let report = store.verify()?;
    if let Some((position, reason)) = report.first_bad {
        bail!("the imported log does not verify at position {position}: {reason}");
    }
    Ok((count, report.head_hash))
}

async fn write(store: &SledStore, envelopes: Vec<Envelope>) -> anyhow::Result<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    store
        .import(envelopes)
        .await
        .context("the input was refused; nothing was imported")
}

/// The directory an import creates, removed again when the import is refused so that a refused
/// import leaves the file system as it found it.
struct CreatedPaths(Option<PathBuf>);

impl CreatedPaths {
    fn before_open(data_dir: &Path) -> CreatedPaths {
        let store_dir = paystate_server::store::store_path(data_dir);
        let created = if !data_dir.exists() {
            Some(data_dir.to_path_buf())
        } else if !store_dir.exists() {
            Some(store_dir)
        } else {
            None
        };
        CreatedPaths(created)
    }

    fn remove(self) {
        if let Some(path) = self.0 {
            if let Err(error) = std::fs::remove_dir_all(&path) {
                eprintln!("warning: could not remove {}: {error}", path.display());
            }
        }
    }
}
