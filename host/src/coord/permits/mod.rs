//! Search permits: a counting semaphore (global + per service) shared by
//! every session, that survives holders being SIGKILLed.
//!
//! A permit is two things, taken in this order:
//! 1. a turn: first come, first served across sessions through Redis
//!    (leases in sorted sets scored by expiry, acquired/renewed/released
//!    atomically in Lua, a ticket queue whose dead entries expire), or,
//!    when Redis is not there or does not answer, this process's own FIFO
//!    (tokio semaphores);
//! 2. kernel slots (`slots`): an exclusive `flock` on one slot file of the
//!    service and one of the global scope. These hold the cap in every
//!    state of Redis, across every process on the host.
//!
//! So Redis orders the sessions and gives the shared view; a slow, paused,
//! evicting or lost Redis changes the order (per process instead of across
//! sessions), never the cap.

mod local;
mod turn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::names::{self, label, ErrorKind, PermitOutcome};
use super::slots::{self, SlotWait};
use super::{Coordinator, Inner};

pub(crate) use local::LocalPermits;
pub(crate) use turn::STATS;

/// Where a waiting search stands, for progress messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    pub running_global: u32,
    pub limit_global: u32,
    pub running_service: u32,
    pub limit_service: u32,
    /// 1 = next in line.
    pub position: u32,
}

impl std::fmt::Display for QueueStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queued: {}/{} searches running, {}/{} for this service, position {}",
            self.running_global, self.limit_global, self.running_service, self.limit_service, self.position
        )
    }
}

/// Why no permit was granted.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PermitError {
    /// The wait (`limits.permit_wait_ms`) ran out; the message names the limit.
    #[error("{message}")]
    Busy { message: String, status: QueueStatus, waited: Duration },
    /// The call was cancelled while waiting.
    #[error("cancelled while waiting for a search permit")]
    Cancelled,
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 0.05 {
        format!("{} s", s.round() as u64)
    } else {
        format!("{s:.1} s")
    }
}

pub(crate) fn busy_message(st: &QueueStatus, service: &str, waited: Duration) -> String {
    if st.running_global >= st.limit_global {
        format!(
            "busy: {}/{} searches running globally (MAX_GLOBAL_SEARCHES = {}); waited {}",
            st.running_global,
            st.limit_global,
            st.limit_global,
            seconds(waited)
        )
    } else if st.running_service >= st.limit_service {
        format!(
            "busy: {}/{} searches running for service '{}' (MAX_PER_SERVICE_SEARCHES = {}); waited {}",
            st.running_service,
            st.limit_service,
            service,
            st.limit_service,
            seconds(waited)
        )
    } else {
        format!(
            "busy: {} searches queued ahead for a permit ({}/{} running globally, MAX_GLOBAL_SEARCHES = {}); waited {}",
            st.position.saturating_sub(1),
            st.running_global,
            st.limit_global,
            st.limit_global,
            seconds(waited)
        )
    }
}

/// Whose turn it is: how this permit was ordered among waiters.
enum Turn {
    Local(#[allow(dead_code)] OwnedSemaphorePermit, #[allow(dead_code)] OwnedSemaphorePermit),
    Redis { holder: String, inner: Arc<Inner> },
    Released,
}

/// A held search permit. Dropping it releases the permit (the Redis lease
/// in a spawned task); `release().await` releases it in place.
pub struct PermitGuard {
    turn: Turn,
    /// The kernel slots (the cap); `None` only when the slot directory is
    /// unusable (logged at start: the cap then holds per session).
    slots: Option<slots::Held>,
    service: String,
    acquired_at: Instant,
}

/// One permit request, counted in `logai_permits_total` and its wait in
/// `logai_permit_wait_ms` when it ends (dropped unfinished: `cancelled`).
struct PermitRequest<'a> {
    metrics: &'a super::Metrics,
    service: &'a str,
    started: Instant,
    outcome: PermitOutcome,
}

impl Drop for PermitRequest<'_> {
    fn drop(&mut self) {
        self.metrics.incr(names::PERMITS_TOTAL, &[(label::SERVICE, self.service), (label::OUTCOME, self.outcome.as_str())], 1.0);
        self.metrics.observe(names::PERMIT_WAIT_MS, &[(label::SERVICE, self.service)], self.started.elapsed().as_secs_f64() * 1000.0);
    }
}

impl std::fmt::Debug for PermitGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermitGuard").field("service", &self.service).field("shared", &self.is_shared()).finish()
    }
}

impl PermitGuard {
    fn new(turn: Turn, slots: Option<slots::Held>, service: &str) -> PermitGuard {
        PermitGuard { turn, slots, service: service.to_string(), acquired_at: Instant::now() }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Whether the permit's turn came from Redis (all sessions' order)
    /// rather than this process's own queue.
    pub fn is_shared(&self) -> bool {
        matches!(self.turn, Turn::Redis { .. })
    }

    /// Whether the permit holds kernel slots (the cap across processes).
    pub fn holds_slots(&self) -> bool {
        self.slots.is_some()
    }

    pub fn held_for(&self) -> Duration {
        self.acquired_at.elapsed()
    }

    /// Release now: the slots at once, then the Redis lease (bounded by
    /// `redis.op_timeout_ms`, handed to the background when Redis is slow).
    pub async fn release(mut self) {
        self.slots.take();
        if let Turn::Redis { holder, inner } = std::mem::replace(&mut self.turn, Turn::Released) {
            inner.release_redis(&holder, &self.service).await;
        }
        // Local turns return to their semaphores when dropped here.
    }
}

impl Drop for PermitGuard {
    fn drop(&mut self) {
        self.slots.take();
        if let Turn::Redis { holder, inner } = std::mem::replace(&mut self.turn, Turn::Released) {
            let service = std::mem::take(&mut self.service);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move { inner.release_redis(&holder, &service).await });
                }
                Err(_) => {
                    // No runtime to talk to Redis from: the lease expires by itself.
                    inner.held.lock().remove(&holder);
                }
            }
        }
    }
}

impl Coordinator {
    /// Wait for a search permit for `service` (global + per-service limits,
    /// shared by all sessions), first come first served. `on_wait` is called
    /// whenever the queue status changes while waiting. Gives up after
    /// `limits.permit_wait_ms` with [`PermitError::Busy`].
    pub async fn acquire(
        &self,
        service: &str,
        cancel: &CancellationToken,
        on_wait: impl Fn(QueueStatus) + Send,
    ) -> Result<PermitGuard, PermitError> {
        self.acquire_by(service, cancel, None, on_wait).await
    }

    /// [`Coordinator::acquire`], giving up with [`PermitError::Busy`] at
    /// `by` when that comes before `limits.permit_wait_ms` runs out (the
    /// caller's own deadline: a call that would be stopped anyway gets the
    /// "busy" answer that names the limit instead).
    pub async fn acquire_by(
        &self,
        service: &str,
        cancel: &CancellationToken,
        by: Option<Instant>,
        on_wait: impl Fn(QueueStatus) + Send,
    ) -> Result<PermitGuard, PermitError> {
        let inner = &self.0;
        let started = Instant::now();
        let mut deadline = started + Duration::from_millis(inner.limits.permit_wait_ms);
        if let Some(by) = by {
            deadline = deadline.min(by);
        }
        // Counted however the wait ends: a call cancelled while it waits
        // usually drops this future rather than seeing `Cancelled`.
        let mut counted = PermitRequest { metrics: &inner.metrics, service, started, outcome: PermitOutcome::Cancelled };
        let result = self.acquire_inner(service, cancel, on_wait, started, deadline).await;
        counted.outcome = match &result {
            Ok(_) => PermitOutcome::Granted,
            Err(PermitError::Busy { .. }) => PermitOutcome::Busy,
            Err(PermitError::Cancelled) => PermitOutcome::Cancelled,
        };
        result
    }

    /// Search permits (kernel slots) held right now on this host by every
    /// session, this call's own included: `None` without a slot directory.
    pub fn permits_in_use(&self, service: &str) -> Option<u32> {
        self.0.slots.as_ref().map(|s| s.in_use(service).0)
    }

    async fn acquire_inner<F: Fn(QueueStatus) + Send>(
        &self,
        service: &str,
        cancel: &CancellationToken,
        mut on_wait: F,
        started: Instant,
        deadline: Instant,
    ) -> Result<PermitGuard, PermitError> {
        let inner = &self.0;
        if cancel.is_cancelled() {
            return Err(PermitError::Cancelled);
        }
        let (turn, mut last) = self.take_turn(service, cancel, &mut on_wait, started, deadline).await?;
        let Some(slots) = inner.slots.as_ref() else {
            return Ok(PermitGuard::new(turn, None, service));
        };
        // The cap: a service slot and a global slot, whoever else holds
        // them (sessions on Redis or not, this process or another).
        let (lg, ls) = slots.limits();
        let waited = slots
            .acquire(service, cancel, deadline, || {
                let (g, s) = slots.in_use(service);
                let now = QueueStatus { running_global: g, limit_global: lg, running_service: s, limit_service: ls, position: 1 };
                if last != Some(now) {
                    last = Some(now);
                    on_wait(now);
                }
            })
            .await;
        match waited {
            Ok(Ok(held)) => Ok(PermitGuard::new(turn, Some(held), service)),
            Ok(Err(SlotWait::Cancelled)) => {
                drop(PermitGuard::new(turn, None, service));
                Err(PermitError::Cancelled)
            }
            Ok(Err(SlotWait::TimedOut { global, service: running_service })) => {
                drop(PermitGuard::new(turn, None, service));
                let status = QueueStatus { running_global: global, limit_global: lg, running_service, limit_service: ls, position: 1 };
                Err(PermitError::Busy { message: busy_message(&status, service, started.elapsed()), status, waited: started.elapsed() })
            }
            Err(e) => {
                // The slot directory broke after start (removed, disk
                // full): say so loudly and run on the turn alone.
                warn!(dir = %slots.root().display(), error = %e, "search slots unusable: this search is capped by its turn only");
                inner.metrics.incr(names::ERRORS_TOTAL, &[(label::KIND, ErrorKind::SlotsUnusable.as_str())], 1.0);
                Ok(PermitGuard::new(turn, None, service))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_messages_name_the_limit() {
        let st = QueueStatus { running_global: 20, limit_global: 20, running_service: 3, limit_service: 5, position: 3 };
        assert_eq!(
            busy_message(&st, "nginx", Duration::from_secs(30)),
            "busy: 20/20 searches running globally (MAX_GLOBAL_SEARCHES = 20); waited 30 s"
        );
        let st = QueueStatus { running_global: 7, limit_global: 20, running_service: 5, limit_service: 5, position: 1 };
        assert_eq!(
            busy_message(&st, "nginx", Duration::from_millis(1500)),
            "busy: 5/5 searches running for service 'nginx' (MAX_PER_SERVICE_SEARCHES = 5); waited 1.5 s"
        );
    }
}
