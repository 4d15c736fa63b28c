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

fn init_logging(format: paystate_server::LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PAYSTATE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour codes only for a person at a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        paystate_server::LogFormat::Json => builder.json().init(),
        paystate_server::LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; the other commands print their results and log only
    // warnings, so logs do not drown their output.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args, cli.log_format),
        Command::Replay(args) => return finish(commands::replay::run(args)),
        Command::Audit(args) => return finish(commands::audit::run(args)),
        Command::Verify(args) => return finish(commands::verify::run(args)),
        Command::Export(args) => return finish(commands::export::run(args)),
        Command::Import(args) => return finish(commands::import::run(args)),
        Command::Demo(args) => return finish(commands::demo::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
