//! Kill-and-restart test of the sled store.
//!
//! The test binary re-executes itself as a child that appends through several concurrent
//! writers and prints every acknowledged position with a digest of its payload. The parent
//! SIGKILLs the child at a random moment, reopens the store, and checks that every
//! acknowledged event is there with identical bytes, that positions have no gap and were
//! never reused, that the hash chain verifies, that the stream and dedupe indexes agree with
//! the log, and that a projection committed alongside the appends (and now and then reset and
//! committed again, as a rebuild does) is consistent with its checkpoint.
//!
//! `PAYSTATE_CRASH_CYCLES` sets the number of kills (default 20); `PAYSTATE_CRASH_SEED` replays
//! a run's kill timings.

use paystate_store::{
    AppendOutcome, EventStore, ExpectedVersion, KvOp, NewEvent, Position, SledStore, StreamId,
    StreamVersion,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CHILD_DIR_ENV: &str = "PAYSTATE_CRASH_CHILD_DIR";
const CHILD_CYCLE_ENV: &str = "PAYSTATE_CRASH_CHILD_CYCLE";
const WRITERS: usize = 6;
const PROJECTION: &str = "writer-0-version";
/// Writer 0 resets its projection before every this many commits...
const RESET_EVERY: u64 = 10;
/// ...and commits it again with these many filler entries, which the reset then removes.
const FILLER_ENTRIES: usize = 300;

fn main() -> ExitCode {
    match std::env::var(CHILD_DIR_ENV) {
        Ok(dir) => child(Path::new(&dir)),
        Err(_) => parent(),
    }
}

fn digest(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

// ---------------------------------------------------------------- child

fn child(dir: &Path) -> ExitCode {
    let cycle: u64 = std::env::var(CHILD_CYCLE_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("child: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let store = match SledStore::open(dir) {
            Ok(store) => Arc::new(store),
            Err(error) => {
                eprintln!("child: open failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        // A state without a checkpoint is what a reset cut off by a kill leaves: no state,
        // reset again before committing on top of it (as the projections do when they open).
        let leftover = match store.projection_checkpoint(PROJECTION) {
            Ok(checkpoint) => checkpoint.is_none(),
            Err(error) => {
                eprintln!("child: reading the checkpoint failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        if leftover {
            if let Err(error) = store.projection_reset(PROJECTION) {
                eprintln!("child: reset failed: {error}");
                return ExitCode::FAILURE;
            }
        }
        println!("ready");
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                write_forever(store, cycle, writer).await
            }));
        }
        for writer in writers {
            if let Ok(Err(error)) = writer.await {
                eprintln!("child: writer failed: {error}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    })
}

async fn write_forever(store: Arc<SledStore>, cycle: u64, writer: usize) -> Result<(), String> {
    for seq in 0u64.. {
        // Even writers append to one long stream (its index entries in the index trees), odd
        // ones to a new stream every five appends (kept in the stream's own entry).
        let stream = match writer % 2 {
            0 => StreamId::new(format!("writer-{writer}")),
            _ => StreamId::new(format!("writer-{writer}-{}", seq / 5)),
        };
        let count = 1 + (seq % 3) as usize;
        let events: Vec<NewEvent> = (0..count)
            .map(|index| {
                let filler = "z".repeat(((seq * 37 + index as u64 * 11) % 700) as usize);
                let payload =
                    format!("cycle {cycle} writer {writer} seq {seq} event {index} {filler}");
                let event = NewEvent::new("crash_probe", 1, payload.into_bytes());
                if index == 0 {
                    event.with_dedupe_key(format!("c{cycle}-w{writer}-s{seq}"))
                } else {
                    event
                }
            })
            .collect();
        let digests: Vec<String> = events.iter().map(|e| digest(&e.payload)).collect();
        let outcome = store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .map_err(|e| e.to_string())?;
        let AppendOutcome::Appended {
            first,
            stream_version,
            last,
        } = outcome
        else {
            return Err(format!("unexpected outcome {outcome:?}"));
        };
        {
            let mut out = std::io::stdout().lock();
            for (offset, digest) in digests.iter().enumerate() {
                writeln!(out, "ack {} {digest}", first.0 + offset as u64)
                    .map_err(|e| e.to_string())?;
            }
        }
        if writer == 0 {
            let store = store.clone();
            // Every so often the projection is reset and committed again with its filler, as a
            // rebuild does: a kill may land in the middle of the reset's removals.
            let rebuild = seq % RESET_EVERY == RESET_EVERY - 1;
            tokio::task::spawn_blocking(move || {
                let mut ops = vec![KvOp::Put {
                    key: b"version".to_vec(),
                    value: stream_version.0.to_be_bytes().to_vec(),
                }];
                if rebuild {
                    store.projection_reset(PROJECTION)?;
                    ops.extend((0..FILLER_ENTRIES).map(|n| KvOp::Put {
                        key: format!("filler/{n:04}").into_bytes(),
                        value: vec![7; 64],
                    }));
                }
                store.commit_projection(PROJECTION, last, ops)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- parent

/// xorshift64*: enough randomness for kill timings, reproducible from the printed seed.
struct Timings(u64);

impl Timings {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1)
    }
}

fn parent() -> ExitCode {
    let cycles: u64 = std::env::var("PAYSTATE_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("PAYSTATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("crash: {cycles} kill cycles, PAYSTATE_CRASH_SEED={seed}");
    match run_cycles(cycles, seed) {
        Ok(acknowledged) => {
            println!("crash: {cycles} kills, {acknowledged} acknowledged events, all present");
            println!("crash: 1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("crash: FAILED (seed {seed}): {failure}");
            println!("crash: 0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn run_cycles(cycles: u64, seed: u64) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut timings = Timings(seed);
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    for cycle in 0..cycles {
        let acks = run_child_once(&exe, &data, cycle, &mut timings)?;
        for (position, digest) in acks {
            if let Some(earlier) = acknowledged.insert(position, digest.clone()) {
                if earlier != digest {
                    return Err(format!(
                        "cycle {cycle}: position {position} was acknowledged twice"
                    ));
                }
            }
        }
        check_store(&data, &acknowledged).map_err(|e| format!("after cycle {cycle}: {e}"))?;
    }
    if acknowledged.is_empty() {
        return Err("no append was ever acknowledged; the test proved nothing".into());
    }
    Ok(acknowledged.len())
}

/// Runs one child and kills it; returns what it acknowledged.
fn run_child_once(
    exe: &Path,
    data: &Path,
    cycle: u64,
    timings: &mut Timings,
) -> Result<Vec<(u64, String)>, String> {
    let mut child = Command::new(exe)
        .env(CHILD_DIR_ENV, data)
        .env(CHILD_CYCLE_ENV, cycle.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Most kills land while appends are in flight; some land during open and recovery.
    let during_open = timings.next(5) == 0;
    let mut lines = Vec::new();
    if !during_open {
        loop {
            match lines_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line == "ready" => break,
                Ok(line) => lines.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("cycle {cycle}: the child never became ready"));
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(timings.next(if during_open {
        40
    } else {
        120
    })));
    if let Ok(Some(status)) = child.try_wait() {
        return Err(format!(
            "cycle {cycle}: the child exited on its own ({status})"
        ));
    }
    child.kill().map_err(|e| format!("kill: {e}"))?;
    child.wait().map_err(|e| format!("wait: {e}"))?;
    reader.join().map_err(|_| "reader thread panicked")?;
    lines.extend(lines_rx.try_iter());

    let mut acks = Vec::new();
    let count = lines.len();
    for (index, line) in lines.into_iter().enumerate() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("ack"), Some(position), Some(digest)) if digest.len() == 64 => {
                let position = position.parse().map_err(|_| format!("bad line {line:?}"))?;
                acks.push((position, digest.to_owned()));
            }
            (Some("ready"), None, None) => {}
            // The kill can cut the last line short: that acknowledgement was never seen.
            _ if index + 1 == count => {}
            _ => return Err(format!("unexpected child output {line:?}")),
        }
    }
    Ok(acks)
}

fn check_store(data: &Path, acknowledged: &BTreeMap<u64, String>) -> Result<(), String> {
    let store = SledStore::open(data).map_err(|e| format!("reopen: {e}"))?;
    // The durable-head record only ever names positions already durable: a crash never makes
    // the reopened store refuse writes.
    if let Some(refusal) = store.refusal() {
        return Err(format!("the reopened store refuses writes: {refusal}"));
    }
    let report = store.verify().map_err(|e| e.to_string())?;
    if let Some((position, reason)) = report.first_bad {
        return Err(format!("verify: position {position}: {reason}"));
    }
    let head = store.head().map_err(|e| e.to_string())?;
    if report.events != head.0 {
        return Err(format!(
            "verify walked {} events but the head is {head}",
            report.events
        ));
    }
    let log = store
        .read_all_raw(Position::START, usize::MAX)
        .map_err(|e| e.to_string())?;
    for (index, envelope) in log.iter().enumerate() {
        if envelope.position.0 != index as u64 + 1 {
            return Err(format!(
                "gap: index {index} holds position {}",
                envelope.position
            ));
        }
    }
    for (position, expected) in acknowledged {
        let Some(envelope) = position.checked_sub(1).and_then(|i| log.get(i as usize)) else {
            return Err(format!(
                "acknowledged position {position} is missing (head {head})"
            ));
        };
        if &digest(&envelope.payload) != expected {
            return Err(format!(
                "acknowledged position {position} has different bytes"
            ));
        }
    }

    // The indexes agree with the log: no entry points at a missing event, none is missing.
    let mut streams: BTreeMap<&str, Vec<Position>> = BTreeMap::new();
    for envelope in &log {
        streams
            .entry(envelope.stream.as_str())
            .or_default()
            .push(envelope.position);
        if let Some(key) = &envelope.dedupe_key {
            let indexed = store
                .dedupe_position(&envelope.stream, key)
                .map_err(|e| e.to_string())?;
            if indexed != Some(envelope.position) {
                return Err(format!(
                    "dedupe key of position {} is indexed at {indexed:?}",
                    envelope.position
                ));
            }
        }
    }
    for (name, positions) in &streams {
        let stream = StreamId::new(*name);
        let version = store.stream_version(&stream).map_err(|e| e.to_string())?;
        let read: Vec<Position> = store
            .read_stream(&stream, StreamVersion(0), usize::MAX)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|envelope| envelope.position)
            .collect();
        if version.0 != positions.len() as u64 || &read != positions {
            return Err(format!(
                "stream {name} holds {} events in the log, its index says version {version} and reads {} events",
                positions.len(),
                read.len()
            ));
        }
    }

    // The projection's state and checkpoint were committed together, so the version it holds
    // must be the version of the writer-0 event at its checkpoint. A reset removes the
    // checkpoint before the state: entries left without one are no state, but a checkpoint
    // with only part of the filler would be a reset that exposed a half-removed state.
    if let Some(checkpoint) = store
        .projection_checkpoint(PROJECTION)
        .map_err(|e| e.to_string())?
    {
        let filler = store
            .projection_scan(PROJECTION, b"filler/")
            .map_err(|e| e.to_string())?
            .len();
        if filler != 0 && filler != FILLER_ENTRIES {
            return Err(format!(
                "projection at checkpoint {checkpoint} holds {filler} of its {FILLER_ENTRIES} filler entries"
            ));
        }
        let value = store
            .projection_get(PROJECTION, b"version")
            .map_err(|e| e.to_string())?
            .ok_or("checkpoint without state")?;
        let version = <[u8; 8]>::try_from(value.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| "bad projection value")?;
        let at_checkpoint = store
            .read_stream(
                &StreamId::new("writer-0"),
                StreamVersion(version.saturating_sub(1)),
                1,
            )
            .map_err(|e| e.to_string())?;
        match at_checkpoint.first() {
            Some(envelope) if envelope.position == checkpoint => {}
            other => {
                return Err(format!(
                    "projection at checkpoint {checkpoint} holds version {version}, whose event is {:?}",
                    other.map(|e| e.position)
                ))
            }
        }
    }
    Ok(())
}
