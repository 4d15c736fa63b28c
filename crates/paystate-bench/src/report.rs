//! The end-to-end section of `docs/benchmarks.md`: the machine, every figure with its ratio
//! to the ceiling and to the alternative, and the targets of the ingestion issue, met or
//! missed.

use crate::suite::{Measured, SuiteReport, TargetKind};
use std::fmt::Write as _;
use std::time::Duration;

/// Where and with what the numbers were measured, as (label, value) rows.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub rows: Vec<(String, String)>,
}

/// A target of the issue and how the run did against it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    pub name: &'static str,
    pub wanted: String,
    pub measured: String,
    /// `None` when the run could not measure it.
    pub met: Option<bool>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// CPU of other processes (in % of one core) above which a run is reported as disturbed.
const DISTURBED_PERCENT: f64 = 20.0;

/// The connection count the ratio targets are stated at.
const TARGET_CONNECTIONS: usize = 64;

/// Checks the targets of the issue against a run.
pub fn targets(report: &SuiteReport) -> Vec<TargetCheck> {
    // Each ratio is the median of the rounds' ratios: two loads measured seconds apart.
    let ratio =
        |other: TargetKind| report.median_ratio(TargetKind::Paystate, other, TARGET_CONNECTIONS);
    let mut checks = Vec::new();
    let to_ceiling = ratio(TargetKind::Ceiling);
    checks.push(TargetCheck {
        name: "ingestion vs the ceiling, 64 connections",
        wanted: ">= 25%".into(),
        measured: to_ceiling.map_or("not measured".into(), |r| format!("{:.1}%", 100.0 * r)),
        met: to_ceiling.map(|r| r >= 0.25),
    });
    let to_alternative = ratio(TargetKind::Alternative);
    checks.push(TargetCheck {
        name: "ingestion vs axum + PostgreSQL, 64 connections",
        wanted: ">= 2x".into(),
        measured: to_alternative.map_or("not measured".into(), |r| format!("{r:.2}x")),
        met: to_alternative.map(|r| r >= 2.0),
    });
    let half_p99 = report
        .paystate_half_rate
        .as_ref()
        .map(|run| run.load.latency.p99);
    checks.push(TargetCheck {
        name: "p99 at half the maximum rate",
        wanted: "<= 10 ms".into(),
        measured: half_p99.map_or("not measured".into(), millis),
        met: half_p99.map(|p99| p99 <= Duration::from_millis(10)),
    });
    let replay = report.log.as_ref().map(|log| log.replay);
    checks.push(TargetCheck {
        name: "replay rate",
        wanted: ">= 500,000 events/s".into(),
        measured: replay.map_or("not measured".into(), |r| {
            format!("{} events/s", thousands(r.rebuild_events_per_second()))
        }),
        met: replay.map(|r| r.rebuild_events_per_second() >= 500_000.0),
    });
    checks.push(TargetCheck {
        name: "replay vs raw iteration of the same tree",
        wanted: ">= 50%".into(),
        measured: replay.map_or("not measured".into(), |r| {
            format!(
                "{:.1}%",
                100.0 * r.rebuild_events_per_second() / r.raw_events_per_second()
            )
        }),
        met: replay.map(|r| r.rebuild_events_per_second() >= 0.5 * r.raw_events_per_second()),
    });
    let peak = report
        .log
        .as_ref()
        .and_then(|log| Some((log.events, log.query.peak_rss_bytes?)));
    checks.push(TargetCheck {
        name: "peak RSS with the grown log",
        wanted: "<= 256 MiB with 1,000,000 events".into(),
        measured: peak.map_or("not measured".into(), |(events, rss)| {
            format!(
                "{:.0} MiB with {} events",
                rss as f64 / MIB,
                thousands(events as f64)
            )
        }),
        met: peak.map(|(events, rss)| events >= 1_000_000 && rss as f64 <= 256.0 * MIB),
    });
    checks
}

/// The markdown of the section.
pub fn markdown(report: &SuiteReport, environment: &Environment) -> String {
    let mut out = String::new();
    let config = &report.config;
    let _ = writeln!(out, "## End to end: ingestion, queries, replay\n");
    let _ = writeln!(
        out,
        "Measured in one run of `paystate-bench ingest` (part of `just bench`, that is \
         `cargo run --release -p paystate-bench -- all --write-docs`): {} s of warm-up, then {} s measured per load. The load generator runs on the same machine \
         and shares its cores with the server under test. The three targets run side by side; \
         the loads are measured in {} rounds, each round running every connection count against \
         the alternative, the ceiling and paystate back to back. Each row below is the target's \
         median round; each ratio target is the median of the rounds' ratios (see Rounds).\n",
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64(),
        config.rounds
    );
    let _ = writeln!(out, "| machine | |\n|---|---|");
    for (label, value) in &environment.rows {
        let _ = writeln!(out, "| {label} | {value} |");
    }

    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | wanted | measured | |\n|---|---|---|---|");
    for check in targets(report) {
        let verdict = match check.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {verdict} |",
            check.name, check.wanted, check.measured
        );
    }

    let _ = writeln!(out, "\n### Ingestion\n");
    let _ = writeln!(
        out,
        "Vipps-signed webhooks (`x-ms-date`, `x-ms-content-sha256`, HMAC-SHA256 `Authorization`) over \
         HTTP/1.1 keep-alive, one request in flight per connection. The mix per connection: each payment \
         `CREATED`, `AUTHORIZED`, `CAPTURED`; every {}th payment's `AUTHORIZED` is sent a second time, byte \
         for byte (a duplicate). A rate counts 200 answers inside the measurement window. Server CPU is \
         user + system time of the server process (for the alternative, plus every PostgreSQL process) \
         in the window, in % of one core; the load generator's CPU and that of every other process on the \
         machine (\"other\", from `/proc/stat`, which also holds kernel work on loopback traffic charged to \
         no process; anything well above zero means the figures were disturbed) \
         are shown beside it. Peak RSS is the server process's `VmHWM`.\n",
        crate::load::WebhookMix::new("0000", "x").duplicate_every()
    );
    let _ = writeln!(
        out,
        "| target | connections | webhooks/s | p50 | p99 | p99.9 | server CPU | CPU per webhook | load generator CPU | other CPU | peak RSS | vs ceiling | vs alternative |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let kinds = [
        TargetKind::Ceiling,
        TargetKind::Paystate,
        TargetKind::Alternative,
    ];
    for kind in kinds {
        for &connections in &config.concurrencies {
            let Some(run) = report.at(kind, connections) else {
                continue;
            };
            // As the targets take them: the median of the rounds' ratios.
            let vs = |other: TargetKind| {
                report
                    .median_ratio(kind, other, connections)
                    .map_or("–".into(), |ratio| format!("{ratio:.2}"))
            };
            let _ = writeln!(
                out,
                "{} | {} | {} |",
                row(run),
                vs(TargetKind::Ceiling),
                vs(TargetKind::Alternative)
            );
        }
    }
    let busiest_other = kinds
        .iter()
        .flat_map(|&kind| report.runs(kind))
        .map(Measured::other_cpu_percent)
        .fold(0.0, f64::max);
    if busiest_other > DISTURBED_PERCENT {
        let _ = writeln!(
            out,
            "\n**Disturbed:** other processes on the machine used up to {busiest_other:.0}% of a core during a \
             measurement; the figures of those rows understate what this machine can do."
        );
    }
    if let Err(reason) = &report.alternative {
        let _ = writeln!(out, "\nThe alternative was not measured: {reason}.");
    } else {
        let _ = writeln!(
            out,
            "\nThe alternative: the same verifier, then `BEGIN; INSERT` the raw webhook; `INSERT ... ON CONFLICT DO UPDATE` \
             the payment row; `COMMIT` with `synchronous_commit = on` and `fsync = on`, through a pool of {} connections, \
             on a PostgreSQL cluster the benchmark starts with `crates/paystate-bench/scripts/postgres.sh` (which installs \
             Debian's `postgresql` when it is missing).",
            config.pool_size
        );
    }
    rounds_table(&mut out, report);
    if let Some(half) = &report.paystate_half_rate {
        let _ = writeln!(out, "\npaystate at half its maximum rate ({}/s scheduled, latency counted from the scheduled send time), on the last round's store right after its loads:\n", thousands(half.load.plan.rate.unwrap_or(0.0)));
        let _ = writeln!(
            out,
            "| target | connections | webhooks/s | p50 | p99 | p99.9 | server CPU | CPU per webhook | load generator CPU | other CPU | peak RSS |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n{} |",
            row(half)
        );
    }
    let (accepted, duplicates) = report.client_counted;
    let (server_accepted, server_duplicates) = report.server_counted;
    let _ = writeln!(
        out,
        "\nEvery 200 from paystate is durable: it is sent after the append's group commit has flushed and fsynced \
         the log. Over the rounds, counted by the client: {} accepted and {} duplicates; counted by the servers \
         (provider view): {} accepted and {} duplicates.",
        thousands(accepted as f64),
        thousands(duplicates as f64),
        thousands(server_accepted as f64),
        thousands(server_duplicates as f64)
    );
    if report.events_after_runs > 0 {
        let _ = writeln!(
            out,
            "\nDisk: after their loads the rounds' paystate stores held {} events in {:.1} MiB ({:.0} bytes per event).",
            thousands(report.events_after_runs as f64),
            report.disk_bytes_after_runs as f64 / MIB,
            report.disk_bytes_after_runs as f64 / report.events_after_runs as f64
        );
    }
    if let Some(per_webhook) = report.alternative_disk_bytes_per_webhook {
        let _ = writeln!(out, "The alternative's cluster grew by {per_webhook:.0} bytes per webhook (tables, indexes and WAL).");
    }

    if let Some(log) = &report.log {
        let _ = writeln!(
            out,
            "\n### A log of {} events: restart, queries, replay\n",
            thousands(log.events as f64)
        );
        let _ = writeln!(
            out,
            "The log was grown with the same load ({} webhooks, {:.2} events per webhook) to {:.0} MiB on disk \
             ({:.0} bytes per event), then the server was restarted on it.\n",
            thousands(log.webhooks as f64),
            log.events as f64 / log.webhooks.max(1) as f64,
            log.disk_bytes as f64 / MIB,
            log.disk_bytes as f64 / log.events.max(1) as f64
        );
        let query = &log.query;
        let _ = writeln!(out, "| figure | value |\n|---|---:|");
        let _ = writeln!(
            out,
            "| ready after restart (`/readyz`) | {:.2} s |",
            log.ready_seconds
        );
        let _ = writeln!(
            out,
            "| `GET /payments/{{provider}}/{{reference}}`, {} connections | {} requests/s, p50 {}, p99 {}, p99.9 {} |",
            query.load.plan.connections,
            thousands(query.per_second()),
            millis(query.load.latency.p50),
            millis(query.load.latency.p99),
            millis(query.load.latency.p999)
        );
        let _ = writeln!(
            out,
            "| server peak RSS (`VmHWM`) after restart and queries | {} |",
            query.peak_rss_bytes.map_or("unknown".into(), |rss| format!(
                "{:.0} MiB",
                rss as f64 / MIB
            ))
        );
        let replay = &log.replay;
        let _ = writeln!(
            out,
            "| replay: rebuild every projection (`paystate_projections::rebuild`) | {} events/s ({:.2} s) |",
            thousands(replay.rebuild_events_per_second()),
            replay.rebuild_seconds
        );
        let _ = writeln!(
            out,
            "| read ceiling: raw iteration of the same sled tree | {} events/s ({:.2} s for {} entries, {:.0} MiB) |",
            thousands(replay.raw_events_per_second()),
            replay.raw_seconds,
            thousands(replay.raw_entries as f64),
            replay.raw_bytes as f64 / MIB
        );
        let _ = writeln!(
            out,
            "| replay / raw iteration | {:.1}% |",
            100.0 * replay.rebuild_events_per_second() / replay.raw_events_per_second()
        );
    }
    out
}

/// Every round at the target connection count: the three rates and paystate's two ratios.
fn rounds_table(out: &mut String, report: &SuiteReport) {
    let rate = |kind: TargetKind, round: usize| {
        report
            .runs(kind)
            .iter()
            .find(|run| run.round == round && run.load.plan.connections == TARGET_CONNECTIONS)
            .map_or("–".into(), |run| {
                format!("{}/s", thousands(run.per_second()))
            })
    };
    let ratio = |other: TargetKind, round: usize| {
        report.round_ratio(TargetKind::Paystate, other, TARGET_CONNECTIONS, round)
    };
    if report
        .round_ratios(
            TargetKind::Paystate,
            TargetKind::Ceiling,
            TARGET_CONNECTIONS,
        )
        .is_empty()
    {
        return;
    }
    let _ = writeln!(
        out,
        "\n#### Rounds at {TARGET_CONNECTIONS} connections\n\n\
         | round | ceiling | paystate | alternative | paystate vs ceiling | paystate vs alternative |\n\
         |---:|---:|---:|---:|---:|---:|"
    );
    for round in 0..report.config.rounds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            round + 1,
            rate(TargetKind::Ceiling, round),
            rate(TargetKind::Paystate, round),
            rate(TargetKind::Alternative, round),
            ratio(TargetKind::Ceiling, round)
                .map_or("–".into(), |r| format!("{:.1}%", 100.0 * r)),
            ratio(TargetKind::Alternative, round).map_or("–".into(), |r| format!("{r:.2}x")),
        );
    }
}

fn row(run: &Measured) -> String {
    let latency = &run.load.latency;
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0}% | {} | {:.0}% | {:.0}% | {}",
        run.target.label(),
        run.load.plan.connections,
        thousands(run.per_second()),
        millis(latency.p50),
        millis(latency.p99),
        millis(latency.p999),
        run.cpu_percent(),
        run.cpu_micros_per_request()
            .map_or("–".into(), |micros| format!("{micros:.0} µs")),
        run.client_cpu_percent(),
        run.other_cpu_percent(),
        run.peak_rss_bytes
            .map_or("–".into(), |rss| format!("{:.0} MiB", rss as f64 / MIB)),
    )
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// A whole number with thin thousands separators: `12,345`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The version of `package` in a `Cargo.lock`'s text (the first one listed).
pub fn locked_version(lock: &str, package: &str) -> Option<String> {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_owned());
        }
    }
    None
}

/// The running kernel's release.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LatencySummary, LoadPlan, LoadResult, OutcomeCounts};
    use crate::replay::ReplayReport;
    use crate::suite::{LogRun, SuiteConfig};

    const SECOND: Duration = Duration::from_secs(1);

    /// A run of `target` at 64 connections that acknowledged `per_second` for one second.
    fn measured(target: TargetKind, per_second: u64, p99: Duration) -> Measured {
        Measured {
            target,
            round: 0,
            load: LoadResult {
                plan: LoadPlan {
                    connections: TARGET_CONNECTIONS,
                    warmup: Duration::ZERO,
                    duration: SECOND,
                    rate: None,
                },
                measured: OutcomeCounts {
                    ok: per_second,
                    ..OutcomeCounts::default()
                },
                total: OutcomeCounts::default(),
                latency: LatencySummary {
                    p99,
                    ..LatencySummary::default()
                },
                sent_per_connection: Vec::new(),
            },
            cpu_seconds: 1.0,
            client_cpu_seconds: 0.2,
            machine_busy_seconds: 1.2,
            peak_rss_bytes: Some(200 * 1024 * 1024),
        }
    }

    fn report(paystate: u64, half_p99: Duration, rebuild_seconds: f64) -> SuiteReport {
        let millisecond = Duration::from_millis(1);
        SuiteReport {
            config: SuiteConfig {
                paystate_bin: "paystate".into(),
                bench_exe: "paystate-bench".into(),
                base_dir: "/tmp".into(),
                concurrencies: vec![TARGET_CONNECTIONS],
                rounds: 1,
                warmup: Duration::ZERO,
                duration: SECOND,
                pool_size: 16,
                log_events: 1_000_000,
                query_connections: 64,
                skip_alternative: false,
            },
            ceiling: vec![measured(TargetKind::Ceiling, 40_000, millisecond)],
            paystate: vec![measured(TargetKind::Paystate, paystate, millisecond)],
            alternative: Ok(vec![measured(TargetKind::Alternative, 5_000, millisecond)]),
            alternative_disk_bytes_per_webhook: None,
            paystate_half_rate: Some(measured(TargetKind::Paystate, paystate / 2, half_p99)),
            client_counted: (0, 0),
            server_counted: (0, 0),
            events_after_runs: 0,
            disk_bytes_after_runs: 0,
            log: Some(LogRun {
                events: 1_000_000,
                webhooks: 500_000,
                disk_bytes: 0,
                ready_seconds: 1.0,
                query: measured(TargetKind::Paystate, 10_000, millisecond),
                replay: ReplayReport {
                    events: 1_000_000,
                    payments: 1,
                    rebuild_seconds,
                    raw_seconds: 1.0,
                    raw_entries: 1,
                    raw_bytes: 1,
                },
            }),
        }
    }

    fn verdicts(report: &SuiteReport) -> Vec<Option<bool>> {
        targets(report).into_iter().map(|check| check.met).collect()
    }

    #[test]
    fn a_run_that_clears_every_bar_meets_every_target() {
        let good = report(12_000, Duration::from_millis(9), 1.5);
        assert_eq!(verdicts(&good), vec![Some(true); 6]);
    }

    #[test]
    fn each_target_is_missed_on_its_own_figure() {
        // 9,000/s is 22.5% of the ceiling but still 1.8x the alternative's 5,000/s.
        let slow = report(9_000, Duration::from_millis(9), 1.5);
        assert_eq!(&verdicts(&slow)[..2], &[Some(false), Some(false)]);
        let laggy = report(12_000, Duration::from_millis(11), 1.5);
        assert_eq!(verdicts(&laggy)[2], Some(false));
        // 400,000 events/s misses the absolute rate and half of the raw 1,000,000 events/s.
        let slow_replay = report(12_000, Duration::from_millis(9), 2.5);
        assert_eq!(&verdicts(&slow_replay)[3..5], &[Some(false), Some(false)]);
    }

    #[test]
    fn figures_that_were_not_measured_are_said_so() {
        let mut partial = report(12_000, Duration::from_millis(9), 1.5);
        partial.alternative = Err("skipped".into());
        partial.log = None;
        let verdicts = verdicts(&partial);
        assert_eq!(verdicts[1], None);
        assert_eq!(&verdicts[3..], &[None, None, None]);
        let text = markdown(&partial, &Environment::default());
        assert!(text.contains("The alternative was not measured: skipped."));
    }

    /// `report` with three rounds at the target connection count: ceiling and paystate rates
    /// per round.
    fn rounds(ceiling: [u64; 3], paystate: [u64; 3]) -> SuiteReport {
        let mut report = report(12_000, Duration::from_millis(9), 1.5);
        report.config.rounds = 3;
        let runs = |kind: TargetKind, rates: [u64; 3]| {
            (0..3)
                .map(|round| Measured {
                    round,
                    ..measured(kind, rates[round], Duration::from_millis(1))
                })
                .collect::<Vec<_>>()
        };
        report.ceiling = runs(TargetKind::Ceiling, ceiling);
        report.paystate = runs(TargetKind::Paystate, paystate);
        report.alternative = Ok(runs(TargetKind::Alternative, [5_000, 5_000, 5_000]));
        report
    }

    #[test]
    fn a_ratio_target_takes_the_median_of_the_rounds_ratios() {
        // Per round 20%, 30% and 26%: the median is 26%. The medians of the rates (50,000 and
        // 15,000) would give 30%, a ratio of loads measured rounds apart.
        let report = rounds([40_000, 50_000, 60_000], [8_000, 15_000, 15_600]);
        assert_eq!(
            report.round_ratios(
                TargetKind::Paystate,
                TargetKind::Ceiling,
                TARGET_CONNECTIONS
            ),
            vec![0.2, 0.3, 0.26]
        );
        let checks = targets(&report);
        assert_eq!(checks[0].measured, "26.0%");
        assert_eq!(checks[0].met, Some(true));
        // The rows show each target's median round.
        let median = report.at(TargetKind::Paystate, TARGET_CONNECTIONS).unwrap();
        assert_eq!((median.round, median.per_second()), (1, 15_000.0));
        let text = markdown(&report, &Environment::default());
        // The row's ratios are the rounds' medians too: 26% of the ceiling, 3x the alternative.
        assert!(text.contains("| 0.26 | 3.00 |"), "{text}");
        assert!(
            text.contains("| 1 | 40,000/s | 8,000/s | 5,000/s | 20.0% | 1.60x |"),
            "{text}"
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn locked_versions_are_found_by_exact_name() {
        let lock = "[[package]]\nname = \"hyper-util\"\nversion = \"0.1.2\"\n\n[[package]]\nname = \"hyper\"\nversion = \"1.5.0\"\n";
        assert_eq!(locked_version(lock, "hyper").as_deref(), Some("1.5.0"));
        assert_eq!(locked_version(lock, "axum"), None);
    }
}
