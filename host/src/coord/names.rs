//! Every metric name and fixed label value, defined once in
//! `logai-records` (`logai_records::names`) so the host's emitters and the
//! tools that read the metrics (`get_insights`) share one definition.

pub use logai_records::names::*;
