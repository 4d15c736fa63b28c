//! `paystate export`: write the log as JSON lines to standard output.

use super::log_line::LogLine;
use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::Context;
use paystate_store::{EventStore, Position};
use std::io::Write;

/// How many envelopes are read from the store at a time.
const PAGE: usize = 1024;

/// Write the event log as JSON lines to standard output.
///
/// One envelope per line, in position order.
///
/// Lossless: positions, ids, times, stored payload bytes and the hash chain are kept, so
/// `paystate import` into an empty data directory reproduces the same chain head hash. The
/// export holds the log only: webhook secrets and credentials live apart from it (encrypted)
/// and are never exported. A summary goes to standard error.
///
/// Examples:
///   paystate export --data ./paystate-data > log.jsonl
///   paystate export --after 1200 > tail.jsonl
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataDirArg,

    /// Export only events with a position greater than N (a tail, e.g. for incremental
    /// archiving; only a full export can be imported into an empty data directory).
    #[arg(long, value_name = "N", default_value_t = 0)]
    after: u64,
}

pub fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    let store = args.data.open_existing()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = Position(args.after);
    let mut written = 0u64;
    let bar = super::progress::events_bar(
        store.head()?.0.saturating_sub(args.after),
        "events exported",
    );
    loop {
        let page = store
            .read_all_raw(after, PAGE)
            .with_context(|| format!("reading the log after position {after}"))?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for envelope in &page {
            serde_json::to_writer(&mut out, &LogLine::from_envelope(envelope))
                .context("writing the export")?;
            out.write_all(b"\n").context("writing the export")?;
        }
        written += page.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    out.flush().context("writing the export")?;
    let head = store.head()?;
    offline::runtime()?.block_on(offline::close(&store))?;
    if written == 0 {
        eprintln!(
            "exported 0 events: the log holds nothing after position {}",
            args.after
        );
    } else if written == 1 {
        eprintln!("exported 1 event (position {after}), log head {head}");
    } else {
        eprintln!(
            "exported {written} events (positions {} to {after}), log head {head}",
            args.after + 1
        );
    }
    Ok(Outcome::Clean)
}
