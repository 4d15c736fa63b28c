//! The demo's stage: the Vipps simulator and the paystate server in this process, each on a
//! free 127.0.0.1 port, the server on a real data directory.

use super::api::Api;
use anyhow::Context;
use paystate_server::{AdminToken, ServerConfig};
use std::path::Path;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long the demo's server keeps a superseded registration.
const DEMO_HANDOVER: Duration = Duration::from_secs(2);
use tokio::task::JoinHandle;
use vipps_sim::{SimConfig, SimHandle, Simulator};

/// Both servers, running.
pub struct Stage {
    pub sim: SimHandle,
    pub api: Api,
    /// Ends the server (its graceful shutdown).
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), paystate_server::ServerError>>,
}

impl Stage {
    /// Starts the simulator, then the server on `data_dir` pointed at it.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Stage> {
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the simulator")?;
        let sim = Simulator::start(sim_listener, SimConfig::for_tests())
            .await
            .context("starting the Vipps simulator")?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the server")?;
        let bound = listener.local_addr()?;
        // The token file is what `paystate serve --data` reads later, so the user can keep
        // exploring this directory with the same token.
        let (token, _) =
            AdminToken::load_or_generate(data_dir).context("preparing the admin token")?;
        let mut config = ServerConfig::new(data_dir, bound, token.clone());
        // The story shows the superseded registration deleted after a rotation; a server
        // keeps it ten minutes (`--registration-handover-secs`), the demo two seconds.
        config.registration.handover = DEMO_HANDOVER;
        config.vipps_base_url = Some(sim.base_url().parse().context("the simulator's base URL")?);
        config.validate()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let mut server = tokio::spawn(paystate_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let api = Api::new(format!("http://{bound}"), token)?;
        let ready = tokio::select! {
            ready = api.wait_for("/readyz", "the server to be ready", |_| true) => ready,
            ended = &mut server => return Err(start_failure(ended)),
        };
        if let Err(error) = ready {
            // A server that failed to start closes its listener and then ends; its own error
            // says why, so give it a moment to end.
            return match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
                Ok(ended) => Err(start_failure(ended)),
                Err(_) => Err(error),
            };
        }
        Ok(Stage {
            sim,
            api,
            stop,
            server,
        })
    }

    /// Stops the server (flushing and closing the store) and the simulator.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server
            .await
            .context("the server task")?
            .context("the server stopped with an error")?;
        self.sim
            .shutdown()
            .await
            .context("stopping the simulator")?;
        Ok(())
    }
}

/// Why the server task ended before the server was ready.
fn start_failure(
    ended: Result<Result<(), paystate_server::ServerError>, tokio::task::JoinError>,
) -> anyhow::Error {
    match ended {
        Ok(Ok(())) => anyhow::anyhow!("the server stopped before it was ready"),
        Ok(Err(error)) => anyhow::Error::new(error).context("the server could not start"),
        Err(error) => anyhow::Error::new(error).context("the server task failed"),
    }
}
