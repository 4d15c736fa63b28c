//! A throwaway PostgreSQL cluster in a temporary directory, started and stopped by
//! `scripts/postgres.sh` (which installs Debian's `postgresql` when none is present).

use crate::error::BenchError;
use crate::process::children_of;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The script that starts and stops the cluster.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

/// A running cluster listening on a unix socket in its directory; stopped on drop.
#[derive(Debug)]
pub struct PostgresCluster {
    dir: Option<TempDir>,
    connection: String,
}

impl PostgresCluster {
    /// Initialises and starts a cluster in a new directory under `base` (the filesystem under
    /// test, the same as paystate's).
    pub fn start(base: &Path) -> Result<PostgresCluster, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("paystate-bench-pg")
            .tempdir_in(base)
            .map_err(BenchError::io(format!(
                "creating a directory in {}",
                base.display()
            )))?;
        let output = std::process::Command::new(script())
            .arg("start")
            .arg(dir.path())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(BenchError::io("running scripts/postgres.sh start"))?;
        if !output.status.success() {
            return Err(BenchError::Setup(format!(
                "scripts/postgres.sh start failed with {}",
                output.status
            )));
        }
        let connection = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(PostgresCluster {
            dir: Some(dir),
            connection,
        })
    }

    /// The `tokio-postgres` connection string.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// Runs `VACUUM (ANALYZE)`, then `CHECKPOINT`: PostgreSQL cleans up after a load and
    /// writes out the pages it dirtied now, rather than at a moment of its choosing (while
    /// another target is being measured).
    pub async fn settle(&self) -> Result<(), BenchError> {
        let failed = |error: tokio_postgres::Error| {
            BenchError::Setup(format!("settling the alternative's cluster: {error}"))
        };
        let (client, connection) = tokio_postgres::connect(&self.connection, tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        let connection = tokio::spawn(connection);
        // Two statements: VACUUM cannot run inside the transaction one query string makes.
        let done = match client.batch_execute("VACUUM (ANALYZE)").await {
            Ok(()) => client.batch_execute("CHECKPOINT").await.map_err(failed),
            Err(error) => Err(failed(error)),
        };
        drop(client);
        let _ = connection.await;
        done
    }

    /// The cluster's data directory (tables and WAL).
    pub fn data_dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|dir| dir.path().join("data"))
            .unwrap_or_default()
    }

    /// The postmaster and every process it started (backends, WAL writer, checkpointer).
    pub fn pids(&self) -> Vec<u32> {
        let postmaster = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        match postmaster {
            Some(pid) => {
                let mut pids = children_of(pid);
                pids.push(pid);
                pids
            }
            None => Vec::new(),
        }
    }

    /// `postgres --version` of the binaries the script uses.
    pub fn version() -> String {
        std::process::Command::new(script())
            .args(["version", "-"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    }

    fn stop_now(&mut self) {
        if let Some(dir) = self.dir.take() {
            let stopped = std::process::Command::new(script())
                .arg("stop")
                .arg(dir.path())
                .status();
            if !stopped.is_ok_and(|status| status.success()) {
                eprintln!(
                    "could not stop the PostgreSQL cluster in {}",
                    dir.path().display()
                );
            }
        }
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        self.stop_now();
    }
}
