//! The tools' JSON Schemas (input and output), written for the model that
//! calls them. The host validates arguments against the input schemas before
//! the plugin runs; `args.rs` re-checks what a schema cannot say (one time
//! window at most, calendar dates, RFC 3339 stamps).

use serde_json::{json, Value};

/// Limits the schemas advertise. The host enforces its own caps as well
/// (`limits.max_results_cap`, `limits.max_context_lines`); the plugin reads
/// `LOGAI_MAX_RESULTS_CAP` / `LOGAI_MAX_CONTEXT_LINES` / `LOGAI_DEFAULT_MAX_RESULTS`
/// when the manifest grants them (`env = [...]`), and otherwise uses the
/// manifest defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub default_max_results: u32,
    pub max_results_cap: u32,
    pub max_context_lines: u32,
    pub default_page: u32,
    pub max_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { default_max_results: 100, max_results_cap: 1000, max_context_lines: 10, default_page: 100, max_page: 1000 }
    }
}

impl Limits {
    pub fn from_env() -> Self {
        fn get(name: &str) -> Option<u32> {
            std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).filter(|v| *v > 0)
        }
        let mut l = Limits::default();
        if let Some(v) = get("LOGAI_MAX_RESULTS_CAP") {
            l.max_results_cap = v;
            l.max_page = v;
        }
        if let Some(v) = get("LOGAI_MAX_CONTEXT_LINES") {
            l.max_context_lines = v;
        }
        if let Some(v) = get("LOGAI_DEFAULT_MAX_RESULTS") {
            l.default_max_results = v;
        }
        l.default_max_results = l.default_max_results.min(l.max_results_cap);
        l.default_page = l.default_page.min(l.max_page);
        l
    }
}

pub const LOG_FORMATS: [&str; 4] = ["auto", "syslog", "json", "plain"];

pub fn list_services_input() -> Value {
    json!({
        "type": "object",
        "properties": {},
        "additionalProperties": false
    })
}

pub fn list_services_output() -> Value {
    json!({
        "type": "object",
        "properties": {
            "services": {
                "type": "array",
                "description": "Every service that can be searched, in manifest order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "Pass this as `service` to search_logs."},
                        "description": {"type": "string"},
                        "format": {"type": "string", "description": "Log format: syslog, json, plain or auto."},
                        "file_count": {"type": "integer", "minimum": 0},
                        "total_bytes": {"type": "integer", "minimum": 0},
                        "earliest": {"type": "string", "format": "date-time", "description": "Earliest timestamp in the logs (RFC 3339), when known."},
                        "latest": {"type": "string", "format": "date-time", "description": "Latest timestamp in the logs (RFC 3339), when known."}
                    },
                    "required": ["name", "description", "format", "file_count", "total_bytes"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["services"],
        "additionalProperties": false
    })
}

pub fn search_logs_input(l: &Limits) -> Value {
    json!({
        "type": "object",
        "properties": {
            "service": {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "description": "Which service's logs to search, exactly as list_services names it (e.g. \"payments\")."
            },
            "pattern": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "What to look for: a Rust regex (e.g. \"timeout|timed out\", \"status=5\\\\d\\\\d\"), matched against each line. Set fixed_strings=true to search for the text literally."
            },
            "fixed_strings": {
                "type": "boolean",
                "default": false,
                "description": "Treat pattern as literal text, not a regex (like grep -F). Use it for text full of regex characters such as \"[ERROR]\" or \"a.b(c)\"."
            },
            "case_insensitive": {
                "type": "boolean",
                "default": false,
                "description": "Match regardless of letter case (like grep -i)."
            },
            "minutes_back": {
                "type": "integer",
                "minimum": 1,
                "maximum": 525600,
                "description": "Time window: only lines stamped within the last N minutes. Use at most ONE of minutes_back, hours_back, date, or since/until; none searches the whole history."
            },
            "hours_back": {
                "type": "integer",
                "minimum": 1,
                "maximum": 87600,
                "description": "Time window: only lines stamped within the last N hours. Use at most ONE of minutes_back, hours_back, date, or since/until."
            },
            "date": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                "description": "Time window: only lines stamped on this calendar day (YYYY-MM-DD, in the service's timezone). Use at most ONE of minutes_back, hours_back, date, or since/until."
            },
            "since": {
                "type": "string",
                "format": "date-time",
                "description": "Time window start, inclusive, RFC 3339 (e.g. \"2026-11-20T14:00:00Z\"). May be combined with until; not with minutes_back, hours_back or date."
            },
            "until": {
                "type": "string",
                "format": "date-time",
                "description": "Time window end, exclusive, RFC 3339 (e.g. \"2026-11-20T15:00:00Z\"). May be combined with since; not with minutes_back, hours_back or date."
            },
            "file_pattern": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "Only search the service's files whose name matches this glob (e.g. \"*.gz\", \"app.log*\"). It filters the service's configured files; it cannot reach other files."
            },
            "log_format": {
                "type": "string",
                "enum": LOG_FORMATS,
                "description": "How to read timestamps, overriding the service's configured format. Rarely needed."
            },
            "context": {
                "type": "integer",
                "minimum": 0,
                "maximum": l.max_context_lines,
                "default": 0,
                "description": format!("Lines of context to show before and after each match (like grep -C), 0 to {}.", l.max_context_lines)
            },
            "max_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": l.max_results_cap,
                "default": l.default_max_results,
                "description": format!("Matches returned in this answer (default {}, at most {}). When there are more, the answer says so and gives an overflow reference to page through the rest with read_search_file.", l.default_max_results, l.max_results_cap)
            }
        },
        "required": ["service", "pattern"],
        "additionalProperties": false
    })
}

fn context_line_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "line_number": {"type": "integer", "minimum": 1},
            "text": {"type": "string"}
        },
        "required": ["line_number", "text"],
        "additionalProperties": false
    })
}

fn match_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "file": {"type": "string", "description": "Absolute path of the log file."},
            "line_number": {"type": "integer", "minimum": 1, "description": "1-based line number in the (decompressed) file."},
            "timestamp": {"type": "string", "format": "date-time", "description": "When the line was logged (RFC 3339); for unstamped lines such as stack traces, the stamp of the entry they belong to. Absent when unknown."},
            "text": {"type": "string", "description": "The matching line."},
            "before": {"type": "array", "items": context_line_schema(), "description": "Context lines before the match, in order."},
            "after": {"type": "array", "items": context_line_schema(), "description": "Context lines after the match, in order."}
        },
        "required": ["file", "line_number", "text", "before", "after"],
        "additionalProperties": false
    })
}

fn overflow_schema() -> Value {
    json!({
        "type": "object",
        "description": "Present when truncated: where every match of this search can be paged with read_search_file.",
        "properties": {
            "reference": {"type": "string", "description": "Pass as `reference` to read_search_file."},
            "total": {"type": "integer", "minimum": 0, "description": "Matches held by the overflow."},
            "next_offset": {"type": "integer", "minimum": 0, "description": "Pass as `offset` to read_search_file to continue after the matches shown."}
        },
        "required": ["reference", "total", "next_offset"],
        "additionalProperties": false
    })
}

pub fn search_logs_output() -> Value {
    json!({
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "pattern": {"type": "string"},
            "matches": {"type": "array", "items": match_schema(), "description": "Matches in time order of files, line order within a file."},
            "returned": {"type": "integer", "minimum": 0, "description": "Matches in `matches`."},
            "total_matches": {"type": "integer", "minimum": 0, "description": "All matches found (inline and overflow)."},
            "files_searched": {"type": "integer", "minimum": 0},
            "files_matched": {"type": "integer", "minimum": 0},
            "bytes_scanned": {"type": "integer", "minimum": 0},
            "truncated": {"type": "boolean", "description": "More matches exist than were returned inline; see `overflow`."},
            "partial": {"type": "boolean", "description": "The search stopped early (deadline or cancellation); counts cover what was searched."},
            "partial_reason": {"type": "string"},
            "duration_ms": {"type": "integer", "minimum": 0},
            "cached": {"type": "boolean", "description": "The answer came from the shared result cache."},
            "window_start": {"type": "string", "format": "date-time", "description": "Effective window start (inclusive), when a window was given."},
            "window_end": {"type": "string", "format": "date-time", "description": "Effective window end (exclusive), when a window was given."},
            "overflow": overflow_schema()
        },
        "required": ["service", "pattern", "matches", "returned", "total_matches", "files_searched", "files_matched", "bytes_scanned", "truncated", "partial", "duration_ms", "cached"],
        "additionalProperties": false
    })
}

pub fn read_search_file_input(l: &Limits) -> Value {
    json!({
        "type": "object",
        "properties": {
            "reference": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "The overflow reference a truncated search_logs answer gave (overflow.reference). It is not a file path."
            },
            "offset": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Index of the first match to return (0-based; search_logs gives overflow.next_offset to continue after what it showed)."
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": l.max_page,
                "default": l.default_page,
                "description": format!("How many matches to return (default {}, at most {}).", l.default_page, l.max_page)
            }
        },
        "required": ["reference"],
        "additionalProperties": false
    })
}

pub fn read_search_file_output() -> Value {
    json!({
        "type": "object",
        "properties": {
            "reference": {"type": "string"},
            "offset": {"type": "integer", "minimum": 0},
            "returned": {"type": "integer", "minimum": 0},
            "total": {"type": "integer", "minimum": 0, "description": "Matches held by the overflow."},
            "eof": {"type": "boolean", "description": "This page reaches the end of the overflow."},
            "next_offset": {"type": "integer", "minimum": 0, "description": "Offset of the next page; absent at the end."},
            "matches": {"type": "array", "items": match_schema()}
        },
        "required": ["reference", "offset", "returned", "total", "eof", "matches"],
        "additionalProperties": false
    })
}
