//! logai's first-party search tools, a WebAssembly component that uses only
//! the host's `search` import (plus `log` and `cancelled`):
//!
//! - `list_services`: what can be searched, with sizes and time ranges;
//! - `search_logs`: a regex (or literal) search of one service's logs within
//!   an optional time window, bounded inline results plus an overflow;
//! - `read_search_file`: pages through a search's overflow.
//!
//! Every answer has a readable text block (rg-like lines with a summary) and
//! `structuredContent` matching the declared output schema. Failures the
//! model can act on (bad pattern, unknown service, busy, rate limited, ...)
//! come back as `isError: true` results naming the argument at fault.

mod aggregates;
mod args;
mod budget;
mod render;

use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::search::{self as host, SearchErrorKind};
use logai_plugin_sdk::{export_tools, json, Context, Error, SearchLimits, Structured, Tool, ToolSpec};
use serde::Deserialize;

use render::{Match, Overflow, PageOutput, SearchFlags, SearchOutput, Service, ServicesOutput};

export_tools!(SearchTools = ListServices, SearchLogs, ReadSearchFile, LogOverview, CountLogs, TopPatterns);

pub use aggregates::{CountLogs, LogOverview, TopPatterns};

/// Timestamps the tools take: RFC 3339.
fn date_time(schema: &mut logai_plugin_sdk::schemars::Schema) {
    schema.insert("format".into(), "date-time".into());
}

/// List the services whose logs can be searched on this machine: name, description, log format, number of files, total size and the time range the logs cover (earliest and latest timestamps). Call this first: search_logs needs a service name from this list, and the time range tells you which dates and windows hold data.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListServices {
    /// Most tokens (characters / 4) the text answer may take: default 4000, 200 to 20000; what does not fit is named, structuredContent holds everything.
    #[schemars(range(min = 200, max = 20000))]
    pub budget_tokens: Option<u32>,
}

impl Tool for ListServices {
    const NAME: &'static str = "list_services";
    type Output = Structured<ServicesOutput>;
    fn call(self, _ctx: &Context) -> Result<Self::Output, Error> {
        let out = services_output(host::list_services().map_err(|e| search_error(Self::NAME, &e, None))?);
        let text = budget::Budget::cut(render::services_text(&out), self.budget_tokens, "structuredContent lists every service.");
        Ok(Structured::new(text, out))
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("List log services").read_only()
    }
}

/// The log formats `log_format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Syslog,
    Json,
    Plain,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Syslog => "syslog",
            LogFormat::Json => "json",
            LogFormat::Plain => "plain",
        }
    }
}

/// Search one service's logs (the description, which states the operator's limits, is written in `spec`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchLogs {
    /// Which service's logs to search, exactly as list_services names it (e.g. "payments").
    #[schemars(length(min = 1, max = 128))]
    pub service: String,
    /// What to look for: a Rust regex (e.g. "timeout|timed out", "status=5\\d\\d"), matched against each line. Set fixed_strings=true to search for the text literally.
    #[schemars(length(min = 1, max = 4096))]
    pub pattern: String,
    /// Treat pattern as literal text, not a regex (like grep -F). Use it for text full of regex characters such as "[ERROR]" or "a.b(c)".
    #[serde(default)]
    pub fixed_strings: bool,
    /// Match regardless of letter case (like grep -i).
    #[serde(default)]
    pub case_insensitive: bool,
    /// Time window: only lines stamped within the last N minutes. Use at most ONE of minutes_back, hours_back, date, or since/until; none searches the whole history.
    #[schemars(range(min = 1, max = 525600))]
    pub minutes_back: Option<u32>,
    /// Time window: only lines stamped within the last N hours. Use at most ONE of minutes_back, hours_back, date, or since/until.
    #[schemars(range(min = 1, max = 87600))]
    pub hours_back: Option<u32>,
    /// Time window: only lines stamped on this calendar day (YYYY-MM-DD, in the service's timezone). Use at most ONE of minutes_back, hours_back, date, or since/until.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: Option<String>,
    /// Time window start, inclusive, RFC 3339 (e.g. "2026-11-20T14:00:00Z"). May be combined with until; not with minutes_back, hours_back or date.
    #[schemars(transform = date_time)]
    pub since: Option<String>,
    /// Time window end, exclusive, RFC 3339 (e.g. "2026-11-20T15:00:00Z"). May be combined with since; not with minutes_back, hours_back or date.
    #[schemars(transform = date_time)]
    pub until: Option<String>,
    /// Only search the service's files whose name matches this glob (e.g. "*.gz", "app.log*"). It filters the service's configured files; it cannot reach other files.
    #[schemars(length(min = 1, max = 256))]
    pub file_pattern: Option<String>,
    /// How to read timestamps, overriding the service's configured format. Rarely needed.
    pub log_format: Option<LogFormat>,
    /// Lines of context to show before and after each match (like grep -C); the most is the operator's limit.
    #[serde(default)]
    pub context: u32,
    /// Matches returned in this answer; the default and the most are the operator's limits.
    #[schemars(range(min = 1))]
    pub max_results: Option<u32>,
    /// Most tokens (characters / 4) the text answer may take: default 4000, 200 to 20000. Matches that do not fit are named with where to read them (structuredContent, the overflow).
    #[schemars(range(min = 200, max = 20000))]
    pub budget_tokens: Option<u32>,
    /// Follow the logs like `tail -f`: the `cursor` of an earlier search_logs answer (same service). Only lines appended since then are searched, each returned once, through log rotation (renamed, compressed and truncated files). Omit it to search the history; every answer gives a new cursor.
    #[schemars(length(min = 1, max = 1048576))]
    pub after_cursor: Option<String>,
    /// With after_cursor: when nothing new matches yet, wait up to this many milliseconds for a matching line to be written (the answer comes back as soon as one is, or empty with the cursor to go on from). Bounded by the call's time limit (the answer comes back a little before it). Ignored without after_cursor.
    #[schemars(range(min = 0, max = 600000))]
    pub wait_ms: Option<u32>,
}

impl Tool for SearchLogs {
    const NAME: &'static str = "search_logs";
    type Output = Structured<SearchOutput>;
    fn call(self, ctx: &Context) -> Result<Self::Output, Error> {
        search_logs(self, ctx)
    }
    fn spec(spec: ToolSpec, l: &SearchLimits) -> ToolSpec {
        spec.title("Search logs")
            .read_only()
            .with_description(format!(
                "Search one service's log files (rotated and gzipped ones included) for lines matching a regex \
                 (Rust regex syntax) or, with fixed_strings=true, a literal text. Narrow it with ONE time window \
                 (minutes_back, hours_back, date=YYYY-MM-DD, or since/until as RFC 3339), a file_pattern glob, \
                 and ask for context lines around each match. Results come in time order (older files first, \
                 line order within a file): a summary, then rg-style lines `LINE:text` for matches and `LINE-text` \
                 for context, grouped by file. At most max_results matches (default {}, up to {}) are returned; \
                 when there are more, the answer says so and gives an overflow reference to page through all \
                 of them with read_search_file. Unstamped lines (stack traces) belong to the stamped line above \
                 them for time windows. Every answer ends with a cursor: call again with after_cursor=<it> (and the \
                 same arguments) to get only the lines appended since, like tail -f, and wait_ms to wait for them.",
                l.default_max_results, l.max_results_cap
            ))
            .edit_input_schema(|s| {
                let p = &mut s["properties"];
                p["context"]["maximum"] = json!(l.max_context_lines);
                p["context"]["description"] = json!(format!(
                    "Lines of context to show before and after each match (like grep -C), 0 to {}.",
                    l.max_context_lines
                ));
                p["max_results"]["maximum"] = json!(l.max_results_cap);
                p["max_results"]["default"] = json!(default_max_results(l));
                p["max_results"]["description"] = json!(format!(
                    "Matches returned in this answer (default {}, at most {}). When there are more, the answer says so and gives an overflow reference to page through the rest with read_search_file.",
                    default_max_results(l), l.max_results_cap
                ));
            })
    }
}

/// Page through every match of an earlier search_logs call whose answer was truncated. Pass the overflow reference it gave and an offset (the answer's next_offset to continue where it stopped); returns up to `limit` matches in the same form as search_logs, and says whether more remain. References belong to this session only and are not file paths.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadSearchFile {
    /// The overflow reference a truncated search_logs answer gave (overflow.reference). It is not a file path.
    #[schemars(length(min = 1, max = 256))]
    pub reference: String,
    /// Index of the first match to return (0-based; search_logs gives overflow.next_offset to continue after what it showed).
    #[serde(default)]
    pub offset: u64,
    /// How many matches to return; the default and the most follow the operator's limits.
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Most tokens (characters / 4) the text answer may take: default 4000, 200 to 20000.
    #[schemars(range(min = 200, max = 20000))]
    pub budget_tokens: Option<u32>,
}

impl Tool for ReadSearchFile {
    const NAME: &'static str = "read_search_file";
    type Output = Structured<PageOutput>;
    fn call(self, ctx: &Context) -> Result<Self::Output, Error> {
        read_search_file(self, ctx)
    }
    fn spec(spec: ToolSpec, l: &SearchLimits) -> ToolSpec {
        spec.title("Read more search results").read_only().edit_input_schema(|s| {
            let p = &mut s["properties"]["limit"];
            p["maximum"] = json!(l.max_results_cap);
            p["default"] = json!(default_page(l));
            p["description"] = json!(format!("How many matches to return (default {}, at most {}).", default_page(l), l.max_results_cap));
        })
    }
}

/// Inline matches when a search does not say (never above the cap).
fn default_max_results(l: &SearchLimits) -> u32 {
    l.default_max_results.min(l.max_results_cap).max(1)
}

/// Matches per overflow page when a read does not say.
fn default_page(l: &SearchLimits) -> u32 {
    100.min(l.max_results_cap).max(1)
}

fn kind_label(k: host::SearchErrorKind) -> &'static str {
    use host::SearchErrorKind as K;
    match k {
        K::InvalidRequest => "invalid request",
        K::Forbidden => "forbidden",
        K::RateLimited => "rate limited",
        K::Busy => "busy",
        K::NotFound => "not found",
        K::Cancelled => "cancelled",
        K::Internal => "internal error",
    }
}

/// The text an agent reads when the host refuses a search or a page.
fn search_error(tool: &str, e: &host::SearchError, extra: Option<String>) -> Error {
    use host::SearchErrorKind as K;
    let mut t = format!("{tool} failed ({}", kind_label(e.kind));
    if let Some(f) = &e.field {
        t.push_str(&format!(", argument `{f}`"));
    }
    t.push_str("): ");
    t.push_str(e.message.trim_end());
    if let Some(x) = extra {
        // One sentence after another, whatever punctuation the host used.
        if !t.ends_with(['.', '!', '?', ':']) {
            t.push('.');
        }
        t.push(' ');
        t.push_str(x.trim());
    }
    let hint = match e.kind {
        K::RateLimited => Some("Wait as the message says before calling again; repeating now will fail the same way."),
        K::Busy => Some("The server is running as many searches as it allows; retry in a few seconds, or narrow the search."),
        // [access]: this person may not search the service at all.
        K::Forbidden if e.field.as_deref() == Some("service") => {
            Some("Ask only about the services list_services shows: the others are not this person's to search.")
        }
        K::Forbidden => Some("Only the service's configured log files can be searched; file_pattern filters those files by name."),
        K::Cancelled => Some("The call was cancelled."),
        _ => None,
    };
    if let Some(h) = hint {
        t.push('\n');
        t.push_str(h);
    }
    Error::failed(t)
}

fn convert_match(m: host::SearchMatch) -> Match {
    Match {
        file: m.file,
        line_number: m.line_number,
        timestamp: m.timestamp,
        text: m.text,
        before: m.before.into_iter().map(|c| render::ContextLine { line_number: c.line_number, text: c.text }).collect(),
        after: m.after.into_iter().map(|c| render::ContextLine { line_number: c.line_number, text: c.text }).collect(),
    }
}

fn services_output(list: Vec<host::ServiceInfo>) -> ServicesOutput {
    ServicesOutput {
        services: list
            .into_iter()
            .map(|s| Service {
                name: s.name,
                description: s.description,
                format: s.format,
                file_count: s.file_count,
                total_bytes: s.total_bytes,
                earliest: s.earliest,
                latest: s.latest,
            })
            .collect(),
    }
}

fn arg_error(tool: &str, e: args::ArgError) -> Error {
    Error::failed(format!("{tool}: invalid argument {}: {}", e.path, e.message))
}

fn search_logs(a: SearchLogs, ctx: &Context) -> Result<Structured<SearchOutput>, Error> {
    const TOOL: &str = SearchLogs::NAME;
    args::check_search(&a).map_err(|e| arg_error(TOOL, e))?;
    if logai_plugin_sdk::cancelled() {
        return Err(Error::failed(format!("{TOOL}: the call was cancelled before the search started")));
    }
    logai_plugin_sdk::log::debug(format!("search_logs request={} service={} pattern={:?}", ctx.request_id(), a.service, a.pattern));
    let req = host::SearchRequest {
        service: a.service.clone(),
        pattern: a.pattern.clone(),
        fixed_strings: a.fixed_strings,
        case_insensitive: a.case_insensitive,
        minutes_back: a.minutes_back,
        hours_back: a.hours_back,
        date: a.date.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        file_pattern: a.file_pattern.clone(),
        log_format: a.log_format.map(|f| f.as_str().to_string()),
        context: a.context,
        max_results: a.max_results.unwrap_or_else(|| default_max_results(ctx.limits())),
    };
    let followed = host::follow(&req, a.after_cursor.as_deref(), a.wait_ms.unwrap_or(0)).map_err(|mut e| {
        let extra = if e.field.as_deref() == Some("service") && e.kind == SearchErrorKind::InvalidRequest {
            valid_services_note(&e.message)
        } else {
            None
        };
        // The host's `cursor` is this tool's after_cursor.
        if e.field.as_deref() == Some("cursor") {
            e.field = Some("after_cursor".into());
        }
        search_error(TOOL, &e, extra)
    })?;
    let (r, cursor) = (followed.response, followed.cursor);
    let matches: Vec<Match> = r.matches.into_iter().map(convert_match).collect();
    let returned = matches.len() as u64;
    let overflow = r.overflow.map(|o| Overflow {
        next_offset: render::next_offset(r.total_matches, o.total, returned),
        reference: o.reference,
        total: o.total,
    });
    let out = SearchOutput {
        service: a.service,
        pattern: a.pattern,
        matches,
        returned,
        total_matches: r.total_matches,
        files_searched: r.files_searched,
        files_matched: r.files_matched,
        bytes_scanned: r.bytes_scanned,
        truncated: r.truncated,
        partial: r.partial,
        partial_reason: r.partial_reason,
        duration_ms: r.duration_ms,
        cached: r.cached,
        window_start: r.window_start,
        window_end: r.window_end,
        overflow,
        cursor,
    };
    let flags = SearchFlags {
        fixed_strings: a.fixed_strings,
        case_insensitive: a.case_insensitive,
        file_pattern: a.file_pattern.as_deref(),
        following: a.after_cursor.is_some(),
    };
    let text = search_text_within(&out, &flags, a.budget_tokens);
    Ok(Structured::new(text, out))
}

/// search_logs' text within `budget_tokens`: the matches that fit, then the
/// last line saying how to go on (the cursor itself when it takes at most a
/// quarter of the budget).
fn search_text_within(out: &SearchOutput, flags: &SearchFlags<'_>, budget_tokens: Option<u32>) -> String {
    let rest = match &out.overflow {
        Some(o) => format!(
            "structuredContent holds the {} matches returned; read_search_file with reference={} pages through all {}.",
            out.returned, o.reference, o.total
        ),
        None => format!("structuredContent holds the {} matches returned.", out.returned),
    };
    let tokens = budget_tokens.unwrap_or(budget::DEFAULT_TOKENS).clamp(budget::MIN_TOKENS, budget::MAX_TOKENS);
    let tokens_of = |t: &str| (t.chars().count().div_ceil(budget::CHARS_PER_TOKEN)) as u32;
    let mut hint = render::cursor_hint(&out.cursor);
    if tokens_of(&hint) > tokens / 4 {
        hint = render::cursor_hint_elsewhere(out.cursor.len());
    }
    let mut text = budget::Budget::cut(render::search_text(out, flags), Some(tokens.saturating_sub(tokens_of(&hint))), &rest);
    text.push_str(&hint);
    text
}

/// For an unknown service: the valid names, unless the host's message
/// already lists them.
fn valid_services_note(message: &str) -> Option<String> {
    let names: Vec<String> = host::list_services().ok()?.into_iter().map(|s| s.name).collect();
    if names.is_empty() {
        return Some("No services are configured.".into());
    }
    if names.iter().all(|n| message.contains(n.as_str())) {
        return None;
    }
    Some(format!("Valid services: {}.", names.join(", ")))
}

fn read_search_file(a: ReadSearchFile, ctx: &Context) -> Result<Structured<PageOutput>, Error> {
    let limit = a.limit.unwrap_or_else(|| default_page(ctx.limits()));
    let p = host::read_overflow(&a.reference, a.offset, limit).map_err(|e| {
        let extra = (e.kind == SearchErrorKind::NotFound).then(|| {
            "References come from a truncated search_logs answer in this same session (they are not file paths); run the search again to get a fresh one.".to_string()
        });
        search_error(ReadSearchFile::NAME, &e, extra)
    })?;
    let matches: Vec<Match> = p.matches.into_iter().map(convert_match).collect();
    let returned = matches.len() as u64;
    let out = PageOutput {
        reference: a.reference,
        offset: p.offset,
        returned,
        total: p.total,
        eof: p.eof,
        next_offset: if p.eof { None } else { Some(p.offset + returned) },
        matches,
    };
    let text = budget::Budget::cut(render::page_text(&out), a.budget_tokens, "structuredContent holds every match of this page.");
    Ok(Structured::new(text, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logai_plugin_sdk::search::{FollowResponse, SearchError, SearchMatch, SearchRequest, SearchResponse, ServiceInfo};
    use logai_plugin_sdk::testing::TestHost;
    use logai_plugin_sdk::Value;

    fn failed_text(e: Error) -> String {
        match e {
            Error::Failed(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schemas_are_objects_with_no_extra_properties_and_state_the_limits() {
        let l = SearchLimits { default_max_results: 50, max_results_cap: 500, max_context_lines: 3 };
        let specs = TestHost::new().limits(l).list::<SearchTools>();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["list_services", "search_logs", "read_search_file", "log_overview", "count_logs", "top_patterns"]);
        for s in &specs {
            let input: Value = serde_json::from_str(&s.input_schema).unwrap();
            let output: Value = serde_json::from_str(s.output_schema.as_deref().unwrap()).unwrap();
            assert!(!s.description.is_empty(), "{}", s.name);
            assert_eq!(input["type"], "object", "{}", s.name);
            assert_eq!(input["additionalProperties"], false, "{}", s.name);
            assert_eq!(output["type"], "object", "{}", s.name);
            assert_eq!(output["additionalProperties"], false, "{}", s.name);
            assert!(input.get("description").is_none() && input.get("$schema").is_none(), "{}", s.name);
        }
        let search: Value = serde_json::from_str(&specs[1].input_schema).unwrap();
        let p = &search["properties"];
        assert_eq!((p["max_results"]["maximum"].clone(), p["max_results"]["default"].clone()), (json!(500), json!(50)));
        assert_eq!(p["context"]["maximum"], json!(3));
        assert_eq!(p["log_format"]["enum"], json!(["auto", "syslog", "json", "plain"]));
        assert_eq!(p["since"], json!({"type": "string", "format": "date-time", "description": p["since"]["description"].clone()}));
        assert_eq!(search["required"], json!(["service", "pattern"]));
        assert!(specs[1].description.contains("default 50, up to 500"), "{}", specs[1].description);
        let page: Value = serde_json::from_str(&specs[2].input_schema).unwrap();
        assert_eq!(page["properties"]["limit"]["maximum"], json!(500));
        let out: Value = serde_json::from_str(specs[1].output_schema.as_deref().unwrap()).unwrap();
        assert_eq!(
            out["required"],
            json!([
                "service",
                "pattern",
                "matches",
                "returned",
                "total_matches",
                "files_searched",
                "files_matched",
                "bytes_scanned",
                "truncated",
                "partial",
                "duration_ms",
                "cached",
                "cursor"
            ])
        );
        assert_eq!(out["properties"]["matches"]["items"]["properties"]["line_number"]["minimum"], json!(1));
        assert_eq!(out["properties"]["window_start"]["format"], json!("date-time"));
    }

    #[test]
    fn search_errors_read_as_sentences_naming_the_argument() {
        let e = SearchError {
            kind: SearchErrorKind::NotFound,
            message: "no overflow \"x\" in this session (references are valid only in the session that produced them)".into(),
            field: Some("reference".into()),
        };
        let t = failed_text(search_error(ReadSearchFile::NAME, &e, Some("Run the search again.".into())));
        assert_eq!(
            t,
            "read_search_file failed (not found, argument `reference`): no overflow \"x\" in this session \
             (references are valid only in the session that produced them). Run the search again."
        );
        let e = SearchError { kind: SearchErrorKind::RateLimited, message: "retry in 3 s".into(), field: None };
        let t = failed_text(search_error(SearchLogs::NAME, &e, None));
        assert!(t.starts_with("search_logs failed (rate limited): retry in 3 s\nWait"), "{t}");
    }

    fn hit(file: &str, n: u64, text: &str) -> SearchMatch {
        SearchMatch { file: file.into(), line_number: n, timestamp: None, text: text.into(), before: vec![], after: vec![] }
    }

    /// A follow fixture answering `resp(req)` with cursor "lc1.next",
    /// recording each call's request, cursor and wait.
    type Calls = std::rc::Rc<std::cell::RefCell<Vec<(SearchRequest, Option<String>, u32)>>>;
    fn follow_host(host: TestHost, resp: impl Fn(&SearchRequest) -> Result<SearchResponse, SearchError> + 'static) -> (TestHost, Calls) {
        let calls: Calls = Default::default();
        let seen = calls.clone();
        let host = host.on_follow(move |req, cursor, wait| {
            seen.borrow_mut().push((req.clone(), cursor.map(str::to_string), wait));
            resp(req).map(|response| FollowResponse { response, cursor: "lc1.next".into() })
        });
        (host, calls)
    }

    fn one_hit(req: &SearchRequest) -> Result<SearchResponse, SearchError> {
        Ok(SearchResponse {
            matches: vec![hit("/var/log/p.log", 3, &format!("{} here", req.pattern))],
            total_matches: 1,
            files_searched: 2,
            files_matched: 1,
            bytes_scanned: 100,
            duration_ms: 1,
            ..SearchResponse::default()
        })
    }

    /// The whole tool natively: the test host answers the search import,
    /// records the request (limits from the call context), captures the log.
    #[test]
    fn search_logs_runs_natively_against_a_fixture() {
        let limits = SearchLimits { default_max_results: 7, max_results_cap: 50, max_context_lines: 2 };
        let (host, calls) = follow_host(TestHost::new().limits(limits), one_hit);
        let r = host.call_plugin::<SearchTools>("search_logs", json!({"service": "payments", "pattern": "timeout"})).unwrap();
        assert!(!r.is_error, "{}", TestHost::text(&r));
        assert!(TestHost::text(&r).contains("3:timeout here"), "{}", TestHost::text(&r));
        let s = TestHost::structured(&r).unwrap();
        assert_eq!((s["returned"].clone(), s["matches"][0]["line_number"].clone()), (json!(1), json!(3)));
        let (req, cursor, wait) = calls.borrow()[0].clone();
        assert_eq!((req.service.as_str(), req.max_results, cursor, wait), ("payments", 7, None, 0));
        assert!(host.logs()[0].message.starts_with("search_logs request=1 service=payments"));
        // An unknown service: the host's refusal plus the valid names.
        let (host, calls) = follow_host(TestHost::new(), |_| {
            Err(SearchError { kind: SearchErrorKind::InvalidRequest, message: "unknown service 'x'".into(), field: Some("service".into()) })
        });
        let host = host.services(vec![ServiceInfo {
            name: "payments".into(),
            description: String::new(),
            format: "json".into(),
            file_count: 1,
            total_bytes: 1,
            earliest: None,
            latest: None,
        }]);
        let r = host.call::<SearchLogs>(json!({"service": "x", "pattern": "p"})).unwrap();
        assert!(r.is_error);
        assert_eq!(
            TestHost::text(&r),
            "search_logs failed (invalid request, argument `service`): unknown service 'x'. Valid services: payments."
        );
        // Two windows: refused before any search.
        let r = host.call::<SearchLogs>(json!({"service": "x", "pattern": "p", "hours_back": 1, "minutes_back": 5})).unwrap();
        assert!(
            TestHost::text(&r).starts_with("search_logs: invalid argument $.hours_back: give one time window"),
            "{}",
            TestHost::text(&r)
        );
        assert_eq!(calls.borrow().len(), 1);
    }

    /// Every answer carries a cursor (structured, and the text's last line
    /// says how to go on); after_cursor and wait_ms reach the host.
    #[test]
    fn search_logs_follows_with_a_cursor() {
        let (host, calls) = follow_host(TestHost::new(), one_hit);
        let r = host.call::<SearchLogs>(json!({"service": "p", "pattern": "x"})).unwrap();
        let text = TestHost::text(&r);
        assert_eq!(TestHost::structured(&r).unwrap()["cursor"], json!("lc1.next"));
        assert!(
            text.trim_end().lines().last().unwrap().contains("after_cursor=\"lc1.next\""),
            "the last line tells how to continue: {text}"
        );
        host.call::<SearchLogs>(json!({"service": "p", "pattern": "x", "after_cursor": "lc1.prev", "wait_ms": 20000})).unwrap();
        assert_eq!(calls.borrow()[1].1.as_deref(), Some("lc1.prev"));
        assert_eq!(calls.borrow()[1].2, 20000);
        // Nothing new: said so, not "try a broader pattern".
        let (host, _) = follow_host(TestHost::new(), |_| Ok(SearchResponse::default()));
        let r = host.call::<SearchLogs>(json!({"service": "p", "pattern": "x", "after_cursor": "lc1.prev"})).unwrap();
        assert!(TestHost::text(&r).contains("No new matching lines since after_cursor."), "{}", TestHost::text(&r));
        // A bad cursor names the tool's argument.
        let (host, _) = follow_host(TestHost::new(), |_| {
            Err(SearchError { kind: SearchErrorKind::InvalidRequest, message: "not a cursor".into(), field: Some("cursor".into()) })
        });
        let r = host.call::<SearchLogs>(json!({"service": "p", "pattern": "x", "after_cursor": "zzz"})).unwrap();
        assert!(TestHost::text(&r).starts_with("search_logs failed (invalid request, argument `after_cursor`)"), "{}", TestHost::text(&r));
        // A cursor too long for the budget: the last line points to it.
        let host = TestHost::new()
            .on_follow(|req, _, _| one_hit(req).map(|response| FollowResponse { response, cursor: format!("lc1.{}", "x".repeat(2000)) }));
        let r = host.call::<SearchLogs>(json!({"service": "p", "pattern": "x", "budget_tokens": 300})).unwrap();
        let text = TestHost::text(&r);
        assert!(
            text.trim_end().ends_with("after_cursor set to structuredContent.cursor (2004 characters; add wait_ms to wait for them)"),
            "{text}"
        );
        assert!(text.chars().count() <= 300 * 4, "{}", text.chars().count());
        // wait_ms is bounded by the schema (the host validates arguments).
        let spec = &TestHost::new().list::<SearchTools>()[1];
        let input: Value = serde_json::from_str(&spec.input_schema).unwrap();
        assert_eq!(
            (input["properties"]["wait_ms"]["minimum"].clone(), input["properties"]["wait_ms"]["maximum"].clone()),
            (json!(0), json!(600000))
        );
        assert_eq!(input["properties"]["after_cursor"]["type"], json!("string"));
    }

    #[test]
    fn structured_output_has_every_required_field() {
        let out = SearchOutput {
            service: "s".into(),
            pattern: "p".into(),
            matches: vec![],
            returned: 0,
            total_matches: 0,
            files_searched: 0,
            files_matched: 0,
            bytes_scanned: 0,
            truncated: false,
            partial: false,
            partial_reason: None,
            duration_ms: 0,
            cached: false,
            window_start: None,
            window_end: None,
            overflow: None,
            cursor: "lc1.x".into(),
        };
        let v = serde_json::to_value(&out).unwrap();
        let schema = logai_plugin_sdk::schema_of::<SearchOutput>(logai_plugin_sdk::schemars::generate::Contract::Serialize);
        for r in schema["required"].as_array().unwrap() {
            assert!(v.get(r.as_str().unwrap()).is_some(), "missing {r}");
        }
        for k in v.as_object().unwrap().keys() {
            assert!(schema["properties"].get(k).is_some(), "undeclared {k}");
        }
    }
}
