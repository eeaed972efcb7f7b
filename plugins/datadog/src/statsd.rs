//! DogStatsD: which metrics each event becomes, and the datagrams that carry them.
//!
//! Span events of known names (see `docs/telemetry.md`) are turned into the
//! `log_ai.*` metrics of [`names`]; error events count `log_ai.errors.total`;
//! metric events pass through (prefixed with `log_ai.` when they are not
//! already). Every metric is tagged `service:` (the log service) and
//! `tool:` when the event knows them; `env:` is a constant tag (see lib.rs).

use crate::model::{Event, Kind, MetricKind};

pub const PREFIX: &str = "log_ai.";
/// Datagrams stay below a typical MTU.
pub const MAX_DATAGRAM: usize = 1432;

/// The DogStatsD metric names (the 15 of the plan logai replaces, and the
/// exporter's own drop counter).
pub mod names {
    pub const SEARCH_TOTAL: &str = "log_ai.search.total";
    pub const SEARCH_DURATION_MS: &str = "log_ai.search.duration_ms";
    pub const SEARCH_RESULT_COUNT: &str = "log_ai.search.result_count";
    pub const SEARCH_FILES_MATCHED: &str = "log_ai.search.files_matched";
    pub const SEARCH_SLOW: &str = "log_ai.search.slow";
    pub const CACHE_HITS: &str = "log_ai.cache.hits";
    pub const CACHE_MISSES: &str = "log_ai.cache.misses";
    pub const CACHE_OPERATIONS: &str = "log_ai.cache.operations";
    pub const CACHE_DURATION_MS: &str = "log_ai.cache.duration_ms";
    pub const SEMAPHORE_ACTIVE_SEARCHES: &str = "log_ai.semaphore.active_searches";
    pub const SEMAPHORE_MAX_SEARCHES: &str = "log_ai.semaphore.max_searches";
    pub const SEMAPHORE_UTILIZATION_PCT: &str = "log_ai.semaphore.utilization_pct";
    pub const REDIS_OPERATIONS: &str = "log_ai.redis.operations";
    pub const REDIS_DURATION_MS: &str = "log_ai.redis.duration_ms";
    pub const ERRORS_TOTAL: &str = "log_ai.errors.total";
    /// Telemetry events the host or this exporter dropped (`reason`, `kind`).
    pub const TELEMETRY_DROPPED: &str = "log_ai.telemetry.dropped";

    /// The plan's 15, each sent whenever its event happens.
    pub const PLAN: [&str; 15] = [
        SEARCH_TOTAL,
        SEARCH_DURATION_MS,
        SEARCH_RESULT_COUNT,
        SEARCH_FILES_MATCHED,
        SEARCH_SLOW,
        CACHE_HITS,
        CACHE_MISSES,
        CACHE_OPERATIONS,
        CACHE_DURATION_MS,
        SEMAPHORE_ACTIVE_SEARCHES,
        SEMAPHORE_MAX_SEARCHES,
        SEMAPHORE_UTILIZATION_PCT,
        REDIS_OPERATIONS,
        REDIS_DURATION_MS,
        ERRORS_TOTAL,
    ];
}

/// Tag names.
pub mod tag {
    pub const SERVICE: &str = "service";
    pub const TOOL: &str = "tool";
    pub const ENV: &str = "env";
    pub const CACHED: &str = "cached";
    pub const OUTCOME: &str = "outcome";
    pub const OP: &str = "op";
    pub const SCOPE: &str = "scope";
    pub const KIND: &str = "kind";
    pub const REASON: &str = "reason";
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// `c`, `g`, `h`
    pub ty: &'static str,
    pub tags: Vec<(String, String)>,
}

fn m(name: &str, value: f64, ty: &'static str, tags: Vec<(String, String)>) -> Metric {
    Metric { name: name.to_string(), value, ty, tags }
}

/// The common tags of an event: `service:`, `tool:`, `cached:` when known.
fn base_tags(e: &Event) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for k in [tag::SERVICE, tag::TOOL, tag::CACHED] {
        if let Some(v) = e.attr(k) {
            if !v.is_empty() {
                tags.push((k.to_string(), v.to_string()));
            }
        }
    }
    tags
}

fn outcome(e: &Event) -> &str {
    if e.is_ok() {
        "ok"
    } else {
        &e.status
    }
}

/// The metrics one event stands for.
pub fn metrics_for(e: &Event) -> Vec<Metric> {
    match e.kind {
        Kind::Span => span_metrics(e),
        Kind::Error => {
            let tags = with(&base_tags(e), tag::KIND, if e.status.is_empty() { "error" } else { &e.status });
            vec![m(names::ERRORS_TOTAL, 1.0, "c", tags)]
        }
        Kind::Metric => e
            .metric
            .iter()
            .map(|p| {
                let name = if p.name.starts_with(PREFIX) { p.name.clone() } else { format!("{PREFIX}{}", p.name) };
                let ty = match p.kind {
                    MetricKind::Counter => "c",
                    MetricKind::Gauge => "g",
                    MetricKind::Histogram => "h",
                };
                Metric { name, value: p.value, ty, tags: p.tags.clone() }
            })
            .collect(),
    }
}

fn span_metrics(e: &Event) -> Vec<Metric> {
    let mut out = Vec::new();
    let ms = e.duration_us as f64 / 1000.0;
    let tags = base_tags(e);
    match e.name.as_str() {
        "search" => {
            out.push(m(names::SEARCH_TOTAL, 1.0, "c", with(&tags, tag::OUTCOME, outcome(e))));
            out.push(m(names::SEARCH_DURATION_MS, ms, "h", tags.clone()));
            if let Some(v) = e.attr_f64("files_matched") {
                out.push(m(names::SEARCH_FILES_MATCHED, v, "h", tags.clone()));
            }
            if let Some(v) = e.attr_f64("result_count") {
                out.push(m(names::SEARCH_RESULT_COUNT, v, "h", tags.clone()));
            }
            if e.attr_bool("slow") {
                out.push(m(names::SEARCH_SLOW, 1.0, "c", tags));
            }
        }
        "cache.lookup" | "cache.store" => {
            let op = if e.name == "cache.lookup" { "lookup" } else { "store" };
            if op == "lookup" {
                match e.attr("hit") {
                    Some("true") => out.push(m(names::CACHE_HITS, 1.0, "c", tags.clone())),
                    Some("false") => out.push(m(names::CACHE_MISSES, 1.0, "c", tags.clone())),
                    _ => {}
                }
            }
            out.push(m(names::CACHE_OPERATIONS, 1.0, "c", with(&tags, tag::OP, op)));
            out.push(m(names::CACHE_DURATION_MS, ms, "h", with(&tags, tag::OP, op)));
        }
        "redis" => {
            let tags = with(&with(&tags, tag::OP, e.attr("op").unwrap_or("unknown")), tag::OUTCOME, outcome(e));
            out.push(m(names::REDIS_DURATION_MS, ms, "h", tags.clone()));
            out.push(m(names::REDIS_OPERATIONS, 1.0, "c", tags));
        }
        "permit.acquire" => {
            let mut tags = tags;
            tags.retain(|(k, _)| k != tag::CACHED);
            if let Some(scope) = e.attr("scope") {
                tags.push((tag::SCOPE.into(), scope.into()));
            }
            let in_use = e.attr_f64("permits_in_use");
            let limit = e.attr_f64("permits_limit");
            if let Some(v) = in_use {
                out.push(m(names::SEMAPHORE_ACTIVE_SEARCHES, v, "g", tags.clone()));
            }
            if let Some(v) = limit {
                out.push(m(names::SEMAPHORE_MAX_SEARCHES, v, "g", tags.clone()));
            }
            if let (Some(u), Some(l)) = (in_use, limit) {
                if l > 0.0 {
                    out.push(m(names::SEMAPHORE_UTILIZATION_PCT, (u / l * 100.0).min(100.0), "g", tags));
                }
            }
        }
        _ => {}
    }
    out
}

fn with(tags: &[(String, String)], k: &str, v: &str) -> Vec<(String, String)> {
    let mut t = tags.to_vec();
    t.push((k.to_string(), v.to_string()));
    t
}

/// Metric names: ASCII alphanumerics, `_` and `.`.
fn clean_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// Tag parts may not hold the protocol's separators.
fn clean_tag(s: &str) -> String {
    s.chars().map(|c| if matches!(c, ',' | '|' | '#' | '\n' | '\r' | ' ') { '_' } else { c }).collect()
}

fn fmt_value(v: f64) -> String {
    if v.is_finite() {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    } else {
        "0".into()
    }
}

/// One DogStatsD line: `name:value|type|#k:v,k:v`.
pub fn line(metric: &Metric, constant_tags: &[(String, String)]) -> String {
    let mut s = format!("{}:{}|{}", clean_name(&metric.name), fmt_value(metric.value), metric.ty);
    let mut first = true;
    for (k, v) in metric.tags.iter().chain(constant_tags.iter()) {
        s.push_str(if first { "|#" } else { "," });
        first = false;
        s.push_str(&clean_tag(k));
        if !v.is_empty() {
            s.push(':');
            s.push_str(&clean_tag(v));
        }
    }
    s
}

/// Pack lines into newline-separated datagrams no larger than `MAX_DATAGRAM`
/// (a longer single line goes alone).
pub fn datagrams(lines: &[String]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for l in lines {
        if !cur.is_empty() && cur.len() + 1 + l.len() > MAX_DATAGRAM {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(b'\n');
        }
        cur.extend_from_slice(l.as_bytes());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn span(name: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: Kind::Span,
            timestamp_ms: 1,
            name: name.into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            parent_span_id: None,
            duration_us: 12_500,
            status: "ok".into(),
            attributes: attrs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            message: None,
            metric: None,
            breadcrumbs: Vec::new(),
        }
    }

    #[test]
    fn search_span_gives_search_metrics() {
        let e = span(
            "search",
            &[
                ("service", "nginx"),
                ("tool", "search_logs"),
                ("cached", "false"),
                ("files_matched", "3"),
                ("result_count", "42"),
                ("slow", "true"),
            ],
        );
        let lines: Vec<String> = metrics_for(&e).iter().map(|m| line(m, &[])).collect();
        assert!(lines.contains(&"log_ai.search.duration_ms:12.5|h|#service:nginx,tool:search_logs,cached:false".to_string()), "{lines:?}");
        assert!(lines.contains(&"log_ai.search.files_matched:3|h|#service:nginx,tool:search_logs,cached:false".to_string()));
        assert!(lines.contains(&"log_ai.search.result_count:42|h|#service:nginx,tool:search_logs,cached:false".to_string()));
        assert!(lines.contains(&"log_ai.search.total:1|c|#service:nginx,tool:search_logs,cached:false,outcome:ok".to_string()));
        assert!(lines.contains(&"log_ai.search.slow:1|c|#service:nginx,tool:search_logs,cached:false".to_string()));
    }

    #[test]
    fn permit_span_gives_semaphore_gauges() {
        let e = span("permit.acquire", &[("service", "nginx"), ("scope", "global"), ("permits_in_use", "5"), ("permits_limit", "20")]);
        let lines: Vec<String> = metrics_for(&e).iter().map(|m| line(m, &[("env".into(), "prod".into())])).collect();
        assert_eq!(
            lines,
            vec![
                "log_ai.semaphore.active_searches:5|g|#service:nginx,scope:global,env:prod",
                "log_ai.semaphore.max_searches:20|g|#service:nginx,scope:global,env:prod",
                "log_ai.semaphore.utilization_pct:25|g|#service:nginx,scope:global,env:prod",
            ]
        );
    }

    #[test]
    fn tags_are_cleaned_and_datagrams_bounded() {
        let metric = Metric { name: "log_ai.x y".into(), value: 1.0, ty: "c", tags: vec![("service".into(), "a,b|c#d".into())] };
        assert_eq!(line(&metric, &[]), "log_ai.x_y:1|c|#service:a_b_c_d");
        let lines: Vec<String> = (0..100).map(|i| format!("log_ai.search.total:{i}|c|#service:nginx")).collect();
        let grams = datagrams(&lines);
        assert!(grams.len() > 1);
        assert!(grams.iter().all(|g| g.len() <= MAX_DATAGRAM));
        let joined: Vec<String> =
            grams.iter().flat_map(|g| String::from_utf8(g.clone()).unwrap().lines().map(str::to_string).collect::<Vec<_>>()).collect();
        assert_eq!(joined, lines);
    }
}
