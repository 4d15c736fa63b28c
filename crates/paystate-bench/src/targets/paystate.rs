//! paystate as a target: `paystate serve` (the release binary) on a fresh data directory, and a
//! provider registered through the admin API against the [`VippsStub`], exactly as an operator
//! sets one up.

use super::child::{free_loopback_address, ChildServer};
use super::http_client;
use super::vipps_stub::VippsStub;
use crate::error::BenchError;
use crate::load::WebhookEndpoint;
use http::{Method, StatusCode};
use paystate_vipps::signature::RegisteredUrl;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// How long the registration reactor may take to register the provider's webhook.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The provider the benchmark sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchProvider {
    pub id: String,
    pub msn: String,
}

impl Default for BenchProvider {
    fn default() -> Self {
        BenchProvider {
            id: "bench-shop".into(),
            msn: "123456".into(),
        }
    }
}

/// Creates and enables `provider` through the admin API of the server at `address`, waits
/// until the registration reactor has registered its webhook at `stub`, and returns where
/// and how to send it signed deliveries.
pub async fn register_provider(
    address: SocketAddr,
    admin_token: &str,
    stub: &VippsStub,
    provider: &BenchProvider,
) -> Result<WebhookEndpoint, BenchError> {
    let admin = |method: Method, path: String, body: Option<serde_json::Value>| async move {
        http_client::call(address, method, &path, Some(admin_token), body.as_ref()).await
    };
    let create = json!({
        "id": provider.id,
        "kind": "vipps",
        "environment": "test",
        "msn": provider.msn,
        "credentials": {
            "client_id": "bench-client",
            "client_secret": "bench-client-secret",
            "subscription_key": "bench-subscription-key",
        },
    });
    let (status, answer) = admin(Method::POST, "/providers".into(), Some(create)).await?;
    expect(
        status,
        StatusCode::CREATED,
        "creating the provider",
        &answer,
    )?;
    let enable = format!("/providers/{}/enable", provider.id);
    let (status, answer) = admin(Method::POST, enable, None).await?;
    expect(status, StatusCode::OK, "enabling the provider", &answer)?;

    let deadline = Instant::now() + REGISTRATION_TIMEOUT;
    let webhook = loop {
        let view = format!("/providers/{}", provider.id);
        let (status, answer) = admin(Method::GET, view, None).await?;
        expect(status, StatusCode::OK, "reading the provider", &answer)?;
        if !answer["webhook"].is_null() {
            break answer["webhook"].clone();
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "the provider's webhook was not registered within {REGISTRATION_TIMEOUT:?}; \
                 last_registration_error: {}",
                answer["last_registration_error"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let url = webhook["url"].as_str().unwrap_or_default();
    let registered_url = RegisteredUrl::parse(url)
        .map_err(|error| BenchError::Setup(format!("registered URL {url:?}: {error}")))?;
    Ok(WebhookEndpoint {
        registered_url,
        secret: stub.secret().clone(),
        webhook_id: webhook["registration_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

fn expect(
    status: StatusCode,
    wanted: StatusCode,
    what: &str,
    answer: &serde_json::Value,
) -> Result<(), BenchError> {
    if status == wanted {
        Ok(())
    } else {
        Err(BenchError::Setup(format!(
            "{what}: expected {wanted}, got {status}: {answer}"
        )))
    }
}

/// `paystate serve` as a child process.
#[derive(Debug)]
pub struct PaystateServer {
    pub server: ChildServer,
    pub admin_token: String,
    pub data_dir: PathBuf,
}

impl PaystateServer {
    /// Starts `binary serve` on a free loopback port with `data_dir` (created if missing),
    /// pointing its Vipps API at `vipps_base_url`. Logs go to `{data_dir}.log`.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        vipps_base_url: &str,
    ) -> Result<PaystateServer, BenchError> {
        let address = free_loopback_address()?;
        let admin_token = "bench-admin-token-0123456789abcdef".to_owned();
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("serve")
            .arg("--data")
            .arg(data_dir)
            .arg("--listen")
            .arg(address.to_string())
            .arg("--vipps-base-url")
            .arg(vipps_base_url)
            .env("PAYSTATE_ADMIN_TOKEN", &admin_token);
        let log = data_dir.with_extension("log");
        let server =
            ChildServer::start("paystate serve", command, address, "/healthz", &log).await?;
        Ok(PaystateServer {
            server,
            admin_token,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The webhook counters the server keeps for `provider`, (accepted, duplicates), once
    /// they equal `expected` or `wait` has passed (the provider view follows the log).
    pub async fn webhook_counters_awaiting(
        &self,
        provider: &BenchProvider,
        expected: (u64, u64),
        wait: Duration,
    ) -> Result<(u64, u64), BenchError> {
        let deadline = Instant::now() + wait;
        loop {
            let counted = self.webhook_counters(provider).await?;
            if counted == expected || Instant::now() > deadline {
                return Ok(counted);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The webhook counters the server keeps for `provider`: (accepted, duplicates).
    pub async fn webhook_counters(
        &self,
        provider: &BenchProvider,
    ) -> Result<(u64, u64), BenchError> {
        let path = format!("/providers/{}", provider.id);
        let (status, answer) = http_client::call(
            self.server.address(),
            Method::GET,
            &path,
            Some(&self.admin_token),
            None,
        )
        .await?;
        expect(status, StatusCode::OK, "reading the provider", &answer)?;
        let counter = |name: &str| answer["webhooks"][name].as_u64().unwrap_or(0);
        Ok((counter("accepted"), counter("duplicates")))
    }
}

impl PaystateServer {
    /// The log head (`paystate_store_head_position` on `/metrics`): events in the log.
    pub async fn log_head(&self) -> Result<Option<u64>, BenchError> {
        let (status, body) =
            http_client::call_raw(self.server.address(), Method::GET, "/metrics", None, None)
                .await?;
        if status != StatusCode::OK {
            return Ok(None);
        }
        let value = metric_value(&String::from_utf8_lossy(&body), HEAD_METRIC);
        Ok(value.map(|head| head as u64))
    }
}

/// The gauge of the store's head position.
const HEAD_METRIC: &str = "paystate_store_head_position";

/// The value of an unlabelled metric in Prometheus text.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_gauge_is_read_from_prometheus_text() {
        let text = "# TYPE paystate_store_head_position gauge\n\
                    paystate_store_head_position_other 1\n\
                    paystate_store_head_position 4242\n";
        assert_eq!(metric_value(text, HEAD_METRIC), Some(4242.0));
        assert_eq!(metric_value("", HEAD_METRIC), None);
    }
}
