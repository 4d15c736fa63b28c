//! The store benchmark: what the disk can sync, what group commit makes of it, how fast the
//! log reads back.

use crate::machine::Machine;
use anyhow::Context;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use paystate_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, SledStore, StreamId,
};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Seconds each measurement of the write path runs.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Events in the log that `read_all` reads back.
    #[arg(long, default_value_t = 1_000_000)]
    read_events: u64,
    /// Payload size of every benchmark event, in bytes (a typical webhook body).
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// The numbers of concurrent appenders to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    appenders: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct AppendRun {
    pub appenders: usize,
    pub appends_per_second: f64,
    pub mean_batch: f64,
    pub p50: Duration,
    pub p99: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreReport {
    pub args: StoreArgs,
    pub fdatasync_per_second: f64,
    pub appends: Vec<AppendRun>,
    pub read_all_per_second: f64,
    pub raw_chunks_per_second: f64,
    pub raw_events_per_second: f64,
    pub log_bytes_per_event: f64,
}

pub fn run(args: &StoreArgs, dir: &Path) -> anyhow::Result<StoreReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let seconds = Duration::from_secs(args.seconds.max(1));

    eprintln!("store: measuring raw write+fdatasync for {seconds:?}");
    let fdatasync_per_second = raw_fdatasync(dir, seconds)?;

    let mut appends = Vec::new();
    for &appenders in &args.appenders {
        eprintln!("store: {appenders} concurrent appenders for {seconds:?}");
        let scratch = scratch_dir(dir)?;
        let store = Arc::new(SledStore::open(scratch.path().join("data"))?);
        appends.push(runtime.block_on(durable_appends(
            store,
            appenders,
            seconds,
            args.payload_bytes,
        ))?);
    }

    eprintln!("store: writing a {}-event log", args.read_events);
    let scratch = scratch_dir(dir)?;
    let data = scratch.path().join("data");
    let (read_all_per_second, log_bytes_per_event) = {
        let store = Arc::new(SledStore::open(&data)?);
        runtime.block_on(fill(store.clone(), args.read_events, args.payload_bytes))?;
        eprintln!("store: reading it back");
        let rate = read_all_rate(&*store)?;
        runtime.block_on(store.close())?;
        (
            rate,
            disk_usage(&data) as f64 / args.read_events.max(1) as f64,
        )
    };
    eprintln!("store: raw sled iteration of the same tree");
    let (raw_chunks_per_second, raw_events_per_second) = raw_iteration_rate(&data)?;

    Ok(StoreReport {
        args: args.clone(),
        fdatasync_per_second,
        appends,
        read_all_per_second,
        raw_chunks_per_second,
        raw_events_per_second,
        log_bytes_per_event,
    })
}

fn scratch_dir(dir: &Path) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("paystate-bench-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a scratch directory in {}", dir.display()))
}

/// The disk's ceiling for one-at-a-time durable writes: 4 KiB written, then `fdatasync`.
fn raw_fdatasync(dir: &Path, duration: Duration) -> anyhow::Result<f64> {
    let scratch = scratch_dir(dir)?;
    let path = scratch.path().join("fdatasync.probe");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = [0x5Au8; 4096];
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed() < duration {
        file.write_at(&block, (syncs % 16) * 4096)?;
        file.sync_data()?;
        syncs += 1;
    }
    Ok(syncs as f64 / started.elapsed().as_secs_f64())
}

fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut payload = format!("{{\"seq\":{seed},\"pad\":\"").into_bytes();
    payload.resize(size.saturating_sub(2).max(payload.len()), b'x');
    payload.extend_from_slice(b"\"}");
    payload
}

async fn durable_appends(
    store: Arc<SledStore>,
    appenders: usize,
    duration: Duration,
    payload_bytes: usize,
) -> anyhow::Result<AppendRun> {
    let before = store.stats();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for appender in 0..appenders {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("bench-{appender}"));
            let mut latencies = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let event = NewEvent::new("bench_event", 1, payload(payload_bytes, seq))
                    .with_dedupe_key(format!("bench-{appender}-{seq}"));
                let sent = Instant::now();
                let outcome = store
                    .append(&stream, ExpectedVersion::Any, vec![event])
                    .await?;
                latencies.push(sent.elapsed());
                anyhow::ensure!(
                    matches!(outcome, AppendOutcome::Appended { .. }),
                    "unexpected {outcome:?}"
                );
                seq += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = store.stats();
    store.close().await?;
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let commits = after.commits - before.commits;
    let appends = after.appends - before.appends;
    Ok(AppendRun {
        appenders,
        appends_per_second: latencies.len() as f64 / elapsed,
        mean_batch: if commits == 0 {
            0.0
        } else {
            appends as f64 / commits as f64
        },
        p50: percentile(0.50),
        p99: percentile(0.99),
    })
}

/// Writes `events` events quickly: large batches from a few concurrent appenders.
async fn fill(store: Arc<SledStore>, events: u64, payload_bytes: usize) -> anyhow::Result<()> {
    const BATCH: u64 = 500;
    const APPENDERS: u64 = 8;
    let batches = events.div_ceil(BATCH);
    let mut tasks = Vec::new();
    for appender in 0..APPENDERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = appender;
            while batch < batches {
                let count = BATCH.min(events - batch * BATCH);
                let stream = StreamId::new(format!("payment-{}", batch % 1000));
                let events = (0..count)
                    .map(|i| {
                        NewEvent::new("bench_event", 1, payload(payload_bytes, batch * BATCH + i))
                    })
                    .collect();
                store.append(&stream, ExpectedVersion::Any, events).await?;
                batch += APPENDERS;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    anyhow::ensure!(
        store.head()? == Position(events),
        "the log did not reach {events} events"
    );
    Ok(())
}

/// `read_all` over the whole log in pages; the second of two passes (a warm cache).
fn read_all_rate(store: &dyn EventStore) -> anyhow::Result<f64> {
    const PAGE: usize = 1024;
    let mut rate = 0.0;
    for _ in 0..2 {
        let started = Instant::now();
        let mut after = Position::START;
        let mut read = 0u64;
        loop {
            let page = store.read_all(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.position;
            read += page.len() as u64;
        }
        rate = read as f64 / started.elapsed().as_secs_f64();
    }
    Ok(rate)
}

/// Iterating the events tree with sled alone, touching every value but decoding nothing: the
/// ceiling for `read_all`. Records are stored in chunks keyed by their last position, so the
/// events a chunk holds are the difference between its key and the previous one. Returns
/// (chunks/s, events/s).
fn raw_iteration_rate(data: &Path) -> anyhow::Result<(f64, f64)> {
    let db = sled::open(data)?;
    let tree = db.open_tree(SledStore::EVENTS_TREE)?;
    let mut rates = (0.0, 0.0);
    for _ in 0..2 {
        let started = Instant::now();
        let mut last_position = 0u64;
        let mut chunks = 0u64;
        let mut bytes = 0usize;
        for entry in tree.iter() {
            let (key, value) = entry?;
            last_position = u64::from_be_bytes(key.as_ref().try_into().context("a chunk key")?);
            bytes += value.len();
            chunks += 1;
        }
        anyhow::ensure!(bytes > 0 || chunks == 0, "empty chunks");
        let seconds = started.elapsed().as_secs_f64();
        rates = (chunks as f64 / seconds, last_position as f64 / seconds);
    }
    Ok(rates)
}

fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn per_second(value: f64) -> String {
    let rounded = value.round() as u64;
    let digits = rounded.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What profiling (`perf record`) of this benchmark showed; it explains the shape of the
/// numbers, whichever run produced them.
const READING_THE_NUMBERS: &str = "
How to read these numbers (from profiling this benchmark with `perf`):

- **One appender** waits for two device round trips per append: sled's `flush()` issues
  `sync_file_range` on the data it writes, then the store calls `fdatasync` (see
  [store.md](store.md#what-durable-means)), plus two thread handoffs (to the writer, back
  from the sync thread). Both device round trips vary with the disk's load, as the raw
  fdatasync rate above does.
- **Many appenders** share those round trips (group commit), and the sync thread flushes one
  group while the writer thread is already writing the next. What limits 64 appenders on 2
  cores is CPU, not the disk: per append the writer spends its time in sled's copy-on-write
  node updates (one stream-index entry, one dedupe entry, the dedupe lookup) and in `malloc`,
  and the appenders' own tasks need the same two cores. Each appender writes one long stream,
  a dedupe key on every append: such a stream keeps its runs in `stream_index` and its keys
  by hash in `dedupe_hashes` ([store.md](store.md#on-disk-format-version-4)), so its keys,
  sequential as written, land at random places in the tree. Before store format 4 they were
  stored as written, next to each other, and 64 appenders made 12-16% more appends/s (three
  alternating pairs: 42,030-42,447 against 35,360-39,449/s). No stream paystate writes is like
  that: a payment's stream keeps its keys in its own entry, and the keys of long streams
  (anomalies) were random already. The mean batch stays around half the
  appenders because an answered appender must be scheduled again before it can send its next
  append. The ratio to one appender therefore depends on how busy the machine is; on this
  shared machine it moved between about 5x and 14x from run to run.
- **`read_all`** reads chunks (the records of one commit, up to 6 KiB, one sled value), so
  sled's per-key cost is paid once per chunk; what remains is decoding and allocating the
  envelopes (three allocations each: stream, type name, payload).
";

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

impl StoreReport {
    fn rows(&self) -> Vec<[String; 3]> {
        let mut rows = vec![[
            "raw write 4 KiB + fdatasync".to_owned(),
            format!("{} /s", per_second(self.fdatasync_per_second)),
            "the disk's ceiling for unbatched durable writes".to_owned(),
        ]];
        for run in &self.appends {
            rows.push([
                format!(
                    "durable appends, {} appender{}",
                    run.appenders,
                    if run.appenders == 1 { "" } else { "s" }
                ),
                format!("{} /s", per_second(run.appends_per_second)),
                format!(
                    "mean batch {:.1} appends per flush; latency p50 {}, p99 {}",
                    run.mean_batch,
                    millis(run.p50),
                    millis(run.p99)
                ),
            ]);
        }
        rows.push([
            format!(
                "read_all over {} events",
                per_second(self.args.read_events as f64)
            ),
            format!("{} events/s", per_second(self.read_all_per_second)),
            "decoded envelopes in pages of 1,024 (as a subscription reads), warm cache".to_owned(),
        ]);
        rows.push([
            "raw sled iteration, same tree".to_owned(),
            format!("{} events/s", per_second(self.raw_events_per_second)),
            format!(
                "ceiling for read_all: {} chunks/s, values touched, nothing decoded; {:.0} bytes on disk per event",
                per_second(self.raw_chunks_per_second),
                self.log_bytes_per_event
            ),
        ]);
        rows
    }

    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(vec!["measurement", "result", "notes"]);
        for row in self.rows() {
            table.add_row(row.to_vec());
        }
        format!("{table}\n{}", self.verdicts().join("\n"))
    }

    fn verdicts(&self) -> Vec<String> {
        let rate = |appenders| {
            self.appends
                .iter()
                .find(|run| run.appenders == appenders)
                .map_or(0.0, |run| run.appends_per_second)
        };
        let (one, many) = (rate(1), rate(64));
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        vec![
            format!(
                "target: >= 20,000 durable appends/s at 64 appenders: {} ({})",
                verdict(many >= 20_000.0),
                per_second(many)
            ),
            format!(
                "target: 64 appenders >= 10x one appender: {} ({:.1}x)",
                verdict(one > 0.0 && many >= 10.0 * one),
                if one > 0.0 { many / one } else { 0.0 }
            ),
            format!(
                "target: read_all >= 1,000,000 events/s: {} ({})",
                verdict(self.read_all_per_second >= 1_000_000.0),
                per_second(self.read_all_per_second)
            ),
        ]
    }

    pub fn markdown(&self, machine: &Machine) -> String {
        let mut out = String::from("## Store\n\n");
        out.push_str(&format!(
            "Measured {} with `cargo run --release -p paystate-bench -- store --write-docs` \
             ({} s per write measurement, {}-byte payloads, each append one event with a dedupe key, \
             each acknowledged only after flush + fdatasync).\n\n",
            machine.date, self.args.seconds, self.args.payload_bytes
        ));
        out.push_str(&format!(
            "Machine: {}, {} cores, {} memory; disk {}; {}. Load average (1, 5, 15 min) at the end of the run: {} \
             (the machine is shared with builds and tests; the disk and CPU numbers move with that load).\n\n",
            machine.cpu, machine.cores, machine.memory, machine.filesystem, machine.rustc, machine.load
        ));
        out.push_str("| measurement | result | notes |\n|---|---|---|\n");
        for [name, result, notes] in self.rows() {
            out.push_str(&format!("| {name} | {result} | {notes} |\n"));
        }
        out.push('\n');
        for verdict in self.verdicts() {
            out.push_str(&format!("- {verdict}\n"));
        }
        out.push_str(READING_THE_NUMBERS);
        out
    }
}
