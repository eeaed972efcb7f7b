//! The aggregate tools (`log_overview`, `count_logs`, `top_patterns`) over
//! stdio on the bundled sample logs. Every expected figure is computed here
//! from the same files with the test's own parsing (stamps, levels, syslog
//! programs, captures), not with logai's crates: line totals, levels,
//! histogram buckets, facet and group counts, per-pattern counts summing to
//! the line total, a new pattern against the day before, and every text
//! answer within its `budget_tokens`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use logai_e2e::{repo_root, sample_services_toml, write_manifest, McpClient};
use serde_json::{json, Value};

/// 2026-11-20T00:00:00Z and the next midnight, in ms.
const DAY_START: i64 = 1_795_132_800_000;
const DAY: i64 = 86_400_000;

/// Days since the epoch of a civil date (H. Hinnant's algorithm).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn num(s: &str) -> i64 {
    s.parse().unwrap()
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` at the start of `s`, in ms.
fn iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if s.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let ms = if b[19] == b'.' { num(&s[20..23]) } else { 0 };
    let secs =
        days(num(&s[0..4]), num(&s[5..7]), num(&s[8..10])) * 86_400 + num(&s[11..13]) * 3600 + num(&s[14..16]) * 60 + num(&s[17..19]);
    Some(secs * 1000 + ms)
}

/// A sample line's own stamp: JSON `timestamp`, RFC 5424's second field,
/// or RFC 3164 `Nov 20 03:10:00` (the samples are of 2026).
fn own_stamp(line: &str) -> Option<i64> {
    if let Some(i) = line.find("\"timestamp\": \"") {
        return iso(&line[i + 14..]);
    }
    if line.starts_with('<') {
        return iso(line.split(' ').nth(1)?);
    }
    let month =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| line.starts_with(m))?;
    let day = num(line[4..6].trim());
    let t = &line[7..15];
    Some((days(2026, month as i64 + 1, day) * 86_400 + num(&t[0..2]) * 3600 + num(&t[3..5]) * 60 + num(&t[6..8])) * 1000)
}

/// Every line of a service's sample files with its effective stamp (an
/// unstamped line takes the stamp of the line before it in its file).
fn lines(service: &str) -> Vec<(String, Option<i64>)> {
    let dir = repo_root().join("examples/logs").join(service);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut text = String::new();
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
        } else if path.to_string_lossy().contains(".log") {
            text = std::fs::read_to_string(&path).unwrap();
        } else {
            continue;
        }
        let mut last = None;
        for l in text.lines() {
            last = own_stamp(l).or(last);
            out.push((l.to_string(), last));
        }
    }
    out
}

fn in_day(lines: &[(String, Option<i64>)], start: i64) -> Vec<(String, i64)> {
    lines.iter().filter_map(|(l, s)| s.filter(|s| *s >= start && *s < start + DAY).map(|s| (l.clone(), s))).collect()
}

/// The level a sample line states: its JSON `level` field; none otherwise.
fn level(line: &str) -> &'static str {
    match line.split("\"level\": \"").nth(1).map(|r| &r[..r.find('"').unwrap()]) {
        Some("ERROR") => "error",
        Some("WARN") => "warn",
        Some("INFO") => "info",
        Some(other) => panic!("unexpected level {other}"),
        None => "none",
    }
}

fn count<'a>(it: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for k in it {
        *m.entry(k.to_string()).or_insert(0) += 1;
    }
    m
}

/// A call's structured content, after checking its text fits `budget`.
fn call(c: &mut McpClient, tool: &str, args: Value, budget: usize) -> Value {
    let r = c.call_tool_ok(tool, args.clone());
    assert_ne!(r["isError"], true, "{tool} {args}: {r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    let tokens = text.chars().count().div_ceil(4);
    assert!(tokens <= budget, "{tool} {args}: {tokens} tokens over the budget {budget}:\n{text}");
    r["structuredContent"].clone()
}

fn map(v: &Value, list: &str, key: &str, val: &str) -> BTreeMap<String, u64> {
    v[list].as_array().unwrap().iter().map(|x| (x[key].as_str().unwrap().to_string(), x[val].as_u64().unwrap())).collect()
}

fn manifest(dir: &Path) -> std::path::PathBuf {
    write_manifest(dir, &[("search-tools", "search-tools.wasm")], &format!("{}\n[cache]\nenabled = true\n", sample_services_toml()))
}

#[test]
fn overview_levels_histogram_facets_and_patterns_equal_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = McpClient::serve(&manifest(dir.path()), &[]);
    c.initialize();
    let day = in_day(&lines("payments"), DAY_START);
    let o = call(&mut c, "log_overview", json!({"service": "payments", "date": "2026-11-20"}), 4000);
    assert_eq!(o["lines"], json!(day.len()), "{o}");
    assert_eq!(map(&o, "levels", "level", "count"), count(day.iter().map(|(l, _)| level(l))));
    // Buckets: the answer's step from the window's start; each bucket's
    // count and errors equal the lines stamped in it.
    let step = o["step_seconds"].as_i64().unwrap() * 1000;
    let buckets = o["buckets"].as_array().unwrap();
    assert_eq!(buckets.len() as i64, DAY / step);
    for (i, b) in buckets.iter().enumerate() {
        let lo = DAY_START + i as i64 * step;
        let here: Vec<&(String, i64)> = day.iter().filter(|(_, s)| *s >= lo && *s < lo + step).collect();
        assert_eq!(b["lines"], json!(here.len()), "bucket {i} {b}");
        assert_eq!(b["errors"], json!(here.iter().filter(|(l, _)| level(l) == "error").count()), "bucket {i} {b}");
    }
    // The level facet: the JSON field's values.
    let facet = o["facets"].as_array().unwrap().iter().find(|f| f["field"] == "level").unwrap();
    let want = count(day.iter().filter_map(|(l, _)| l.split("\"level\": \"").nth(1).map(|r| &r[..r.find('"').unwrap()])));
    assert_eq!(map(facet, "top", "value", "count"), want);
    // The incident's pattern leads the error patterns.
    let timeouts = day.iter().filter(|(l, _)| l.contains("bank authorization timeout")).count();
    let first = &o["error_patterns"][0];
    assert!(first["template"].as_str().unwrap().contains("bank authorization timeout"), "{first}");
    assert_eq!(first["count"], json!(timeouts));

    // Every pattern of the day: their counts add up to the lines.
    let p = call(&mut c, "top_patterns", json!({"service": "payments", "date": "2026-11-20", "top": 200, "budget_tokens": 20000}), 20000);
    let patterns = p["patterns"].as_array().unwrap();
    assert_eq!(patterns.len() as u64, p["patterns_total"].as_u64().unwrap());
    assert_eq!(patterns.iter().map(|p| p["count"].as_u64().unwrap()).sum::<u64>(), day.len() as u64);
    // A pattern's ready search finds its lines.
    let args = &patterns.iter().find(|p| p["template"].as_str().unwrap().contains("bank authorization timeout")).unwrap()["search"];
    let s = call(&mut c, "search_logs", args.clone(), 4000);
    assert_eq!(s["total_matches"], json!(timeouts), "{args}");

    // A small budget: the text fits and says what it left out.
    let r = c.call_tool_ok("log_overview", json!({"service": "payments", "date": "2026-11-20", "budget_tokens": 300}));
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.chars().count() <= 1200, "{text}");
    assert!(text.contains("left out of this text"), "{text}");
    assert_eq!(r["structuredContent"]["lines"], json!(day.len()));
}

#[test]
fn counts_by_program_and_capture_and_new_patterns_equal_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = McpClient::serve(&manifest(dir.path()), &[]);
    c.initialize();

    // auth by syslog program (the tag before `[pid]:`), per step.
    let auth = in_day(&lines("auth"), DAY_START);
    let program = |l: &str| l.split(' ').filter(|t| !t.is_empty()).nth(4).unwrap().split(['[', ':']).next().unwrap().to_string();
    let r = call(&mut c, "count_logs", json!({"service": "auth", "date": "2026-11-20", "group_by": "program", "step_seconds": 3600}), 4000);
    assert_eq!(r["lines"], json!(auth.len()));
    let want = count(auth.iter().map(|(l, _)| program(l)).collect::<Vec<_>>().iter().map(String::as_str));
    assert_eq!(map(&r, "groups", "key", "total"), want);
    for g in r["groups"].as_array().unwrap() {
        for (h, n) in g["counts"].as_array().unwrap().iter().enumerate() {
            let lo = DAY_START + h as i64 * 3_600_000;
            let here = auth.iter().filter(|(l, s)| program(l) == g["key"] && *s >= lo && *s < lo + 3_600_000).count();
            assert_eq!(n, &json!(here), "{} hour {h}", g["key"]);
        }
    }

    // gateway by the pattern's capture group.
    let gw = in_day(&lines("gateway"), DAY_START);
    let status = |l: &str| l.split("status=").nth(1).map(|r| r[..3].to_string());
    let r = call(
        &mut c,
        "count_logs",
        json!({"service": "gateway", "date": "2026-11-20", "pattern": "status=(\\d+)", "group_by": "capture", "top": 50}),
        4000,
    );
    let statuses: Vec<String> = gw.iter().filter_map(|(l, _)| status(l)).collect();
    assert_eq!(r["lines"], json!(statuses.len()));
    assert_eq!(map(&r, "groups", "key", "total"), count(statuses.iter().map(String::as_str)));

    // A pattern new on the 20th against the 19th: the brute force.
    let before = in_day(&lines("auth"), DAY_START - DAY);
    let invalid = |d: &[(String, i64)]| d.iter().filter(|(l, _)| l.contains("Failed password for invalid user")).count();
    assert_eq!(invalid(&before), 0);
    let p = call(
        &mut c,
        "top_patterns",
        json!({"service": "auth", "date": "2026-11-20", "compare_to": "previous", "top": 5, "budget_tokens": 1000}),
        1000,
    );
    assert_eq!(p["baseline_lines"], json!(before.len()));
    let new = p["patterns"].as_array().unwrap().iter().find(|x| x["change"] == "new").expect("a new pattern");
    assert!(new["template"].as_str().unwrap().contains("Failed password for invalid user"), "{new}");
    assert_eq!(new["count"], json!(invalid(&auth)));
    assert_eq!(new["baseline_count"], json!(0));
    // The same baseline given by its start.
    let q = call(
        &mut c,
        "top_patterns",
        json!({"service": "auth", "date": "2026-11-20", "compare_to": "2026-11-19T00:00:00Z", "top": 5}),
        4000,
    );
    assert_eq!(q["baseline_lines"], json!(before.len()));
    assert_eq!(q["patterns"], p["patterns"]);
    let r = c.call_tool_ok("top_patterns", json!({"service": "auth", "date": "2026-11-20", "compare_to": "2026-11-21T00:00:00Z"}));
    assert!(r["content"][0]["text"].as_str().unwrap().contains("argument `compare_to`"), "{r}");

    // Bad arguments name the argument.
    let r = c.call_tool_ok("count_logs", json!({"service": "auth", "group_by": "colour"}));
    assert_eq!(r["isError"], true);
    assert!(r["content"][0]["text"].as_str().unwrap().contains("argument `group_by`"), "{r}");
}
