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
/// apply, as for the built-in tools).
pub mod search {
    use super::host::search as raw;

    pub use crate::bindings::logai::plugin::search::{
        ContextLine, OverflowPage, OverflowRef, SearchError, SearchErrorKind, SearchMatch, SearchRequest, SearchResponse, ServiceInfo,
    };

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

    impl Default for SearchResponse {
        /// No matches, nothing searched (for test fixtures: set what matters
        /// and `..Default::default()` the rest).
        fn default() -> Self {
            SearchResponse {
                matches: Vec::new(),
                total_matches: 0,
                files_searched: 0,
                files_matched: 0,
                bytes_scanned: 0,
                truncated: false,
                partial: false,
                partial_reason: None,
                duration_ms: 0,
                overflow: None,
                cached: false,
                window_start: None,
                window_end: None,
            }
        }
    }

    impl SearchRequest {
        /// A request for `pattern` (a Rust regex) in `service`, no time
        /// window, no context, up to 100 inline matches. Set the other
        /// fields directly.
        pub fn new(service: impl Into<String>, pattern: impl Into<String>) -> Self {
            SearchRequest {
                service: service.into(),
                pattern: pattern.into(),
                fixed_strings: false,
                case_insensitive: false,
                minutes_back: None,
                hours_back: None,
                date: None,
                since: None,
                until: None,
                file_pattern: None,
                log_format: None,
                context: 0,
                max_results: 100,
            }
        }
    }
}

/// The shared metrics snapshot (all sessions' counters, gauges and
/// histograms).
pub mod metrics {
    use super::host::metrics as raw;

    pub use crate::bindings::logai::plugin::metrics::{Counter, Gauge, Histogram, Label, Snapshot};

    /// The current snapshot.
    pub fn read() -> Snapshot {
        raw::read()
    }
}
