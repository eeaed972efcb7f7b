//! logai's insights tool for agents: `get_insights` answers "what's the p95
//! search latency per service?", "errors in the last hour, by kind?",
//! "which service is slowest?", the cache hit rate, permits in use and
//! queued, busy and rate-limited refusals, over `1h`, `6h` or `24h`.
//!
//! It reads the host's `metrics` import only: `read_window` (the windowed
//! counters and histograms) and `read` (the gauges now). Both hold only the
//! services the caller may search. Without Redis the host's numbers are
//! this session's, and the answer says so (`scope = "this_session"`).

mod figures;

use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::{export_tools, metrics, Context, Error, SearchLimits, Structured, Tool, ToolSpec};
use serde::Deserialize;

pub use figures::{quantile, Insights};

/// A window to look back over.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Window {
    /// The last hour (1-minute buckets).
    #[default]
    #[serde(rename = "1h")]
    Hour,
    /// The last 6 hours (5-minute buckets).
    #[serde(rename = "6h")]
    SixHours,
    /// The last 24 hours (5-minute buckets).
    #[serde(rename = "24h")]
    Day,
}

impl Window {
    fn minutes(self) -> u32 {
        match self {
            Window::Hour => 60,
            Window::SixHours => 360,
            Window::Day => 1440,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::SixHours => "6h",
            Window::Day => "24h",
        }
    }
}

/// How logai's searches went recently: per service the searches, p50/p95/p99
/// and mean latency (ms) and the slowest service; errors by kind; the
/// cache hit rate; permits in use and queued now; busy and rate-limited
/// refusals. Across all sessions when they share Redis, else this session
/// only (the answer says which). Only services you may search are shown.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetInsights {
    /// How far back to look.
    #[serde(default)]
    window: Window,
    /// Only this service (as `list_services` names it).
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    service: Option<String>,
}

impl Tool for GetInsights {
    const NAME: &'static str = "get_insights";
    type Output = Structured<Insights>;
    fn call(self, _ctx: &Context) -> Result<Structured<Insights>, Error> {
        let window = metrics::read_window(self.window.minutes());
        let now = metrics::read();
        let insights = figures::compute(self.window.label(), self.window.minutes(), &window, &now, self.service.as_deref());
        Ok(Structured::new(figures::text(&insights), insights))
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Search insights").read_only()
    }
}

export_tools!(InsightsPlugin = GetInsights);

#[cfg(test)]
mod tests {
    use super::*;
    use logai_plugin_sdk::json;
    use logai_plugin_sdk::metrics::names;
    use logai_plugin_sdk::metrics::{Counter, Gauge, Histogram, Snapshot};
    use logai_plugin_sdk::testing::TestHost;

    const BOUNDS: &[f64] = &[1.0, 10.0, 100.0];

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn counter(name: &str, pairs: &[(&str, &str)], value: f64) -> Counter {
        Counter { name: name.into(), help: String::new(), labels: labels(pairs), value }
    }

    /// A histogram from per-bucket counts (the last is `+Inf`).
    fn hist(service: &str, per_bucket: &[u64], sum: f64) -> Histogram {
        let mut acc = 0;
        let cumulative = per_bucket[..BOUNDS.len()].iter().map(|c| {
            acc += c;
            acc
        });
        Histogram {
            name: names::SEARCH_DURATION_MS.into(),
            help: String::new(),
            labels: labels(&[("service", service)]),
            bucket_bounds: BOUNDS.to_vec(),
            bucket_counts: cumulative.collect(),
            sum,
            count: per_bucket.iter().sum(),
        }
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        // 10 observations: 5 in (0,1], 5 in (10,100].
        let h = hist("a", &[5, 0, 5, 0], 300.0);
        assert_eq!(quantile(0.5, &h), Some(1.0));
        // rank 9.5 is 4.5 of the 5 in (10, 100]: 10 + 90 * 0.9.
        assert!((quantile(0.95, &h).unwrap() - 91.0).abs() < 1e-9);
        assert!((quantile(0.2, &h).unwrap() - 0.4).abs() < 1e-9);
        // Beyond the last finite bound: that bound.
        assert_eq!(quantile(0.99, &hist("a", &[0, 0, 0, 3], 1e6)), Some(100.0));
        assert_eq!(quantile(0.5, &hist("a", &[0, 0, 0, 0], 0.0)), None);
    }

    fn window() -> Snapshot {
        Snapshot {
            counters: vec![
                counter(names::SEARCHES_TOTAL, &[("service", "app"), ("cached", "false")], 8.0),
                counter(names::SEARCHES_TOTAL, &[("service", "app"), ("cached", "true")], 2.0),
                counter(names::SEARCHES_TOTAL, &[("service", "db"), ("cached", "false")], 1.0),
                counter(names::ERRORS_TOTAL, &[("kind", "invalid_request")], 2.0),
                counter(names::ERRORS_TOTAL, &[("kind", "busy")], 1.0),
                counter(names::PERMITS_TOTAL, &[("service", "db"), ("outcome", "busy")], 1.0),
                counter(names::PERMITS_TOTAL, &[("service", "db"), ("outcome", "granted")], 1.0),
                counter(names::CACHE_HITS_TOTAL, &[("via", "key")], 2.0),
                counter(names::CACHE_MISSES_TOTAL, &[], 6.0),
                counter(names::RATE_LIMITED_TOTAL, &[], 3.0),
            ],
            gauges: vec![],
            histograms: vec![hist("app", &[10, 0, 0, 0], 5.0), hist("db", &[0, 0, 1, 0], 50.0)],
            source: "redis".into(),
        }
    }

    fn now() -> Snapshot {
        let g = |name: &str, pairs: &[(&str, &str)], value| Gauge { name: name.into(), help: String::new(), labels: labels(pairs), value };
        Snapshot {
            counters: vec![],
            gauges: vec![
                g(names::PERMITS_IN_USE, &[("scope", "global")], 1.0),
                g(names::PERMITS_IN_USE, &[("scope", "service"), ("service", "db")], 1.0),
                g(names::PERMITS_LIMIT, &[("scope", "global")], 8.0),
                g(names::PERMITS_LIMIT, &[("scope", "service")], 4.0),
                g(names::PERMIT_QUEUE_LENGTH, &[], 2.0),
            ],
            histograms: vec![],
            source: "redis".into(),
        }
    }

    #[test]
    fn answers_from_the_window_and_the_gauges() {
        let host = TestHost::new().on_read_window(|_| window()).metrics(now());
        let r = host.call::<GetInsights>(json!({"window": "6h"})).unwrap();
        assert_eq!(host.windows_read(), [360]);
        let s = TestHost::structured(&r).unwrap();
        assert_eq!(s["scope"], "all_sessions");
        assert_eq!(s["slowest_service"], "db");
        assert_eq!(s["services"][0]["service"], "db");
        assert_eq!(s["services"][0]["p95_ms"], 95.5); // 10 + 90 * 0.95
        assert_eq!(s["services"][0]["busy"], 1);
        assert_eq!(
            s["services"][1],
            json!({"service": "app", "searches": 10, "cached": 2, "p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99, "mean_ms": 0.5, "busy": 0})
        );
        assert_eq!(s["errors_total"], 3);
        assert_eq!(s["errors_by_kind"], json!({"busy": 1, "invalid_request": 2}));
        assert_eq!(s["cache"], json!({"hits": 2, "misses": 6, "hit_rate": 0.25}));
        assert_eq!(s["permits"], json!({"in_use": 1, "limit": 8, "queued": 2, "in_use_by_service": {"db": 1}}));
        assert_eq!(s["refusals"], json!({"busy": 1, "rate_limited": 3}));
        let text = TestHost::text(&r);
        assert!(text.starts_with("Last 6h, all sessions:\n- db: 1 searches"), "{text}");
        assert!(text.contains("Errors: 3 (busy 1, invalid_request 2)."), "{text}");
    }

    #[test]
    fn says_when_it_is_this_session_only_and_filters_a_service() {
        let local = |mut s: Snapshot| {
            s.source = "local".into();
            s
        };
        let host = TestHost::new().on_read_window(move |_| local(window())).metrics(local(now()));
        let r = host.call::<GetInsights>(json!({"service": "app"})).unwrap();
        assert_eq!(host.windows_read(), [60]);
        let s = TestHost::structured(&r).unwrap();
        assert_eq!(s["scope"], "this_session");
        assert_eq!(s["services"].as_array().unwrap().len(), 1);
        assert!(TestHost::text(&r).starts_with("Last 1h, this session only"));
        // Nothing recorded: no services, no hit rate (left out, not null).
        let empty = TestHost::new();
        let s = TestHost::structured(&empty.call::<GetInsights>(json!({})).unwrap()).unwrap();
        assert_eq!(s["services"], json!([]));
        assert!(s["cache"].get("hit_rate").is_none());
    }
}
