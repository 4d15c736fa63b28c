//! `vipps-sim --listen 127.0.0.1:18089`: the simulator as a program. Every knob is a flag;
//! the fault knobs can also be changed while it runs with `POST /_sim/faults`.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use vipps_sim::config::{parse_backoff, parse_duration};
use vipps_sim::{
    CredentialsPolicy, FailMode, Faults, MerchantCredentials, RegistrationOrder, RetrySchedule,
    SimConfig, TokenNumberStyle,
};

/// A Vipps MobilePay test-environment simulator: access token, Webhooks API, ePayment, and
/// signed webhook delivery with fault knobs.
///
/// Control endpoints (no authentication, loopback use): GET|POST /_sim/faults,
/// GET /_sim/deliveries[?since=SEQ], GET /_sim/registrations, GET /_sim/stats,
/// POST /_sim/payments/{msn}/{reference}/{approve|abort|expire}.
///
/// Durations are a whole number with a unit: 250ms, 5s, 2m, 1h, 7d.
///
/// A merchant's calls, as at Vipps: POST /accesstoken/get (headers client_id, client_secret,
/// Ocp-Apim-Subscription-Key, Merchant-Serial-Number), then with the token
/// POST /epayment/v1/payments (an Idempotency-Key header on every change),
/// POST /epayment/v1/payments/{reference}/{capture|refund|cancel}, and the Webhooks API
/// /webhooks/v1/webhooks. Point paystate at it with `paystate serve --vipps-base-url
/// http://127.0.0.1:18089`; docs/simulator.md walks through a whole session with curl.
#[derive(Debug, Parser)]
#[command(name = "vipps-sim", version, verbatim_doc_comment)]
struct Args {
    /// Address to serve on. Example: --listen 127.0.0.1:18089
    #[arg(long, default_value = "127.0.0.1:18089")]
    listen: SocketAddr,

    /// A known merchant, MSN:CLIENT_ID:CLIENT_SECRET:SUBSCRIPTION_KEY; repeat for several.
    /// With at least one, only these credentials get a token (strict mode); without any, every
    /// non-empty client_id, client_secret and subscription key is accepted for a 4-10 digit MSN.
    /// Example: --merchant 123456:my-client:my-secret:my-subscription-key
    #[arg(long = "merchant", value_name = "SPEC", value_parser = parse_merchant)]
    merchants: Vec<MerchantCredentials>,

    /// How long an access token is valid. Example: --token-lifetime 1h
    #[arg(long, default_value = "1h", value_parser = parse_duration_arg)]
    token_lifetime: Duration,

    /// How the token answer writes expires_in, ext_expires_in, expires_on and not_before.
    /// Example: --token-numbers numbers
    #[arg(long, value_enum, default_value = "strings")]
    token_numbers: NumberStyleArg,

    /// Waits between delivery attempts after each failure; the last repeats.
    /// Example: --backoff 100ms,1s,10s
    #[arg(long, default_value = "5s,30s,2m,10m,30m,1h", value_parser = parse_backoff_arg)]
    backoff: Backoff,

    /// A delivery still failing this long after its first attempt is dropped for good.
    /// Example: --give-up-after 10m
    #[arg(long, default_value = "7d", value_parser = parse_duration_arg)]
    give_up_after: Duration,

    /// How long a receiver has to answer one attempt. Example: --delivery-timeout 2s
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    delivery_timeout: Duration,

    /// Delivery-log records kept for GET /_sim/deliveries; beyond it the oldest are discarded
    /// (GET /_sim/stats counts them in log_discarded). Example: --delivery-log-capacity 100000
    #[arg(long, default_value_t = SimConfig::DEFAULT_DELIVERY_LOG_CAPACITY)]
    delivery_log_capacity: NonZeroUsize,

    /// Fault: deliver every event this many times to each registration (2+ = duplicates).
    /// Example: --deliveries-per-event 2
    #[arg(long, default_value_t = 1)]
    deliveries_per_event: u32,

    /// Fault: the order an event is handed to the registrations subscribed to it.
    /// Example: --registration-order reversed
    #[arg(long, value_enum, default_value = "registered")]
    registration_order: OrderArg,

    /// Fault: the k-th registration in that order waits k times this before its first attempt,
    /// making the order visible. Example: --registration-stagger 200ms
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    registration_stagger: Duration,

    /// Fault: hold each event up to this long for the next event of the same payment on the
    /// same registration and deliver the later one first (breaks per-payment order).
    /// Example: --reorder-within-payment 2s
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    reorder_within_payment: Duration,

    /// Fault: wait this long before the first attempt of every delivery. Example: --delay 500ms
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    delay: Duration,

    /// Fault: add a random wait between zero and this to --delay. Example: --delay-jitter 1s
    #[arg(long, default_value = "0ms", value_parser = parse_duration_arg)]
    delay_jitter: Duration,

    /// Fault: the first N attempts of every delivery fail, then the backoff applies.
    /// Example: --fail-first-attempts 2
    #[arg(long, default_value_t = 0)]
    fail_first_attempts: u32,

    /// Fault: how those failures look: unreachable (never sent) or answer-lost (sent, the
    /// receiver answers, the answer is ignored, so it sees the event again).
    /// Example: --fail-mode answer-lost
    #[arg(long, value_enum, default_value = "unreachable")]
    fail_mode: FailModeArg,

    /// Fault: sign every delivery with a random secret, so correct receivers reject it.
    /// Example: --sign-with-wrong-secret
    #[arg(long)]
    sign_with_wrong_secret: bool,

    /// Fault: decline the next N valid capture, refund or cancel requests: 400 problem+json,
    /// no money moves, and the event is emitted with success:false.
    /// Example: --decline-operations 1
    #[arg(long, default_value_t = 0)]
    decline_operations: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NumberStyleArg {
    Strings,
    Numbers,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OrderArg {
    Registered,
    Reversed,
    Shuffled,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailModeArg {
    Unreachable,
    AnswerLost,
}

fn parse_merchant(spec: &str) -> Result<MerchantCredentials, String> {
    MerchantCredentials::parse(spec).map_err(|error| error.to_string())
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|error| error.to_string())
}

/// The `--backoff` list as one value (a bare `Vec` would make clap expect repeated flags).
#[derive(Debug, Clone)]
struct Backoff(Vec<Duration>);

fn parse_backoff_arg(text: &str) -> Result<Backoff, String> {
    parse_backoff(text)
        .map(Backoff)
        .map_err(|error| error.to_string())
}

impl Args {
    fn into_config(self) -> SimConfig {
        let credentials = if self.merchants.is_empty() {
            CredentialsPolicy::AnyNonEmpty
        } else {
            CredentialsPolicy::KnownMerchants(self.merchants)
        };
        SimConfig {
            credentials,
            token_lifetime: self.token_lifetime,
            token_numbers: match self.token_numbers {
                NumberStyleArg::Strings => TokenNumberStyle::Strings,
                NumberStyleArg::Numbers => TokenNumberStyle::Numbers,
            },
            retry: RetrySchedule {
                backoff: self.backoff.0,
                give_up_after: self.give_up_after,
            },
            delivery_timeout: self.delivery_timeout,
            delivery_log_capacity: self.delivery_log_capacity,
            faults: Faults {
                deliveries_per_event: self.deliveries_per_event,
                registration_order: match self.registration_order {
                    OrderArg::Registered => RegistrationOrder::Registered,
                    OrderArg::Reversed => RegistrationOrder::Reversed,
                    OrderArg::Shuffled => RegistrationOrder::Shuffled,
                },
                registration_stagger: self.registration_stagger,
                reorder_within_payment: self.reorder_within_payment,
                delay: self.delay,
                delay_jitter: self.delay_jitter,
                fail_first_attempts: self.fail_first_attempts,
                fail_mode: match self.fail_mode {
                    FailModeArg::Unreachable => FailMode::Unreachable,
                    FailModeArg::AnswerLost => FailMode::AnswerLost,
                },
                sign_with_wrong_secret: self.sign_with_wrong_secret,
                decline_operations: self.decline_operations,
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let listen = args.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("vipps-sim serving on http://{}", listener.local_addr()?);
    vipps_sim::run(listener, args.into_config(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("vipps-sim stopped with an error")
}
