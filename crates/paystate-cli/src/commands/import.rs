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
/// The whole input is parsed first; the store then checks every record (position, stream
/// version, recomputed hash, chain onto the one before) and writes all of them in one atomic
/// batch, or none; finally the projections are built from the imported log. A non-empty store
/// or a broken file is refused with the reason and nothing is changed (a data directory this
/// command created for a refused import is removed again). The export carries no secrets:
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

pub fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let envelopes = read_export(std::io::stdin().lock())?;
    let created = CreatedPaths::before_open(&args.data.data);
    let store = args.data.open_or_create()?;
    let runtime = offline::runtime()?;
    let result = runtime.block_on(import_into(&store, envelopes));
    runtime.block_on(offline::close(&store))?;
    drop(store);
    let (events, head_hash) = match result {
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

/// Parses every line of an export; the first bad line stops it with its line number.
pub fn read_export(input: impl BufRead) -> anyhow::Result<Vec<Envelope>> {
    let mut envelopes = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number} of the input"))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = LogLine::parse(&line)
            .and_then(LogLine::into_envelope)
            .with_context(|| format!("line {number} is broken; nothing was imported"))?;
        envelopes.push(envelope);
    }
    if envelopes.is_empty() {
        bail!("the input holds no events; nothing was imported");
    }
    if let Some(first) = envelopes.first() {
        if first.position.0 != 1 {
            bail!(
                "the input starts at position {}, not 1 (an `export --after` tail?); only a full \
                 export can be imported into an empty data directory; nothing was imported",
                first.position
            );
        }
    }
    Ok(envelopes)
}

async fn import_into(
    store: &SledStore,
    envelopes: Vec<Envelope>,
) -> anyhow::Result<(usize, paystate_store::Hash)> {
    let head = store.head()?;
    if head.0 != 0 {
        bail!(
            "the store already holds {} events; import only into an empty data directory \
             (nothing was changed)",
            head
        );
    }
    let count = envelopes.len();
    store
        .import(envelopes)
        .await
        .context("the input was refused; nothing was imported")?;
    // Build the persisted projections now, so that `replay --verify` and a server started on
    // this directory find them current.
    super::replay::rebuild_and_persist(store, |_| {})?;
    let report = store.verify()?;
    if let Some((position, reason)) = report.first_bad {
        bail!("the imported log does not verify at position {position}: {reason}");
    }
    Ok((count, report.head_hash))
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
