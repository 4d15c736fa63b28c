//! The real `paystate` binary as a child process, for tests that kill it.

use crate::eventually;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `paystate` binary built beside this test binary (`target/<profile>/paystate`).
/// `cargo test --workspace` builds it.
pub fn paystate_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/paystate
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let binary = profile_dir.join(format!("paystate{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} does not exist: build it with `cargo build -p paystate-cli` (cargo test --workspace does)",
        binary.display()
    );
    binary
}

/// A free loopback port: bound and released, so a child can bind it (and bind it again after
/// a restart, keeping the webhook URL registered at the simulator valid).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("address").port()
}

/// `paystate serve` running as a child process.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    pub base_url: String,
}

impl ChildServer {
    /// Starts `paystate serve` on `127.0.0.1:{port}` and waits until `/healthz` answers.
    pub async fn spawn(
        data_dir: &Path,
        port: u16,
        vipps_base_url: &str,
        admin_token: &str,
    ) -> ChildServer {
        let child = Command::new(paystate_binary())
            .arg("serve")
            .arg("--data")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--vipps-base-url")
            .arg(vipps_base_url)
            .arg("--log-format")
            .arg("json")
            .arg("--registration-handover-secs")
            .arg(crate::server::TEST_HANDOVER.as_secs().to_string())
            .env("PAYSTATE_ADMIN_TOKEN", admin_token)
            .env_remove("PAYSTATE_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn paystate serve");
        let server = ChildServer {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", server.base_url);
        eventually(
            "the child server to be ready",
            Duration::from_secs(30),
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let response = client.get(&url).send().await.ok()?;
                    (response.status() == StatusCode::OK).then_some(())
                }
            },
        )
        .await;
        server
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9 the child");
        self.child.wait().expect("reap the child");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("send SIGTERM");
        assert!(status.success(), "kill -TERM failed");
        let exit = self.child.wait().expect("wait for the child");
        assert!(exit.success(), "paystate serve exited with {exit}");
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // A test that panicked must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
