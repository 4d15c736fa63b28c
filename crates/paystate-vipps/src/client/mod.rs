//! A client for the Vipps MobilePay APIs paystate uses (VIPPS.md §1, §5): access token,
//! Webhooks API v1 and ePayment v1.
//!
//! - [`credentials`]: [`Credentials`], [`ApiSecret`] and the `Vipps-System-*` [`SystemInfo`].
//! - [`token`]: the access-token answer and its cache.
//! - [`error`]: [`VippsApiError`], problem+json as data.
//! - [`webhooks`]: register, list, delete.
//! - [`epayment`]: payment state and events, and the operations used by demos and tests.
//!
//! Every call carries `Authorization: Bearer`, `Ocp-Apim-Subscription-Key`,
//! `Merchant-Serial-Number` and the four `Vipps-System-*` headers. The token is fetched once,
//! shared, and refreshed shortly before it expires; concurrent callers wait for one refresh.

pub mod credentials;
pub mod epayment;
pub mod error;
pub mod token;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use paystate_domain::{Environment, Msn};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;

pub use credentials::{ApiSecret, Credentials, SystemInfo};
pub use epayment::{Aggregate, CreatePayment, CreatedPayment, Money, Payment, PaymentState};
pub use error::{ExtraDetail, VippsApiError};
pub use token::AccessToken;
pub use webhooks::{Registration, WebhookInfo};

use token::CachedToken;

/// The base URL of an environment: `https://apitest.vipps.no` or `https://api.vipps.no`.
pub fn base_url(environment: Environment) -> &'static str {
    match environment {
        Environment::Test => "https://apitest.vipps.no",
        Environment::Production => "https://api.vipps.no",
    }
}

/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for a whole request, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time before expiry at which a token is replaced.
pub const DEFAULT_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Everything a [`VippsClient`] needs, validated when the client is built.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub environment: Environment,
    /// `None`: the environment's base URL. `Some`: an override (a simulator, a proxy).
    pub base_url_override: Option<url::Url>,
    pub msn: Msn,
    pub credentials: Credentials,
    pub system: SystemInfo,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub token_refresh_margin: Duration,
}

impl ClientConfig {
    /// A configuration with the environment's base URL, paystate's system headers and the
    /// default timeouts (connect 5 s, request 10 s).
    pub fn new(environment: Environment, msn: Msn, credentials: Credentials) -> Self {
        Self {
            environment,
            base_url_override: None,
            msn,
            credentials,
            system: SystemInfo::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            token_refresh_margin: DEFAULT_TOKEN_REFRESH_MARGIN,
        }
    }

    /// Sends every call to `base_url` instead of the environment's (e.g. `http://127.0.0.1:18089`).
    pub fn with_base_url(mut self, base_url: &str) -> Result<Self, VippsApiError> {
        let url = url::Url::parse(base_url).map_err(|error| {
            VippsApiError::InvalidRequest(format!("base URL {base_url:?}: {error}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(VippsApiError::InvalidRequest(format!(
                "base URL {base_url:?} is not an http(s) URL"
            )));
        }
        self.base_url_override = Some(url);
        Ok(self)
    }

    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    pub fn with_system(mut self, system: SystemInfo) -> Self {
        self.system = system;
        self
    }

    /// The base URL calls go to, without a trailing slash.
    pub fn effective_base_url(&self) -> String {
        match &self.base_url_override {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => base_url(self.environment).to_owned(),
        }
    }
}

/// A Vipps MobilePay API client for one merchant serial number. Cheap to clone; clones share
/// the connection pool and the token.
#[derive(Debug, Clone)]
pub struct VippsClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    base_url: String,
    /// The headers every call carries apart from `Authorization` (subscription key, MSN,
    /// system headers), built once.
    common_headers: HeaderMap,
    /// The cached token. An async mutex because it is held across the token request: that is
    /// what makes a refresh single-flight (concurrent callers wait for it, then reuse it).
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

/// An answer with a successful status.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl VippsClient {
    /// Builds a client. Fails only on configuration that cannot be sent (a credential holding
    /// characters a header cannot carry) or a TLS backend that cannot start.
    pub fn new(config: ClientConfig) -> Result<Self, VippsApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Vipps answers API calls directly; following a redirect could send the bearer
            // token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| VippsApiError::Transport(error.to_string()))?;
        let mut common_headers = HeaderMap::new();
        // Header names are written in lower case: `HeaderMap::insert` with a `&'static str`
        // requires it.
        common_headers.insert(
            "ocp-apim-subscription-key",
            secret_header(&config.credentials.subscription_key, "subscription key")?,
        );
        common_headers.insert(
            "merchant-serial-number",
            plain_header(config.msn.as_str(), "MSN")?,
        );
        for (name, value) in config.system.headers() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| VippsApiError::InvalidRequest(format!("header name {name:?}")))?;
            common_headers.insert(name, plain_header(value, "system header")?);
        }
        let base_url = config.effective_base_url();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                base_url,
                common_headers,
                token: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// A fresh `Idempotency-Key` value. Reuse the same key when retrying the same operation.
    pub fn new_idempotency_key() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// A valid access token: the cached one, or a new one if it is due for refresh.
    pub async fn access_token(&self) -> Result<ApiSecret, VippsApiError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(cached) = slot
            .as_ref()
            .filter(|cached| cached.is_fresh(Instant::now()))
        {
            return Ok(cached.token.clone());
        }
        let requested_at = Instant::now();
        let token = self.fetch_token().await.map_err(|error| match error {
            // Every call starts with a token: say which request could not be sent.
            VippsApiError::Transport(text) => {
                VippsApiError::Transport(format!("getting an access token: {text}"))
            }
            other => other,
        })?;
        let cached = CachedToken::new(token, requested_at, self.inner.config.token_refresh_margin);
        let bearer = cached.token.clone();
        *slot = Some(cached);
        Ok(bearer)
    }

    /// Forgets `rejected` if it is still the cached token, so the next call fetches a new one.
    async fn forget_token(&self, rejected: &ApiSecret) {
        let mut slot = self.inner.token.lock().await;
        if slot
            .as_ref()
            .is_some_and(|cached| cached.token == *rejected)
        {
            *slot = None;
        }
    }

    async fn fetch_token(&self) -> Result<AccessToken, VippsApiError> {
        let config = &self.inner.config;
        let mut headers = self.inner.common_headers.clone();
        headers.insert(
            "client_id",
            plain_header(&config.credentials.client_id, "client_id")?,
        );
        headers.insert(
            "client_secret",
            secret_header(&config.credentials.client_secret, "client secret")?,
        );
        let url = format!("{}/accesstoken/get", self.inner.base_url);
        let started = Instant::now();
        let answer = self
            .inner
            .http
            .post(&url)
            .headers(headers)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|error| VippsApiError::from_reqwest(&error))?;
        let status = answer.status().as_u16();
        let body = answer
            .bytes()
            .await
            .map_err(|error| VippsApiError::from_reqwest(&error))?;
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "vipps access token"
        );
        if !(200..300).contains(&status) {
            return Err(VippsApiError::from_answer(status, &body));
        }
        AccessToken::parse(&body, SystemTime::now())
    }

    /// Sends an API call with the bearer token and the common headers. A 401 with a cached
    /// token is retried once with a new token (the token may have been revoked early); every
    /// call that changes state carries an `Idempotency-Key`, so the retry is safe.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, VippsApiError> {
        let mut retried = false;
        loop {
            let bearer = self.access_token().await?;
            let mut headers = self.inner.common_headers.clone();
            let mut authorization =
                plain_header(&format!("Bearer {}", bearer.expose()), "access token")?;
            authorization.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, authorization);
            if let Some(key) = idempotency_key {
                headers.insert("idempotency-key", plain_header(key, "Idempotency-Key")?);
            }
            let url = format!("{}{path}", self.inner.base_url);
            let mut request = self
                .inner
                .http
                .request(method.clone(), &url)
                .headers(headers);
            request = match &json_body {
                Some(body) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone()),
                None if method == Method::POST => {
                    request.header(reqwest::header::CONTENT_LENGTH, 0)
                }
                None => request,
            };
            let started = Instant::now();
            let answer = request
                .send()
                .await
                .map_err(|error| VippsApiError::from_reqwest(&error))?;
            let status = answer.status().as_u16();
            let body = answer
                .bytes()
                .await
                .map_err(|error| VippsApiError::from_reqwest(&error))?;
            tracing::debug!(%method, path, status, elapsed_ms = started.elapsed().as_millis() as u64, "vipps api call");
            if status == 401 && !retried {
                retried = true;
                self.forget_token(&bearer).await;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(VippsApiError::from_answer(status, &body));
            }
            return Ok(Answer { status, body });
        }
    }

    pub(crate) fn msn(&self) -> &Msn {
        &self.inner.config.msn
    }
}

/// Reads a JSON answer into `T`, naming the call when it does not fit.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, VippsApiError> {
    serde_json::from_slice(body)
        .map_err(|error| VippsApiError::InvalidResponse(format!("{what}: {error}")))
}

fn plain_header(value: &str, what: &str) -> Result<HeaderValue, VippsApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        VippsApiError::InvalidRequest(format!(
            "the {what} holds characters an HTTP header cannot carry"
        ))
    })
}

fn secret_header(secret: &ApiSecret, what: &str) -> Result<HeaderValue, VippsApiError> {
    let mut value = plain_header(secret.expose(), what)?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests;
