//! Spawned tasks, counted (issue 12 "Soak": no task is left after churn).
//! Every task the server and the proxy spawn goes through [`spawn`], which
//! keeps a live gauge: +1 when spawned, -1 when its future is dropped (it
//! ended, or was aborted, or its runtime shut down). `ctl stats` shows it
//! as `tasks`, `/metrics` as `tunnel443_tasks`; beside it tokio's own
//! count of the runtime's live tasks ([`runtime_alive`]: `runtime_tasks`,
//! `tunnel443_runtime_tasks`), which also sees the tasks libraries spawn.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinHandle;

static LIVE: AtomicU64 = AtomicU64::new(0);

/// Tasks spawned through [`spawn`] that have not ended.
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// tokio's count of the current runtime's live tasks (0 outside a
/// runtime).
pub fn runtime_alive() -> u64 {
    tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks() as u64)
}

/// One live task: counted from creation until dropped with its future.
struct Counted;

impl Counted {
    fn new() -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `tokio::spawn`, counted in [`live`].
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let counted = Counted::new();
    tokio::spawn(async move {
        let _counted = counted;
        future.await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Other tests spawn counted tasks concurrently: each check looks for
    /// this test's own tasks within the total.
    #[tokio::test]
    async fn ended_and_aborted_tasks_leave_the_gauge() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let blocked: Vec<_> = (0..1000)
            .map(|_| spawn(std::future::pending::<()>()))
            .collect();
        let waiting = spawn(async move {
            let _ = rx.await;
        });
        assert!(live() >= 1001, "{}", live());
        for t in &blocked {
            t.abort();
        }
        for t in blocked {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        tx.send(()).unwrap();
        waiting.await.unwrap();
        assert!(live() < 1000, "{}", live());
    }
}
