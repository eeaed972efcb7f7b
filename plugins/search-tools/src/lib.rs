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

mod args;
mod render;
mod schema;

use logai_plugin_sdk::bindings::logai::plugin::search as host;
use logai_plugin_sdk::{CallContext, CallResult, ContentBlock, Context, Plugin, ToolAnnotations, ToolError, ToolSpec};

use render::{Match, Overflow, PageOutput, SearchFlags, SearchOutput, Service, ServicesOutput};
use schema::Limits;

struct SearchTools;

logai_plugin_sdk::export_plugin!(SearchTools);

const LIST_SERVICES: &str = "list_services";
const SEARCH_LOGS: &str = "search_logs";
const READ_SEARCH_FILE: &str = "read_search_file";

fn read_only() -> Option<ToolAnnotations> {
    Some(ToolAnnotations {
        read_only_hint: Some(true),
        destructive_hint: Some(false),
        idempotent_hint: Some(true),
        open_world_hint: Some(false),
    })
}

pub(crate) fn specs(limits: &Limits) -> Vec<(String, Option<String>, String, serde_json::Value, serde_json::Value)> {
    vec![
        (
            LIST_SERVICES.into(),
            Some("List log services".into()),
            "List the services whose logs can be searched on this machine: name, description, log format, \
             number of files, total size and the time range the logs cover (earliest and latest timestamps). \
             Call this first: search_logs needs a service name from this list, and the time range tells you \
             which dates and windows hold data."
                .into(),
            schema::list_services_input(),
            schema::list_services_output(),
        ),
        (
            SEARCH_LOGS.into(),
            Some("Search logs".into()),
            format!(
                "Search one service's log files (rotated and gzipped ones included) for lines matching a regex \
                 (Rust regex syntax) or, with fixed_strings=true, a literal text. Narrow it with ONE time window \
                 (minutes_back, hours_back, date=YYYY-MM-DD, or since/until as RFC 3339), a file_pattern glob, \
                 and ask for context lines around each match. Results come in time order (older files first, \
                 line order within a file): a summary, then rg-style lines `LINE:text` for matches and `LINE-text` \
                 for context, grouped by file. At most max_results matches (default {}, up to {}) are returned; \
                 when there are more, the answer says so and gives an overflow reference to page through all \
                 of them with read_search_file. Unstamped lines (stack traces) belong to the stamped line above \
                 them for time windows.",
                limits.default_max_results, limits.max_results_cap
            ),
            schema::search_logs_input(limits),
            schema::search_logs_output(),
        ),
        (
            READ_SEARCH_FILE.into(),
            Some("Read more search results".into()),
            "Page through every match of an earlier search_logs call whose answer was truncated. Pass the \
             overflow reference it gave and an offset (the answer's next_offset to continue where it stopped); \
             returns up to `limit` matches in the same form as search_logs, and says whether more remain. \
             References belong to this session only and are not file paths."
                .into(),
            schema::read_search_file_input(limits),
            schema::read_search_file_output(),
        ),
    ]
}

impl Plugin for SearchTools {
    fn tools() -> Vec<ToolSpec> {
        let limits = Limits::from_env();
        specs(&limits)
            .into_iter()
            .map(|(name, title, description, input, output)| ToolSpec {
                name,
                title,
                description,
                input_schema: input.to_string(),
                output_schema: Some(output.to_string()),
                annotations: read_only(),
            })
            .collect()
    }

    fn call(name: &str, ctx: &Context) -> Result<CallResult, ToolError> {
        let limits = Limits::from_env();
        let arguments = ctx.raw_args().to_string();
        let context = ctx.call_context();
        match name {
            LIST_SERVICES => Ok(list_services(&arguments)),
            SEARCH_LOGS => Ok(search_logs(&arguments, &limits, context)),
            READ_SEARCH_FILE => Ok(read_search_file(&arguments, &limits)),
            other => Err(ToolError::UnknownTool(format!(
                "search-tools offers {LIST_SERVICES}, {SEARCH_LOGS} and {READ_SEARCH_FILE}, not '{other}'"
            ))),
        }
    }
}

fn text_result(text: String, structured: Option<serde_json::Value>, is_error: bool) -> CallResult {
    CallResult { content: vec![ContentBlock::Text(text)], structured_content: structured.map(|v| v.to_string()), is_error }
}

fn arg_error(tool: &str, e: args::ArgError) -> CallResult {
    text_result(format!("{tool}: invalid argument {}: {}", e.path, e.message), None, true)
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
fn search_error(tool: &str, e: &host::SearchError, extra: Option<String>) -> CallResult {
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
        K::Forbidden => Some("Only the service's configured log files can be searched; file_pattern filters those files by name."),
        K::Cancelled => Some("The call was cancelled."),
        _ => None,
    };
    if let Some(h) = hint {
        t.push('\n');
        t.push_str(h);
    }
    text_result(t, None, true)
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

fn list_services(arguments: &str) -> CallResult {
    if let Err(e) = args::parse_none(arguments) {
        return arg_error(LIST_SERVICES, e);
    }
    match host::list_services() {
        Ok(list) => {
            let out = services_output(list);
            let text = render::services_text(&out);
            text_result(text, Some(serde_json::to_value(&out).expect("serializable")), false)
        }
        Err(e) => search_error(LIST_SERVICES, &e, None),
    }
}

fn search_logs(arguments: &str, limits: &Limits, ctx: &CallContext) -> CallResult {
    let a = match args::parse_search(arguments, limits) {
        Ok(a) => a,
        Err(e) => return arg_error(SEARCH_LOGS, e),
    };
    if logai_plugin_sdk::cancelled() {
        return text_result(format!("{SEARCH_LOGS}: the call was cancelled before the search started"), None, true);
    }
    logai_plugin_sdk::log::debug(format!("search_logs request={} service={} pattern={:?}", ctx.request_id, a.service, a.pattern));
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
        log_format: a.log_format.clone(),
        context: a.context,
        max_results: a.max_results,
    };
    match host::search(&req) {
        Ok(r) => {
            let matches: Vec<Match> = r.matches.into_iter().map(convert_match).collect();
            let returned = matches.len() as u64;
            let overflow = r.overflow.map(|o| Overflow {
                next_offset: render::next_offset(r.total_matches, o.total, returned),
                reference: o.reference,
                total: o.total,
            });
            let out = SearchOutput {
                service: a.service.clone(),
                pattern: a.pattern.clone(),
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
            };
            let text = render::search_text(
                &out,
                &SearchFlags {
                    fixed_strings: a.fixed_strings,
                    case_insensitive: a.case_insensitive,
                    file_pattern: a.file_pattern.as_deref(),
                },
            );
            text_result(text, Some(serde_json::to_value(&out).expect("serializable")), false)
        }
        Err(e) => {
            let extra = if e.field.as_deref() == Some("service") && e.kind == host::SearchErrorKind::InvalidRequest {
                valid_services_note(&e.message)
            } else {
                None
            };
            search_error(SEARCH_LOGS, &e, extra)
        }
    }
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

fn read_search_file(arguments: &str, limits: &Limits) -> CallResult {
    let a = match args::parse_page(arguments, limits) {
        Ok(a) => a,
        Err(e) => return arg_error(READ_SEARCH_FILE, e),
    };
    match host::read_overflow(&a.reference, a.offset, a.limit) {
        Ok(p) => {
            let matches: Vec<Match> = p.matches.into_iter().map(convert_match).collect();
            let returned = matches.len() as u64;
            let out = PageOutput {
                reference: a.reference.clone(),
                offset: p.offset,
                returned,
                total: p.total,
                eof: p.eof,
                next_offset: if p.eof { None } else { Some(p.offset + returned) },
                matches,
            };
            let text = render::page_text(&out);
            text_result(text, Some(serde_json::to_value(&out).expect("serializable")), false)
        }
        Err(e) => {
            let extra = (e.kind == host::SearchErrorKind::NotFound).then(|| {
                "References come from a truncated search_logs answer in this same session (they are not file paths); run the search again to get a fresh one.".to_string()
            });
            search_error(READ_SEARCH_FILE, &e, extra)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_objects_with_no_extra_properties() {
        for (name, _, desc, input, output) in specs(&Limits::default()) {
            assert!(!desc.is_empty(), "{name}");
            assert_eq!(input["type"], "object", "{name}");
            assert_eq!(input["additionalProperties"], false, "{name}");
            assert_eq!(output["type"], "object", "{name}");
            assert_eq!(output["additionalProperties"], false, "{name}");
        }
    }

    #[test]
    fn search_errors_read_as_sentences_naming_the_argument() {
        let e = host::SearchError {
            kind: host::SearchErrorKind::NotFound,
            message: "no overflow \"x\" in this session (references are valid only in the session that produced them)".into(),
            field: Some("reference".into()),
        };
        let r = search_error(READ_SEARCH_FILE, &e, Some("Run the search again.".into()));
        assert!(r.is_error);
        let ContentBlock::Text(t) = &r.content[0] else { panic!("text block expected") };
        assert_eq!(
            t,
            "read_search_file failed (not found, argument `reference`): no overflow \"x\" in this session \
             (references are valid only in the session that produced them). Run the search again."
        );
        let e = host::SearchError { kind: host::SearchErrorKind::RateLimited, message: "retry in 3 s".into(), field: None };
        let r = search_error(SEARCH_LOGS, &e, None);
        let ContentBlock::Text(t) = &r.content[0] else { panic!("text block expected") };
        assert!(t.starts_with("search_logs failed (rate limited): retry in 3 s\nWait"), "{t}");
        assert!(r.structured_content.is_none());
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
        };
        let v = serde_json::to_value(&out).unwrap();
        let schema = schema::search_logs_output();
        for r in schema["required"].as_array().unwrap() {
            assert!(v.get(r.as_str().unwrap()).is_some(), "missing {r}");
        }
        for k in v.as_object().unwrap().keys() {
            assert!(schema["properties"].get(k).is_some(), "undeclared {k}");
        }
    }
}
