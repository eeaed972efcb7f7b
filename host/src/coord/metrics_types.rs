//! The shared metrics snapshot: what the insights tool and the Prometheus
//! exporter read (mirrors the WIT `metrics` interface).

use serde::{Deserialize, Serialize};

pub type Labels = Vec<(String, String)>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterValue {
    pub name: String,
    pub help: String,
    pub labels: Labels,
    pub value: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GaugeValue {
    pub name: String,
    pub help: String,
    pub labels: Labels,
    pub value: f64,
}

/// Fixed buckets; `bucket_counts[i]` is cumulative (`<= bucket_bounds[i]`);
/// `count` includes `+Inf`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    pub name: String,
    pub help: String,
    pub labels: Labels,
    pub bucket_bounds: Vec<f64>,
    pub bucket_counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub counters: Vec<CounterValue>,
    pub gauges: Vec<GaugeValue>,
    pub histograms: Vec<HistogramValue>,
    /// `redis` (all sessions) or `local` (this process, during an outage).
    pub source: String,
}
