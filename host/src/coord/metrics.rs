//! Shared metrics: recorded locally first (a call never waits on Redis),
//! flushed to Redis in batches, read back as the all-sessions snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::metrics_types::{CounterValue, GaugeValue, HistogramValue, Labels, MetricsSnapshot};
use super::names;
use super::windows::{self, Bucket};

/// The help text shown for a metric name.
pub fn help(name: &str) -> &'static str {
    match name {
        names::TOOL_CALLS_TOTAL => "Tool calls by tool and outcome.",
        names::TOOL_DURATION_MS => "Tool call duration in milliseconds.",
        names::SEARCHES_TOTAL => "Searches by service and whether the cache answered.",
        names::SEARCH_DURATION_MS => "Search duration in milliseconds.",
        names::SEARCH_RESUMED_TOTAL => "Searches answered from a tail, scanning only the appended bytes.",
        names::PERMIT_WAIT_MS => "Time spent waiting for a search permit, in milliseconds.",
        names::PERMITS_TOTAL => "Search permit requests by service and outcome.",
        names::CACHE_HITS_TOTAL => "Searches answered from the shared cache, by exact key or narrowed from a covering answer.",
        names::CACHE_MISSES_TOTAL => "Searches the shared cache could not answer.",
        names::CACHE_SKIPPED_TOTAL => "Search results too large to cache.",
        names::CACHE_EVICTED_TOTAL => "Cached results evicted to keep the shared cache within CACHE_MAX_SIZE_MB.",
        names::RATE_LIMITED_TOTAL => "Calls refused by the per-user rate limit.",
        names::PERMITS_IN_USE => "Search permits held right now.",
        names::PERMITS_LIMIT => "Search permit limits.",
        names::PERMIT_QUEUE_LENGTH => "Searches waiting for a permit.",
        names::REDIS_OP_DURATION_MS => "Redis operation round trips in milliseconds.",
        names::ERRORS_TOTAL => "Errors by kind.",
        names::TELEMETRY_DROPPED_TOTAL => "Telemetry events dropped because the export queue was full.",
        names::CACHE_OP_DURATION_MS => "Cache lookups and stores in milliseconds.",
        names::REDIS_UP => "1 when sessions coordinate through Redis, 0 when on local state.",
        _ => "",
    }
}

/// Upper bounds (ms) of the fixed histogram buckets; `+Inf` is implied.
pub const BUCKET_BOUNDS_MS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0];

type SeriesKey = (String, Labels);

#[derive(Clone, Debug)]
struct Hist {
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
}

impl Hist {
    fn new() -> Self {
        Hist { buckets: vec![0; BUCKET_BOUNDS_MS.len() + 1], sum: 0.0 }
    }
}

fn bucket_index(v: f64) -> usize {
    BUCKET_BOUNDS_MS.iter().position(|b| v <= *b).unwrap_or(BUCKET_BOUNDS_MS.len())
}

#[derive(Default)]
struct State {
    /// This process's totals since start (the snapshot during an outage).
    counters: HashMap<SeriesKey, f64>,
    hists: HashMap<SeriesKey, Hist>,
    gauges: HashMap<SeriesKey, f64>,
    /// Deltas not yet added to Redis (field -> delta).
    pending: HashMap<String, f64>,
    /// Gauges changed since the last flush (field -> value).
    pending_gauges: HashMap<String, f64>,
    /// This process's time buckets of the windowed metrics.
    ring: windows::Ring,
}

impl State {
    /// Add a delta to the pending field and, for a windowed metric, to its
    /// time buckets (pending too).
    fn add(&mut self, name: &str, field: String, v: f64, t: u64) {
        if windows::windowed(name) {
            for bucket_field in self.ring.add(t, &field, v) {
                *self.pending.entry(bucket_field).or_insert(0.0) += v;
            }
        }
        *self.pending.entry(field).or_insert(0.0) += v;
    }
}

/// Counters, histograms and gauges. Cheap to clone; recording takes a short
/// in-process lock and never touches the network.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<State>>);

fn own_labels(labels: &[(&str, &str)]) -> Labels {
    let mut l: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.sort();
    l
}

fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "[]".into())
}

/// Redis hash field of a counter.
fn counter_field(name: &str, labels: &Labels) -> String {
    format!("c\t{name}\t{}", labels_json(labels))
}
fn hist_field(name: &str, labels: &Labels, slot: &str) -> String {
    format!("h\t{name}\t{}\t{slot}", labels_json(labels))
}
fn gauge_field(name: &str, labels: &Labels) -> String {
    format!("g\t{name}\t{}", labels_json(labels))
}

/// One batch ready for Redis.
pub(crate) struct Batch {
    pub deltas: Vec<(String, f64)>,
    pub gauges: Vec<(String, f64)>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.gauges.is_empty()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Add `v` to a counter.
    pub fn incr(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.incr_at(name, labels, v, windows::now_secs());
    }

    /// Add `v` to a counter, at time `t` (seconds since the epoch).
    pub(crate) fn incr_at(&self, name: &str, labels: &[(&str, &str)], v: f64, t: u64) {
        if !v.is_finite() {
            return;
        }
        let labels = own_labels(labels);
        let field = counter_field(name, &labels);
        let mut s = self.0.lock();
        *s.counters.entry((name.to_string(), labels)).or_insert(0.0) += v;
        s.add(name, field, v, t);
    }

    /// Record one observation (milliseconds) in a fixed-bucket histogram.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], value_ms: f64) {
        self.observe_at(name, labels, value_ms, windows::now_secs());
    }

    /// Record one observation at time `t` (seconds since the epoch).
    pub(crate) fn observe_at(&self, name: &str, labels: &[(&str, &str)], value_ms: f64, t: u64) {
        if !value_ms.is_finite() {
            return;
        }
        let labels = own_labels(labels);
        let i = bucket_index(value_ms);
        let bucket_field = hist_field(name, &labels, &i.to_string());
        let sum_field = hist_field(name, &labels, "sum");
        let mut s = self.0.lock();
        let h = s.hists.entry((name.to_string(), labels)).or_insert_with(Hist::new);
        h.buckets[i] += 1;
        h.sum += value_ms;
        s.add(name, bucket_field, 1.0, t);
        s.add(name, sum_field, value_ms, t);
    }

    /// Set a gauge (last writer wins across sessions).
    pub fn gauge_set(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        if !v.is_finite() {
            return;
        }
        let labels = own_labels(labels);
        let field = gauge_field(name, &labels);
        let mut s = self.0.lock();
        s.gauges.insert((name.to_string(), labels), v);
        s.pending_gauges.insert(field, v);
    }

    /// This process's value of a counter (tests, diagnostics).
    pub fn local_counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = (name.to_string(), own_labels(labels));
        self.0.lock().counters.get(&key).copied().unwrap_or(0.0)
    }

    /// Take everything not yet flushed.
    pub(crate) fn take_batch(&self) -> Batch {
        let mut s = self.0.lock();
        let deltas = s.pending.drain().filter(|(_, v)| *v != 0.0).collect();
        let gauges = s.pending_gauges.drain().collect();
        Batch { deltas, gauges }
    }

    #[cfg(test)]
    /// Put back a batch that could not be delivered (merged with newer deltas).
    pub(crate) fn restore_batch(&self, batch: Batch) {
        let mut s = self.0.lock();
        for (f, v) in batch.deltas {
            *s.pending.entry(f).or_insert(0.0) += v;
        }
        for (f, v) in batch.gauges {
            s.pending_gauges.entry(f).or_insert(v);
        }
    }

    /// Everything this process recorded since start, as one batch (sent
    /// when Redis lost its data, so live sessions' counts are not lost).
    /// Clears pending deltas: the totals include them.
    pub(crate) fn full_batch(&self) -> Batch {
        let mut s = self.0.lock();
        s.pending.clear();
        s.pending_gauges.clear();
        let mut deltas = Vec::new();
        for ((name, labels), v) in &s.counters {
            deltas.push((counter_field(name, labels), *v));
        }
        for ((name, labels), h) in &s.hists {
            for (i, c) in h.buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
                deltas.push((hist_field(name, labels, &i.to_string()), *c as f64));
            }
            deltas.push((hist_field(name, labels, "sum"), h.sum));
        }
        deltas.extend(s.ring.all_fields(windows::now_secs()));
        let gauges = s.gauges.iter().map(|((name, labels), v)| (gauge_field(name, labels), *v)).collect();
        Batch { deltas, gauges }
    }

    /// This process's unflushed deltas of `buckets`, by inner field.
    pub(crate) fn pending_window(&self, buckets: &[Bucket]) -> HashMap<String, f64> {
        let mut out = HashMap::new();
        let s = self.0.lock();
        windows::add_pending(&mut out, s.pending.iter().map(|(k, v)| (k.clone(), *v)), buckets);
        out
    }

    /// What this process recorded in the last `minutes` minutes at time
    /// `now` ([`windows::plan`]): windowed counters and histograms only,
    /// `source = "local"`.
    pub(crate) fn local_window(&self, minutes: u32, now: u64) -> MetricsSnapshot {
        let fields = self.0.lock().ring.sum(&windows::plan(minutes, now));
        let mut snap = snapshot_from_fields(fields, []);
        snap.source = "local".into();
        snap
    }

    /// Deltas not yet in Redis (added to a Redis snapshot so this session's
    /// latest calls show up immediately).
    pub(crate) fn pending_fields(&self) -> Vec<(String, f64)> {
        self.0.lock().pending.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// This process's own totals, as a snapshot with `source = "local"`.
    pub(crate) fn local_snapshot(&self) -> MetricsSnapshot {
        let s = self.0.lock();
        let mut snap = MetricsSnapshot { source: "local".into(), ..Default::default() };
        for ((name, labels), v) in &s.counters {
            snap.counters.push(CounterValue { name: name.clone(), help: help(name).into(), labels: labels.clone(), value: *v });
        }
        for ((name, labels), h) in &s.hists {
            snap.histograms.push(hist_value(name, labels, &h.buckets, h.sum));
        }
        for ((name, labels), v) in &s.gauges {
            snap.gauges.push(GaugeValue { name: name.clone(), help: help(name).into(), labels: labels.clone(), value: *v });
        }
        sort_snapshot(&mut snap);
        snap
    }
}

fn hist_value(name: &str, labels: &Labels, per_bucket: &[u64], sum: f64) -> HistogramValue {
    let mut cumulative = Vec::with_capacity(BUCKET_BOUNDS_MS.len());
    let mut acc = 0u64;
    for c in per_bucket.iter().take(BUCKET_BOUNDS_MS.len()) {
        acc += c;
        cumulative.push(acc);
    }
    let count = per_bucket.iter().sum();
    HistogramValue {
        name: name.to_string(),
        help: help(name).into(),
        labels: labels.clone(),
        bucket_bounds: BUCKET_BOUNDS_MS.to_vec(),
        bucket_counts: cumulative,
        sum,
        count,
    }
}

pub(crate) fn sort_snapshot(snap: &mut MetricsSnapshot) {
    snap.counters.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    snap.gauges.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    snap.histograms.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
}

/// Build a snapshot from the Redis hashes' contents (plus unflushed local deltas).
pub(crate) fn snapshot_from_fields(
    totals: impl IntoIterator<Item = (String, f64)>,
    gauges: impl IntoIterator<Item = (String, f64)>,
) -> MetricsSnapshot {
    let mut counters: HashMap<SeriesKey, f64> = HashMap::new();
    let mut hists: HashMap<SeriesKey, Hist> = HashMap::new();
    for (field, v) in totals {
        let parts: Vec<&str> = field.split('\t').collect();
        match parts.as_slice() {
            ["c", name, labels] => {
                let Ok(labels) = serde_json::from_str::<Labels>(labels) else { continue };
                *counters.entry((name.to_string(), labels)).or_insert(0.0) += v;
            }
            ["h", name, labels, slot] => {
                let Ok(labels) = serde_json::from_str::<Labels>(labels) else { continue };
                let h = hists.entry((name.to_string(), labels)).or_insert_with(Hist::new);
                if *slot == "sum" {
                    h.sum += v;
                } else if let Ok(i) = slot.parse::<usize>() {
                    if i < h.buckets.len() {
                        h.buckets[i] += v.round().max(0.0) as u64;
                    }
                }
            }
            _ => {}
        }
    }
    let mut snap = MetricsSnapshot { source: "redis".into(), ..Default::default() };
    for ((name, labels), v) in counters {
        snap.counters.push(CounterValue { help: help(&name).into(), name, labels, value: v });
    }
    for ((name, labels), h) in hists {
        snap.histograms.push(hist_value(&name, &labels, &h.buckets, h.sum));
    }
    for (field, v) in gauges {
        let parts: Vec<&str> = field.split('\t').collect();
        if let ["g", name, labels] = parts.as_slice() {
            let Ok(labels) = serde_json::from_str::<Labels>(labels) else { continue };
            snap.gauges.push(GaugeValue { name: name.to_string(), help: help(name).into(), labels, value: v });
        }
    }
    sort_snapshot(&mut snap);
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_inf() {
        let m = Metrics::new();
        m.observe("x", &[("service", "a")], 0.3);
        m.observe("x", &[("service", "a")], 7.0);
        m.observe("x", &[("service", "a")], 1e9);
        let snap = m.local_snapshot();
        let h = &snap.histograms[0];
        assert_eq!(h.count, 3);
        assert_eq!(h.bucket_counts[1], 0); // <= 0.25
        assert_eq!(h.bucket_counts[2], 1); // <= 0.5
        assert_eq!(h.bucket_counts[6], 2); // <= 10
        assert_eq!(*h.bucket_counts.last().unwrap(), 2); // <= 60000; 1e9 only in count
        assert!((h.sum - (1e9 + 7.3)).abs() < 1e-3);
    }

    #[test]
    fn batch_round_trips_through_fields() {
        let m = Metrics::new();
        m.incr("c1", &[("b", "2"), ("a", "1")], 2.0);
        m.incr("c1", &[("a", "1"), ("b", "2")], 3.0);
        m.observe("h1", &[], 42.0);
        m.gauge_set("g1", &[("scope", "global")], 7.0);
        let batch = m.take_batch();
        let snap = snapshot_from_fields(batch.deltas.clone(), batch.gauges.clone());
        assert_eq!(snap.counters.len(), 1);
        assert_eq!(snap.counters[0].value, 5.0);
        assert_eq!(snap.counters[0].labels, vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
        assert_eq!(snap.histograms[0].count, 1);
        assert_eq!(snap.gauges[0].value, 7.0);
        // Undelivered batches come back without loss.
        m.restore_batch(batch);
        m.incr("c1", &[("a", "1"), ("b", "2")], 1.0);
        let again = m.take_batch();
        let snap = snapshot_from_fields(again.deltas, again.gauges);
        assert_eq!(snap.counters[0].value, 6.0);
    }
}
