//! The `ingest` subcommand (the end-to-end suite of [`paystate_bench::suite`]) and the two
//! reference servers the suite starts as child processes of this binary (`ceiling`,
//! `alternative`).

use anyhow::{ensure, Context};
use clap::Args;
use paystate_bench::report::{self, Environment};
use paystate_bench::suite::{self, SuiteConfig};
use paystate_bench::targets::postgres::{alternative, AlternativeConfig, PostgresCluster};
use paystate_vipps::signature::{RegisteredUrl, WebhookSecret};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of this suite's section in `docs/benchmarks.md`.
pub const SECTION: &str = "ingest";

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Concurrent connections of each ingestion load, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    connections: Vec<usize>,
    /// How many times each target is measured at each connection count: in every round the
    /// alternative, the ceiling and paystate run back to back, and the report takes the median
    /// round (a ratio: the median of the rounds' ratios).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of warm-up before each measured load.
    #[arg(long, default_value_t = 2)]
    load_warmup_secs: u64,
    /// Seconds each load is measured.
    #[arg(long, default_value_t = 10)]
    load_secs: u64,
    /// Connections in the PostgreSQL alternative's pool.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Events paystate's log is grown to before the restart, the queries and the replay
    /// (0 skips them).
    #[arg(long, default_value_t = 1_000_000)]
    log_events: u64,
    /// Connections of the payment-query load.
    #[arg(long, default_value_t = 64)]
    query_connections: usize,
    /// Do not start PostgreSQL; the report says the alternative was not measured.
    #[arg(long)]
    skip_alternative: bool,
    /// The `paystate` binary to measure. Default: `cargo build --release -p paystate-cli`,
    /// then the `paystate` next to this executable.
    #[arg(long)]
    paystate_bin: Option<PathBuf>,
}

/// `paystate-bench ceiling`: serve the bare-axum ceiling.
#[derive(Debug, Clone, Args)]
pub struct CeilingArgs {
    #[arg(long)]
    listen: SocketAddr,
}

/// `paystate-bench alternative`: serve the axum + PostgreSQL receiver. The webhook secret
/// comes from the environment variable `PAYSTATE_BENCH_WEBHOOK_SECRET`.
#[derive(Debug, Clone, Args)]
pub struct AlternativeArgs {
    #[arg(long)]
    listen: SocketAddr,
    /// tokio-postgres connection string.
    #[arg(long)]
    postgres: String,
    #[arg(long)]
    provider_id: String,
    /// The URL deliveries are signed for.
    #[arg(long)]
    registered_url: String,
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
}

/// Runs the suite; returns the markdown of its section.
pub fn run(
    args: &IngestArgs,
    base_dir: &Path,
    machine: &crate::machine::Machine,
) -> anyhow::Result<String> {
    let paystate_bin = match &args.paystate_bin {
        Some(path) => path.clone(),
        None => build_paystate()?,
    };
    let config = SuiteConfig {
        paystate_bin: paystate_bin.clone(),
        bench_exe: std::env::current_exe().context("locating this executable")?,
        base_dir: base_dir.to_path_buf(),
        concurrencies: args.connections.clone(),
        rounds: args.rounds.max(1),
        warmup: Duration::from_secs(args.load_warmup_secs),
        duration: Duration::from_secs(args.load_secs.max(1)),
        pool_size: args.pool_size,
        log_events: args.log_events,
        query_connections: args.query_connections,
        skip_alternative: args.skip_alternative,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(suite::run(config))?;
    let environment = environment(machine, &paystate_bin, args.skip_alternative);
    for check in report::targets(&report) {
        let verdict = match check.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        println!(
            "{:<48} wanted {:<34} measured {:<28} {verdict}",
            check.name, check.wanted, check.measured
        );
    }
    Ok(report::markdown(&report, &environment))
}

fn environment(
    machine: &crate::machine::Machine,
    paystate_bin: &Path,
    skip_postgres: bool,
) -> Environment {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
            .unwrap_or_default();
    let locked = |name: &str| {
        format!(
            "{name} {}",
            report::locked_version(&lock, name).unwrap_or_else(|| "?".into())
        )
    };
    let paystate_version = std::process::Command::new(paystate_bin)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let postgres = if skip_postgres {
        "not used".into()
    } else {
        PostgresCluster::version()
    };
    let rows = [
        ("CPU", machine.cpu.clone()),
        ("cores", machine.cores.to_string()),
        ("memory", machine.memory.clone()),
        ("disk", machine.filesystem.clone()),
        ("kernel", report::kernel_release()),
        ("rustc", machine.rustc.clone()),
        ("date", machine.date.clone()),
        ("paystate", format!("{paystate_version} (release build)")),
        (
            "libraries",
            ["sled", "axum", "hyper", "tokio", "tokio-postgres"]
                .map(locked)
                .join(", "),
        ),
        ("PostgreSQL", postgres),
    ];
    Environment {
        rows: rows
            .into_iter()
            .map(|(label, value)| (label.to_owned(), value))
            .collect(),
    }
}

/// Builds the release `paystate` binary and returns its path: next to this executable, which
/// `cargo run --release` put in the same target directory.
fn build_paystate() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release paystate binary");
    let status = std::process::Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "-p",
            "paystate-cli",
            "--bin",
            "paystate",
        ])
        .status()
        .context("running cargo build")?;
    ensure!(
        status.success(),
        "cargo build --release -p paystate-cli failed"
    );
    let exe = std::env::current_exe().context("locating this executable")?;
    let binary = exe.with_file_name("paystate");
    ensure!(
        binary.is_file(),
        "{} is missing: run the benchmark as a release build (cargo run --release -p paystate-bench) or pass --paystate-bin",
        binary.display()
    );
    Ok(binary)
}

/// Serves the ceiling until the process is stopped.
pub fn serve_ceiling(args: &CeilingArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        paystate_bench::targets::ceiling::serve(listener)
            .await
            .context("serving the ceiling")
    })
}

/// Serves the PostgreSQL alternative until the process is stopped.
pub fn serve_alternative(args: &AlternativeArgs) -> anyhow::Result<()> {
    let secret = std::env::var(alternative::SECRET_ENV)
        .with_context(|| format!("{} is not set", alternative::SECRET_ENV))?;
    let config = AlternativeConfig {
        postgres: args.postgres.clone(),
        provider_id: args.provider_id.clone(),
        registered_url: RegisteredUrl::parse(&args.registered_url).context("--registered-url")?,
        secret: WebhookSecret::new(secret),
        pool_size: args.pool_size,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        alternative::serve(listener, config)
            .await
            .context("serving the alternative")
    })
}
