//! The CPU pool: merges, photo checks and password hashing are CPU work, run on the
//! blocking threads at most one per core at a time, so a burst of devices queues instead of
//! thrashing (and holding every request's documents in memory at once).

use std::sync::Arc;

use tokio::sync::Semaphore;

/// At most one piece of CPU work per core at a time.
#[derive(Debug, Clone)]
pub struct CpuPool {
    cores: Arc<Semaphore>,
}

impl CpuPool {
    /// A pool running at most `cores` pieces of work at once.
    #[must_use]
    pub fn new(cores: usize) -> Self {
        Self {
            cores: Arc::new(Semaphore::new(cores.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a core is free; `None` if it panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _core = self.cores.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }
}
