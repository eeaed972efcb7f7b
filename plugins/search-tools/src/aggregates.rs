//! The aggregate tools: `log_overview`, `count_logs`, `top_patterns`. Each
//! asks the host's `aggregate.summarize` (native counting, cached and shared
//! like a search) and answers with a text that fits `budget_tools` and a
//! `structuredContent` holding the whole aggregate.

use std::fmt::Write;

use logai_plugin_sdk::aggregate::{self as agg, AggregateRequest, AggregateResponse};
use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::search::SearchRequest;
use logai_plugin_sdk::{Context, Error, SearchLimits, Structured, Tool, ToolSpec};
use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::render::{human_bytes, plural};
use crate::{args, date_time, search_error, LogFormat};

/// The arguments every aggregate tool takes (the lines it counts), then its own.
macro_rules! lines_args {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Which service's logs, exactly as list_services names it (e.g. "payments").
            #[schemars(length(min = 1, max = 128))]
            pub service: String,
            /// Count only lines matching this Rust regex (or literal text with fixed_strings=true); leave it out to count every line.
            #[schemars(length(min = 1, max = 4096))]
            pub pattern: Option<String>,
            /// Treat pattern as literal text, not a regex.
            #[serde(default)]
            pub fixed_strings: bool,
            /// Match pattern regardless of letter case.
            #[serde(default)]
            pub case_insensitive: bool,
            /// Time window: the last N minutes. Use at most ONE of minutes_back, hours_back, date, or since/until; none covers the whole history.
            #[schemars(range(min = 1, max = 525600))]
            pub minutes_back: Option<u32>,
            /// Time window: the last N hours.
            #[schemars(range(min = 1, max = 87600))]
            pub hours_back: Option<u32>,
            /// Time window: this calendar day (YYYY-MM-DD, in the service's timezone).
            #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
            pub date: Option<String>,
            /// Time window start, inclusive, RFC 3339 (e.g. "2026-11-20T14:00:00Z").
            #[schemars(transform = date_time)]
            pub since: Option<String>,
            /// Time window end, exclusive, RFC 3339.
            #[schemars(transform = date_time)]
            pub until: Option<String>,
            /// Only the service's files whose name matches this glob (e.g. "*.gz").
            #[schemars(length(min = 1, max = 256))]
            pub file_pattern: Option<String>,
            /// How to read timestamps, overriding the service's configured format. Rarely needed.
            pub log_format: Option<LogFormat>,
            /// Most tokens (characters / 4) the text answer may take: default 4000, 200 to 20000. The most informative items come first; what is left out is named; structuredContent holds everything.
            #[schemars(range(min = 200, max = 20000))]
            pub budget_tokens: Option<u32>,
            $($(#[$fm])* pub $f: $t,)*
        }

        impl $name {
            fn window(&self) -> args::WindowArgs<'_> {
                args::WindowArgs {
                    minutes_back: self.minutes_back,
                    hours_back: self.hours_back,
                    date: self.date.as_deref(),
                    since: self.since.as_deref(),
                    until: self.until.as_deref(),
                }
            }

            fn lines(&self) -> SearchRequest {
                SearchRequest {
                    service: self.service.clone(),
                    pattern: self.pattern.clone().unwrap_or_default(),
                    fixed_strings: self.fixed_strings,
                    case_insensitive: self.case_insensitive,
                    minutes_back: self.minutes_back,
                    hours_back: self.hours_back,
                    date: self.date.clone(),
                    since: self.since.clone(),
                    until: self.until.clone(),
                    file_pattern: self.file_pattern.clone(),
                    log_format: self.log_format.map(|f| f.as_str().to_string()),
                    context: 0,
                    max_results: 1,
                }
            }
        }
    };
}

lines_args! {
    /// Start here to understand a service's logs in one call: how many lines and bytes in the window, counts by level, a histogram of all lines and of errors over time, the top message patterns (templates with their counts, first/last seen and an example file:line), patterns NEW in this window compared with the window of the same length before it, and the top values of each field (JSON fields, or syslog program and host). Then drill down with top_patterns, count_logs or search_logs (each pattern comes with ready search_logs arguments).
    pub struct LogOverview {
        /// Patterns listed (default 10, at most 50).
        #[schemars(range(min = 1, max = 50))]
        pub top: Option<u32>,
    }
}

lines_args! {
    /// Count lines per time step, optionally split by a field: like VictoriaLogs `hits` or LogQL `count_over_time ... by`. group_by is one of level, pattern, program, host (syslog), field:NAME (a JSON field, dotted for nesting, e.g. field:status or field:http.code), or capture (the pattern's first capture group, e.g. pattern="status=(\\d+)"). The step is automatic (at most 60 round steps over the window) unless step_seconds is given.
    pub struct CountLogs {
        /// Width of each time step in seconds; leave it out for an automatic round step.
        #[schemars(range(min = 1))]
        pub step_seconds: Option<u32>,
        /// Split the counts by: level, pattern, program, host, capture, or field:NAME.
        #[schemars(length(min = 1, max = 200))]
        pub group_by: Option<String>,
        /// Groups returned (the largest; default 10, at most 50). The answer counts the rest.
        #[schemars(range(min = 1, max = 50))]
        pub top: Option<u32>,
    }
}

lines_args! {
    /// The message patterns of a window (log lines with their variable parts such as numbers, ids, IPs as placeholders), ranked by count, or with compare_to by change against a baseline window, marking NEW and VANISHED patterns. Each comes with its count, errors, first/last seen, an example file:line and ready search_logs arguments to see its lines.
    pub struct TopPatterns {
        /// Patterns returned (default 20, at most 200).
        #[schemars(range(min = 1, max = 200))]
        pub top: Option<u32>,
        /// Rank by change against a baseline: "previous" (the window of the same length just before this one) or an RFC 3339 start (the baseline runs from there to this window's start). Needs a time window.
        #[schemars(length(min = 1, max = 64))]
        pub compare_to: Option<String>,
    }
}

/// One time step.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Step start (RFC 3339).
    #[schemars(transform = date_time)]
    pub start: String,
    pub lines: u64,
    /// Lines at level error or fatal.
    pub errors: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelCount {
    /// fatal, error, warn, info, debug, trace, or none (the line states no level).
    pub level: String,
    pub count: u64,
}

/// search_logs arguments that show a pattern's lines.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    pub service: String,
    /// A regex built from the template (placeholders match any text).
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_pattern: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Stable id of the template.
    pub id: String,
    /// The message with placeholders (<NUM>, <IP>, <HEX>, <*>, ...).
    pub template: String,
    /// Lines in the window.
    pub count: u64,
    /// Lines in the baseline window, when compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_count: Option<u64>,
    /// `new` (none in the baseline), `vanished` (none in the window), or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Of its lines, those at level error or fatal.
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub last_seen: Option<String>,
    /// The first line's message.
    pub example: String,
    /// Where it is: file and 1-based line.
    pub example_file: String,
    pub example_line: u64,
    /// Arguments for search_logs to see the pattern's lines.
    pub search: SearchArgs,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Value {
    pub value: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facet {
    /// A JSON field (dotted when nested), or program / host for syslog.
    pub field: String,
    /// Lines carrying it.
    pub lines: u64,
    /// Distinct values counted (at most 1000 per field).
    pub distinct: u64,
    /// More distinct values than counted one by one: those count in `other`.
    pub capped: bool,
    /// Lines whose value is not in `top`.
    pub other: u64,
    pub top: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The group's value ("(none)": lines without one).
    pub key: String,
    pub total: u64,
    /// Per step, aligned with `buckets`.
    pub counts: Vec<u64>,
}

/// What every aggregate answer says of the lines it counted.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counted {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub window_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub window_end: Option<String>,
    /// Lines in the window (matching pattern, when given).
    pub lines: u64,
    pub bytes: u64,
    /// Lines with no timestamp to place them in time (in `lines`, in no bucket).
    pub unstamped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub last_seen: Option<String>,
    pub files_searched: u32,
    pub bytes_scanned: u64,
    /// Stopped early (deadline or cancellation): counts cover what was read.
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// From the shared result cache.
    pub cached: bool,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverviewOutput {
    #[serde(flatten)]
    pub counted: Counted,
    pub levels: Vec<LevelCount>,
    /// Width of each step in seconds.
    pub step_seconds: u32,
    pub buckets: Vec<Bucket>,
    /// Distinct patterns in the window.
    pub patterns_total: u32,
    /// The most frequent patterns.
    pub top_patterns: Vec<Pattern>,
    /// The patterns with most lines at level error or fatal (at most 5).
    pub error_patterns: Vec<Pattern>,
    /// Patterns with lines in the window and none in the window of the same length before it.
    pub new_patterns: Vec<Pattern>,
    /// Lines in that previous window (absent without a closed time window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_window_lines: Option<u64>,
    pub facets: Vec<Facet>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountOutput {
    #[serde(flatten)]
    pub counted: Counted,
    pub step_seconds: u32,
    pub buckets: Vec<Bucket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// The largest groups.
    pub groups: Vec<Group>,
    /// Distinct groups seen.
    pub groups_total: u32,
    /// Lines in groups not listed.
    pub groups_other: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternsOutput {
    #[serde(flatten)]
    pub counted: Counted,
    /// Distinct patterns in the window.
    pub patterns_total: u32,
    /// `count`, or `change` against the baseline.
    pub ranked_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub baseline_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_lines: Option<u64>,
    pub patterns: Vec<Pattern>,
}

impl Tool for LogOverview {
    const NAME: &'static str = "log_overview";
    type Output = Structured<OverviewOutput>;
    fn call(self, _ctx: &Context) -> Result<Self::Output, Error> {
        log_overview(self)
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Overview of a service's logs").read_only()
    }
}

impl Tool for CountLogs {
    const NAME: &'static str = "count_logs";
    type Output = Structured<CountOutput>;
    fn call(self, _ctx: &Context) -> Result<Self::Output, Error> {
        count_logs(self)
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Count log lines over time").read_only()
    }
}

impl Tool for TopPatterns {
    const NAME: &'static str = "top_patterns";
    type Output = Structured<PatternsOutput>;
    fn call(self, _ctx: &Context) -> Result<Self::Output, Error> {
        top_patterns(self)
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Top log patterns").read_only()
    }
}

/// The host's aggregate; its errors as the agent reads them, naming this
/// tool's argument where the host's field has another name here
/// (`aliases`: host field -> argument).
fn summarize(tool: &str, req: &AggregateRequest, aliases: &[(&str, &str)]) -> Result<AggregateResponse, Error> {
    if logai_plugin_sdk::cancelled() {
        return Err(Error::failed(format!("{tool}: the call was cancelled before it started")));
    }
    agg::summarize(req).map_err(|mut e| {
        if let Some((_, arg)) = aliases.iter().find(|(host, _)| e.field.as_deref() == Some(*host)) {
            e.field = Some((*arg).to_string());
        }
        search_error(tool, &e, None)
    })
}

fn ms_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn counted(service: &str, pattern: Option<&str>, r: &AggregateResponse) -> Counted {
    Counted {
        service: service.to_string(),
        pattern: pattern.map(str::to_string),
        window_start: r.window_start.clone(),
        window_end: r.window_end.clone(),
        lines: r.lines,
        bytes: r.bytes,
        unstamped: r.unstamped,
        first_seen: r.first_ms.map(ms_text),
        last_seen: r.last_ms.map(ms_text),
        files_searched: r.files_searched,
        bytes_scanned: r.bytes_scanned,
        partial: r.partial,
        partial_reason: r.partial_reason.clone(),
        cached: r.cached,
        duration_ms: r.duration_ms,
    }
}

fn buckets(r: &AggregateResponse) -> Vec<Bucket> {
    r.buckets.iter().map(|b| Bucket { start: ms_text(b.start_ms), lines: b.lines, errors: b.errors }).collect()
}

/// A regex matching a template's lines: literal parts escaped, each
/// placeholder (`<NUM>`, `<*>`, ...) any text.
pub fn template_regex(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(end) = placeholder_len(rest) {
            if !out.ends_with(".*?") {
                out.push_str(".*?");
            }
            rest = &rest[end..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Length of a placeholder (`<*>` or `<UPPER>`) at the start of `s`.
fn placeholder_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let close = b.iter().take(12).position(|&c| c == b'>')?;
    let inner = &b[1..close];
    (inner == b"*" || (!inner.is_empty() && inner.iter().all(|c| c.is_ascii_uppercase() || *c == b'_'))).then_some(close + 1)
}

struct PatternCtx<'a> {
    service: &'a str,
    file_pattern: Option<&'a str>,
    window: (Option<String>, Option<String>),
    compared: bool,
}

fn pattern_out(p: &agg::PatternStat, c: &PatternCtx<'_>) -> Pattern {
    let change = match (c.compared, p.count, p.baseline_count) {
        (true, n, 0) if n > 0 => Some("new".to_string()),
        (true, 0, b) if b > 0 => Some("vanished".to_string()),
        _ => None,
    };
    Pattern {
        id: p.id.clone(),
        template: p.template.clone(),
        count: p.count,
        baseline_count: c.compared.then_some(p.baseline_count),
        change,
        errors: p.errors,
        first_seen: p.first_ms.map(ms_text),
        last_seen: p.last_ms.map(ms_text),
        example: p.example.clone(),
        example_file: p.example_file.clone(),
        example_line: p.example_line,
        search: SearchArgs {
            service: c.service.to_string(),
            pattern: template_regex(&p.template),
            since: c.window.0.clone(),
            until: c.window.1.clone(),
            file_pattern: c.file_pattern.map(str::to_string),
        },
    }
}

fn facets(r: &AggregateResponse) -> Vec<Facet> {
    r.facets
        .iter()
        .map(|f| Facet {
            field: f.name.clone(),
            lines: f.lines,
            distinct: f.distinct,
            capped: f.capped,
            other: f.other,
            top: f.top.iter().map(|v| Value { value: v.value.clone(), count: v.count }).collect(),
        })
        .collect()
}

fn log_overview(a: LogOverview) -> Result<Structured<OverviewOutput>, Error> {
    const TOOL: &str = LogOverview::NAME;
    args::check_window(&a.window()).map_err(|e| crate::arg_error(TOOL, e))?;
    let top = a.top.unwrap_or(10);
    let closed = a.minutes_back.is_some() || a.hours_back.is_some() || a.date.is_some() || (a.since.is_some() && a.until.is_some());
    let req = AggregateRequest {
        lines: a.lines(),
        step_seconds: None,
        group_by: None,
        top,
        baseline_since: closed.then(|| "previous".to_string()),
        baseline_until: None,
    };
    let r = summarize(TOOL, &req, &[])?;
    let ctx = PatternCtx {
        service: &a.service,
        file_pattern: a.file_pattern.as_deref(),
        window: (r.window_start.clone(), r.window_end.clone()),
        compared: closed,
    };
    let all: Vec<Pattern> = r.patterns.iter().map(|p| pattern_out(p, &ctx)).collect();
    let mut top_patterns: Vec<Pattern> = all.iter().filter(|p| p.count > 0).cloned().collect();
    top_patterns.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.id.cmp(&y.id)));
    top_patterns.truncate(top as usize);
    let mut error_patterns: Vec<Pattern> = all.iter().filter(|p| p.errors > 0).cloned().collect();
    error_patterns.sort_by(|x, y| y.errors.cmp(&x.errors).then_with(|| x.id.cmp(&y.id)));
    error_patterns.truncate(top.min(5) as usize);
    let mut new_patterns: Vec<Pattern> = all.into_iter().filter(|p| p.change.as_deref() == Some("new")).collect();
    new_patterns.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.id.cmp(&y.id)));
    let out = OverviewOutput {
        counted: counted(&a.service, a.pattern.as_deref(), &r),
        levels: r.levels.iter().map(|l| LevelCount { level: l.level.clone(), count: l.count }).collect(),
        step_seconds: r.step_seconds,
        buckets: buckets(&r),
        patterns_total: r.patterns_total,
        top_patterns,
        error_patterns,
        new_patterns,
        previous_window_lines: closed.then_some(r.baseline_lines),
        facets: facets(&r),
    };
    Ok(Structured::new(overview_text(&out, a.budget_tokens), out))
}

fn header(b: &mut Budget, tool: &str, c: &Counted) {
    let window = match (&c.window_start, &c.window_end) {
        (Some(s), Some(e)) => format!("{s} to {e}"),
        (Some(s), None) => format!("from {s}"),
        (None, Some(e)) => format!("before {e}"),
        (None, None) => "all history".to_string(),
    };
    let what = c.pattern.as_deref().map(|p| format!(" matching /{p}/")).unwrap_or_default();
    b.line(&format!(
        "{} {tool}, {window}: {}{what}, {} in {} ({} scanned in {} ms{})",
        c.service,
        plural(c.lines, "line", "lines"),
        human_bytes(c.bytes),
        plural(c.files_searched as u64, "file", "files"),
        human_bytes(c.bytes_scanned),
        c.duration_ms,
        if c.cached { ", cached" } else { "" }
    ));
    if let (Some(f), Some(l)) = (&c.first_seen, &c.last_seen) {
        b.line(&format!(
            "first line {f}, last {l}{}",
            if c.unstamped > 0 { format!("; {} unstamped", c.unstamped) } else { String::new() }
        ));
    }
    if c.partial {
        b.line(&format!(
            "PARTIAL: stopped early ({}); counts cover only what was read. Narrow the window and ask again.",
            c.partial_reason.as_deref().unwrap_or("deadline")
        ));
    }
}

fn pattern_line(p: &Pattern, total: u64) -> String {
    let share = 100.0 * p.count as f64 / total.max(1) as f64;
    let mut s = format!("{:>7} {:>5.1}%", p.count, share);
    if let Some(b) = p.baseline_count {
        let _ = write!(s, " (before {b})");
    }
    if let Some(c) = &p.change {
        let _ = write!(s, " {}", c.to_uppercase());
    }
    if p.errors > 0 {
        let _ = write!(s, " {} err", p.errors);
    }
    let _ = write!(s, " {} {}", p.id, p.template);
    if let (Some(f), Some(l)) = (&p.first_seen, &p.last_seen) {
        let _ = write!(s, " [{}..{}]", &f[11..19.min(f.len())], &l[11..19.min(l.len())]);
    }
    let _ = write!(s, " e.g. {}:{}", p.example_file, p.example_line);
    s
}

fn histogram_lines(step: u32, buckets: &[Bucket]) -> Vec<String> {
    if buckets.is_empty() {
        return Vec::new();
    }
    let all: Vec<String> = buckets.iter().map(|b| b.lines.to_string()).collect();
    let err: Vec<String> = buckets.iter().map(|b| b.errors.to_string()).collect();
    vec![
        format!("lines per {} from {}: {}", step_text(step), buckets[0].start, all.join(" ")),
        format!("errors per {}: {}", step_text(step), err.join(" ")),
    ]
}

fn step_text(s: u32) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn facet_line(f: &Facet) -> String {
    // Every value once, and many of them: an id, whose values say nothing.
    if f.top.first().is_some_and(|v| v.count <= 1) && f.distinct >= 20 {
        let n = if f.capped { format!("over {}", f.distinct) } else { f.distinct.to_string() };
        return format!("  {}: {n} distinct values, none repeated (an id)", f.field);
    }
    let vals: Vec<String> = f.top.iter().take(5).map(|v| format!("{} {}", v.value, v.count)).collect();
    let more = if f.capped {
        format!(" (over {} values)", f.distinct)
    } else if f.distinct > 5 {
        format!(" ({} values)", f.distinct)
    } else {
        String::new()
    };
    format!("  {}: {}{more}", f.field, vals.join(", "))
}

fn overview_text(o: &OverviewOutput, budget: Option<u32>) -> String {
    let mut b = Budget::new(budget);
    header(&mut b, "overview", &o.counted);
    let levels: Vec<String> = o.levels.iter().map(|l| format!("{} {}", l.level, l.count)).collect();
    b.line(&format!("levels: {}", if levels.is_empty() { "-".into() } else { levels.join(", ") }));
    if o.counted.lines == 0 {
        b.line("No lines in this window. list_services shows the time range each service covers.");
        return b.finish("");
    }
    if let Some(prev) = o.previous_window_lines {
        if o.new_patterns.is_empty() {
            b.line(&format!("no new patterns compared with the window before ({prev} lines)"));
        } else {
            b.line(&format!("NEW patterns compared with the window before ({} lines):", prev));
            b.lines(o.new_patterns.iter().map(|p| pattern_line(p, o.counted.lines)), "new patterns");
        }
    }
    if !o.error_patterns.is_empty() {
        b.line("patterns with most errors:");
        b.lines(o.error_patterns.iter().map(|p| pattern_line(p, o.counted.lines)), "error patterns");
    }
    b.line(&format!("top patterns ({} of {}):", o.top_patterns.len(), o.patterns_total));
    b.lines(o.top_patterns.iter().map(|p| pattern_line(p, o.counted.lines)), "patterns");
    b.lines(histogram_lines(o.step_seconds, &o.buckets), "histogram lines");
    if !o.facets.is_empty() {
        b.line("fields (top values):");
        b.lines(o.facets.iter().map(facet_line), "fields");
    }
    b.finish("structuredContent holds them all.")
}

fn count_logs(a: CountLogs) -> Result<Structured<CountOutput>, Error> {
    const TOOL: &str = CountLogs::NAME;
    args::check_window(&a.window()).map_err(|e| crate::arg_error(TOOL, e))?;
    let req = AggregateRequest {
        lines: a.lines(),
        step_seconds: a.step_seconds,
        group_by: a.group_by.clone(),
        top: a.top.unwrap_or(10),
        baseline_since: None,
        baseline_until: None,
    };
    let r = summarize(TOOL, &req, &[])?;
    let out = CountOutput {
        counted: counted(&a.service, a.pattern.as_deref(), &r),
        step_seconds: r.step_seconds,
        buckets: buckets(&r),
        group_by: a.group_by.clone(),
        groups: r.groups.iter().map(|g| Group { key: g.key.clone(), total: g.total, counts: g.counts.clone() }).collect(),
        groups_total: r.groups_total,
        groups_other: r.groups_other,
    };
    Ok(Structured::new(count_text(&out, a.budget_tokens), out))
}

fn count_text(o: &CountOutput, budget: Option<u32>) -> String {
    let mut b = Budget::new(budget);
    header(&mut b, "counts", &o.counted);
    if let Some(g) = &o.group_by {
        b.line(&format!(
            "by {g}: {} groups{}",
            o.groups_total,
            if o.groups_other > 0 { format!(", {} lines in groups not listed", o.groups_other) } else { String::new() }
        ));
        let step = step_text(o.step_seconds);
        let start = o.buckets.first().map(|b| b.start.clone()).unwrap_or_default();
        b.lines(
            o.groups.iter().map(|g| {
                let c: Vec<String> = g.counts.iter().map(u64::to_string).collect();
                format!("  {} total {}, per {step} from {start}: {}", g.key, g.total, c.join(" "))
            }),
            "groups",
        );
    }
    let per: Vec<String> =
        o.buckets.iter().map(|k| format!("{} {} ({} err)", &k.start[..16.min(k.start.len())], k.lines, k.errors)).collect();
    if !per.is_empty() {
        b.line(&format!("all lines per {}:", step_text(o.step_seconds)));
        b.lines(per.into_iter().map(|l| format!("  {l}")), "time steps");
    }
    b.finish("structuredContent holds every step and group.")
}

fn top_patterns(a: TopPatterns) -> Result<Structured<PatternsOutput>, Error> {
    const TOOL: &str = TopPatterns::NAME;
    args::check_window(&a.window()).map_err(|e| crate::arg_error(TOOL, e))?;
    if let Some(c) = a.compare_to.as_deref().filter(|c| *c != "previous") {
        args::check_rfc3339(c).map_err(|e| crate::arg_error(TOOL, args::ArgError::at("compare_to", format!("{e}; or \"previous\""))))?;
    }
    let top = a.top.unwrap_or(20);
    let (baseline_since, baseline_until) = (a.compare_to.clone(), None);
    // A start alone: the host runs the baseline to this window's start.
    let req = AggregateRequest { lines: a.lines(), step_seconds: None, group_by: None, top, baseline_since, baseline_until };
    let r = summarize(TOOL, &req, &[("baseline_since", "compare_to"), ("baseline_until", "compare_to")])?;
    let compared = a.compare_to.is_some();
    let ctx = PatternCtx {
        service: &a.service,
        file_pattern: a.file_pattern.as_deref(),
        window: (r.window_start.clone(), r.window_end.clone()),
        compared,
    };
    let mut patterns: Vec<Pattern> = r.patterns.iter().map(|p| pattern_out(p, &ctx)).collect();
    if compared {
        // As the host ranks them: change in units of the baseline's noise.
        let score = |p: &Pattern| {
            let before = p.baseline_count.unwrap_or(0);
            p.count.abs_diff(before) as f64 / ((before + 1) as f64).sqrt()
        };
        patterns.sort_by(|x, y| score(y).total_cmp(&score(x)).then_with(|| y.count.cmp(&x.count)).then_with(|| x.id.cmp(&y.id)));
    } else {
        patterns.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.id.cmp(&y.id)));
    }
    patterns.truncate(top as usize);
    let out = PatternsOutput {
        counted: counted(&a.service, a.pattern.as_deref(), &r),
        patterns_total: r.patterns_total,
        ranked_by: if compared { "change" } else { "count" }.to_string(),
        baseline_start: compared.then(|| baseline_start(&r, a.compare_to.as_deref())).flatten(),
        baseline_lines: compared.then_some(r.baseline_lines),
        patterns,
    };
    Ok(Structured::new(patterns_text(&out, a.budget_tokens), out))
}

/// Where the baseline began: the given start, or the window before.
fn baseline_start(r: &AggregateResponse, compare_to: Option<&str>) -> Option<String> {
    match compare_to {
        Some("previous") => {
            let (s, e) = (r.window_start.as_deref()?, r.window_end.as_deref()?);
            let (s, e) = (parse_ms(s)?, parse_ms(e)?);
            Some(ms_text(s - (e - s)))
        }
        other => other.map(str::to_string),
    }
}

/// Milliseconds of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (the host's form).
fn parse_ms(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let ms = if s.as_bytes().get(19) == Some(&b'.') { n(20..23).unwrap_or(0) } else { 0 };
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

fn patterns_text(o: &PatternsOutput, budget: Option<u32>) -> String {
    let mut b = Budget::new(budget);
    header(&mut b, "patterns", &o.counted);
    match (&o.baseline_start, o.baseline_lines) {
        (Some(s), Some(n)) => {
            b.line(&format!("ranked by change against {s} to the window's start ({n} lines; change = |now - before| / sqrt(before + 1)); NEW = none before, VANISHED = none now"));
        }
        _ => {
            b.line(&format!("{} patterns, most frequent first:", o.patterns_total));
        }
    }
    b.lines(o.patterns.iter().map(|p| pattern_line(p, o.counted.lines)), "patterns");
    if let Some(p) = o.patterns.first() {
        b.line(&format!(
            "to see a pattern's lines: search_logs with its `search` arguments, e.g. service={} pattern={:?}",
            p.search.service, p.search.pattern
        ));
    }
    b.finish("structuredContent holds every pattern listed.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_regexes_that_match_their_lines() {
        assert_eq!(template_regex("charge <NUM> failed (code=<*>)"), r"charge .*? failed \(code=.*?\)");
        assert_eq!(template_regex("a <IP> <NUM> b"), "a .*? .*? b");
        assert_eq!(template_regex("x < y"), "x < y");
    }

    #[test]
    fn times_round_trip() {
        let ms = parse_ms("2026-11-20T14:05:00Z").unwrap();
        assert_eq!(ms_text(ms), "2026-11-20T14:05:00Z");
        assert_eq!(parse_ms("1970-01-01T00:00:01.500Z"), Some(1500));
    }
}
