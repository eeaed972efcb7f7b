//! The generated conversions against a stand-in for the bindings of WIT
//! interface `metrics` (the shape wasmtime and wit-bindgen generate): a
//! snapshot crosses and comes back unchanged, labels as `label` records.

mod wit {
    pub mod metrics {
        #[derive(Clone, Debug, PartialEq)]
        pub struct Label {
            pub name: String,
            pub value: String,
        }
        #[derive(Clone, Debug, PartialEq)]
        pub struct Counter {
            pub name: String,
            pub help: String,
            pub labels: Vec<Label>,
            pub value: f64,
        }
        #[derive(Clone, Debug, PartialEq)]
        pub struct Gauge {
            pub name: String,
            pub help: String,
            pub labels: Vec<Label>,
            pub value: f64,
        }
        #[derive(Clone, Debug, PartialEq)]
        pub struct Histogram {
            pub name: String,
            pub help: String,
            pub labels: Vec<Label>,
            pub bucket_bounds: Vec<f64>,
            pub bucket_counts: Vec<u64>,
            pub sum: f64,
            pub count: u64,
        }
        #[derive(Clone, Debug, PartialEq)]
        pub struct Snapshot {
            pub counters: Vec<Counter>,
            pub gauges: Vec<Gauge>,
            pub histograms: Vec<Histogram>,
            pub source: String,
        }
    }
}

logai_records::wit_metrics!(wit::metrics);

use logai_records::metrics::{CounterValue, HistogramValue, MetricsSnapshot};

#[test]
fn a_snapshot_crosses_and_comes_back_unchanged() {
    let snap = MetricsSnapshot {
        counters: vec![CounterValue {
            name: "searches".into(),
            help: "Searches run".into(),
            labels: vec![("service".into(), "nginx".into())],
            value: 3.0,
        }],
        gauges: vec![],
        histograms: vec![HistogramValue {
            name: "search_duration_ms".into(),
            bucket_bounds: vec![1.0, 10.0],
            bucket_counts: vec![1, 2],
            sum: 7.5,
            count: 2,
            ..Default::default()
        }],
        source: "redis".into(),
    };
    let w: wit::metrics::Snapshot = snap.clone().into();
    assert_eq!(w.counters[0].labels, vec![wit::metrics::Label { name: "service".into(), value: "nginx".into() }]);
    assert_eq!(w.histograms[0].bucket_counts, vec![1, 2]);
    assert_eq!(MetricsSnapshot::from(w), snap);
}
