//! The end-to-end run: the same loads against the PostgreSQL alternative, the ceiling and
//! paystate, back to back, in rounds (each round's paystate on a new store, the last one's
//! followed by paystate at half its maximum rate); then, on another new store, a log grown to
//! its replay size, a restart on it with payment queries, and the replay.

use crate::error::BenchError;
use crate::load::{self, LoadPlan, LoadResult, PaymentQueries, RequestSource, SignedWebhooks};
use crate::load::{WebhookEndpoint, WebhookMix};
use crate::process::{
    cpu_seconds, cpu_seconds_of, disk_usage, machine_busy_seconds, peak_rss_bytes,
};
use crate::replay::{replay, ReplayReport};
use crate::targets::postgres::{AlternativeServer, PostgresCluster};
use crate::targets::{ceiling, register_provider, BenchProvider, PaystateServer, VippsStub};
use http::{Method, StatusCode};
use paystate_vipps::signature::{RegisteredUrl, WebhookSecret};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a restarted server may take to catch its projections up.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Length of one load round while the log grows to its replay size.
const FILL_ROUND: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The `paystate` release binary.
    pub paystate_bin: PathBuf,
    /// This benchmark's own binary (it serves the ceiling and the alternative).
    pub bench_exe: PathBuf,
    /// Where data directories and the PostgreSQL cluster go (the filesystem under test).
    pub base_dir: PathBuf,
    pub concurrencies: Vec<usize>,
    /// How many times each target is measured at each connection count (at least 1).
    pub rounds: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Connections of the alternative's PostgreSQL pool.
    pub pool_size: usize,
    /// Events the log is grown to for the restart, the queries and the replay (0: skip).
    pub log_events: u64,
    /// Connections of the query benchmark.
    pub query_connections: usize,
    /// Skip the PostgreSQL alternative.
    pub skip_alternative: bool,
}

/// The targets, in the order a report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Ceiling,
    Paystate,
    Alternative,
}

impl TargetKind {
    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Ceiling => "ceiling (bare axum)",
            TargetKind::Paystate => "paystate",
            TargetKind::Alternative => "axum + PostgreSQL",
        }
    }
}

/// One load run against one target, with what the server spent on it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub target: TargetKind,
    /// The round of the run (0 for the runs outside the rounds).
    pub round: usize,
    pub load: LoadResult,
    /// CPU seconds the server (and for the alternative, PostgreSQL) used in the window.
    pub cpu_seconds: f64,
    /// CPU seconds the load generator (this process) used in the window.
    pub client_cpu_seconds: f64,
    /// CPU seconds the whole machine was busy in the window: what is neither the server nor
    /// the load generator is other work on the machine, which skews the figures.
    pub machine_busy_seconds: f64,
    /// The server process's peak RSS so far (`VmHWM`).
    pub peak_rss_bytes: Option<u64>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.load.acknowledged_per_second()
    }

    /// CPU use in percent of one core.
    pub fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu_seconds / self.load.plan.duration.as_secs_f64()
    }

    /// CPU of processes other than the server and the load generator, in % of one core.
    pub fn other_cpu_percent(&self) -> f64 {
        let other = self.machine_busy_seconds - self.cpu_seconds - self.client_cpu_seconds;
        100.0 * other.max(0.0) / self.load.plan.duration.as_secs_f64()
    }

    /// Load-generator CPU, in % of one core.
    pub fn client_cpu_percent(&self) -> f64 {
        100.0 * self.client_cpu_seconds / self.load.plan.duration.as_secs_f64()
    }

    /// Server CPU per acknowledged request, in microseconds.
    pub fn cpu_micros_per_request(&self) -> Option<f64> {
        let acknowledged = self.load.measured.acknowledged();
        (acknowledged > 0).then(|| 1e6 * self.cpu_seconds / acknowledged as f64)
    }
}

/// paystate's log after the loads, restarted on, queried and replayed.
#[derive(Debug, Clone)]
pub struct LogRun {
    pub events: u64,
    pub webhooks: u64,
    pub disk_bytes: u64,
    /// Seconds from start until `/readyz` said the projections had caught up.
    pub ready_seconds: f64,
    pub query: Measured,
    pub replay: ReplayReport,
}

/// Every figure of a run.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    pub config: SuiteConfig,
    pub ceiling: Vec<Measured>,
    pub paystate: Vec<Measured>,
    pub alternative: Result<Vec<Measured>, String>,
    /// Disk the alternative's cluster grew by, per webhook stored.
    pub alternative_disk_bytes_per_webhook: Option<f64>,
    pub paystate_half_rate: Option<Measured>,
    /// (accepted, duplicates) as the client saw them and as the server counted them.
    pub client_counted: (u64, u64),
    pub server_counted: (u64, u64),
    /// Events in the log after the concurrency runs, and its size on disk.
    pub events_after_runs: u64,
    pub disk_bytes_after_runs: u64,
    pub log: Option<LogRun>,
}

impl SuiteReport {
    /// Every run of `target`, in the order measured.
    pub fn runs(&self, target: TargetKind) -> &[Measured] {
        match target {
            TargetKind::Ceiling => &self.ceiling,
            TargetKind::Paystate => &self.paystate,
            TargetKind::Alternative => self.alternative.as_deref().unwrap_or(&[]),
        }
    }

    /// The run of `target` at `connections` connections: of several rounds, the one with the
    /// median rate.
    pub fn at(&self, target: TargetKind, connections: usize) -> Option<&Measured> {
        median_run(self.runs(target), connections)
    }

    /// The rate of `target` over that of `other` at `connections` connections in `round`: two
    /// loads measured seconds apart.
    pub fn round_ratio(
        &self,
        target: TargetKind,
        other: TargetKind,
        connections: usize,
        round: usize,
    ) -> Option<f64> {
        let at = |kind: TargetKind| {
            self.runs(kind)
                .iter()
                .find(|run| run.round == round && run.load.plan.connections == connections)
        };
        let (a, b) = (at(target)?, at(other)?);
        (b.per_second() > 0.0).then(|| a.per_second() / b.per_second())
    }

    /// [`SuiteReport::round_ratio`] of every round that measured both targets.
    pub fn round_ratios(
        &self,
        target: TargetKind,
        other: TargetKind,
        connections: usize,
    ) -> Vec<f64> {
        (0..self.config.rounds)
            .filter_map(|round| self.round_ratio(target, other, connections, round))
            .collect()
    }

    /// The median of [`SuiteReport::round_ratios`] (of an even number, the lower middle one).
    pub fn median_ratio(
        &self,
        target: TargetKind,
        other: TargetKind,
        connections: usize,
    ) -> Option<f64> {
        let mut ratios = self.round_ratios(target, other, connections);
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len().saturating_sub(1) / 2).copied()
    }
}

/// The URL the ceiling's and the alternative's deliveries are signed for: a receiver behind
/// a TLS proxy, as in production (the signed host is not the request's).
const REFERENCE_URL: &str = "https://shop.example.no/webhooks/vipps/bench-shop";

/// Runs everything in `config` on the current tokio runtime.
pub async fn run(config: SuiteConfig) -> Result<SuiteReport, BenchError> {
    let provider = BenchProvider::default();
    let reference_endpoint = WebhookEndpoint {
        registered_url: RegisteredUrl::parse(REFERENCE_URL)
            .map_err(|error| BenchError::Setup(error.to_string()))?,
        secret: WebhookSecret::new("bench-reference-secret-of-the-shape-vipps-uses=="),
        webhook_id: "bench-registration".into(),
    };
    let work = tempfile::Builder::new()
        .prefix("paystate-bench")
        .tempdir_in(&config.base_dir)
        .map_err(BenchError::io(format!(
            "creating a directory in {}",
            config.base_dir.display()
        )))?;

    // The three targets run side by side, and the loads the ratios compare are measured in
    // rounds: in each round every connection count against the alternative, the ceiling and
    // paystate, back to back. This shared machine's speed drifts over minutes; a ratio of two
    // figures measured seconds apart, taken as the median over the rounds, measures the
    // targets rather than the drift. Each round's paystate starts on a new store, so that no
    // round measures a store the rounds before it grew.
    let mut alternative = if config.skip_alternative {
        Err("skipped (--skip-alternative)".to_owned())
    } else {
        AlternativeTarget::start(&config, &provider, &reference_endpoint, work.path())
            .await
            .map_err(|error| error.to_string())
    };
    if let Err(error) = &alternative {
        eprintln!("alternative: not measured: {error}");
    }
    eprintln!("ceiling: starting");
    let ceiling_server =
        ceiling::start(&config.bench_exe, &work.path().join("ceiling.log")).await?;

    let mut ceiling_runs = Vec::new();
    let mut alternative_runs = Vec::new();
    let mut paystate_runs = Vec::new();
    let mut paystate_half_rate = None;
    let mut counted = Counted::default();
    for round in 0..config.rounds {
        if config.rounds > 1 {
            eprintln!("round {} of {}", round + 1, config.rounds);
        }
        let mut paystate = PaystateTarget::start(
            &config,
            &provider,
            &work.path().join(format!("round{round}")),
        )
        .await?;
        for &connections in &config.concurrencies {
            if let Ok(target) = &alternative {
                match target.measure(&config, round, connections).await {
                    Ok(run) => {
                        report_line(&run);
                        alternative_runs.push(run);
                    }
                    Err(error) => {
                        eprintln!("alternative: not measured further: {error}");
                        alternative = Err(error.to_string());
                    }
                }
            }
            let source = webhooks(
                &provider,
                &reference_endpoint,
                &format!("ceil{connections}r{round}"),
            );
            let pid = ceiling_server.pid();
            let run = measure(
                TargetKind::Ceiling,
                round,
                ceiling_server.address(),
                source,
                &plan(&config, connections, None),
                move || vec![pid],
                pid,
            )
            .await?;
            report_line(&run);
            ceiling_runs.push(run);

            let run = paystate.measure(&config, round, connections).await?;
            report_line(&run);
        }
        // Half the maximum rate (by the median rounds, all measured by now) runs after the
        // last round's loads on the same store, so it meets a store of the size the maximum
        // was measured on.
        if round + 1 == config.rounds {
            let mut all = paystate_runs.clone();
            all.extend(paystate.runs.iter().cloned());
            let best = config
                .concurrencies
                .iter()
                .filter_map(|&connections| median_run(&all, connections))
                .map(Measured::per_second)
                .fold(0.0, f64::max);
            paystate_half_rate = paystate.half_rate(&config, best).await?;
        }
        let (runs, round_counted) = paystate.end_round(&provider).await?;
        paystate_runs.extend(runs);
        counted.add(round_counted);
    }
    ceiling_server.stop().await?;
    let (alternative, alternative_disk_bytes_per_webhook) = match alternative {
        Ok(target) => {
            let disk = target.stop(&alternative_runs).await?;
            (Ok(alternative_runs), disk)
        }
        Err(error) => (Err(error), None),
    };

    // The grown log, the restart and the replay, on a store of their own.
    let log = if config.log_events > 0 {
        let paystate = PaystateTarget::start(&config, &provider, &work.path().join("log")).await?;
        Some(paystate.grown_log(&config, &provider).await?)
    } else {
        None
    };

    Ok(SuiteReport {
        config,
        ceiling: ceiling_runs,
        paystate: paystate_runs,
        alternative,
        alternative_disk_bytes_per_webhook,
        paystate_half_rate,
        client_counted: counted.client,
        server_counted: counted.server,
        events_after_runs: counted.events,
        disk_bytes_after_runs: counted.disk_bytes,
        log,
    })
}

/// What the rounds' paystate stores counted, summed over the rounds.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    /// (accepted, duplicates) as the client saw them.
    client: (u64, u64),
    /// (accepted, duplicates) as the server's provider view counted them.
    server: (u64, u64),
    /// Events in the stores, and their size on disk.
    events: u64,
    disk_bytes: u64,
}

impl Counted {
    fn add(&mut self, other: Counted) {
        self.client.0 += other.client.0;
        self.client.1 += other.client.1;
        self.server.0 += other.server.0;
        self.server.1 += other.server.1;
        self.events += other.events;
        self.disk_bytes += other.disk_bytes;
    }
}

/// paystate under test: the Vipps stub it registers at, the server, and what its loads sent.
struct PaystateTarget {
    stub: VippsStub,
    server: PaystateServer,
    data_dir: PathBuf,
    endpoint: WebhookEndpoint,
    msn: String,
    /// Every run creates its own payments; the query benchmark reads them back later.
    created: Vec<(WebhookMix, Vec<u64>)>,
    client_counted: (u64, u64),
    runs: Vec<Measured>,
}

impl PaystateTarget {
    /// Starts paystate on a new data directory, `data_dir`.
    async fn start(
        config: &SuiteConfig,
        provider: &BenchProvider,
        data_dir: &Path,
    ) -> Result<PaystateTarget, BenchError> {
        eprintln!(
            "paystate: starting {} on {}",
            config.paystate_bin.display(),
            data_dir.display()
        );
        let stub = VippsStub::start()
            .await
            .map_err(BenchError::io("starting the Vipps stub"))?;
        let data_dir = data_dir.to_path_buf();
        let server =
            PaystateServer::start(&config.paystate_bin, &data_dir, &stub.base_url()).await?;
        let endpoint = register_provider(
            server.server.address(),
            &server.admin_token,
            &stub,
            provider,
        )
        .await?;
        Ok(PaystateTarget {
            stub,
            server,
            data_dir,
            endpoint,
            msn: provider.msn.clone(),
            created: Vec::new(),
            client_counted: (0, 0),
            runs: Vec::new(),
        })
    }

    /// One load of new payments at `connections` connections (a `rate` of `None`: as fast as
    /// answers come).
    async fn load(
        &mut self,
        config: &SuiteConfig,
        round: usize,
        connections: usize,
        rate: Option<f64>,
        run_id: String,
    ) -> Result<Measured, BenchError> {
        let source = SignedWebhooks {
            mix: WebhookMix::new(&self.msn, &run_id),
            endpoint: self.endpoint.clone(),
        };
        let pid = self.server.server.pid();
        let run = measure(
            TargetKind::Paystate,
            round,
            self.server.server.address(),
            Arc::new(source.clone()),
            &plan(config, connections, rate),
            move || vec![pid],
            pid,
        )
        .await?;
        self.client_counted.0 += run.load.total.accepted;
        self.client_counted.1 += run.load.total.duplicates;
        self.created
            .push((source.mix, run.load.sent_per_connection.clone()));
        Ok(run)
    }

    async fn measure(
        &mut self,
        config: &SuiteConfig,
        round: usize,
        connections: usize,
    ) -> Result<Measured, BenchError> {
        let run_id = format!("ingest{connections}r{round}");
        let run = self.load(config, round, connections, None, run_id).await?;
        self.runs.push(run.clone());
        Ok(run)
    }

    /// Ends a round: what the client and the server counted, the store's size; stops the
    /// server. Returns the round's runs.
    async fn end_round(
        self,
        provider: &BenchProvider,
    ) -> Result<(Vec<Measured>, Counted), BenchError> {
        let server = &self.server;
        let server_counted = server
            .webhook_counters_awaiting(provider, self.client_counted, Duration::from_secs(10))
            .await?;
        let counted = Counted {
            client: self.client_counted,
            server: server_counted,
            events: server.log_head().await?.unwrap_or(0),
            disk_bytes: disk_usage(&self.data_dir.join("store")),
        };
        self.server.server.stop().await?;
        Ok((self.runs, counted))
    }

    /// A load at half of `best` (the maximum rate), at the most connections; `None` when
    /// nothing was measured.
    async fn half_rate(
        &mut self,
        config: &SuiteConfig,
        best: f64,
    ) -> Result<Option<Measured>, BenchError> {
        if best <= 0.0 {
            return Ok(None);
        }
        let connections = config.concurrencies.iter().copied().max().unwrap_or(64);
        let run = self
            .load(config, 0, connections, Some(best / 2.0), "half".into())
            .await?;
        eprint!("  at half the maximum rate ({:.0}/s): ", best / 2.0);
        report_line(&run);
        Ok(Some(run))
    }

    /// The log grown to its size, the restart on it and the replay.
    async fn grown_log(
        mut self,
        config: &SuiteConfig,
        provider: &BenchProvider,
    ) -> Result<LogRun, BenchError> {
        grow_log(
            &self.server,
            provider,
            &self.endpoint,
            config.log_events,
            &mut self.created,
        )
        .await?;
        let (accepted, duplicates) = self.server.webhook_counters(provider).await?;
        self.server.server.stop().await?;
        restart_query_replay(
            config,
            provider,
            &self.stub,
            &self.data_dir,
            &self.created,
            accepted + duplicates,
        )
        .await
    }
}

/// Of the runs at `connections` connections, the one with the median rate (of an even number,
/// the slower of the middle two).
pub fn median_run(runs: &[Measured], connections: usize) -> Option<&Measured> {
    let mut at: Vec<&Measured> = runs
        .iter()
        .filter(|run| run.load.plan.connections == connections)
        .collect();
    at.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    at.get(at.len().saturating_sub(1) / 2).copied()
}

/// Sends the webhook mix at 64 connections, in rounds, until the log holds `events` events;
/// records the payments each round created. A round lasts at most [`FILL_ROUND`], and no
/// longer than the rate of the round before needs to reach `events`, so the log ends close to
/// the size asked for rather than a whole round past it.
async fn grow_log(
    server: &PaystateServer,
    provider: &BenchProvider,
    endpoint: &WebhookEndpoint,
    events: u64,
    created: &mut Vec<(WebhookMix, Vec<u64>)>,
) -> Result<(), BenchError> {
    let mut head = server.log_head().await?.unwrap_or(0);
    let mut round = 0;
    let round_for = |remaining: f64, per_second: f64| {
        Duration::from_secs_f64((remaining / per_second).clamp(0.5, FILL_ROUND.as_secs_f64()))
    };
    let mut duration = FILL_ROUND;
    while head < events {
        let source = SignedWebhooks {
            mix: WebhookMix::new(&provider.msn, format!("fill{round}")),
            endpoint: endpoint.clone(),
        };
        let fill = LoadPlan {
            connections: 64,
            warmup: Duration::ZERO,
            duration,
            rate: None,
        };
        let result = load::run(server.server.address(), Arc::new(source.clone()), &fill).await?;
        created.push((source.mix, result.sent_per_connection));
        let next = server.log_head().await?.unwrap_or(head);
        if next <= head {
            return Err(BenchError::Setup(format!(
                "the log stopped growing at {head} events while filling it"
            )));
        }
        let per_second = (next - head) as f64 / duration.as_secs_f64();
        head = next;
        round += 1;
        eprintln!("  log: {head} events");
        duration = round_for(events.saturating_sub(head) as f64, per_second);
    }
    Ok(())
}

async fn restart_query_replay(
    config: &SuiteConfig,
    provider: &BenchProvider,
    stub: &VippsStub,
    data_dir: &Path,
    created: &[(WebhookMix, Vec<u64>)],
    webhooks: u64,
) -> Result<LogRun, BenchError> {
    let store_dir = data_dir.join("store");
    let disk_bytes = disk_usage(&store_dir);
    eprintln!("paystate: restarting on the grown log");
    let started = Instant::now();
    let server = PaystateServer::start(&config.paystate_bin, data_dir, &stub.base_url()).await?;
    loop {
        let ready = crate::targets::http_client::call(
            server.server.address(),
            Method::GET,
            "/readyz",
            None,
            None,
        )
        .await?;
        if ready.0 == StatusCode::OK {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(BenchError::Setup(format!(
                "not ready within {READY_TIMEOUT:?} after restart"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready_seconds = started.elapsed().as_secs_f64();

    let references: Vec<String> = created
        .iter()
        .flat_map(|(mix, sent)| {
            sent.iter().enumerate().flat_map(move |(connection, sent)| {
                (0..mix.payments_created(*sent))
                    .map(move |payment| mix.reference(connection, payment))
            })
        })
        .collect();
    let queries = PaymentQueries {
        provider_id: provider.id.clone(),
        references,
        admin_token: server.admin_token.clone(),
        host: server.server.address().to_string(),
    };
    let pid = server.server.pid();
    let query = measure(
        TargetKind::Paystate,
        0,
        server.server.address(),
        Arc::new(queries),
        &plan(config, config.query_connections, None),
        move || vec![pid],
        pid,
    )
    .await?;
    eprint!("  queries: ");
    report_line(&query);
    server.server.stop().await?;

    eprintln!("replay");
    let store_dir_for_replay = store_dir.clone();
    let replay = tokio::task::spawn_blocking(move || replay(&store_dir_for_replay))
        .await
        .map_err(|error| BenchError::Setup(format!("the replay task failed: {error}")))??;
    eprintln!(
        "  rebuild {:.0} events/s, raw iteration {:.0} events/s",
        replay.rebuild_events_per_second(),
        replay.raw_events_per_second()
    );
    Ok(LogRun {
        events: replay.events,
        webhooks,
        disk_bytes,
        ready_seconds,
        query,
        replay,
    })
}

/// The axum + PostgreSQL alternative: the cluster and the receiver in front of it.
struct AlternativeTarget {
    cluster: PostgresCluster,
    server: AlternativeServer,
    provider: BenchProvider,
    endpoint: WebhookEndpoint,
    disk_before: u64,
}

impl AlternativeTarget {
    async fn start(
        config: &SuiteConfig,
        provider: &BenchProvider,
        endpoint: &WebhookEndpoint,
        work: &Path,
    ) -> Result<AlternativeTarget, BenchError> {
        eprintln!("alternative: starting PostgreSQL");
        let base = config.base_dir.clone();
        let cluster = tokio::task::spawn_blocking(move || PostgresCluster::start(&base))
            .await
            .map_err(|error| {
                BenchError::Setup(format!("the PostgreSQL start task failed: {error}"))
            })??;
        let server = AlternativeServer::start(
            &config.bench_exe,
            &cluster,
            &provider.id,
            &endpoint.registered_url,
            &endpoint.secret,
            config.pool_size,
            &work.join("alternative.log"),
        )
        .await?;
        let disk_before = disk_usage(&cluster.data_dir());
        Ok(AlternativeTarget {
            cluster,
            server,
            provider: provider.clone(),
            endpoint: endpoint.clone(),
            disk_before,
        })
    }

    async fn measure(
        &self,
        config: &SuiteConfig,
        round: usize,
        connections: usize,
    ) -> Result<Measured, BenchError> {
        let source = webhooks(
            &self.provider,
            &self.endpoint,
            &format!("alt{connections}r{round}"),
        );
        let pid = self.server.server.pid();
        let cluster_pids = self.cluster.pids();
        let pids = move || {
            let mut pids = cluster_pids.clone();
            pids.push(pid);
            pids
        };
        let run = measure(
            TargetKind::Alternative,
            round,
            self.server.server.address(),
            source,
            &plan(config, connections, None),
            pids,
            pid,
        )
        .await?;
        // PostgreSQL vacuums and writes the pages this load dirtied later, in the background;
        // done now, that work does not land in the next target's measurement.
        self.cluster.settle().await?;
        Ok(run)
    }

    /// Stops the receiver and the cluster; returns the disk the cluster grew by per webhook
    /// `runs` stored.
    async fn stop(self, runs: &[Measured]) -> Result<Option<f64>, BenchError> {
        let stored: u64 = runs.iter().map(|run| run.load.total.acknowledged()).sum();
        let disk_after = disk_usage(&self.cluster.data_dir());
        self.server.server.stop().await?;
        drop(self.cluster);
        Ok(
            (stored > 0)
                .then(|| disk_after.saturating_sub(self.disk_before) as f64 / stored as f64),
        )
    }
}

fn webhooks(
    provider: &BenchProvider,
    endpoint: &WebhookEndpoint,
    run_id: &str,
) -> Arc<dyn RequestSource> {
    Arc::new(SignedWebhooks {
        mix: WebhookMix::new(&provider.msn, run_id),
        endpoint: endpoint.clone(),
    })
}

fn plan(config: &SuiteConfig, connections: usize, rate: Option<f64>) -> LoadPlan {
    LoadPlan {
        connections,
        warmup: config.warmup,
        duration: config.duration,
        rate,
    }
}

/// Runs `plan` and reads the CPU time of `pids()` at the start and the end of the
/// measurement window (the pid list is taken once, at the start).
async fn measure(
    target: TargetKind,
    round: usize,
    address: SocketAddr,
    source: Arc<dyn RequestSource>,
    plan: &LoadPlan,
    pids: impl Fn() -> Vec<u32> + Send + 'static,
    rss_pid: u32,
) -> Result<Measured, BenchError> {
    let (warmup, duration) = (plan.warmup, plan.duration);
    let sampler = tokio::spawn(async move {
        // The runner opens its window 20 ms after it starts.
        tokio::time::sleep(warmup + Duration::from_millis(20)).await;
        let pids = pids();
        let client = std::process::id();
        let read = || {
            (
                cpu_seconds_of(&pids),
                cpu_seconds(client).unwrap_or(0.0),
                machine_busy_seconds().unwrap_or(0.0),
            )
        };
        let before = read();
        tokio::time::sleep(duration).await;
        let after = read();
        (after.0 - before.0, after.1 - before.1, after.2 - before.2)
    });
    let load = load::run(address, source, plan).await?;
    let (cpu_seconds, client_cpu_seconds, machine_busy_seconds) = sampler
        .await
        .map_err(|error| BenchError::Setup(format!("the CPU sampler failed: {error}")))?;
    Ok(Measured {
        target,
        round,
        load,
        cpu_seconds,
        client_cpu_seconds,
        machine_busy_seconds,
        peak_rss_bytes: peak_rss_bytes(rss_pid),
    })
}

fn report_line(run: &Measured) {
    let latency = &run.load.latency;
    eprintln!(
        "  {:<22} {:>3} connections: {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  cpu {:>4.0}% (load generator {:>3.0}%, other {:>3.0}%)  failed {}",
        run.target.label(),
        run.load.plan.connections,
        run.per_second(),
        latency.p50.as_secs_f64() * 1e3,
        latency.p99.as_secs_f64() * 1e3,
        latency.p999.as_secs_f64() * 1e3,
        run.cpu_percent(),
        run.client_cpu_percent(),
        run.other_cpu_percent(),
        run.load.measured.failed + run.load.measured.transport_errors,
    );
}
