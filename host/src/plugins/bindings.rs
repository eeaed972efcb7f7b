//! Host bindings generated from `plugins/sdk/wit/plugin.wit` (the SDK carries the one copy), and conversions between
//! the generated types and the host's own (`search::api`, `coord`, `call`).

pub(crate) mod tool {
    wasmtime::component::bindgen!({
        path: "../plugins/sdk/wit",
        world: "tool-plugin",
        imports: {
            "logai:plugin/search": async,
            "logai:plugin/metrics": async,
        },
        exports: { default: async },
    });
}

pub(crate) mod exporter {
    wasmtime::component::bindgen!({
        path: "../plugins/sdk/wit",
        world: "exporter-plugin",
        exports: { default: async },
        with: {
            "logai:plugin/log": super::tool::logai::plugin::log,
            "logai:plugin/metrics": super::tool::logai::plugin::metrics,
        },
    });
}

use crate::coord::{CounterValue, GaugeValue, HistogramValue, MetricsSnapshot};
use crate::search::api;
use tool::logai::plugin::metrics as wm;
use tool::logai::plugin::search as ws;

// ---- search: guest -> host ----

impl From<ws::SearchRequest> for api::SearchRequest {
    fn from(r: ws::SearchRequest) -> Self {
        api::SearchRequest {
            service: r.service,
            pattern: r.pattern,
            fixed_strings: r.fixed_strings,
            case_insensitive: r.case_insensitive,
            minutes_back: r.minutes_back,
            hours_back: r.hours_back,
            date: r.date,
            since: r.since,
            until: r.until,
            file_pattern: r.file_pattern,
            log_format: r.log_format,
            context: r.context,
            max_results: r.max_results,
        }
    }
}

// ---- search: host -> guest ----

fn context_line(c: api::ContextLine) -> ws::ContextLine {
    ws::ContextLine { line_number: c.line_number, text: c.text }
}

fn search_match(m: api::SearchMatch) -> ws::SearchMatch {
    ws::SearchMatch {
        file: m.file,
        line_number: m.line_number,
        timestamp: m.timestamp,
        text: m.text,
        before: m.before.into_iter().map(context_line).collect(),
        after: m.after.into_iter().map(context_line).collect(),
    }
}

impl From<api::SearchResponse> for ws::SearchResponse {
    fn from(r: api::SearchResponse) -> Self {
        ws::SearchResponse {
            matches: r.matches.into_iter().map(search_match).collect(),
            total_matches: r.total_matches,
            files_searched: r.files_searched,
            files_matched: r.files_matched,
            bytes_scanned: r.bytes_scanned,
            truncated: r.truncated,
            partial: r.partial,
            partial_reason: r.partial_reason,
            duration_ms: r.duration_ms,
            overflow: r.overflow.map(|o| ws::OverflowRef { reference: o.reference, total: o.total }),
            cached: r.cached,
            window_start: r.window_start,
            window_end: r.window_end,
        }
    }
}

impl From<api::ServiceInfo> for ws::ServiceInfo {
    fn from(s: api::ServiceInfo) -> Self {
        ws::ServiceInfo {
            name: s.name,
            description: s.description,
            format: s.format,
            file_count: s.file_count,
            total_bytes: s.total_bytes,
            earliest: s.earliest,
            latest: s.latest,
        }
    }
}

impl From<api::OverflowPage> for ws::OverflowPage {
    fn from(p: api::OverflowPage) -> Self {
        ws::OverflowPage { matches: p.matches.into_iter().map(search_match).collect(), offset: p.offset, total: p.total, eof: p.eof }
    }
}

impl From<api::SearchError> for ws::SearchError {
    fn from(e: api::SearchError) -> Self {
        let kind = match e.kind {
            api::SearchErrorKind::InvalidRequest => ws::SearchErrorKind::InvalidRequest,
            api::SearchErrorKind::Forbidden => ws::SearchErrorKind::Forbidden,
            api::SearchErrorKind::RateLimited => ws::SearchErrorKind::RateLimited,
            api::SearchErrorKind::Busy => ws::SearchErrorKind::Busy,
            api::SearchErrorKind::NotFound => ws::SearchErrorKind::NotFound,
            api::SearchErrorKind::Cancelled => ws::SearchErrorKind::Cancelled,
            api::SearchErrorKind::Internal => ws::SearchErrorKind::Internal,
        };
        ws::SearchError { kind, message: e.message, field: e.field }
    }
}

// ---- metrics: host -> guest ----

fn labels(l: Vec<(String, String)>) -> Vec<wm::Label> {
    l.into_iter().map(|(name, value)| wm::Label { name, value }).collect()
}

impl From<MetricsSnapshot> for wm::Snapshot {
    fn from(s: MetricsSnapshot) -> Self {
        wm::Snapshot {
            counters: s
                .counters
                .into_iter()
                .map(|c: CounterValue| wm::Counter { name: c.name, help: c.help, labels: labels(c.labels), value: c.value })
                .collect(),
            gauges: s
                .gauges
                .into_iter()
                .map(|g: GaugeValue| wm::Gauge { name: g.name, help: g.help, labels: labels(g.labels), value: g.value })
                .collect(),
            histograms: s
                .histograms
                .into_iter()
                .map(|h: HistogramValue| wm::Histogram {
                    name: h.name,
                    help: h.help,
                    labels: labels(h.labels),
                    bucket_bounds: h.bucket_bounds,
                    bucket_counts: h.bucket_counts,
                    sum: h.sum,
                    count: h.count,
                })
                .collect(),
            source: s.source,
        }
    }
}
