//! Dropped events told to the exporters themselves: before each batch an
//! exporter receives, one metric event `telemetry.dropped` per (reason,
//! kind of event) for the drops it has not been told of yet (the queue's,
//! and its own lane's), so each exporter counts them in its own terms
//! (Sentry: a client report; Datadog: the DogStatsD counter
//! `log_ai.telemetry.dropped`). An export that fails keeps them for the next.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{metric_event, Event, EventKind, MetricKind, Telemetry};
use crate::coord::names::{label, DropReason};

/// Name of the metric event that reports drops to an exporter.
pub const DROPPED_EVENT: &str = "telemetry.dropped";
/// Tag of [`DROPPED_EVENT`]: the kind of event dropped (`span`, `error`, `metric`).
pub const KIND_TAG: &str = label::KIND;

const KINDS: [EventKind; 3] = [EventKind::Span, EventKind::Error, EventKind::Metric];

fn kind_index(k: EventKind) -> usize {
    match k {
        EventKind::Span => 0,
        EventKind::Error => 1,
        EventKind::Metric => 2,
    }
}

pub fn kind_str(k: EventKind) -> &'static str {
    match k {
        EventKind::Span => "span",
        EventKind::Error => "error",
        EventKind::Metric => "metric",
    }
}

/// Events dropped because the queue was full, by kind (every exporter missed them).
#[derive(Default)]
pub(super) struct QueueFull([AtomicU64; 3]);

impl QueueFull {
    pub(super) fn add(&self, kind: EventKind) {
        self.0[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }
    fn now(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// One exporter's drops not yet reported to it.
#[derive(Default)]
pub(super) struct Unreported(Mutex<Vec<(DropReason, EventKind, u64)>>);

impl Unreported {
    /// Count the events of `batch` as dropped for `reason`.
    pub(super) fn add_batch(&self, reason: DropReason, batch: &[Event]) {
        let mut by_kind = [0u64; 3];
        for e in batch {
            by_kind[kind_index(e.kind)] += 1;
        }
        let mut v = self.0.lock();
        for (i, n) in by_kind.into_iter().enumerate() {
            if n > 0 {
                v.push((reason, KINDS[i], n));
            }
        }
    }
}

/// What one lane's worker has told its exporter of the queue's drops.
#[derive(Default)]
pub(super) struct Reporter {
    queue_full_told: [u64; 3],
}

/// A report taken for one export: the events to prepend, and what to put
/// back when the export fails.
pub(super) struct Report {
    pub events: Vec<Event>,
    taken: Vec<(DropReason, EventKind, u64)>,
    queue_full_now: [u64; 3],
}

impl Reporter {
    pub(super) fn take(&self, queue_full: &QueueFull, lane: &Unreported) -> Report {
        let now = queue_full.now();
        let mut counts: Vec<(DropReason, EventKind, u64)> = Vec::new();
        for ((kind, now), told) in KINDS.iter().zip(now).zip(self.queue_full_told) {
            let n = now.saturating_sub(told);
            if n > 0 {
                counts.push((DropReason::QueueFull, *kind, n));
            }
        }
        let taken = std::mem::take(&mut *lane.0.lock());
        for &(reason, kind, n) in &taken {
            match counts.iter_mut().find(|(r, k, _)| *r == reason && *k == kind) {
                Some(slot) => slot.2 += n,
                None => counts.push((reason, kind, n)),
            }
        }
        let events = counts.into_iter().map(|(reason, kind, n)| dropped_event(reason, kind, n)).collect();
        Report { events, taken, queue_full_now: now }
    }

    /// The export carried the report: it is told.
    pub(super) fn delivered(&mut self, r: Report) {
        self.queue_full_told = r.queue_full_now;
    }

    /// The export failed: report it again with the next batch.
    pub(super) fn failed(&self, r: Report, lane: &Unreported) {
        lane.0.lock().extend(r.taken);
    }
}

fn dropped_event(reason: DropReason, kind: EventKind, n: u64) -> Event {
    let tags = vec![(label::REASON.to_string(), reason.as_str().to_string()), (KIND_TAG.to_string(), kind_str(kind).to_string())];
    metric_event(DROPPED_EVENT, MetricKind::Counter, n as f64, tags)
}

impl Telemetry {
    /// The shutdown deadline passed: the events still queued are lost to
    /// every exporter, counted as `not_loaded` while the exporters were
    /// still loading (a component compiling for the first time), else as
    /// `exporter_busy` (the lanes were still exporting earlier batches).
    pub(super) fn give_up(&self, waited: std::time::Duration) {
        let left = self.0.tx.as_ref().map_or(0, |tx| tx.max_capacity() - tx.capacity()) as u64;
        let loading = !self.0.loaded.load(Ordering::Relaxed);
        let reason = if loading { DropReason::NotLoaded } else { DropReason::ExporterBusy };
        for (name, counters) in &self.0.lanes {
            counters.dropped.fetch_add(left, Ordering::Relaxed);
            self.0.drops.add(reason, name, left);
        }
        let hint = match loading {
            true => "exporters still loading: `logai precompile` at deploy time compiles them ahead, or raise telemetry.flush_timeout_ms",
            false => "exporters still busy: raise telemetry.flush_timeout_ms",
        };
        let timeout_ms = waited.as_millis() as u64;
        tracing::warn!(
            timeout_ms,
            events = left,
            reason = reason.as_str(),
            "telemetry flush did not finish in time; remaining events dropped ({hint})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind) -> Event {
        let mut e = dropped_event(DropReason::QueueFull, EventKind::Span, 1);
        e.kind = kind;
        e
    }

    #[test]
    fn reports_each_drop_once_and_again_after_a_failed_export() {
        let (qf, lane) = (QueueFull::default(), Unreported::default());
        let mut rep = Reporter::default();
        assert!(rep.take(&qf, &lane).events.is_empty());
        qf.add(EventKind::Span);
        qf.add(EventKind::Span);
        qf.add(EventKind::Error);
        lane.add_batch(DropReason::ExporterBusy, &[ev(EventKind::Span), ev(EventKind::Error), ev(EventKind::Error)]);
        let r = rep.take(&qf, &lane);
        let seen: Vec<(String, String, f64)> = r
            .events
            .iter()
            .map(|e| {
                let m = e.metric.as_ref().unwrap();
                (m.tags[0].1.clone(), m.tags[1].1.clone(), m.value)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("queue_full".into(), "span".into(), 2.0),
                ("queue_full".into(), "error".into(), 1.0),
                ("exporter_busy".into(), "span".into(), 1.0),
                ("exporter_busy".into(), "error".into(), 2.0),
            ]
        );
        // The export failed: the same counts come again.
        rep.failed(r, &lane);
        let r = rep.take(&qf, &lane);
        assert_eq!(r.events.len(), 4);
        rep.delivered(r);
        assert!(rep.take(&qf, &lane).events.is_empty(), "told once");
    }
}
