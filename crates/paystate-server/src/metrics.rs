//! Prometheus metrics: one recorder per process, rendered at `GET /metrics`.
//!
//! The `metrics` facade has one global recorder, so the exporter is installed once
//! ([`install`]) and every server in the process (several, in tests) shares it. Metric names are
//! constants here so that the code that records and the docs that list them agree.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Webhook deliveries by `outcome` (`accepted`, `duplicate`, `anomaly`, `rejected`,
/// `unavailable`, `unknown_provider`, `too_large`) and `provider`.
pub const WEBHOOKS_TOTAL: &str = "paystate_webhooks_total";
/// Rejection records not written because the per-minute budget was spent, by `provider`.
pub const WEBHOOK_REJECTIONS_SUPPRESSED_TOTAL: &str =
    "paystate_webhook_rejections_suppressed_total";
/// Durable append latency as seen by the server, in seconds.
pub const APPEND_SECONDS: &str = "paystate_append_duration_seconds";
/// Events per append batch written by the server.
pub const APPEND_BATCH_EVENTS: &str = "paystate_append_batch_events";
/// Events per group commit (one flush), recorded by the store's writer.
pub const STORE_BATCH_EVENTS: &str = "paystate_store_batch_events";
/// Recorded by the store itself: how long one durable append (group commit included) took.
pub const STORE_APPEND_SECONDS: &str = "paystate_store_append_seconds";
/// Recorded by the store's writer: how long writing one projection commit took. Appends
/// that arrive meanwhile wait behind it.
pub const STORE_PROJECTION_WRITE_SECONDS: &str = "paystate_store_projection_write_seconds";
/// The log's head position, sampled every 5 seconds.
pub const LOG_HEAD: &str = "paystate_log_head_position";
/// The log's head position, set by the store itself after every group commit.
pub const STORE_HEAD: &str = "paystate_store_head_position";
/// The position the projections have applied.
pub const PROJECTIONS_APPLIED: &str = "paystate_projections_applied_position";
/// Events the projections could not use, by `reason` (`unknown_type`, `undecodable`,
/// `orphaned`): a newer writer, or a bug worth a look.
pub const PROJECTIONS_SKIPPED: &str = "paystate_projections_skipped_events";
/// Events between the log head and a reactor's position, by `reactor`.
pub const REACTOR_LAG: &str = "paystate_reactor_lag_events";
/// HTTP requests by `method`, matched `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "paystate_http_requests_total";
/// Polls of a payment's events at Vipps by `provider` and `outcome` (`answered`, `failed`).
pub const PAYMENT_POLLS_TOTAL: &str = "paystate_payment_polls_total";
/// Events those polls returned, by `provider` and `outcome`: `recorded` (no webhook had
/// delivered it), `known`, `unreadable`.
pub const POLLED_EVENTS_TOTAL: &str = "paystate_polled_events_total";

/// Latency buckets in seconds, for histograms rather than summaries (quantiles can be
/// aggregated across instances only from buckets).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on first use and returns its handle.
///
/// If another recorder was installed first (an embedding program's), the handle still renders,
/// but only what this recorder sees: nothing. That is logged once.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(APPEND_SECONDS.to_owned()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(STORE_APPEND_SECONDS.to_owned()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(STORE_PROJECTION_WRITE_SECONDS.to_owned()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(APPEND_BATCH_EVENTS.to_owned()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(STORE_BATCH_EVENTS.to_owned()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                    )
                });
            let builder = match builder {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::warn!(%error, "metric buckets refused; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        WEBHOOKS_TOTAL,
        "Webhook deliveries by outcome and provider."
    );
    metrics::describe_counter!(
        WEBHOOK_REJECTIONS_SUPPRESSED_TOTAL,
        "Rejected deliveries counted but not recorded in full (budget spent)."
    );
    metrics::describe_histogram!(
        APPEND_SECONDS,
        metrics::Unit::Seconds,
        "Durable append latency."
    );
    metrics::describe_histogram!(APPEND_BATCH_EVENTS, "Events per append batch.");
    metrics::describe_histogram!(STORE_BATCH_EVENTS, "Events per group commit of the store.");
    metrics::describe_histogram!(
        STORE_PROJECTION_WRITE_SECONDS,
        metrics::Unit::Seconds,
        "Time the store's writer spent writing one projection commit; appends wait behind it."
    );
    metrics::describe_gauge!(LOG_HEAD, "Position of the last durable event.");
    metrics::describe_gauge!(
        STORE_HEAD,
        "Position of the last durable event, set by the store after every group commit."
    );
    metrics::describe_histogram!(
        STORE_APPEND_SECONDS,
        metrics::Unit::Seconds,
        "Time of one durable append inside the store, group commit included."
    );
    metrics::describe_gauge!(
        PROJECTIONS_APPLIED,
        "Position the projections have applied."
    );
    metrics::describe_gauge!(
        PROJECTIONS_SKIPPED,
        "Events the projections could not use, by reason."
    );
    metrics::describe_gauge!(REACTOR_LAG, "Events a reactor is behind the log head.");
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by method, route and status."
    );
    metrics::describe_counter!(
        PAYMENT_POLLS_TOTAL,
        "Polls of a quiet open payment's events at Vipps, by provider and outcome."
    );
    metrics::describe_counter!(
        POLLED_EVENTS_TOTAL,
        "Events returned by payment polls, by provider and outcome (recorded: no webhook had delivered it)."
    );
}

/// Makes every per-provider counter of `provider` exist, at 0 until something happens: a
/// series that does not exist cannot be alerted on ("accepted stays flat"), and a rate over
/// a series that appears at its first increment misses that increment.
pub fn announce_provider(provider: &str) {
    crate::ingestion::plan::OutcomeCounters::announce(provider);
    let zero = |name: &'static str, outcome: &'static str| {
        metrics::counter!(name, "outcome" => outcome, "provider" => provider.to_owned())
            .increment(0);
    };
    for outcome in ["registered", "adopted", "failed", "deleted"] {
        zero(crate::registration::REGISTRATION_OUTCOMES_TOTAL, outcome);
    }
    for outcome in ["answered", "failed"] {
        zero(PAYMENT_POLLS_TOTAL, outcome);
    }
    for outcome in ["recorded", "known", "unreadable"] {
        zero(POLLED_EVENTS_TOTAL, outcome);
    }
    metrics::counter!(WEBHOOK_REJECTIONS_SUPPRESSED_TOTAL, "provider" => provider.to_owned())
        .increment(0);
}

/// The current metrics in Prometheus text format.
pub fn render(handle: &PrometheusHandle) -> String {
    // Histograms need periodic upkeep; rendering is a natural moment for it.
    handle.run_upkeep();
    handle.render()
}
