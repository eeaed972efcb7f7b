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
        pub name: String,
        pub help: String,
        pub labels: Labels,
        pub value: f64,
    }
}

record! { $ __gauge: metrics = Gauge;
    /// One labelled gauge series.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct GaugeValue {
        pub name: String,
        pub help: String,
        pub labels: Labels,
        pub value: f64,
    }
}

record! { $ __histogram: metrics = Histogram;
    /// A fixed-bucket histogram series: `bucket_counts[i]` counts observations
    /// `<= bucket_bounds[i]` (cumulative); `count` includes `+Inf`.
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
}

record! { $ __snapshot: metrics = Snapshot;
    /// Every series at one moment.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct MetricsSnapshot {
        pub counters: Vec<CounterValue>,
        pub gauges: Vec<GaugeValue>,
        pub histograms: Vec<HistogramValue>,
        /// `redis` (all sessions) or `local` (this process, during a Redis outage).
        pub source: String,
    }
}
