//! Benchmarks of paystate, one subcommand per subsystem.
//!
//! - `store`: the event store's write and read paths ([`store`]).
//! - `ingest`: the whole ingestion path against a bare-axum ceiling and an axum + PostgreSQL
//!   alternative, then queries and replay on a grown log ([`e2e`], [`paystate_bench::suite`]).
//! - `all`: every benchmark in turn.
//! - `ceiling`, `alternative` (hidden): the reference servers `ingest` starts as children.
//!
//! With `--write-docs` each benchmark rewrites its own section of `docs/benchmarks.md`
//! (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`), together with the machine it ran on.

mod docs;
mod e2e;
mod machine;
mod store;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The same allocator as the `paystate` binary, so the reference servers this binary runs
/// (`ceiling`, `alternative`) and the in-process measurements are on equal terms with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "paystate-bench", about = "Benchmarks of paystate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raw fdatasync/s, durable appends/s at 1/8/64 appenders, read_all events/s.
    Store(CommonArgs),
    /// Webhooks/s and latency of paystate, the ceiling and the PostgreSQL alternative at
    /// 1/16/64 connections; queries and replay on a 1,000,000-event log.
    Ingest(CommonArgs),
    /// Every benchmark.
    All(CommonArgs),
    #[command(hide = true)]
    Ceiling(e2e::CeilingArgs),
    #[command(hide = true)]
    Alternative(e2e::AlternativeArgs),
}

#[derive(Debug, Clone, Args)]
struct CommonArgs {
    /// Rewrite this benchmark's section of docs/benchmarks.md with the results.
    #[arg(long)]
    write_docs: bool,
    /// The documentation file to rewrite.
    #[arg(long, default_value = "docs/benchmarks.md")]
    docs_file: PathBuf,
    /// Where to put temporary stores (the filesystem under test); defaults to the system
    /// temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    store: store::StoreArgs,
    #[command(flatten)]
    ingest: e2e::IngestArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Store(args) => run_store(&args),
        Command::Ingest(args) => run_ingest(&args),
        Command::All(args) => {
            run_store(&args)?;
            run_ingest(&args)
        }
        Command::Ceiling(args) => e2e::serve_ceiling(&args),
        Command::Alternative(args) => e2e::serve_alternative(&args),
    }
}

fn run_ingest(args: &CommonArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let machine = machine::Machine::describe(&dir);
    let section = e2e::run(&args.ingest, &dir, &machine)?;
    if args.write_docs {
        docs::replace_section(&args.docs_file, e2e::SECTION, &section)?;
        println!(
            "wrote the {} section of {}",
            e2e::SECTION,
            args.docs_file.display()
        );
    }
    Ok(())
}

fn run_store(args: &CommonArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let report = store::run(&args.store, &dir)?;
    println!("{}", report.table());
    if args.write_docs {
        let machine = machine::Machine::describe(&dir);
        let section = report.markdown(&machine);
        docs::replace_section(&args.docs_file, "store", &section)?;
        println!("wrote the store section of {}", args.docs_file.display());
    }
    Ok(())
}
