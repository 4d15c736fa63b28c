//! The demo's stage: the Vipps simulator and the paystate server in this process, each on a
//! free 127.0.0.1 port, the server on a real data directory.

use super::api::Api;
use anyhow::Context;
use paystate_server::{AdminToken, ServerConfig};
use std::path::Path;
use tokio::sync::oneshot;
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
        config.vipps_base_url = Some(sim.base_url().parse().context("the simulator's base URL")?);
        config.validate()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(paystate_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let api = Api::new(format!("http://{bound}"), token)?;
        api.wait_for("/readyz", "the server to be ready", |_| true)
            .await?;
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
