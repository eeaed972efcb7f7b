//! WIT interface `metrics`: the shared (cross-session) metrics snapshot, for
//! insight tools and the Prometheus exporter. The host also stores label
//! sets as JSON of [`Labels`].

use serde::{Deserialize, Serialize};

use crate::record;

/// A series' labels, `(name, value)` (WIT `list<label>`).
pub type Labels = Vec<(String, String)>;

record! { $ __counter: metrics = Counter;
    /// One labelled counter series.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct CounterValue {
        /// Metric name (`coord::names`).
        pub name: String,
        /// One-line description (Prometheus `# HELP`).
        pub help: String,
        /// The series' labels.
        pub labels: Labels,
        /// Running total.
        pub value: f64,
    }
}

record! { $ __gauge: metrics = Gauge;
    /// One labelled gauge series.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct GaugeValue {
        /// Metric name (`coord::names`).
        pub name: String,
        /// One-line description (Prometheus `# HELP`).
        pub help: String,
        /// The series' labels.
        pub labels: Labels,
        /// Current value.
        pub value: f64,
    }
}

record! { $ __histogram: metrics = Histogram;
    /// A fixed-bucket histogram series: `bucket_counts[i]` counts observations
    /// `<= bucket_bounds[i]` (cumulative); `count` includes `+Inf`.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct HistogramValue {
        /// Metric name (`coord::names`).
        pub name: String,
        /// One-line description (Prometheus `# HELP`).
        pub help: String,
        /// The series' labels.
        pub labels: Labels,
        /// Upper bounds of the finite buckets, ascending.
        pub bucket_bounds: Vec<f64>,
        /// Cumulative count per bound, same length as `bucket_bounds`.
        pub bucket_counts: Vec<u64>,
        /// Sum of all observations.
        pub sum: f64,
        /// Number of observations (the `+Inf` bucket).
        pub count: u64,
    }
}

record! { $ __snapshot: metrics = Snapshot;
    /// Every series at one moment.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct MetricsSnapshot {
        /// Counter series.
        pub counters: Vec<CounterValue>,
        /// Gauge series.
        pub gauges: Vec<GaugeValue>,
        /// Histogram series.
        pub histograms: Vec<HistogramValue>,
        /// `redis` (all sessions) or `local` (this process, during a Redis outage).
        pub source: String,
    }
}
