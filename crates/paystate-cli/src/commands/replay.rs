//! `paystate replay`: rebuild every projection from the log; with `--verify`, compare the
//! rebuild with the projections the server persisted.

use super::audit::changes::{changes, EXACT};
use super::offline::{self, DataDirArg};
use super::outcome::Outcome;
use anyhow::Context;
use indicatif::ProgressBar;
use paystate_projections::{persist, Projections, ProjectionsHandle, Skipped};
use paystate_store::{EventStore, Position};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Rebuild every projection from the event log (--verify: compare with the persisted ones).
///
/// Rebuilds providers, payments and the listing indexes by folding the whole log. Without
/// --verify the rebuilt projections replace the persisted ones (what `paystate serve` loads on
/// start). With --verify nothing is written: the persisted projections, brought up to the log
/// head, are compared with the rebuild, and the first difference is named (exit code 1). Shows
/// a progress bar on a terminal and ends with the events/s figure.
///
/// Examples:
///   paystate replay --data ./paystate-data
///   paystate replay --verify --data ./paystate-data
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, after_help = crate::commands::offline::OFFLINE_AND_EXIT_HELP)]
pub struct ReplayArgs {
    #[command(flatten)]
    data: DataDirArg,

    /// Compare the rebuild with the persisted projections instead of replacing them; exit 1
    /// naming the first difference.
    #[arg(long)]
    verify: bool,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<Outcome> {
    let store = args.data.open_existing()?;
    let head = store.head()?;
    let result = if args.verify {
        verify(store.as_ref(), head)
    } else {
        replace(store.as_ref(), head)
    };
    offline::runtime()?.block_on(offline::close(&store))?;
    result
}

fn replace(store: &dyn EventStore, head: Position) -> anyhow::Result<Outcome> {
    let bar = progress_bar(head);
    let started = Instant::now();
    let rebuilt = rebuild_and_persist(store, |applied| bar.set_position(applied.0))?;
    bar.finish_and_clear();
    print_rate("rebuilt", &rebuilt, started.elapsed())?;
    crate::say!(
        "persisted projections replaced (checkpoint {})",
        rebuilt.applied
    )?;
    Ok(Outcome::Clean)
}

fn verify(store: &dyn EventStore, head: Position) -> anyhow::Result<Outcome> {
    let Some(live) = persist::load(store).context("loading the persisted projections")? else {
        if head.0 == 0 {
            crate::say!("the log is empty and nothing is persisted: nothing to compare")?;
            return Ok(Outcome::Clean);
        }
        crate::say!(
            "DIFFERENCE: the data directory holds no usable persisted projections for its {head} \
             events (run `paystate replay` to build them, or start the server)"
        )?;
        return Ok(Outcome::ProblemFound);
    };
    let checkpoint = live.applied();
    // The server persists periodically and on stop; what it would serve is the persisted state
    // brought up to the head, exactly as its follower does on start.
    let live = ProjectionsHandle::new(live);
    paystate_projections::catch_up(&live, store)
        .context("bringing the persisted projections up to the log head")?;
    let live = live.snapshot();

    let bar = progress_bar(head);
    let started = Instant::now();
    let rebuilt =
        paystate_projections::rebuild_with_progress(store, |applied| bar.set_position(applied.0))?;
    bar.finish_and_clear();
    print_rate("rebuilt", &RebuildCounts::of(&rebuilt), started.elapsed())?;

    let differences = live.differences(&rebuilt);
    match differences.first() {
        None => {
            let plural = |count: usize, one: &str, many: &str| {
                format!("{count} {}", if count == 1 { one } else { many })
            };
            crate::say!(
                "projections equal: persisted (checkpoint {checkpoint}, caught up to {}) and rebuilt agree on {} and {}",
                live.applied(),
                plural(rebuilt.providers().count(), "provider", "providers"),
                plural(rebuilt.payment_count(), "payment", "payments")
            )?;
            Ok(Outcome::Clean)
        }
        Some(first) => {
            crate::say!("DIFFERENCE (persisted vs rebuilt): {first}")?;
            for line in view_differences(&live, &rebuilt).iter().take(MAX_DETAIL) {
                crate::say!("  {line}")?;
            }
            if differences.len() > 1 {
                crate::say!("... and {} more difference(s)", differences.len() - 1)?;
            }
            Ok(Outcome::ProblemFound)
        }
    }
}

/// How many field-level differences are printed under the first difference.
const MAX_DETAIL: usize = 10;

/// The API views (provider and payment JSON) that differ between `live` and `rebuilt`, field
/// by field, e.g. `payment vipps-test/acme-order-1001: aggregate.captured 4000 -> 8000`. Empty
/// when the difference lies only in state the views do not show.
fn view_differences(live: &Projections, rebuilt: &Projections) -> Vec<String> {
    let mut lines = Vec::new();
    let views = |projections: &Projections| -> BTreeMap<String, Value> {
        let mut views = BTreeMap::new();
        for provider in projections.providers() {
            let view = serde_json::to_value(provider.view()).unwrap_or(Value::Null);
            views.insert(format!("provider {}", provider.id), view);
        }
        let mut after = 0;
        loop {
            let page = projections.list_payments(None, None, after, 1000);
            for payment in &page.payments {
                let key = format!("payment {}/{}", payment.provider_id, payment.reference);
                views.insert(key, serde_json::to_value(payment).unwrap_or(Value::Null));
            }
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        views
    };
    let (live, rebuilt) = (views(live), views(rebuilt));
    let keys: BTreeSet<&String> = live.keys().chain(rebuilt.keys()).collect();
    for key in keys {
        let (persisted, fresh) = (
            live.get(key).unwrap_or(&Value::Null),
            rebuilt.get(key).unwrap_or(&Value::Null),
        );
        for change in changes(persisted, fresh, EXACT) {
            lines.push(format!(
                "{key}: {} persisted {} rebuilt {}",
                change.field, change.from, change.to
            ));
        }
    }
    lines
}

/// Rebuilds every projection from the log and writes it as the persisted state (dropping the
/// old one first). `progress` sees the applied position after each page.
pub fn rebuild_and_persist(
    store: &dyn EventStore,
    progress: impl FnMut(Position),
) -> anyhow::Result<RebuildCounts> {
    let mut projections = paystate_projections::rebuild_with_progress(store, progress)?;
    projections.mark_all_changed();
    let counts = RebuildCounts::of(&projections);
    store
        .projection_reset(persist::PROJECTION_NAME)
        .context("dropping the persisted projections")?;
    ProjectionsHandle::new(projections)
        .commit(store)
        .context("writing the rebuilt projections")?;
    Ok(counts)
}

fn progress_bar(head: Position) -> ProgressBar {
    super::progress::events_bar(head.0, "events")
}

/// What a rebuild produced, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildCounts {
    pub applied: Position,
    pub providers: usize,
    pub payments: usize,
    pub skipped: Skipped,
}

impl RebuildCounts {
    fn of(projections: &Projections) -> RebuildCounts {
        RebuildCounts {
            applied: projections.applied(),
            providers: projections.providers().count(),
            payments: projections.payment_count(),
            skipped: projections.skipped().clone(),
        }
    }
}

fn print_rate(what: &str, counts: &RebuildCounts, elapsed: Duration) -> anyhow::Result<()> {
    let events = counts.applied.0;
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    };
    crate::say!(
        "{what} {} and {} from {events} events in {seconds:.3} s ({rate:.0} events/s)",
        counted(counts.providers, "provider"),
        counted(counts.payments, "payment"),
    )?;
    let skipped = &counts.skipped;
    if *skipped != Skipped::default() {
        crate::say!(
            "events the projections could not use: {} of unknown type, {} undecodable, {} orphaned",
            skipped.unknown_types,
            skipped.undecodable,
            skipped.orphaned
        )?;
    }
    Ok(())
}

/// `1 provider`, `2 providers`.
fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
