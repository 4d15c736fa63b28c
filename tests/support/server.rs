//! The real server in-process, on `127.0.0.1:0`, with a fresh temporary data directory.

use paystate_server::secrets::{MasterKey, SecretVault};
use paystate_server::{AdminToken, ServerConfig, ServerError};
use paystate_store::EventStore;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The handover of every test server: a superseded registration is deleted two seconds after
/// its successor (a real server keeps it ten minutes), so tests see the deletion.
pub const TEST_HANDOVER: std::time::Duration = std::time::Duration::from_secs(2);

/// A running server. The test keeps a handle on the same store and vault to seed data and
/// to check what was recorded.
#[derive(Debug)]
pub struct TestServer {
    pub base_url: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub store: Arc<dyn EventStore>,
    pub vault: Arc<SecretVault>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose configuration `configure` may change first.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data_dir = dir.path().to_path_buf();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("bound address");
        let token = AdminToken::generate();
        let admin_token = token.expose().to_owned();
        let mut config = ServerConfig::new(&data_dir, address, token);
        config.registration.handover = TEST_HANDOVER;
        configure(&mut config);

        // The master key file exists before the server starts, so the test's vault and the
        // server's open the same secrets.
        let (master_key, _) = MasterKey::load_or_generate(&data_dir).expect("master key");
        let store = paystate_server::store::open(&data_dir).expect("open the store");
        let vault = Arc::new(SecretVault::open(store.clone(), master_key).expect("open the vault"));

        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(paystate_server::run_with_store(
            listener,
            config,
            store.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let server = TestServer {
            base_url: format!("http://{address}"),
            admin_token,
            data_dir,
            store,
            vault,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            dir,
        };
        let (status, body) = server.get("/healthz").await;
        assert_eq!(status, StatusCode::OK, "healthz: {body}");
        server
    }

    /// `{base}/webhooks/vipps/{provider}`: where the server receives a provider's deliveries.
    pub fn webhook_url(&self, provider: &str) -> String {
        format!("{}/webhooks/vipps/{provider}", self.base_url)
    }

    /// An unauthenticated GET; the body parsed as JSON (or a JSON string of the text).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("GET");
        read(response).await
    }

    /// A GET with the admin token.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("GET");
        read(response).await
    }

    /// Posts a delivery with these headers and raw body to the provider's webhook URL.
    pub async fn post_webhook(
        &self,
        provider: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.webhook_url(provider)).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        read(request.send().await.expect("POST")).await
    }

    /// The log's head position.
    pub fn head(&self) -> u64 {
        self.store.head().expect("head").0
    }

    /// Stops the server gracefully, checks it stopped cleanly, and hands back its data
    /// directory (still on disk) so a test can reopen the store.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.dir
    }
}

/// Status and JSON body of a response; a non-JSON body becomes a JSON string.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}
