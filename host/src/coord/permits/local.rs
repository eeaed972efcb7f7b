//! This process's own turns: FIFO tokio semaphores (global and per
//! service), for local-only mode and while Redis is unavailable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::QueueStatus;

/// In-process permits (local-only mode and Redis outages).
pub(crate) struct LocalPermits {
    global: Arc<Semaphore>,
    services: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub(crate) limit_global: u32,
    pub(crate) limit_service: u32,
    waiting: AtomicU32,
}

impl LocalPermits {
    pub(crate) fn new(limit_global: u32, limit_service: u32) -> Self {
        let limit_global = limit_global.max(1);
        let limit_service = limit_service.max(1);
        LocalPermits {
            global: Arc::new(Semaphore::new(limit_global as usize)),
            services: Mutex::new(HashMap::new()),
            limit_global,
            limit_service,
            waiting: AtomicU32::new(0),
        }
    }

    fn service(&self, name: &str) -> Arc<Semaphore> {
        self.services.lock().entry(name.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.limit_service as usize))).clone()
    }

    fn status(&self, svc: &Semaphore, position: u32) -> QueueStatus {
        QueueStatus {
            running_global: self.limit_global - (self.global.available_permits() as u32).min(self.limit_global),
            limit_global: self.limit_global,
            running_service: self.limit_service - (svc.available_permits() as u32).min(self.limit_service),
            limit_service: self.limit_service,
            position,
        }
    }

    /// Permits held right now: global, then per service.
    pub(crate) fn in_use(&self) -> (u32, Vec<(String, u32)>) {
        let g = self.limit_global - (self.global.available_permits() as u32).min(self.limit_global);
        let s = self
            .services
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), self.limit_service - (s.available_permits() as u32).min(self.limit_service)))
            .collect();
        (g, s)
    }

    pub(crate) fn queue_length(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Service permit first (FIFO per service), then the global one (FIFO).
    pub(super) async fn acquire<F: Fn(QueueStatus) + Send>(
        &self,
        service: &str,
        cancel: &CancellationToken,
        on_wait: &mut F,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), (Option<QueueStatus>, bool)> {
        let svc = self.service(service);
        if let Ok(s) = svc.clone().try_acquire_owned() {
            if let Ok(g) = self.global.clone().try_acquire_owned() {
                return Ok((g, s));
            }
            drop(s);
        }
        let position = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        struct Leave<'a>(&'a AtomicU32);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _leave = Leave(&self.waiting);
        let global = self.global.clone();
        let svc2 = svc.clone();
        let both = async move {
            let s = svc2.acquire_owned().await.expect("semaphore never closed");
            let g = global.acquire_owned().await.expect("semaphore never closed");
            (g, s)
        };
        tokio::pin!(both);
        // Take a place in the semaphore's queue before reporting the wait.
        tokio::select! {
            biased;
            got = &mut both => return Ok(got),
            _ = std::future::ready(()) => {}
        }
        let mut last = self.status(&svc, position);
        on_wait(last);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                got = &mut both => return Ok(got),
                _ = cancel.cancelled() => return Err((Some(last), true)),
                _ = tokio::time::sleep_until(deadline.into()) => return Err((Some(last), false)),
                _ = tick.tick() => {
                    let now = self.status(&svc, position.min(self.waiting.load(Ordering::Relaxed)).max(1));
                    if now != last {
                        last = now;
                        on_wait(now);
                    }
                }
            }
        }
    }
}
