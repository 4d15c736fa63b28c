//! The demo's client of paystate's own HTTP API (admin token, JSON), and waiting for what the
//! server records in the background.

use anyhow::{bail, Context};
use paystate_server::AdminToken;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long the demo waits for a background effect (a registration, a delivery) at most.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// How often a condition on the API is looked at while waiting.
const POLL: Duration = Duration::from_millis(25);

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// paystate's HTTP API at `base`, with the admin bearer token.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: AdminToken,
}

impl Api {
    pub fn new(base: String, token: AdminToken) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { http, base, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    /// A request that must succeed (2xx); its JSON body.
    pub async fn ok(
        &self,
        answer: impl std::future::Future<Output = anyhow::Result<Answer>>,
        what: &str,
    ) -> anyhow::Result<Value> {
        let answer = answer.await?;
        if !(200..300).contains(&answer.status) {
            bail!("{what}: HTTP {} {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }

    /// Waits until `condition` holds for the JSON at `path`, and returns that JSON.
    pub async fn wait_for(
        &self,
        path: &str,
        what: &str,
        mut condition: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = self.get(path).await?;
            if (200..300).contains(&answer.status) && condition(&answer.body) {
                return Ok(answer.body);
            }
            if Instant::now() > deadline {
                bail!(
                    "waited {PATIENCE:?} for {what}; last answer of {path}: HTTP {} {}",
                    answer.status,
                    answer.body
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .context("calling the paystate API")?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .context("reading a paystate answer")?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }
}
