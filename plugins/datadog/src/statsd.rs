//! DogStatsD: which metrics each event becomes, and the datagrams that carry them.
//!
//! Span events of known names (see `docs/telemetry.md`) are turned into the
//! `log_ai.*` metrics; error events count `log_ai.errors.total`; metric
//! events pass through (prefixed with `log_ai.` when they are not already).

use crate::model::{Event, Kind, MetricKind};

pub const PREFIX: &str = "log_ai.";
/// Datagrams stay below a typical MTU.
pub const MAX_DATAGRAM: usize = 1432;

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// `c`, `g`, `h`
    pub ty: &'static str,
    pub tags: Vec<(String, String)>,
}

fn m(name: &str, value: f64, ty: &'static str, tags: Vec<(String, String)>) -> Metric {
    Metric { name: format!("{PREFIX}{name}"), value, ty, tags }
}

/// The common tags of an event: `service:`, `tool:`, `cached:` when known.
fn base_tags(e: &Event) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for k in ["service", "tool", "cached"] {
        if let Some(v) = e.attr(k) {
            if !v.is_empty() {
                tags.push((k.to_string(), v.to_string()));
            }
        }
    }
    tags
}

/// The metrics one event stands for.
pub fn metrics_for(e: &Event) -> Vec<Metric> {
    let mut out = Vec::new();
    let ms = e.duration_us as f64 / 1000.0;
    match e.kind {
        Kind::Span => match e.name.as_str() {
            "search" => {
                let tags = base_tags(e);
                out.push(m("search.total", 1.0, "c", with(&tags, "outcome", if e.is_ok() { "ok" } else { &e.status })));
                out.push(m("search.duration_ms", ms, "h", tags.clone()));
                if let Some(v) = e.attr_f64("files_matched") {
                    out.push(m("search.files_matched", v, "h", tags.clone()));
                }
                if let Some(v) = e.attr_f64("result_count") {
                    out.push(m("search.result_count", v, "h", tags.clone()));
                }
                if e.attr_bool("slow") {
                    out.push(m("search.slow", 1.0, "c", tags));
                }
            }
            "cache.lookup" | "cache.store" => {
                let op = if e.name == "cache.lookup" { "lookup" } else { "store" };
                let tags = base_tags(e);
                if op == "lookup" {
                    match e.attr("hit") {
                        Some("true") => out.push(m("cache.hits", 1.0, "c", tags.clone())),
                        Some("false") => out.push(m("cache.misses", 1.0, "c", tags.clone())),
                        _ => {}
                    }
                }
                out.push(m("cache.operations", 1.0, "c", with(&tags, "op", op)));
                out.push(m("cache.duration_ms", ms, "h", with(&tags, "op", op)));
            }
            "redis" => {
                let mut tags = Vec::new();
                tags.push(("op".to_string(), e.attr("op").unwrap_or("unknown").to_string()));
                tags.push(("outcome".to_string(), if e.is_ok() { "ok".to_string() } else { e.status.clone() }));
                out.push(m("redis.duration_ms", ms, "h", tags.clone()));
                out.push(m("redis.operations", 1.0, "c", tags));
            }
            "permit.acquire" => {
                let mut tags = base_tags(e);
                tags.retain(|(k, _)| k == "service");
                if let Some(scope) = e.attr("scope") {
                    tags.push(("scope".into(), scope.into()));
                }
                let in_use = e.attr_f64("permits_in_use");
                let limit = e.attr_f64("permits_limit");
                if let Some(v) = in_use {
                    out.push(m("semaphore.active_searches", v, "g", tags.clone()));
                }
                if let Some(v) = limit {
                    out.push(m("semaphore.max_searches", v, "g", tags.clone()));
                }
                if let (Some(u), Some(l)) = (in_use, limit) {
                    if l > 0.0 {
                        out.push(m("semaphore.utilization_pct", (u / l * 100.0).min(100.0), "g", tags));
                    }
                }
            }
            _ => {}
        },
        Kind::Error => {
            let tags = with(&base_tags(e), "kind", if e.status.is_empty() { "error" } else { &e.status });
            out.push(m("errors.total", 1.0, "c", tags));
        }
        Kind::Metric => {
            if let Some(p) = &e.metric {
                let name = if p.name.starts_with(PREFIX) { p.name.clone() } else { format!("{PREFIX}{}", p.name) };
                let ty = match p.kind {
                    MetricKind::Counter => "c",
                    MetricKind::Gauge => "g",
                    MetricKind::Histogram => "h",
                };
                out.push(Metric { name, value: p.value, ty, tags: p.tags.clone() });
            }
        }
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
