//! Cancellation and ownership of background tasks.
//!
//! [`BackgroundTasks`] owns every task the server spawns besides request handlers (projection
//! follower, registration reactor, ...). Each task gets a [`StopSignal`]; on shutdown the owner
//! raises it and waits for every task to finish its current step, so nothing is cut off midway.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A cloneable "please stop" signal handed to background tasks.
#[derive(Debug, Clone)]
pub struct StopSignal {
    /// A watch rather than a oneshot: every clone observes the one transition to `true`, and a
    /// task that checks late still sees it.
    receiver: watch::Receiver<bool>,
    /// Keeps the sender of a [`StopSignal::never`] alive, so that it stays pending.
    _never: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl StopSignal {
    /// Resolves once stop has been requested (or the owner is gone).
    pub async fn stopped(&mut self) {
        // An error means the sender was dropped, which also means stop.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Whether stop has been requested.
    pub fn is_stopped(&self) -> bool {
        *self.receiver.borrow()
    }

    /// A signal that never fires, for code run outside a server (tests, CLI tools).
    pub fn never() -> StopSignal {
        let (sender, receiver) = watch::channel(false);
        StopSignal {
            receiver,
            _never: Some(std::sync::Arc::new(sender)),
        }
    }
}

/// The owner of the server's background tasks.
#[derive(Debug)]
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        BackgroundTasks::new()
    }
}

impl BackgroundTasks {
    pub fn new() -> BackgroundTasks {
        let (stop, _) = watch::channel(false);
        BackgroundTasks {
            stop,
            tasks: JoinSet::new(),
        }
    }

    /// A stop signal tied to this owner.
    pub fn signal(&self) -> StopSignal {
        StopSignal {
            receiver: self.stop.subscribe(),
            _never: None,
        }
    }

    /// Spawns `task(stop)`; `name` appears in logs if the task fails.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(StopSignal) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.signal());
        self.tasks.spawn(async move {
            future.await;
            tracing::debug!(task = name, "background task finished");
        });
    }

    /// Raises the stop signal and waits up to `grace` for every task; the rest are aborted.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drain = async {
            while let Some(result) = self.tasks.join_next().await {
                if let Err(error) = result {
                    if error.is_panic() {
                        tracing::error!("a background task panicked");
                    }
                }
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                remaining = self.tasks.len(),
                "background tasks did not stop in time; aborting them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn shutdown_lets_tasks_finish_their_step() {
        let finished = Arc::new(AtomicBool::new(false));
        let mut tasks = BackgroundTasks::new();
        let flag = finished.clone();
        tasks.spawn("worker", move |mut stop| async move {
            stop.stopped().await;
            flag.store(true, Ordering::SeqCst);
        });
        tasks.shutdown(Duration::from_secs(5)).await;
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_task_that_ignores_stop_is_aborted_after_the_grace() {
        let mut tasks = BackgroundTasks::new();
        tasks.spawn("stubborn", |_stop| std::future::pending::<()>());
        tasks.shutdown(Duration::from_millis(10)).await;
    }
}
