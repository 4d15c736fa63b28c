//! `paystate serve`: run the server on the embedded store until SIGINT or SIGTERM.

use anyhow::Context;
use paystate_server::config::ConfigError;
use paystate_server::registration::ReactorOptions;
use paystate_server::{
    AdminToken, AdminTokenSource, ListenAddr, LogFormat, PublicUrl, ServerConfig,
};
use std::path::PathBuf;
use std::time::Duration;

/// Run the paystate server on the embedded store.
///
/// Example:
///   paystate serve --data ./paystate-data --listen 127.0.0.1:8080 \
///       --public-url https://pay.example.no
///
/// Also read from the environment:
///   PAYSTATE_MASTER_KEY  the key webhook secrets and credentials are sealed under (64 hex
///                        digits or base64 of 32 bytes); unset: {data}/master.key, generated
///                        on first start
///   PAYSTATE_LOG         the log filter, e.g. info,paystate::access=warn (default info)
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Where the embedded store, the admin token and the master key live.
    #[arg(long, env = "PAYSTATE_DATA", default_value = "./paystate-data")]
    data: PathBuf,

    /// Address to bind: IP:PORT, [IPv6]:PORT, localhost:PORT, or :PORT (loopback). Port 0 picks
    /// a free port; the bound address is logged.
    #[arg(long, env = "PAYSTATE_LISTEN", default_value = ListenAddr::DEFAULT)]
    listen: ListenAddr,

    /// Externally reachable base URL (e.g. behind a reverse proxy). A provider's webhook URL is
    /// {public-url}/webhooks/vipps/{provider_id}. Default: http://<bound address>.
    #[arg(long, env = "PAYSTATE_PUBLIC_URL")]
    public_url: Option<PublicUrl>,

    /// Bearer token for /providers, /payments and /events. Default: generated on first start
    /// into {data}/admin-token (mode 0600); its path is printed, the token never is.
    #[arg(long, env = "PAYSTATE_ADMIN_TOKEN", hide_env_values = true, value_parser = given_token)]
    admin_token: Option<GivenToken>,

    /// Vipps API base URL for every provider (a simulator, tests). Default: by environment,
    /// https://apitest.vipps.no (test) or https://api.vipps.no (production).
    #[arg(long, env = "PAYSTATE_VIPPS_BASE_URL")]
    vipps_base_url: Option<paystate_server::config::VippsBaseUrl>,

    /// Largest accepted webhook body in bytes.
    #[arg(long, env = "PAYSTATE_BODY_LIMIT", default_value_t = ServerConfig::DEFAULT_BODY_LIMIT)]
    body_limit: usize,

    /// Accepted distance between a webhook's x-ms-date and the server clock, in seconds.
    #[arg(long, env = "PAYSTATE_DATE_TOLERANCE_SECS", default_value_t = ServerConfig::DEFAULT_DATE_TOLERANCE.as_secs())]
    date_tolerance_secs: u64,

    /// How long an old webhook secret is still accepted after its registration is deleted, in
    /// seconds.
    #[arg(long, env = "PAYSTATE_SECRET_GRACE_SECS", default_value_t = ServerConfig::DEFAULT_SECRET_GRACE_PERIOD.as_secs())]
    secret_grace_secs: u64,

    /// Rejected deliveries recorded in full per provider per minute; past it only counts.
    #[arg(long, env = "PAYSTATE_REJECTION_RECORDS_PER_MINUTE", default_value_t = ServerConfig::DEFAULT_REJECTION_RECORD_BUDGET)]
    rejection_records_per_minute: u32,

    /// Connection and registration timing, boxed to keep the command enum small.
    #[command(flatten)]
    timing: Box<TimingArgs>,
}

/// Timing of connections, of the registration reactor and of payment polling.
#[derive(Debug, clap::Args)]
struct TimingArgs {
    /// How long a client may take to send a request's headers before the connection is closed,
    /// in seconds.
    #[arg(long, env = "PAYSTATE_HEADER_READ_TIMEOUT_SECS", default_value_t = ServerConfig::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    header_read_timeout_secs: u64,

    /// How long a superseded webhook registration is kept after its successor is recorded, so
    /// deliveries Vipps already queued for it still arrive, in seconds.
    #[arg(long, env = "PAYSTATE_REGISTRATION_HANDOVER_SECS", default_value_t = ReactorOptions::default().handover.as_secs())]
    registration_handover_secs: u64,

    /// How often each enabled provider's registrations are compared with what Vipps lists
    /// (besides after every change and at start), in seconds.
    #[arg(long, env = "PAYSTATE_RECONCILE_INTERVAL_SECS", default_value_t = ReactorOptions::default().reconcile_interval.as_secs())]
    reconcile_interval_secs: u64,

    /// Longest wait between retries of a failed registration (the backoff doubles up to it),
    /// in seconds.
    #[arg(long, env = "PAYSTATE_REGISTRATION_BACKOFF_MAX_SECS", default_value_t = ReactorOptions::default().backoff.max.as_secs())]
    registration_backoff_max_secs: u64,

    /// How long an open payment (CREATED, or authorized money neither captured nor cancelled)
    /// may go without a new fact before its events are polled at Vipps and what no webhook
    /// delivered is recorded, in seconds; 0 turns polling off.
    #[arg(long, env = "PAYSTATE_POLL_AFTER_SECS", default_value_t = ServerConfig::DEFAULT_PAYMENT_POLL_AFTER.as_secs())]
    poll_after_secs: u64,
}

/// The flag and environment variable behind a field [`ServerConfig::validate`] names.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "body limit" => "--body-limit (PAYSTATE_BODY_LIMIT)",
        "date tolerance" => "--date-tolerance-secs (PAYSTATE_DATE_TOLERANCE_SECS)",
        "secret grace period" => "--secret-grace-secs (PAYSTATE_SECRET_GRACE_SECS)",
        "rejection record budget" => {
            "--rejection-records-per-minute (PAYSTATE_REJECTION_RECORDS_PER_MINUTE)"
        }
        "header read timeout" => "--header-read-timeout-secs (PAYSTATE_HEADER_READ_TIMEOUT_SECS)",
        "registration handover" => {
            "--registration-handover-secs (PAYSTATE_REGISTRATION_HANDOVER_SECS)"
        }
        "reconciliation interval" => "--reconcile-interval-secs (PAYSTATE_RECONCILE_INTERVAL_SECS)",
        "payment poll quiet period" => "--poll-after-secs (PAYSTATE_POLL_AFTER_SECS)",
        "registration backoff" => {
            "--registration-backoff-max-secs (PAYSTATE_REGISTRATION_BACKOFF_MAX_SECS)"
        }
        _ => return None,
    })
}

/// An admin token as given, checked only once the arguments are parsed: a value clap refuses
/// is repeated in clap's error message, and a token must not end up in a log that way.
#[derive(Clone)]
struct GivenToken(String);

impl std::fmt::Debug for GivenToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

fn given_token(input: &str) -> Result<GivenToken, std::convert::Infallible> {
    Ok(GivenToken(input.to_owned()))
}

impl GivenToken {
    /// The token, or why it is refused, naming the flag and the variable but never the value.
    fn check(self) -> anyhow::Result<AdminToken> {
        AdminToken::new(self.0)
            .map_err(|error| anyhow::anyhow!("--admin-token (PAYSTATE_ADMIN_TOKEN): {error}"))
    }
}

impl ServeArgs {
    fn into_config(
        self,
        bound: std::net::SocketAddr,
        log_format: LogFormat,
    ) -> anyhow::Result<ServerConfig> {
        let given_token = self
            .admin_token
            .clone()
            .map(GivenToken::check)
            .transpose()?;
        let unreachable_default =
            self.public_url.is_none() && (bound.ip().is_unspecified() || bound.ip().is_loopback());
        // Checked before anything is written to the data directory (the admin token file).
        let mut config = self.config_with_token(bound, log_format, AdminToken::generate())?;
        paystate_server::secrets::MasterKey::check_environment()?;
        let (admin_token, source) = match given_token {
            Some(token) => (token, AdminTokenSource::Given),
            None => AdminToken::load_or_generate(&config.data_dir)?,
        };
        config.admin_token = admin_token;
        match &source {
            AdminTokenSource::Generated(path)
                if paystate_server::store::store_path(&config.data_dir).exists() =>
            {
                tracing::warn!(path = %path.display(), "no admin token file was found for this existing data directory: generated a new token; clients of the admin API need it (read it from this file)");
            }
            AdminTokenSource::Generated(path) => {
                tracing::info!(path = %path.display(), "generated the admin token (first start); read it from this file");
            }
            AdminTokenSource::File(path) => {
                tracing::info!(path = %path.display(), "admin token read from file")
            }
            AdminTokenSource::Given => tracing::info!("admin token given by flag or environment"),
        }
        if unreachable_default {
            if bound.ip().is_unspecified() {
                tracing::warn!(
                    public_url = %config.public_url,
                    "no --public-url: webhook URLs use the listen address, and an unspecified address \
                     (0.0.0.0 or ::) reaches no one, not even the simulator; set --public-url to the \
                     externally reachable base"
                );
            } else {
                tracing::warn!(
                    public_url = %config.public_url,
                    "no --public-url: webhook URLs use the listen address, which Vipps itself cannot reach \
                     (the simulator can); set --public-url to the externally reachable base"
                );
            }
        }
        Ok(config)
    }

    /// The configuration these arguments describe, with `admin_token`, checked; a value out of
    /// range is named by its flag and environment variable.
    fn config_with_token(
        self,
        bound: std::net::SocketAddr,
        log_format: LogFormat,
        admin_token: AdminToken,
    ) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::new(self.data, bound, admin_token);
        config.listen = self.listen;
        if let Some(public_url) = self.public_url {
            config.public_url = public_url;
        }
        config.vipps_base_url = self.vipps_base_url;
        config.body_limit = self.body_limit;
        config.date_tolerance = Duration::from_secs(self.date_tolerance_secs);
        config.secret_grace_period = Duration::from_secs(self.secret_grace_secs);
        config.rejection_record_budget = self.rejection_records_per_minute;
        config.header_read_timeout = Duration::from_secs(self.timing.header_read_timeout_secs);
        config.registration.handover = Duration::from_secs(self.timing.registration_handover_secs);
        config.registration.reconcile_interval =
            Duration::from_secs(self.timing.reconcile_interval_secs);
        config.registration.backoff.max =
            Duration::from_secs(self.timing.registration_backoff_max_secs);
        config.payment_poll_after = match self.timing.poll_after_secs {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        config.log_format = log_format;
        config.validate().map_err(|error| match error {
            ConfigError::Invalid { field, reason } => match flag_of(field) {
                Some(flag) => anyhow::anyhow!("{flag}: {reason}"),
                None => anyhow::Error::new(error),
            },
            other => anyhow::Error::new(other),
        })?;
        Ok(config)
    }
}

/// Binds, builds the configuration and serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let requested = args.listen.socket_addr();
        let listener = tokio::net::TcpListener::bind(requested)
            .await
            .with_context(|| format!("binding {requested}"))?;
        let bound = listener.local_addr()?;
        let config = args.into_config(bound, log_format)?;
        paystate_server::run(listener, config, termination()).await?;
        Ok(())
    })
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn termination() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(args: &[&str]) -> ServerConfig {
        let cli = Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .expect("arguments");
        cli.serve
            .config_with_token(
                "127.0.0.1:8080".parse().expect("address"),
                LogFormat::Text,
                AdminToken::generate(),
            )
            .expect("a valid configuration")
    }

    #[test]
    fn poll_after_zero_turns_payment_polling_off() {
        assert_eq!(
            config(&[]).payment_poll_after,
            Some(ServerConfig::DEFAULT_PAYMENT_POLL_AFTER)
        );
        assert_eq!(
            config(&["--poll-after-secs", "30"]).payment_poll_after,
            Some(Duration::from_secs(30))
        );
        assert_eq!(config(&["--poll-after-secs", "0"]).payment_poll_after, None);
    }

    #[test]
    fn a_refused_admin_token_is_never_repeated() {
        let secret = "Super Secret 1234567 with spaces";
        let data = tempfile::tempdir().expect("a directory");
        let data_arg = data.path().to_str().expect("a UTF-8 path");
        let cli = Cli::try_parse_from(["serve", "--data", data_arg, "--admin-token", secret])
            .expect("any value parses; it is checked afterwards");
        assert!(!format!("{cli:?}").contains("Secret"), "{cli:?}");
        let error = cli
            .serve
            .into_config("127.0.0.1:8080".parse().expect("address"), LogFormat::Text)
            .expect_err("a token with spaces is refused");
        let message = format!("{error:#}");
        assert!(
            message.starts_with("--admin-token (PAYSTATE_ADMIN_TOKEN):"),
            "{message}"
        );
        assert!(!message.contains("Secret"), "{message}");
        // Refused before anything is written: no generated token file either.
        assert!(std::fs::read_dir(data.path())
            .expect("listing")
            .next()
            .is_none());
    }
}
