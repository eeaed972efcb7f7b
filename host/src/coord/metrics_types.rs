//! The shared metrics snapshot: what the insights tool and the Prometheus
//! exporter read. The WIT `metrics` records, defined once in `logai-records`.

pub use logai_records::metrics::{CounterValue, GaugeValue, HistogramValue, Labels, MetricsSnapshot};
