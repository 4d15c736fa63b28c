//! The server's configuration: one validated struct, built once at start and passed explicitly.
//!
//! Every value that has a rule is a type here ([`PublicUrl`], [`ListenAddr`], [`AdminToken`]), so
//! a [`ServerConfig`] that exists is a configuration the server can run with.

use crate::registration::ReactorOptions;
use rand::RngCore;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Why a configuration value was refused. Never repeats a secret it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("listen address {input:?}: {reason}")]
    Listen { input: String, reason: &'static str },
    #[error("public URL {input:?}: {reason}")]
    PublicUrl { input: String, reason: &'static str },
    #[error("Vipps base URL {input:?}: {reason}")]
    VippsBaseUrl { input: String, reason: &'static str },
    #[error("admin token: {reason}")]
    AdminToken { reason: &'static str },
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("data directory {path}: cannot create it: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("admin token file {path}: {source}")]
    AdminTokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The address to bind: `HOST:PORT`, `[V6]:PORT`, or `:PORT` (loopback, `127.0.0.1:PORT`).
///
/// `:0` asks the system for a free port; the bound address is what the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(SocketAddr);

impl ListenAddr {
    pub const DEFAULT: &'static str = "127.0.0.1:8080";

    pub fn socket_addr(self) -> SocketAddr {
        self.0
    }
}

impl FromStr for ListenAddr {
    type Err = ConfigError;

    fn from_str(input: &str) -> Result<ListenAddr, ConfigError> {
        let error = |reason| ConfigError::Listen {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        // A bare `:PORT` binds loopback: exposing the admin API on every interface must be asked
        // for explicitly (`0.0.0.0:PORT`).
        if let Some(port) = trimmed.strip_prefix(':') {
            let port: u16 = port
                .parse()
                .map_err(|_| error("the port must be 0 to 65535"))?;
            return Ok(ListenAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port,
            )));
        }
        if let Ok(addr) = trimmed.parse::<SocketAddr>() {
            return Ok(ListenAddr(addr));
        }
        if let Some((host, port)) = trimmed.rsplit_once(':') {
            if host.eq_ignore_ascii_case("localhost") {
                let port: u16 = port
                    .parse()
                    .map_err(|_| error("the port must be 0 to 65535"))?;
                return Ok(ListenAddr(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
        }
        Err(error(
            "expected IP:PORT, [IPv6]:PORT, localhost:PORT or :PORT",
        ))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An absolute `http`/`https` base URL without query or fragment, stored without a trailing
/// slash, so that `{base}/webhooks/vipps/{id}` is always well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    /// Parses a base URL; `what` selects the error variant's wording.
    fn parse_base(input: &str) -> Result<url::Url, &'static str> {
        let url = url::Url::parse(input.trim()).map_err(|_| "not an absolute URL")?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("the scheme must be http or https");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("a host is required");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a base URL has no query or fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a base URL carries no user or password");
        }
        Ok(url)
    }

    /// The default public URL for a bound address: `http://{addr}`.
    pub fn for_listen_addr(addr: SocketAddr) -> PublicUrl {
        // A socket address always forms a valid http URL; IPv6 gets its brackets from Display.
        let url = url::Url::parse(&format!("http://{addr}"))
            .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1").expect("constant URL"));
        PublicUrl(url)
    }

    /// The base as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The URL a provider's webhook is registered under.
    pub fn webhook_url(&self, provider_id: &str) -> String {
        format!("{}/webhooks/vipps/{provider_id}", self.as_str())
    }
}

impl FromStr for PublicUrl {
    type Err = ConfigError;
    fn from_str(input: &str) -> Result<PublicUrl, ConfigError> {
        PublicUrl::parse_base(input)
            .map(PublicUrl)
            .map_err(|reason| ConfigError::PublicUrl {
                input: input.to_owned(),
                reason,
            })
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Vipps API base that overrides the environment's default for every provider (a simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VippsBaseUrl(url::Url);

impl VippsBaseUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl FromStr for VippsBaseUrl {
    type Err = ConfigError;
    fn from_str(input: &str) -> Result<VippsBaseUrl, ConfigError> {
        PublicUrl::parse_base(input)
            .map(VippsBaseUrl)
            .map_err(|reason| ConfigError::VippsBaseUrl {
                input: input.to_owned(),
                reason,
            })
    }
}

impl fmt::Display for VippsBaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bearer token of the admin API. `Debug` prints `***`; there is no `Display`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Shortest accepted token: shorter ones are guessable.
    pub const MIN_LEN: usize = 16;
    const MAX_LEN: usize = 512;

    pub fn new(token: impl Into<String>) -> Result<AdminToken, ConfigError> {
        let token = token.into().trim().to_owned();
        if token.len() < AdminToken::MIN_LEN {
            return Err(ConfigError::AdminToken {
                reason: "it must be at least 16 characters",
            });
        }
        if token.len() > AdminToken::MAX_LEN {
            return Err(ConfigError::AdminToken {
                reason: "it must be at most 512 characters",
            });
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::AdminToken {
                reason: "it must be printable ASCII without spaces",
            });
        }
        Ok(AdminToken(token))
    }

    /// A fresh random token: 32 bytes from the OS generator, hex encoded.
    pub fn generate() -> AdminToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        AdminToken(hex::encode(bytes))
    }

    /// Compares a presented token in constant time. Both sides are hashed first so that the
    /// comparison takes the same time whatever the presented length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented);
        expected.ct_eq(&presented).into()
    }

    /// The token itself, for the one place that must write it (the token file) or send it (a
    /// client in tests).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The token from `{data}/admin-token`, or a new one written there with mode 0600. The
    /// data directory is created first (mode 0700), so a directory that cannot be created is
    /// reported as such, not as a token file that cannot be read.
    pub fn load_or_generate(
        data_dir: &Path,
    ) -> Result<(AdminToken, AdminTokenSource), ConfigError> {
        paystate_store::private_dir::create_all(data_dir).map_err(|source| {
            ConfigError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            }
        })?;
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let file_error = |source| ConfigError::AdminTokenFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((AdminToken::new(text)?, AdminTokenSource::File(path))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let token = AdminToken::generate();
                write_private_file(&path, token.expose().as_bytes()).map_err(file_error)?;
                Ok((token, AdminTokenSource::Generated(path)))
            }
            Err(error) => Err(file_error(error)),
        }
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The name of the admin token file inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where the admin token came from, so the binary can tell the operator where to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// Given on the command line or in the environment.
    Given,
    /// Read from this existing file.
    File(PathBuf),
    /// Generated now and written to this file.
    Generated(PathBuf),
}

/// Creates `path` readable and writable by the owner only, failing if it exists.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = ConfigError;
    fn from_str(input: &str) -> Result<LogFormat, ConfigError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "text" | "pretty" | "human" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ConfigError::Invalid {
                field: "log format",
                reason: "it must be `text` or `json`",
            }),
        }
    }
}

/// Everything the server needs to run, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the embedded store (and the admin token and master key files) live.
    pub data_dir: PathBuf,
    /// The address the operator asked for; the listener handed to [`crate::run`] is what is bound.
    pub listen: ListenAddr,
    /// Externally reachable base; webhook URLs are `{public_url}/webhooks/vipps/{provider_id}`.
    pub public_url: PublicUrl,
    pub admin_token: AdminToken,
    /// Overrides the Vipps API base for every provider (simulator, tests).
    pub vipps_base_url: Option<VippsBaseUrl>,
    /// Largest accepted webhook body, in bytes.
    pub body_limit: usize,
    /// How far `x-ms-date` may be from the server's clock.
    pub date_tolerance: Duration,
    /// How long an old secret version is still accepted after its registration is gone.
    pub secret_grace_period: Duration,
    /// Full rejection records per provider per minute; past it only counts are recorded.
    pub rejection_record_budget: u32,
    /// How often projections write their state and checkpoint to the store.
    pub projection_commit_interval: Duration,
    /// How long shutdown waits for in-flight requests and background tasks.
    pub shutdown_grace: Duration,
    /// How long one request may take before it is answered `503 unavailable` (Vipps gives up
    /// on a delivery after about 10 s and retries).
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers before the connection is
    /// closed, so a slow or stalled client cannot hold a connection open forever.
    pub header_read_timeout: Duration,
    /// The registration reactor's timing: handover delay, reconciliation interval, backoff.
    pub registration: ReactorOptions,
    /// How long an open payment goes without a new fact before its events are polled at
    /// Vipps (see [`crate::polling`]); `None` turns polling off.
    pub payment_poll_after: Option<Duration>,
    pub log_format: LogFormat,
}

impl ServerConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
    pub const DEFAULT_DATE_TOLERANCE: Duration = Duration::from_secs(300);
    /// Ten minutes, the domain's default ([`paystate_domain::provider::DEFAULT_SECRET_GRACE`]):
    /// a deleted registration gets no new deliveries, so only those already in flight need it.
    pub const DEFAULT_SECRET_GRACE_PERIOD: Duration = Duration::from_secs(10 * 60);
    pub const DEFAULT_REJECTION_RECORD_BUDGET: u32 = 20;
    pub const DEFAULT_PROJECTION_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Ten minutes: a webhook is normally there within seconds, and Vipps' first retries of a
    /// failed one come within minutes.
    pub const DEFAULT_PAYMENT_POLL_AFTER: Duration = Duration::from_secs(10 * 60);

    /// A configuration with every default, for `data_dir` and a bound address.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        bound: SocketAddr,
        admin_token: AdminToken,
    ) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            listen: ListenAddr(bound),
            public_url: PublicUrl::for_listen_addr(bound),
            admin_token,
            vipps_base_url: None,
            body_limit: ServerConfig::DEFAULT_BODY_LIMIT,
            date_tolerance: ServerConfig::DEFAULT_DATE_TOLERANCE,
            secret_grace_period: ServerConfig::DEFAULT_SECRET_GRACE_PERIOD,
            rejection_record_budget: ServerConfig::DEFAULT_REJECTION_RECORD_BUDGET,
            projection_commit_interval: ServerConfig::DEFAULT_PROJECTION_COMMIT_INTERVAL,
            shutdown_grace: ServerConfig::DEFAULT_SHUTDOWN_GRACE,
            request_timeout: ServerConfig::DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: ServerConfig::DEFAULT_HEADER_READ_TIMEOUT,
            registration: ReactorOptions::default(),
            payment_poll_after: Some(ServerConfig::DEFAULT_PAYMENT_POLL_AFTER),
            log_format: LogFormat::Text,
        }
    }

    /// Checks the numeric bounds that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
        if self.body_limit < 1024 || self.body_limit > 16 * 1024 * 1024 {
            return invalid("body limit", "it must be between 1 KiB and 16 MiB");
        }
        if self.date_tolerance.is_zero() || self.date_tolerance > Duration::from_secs(24 * 60 * 60)
        {
            return invalid("date tolerance", "it must be between 1 second and 24 hours");
        }
        if self.secret_grace_period > Duration::from_secs(30 * 24 * 60 * 60) {
            return invalid("secret grace period", "it must be at most 30 days");
        }
        if self.rejection_record_budget > 10_000 {
            return invalid(
                "rejection record budget",
                "it must be at most 10000 per minute",
            );
        }
        if self.request_timeout.is_zero() {
            return invalid("request timeout", "it must be positive");
        }
        if self.header_read_timeout.is_zero() {
            return invalid("header read timeout", "it must be positive");
        }
        let registration = &self.registration;
        if registration.handover > ReactorOptions::MAX_HANDOVER {
            return invalid(
                "registration handover",
                "it must be at most 7 days (604800 s), after which Vipps retries nothing",
            );
        }
        if registration.reconcile_interval < Duration::from_secs(1)
            || registration.reconcile_interval > Duration::from_secs(7 * 24 * 60 * 60)
        {
            return invalid(
                "reconciliation interval",
                "it must be between 1 second and 7 days",
            );
        }
        if registration.backoff.initial.is_zero()
            || registration.backoff.max < registration.backoff.initial
            || registration.backoff.max > Duration::from_secs(24 * 60 * 60)
        {
            return invalid(
                "registration backoff",
                "the cap must be at least the first delay and at most 24 hours",
            );
        }
        if let Some(quiet) = self.payment_poll_after {
            if quiet < Duration::from_secs(1) || quiet > crate::polling::HORIZON {
                return invalid(
                    "payment poll quiet period",
                    "it must be between 1 second and 7 days, or 0 to turn polling off",
                );
            }
        }
        if self.projection_commit_interval.is_zero() {
            return invalid("projection commit interval", "it must be positive");
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data directory", "it must not be empty");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let check = |input: &str, expected: Option<&str>| {
            let parsed = input.parse::<ListenAddr>().ok().map(|a| a.to_string());
            assert_eq!(parsed.as_deref(), expected, "{input}");
        };
        check("127.0.0.1:8080", Some("127.0.0.1:8080"));
        check(":0", Some("127.0.0.1:0"));
        check("0.0.0.0:9000", Some("0.0.0.0:9000"));
        check("[::1]:80", Some("[::1]:80"));
        check("localhost:7000", Some("127.0.0.1:7000"));
        check(":70000", None);
        check("example.com:80", None);
        check("8080", None);
        check("", None);
    }

    #[test]
    fn public_urls() {
        let url: PublicUrl = "https://pay.example.no/base/".parse().unwrap();
        assert_eq!(
            url.webhook_url("vipps-test"),
            "https://pay.example.no/base/webhooks/vipps/vipps-test"
        );
        let url: PublicUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            url.webhook_url("p1"),
            "http://127.0.0.1:8080/webhooks/vipps/p1"
        );
        for bad in [
            "ftp://x",
            "not a url",
            "https://x/?q=1",
            "https://u:p@x",
            "/relative",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
        let v6 = PublicUrl::for_listen_addr("[::1]:9000".parse().unwrap());
        assert_eq!(v6.as_str(), "http://[::1]:9000");
    }

    #[test]
    fn admin_token_rules_and_secrecy() {
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("has a space in the middle").is_err());
        let token = AdminToken::new("0123456789abcdef-token").unwrap();
        assert!(token.matches(b"0123456789abcdef-token"));
        assert!(!token.matches(b"0123456789abcdef-toke"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "***");
        let generated = AdminToken::generate();
        assert_eq!(generated.expose().len(), 64);
        assert_ne!(generated.expose(), AdminToken::generate().expose());
    }

    #[test]
    fn admin_token_file_is_created_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = AdminToken::load_or_generate(dir.path()).unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(source, AdminTokenSource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (second, source) = AdminToken::load_or_generate(dir.path()).unwrap();
        assert_eq!(source, AdminTokenSource::File(path));
        assert_eq!(first.expose(), second.expose());
    }

    #[test]
    fn a_data_directory_that_cannot_be_created_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let data = file.join("data");
        let error = AdminToken::load_or_generate(&data).unwrap_err();
        assert!(
            matches!(&error, ConfigError::DataDir { path, .. } if *path == data),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "data directory {}: cannot create it:",
                data.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn defaults_validate_and_bounds_are_checked() {
        let token = AdminToken::generate();
        let mut config = ServerConfig::new("/tmp/x", "127.0.0.1:0".parse().unwrap(), token);
        config.validate().unwrap();
        assert_eq!(config.body_limit, 65536);
        config.body_limit = 10;
        assert!(config.validate().is_err());
    }

    #[test]
    fn registration_timing_is_checked() {
        let token = AdminToken::generate();
        let valid = ServerConfig::new("/tmp/x", "127.0.0.1:0".parse().unwrap(), token);
        let refused = |change: fn(&mut ReactorOptions)| {
            let mut config = valid.clone();
            change(&mut config.registration);
            config.validate().is_err()
        };
        assert!(refused(|r| r.reconcile_interval = Duration::ZERO));
        assert!(refused(
            |r| r.handover = Duration::from_secs(8 * 24 * 60 * 60)
        ));
        assert!(!refused(|r| r.handover = ReactorOptions::MAX_HANDOVER));
        assert!(refused(|r| r.backoff.max = r.backoff.initial / 2));
        assert!(refused(|r| r.backoff.initial = Duration::ZERO));
        assert!(!refused(|r| r.handover = Duration::ZERO));
        assert!(!refused(|r| r.backoff.max = r.backoff.initial));
    }

    #[test]
    fn the_secret_grace_default_is_the_domains() {
        let domain = paystate_domain::provider::DEFAULT_SECRET_GRACE;
        assert_eq!(
            ServerConfig::DEFAULT_SECRET_GRACE_PERIOD.as_secs(),
            domain.whole_seconds().unsigned_abs()
        );
    }
}
