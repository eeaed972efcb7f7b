//! The Prometheus text exposition format (0.0.4), written by hand: HELP and
//! TYPE once per metric family, counters named `*_total`, histograms as
//! cumulative `_bucket{le=...}` series ending with `+Inf`, then `_sum` and
//! `_count`; label values and help texts escaped as the format requires.
//! Pure Rust over the shared records (no WIT types), so it is unit-tested on
//! the host target and built into the host for `logai metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;

use logai_records::metrics::{CounterValue, GaugeValue, HistogramValue, Labels, MetricsSnapshot};

/// Family names get this prefix unless they already start with it.
pub const DEFAULT_PREFIX: &str = "logai_";

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Replace every character a metric name may not hold with `_`.
pub fn sanitize_metric_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
        if ok {
            out.push(c)
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_')
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with `__` (reserved).
pub fn sanitize_label_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
        if ok {
            out.push(c)
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_')
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}

/// Label values: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text: `\` → `\\`, newline → `\n`.
pub fn escape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn family_name(prefix: &str, name: &str) -> String {
    let name = base_units(&sanitize_metric_name(name)).0;
    if prefix.is_empty() || name.starts_with(prefix) {
        name
    } else {
        format!("{prefix}{name}")
    }
}

/// Prometheus wants base units: a `*_ms` (or `*_ms_total`) metric is
/// exposed as `*_seconds` with its values (and bucket bounds) divided by
/// 1000. Returns the name and the divisor of its values.
pub fn base_units(name: &str) -> (String, f64) {
    if let Some(stem) = name.strip_suffix("_ms") {
        (format!("{stem}_seconds"), 1000.0)
    } else if let Some(stem) = name.strip_suffix("_ms_total") {
        (format!("{stem}_seconds_total"), 1000.0)
    } else {
        (name.to_string(), 1.0)
    }
}

fn scale_of(name: &str) -> f64 {
    base_units(&sanitize_metric_name(name)).1
}

fn help_units(help: &str, scale: f64) -> String {
    if scale == 1000.0 {
        help.replace("milliseconds", "seconds").replace("(ms)", "(s)")
    } else {
        help.to_string()
    }
}

fn write_labels(out: &mut String, labels: &[(String, String)], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let mut seen: Vec<String> = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        let k = sanitize_label_name(k);
        // `le` belongs to the histogram; a duplicate label name is invalid.
        if (extra.is_some() && k == "le") || seen.contains(&k) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
        seen.push(k);
    }
    if let Some((k, v)) = extra {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
    }
    out.push('}');
}

struct Family<'a, T> {
    help: &'a str,
    series: Vec<&'a T>,
}

fn group<'a, T>(items: &'a [T], name_of: impl Fn(&T) -> String, help_of: impl Fn(&'a T) -> &'a str) -> BTreeMap<String, Family<'a, T>> {
    let mut map: BTreeMap<String, Family<'a, T>> = BTreeMap::new();
    for it in items {
        let fam = map.entry(name_of(it)).or_insert_with(|| Family { help: help_of(it), series: Vec::new() });
        if fam.help.is_empty() {
            fam.help = help_of(it);
        }
        fam.series.push(it);
    }
    map
}

/// Render a snapshot. Families sorted by name; a family's series keep
/// their order. Every family name carries `prefix` (unless it already does).
pub fn render(snap: &MetricsSnapshot, prefix: &str) -> String {
    let mut out = String::with_capacity(4096);

    let counters = group(
        &snap.counters,
        |c| {
            let n = family_name(prefix, &c.name);
            if n.ends_with("_total") {
                n
            } else {
                format!("{n}_total")
            }
        },
        |c| c.help.as_str(),
    );
    for (name, fam) in &counters {
        // TYPE names the family without `_total` (OpenMetrics style) would
        // confuse 0.0.4 parsers; keep the sample name as the family name.
        write_scalar_family(&mut out, name, fam, "counter");
    }

    let gauges = group(&snap.gauges, |g| family_name(prefix, &g.name), |g| g.help.as_str());
    for (name, fam) in &gauges {
        if counters.contains_key(name) {
            continue; // a name can have one type only
        }
        write_scalar_family(&mut out, name, fam, "gauge");
    }

    let hists = group(&snap.histograms, |h| family_name(prefix, &h.name), |h| h.help.as_str());
    for (name, fam) in &hists {
        if counters.contains_key(name) || gauges.contains_key(name) {
            continue;
        }
        write_header(&mut out, name, fam.help, &fam.series[0].name, "histogram");
        for h in &fam.series {
            write_histogram(&mut out, name, h);
        }
    }

    write_source_info(&mut out, snap, prefix);
    out
}

/// `# HELP` and `# TYPE` lines of one family.
fn write_header(out: &mut String, name: &str, help: &str, first_series: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(&help_units(help_or(help, name), scale_of(first_series))));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter or gauge series: the same shape, two record types.
trait Scalar {
    fn parts(&self) -> (&str, &Labels, f64);
}

impl Scalar for CounterValue {
    fn parts(&self) -> (&str, &Labels, f64) {
        (&self.name, &self.labels, self.value)
    }
}

impl Scalar for GaugeValue {
    fn parts(&self) -> (&str, &Labels, f64) {
        (&self.name, &self.labels, self.value)
    }
}

/// A counter or gauge family: its header, then one sample per series.
fn write_scalar_family<T: Scalar>(out: &mut String, name: &str, fam: &Family<'_, T>, kind: &str) {
    write_header(out, name, fam.help, fam.series[0].parts().0, kind);
    for s in &fam.series {
        let (series, labels, value) = s.parts();
        out.push_str(name);
        write_labels(out, labels, None);
        let _ = writeln!(out, " {}", format_value(value / scale_of(series)));
    }
}

/// One histogram series: cumulative buckets, `+Inf`, sum and count.
fn write_histogram(out: &mut String, name: &str, h: &HistogramValue) {
    let scale = scale_of(&h.name);
    let labels: Vec<(String, String)> = h.labels.iter().filter(|(k, _)| sanitize_label_name(k) != "le").cloned().collect();
    // Buckets must be cumulative and sorted by bound; tolerate a
    // snapshot that is not by sorting and taking running maxima.
    let mut pairs: Vec<(f64, u64)> =
        h.bucket_bounds.iter().map(|b| b / scale).zip(h.bucket_counts.iter().copied()).filter(|(b, _)| b.is_finite()).collect();
    pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    pairs.dedup_by(|a, b| a.0 == b.0);
    let mut running = 0u64;
    for (bound, count) in &pairs {
        running = running.max(*count);
        let le = format_value(*bound);
        let _ = write!(out, "{name}_bucket");
        write_labels(out, &labels, Some(("le", &le)));
        let _ = writeln!(out, " {running}");
    }
    let total = h.count.max(running);
    let _ = write!(out, "{name}_bucket");
    write_labels(out, &labels, Some(("le", "+Inf")));
    let _ = writeln!(out, " {total}");
    let _ = write!(out, "{name}_sum");
    write_labels(out, &labels, None);
    let _ = writeln!(out, " {}", format_value(h.sum / scale));
    let _ = write!(out, "{name}_count");
    write_labels(out, &labels, None);
    let _ = writeln!(out, " {total}");
}

/// Where the numbers come from: 1 for the active source.
fn write_source_info(out: &mut String, snap: &MetricsSnapshot, prefix: &str) {
    if snap.source.is_empty() {
        return;
    }
    let name = family_name(prefix, "metrics_source_info");
    let _ =
        writeln!(out, "# HELP {name} Where these metrics come from: redis (all sessions) or local (one process, during a Redis outage).");
    let _ = writeln!(out, "# TYPE {name} gauge");
    out.push_str(&name);
    write_labels(out, &[("source".to_string(), snap.source.clone())], None);
    out.push_str(" 1\n");
}

fn help_or<'a>(help: &'a str, name: &'a str) -> &'a str {
    if help.trim().is_empty() {
        name
    } else {
        help
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logai_records::metrics::{CounterValue, GaugeValue, HistogramValue};

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn counters_get_total_and_one_header_per_family() {
        let snap = MetricsSnapshot {
            counters: vec![
                CounterValue { name: "searches".into(), help: "Searches run".into(), labels: l(&[("service", "nginx")]), value: 3.0 },
                CounterValue { name: "searches".into(), help: "Searches run".into(), labels: l(&[("service", "api")]), value: 1.0 },
            ],
            ..Default::default()
        };
        let text = render(&snap, "logai_");
        assert_eq!(
            text,
            "# HELP logai_searches_total Searches run\n# TYPE logai_searches_total counter\n\
             logai_searches_total{service=\"nginx\"} 3\nlogai_searches_total{service=\"api\"} 1\n"
        );
    }

    #[test]
    fn histogram_has_inf_sum_count_and_cumulative_buckets() {
        let snap = MetricsSnapshot {
            histograms: vec![HistogramValue {
                name: "logai_search_duration_ms".into(),
                help: "Search latency".into(),
                labels: l(&[("service", "nginx"), ("le", "bogus")]),
                bucket_bounds: vec![100.0, 500.0, 1000.0], // ms: exposed in seconds
                bucket_counts: vec![1, 3, 2],              // not cumulative: repaired
                sum: 2500.0,
                count: 5,
            }],
            ..Default::default()
        };
        let text = render(&snap, "logai_");
        assert!(text.contains("# TYPE logai_search_duration_seconds histogram\n"));
        assert!(text.contains("logai_search_duration_seconds_bucket{service=\"nginx\",le=\"0.1\"} 1\n"));
        assert!(text.contains("logai_search_duration_seconds_bucket{service=\"nginx\",le=\"1\"} 3\n"));
        assert!(text.contains("logai_search_duration_seconds_bucket{service=\"nginx\",le=\"+Inf\"} 5\n"));
        assert!(text.contains("logai_search_duration_seconds_sum{service=\"nginx\"} 2.5\n"));
        assert!(text.contains("logai_search_duration_seconds_count{service=\"nginx\"} 5\n"));
    }

    #[test]
    fn escapes_labels_and_help_and_sanitizes_names() {
        let snap = MetricsSnapshot {
            gauges: vec![GaugeValue {
                name: "permits.in-use".into(),
                help: "line1\nback\\slash".into(),
                labels: l(&[("9svc", "a\"b\\c\nd"), ("__x", "y")]),
                value: f64::NAN,
            }],
            source: "redis".into(),
            ..Default::default()
        };
        let text = render(&snap, "logai_");
        assert!(text.contains("# HELP logai_permits_in_use line1\\nback\\\\slash\n"), "{text}");
        assert!(text.contains("logai_permits_in_use{_9svc=\"a\\\"b\\\\c\\nd\",_x=\"y\"} NaN\n"), "{text}");
        assert!(text.contains("logai_metrics_source_info{source=\"redis\"} 1\n"));
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_metric_name("logai_"));
        assert!(!is_valid_metric_name("1abc"));
        assert_eq!(sanitize_metric_name("a.b-c"), "a_b_c");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.25), "0.25");
    }
}
