//! Whose turn it is: first come, first served across sessions through
//! Redis (leases and a ticket queue, each step one Lua script), or this
//! process's own queue when Redis is not there or does not answer; and
//! the lease upkeep (release, renewal, abandoned tickets).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use tokio::sync::futures::Notified;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::super::link::{Failure, OnTimeout};
use super::super::names::RedisOp;
use super::super::{Coordinator, Inner};
use super::{busy_message, PermitError, QueueStatus, Turn};

/// Timed-out acquire calls retried (same holder: idempotent) before this
/// wait takes its turn from local state instead.
const ACQUIRE_TIMEOUT_RETRIES: u32 = 1;

static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("../lua/permit_acquire.lua")));
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("../lua/permit_release.lua")));
pub(crate) static RENEW: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("../lua/permit_renew.lua")));
pub(crate) static STATS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("../lua/permit_stats.lua")));

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
    /// Wait for this search's turn: from Redis, first come first served
    /// across sessions, or (Redis not configured, down, refusing, or not
    /// answering twice in a row) from this process's own queue. Returns the
    /// last queue status reported.
    pub(super) async fn take_turn<F: Fn(QueueStatus) + Send>(
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
                    if inner.wait_to_poll(&status, deadline, released.as_mut(), cancel).await.is_err() {
                        inner.abandon_ticket(&holder, service);
                        return Err(PermitError::Cancelled);
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
    /// A queued waiter's pause before it asks again: until its poll
    /// interval passes, enough releases come by to bring it within reach of
    /// a slot, or the wait is cancelled (`Err`).
    async fn wait_to_poll<'a>(
        &'a self,
        status: &QueueStatus,
        deadline: Instant,
        mut released: Pin<&mut Notified<'a>>,
        cancel: &CancellationToken,
    ) -> Result<(), ()> {
        // Waiters that free slots are reserved for poll at once;
        // the rest of the queue polls slower the further back it
        // is. With notifications (pub/sub on every release and
        // every grant from the queue) a waiter counts the events
        // since its last poll and retries as soon as it may be
        // within reach of a slot.
        let notified = self.wake_up.load(Ordering::Relaxed);
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
                _ = &mut sleep => return Ok(()),
                _ = &mut released => {
                    estimate -= 1;
                    if estimate <= reach {
                        return Ok(());
                    }
                    released.set(self.released.notified());
                    released.as_mut().enable();
                }
                _ = cancel.cancelled() => return Err(()),
            }
        }
    }

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
