//! WIT interface `aggregate`: counts over time, levels, patterns and facets
//! of a service's lines. The host also caches answers as JSON of these types.

use serde::{Deserialize, Serialize};

use crate::record;
use crate::search::SearchRequest;

record! { $ __aggregate_request: aggregate = AggregateRequest;
    /// What to aggregate.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct AggregateRequest {
        /// Which lines: service, window, files, format, and `pattern` to keep
        /// only matching lines (empty: every line).
        pub lines: SearchRequest,
        /// Histogram step in seconds; `None`: at most 60 round steps.
        pub step_seconds: Option<u32>,
        /// `level`, `pattern`, `program`, `host`, `field:NAME` or `capture`.
        pub group_by: Option<String>,
        /// Patterns, facet values and groups returned.
        pub top: u32,
        /// Baseline window start, RFC 3339 (inclusive).
        pub baseline_since: Option<String>,
        /// Baseline window end, RFC 3339 (exclusive), at or before the window's start.
        pub baseline_until: Option<String>,
    }
}

record! { $ __time_bucket: aggregate = TimeBucket;
    /// Lines in one time step.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct TimeBucket {
        /// Step start, ms since the Unix epoch.
        pub start_ms: i64,
        /// Lines stamped in the step.
        pub lines: u64,
        /// Of which at level error or worse.
        pub errors: u64,
    }
}

record! { $ __level_count: aggregate = LevelCount;
    /// Lines of one level.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct LevelCount {
        /// `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `none`.
        pub level: String,
        /// Lines at that level.
        pub count: u64,
    }
}

record! { $ __pattern_stat: aggregate = PatternStat;
    /// One pattern and its lines.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct PatternStat {
        /// Stable id of the template.
        pub id: String,
        /// The message with typed placeholders.
        pub template: String,
        /// Lines in the window.
        pub count: u64,
        /// Lines in the baseline window.
        pub baseline_count: u64,
        /// Of the window's lines, at level error or worse.
        pub errors: u64,
        /// First stamp in the window, ms since the epoch.
        pub first_ms: Option<i64>,
        /// Last stamp in the window, ms since the epoch.
        pub last_ms: Option<i64>,
        /// The first line's message.
        pub example: String,
        /// Its file.
        pub example_file: String,
        /// Its 1-based line number.
        pub example_line: u64,
    }
}

record! { $ __value_count: aggregate = ValueCount;
    /// A value and its lines.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct ValueCount {
        /// The value (long values cut).
        pub value: String,
        /// Lines carrying it.
        pub count: u64,
    }
}

record! { $ __facet: aggregate = Facet;
    /// The top values of one field.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct Facet {
        /// The field (`program`, `host`, or a JSON field, dotted when nested).
        pub name: String,
        /// Lines carrying the field.
        pub lines: u64,
        /// Distinct values seen (counting stops at the cap).
        pub distinct: u64,
        /// Values past the cap were counted in `other` only.
        pub capped: bool,
        /// Lines whose value is not among `top`.
        pub other: u64,
        /// The most frequent values.
        pub top: Vec<ValueCount>,
    }
}

record! { $ __group_series: aggregate = GroupSeries;
    /// One value of `group_by` over time.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct GroupSeries {
        /// The group's value.
        pub key: String,
        /// Its lines.
        pub total: u64,
        /// Per bucket, aligned with the answer's buckets.
        pub counts: Vec<u64>,
    }
}

record! { $ __aggregate_response: aggregate = AggregateResponse;
    /// An aggregate's answer.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct AggregateResponse {
        /// Lines in the window (matching `pattern`, when given).
        pub lines: u64,
        /// Their bytes, newlines included.
        pub bytes: u64,
        /// Lines without a stamp of their own or of an entry before them.
        pub unstamped: u64,
        /// Lines in the baseline window.
        pub baseline_lines: u64,
        /// Files read.
        pub files_searched: u32,
        /// Bytes this call read (0 for a cache hit).
        pub bytes_scanned: u64,
        /// The window's start, RFC 3339, when set.
        pub window_start: Option<String>,
        /// The window's end, RFC 3339, when set.
        pub window_end: Option<String>,
        /// First stamp of the window's lines.
        pub first_ms: Option<i64>,
        /// Last stamp of the window's lines.
        pub last_ms: Option<i64>,
        /// Width of each bucket.
        pub step_seconds: u32,
        /// The histogram.
        pub buckets: Vec<TimeBucket>,
        /// Lines per level.
        pub levels: Vec<LevelCount>,
        /// The top patterns by count, then by errors, then (with a baseline) by change.
        pub patterns: Vec<PatternStat>,
        /// Distinct patterns in the window.
        pub patterns_total: u32,
        /// Field facets.
        pub facets: Vec<Facet>,
        /// Groups over time, with `group_by`.
        pub groups: Vec<GroupSeries>,
        /// Distinct groups seen.
        pub groups_total: u32,
        /// Lines in groups not returned.
        pub groups_other: u64,
        /// Stopped early; counts cover what was read.
        pub partial: bool,
        /// Why, when partial.
        pub partial_reason: Option<String>,
        /// From the shared result cache.
        pub cached: bool,
        /// Time in the core, ms (0 for a cache hit).
        pub duration_ms: u64,
    }
}

impl AggregateResponse {
    /// Present a stored answer as a cache hit: `cached`, and what this call
    /// really did (nothing scanned, no time in the core), as
    /// [`crate::search::SearchResponse::mark_cache_hit`] does for searches.
    pub fn mark_cache_hit(&mut self) {
        self.cached = true;
        self.bytes_scanned = 0;
        self.duration_ms = 0;
    }
}
