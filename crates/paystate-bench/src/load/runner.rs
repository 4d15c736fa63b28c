//! Driving the connections: each one a keep-alive HTTP/1.1 connection with one request in
//! flight, so `connections` is exactly the concurrency the server sees.

use super::latency::{new_histogram, LatencySummary};
use super::source::{Outcome, RequestSource};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Consecutive failed connection attempts after which a connection gives up.
const CONNECT_ATTEMPTS: u32 = 20;

/// How a load run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// Run this long before measuring (connections open, caches warm); not counted.
    pub warmup: Duration,
    /// How long the measurement lasts.
    pub duration: Duration,
    /// `None`: each connection sends its next request as soon as the answer is in (closed
    /// loop, the maximum rate). `Some(r)`: requests are scheduled at `r` per second in total
    /// and latency counts from the scheduled time, so a stall is not hidden by the sender
    /// waiting for it (no coordinated omission).
    pub rate: Option<f64>,
}

/// Answers by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub accepted: u64,
    pub duplicates: u64,
    pub ok: u64,
    pub failed: u64,
    /// Connections lost or refused (the request had no answer).
    pub transport_errors: u64,
}

impl OutcomeCounts {
    /// Answers that acknowledged the request with a 200.
    pub fn acknowledged(&self) -> u64 {
        self.accepted + self.duplicates + self.ok
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Ok => self.ok += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    fn merge(&mut self, other: &OutcomeCounts) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.ok += other.ok;
        self.failed += other.failed;
        self.transport_errors += other.transport_errors;
    }
}

/// What a load run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    pub plan: LoadPlan,
    /// Answers received inside the measurement window.
    pub measured: OutcomeCounts,
    /// Every answer, warm-up included (what the server saw).
    pub total: OutcomeCounts,
    pub latency: LatencySummary,
    /// Requests each connection sent, warm-up included: with the workload this says which
    /// payments exist.
    pub sent_per_connection: Vec<u64>,
}

impl LoadResult {
    /// 200 answers per second inside the measurement window.
    pub fn acknowledged_per_second(&self) -> f64 {
        self.measured.acknowledged() as f64 / self.plan.duration.as_secs_f64()
    }
}

/// Why a load run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("connecting to {address} failed {CONNECT_ATTEMPTS} times in a row: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("a load connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the plan needs at least one connection and a positive rate")]
    InvalidPlan,
}

/// Runs `plan` against `address` with the requests of `source`.
pub async fn run(
    address: SocketAddr,
    source: Arc<dyn RequestSource>,
    plan: &LoadPlan,
) -> Result<LoadResult, LoadError> {
    if plan.connections == 0 || plan.rate.is_some_and(|rate| rate.is_nan() || rate <= 0.0) {
        return Err(LoadError::InvalidPlan);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let window = Window {
        start: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
    };
    let period = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate));
    let tasks: Vec<_> = (0..plan.connections)
        .map(|connection| {
            let source = source.clone();
            // Spread the paced connections evenly over one period.
            let first = start
                + period.map_or(Duration::ZERO, |period| {
                    period.mul_f64(connection as f64 / plan.connections as f64)
                });
            tokio::spawn(drive(address, source, connection, first, period, window))
        })
        .collect();
    let mut result = LoadResult {
        plan: plan.clone(),
        measured: OutcomeCounts::default(),
        total: OutcomeCounts::default(),
        latency: LatencySummary::default(),
        sent_per_connection: Vec::with_capacity(plan.connections),
    };
    let mut histogram = new_histogram();
    for task in tasks {
        let report = task.await??;
        result.measured.merge(&report.measured);
        result.total.merge(&report.total);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = histogram.add(&report.histogram);
        result.sent_per_connection.push(report.sent);
    }
    result.latency = LatencySummary::of(&histogram);
    Ok(result)
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

struct ConnectionReport {
    measured: OutcomeCounts,
    total: OutcomeCounts,
    histogram: hdrhistogram::Histogram<u64>,
    sent: u64,
}

async fn drive(
    address: SocketAddr,
    source: Arc<dyn RequestSource>,
    connection: usize,
    first: Instant,
    period: Option<Duration>,
    window: Window,
) -> Result<ConnectionReport, LoadError> {
    let mut report = ConnectionReport {
        measured: OutcomeCounts::default(),
        total: OutcomeCounts::default(),
        histogram: new_histogram(),
        sent: 0,
    };
    let mut sender = connect(address).await?;
    tokio::time::sleep_until(first).await;
    let mut scheduled = first;
    loop {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        // Paced: wait for the slot; latency counts from the slot, even when late.
        let started = match period {
            Some(period) => {
                tokio::time::sleep_until(scheduled).await;
                let slot = scheduled;
                scheduled += period;
                slot
            }
            None => now,
        };
        let request = source.request(connection, report.sent);
        report.sent += 1;
        let answer = send(&mut sender, request).await;
        let finished = Instant::now();
        let in_window = started >= window.start && finished <= window.end;
        match answer {
            Ok((status, body)) => {
                let outcome = source.classify(status, &body);
                report.total.add(outcome);
                if in_window {
                    report.measured.add(outcome);
                    let micros =
                        u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX);
                    report.histogram.saturating_record(micros.max(1));
                }
            }
            Err(_) => {
                report.total.transport_errors += 1;
                if in_window {
                    report.measured.transport_errors += 1;
                }
                sender = connect(address).await?;
            }
        }
    }
    Ok(report)
}

async fn send(
    sender: &mut SendRequest<http_body_util::Full<bytes::Bytes>>,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> Result<(http::StatusCode, bytes::Bytes), hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn connect(
    address: SocketAddr,
) -> Result<SendRequest<http_body_util::Full<bytes::Bytes>>, LoadError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_connect(address).await {
            Ok(sender) => return Ok(sender),
            Err(source) if attempt >= CONNECT_ATTEMPTS => {
                return Err(LoadError::Connect { address, source })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn try_connect(
    address: SocketAddr,
) -> std::io::Result<SendRequest<http_body_util::Full<bytes::Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either
        // way the next request reports it.
        let _ = connection.await;
    });
    Ok(sender)
}
