//! A server under test running as a child process, so that its CPU and memory are its own.

use super::http_client;
use crate::error::BenchError;
use http::{Method, StatusCode};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a server may take to answer its health check after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A free loopback address to pass to a server's `--listen`. The port is released before the
/// server binds it; on loopback nothing else races for it in practice.
pub fn free_loopback_address() -> Result<SocketAddr, BenchError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("binding 127.0.0.1:0"))?;
    listener
        .local_addr()
        .map_err(BenchError::io("reading a bound address"))
}

/// A running child server.
#[derive(Debug)]
pub struct ChildServer {
    name: String,
    child: Child,
    pid: u32,
    address: SocketAddr,
}

impl ChildServer {
    /// Starts `command` (which must serve on `address`), its stderr going to `log`, and waits
    /// until `GET {health_path}` answers 200.
    pub async fn start(
        name: &str,
        mut command: Command,
        address: SocketAddr,
        health_path: &str,
        log: &Path,
    ) -> Result<ChildServer, BenchError> {
        let log_file = std::fs::File::create(log)
            .map_err(BenchError::io(format!("creating {}", log.display())))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(BenchError::io(format!("starting {name}")))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup(format!("{name} exited at once")))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(BenchError::Setup(format!(
                    "{name} exited with {status} before it was ready; see {}",
                    log.display()
                )));
            }
            let health = http_client::call(address, Method::GET, health_path, None, None).await;
            if matches!(health, Ok((StatusCode::OK, _))) {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "{name} did not answer {health_path} within {START_TIMEOUT:?}; see {}",
                    log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(ChildServer {
            name: name.to_owned(),
            child,
            pid,
            address,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Asks the server to stop (SIGTERM: graceful shutdown) and waits for it; kills it if it
    /// takes too long. Returns whether it stopped gracefully.
    pub async fn stop(mut self) -> Result<bool, BenchError> {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .map_err(BenchError::io("running kill"))?;
        if signalled.success() {
            if let Ok(Ok(status)) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
                return Ok(status.success());
            }
        }
        eprintln!("{} did not stop after SIGTERM; killing it", self.name);
        let _ = self.child.kill().await;
        Ok(false)
    }
}
