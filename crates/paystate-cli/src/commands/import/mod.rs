//! `paystate import`: load an export into an empty data directory; [`staging`] keeps an
//! unfinished import out of the place it was asked for.

mod staging;

use super::log_line::LogLine;
use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::{bail, Context};
use paystate_store::{Envelope, EventStore, SledStore};
use staging::{Moved, Staging};
use std::io::BufRead;
use std::path::Path;

/// Load an export into an empty data directory.
///
/// Reads the JSON lines of `paystate export` from standard input and keeps every position, id,
/// time and hash.
///
/// The store checks every record (position, stream version, recomputed hash, chain onto the one
/// before) as it is written; then the projections are built from the imported log. A non-empty
/// store or a broken file is refused with the reason and nothing is changed.
///
/// A data directory (or a store in an existing data directory) that this command creates is
/// written in batches into a staging directory next to it, `.{name}.importing`, and renamed
/// into place only once everything was accepted and synced to disk: an import that is refused,
/// fails or is killed never leaves a partial store under the name asked for. A staging
/// directory a killed import left behind is removed by the next import into the same place;
/// one in use by a running import is refused. An existing empty store is written in one atomic
/// batch instead.
///
/// The export carries no secrets: deliveries can only be re-verified (`paystate verify`) where
/// the secrets are (see `verify --help`).
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
/// creates: memory stays bounded, and a refusal discards the whole staging directory anyway.
const BATCH: usize = 1000;

pub fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let data_dir = &args.data.data;
    let store_dir = paystate_server::store::store_path(data_dir);
    let (events, head_hash) = if !data_dir.exists() {
        import_staged(data_dir, Moved::DataDir)?
    } else if !store_dir.exists() {
        import_staged(&store_dir, Moved::Store)?
    } else {
        // This store cannot be removed on a refusal, so everything goes in one atomic batch.
        let store = args.data.open_existing()?;
        import_and_close(&store, usize::MAX)?
    };
    eprintln!(
        "imported {events} events into {}; chain head hash {}",
        data_dir.display(),
        hex::encode(head_hash)
    );
    Ok(Outcome::Clean)
}

/// Imports into `target`, which does not exist yet, through a staging directory.
fn import_staged(target: &Path, moved: Moved) -> anyhow::Result<(u64, paystate_store::Hash)> {
    let staging = Staging::create(target, moved)?;
    let store = match SledStore::open(staging.store_path()) {
        Ok(store) => store,
        Err(error) => {
            let dir = staging.dir().display().to_string();
            staging.discard();
            return Err(error).with_context(|| format!("opening the store in {dir}"));
        }
    };
    // Once the store is open, its lock keeps other imports out; one that came in between
    // owns the staging directory now, and it is left to that one.
    staging.check_still_ours()?;
    let imported = import_and_close(&store, BATCH);
    drop(store);
    match imported.and_then(|done| staging.commit().map(|()| done)) {
        Ok(done) => Ok(done),
        Err(error) => {
            staging.discard();
            Err(error)
        }
    }
}

/// Imports standard input into `store` and closes it, so that it is flushed and unlocked.
fn import_and_close(
    store: &SledStore,
    batch: usize,
) -> anyhow::Result<(u64, paystate_store::Hash)> {
    let runtime = offline::runtime()?;
    let result = runtime.block_on(import_into(store, std::io::stdin().lock(), batch));
    let closed = runtime.block_on(offline::close(store));
    result.and_then(|done| closed.map(|()| done))
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
    let bar = super::progress::events_counter("events imported");
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
            bar.set_position(count);
            tracing::info!(events = count, "import: batch written");
        }
    }
    bar.finish_and_clear();
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
