//! The store's share of ingesting webhooks, measured without HTTP: concurrent appenders each
//! append what one webhook appends (a ~700-byte receipt and a ~300-byte payment fact with a
//! dedupe key, to the payment's stream) while a follower reads the log right behind the head,
//! as the projections do. Prints events/s and the CPU time per event of each thread group.
//!
//! ```text
//! cargo run --release -p paystate-store --example webhook_appends -- [--appenders 64] \
//!     [--seconds 10 | --appends N] [--no-follower] [--dir /path]
//! ```
//!
//! `--appends N` stops after N appends instead of after a time, for instruction counts under
//! `valgrind --tool=callgrind`.

use paystate_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, SledStore, StreamId,
    Subscription, SubscriptionItem,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The paystate binary's allocator: glibc's malloc alone costs the writer a third of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    appenders: usize,
    seconds: u64,
    appends: Option<u64>,
    follower: bool,
    dir: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        appenders: 64,
        seconds: 10,
        appends: None,
        follower: true,
        dir: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || {
            given
                .next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--appenders" => args.appenders = value().parse().expect("--appenders: a number"),
            "--seconds" => args.seconds = value().parse().expect("--seconds: a number"),
            "--appends" => args.appends = Some(value().parse().expect("--appends: a number")),
            "--no-follower" => args.follower = false,
            "--dir" => args.dir = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn receipt(order: u64, attempt: u64) -> Vec<u8> {
    let mut body = format!(
        r#"{{"msn":"123456","reference":"acme-order-{order}","pspReference":"{attempt}","name":"AUTHORIZED","amount":{{"currency":"NOK","value":{}}},"timestamp":"2026-11-28T08:00:00.000Z","idempotencyKey":null,"success":true,"headers":{{"x-ms-date":"Sat, 28 Nov 2026 08:00:00 GMT","x-ms-content-sha256":"#,
        1000 + order % 9000
    )
    .into_bytes();
    body.resize(690, b'A');
    body.extend_from_slice(br#""}}"#);
    body
}

fn fact(order: u64) -> Vec<u8> {
    let mut body = format!(
        r#"{{"type":"authorized","provider":"vipps-test","reference":"acme-order-{order}","amount_minor":{},"currency":"NOK","at":"2026-11-28T08:00:00Z","note":""#,
        1000 + order % 9000
    )
    .into_bytes();
    body.resize(295, b'n');
    body.extend_from_slice(br#""}"#);
    body
}

/// CPU seconds used so far by each group of threads, keyed by thread name (digits dropped).
fn cpu_by_thread_group() -> BTreeMap<String, f64> {
    let mut groups = BTreeMap::new();
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name: String = stat[open + 1..close]
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let used = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>())
            .unwrap_or(0.0);
        *groups.entry(name).or_insert(0.0) += used / ticks;
    }
    groups
}

fn main() {
    let args = parse_args();
    let scratch = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("a scratch directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .enable_all()
        .build()
        .expect("a runtime");
    let store = Arc::new(SledStore::open(scratch.path().join("data")).expect("a store"));
    let appended = Arc::new(AtomicU64::new(0));
    let followed = Arc::new(AtomicU64::new(0));

    let started = Instant::now();
    let cpu_before = cpu_by_thread_group();
    runtime.block_on(async {
        let deadline = started + Duration::from_secs(args.seconds);
        let follower = args.follower.then(|| {
            let (store, followed) = (store.clone(), followed.clone());
            tokio::spawn(async move {
                let store: Arc<dyn EventStore> = store;
                let mut subscription = Subscription::new(store, Position::START);
                while let Ok(item) = subscription.next().await {
                    if let SubscriptionItem::Event(envelope) = item {
                        followed.store(envelope.position.0, Ordering::Relaxed);
                    }
                }
            })
        });
        let budget = Arc::new(AtomicU64::new(args.appends.unwrap_or(u64::MAX)));
        let mut tasks = Vec::new();
        for appender in 0..args.appenders as u64 {
            let (store, appended, budget) = (store.clone(), appended.clone(), budget.clone());
            tasks.push(tokio::spawn(async move {
                let mut attempt = 0u64;
                while Instant::now() < deadline
                    && budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                        .is_ok()
                {
                    // Many distinct payments, a few events each, as a day of webhooks.
                    let order = appender * 1_000_000 + attempt / 3;
                    let stream = StreamId::new(format!("payment-vipps-test-acme-order-{order}"));
                    let events = vec![
                        NewEvent::new("webhook_received", 1, receipt(order, attempt)),
                        NewEvent::new("payment_authorized", 1, fact(order))
                            .with_dedupe_key(format!("vipps-test:acme-order-{order}:{attempt}")),
                    ];
                    let outcome = store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("an append");
                    assert!(matches!(outcome, AppendOutcome::Appended { .. }));
                    appended.fetch_add(2, Ordering::Relaxed);
                    attempt += 1;
                }
            }));
        }
        for task in tasks {
            task.await.expect("an appender");
        }
        if let Some(follower) = follower {
            let head = store.head().expect("the head");
            while followed.load(Ordering::Relaxed) < head.0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            follower.abort();
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_by_thread_group();
    let stats = store.stats();
    let events = appended.load(Ordering::Relaxed) as f64;

    println!(
        "{} appenders, follower {}: {:.0} events/s ({:.0} webhooks/s), {:.1} appends per commit, {:.1} s",
        args.appenders,
        if args.follower { "on" } else { "off" },
        events / elapsed,
        events / 2.0 / elapsed,
        stats.mean_appends_per_commit(),
        elapsed
    );
    println!(
        "  {:.0} commits/s, {:.1} events per commit",
        stats.commits as f64 / elapsed,
        stats.events as f64 / stats.commits.max(1) as f64
    );
    let mut total = 0.0;
    for (group, after) in &cpu_after {
        let used = after - cpu_before.get(group).copied().unwrap_or(0.0);
        total += used;
        if used > 0.0 {
            println!(
                "  {group:<18} {:>7.2} µs/event",
                used * 1e6 / events.max(1.0)
            );
        }
    }
    println!(
        "  {:<18} {:>7.2} µs/event",
        "total",
        total * 1e6 / events.max(1.0)
    );
}
