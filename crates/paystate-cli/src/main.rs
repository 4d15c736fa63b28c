//! `paystate`: the command-line front of the paystate payment-webhook state engine.
//!
//! One subcommand per module in `commands/`; each owns its clap arguments and its `run`.

mod commands;

/// mimalloc rather than glibc's malloc: the request path allocates and frees many small,
/// short-lived buffers on several threads, where glibc's arenas spend a large share of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use commands::outcome::finish;
use std::process::ExitCode;

/// Event-sourced payment-webhook state engine for Vipps MobilePay.
#[derive(Debug, Parser)]
#[command(name = "paystate", version, propagate_version = true)]
struct Cli {
    /// Log line format: `text` (human-readable) or `json` (one object per line).
    #[arg(long, global = true, env = "PAYSTATE_LOG_FORMAT", default_value = "text", value_parser = parse_log_format)]
    log_format: paystate_server::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(commands::serve::ServeArgs),
    Replay(commands::replay::ReplayArgs),
    Audit(commands::audit::AuditArgs),
    Verify(commands::verify::VerifyArgs),
    Export(commands::export::ExportArgs),
    Import(commands::import::ImportArgs),
    Demo(commands::demo::DemoArgs),
}

fn parse_log_format(input: &str) -> Result<paystate_server::LogFormat, String> {
    input
        .parse()
        .map_err(|error: paystate_server::ConfigError| error.to_string())
}

/// How many log lines may wait for the writer thread. When it falls this far behind, the thread
/// that logs waits for room: a line is never dropped (about 150 bytes a line, so at most a
/// few MiB held).
const LOG_QUEUE_LINES: usize = 16_384;

/// Installs the log subscriber. Lines are formatted on the thread that logs and written to
/// stderr by a thread of their own, in batches: a request does not wait for a `write` system
/// call (stderr is unbuffered), and under load one call carries many lines. The writer flushes
/// whenever its queue is empty, so a quiet server's lines appear at once.
///
/// Keep the guard until the process ends: dropping it writes out the lines still queued.
fn init_logging(
    format: paystate_server::LogFormat,
    default_level: &str,
) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PAYSTATE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("paystate-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    // Colour codes only for a person at a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match format {
        paystate_server::LogFormat::Json => builder.json().init(),
        paystate_server::LogFormat::Text => builder.init(),
    }
    guard
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; the other commands print their results and log only
    // warnings, so logs do not drown their output.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let log_writer = init_logging(cli.log_format, default_level);
    let ended = match cli.command {
        Command::Serve(args) => Ended::Serve(commands::serve::run(args, cli.log_format)),
        Command::Replay(args) => Ended::Command(commands::replay::run(args)),
        Command::Audit(args) => Ended::Command(commands::audit::run(args)),
        Command::Verify(args) => Ended::Command(commands::verify::run(args)),
        Command::Export(args) => Ended::Command(commands::export::run(args)),
        Command::Import(args) => Ended::Command(commands::import::run(args)),
        Command::Demo(args) => Ended::Command(commands::demo::run(args)),
    };
    // The queued log lines go out before the command's last word, not after it.
    drop(log_writer);
    match ended {
        Ended::Command(result) => finish(result),
        Ended::Serve(Ok(())) => ExitCode::SUCCESS,
        Ended::Serve(Err(error)) => {
            eprintln!("error: {}", commands::outcome::chain_text(&error));
            ExitCode::FAILURE
        }
    }
}

/// How a subcommand ended: the server runs until it is stopped, the others report an outcome.
enum Ended {
    Serve(anyhow::Result<()>),
    Command(anyhow::Result<commands::outcome::Outcome>),
}
