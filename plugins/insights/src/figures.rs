//! The figures `get_insights` answers with, computed from two snapshots of
//! the host's `metrics` import: the window's (`read_window`: counters and
//! histograms of the last N minutes) and the current one (`read`: gauges).
//! Pure, so it is unit-tested natively.

use std::collections::BTreeMap;

use logai_plugin_sdk::metrics::names::{self, label, Cached, PermitOutcome, PermitScope};
use logai_plugin_sdk::metrics::{Histogram, Snapshot};
use logai_plugin_sdk::schemars::{self, JsonSchema};
use serde::Serialize;

/// What `get_insights` returns (its output schema).
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct Insights {
    /// The window asked for: `1h`, `6h` or `24h`.
    pub window: String,
    /// The window in minutes. It starts at a time bucket's start (1-minute
    /// buckets up to 2 h, 5-minute beyond), so it covers up to one bucket less.
    pub minutes: u32,
    /// `all_sessions` (shared through Redis) or `this_session` (no Redis,
    /// or Redis unreachable: only this session's own calls are counted).
    pub scope: String,
    /// Per service (only services the caller may search), slowest (p95) first.
    pub services: Vec<ServiceFigures>,
    /// The service with the highest p95 search latency, if any searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_service: Option<String>,
    /// Errors in the window, all kinds.
    pub errors_total: u64,
    /// Errors in the window by kind (`invalid_request`, `busy`, `rate_limited`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The shared cache in the window.
    pub cache: CacheFigures,
    /// Search permits now.
    pub permits: PermitFigures,
    /// Calls refused in the window.
    pub refusals: Refusals,
}

/// One service's searches in the window.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct ServiceFigures {
    pub service: String,
    /// Searches answered.
    pub searches: u64,
    /// Of which answered from the cache.
    pub cached: u64,
    /// Latency percentiles (ms), estimated from histogram buckets (linear within a bucket).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Mean latency (ms), exact.
    pub mean_ms: f64,
    /// Permit requests refused as busy.
    pub busy: u64,
}

/// Cache lookups in the window.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct CacheFigures {
    pub hits: u64,
    pub misses: u64,
    /// `hits / (hits + misses)`; left out when there was no lookup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_rate: Option<f64>,
}

/// Search permits at the time of the call.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct PermitFigures {
    /// Held now, all services.
    pub in_use: u64,
    /// The global limit.
    pub limit: u64,
    /// Searches waiting for one.
    pub queued: u64,
    /// Held now, per service (the caller's services).
    pub in_use_by_service: BTreeMap<String, u64>,
}

/// Calls refused in the window.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct Refusals {
    /// Permit requests refused because every permit stayed taken.
    pub busy: u64,
    /// Calls refused by the per-user rate limit.
    pub rate_limited: u64,
}

/// The `q` quantile (0..=1) of a histogram, as Prometheus'
/// `histogram_quantile` does: find the bucket holding the rank `q × count`
/// and interpolate linearly between its bounds (0 below the first). A rank
/// beyond the last finite bound gives that bound. `None` without data.
pub fn quantile(q: f64, h: &Histogram) -> Option<f64> {
    if h.count == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * h.count as f64;
    let mut below = 0u64;
    for (i, (&bound, &cum)) in h.bucket_bounds.iter().zip(&h.bucket_counts).enumerate() {
        if cum as f64 >= rank && cum > below {
            let lower = if i == 0 { 0.0 } else { h.bucket_bounds[i - 1] };
            let frac = (rank - below as f64) / (cum - below) as f64;
            return Some(lower + (bound - lower) * frac.clamp(0.0, 1.0));
        }
        below = cum;
    }
    h.bucket_bounds.last().copied()
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Sum of counter `name` over the series whose labels pass `keep`.
fn sum(snap: &Snapshot, name: &str, keep: impl Fn(&[(String, String)]) -> bool) -> u64 {
    let total: f64 = snap.counters.iter().filter(|c| c.name == name && keep(&c.labels)).map(|c| c.value).sum();
    total.round().max(0.0) as u64
}

fn gauge(snap: &Snapshot, name: &str, keep: impl Fn(&[(String, String)]) -> bool) -> u64 {
    let total: f64 = snap.gauges.iter().filter(|g| g.name == name && keep(&g.labels)).map(|g| g.value).sum();
    total.round().max(0.0) as u64
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn service_figures(window: &Snapshot, service: &str) -> ServiceFigures {
    let of = |l: &[(String, String)]| label(l, label::SERVICE) == Some(service);
    let hist = window.histograms.iter().find(|h| h.name == names::SEARCH_DURATION_MS && of(&h.labels));
    let q = |q: f64| hist.and_then(|h| quantile(q, h)).map(round2).unwrap_or(0.0);
    ServiceFigures {
        service: service.to_string(),
        searches: sum(window, names::SEARCHES_TOTAL, of),
        cached: sum(window, names::SEARCHES_TOTAL, |l| of(l) && label(l, label::CACHED) == Some(Cached::Yes.as_str())),
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        mean_ms: hist.filter(|h| h.count > 0).map(|h| round2(h.sum / h.count as f64)).unwrap_or(0.0),
        busy: sum(window, names::PERMITS_TOTAL, |l| of(l) && label(l, label::OUTCOME) == Some(PermitOutcome::Busy.as_str())),
    }
}

/// The figures of `window` (the last `minutes`) and `now` (current
/// gauges), for `only` one service or all of them.
pub fn compute(label_window: &str, minutes: u32, window: &Snapshot, now: &Snapshot, only: Option<&str>) -> Insights {
    let mut names_seen: Vec<&str> = (window.counters.iter().map(|c| (c.name.as_str(), &c.labels)))
        .chain(window.histograms.iter().map(|h| (h.name.as_str(), &h.labels)))
        .filter(|(n, _)| *n == names::SEARCHES_TOTAL || *n == names::SEARCH_DURATION_MS || *n == names::PERMITS_TOTAL)
        .filter_map(|(_, l)| label(l, label::SERVICE))
        .filter(|s| only.is_none_or(|o| o == *s))
        .collect();
    names_seen.sort_unstable();
    names_seen.dedup();
    let mut services: Vec<ServiceFigures> = names_seen.into_iter().map(|s| service_figures(window, s)).collect();
    services.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms).then_with(|| a.service.cmp(&b.service)));
    let slowest_service = services.iter().find(|s| s.searches > 0).map(|s| s.service.clone());

    let mut errors_by_kind = BTreeMap::new();
    for c in window.counters.iter().filter(|c| c.name == names::ERRORS_TOTAL) {
        let kind = label(&c.labels, label::KIND).unwrap_or("unknown").to_string();
        *errors_by_kind.entry(kind).or_insert(0) += c.value.round().max(0.0) as u64;
    }
    errors_by_kind.retain(|_, n| *n > 0);
    let (hits, misses) = (sum(window, names::CACHE_HITS_TOTAL, |_| true), sum(window, names::CACHE_MISSES_TOTAL, |_| true));
    let global = |l: &[(String, String)]| label(l, label::SCOPE) == Some(PermitScope::Global.as_str());
    let mut in_use_by_service = BTreeMap::new();
    for g in now.gauges.iter().filter(|g| g.name == names::PERMITS_IN_USE) {
        if let Some(s) = label(&g.labels, label::SERVICE).filter(|s| only.is_none_or(|o| o == *s)) {
            in_use_by_service.insert(s.to_string(), g.value.round().max(0.0) as u64);
        }
    }
    Insights {
        window: label_window.to_string(),
        minutes,
        scope: if window.source == "redis" { "all_sessions" } else { "this_session" }.to_string(),
        slowest_service,
        errors_total: errors_by_kind.values().sum(),
        errors_by_kind,
        cache: CacheFigures { hits, misses, hit_rate: (hits + misses > 0).then(|| round2(hits as f64 / (hits + misses) as f64)) },
        permits: PermitFigures {
            in_use: gauge(now, names::PERMITS_IN_USE, global),
            limit: gauge(now, names::PERMITS_LIMIT, global),
            queued: gauge(now, names::PERMIT_QUEUE_LENGTH, |_| true),
            in_use_by_service,
        },
        refusals: Refusals {
            busy: sum(window, names::PERMITS_TOTAL, |l| label(l, label::OUTCOME) == Some(PermitOutcome::Busy.as_str())),
            rate_limited: sum(window, names::RATE_LIMITED_TOTAL, |_| true),
        },
        services,
    }
}

/// The short text for the model.
pub fn text(i: &Insights) -> String {
    let scope = if i.scope == "all_sessions" {
        "all sessions".to_string()
    } else {
        "this session only (no shared metrics: Redis is not configured or not reachable)".to_string()
    };
    let mut out = format!("Last {}, {scope}:\n", i.window);
    if i.services.is_empty() {
        out.push_str("- no searches\n");
    }
    for s in i.services.iter().take(10) {
        out.push_str(&format!(
            "- {}: {} searches ({} cached), p50 {} ms, p95 {} ms, p99 {} ms\n",
            s.service, s.searches, s.cached, s.p50_ms, s.p95_ms, s.p99_ms
        ));
    }
    if let Some(s) = &i.slowest_service {
        out.push_str(&format!("Slowest (p95): {s}.\n"));
    }
    let kinds: Vec<String> = i.errors_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.push_str(&format!(
        "Errors: {}{}.\n",
        i.errors_total,
        if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) }
    ));
    match i.cache.hit_rate {
        Some(r) => out.push_str(&format!("Cache: {:.0}% hits ({} of {}).\n", r * 100.0, i.cache.hits, i.cache.hits + i.cache.misses)),
        None => out.push_str("Cache: no lookups.\n"),
    }
    out.push_str(&format!(
        "Permits now: {} of {} in use, {} queued. Refused: {} busy, {} rate-limited.",
        i.permits.in_use, i.permits.limit, i.permits.queued, i.refusals.busy, i.refusals.rate_limited
    ));
    out
}
