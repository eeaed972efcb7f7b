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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::{Failure, OnTimeout};
use super::names::{self, label, ErrorKind, PermitOutcome, RedisOp};
use super::slots::{self, SlotWait};
use super::{Coordinator, Inner};

/// Timed-out acquire calls retried (same holder: idempotent) before this
/// wait takes its turn from local state instead.
const ACQUIRE_TIMEOUT_RETRIES: u32 = 1;

static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/permit_acquire.lua")));
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/permit_release.lua")));
pub(crate) static RENEW: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/permit_renew.lua")));
pub(crate) static STATS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/permit_stats.lua")));

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
    async fn acquire<F: Fn(QueueStatus) + Send>(
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

impl Inner {
    pub(crate) async fn release_redis(&self, holder: &str, service: &str) {
        // Never while a renewal is in flight: it read `held` before this
        // release and would put the released lease back (see renew_leases).
        let _no_renewal = self.lease_gate.read().await;
        self.held.lock().remove(holder);
        let keys = self.keys.permit_keys(service);
        let holder = holder.to_string();
        let channel = self.keys.released_channel.clone();
        let release = |mut con: redis::aio::ConnectionManager| {
            let (keys, holder, channel) = (keys.clone(), holder.clone(), channel.clone());
            async move {
                let mut inv = RELEASE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(&holder).arg(&channel);
                inv.invoke_async::<i64>(&mut con).await
            }
        };
        // A lease left behind holds a turn (not a slot) until it expires:
        // when the call path cannot release it, background work does.
        if self.link.run(RedisOp::PermitRelease, release).await.is_none() && self.link.configured() {
            self.link.run_background(RedisOp::PermitRelease, release).await;
        }
        self.released.notify_waiters();
    }

    /// One step of the Redis acquire protocol: `(granted, status)`.
    async fn try_acquire_redis(&self, service: &str, holder: &str, on_timeout: OnTimeout) -> Result<(bool, QueueStatus, u32), Failure> {
        let keys = self.keys.permit_keys(service);
        let seq = self.keys.seq.clone();
        let services = self.keys.services.clone();
        let svc_prefix = self.keys.svc_prefix.clone();
        let (lg, ls) = (self.limits.max_global_searches.max(1), self.limits.max_per_service_searches.max(1));
        let lease = self.limits.permit_lease_ms.max(100);
        let waiter_ttl = self.waiter_ttl_ms();
        let service_s = service.to_string();
        let holder = holder.to_string();
        let channel = self.keys.released_channel.clone();
        let reply: Vec<i64> = self
            .link
            .call(RedisOp::PermitAcquire, on_timeout, |mut con| async move {
                let mut inv = ACQUIRE.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.key(&seq).key(&services);
                inv.arg(&svc_prefix).arg(&service_s).arg(&holder).arg(lg).arg(ls).arg(lease).arg(waiter_ttl).arg(&channel);
                inv.invoke_async::<Vec<i64>>(&mut con).await
            })
            .await?;
        if reply.len() < 5 {
            return Err(Failure::Refused);
        }
        let status = QueueStatus {
            running_global: reply[1] as u32,
            limit_global: lg,
            running_service: reply[2] as u32,
            limit_service: ls,
            position: reply[3] as u32,
        };
        Ok((reply[0] == 1, status, reply[4] as u32))
    }

    /// How long a waiter's ticket survives without a poll.
    pub(crate) fn waiter_ttl_ms(&self) -> u64 {
        self.limits.permit_lease_ms.clamp(500, 2000)
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

    /// Wait for this search's turn: from Redis, first come first served
    /// across sessions, or (Redis not configured, down, refusing, or not
    /// answering twice in a row) from this process's own queue. Returns the
    /// last queue status reported.
    async fn take_turn<F: Fn(QueueStatus) + Send>(
        &self,
        service: &str,
        cancel: &CancellationToken,
        on_wait: &mut F,
        started: Instant,
        deadline: Instant,
    ) -> Result<(Turn, Option<QueueStatus>), PermitError> {
        let inner = &self.0;
        let holder = format!("{}:{}", inner.id, inner.next_holder.fetch_add(1, Ordering::Relaxed));
        let mut last: Option<QueueStatus> = None;
        let mut queued = false;
        let mut timeouts = 0;
        loop {
            // Register interest in releases by this process before asking, so
            // a release between the ask and the sleep is not missed.
            let released = inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // The same holder on every try: a retry after a lost reply finds
            // its lease (or its ticket) and never takes a second one.
            let on_timeout = if timeouts < ACQUIRE_TIMEOUT_RETRIES { OnTimeout::Retry } else { OnTimeout::MarkDown };
            match inner.try_acquire_redis(service, &holder, on_timeout).await {
                Ok((true, status, _)) => {
                    inner.held.lock().insert(holder.clone(), service.to_string());
                    return Ok((Turn::Redis { holder, inner: inner.clone() }, last.or(Some(status))));
                }
                Ok((false, status, _queue)) => {
                    queued = true;
                    if last != Some(status) {
                        last = Some(status);
                        on_wait(status);
                    }
                    if Instant::now() >= deadline {
                        inner.abandon_ticket(&holder, service);
                        return Err(PermitError::Busy {
                            message: busy_message(&status, service, started.elapsed()),
                            status,
                            waited: started.elapsed(),
                        });
                    }
                    // Waiters that free slots are reserved for poll at once;
                    // the rest of the queue polls slower the further back it
                    // is. With notifications (pub/sub on every release and
                    // every grant from the queue) a waiter counts the events
                    // since its last poll and retries as soon as it may be
                    // within reach of a slot.
                    let notified = inner.wake_up.load(Ordering::Relaxed);
                    let free = status.limit_global.saturating_sub(status.running_global);
                    let step = if notified { 10 } else { 5 };
                    let poll = if status.position <= free + 1 && status.running_service < status.limit_service {
                        Duration::from_millis(2)
                    } else {
                        Duration::from_millis((step * status.position as u64).clamp(step, 250))
                    };
                    let reach = status.limit_global.max(3) as i64;
                    let sleep = tokio::time::sleep(poll.min(deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1)));
                    tokio::pin!(sleep);
                    let mut estimate = status.position as i64;
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            _ = &mut released => {
                                estimate -= 1;
                                if estimate <= reach {
                                    break;
                                }
                                released.set(inner.released.notified());
                                released.as_mut().enable();
                            }
                            _ = cancel.cancelled() => {
                                inner.abandon_ticket(&holder, service);
                                return Err(PermitError::Cancelled);
                            }
                        }
                    }
                }
                Err(Failure::TimedOut) if timeouts < ACQUIRE_TIMEOUT_RETRIES && Instant::now() < deadline => {
                    timeouts += 1;
                    debug!(%holder, "permit acquire got no answer in time; asking again with the same holder");
                }
                Err(_) => {
                    // Redis unavailable (or not configured): this process's
                    // own order for the rest of this wait; the slots keep the cap.
                    if queued || inner.link.configured() {
                        inner.abandon_ticket(&holder, service);
                    }
                    return match inner.local_permits.acquire(service, cancel, on_wait, deadline).await {
                        Ok((g, s)) => Ok((Turn::Local(g, s), last)),
                        Err((_, true)) => Err(PermitError::Cancelled),
                        Err((status, false)) => {
                            let status = status.unwrap_or(QueueStatus {
                                running_global: inner.local_permits.limit_global,
                                limit_global: inner.local_permits.limit_global,
                                running_service: 0,
                                limit_service: inner.local_permits.limit_service,
                                position: 1,
                            });
                            Err(PermitError::Busy {
                                message: busy_message(&status, service, started.elapsed()),
                                status,
                                waited: started.elapsed(),
                            })
                        }
                    };
                }
            }
        }
    }
}

impl Inner {
    /// Drop a waiter's ticket (and any lease a lost reply granted) in the background.
    fn abandon_ticket(self: &Arc<Self>, holder: &str, service: &str) {
        if !self.link.configured() {
            return;
        }
        let inner = self.clone();
        let holder = holder.to_string();
        let service = service.to_string();
        tokio::spawn(async move {
            debug!(%holder, "giving up a permit ticket");
            inner.release_redis(&holder, &service).await;
        });
    }

    /// Extend every lease this process holds (runs every lease/3).
    pub(crate) async fn renew_leases(&self) {
        // The renewal puts back leases that are gone from Redis (a restart).
        // A release between reading `held` and the script running would be
        // undone that way: a phantom lease over the limit (the slot it freed
        // may already be granted again) that holds a slot until it expires.
        // So releases wait for a renewal in flight, and vice versa.
        let _no_release = self.lease_gate.write().await;
        let held: Vec<(String, String)> = self.held.lock().iter().map(|(h, s)| (h.clone(), s.clone())).collect();
        if held.is_empty() {
            return;
        }
        let global = self.keys.global.clone();
        let svc_prefix = self.keys.svc_prefix.clone();
        let lease = self.limits.permit_lease_ms.max(100);
        let readded = self
            .link
            .run_background(RedisOp::PermitRenew, |mut con| async move {
                let mut inv = RENEW.prepare_invoke();
                inv.key(&global).arg(&svc_prefix).arg(lease);
                for (h, s) in &held {
                    inv.arg(h).arg(s);
                }
                inv.invoke_async::<i64>(&mut con).await
            })
            .await;
        if let Some(n) = readded.filter(|n| *n > 0) {
            warn!(leases = n, "permit leases had vanished from Redis (restart or stall) and were put back");
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
