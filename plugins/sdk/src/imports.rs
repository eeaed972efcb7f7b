//! Safe wrappers of the host imports. Inside a component they call the
//! host; compiled natively (unit tests) they call the test doubles in
//! [`testing`](crate::testing), so a tool's code runs unchanged in both.

/// The host, or natively its test double.
#[cfg(target_arch = "wasm32")]
use crate::bindings::logai::plugin as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::double as host;

/// Logging into the host's log (stderr or its log file, via `tracing`),
/// attributed to your plugin. Use this rather than `println!`: a plugin's
/// stdout is discarded and its stderr is only kept for panic messages.
pub mod log {
    pub use crate::bindings::logai::plugin::log::Level;

    /// Write one record at `level`.
    pub fn write(level: Level, message: impl AsRef<str>) {
        super::host::log::write(level, message.as_ref())
    }
    /// Write at `trace`.
    pub fn trace(message: impl AsRef<str>) {
        write(Level::Trace, message)
    }
    /// Write at `debug`.
    pub fn debug(message: impl AsRef<str>) {
        write(Level::Debug, message)
    }
    /// Write at `info`.
    pub fn info(message: impl AsRef<str>) {
        write(Level::Info, message)
    }
    /// Write at `warn`.
    pub fn warn(message: impl AsRef<str>) {
        write(Level::Warn, message)
    }
    /// Write at `error`.
    pub fn error(message: impl AsRef<str>) {
        write(Level::Error, message)
    }
}

/// Progress of the current call, forwarded to the client as
/// `notifications/progress` when it asked for progress.
pub mod progress {
    /// Report `progress` (increasing from one report to the next) out of an
    /// optional `total`, with an optional short status message.
    pub fn report(progress: f64, total: Option<f64>, message: Option<&str>) {
        super::host::progress::report(progress, total, message)
    }
}

/// True once the client cancelled this call (or the host is shutting
/// down). Long loops should poll it and stop early.
pub fn cancelled() -> bool {
    host::cancelled::is_cancelled()
}

/// The host's native log search (rate limits, shared cache and permits
/// apply, as for the built-in tools). The records are `logai-records`'
/// (the host uses the same types).
pub mod search {
    pub use logai_records::search::{
        ContextLine, FollowResponse, OverflowPage, OverflowRef, SearchError, SearchErrorKind, SearchMatch, SearchRequest, SearchResponse,
        ServiceInfo,
    };

    /// The host import, over the bindings' conversions to the records.
    #[cfg(target_arch = "wasm32")]
    mod raw {
        use super::*;
        use crate::bindings::logai::plugin::search as wit;

        pub fn search(request: &SearchRequest) -> Result<SearchResponse, SearchError> {
            wit::search(&request.clone().into()).map(Into::into).map_err(Into::into)
        }
        pub fn list_services() -> Result<Vec<ServiceInfo>, SearchError> {
            wit::list_services().map(|v| v.into_iter().map(Into::into).collect()).map_err(Into::into)
        }
        pub fn read_overflow(reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
            wit::read_overflow(reference, offset, limit).map(Into::into).map_err(Into::into)
        }
        pub fn follow(request: &SearchRequest, cursor: Option<&str>, wait_ms: u32) -> Result<FollowResponse, SearchError> {
            wit::follow(&request.clone().into(), cursor, wait_ms).map(Into::into).map_err(Into::into)
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    use super::host::search as raw;

    /// Run a search.
    pub fn search(request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        raw::search(request)
    }

    /// The configured services.
    pub fn list_services() -> Result<Vec<ServiceInfo>, SearchError> {
        raw::list_services()
    }

    /// A page of a search's overflow, by the reference the search returned.
    pub fn read_overflow(reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        raw::read_overflow(reference, offset, limit)
    }

    /// A search that also returns a cursor; given an earlier answer's
    /// cursor, only the lines appended since (following rotation), waiting
    /// up to `wait_ms` for new matches.
    pub fn follow(request: &SearchRequest, cursor: Option<&str>, wait_ms: u32) -> Result<FollowResponse, SearchError> {
        raw::follow(request, cursor, wait_ms)
    }
}

/// Aggregates over a service's lines: counts over time, levels, patterns,
/// facets, groups (the host's native core, cached and shared like searches).
pub mod aggregate {
    pub use logai_records::aggregate::{
        AggregateRequest, AggregateResponse, Facet, GroupSeries, LevelCount, PatternStat, TimeBucket, ValueCount,
    };
    use logai_records::search::SearchError;

    /// The host import, over the bindings' conversions to the records.
    #[cfg(target_arch = "wasm32")]
    mod raw {
        use super::*;
        use crate::bindings::logai::plugin::aggregate as wit;

        pub fn summarize(request: &AggregateRequest) -> Result<AggregateResponse, SearchError> {
            wit::summarize(&request.clone().into()).map(Into::into).map_err(Into::into)
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    use super::host::aggregate as raw;

    /// Aggregate the lines of a window (see [`AggregateRequest`]).
    pub fn summarize(request: &AggregateRequest) -> Result<AggregateResponse, SearchError> {
        raw::summarize(request)
    }
}

/// The shared metrics snapshot (all sessions' counters, gauges and
/// histograms). Labels are `(name, value)` pairs.
pub mod metrics {
    pub use logai_records::metrics::{
        CounterValue as Counter, GaugeValue as Gauge, HistogramValue as Histogram, Labels, MetricsSnapshot as Snapshot,
    };
    /// The names of the metrics and of their fixed label values, as the host
    /// records them (one definition, shared with the host).
    pub use logai_records::names;

    /// The host import, over the bindings' conversion to the records.
    #[cfg(target_arch = "wasm32")]
    mod raw {
        use super::Snapshot;
        use crate::bindings::logai::plugin::metrics as wit;

        pub fn read() -> Snapshot {
            wit::read().into()
        }
        pub fn read_window(minutes: u32) -> Snapshot {
            wit::read_window(minutes).into()
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    use super::host::metrics as raw;

    /// The current snapshot: running totals and current gauges, only of
    /// the services the caller may search (and the series without one).
    pub fn read() -> Snapshot {
        raw::read()
    }

    /// What happened in the last `minutes` minutes (1 to 1440): the
    /// windowed counters and histograms, summed over time buckets (1-minute
    /// up to 2 h, 5-minute beyond); no gauges. Restricted like [`read`].
    pub fn read_window(minutes: u32) -> Snapshot {
        raw::read_window(minutes)
    }
}
