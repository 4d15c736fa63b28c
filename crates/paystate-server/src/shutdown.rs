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
        /// Sets its flag when the task's future is dropped, i.e. when the task was aborted.
        struct DropFlag(Arc<AtomicBool>);
        impl Drop for DropFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let mut tasks = BackgroundTasks::new();
        let guard = DropFlag(dropped.clone());
        tasks.spawn("stubborn", move |_stop| async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        tasks.shutdown(Duration::from_millis(10)).await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "the stubborn task was aborted"
        );
    }
}
