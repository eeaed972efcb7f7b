//! Every metric name and every fixed label value the host records, defined
//! once. Emitters take these (never a literal), the Prometheus exporter
//! renders them (`*_ms` exposed as `*_seconds`), and
//! `docs/coordination.md`, the Grafana dashboard and the alert rules in
//! `config/monitoring/` name them: `tests/monitoring.rs` fails when any of
//! those names a metric or a label value a real run does not expose.
//!
//! Label values that come from the deployment (service, tool, exporter
//! names) stay strings; the ones logai chooses are the enums below, each
//! with its wire form (`as_str`) and the list of all of them (`ALL`).

/// Counter `{tool, outcome}`: tools/call results ([`ToolOutcome`]).
pub const TOOL_CALLS_TOTAL: &str = "logai_tool_calls_total";
/// Histogram `{tool}`: tools/call duration.
pub const TOOL_DURATION_MS: &str = "logai_tool_duration_ms";
/// Counter `{service, cached}`: searches answered (`cached` = [`Cached`]).
pub const SEARCHES_TOTAL: &str = "logai_searches_total";
/// Histogram `{service}`: duration of a search that was answered (permit
/// wait included: it is part of what the caller waits for).
pub const SEARCH_DURATION_MS: &str = "logai_search_duration_ms";
/// Counter `{service}`: searches answered from a tail, scanning only appended bytes.
pub const SEARCH_RESUMED_TOTAL: &str = "logai_search_resumed_total";
/// Histogram `{service}`: time spent waiting for a permit.
pub const PERMIT_WAIT_MS: &str = "logai_permit_wait_ms";
/// Counter `{service, outcome}`: permit requests ([`PermitOutcome`]).
pub const PERMITS_TOTAL: &str = "logai_permits_total";
/// Counter `{via}` ([`CacheVia`]): searches answered from the cache, by the
/// exact key or cut from a covering answer to the same question.
pub const CACHE_HITS_TOTAL: &str = "logai_cache_hits_total";
/// Counter: searches the cache could not answer (they ran).
pub const CACHE_MISSES_TOTAL: &str = "logai_cache_misses_total";
/// Counter: results not cached because they exceed `cache.max_entry_kb`
/// (or `cache.max_size_mb`).
pub const CACHE_SKIPPED_TOTAL: &str = "logai_cache_skipped_total";
/// Counter: cached results evicted from Redis to keep the cache within
/// `cache.max_size_mb` (logai's own accounting, oldest first).
pub const CACHE_EVICTED_TOTAL: &str = "logai_cache_evicted_total";
/// Counter (no user label: users are unbounded): calls refused by the per-user rate limit.
pub const RATE_LIMITED_TOTAL: &str = "logai_rate_limited_total";
/// Gauge `{scope="global"}` / `{scope="service", service}` ([`PermitScope`]).
pub const PERMITS_IN_USE: &str = "logai_permits_in_use";
/// Gauge `{scope}`.
pub const PERMITS_LIMIT: &str = "logai_permits_limit";
/// Gauge: sessions' searches waiting for a permit.
pub const PERMIT_QUEUE_LENGTH: &str = "logai_permit_queue_length";
/// Histogram `{op}` ([`RedisOp`]): Redis round trips as seen by this host.
pub const REDIS_OP_DURATION_MS: &str = "logai_redis_op_duration_ms";
/// Counter `{kind}` ([`ErrorKind`]): errors by kind.
pub const ERRORS_TOTAL: &str = "logai_errors_total";
/// Counter `{reason, exporter}` ([`DropReason`]): telemetry events dropped.
pub const TELEMETRY_DROPPED_TOTAL: &str = "logai_telemetry_dropped_total";
/// Histogram `{op}` ([`CacheOp`]): cache lookups as seen by the search path.
pub const CACHE_OP_DURATION_MS: &str = "logai_cache_op_duration_ms";
/// Gauge: 1 when the sessions share state through Redis, 0 when local.
pub const REDIS_UP: &str = "logai_redis_up";

/// Every metric name above.
pub const ALL: &[&str] = &[
    TOOL_CALLS_TOTAL,
    TOOL_DURATION_MS,
    SEARCHES_TOTAL,
    SEARCH_DURATION_MS,
    SEARCH_RESUMED_TOTAL,
    PERMIT_WAIT_MS,
    PERMITS_TOTAL,
    CACHE_HITS_TOTAL,
    CACHE_MISSES_TOTAL,
    CACHE_SKIPPED_TOTAL,
    CACHE_EVICTED_TOTAL,
    RATE_LIMITED_TOTAL,
    PERMITS_IN_USE,
    PERMITS_LIMIT,
    PERMIT_QUEUE_LENGTH,
    REDIS_OP_DURATION_MS,
    ERRORS_TOTAL,
    TELEMETRY_DROPPED_TOTAL,
    CACHE_OP_DURATION_MS,
    REDIS_UP,
];

/// The metrics also kept in time buckets (`coord::windows`, read through
/// the plugins' `metrics.read-window`): what the insights tool answers from.
pub const WINDOWED: &[&str] = &[
    TOOL_CALLS_TOTAL,
    TOOL_DURATION_MS,
    SEARCHES_TOTAL,
    SEARCH_DURATION_MS,
    PERMITS_TOTAL,
    PERMIT_WAIT_MS,
    CACHE_HITS_TOTAL,
    CACHE_MISSES_TOTAL,
    RATE_LIMITED_TOTAL,
    ERRORS_TOTAL,
];

/// Label names.
pub mod label {
    /// The tool's name.
    pub const TOOL: &str = "tool";
    /// How a call or a permit request ended.
    pub const OUTCOME: &str = "outcome";
    /// The service searched, as the manifest names it.
    pub const SERVICE: &str = "service";
    /// Whether a search was answered from the cache ([`Cached`]).
    pub const CACHED: &str = "cached";
    /// How a cache hit was found ([`CacheVia`]).
    pub const VIA: &str = "via";
    /// Which permit gauge: global or one service's ([`PermitScope`]).
    pub const SCOPE: &str = "scope";
    /// Which operation (Redis, cache).
    pub const OP: &str = "op";
    /// Which kind of error.
    pub const KIND: &str = "kind";
    /// Why a telemetry event was dropped.
    pub const REASON: &str = "reason";
    /// The exporter, as the manifest names it.
    pub const EXPORTER: &str = "exporter";
}

/// A closed set of label values: each variant and its wire form.
macro_rules! label_values {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $(#[doc = concat!("`", $s, "`")] $(#[$vm])* $v),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The value as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// How a `tools/call` ended (`outcome` of [`TOOL_CALLS_TOTAL`] and of the `tool.call` span).
    ToolOutcome {
        /// A result.
        Ok => "ok",
        /// A result with `isError` (for the model to read: a bad regex, busy, rate limited, ...).
        ToolError => "tool_error",
        InvalidArguments => "invalid_arguments",
        UnknownTool => "unknown_tool",
        /// The host failed the call (a trap, a time limit, a broken component).
        Internal => "internal",
    }
}

label_values! {
    /// `outcome` of [`PERMITS_TOTAL`].
    PermitOutcome { Granted => "granted", Busy => "busy", Cancelled => "cancelled" }
}

label_values! {
    /// `cached` of [`SEARCHES_TOTAL`].
    Cached { Yes => "true", No => "false" }
}

impl Cached {
    /// `true` or `false`, from whether the answer came from the cache.
    pub fn of(cached: bool) -> Cached {
        if cached {
            Cached::Yes
        } else {
            Cached::No
        }
    }
}

label_values! {
    /// `via` of [`CACHE_HITS_TOTAL`].
    CacheVia { Key => "key", Narrowed => "narrowed" }
}

label_values! {
    /// `scope` of the permit gauges.
    PermitScope { Global => "global", Service => "service" }
}

label_values! {
    /// `op` of [`CACHE_OP_DURATION_MS`].
    CacheOp { Get => "get" }
}

label_values! {
    /// `kind` of [`ERRORS_TOTAL`]: coordination failures, then the search
    /// error kinds (the same words as the `search` span's `outcome`).
    ErrorKind {
        RedisUnavailable => "redis_unavailable",
        RedisReply => "redis_reply",
        SlotsUnusable => "slots_unusable",
        InvalidRequest => "invalid_request",
        Forbidden => "forbidden",
        RateLimited => "rate_limited",
        Busy => "busy",
        NotFound => "not_found",
        Cancelled => "cancelled",
        Internal => "internal",
    }
}

label_values! {
    /// `reason` of [`TELEMETRY_DROPPED_TOTAL`].
    DropReason {
        /// The export queue (`telemetry.queue_capacity`) was full.
        QueueFull => "queue_full",
        /// The exporter's component failed to send a batch.
        ExportFailed => "export_failed",
        /// The exporter's lane was full (it is slower than the events come).
        ExporterBusy => "exporter_busy",
        /// The exporter could not be loaded: its share of every batch.
        NotLoaded => "not_loaded",
    }
}

label_values! {
    /// `outcome` of the `redis` span (and of DogStatsD `log_ai.redis.*`).
    RedisOutcome {
        Ok => "ok",
        /// No answer within `redis.op_timeout_ms`.
        Timeout => "timeout",
        /// Redis is down (or marked so).
        Unavailable => "unavailable",
        /// Redis answered with an error.
        Refused => "refused",
    }
}

label_values! {
    /// `op` of [`REDIS_OP_DURATION_MS`].
    RedisOp {
        Ping => "ping",
        PermitAcquire => "permit_acquire",
        PermitRelease => "permit_release",
        PermitRenew => "permit_renew",
        CacheGet => "cache_get",
        CachePut => "cache_put",
        CacheIndex => "cache_index",
        CacheIndexAdd => "cache_index_add",
        CacheLock => "cache_lock",
        CacheLockRenew => "cache_lock_renew",
        CacheUnlock => "cache_unlock",
        CacheWait => "cache_wait",
        RateCheck => "rate_check",
        MetricsFlush => "metrics_flush",
        MetricsSnapshot => "metrics_snapshot",
    }
}
