//! This process's metrics into Redis, exactly once: batches numbered per
//! process and retried with the same number until acknowledged; what Redis
//! would not take before the session ended goes to the spool (see `spool`)
//! and is delivered by a later flush of any session.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::names::RedisOp;
use super::spool::{Spool, Spooled};
use super::Inner;

static FLUSH: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua/metrics_flush.lua")));

/// What Redis answered to one batch.
enum Applied {
    /// Added now or before (a retry): the epoch it is in.
    Yes(String),
    /// Redis lost its data since the sender's last flush: this epoch is new.
    NewEpoch(String),
}

/// Longest `shutdown` waits for Redis before spooling the rest instead.
const EXIT_WAIT_WITH_SPOOL: Duration = Duration::from_millis(1000);

impl Inner {
    /// Add buffered metrics to Redis, on the background connection: a slow
    /// Redis delays it and its failures never switch the call path. `true`
    /// when nothing is left pending (or there is no Redis to flush to).
    pub(super) async fn flush_metrics(&self) -> bool {
        if !self.link.configured() {
            return true;
        }
        let mut slot = self.flush.lock().await;
        for _attempt in 0..2 {
            if slot.is_none() {
                let batch = self.metrics.take_batch();
                if batch.is_empty() {
                    return true;
                }
                let n = self.flush_seq.fetch_add(1, Ordering::SeqCst) + 1;
                *slot = Some((n, batch));
            }
            let (n, batch) = slot.as_ref().expect("set above");
            let known = self.epoch.lock().clone();
            match self.send_batch(&self.id, *n, &known, &batch.deltas, &batch.gauges).await {
                None => return false,
                Some(Applied::NewEpoch(epoch)) => {
                    // Redis restarted empty: resend everything this process
                    // has recorded, into the new epoch.
                    tracing::info!("Redis lost the shared metrics (restart); re-adding this session's totals");
                    *self.epoch.lock() = epoch;
                    let n = self.flush_seq.fetch_add(1, Ordering::SeqCst) + 1;
                    *slot = Some((n, self.metrics.full_batch()));
                }
                Some(Applied::Yes(epoch)) => {
                    *self.epoch.lock() = epoch;
                    *slot = None;
                    return true;
                }
            }
        }
        false
    }

    /// One batch through the exactly-once script; `None` when Redis did not
    /// answer or refused (it is retried later with the same number).
    async fn send_batch(&self, process: &str, n: u64, known: &str, deltas: &[(String, f64)], gauges: &[(String, f64)]) -> Option<Applied> {
        let keys = self.keys.clone();
        let fresh = format!("{}-{:016x}", self.id, rand::random::<u64>());
        let reply = self
            .link
            .run_background(RedisOp::MetricsFlush, |mut con| async move {
                let mut inv = FLUSH.prepare_invoke();
                inv.key(&keys.metrics)
                    .key(&keys.gauges)
                    .key(&keys.metrics_batches)
                    .key(&keys.metrics_epoch)
                    .key(&keys.metrics_seen)
                    .key(&keys.metrics_window);
                inv.arg(n).arg(known).arg(&fresh).arg(deltas.len()).arg(process);
                for (f, v) in deltas {
                    inv.arg(f).arg(*v);
                }
                for (f, v) in gauges {
                    inv.arg(f).arg(*v);
                }
                inv.invoke_async::<(i64, String)>(&mut con).await
            })
            .await?;
        Some(match reply {
            (2, epoch) => Applied::NewEpoch(epoch),
            (_, epoch) => Applied::Yes(epoch),
        })
    }

    /// Deliver what ended sessions left in the spool. Cheap when it is
    /// empty (one directory read); one delivery at a time per process, and
    /// a caller arriving during one waits for it.
    pub(super) async fn deliver_spool(&self) {
        let Some(spool) = &self.spool else { return };
        if !self.link.configured() || !spool.has_files() {
            return;
        }
        // Waited for, not skipped: a snapshot taken meanwhile must see what
        // the delivery under way adds.
        let _one = self.draining.lock().await;
        let mut delivered = 0usize;
        for claimed in spool.claim() {
            if self.deliver(&claimed.entry).await {
                delivered += 1;
                spool.done(claimed);
            }
            // Undelivered: unlocked when dropped, for the next try.
        }
        if delivered > 0 {
            tracing::info!(sessions = delivered, dir = %spool.dir().display(), "added ended sessions' spooled metrics to Redis");
        }
    }

    /// One spooled session's batches, in order, under its own process id.
    async fn deliver(&self, entry: &Spooled) -> bool {
        let mut known = entry.epoch.clone();
        for (n, deltas) in &entry.batches {
            match self.send_batch(&entry.process, *n, &known, deltas, &[]).await {
                None => return false,
                Some(Applied::Yes(epoch)) => known = epoch,
                Some(Applied::NewEpoch(epoch)) => {
                    // Its earlier batches went with Redis's data: all its totals.
                    return matches!(
                        self.send_batch(&entry.process, entry.next_batch(), &epoch, &entry.totals, &[]).await,
                        Some(Applied::Yes(_))
                    );
                }
            }
        }
        true
    }

    /// At exit: flush until nothing is pending, waiting a little (bounded)
    /// for a Redis that is briefly away; then spool what is left, so the
    /// next session that reaches Redis adds it.
    pub(super) async fn flush_at_exit(&self) {
        let wait = if self.spool.is_some() { EXIT_WAIT_WITH_SPOOL } else { super::SHUTDOWN_FLUSH_WAIT };
        let until = Instant::now() + wait;
        loop {
            // An in-flight batch first, then what came after it.
            if self.flush_metrics().await && self.flush_metrics().await {
                self.deliver_spool().await;
                return;
            }
            if Instant::now() >= until || !self.link.configured() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match &self.spool {
            Some(spool) => self.spool_rest(spool).await,
            None => tracing::warn!("Redis unavailable at shutdown: this session's last metrics were not shared"),
        }
    }

    async fn spool_rest(&self, spool: &Spool) {
        let mut batches = Vec::new();
        if let Some((n, batch)) = self.flush.lock().await.take() {
            batches.push((n, batch.deltas));
        }
        let rest = self.metrics.take_batch();
        if !rest.deltas.is_empty() {
            batches.push((self.flush_seq.fetch_add(1, Ordering::SeqCst) + 1, rest.deltas));
        }
        if batches.is_empty() {
            return;
        }
        let entry =
            Spooled { process: self.id.clone(), epoch: self.epoch.lock().clone(), batches, totals: self.metrics.full_batch().deltas };
        match spool.put(&entry) {
            Ok(path) => {
                tracing::warn!(file = %path.display(), "Redis did not take this session's last metrics; spooled for the next session to add")
            }
            Err(e) => {
                tracing::warn!(dir = %spool.dir().display(), error = %e, "Redis did not take this session's last metrics and the spool is unusable: they are lost")
            }
        }
    }
}
