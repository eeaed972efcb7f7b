//! End-to-end correctness of the search tools: generated corpora (RFC 3164
//! with rotated and gzipped files, RFC 5424, JSON lines with unstamped stack
//! traces and NUL bytes, a file growing during the search), the real
//! `logai serve` over stdio with the real search-tools component, and every
//! result compared with a ground truth computed independently (`rg -a -n`
//! over the same files, `zcat` for `.gz`, and this suite's own stamp parser
//! for time windows; see `support/corpus.rs`).
//!
//! Needs: `target/<profile>/logai` (cargo builds it for this crate's tests
//! only through scripts/test), `plugins/dist/search-tools.wasm`
//! (scripts/build-plugins), and ripgrep (`apt-get install ripgrep`).

#[path = "support/corpus.rs"]
mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corpus::{Expected, Fmt, GenFile, Query, Rng, Win};
use logai_e2e::McpClient;
use serde_json::{json, Value};

/// A service of the test corpus: its files, oldest first.
struct Svc {
    name: &'static str,
    fmt: Fmt,
    files: Vec<PathBuf>,
}

impl Svc {
    fn with_fmt(&self) -> Vec<(PathBuf, Fmt)> {
        self.files.iter().map(|p| (p.clone(), self.fmt)).collect()
    }
}

const DAY: i64 = 86_400_000;

/// Three services over 2026-11-18 .. 2026-11-20:
/// - `auth` (RFC 3164): auth.log.2.gz (11-18), auth.log.1 (11-19), auth.log (11-20);
/// - `gateway` (RFC 5424): gateway.log.1 (11-18 and 11-19), gateway.log (11-20);
/// - `app` (JSON lines): app.log.1.gz (11-19, starting with an unstamped
///   stack trace), app.log (11-20, > 256 KiB so windows binary-search into it),
///   with stack traces and NUL bytes throughout.
fn build(dir: &Path) -> Vec<Svc> {
    let d18 = corpus::ms(2026, 11, 18, 0, 0, 0);
    let mut rng = Rng::new(7);
    let mut svcs = Vec::new();

    let auth_dir = dir.join("auth");
    std::fs::create_dir_all(&auth_dir).unwrap();
    let mut files = Vec::new();
    for (i, (name, gz)) in [("auth.log.2.gz", true), ("auth.log.1", false), ("auth.log", false)].into_iter().enumerate() {
        let lines = corpus::gen_lines(&mut rng, Fmt::Rfc3164, d18 + i as i64 * DAY, 900, DAY / 900, 0, 1);
        files.push(corpus::write_file(&auth_dir, &GenFile { name: name.into(), fmt: Fmt::Rfc3164, lines, gz }));
    }
    svcs.push(Svc { name: "auth", fmt: Fmt::Rfc3164, files });

    let gw_dir = dir.join("gateway");
    std::fs::create_dir_all(&gw_dir).unwrap();
    let old = corpus::gen_lines(&mut rng, Fmt::Rfc5424, d18, 2000, 2 * DAY / 2000, 0, 0);
    let new = corpus::gen_lines(&mut rng, Fmt::Rfc5424, d18 + 2 * DAY, 1500, DAY / 1500, 0, 1);
    let files = vec![
        corpus::write_file(&gw_dir, &GenFile { name: "gateway.log.1".into(), fmt: Fmt::Rfc5424, lines: old, gz: false }),
        corpus::write_file(&gw_dir, &GenFile { name: "gateway.log".into(), fmt: Fmt::Rfc5424, lines: new, gz: false }),
    ];
    svcs.push(Svc { name: "gateway", fmt: Fmt::Rfc5424, files });

    let app_dir = dir.join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let mut rotated: Vec<Vec<u8>> =
        vec![b"\tat com.example.Orphan.frame(Orphan.java:1)".to_vec(), b"Caused by: timeout before any stamp".to_vec()];
    rotated.extend(corpus::gen_lines(&mut rng, Fmt::Json, d18 + DAY, 1500, DAY / 1500, 8, 2));
    let current = corpus::gen_lines(&mut rng, Fmt::Json, d18 + 2 * DAY, 2600, DAY / 2600, 8, 2);
    let files = vec![
        corpus::write_file(&app_dir, &GenFile { name: "app.log.1.gz".into(), fmt: Fmt::Json, lines: rotated, gz: true }),
        corpus::write_file(&app_dir, &GenFile { name: "app.log".into(), fmt: Fmt::Json, lines: current, gz: false }),
    ];
    assert!(std::fs::metadata(&files[1]).unwrap().len() > 256 * 1024, "app.log must be large enough to exercise the window binary search");
    svcs.push(Svc { name: "app", fmt: Fmt::Json, files });
    svcs
}

struct Env {
    _dir: tempfile::TempDir,
    svcs: Vec<Svc>,
    client: McpClient,
}

impl Env {
    fn start() -> Env {
        corpus::prerequisites();
        let dir = tempfile::tempdir().unwrap();
        let svcs = build(dir.path());
        let paths = |name: &str| -> Vec<String> {
            let d = std::fs::canonicalize(dir.path().join(name)).unwrap();
            vec![format!("{}/{name}.log*", d.display())]
        };
        let manifest = corpus::manifest(
            dir.path(),
            &[("auth", "syslog", &paths("auth")), ("gateway", "syslog", &paths("gateway")), ("app", "json", &paths("app"))],
            "max_results_cap = 1000\nmax_context_lines = 10",
        );
        let env = corpus::serve_env();
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut client = McpClient::serve(&manifest, &envs);
        client.timeout = Duration::from_secs(120);
        client.initialize();
        Env { _dir: dir, svcs, client }
    }

    fn svc(&self, name: &str) -> &Svc {
        self.svcs.iter().find(|s| s.name == name).unwrap()
    }

    /// `search_logs`; panics unless it succeeded. Returns structuredContent.
    fn search(&mut self, args: Value) -> Value {
        let r = self.client.call_tool_ok("search_logs", args.clone());
        assert_ne!(r["isError"], json!(true), "search_logs {args} failed: {r}");
        check_text_and_structured(&r)
    }

    /// Every match of a search: inline ones, then the whole overflow paged
    /// with `page` (checking the inline ones are its first ones).
    fn search_all(&mut self, args: Value, page: u32) -> (Value, Vec<Value>) {
        let r = self.client.call_tool_ok("search_logs", args.clone());
        assert_ne!(r["isError"], json!(true), "search_logs {args} failed: {r}");
        let first = check_text_and_structured(&r);
        let text = first_text(&r);
        let inline = first["matches"].as_array().unwrap().clone();
        let total = first["total_matches"].as_u64().unwrap();
        if !first["truncated"].as_bool().unwrap() {
            assert_eq!(inline.len() as u64, total, "not truncated but {} of {total} inline: {first}", inline.len());
            assert!(first.get("overflow").is_none());
            return (first, inline);
        }
        let ov = first["overflow"].clone();
        assert!(ov.is_object(), "truncated without an overflow: {first}");
        let reference = ov["reference"].as_str().unwrap().to_string();
        assert_eq!(ov["total"].as_u64().unwrap(), total, "the overflow holds every match");
        assert_eq!(ov["next_offset"].as_u64().unwrap(), inline.len() as u64);
        assert!(
            text.contains(&format!(
                "showing {} of {total} matches; the rest are in overflow {reference}: call read_search_file with reference={reference}, offset={}",
                inline.len(),
                inline.len()
            )),
            "truncation note missing: {text}"
        );
        let mut all: Vec<Value> = Vec::new();
        let mut offset = 0u64;
        loop {
            let r = self.client.call_tool_ok("read_search_file", json!({"reference": reference, "offset": offset, "limit": page}));
            assert_ne!(r["isError"], json!(true), "read_search_file failed: {r}");
            let p = check_text_and_structured(&r);
            assert_eq!(p["offset"].as_u64().unwrap(), offset);
            assert_eq!(p["total"].as_u64().unwrap(), total);
            let ms = p["matches"].as_array().unwrap();
            assert!(ms.len() as u64 <= page as u64);
            all.extend(ms.iter().cloned());
            offset += ms.len() as u64;
            let eof = p["eof"].as_bool().unwrap();
            assert_eq!(eof, offset >= total, "eof flag wrong at offset {offset} of {total}: {p}");
            if eof {
                assert!(p.get("next_offset").is_none());
                break;
            }
            assert_eq!(p["next_offset"].as_u64().unwrap(), offset);
            assert!(!ms.is_empty(), "empty page before eof at {offset}");
        }
        assert_eq!(all.len() as u64, total);
        assert_eq!(&all[..inline.len()], &inline[..], "the overflow's first matches differ from the inline ones");
        (first, all)
    }
}

fn first_text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or_default().to_string()
}

/// Every successful result carries a text block and structuredContent whose
/// JSON text is also shown (for older clients) or summarized.
fn check_text_and_structured(r: &Value) -> Value {
    let content = r["content"].as_array().unwrap_or_else(|| panic!("no content: {r}"));
    assert!(content.iter().any(|c| c["type"] == "text"), "no text block: {r}");
    let sc = r["structuredContent"].clone();
    assert!(sc.is_object(), "no structuredContent: {r}");
    sc
}

/// Compare matches with the ground truth, pointing at the first difference.
fn assert_matches(what: &str, got: &[Value], want: &[Expected]) {
    let want: Vec<Value> = want.iter().map(Expected::to_json).collect();
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert_eq!(g, w, "{what}: match #{i} differs\n got: {g}\nwant: {w}");
    }
    assert_eq!(got.len(), want.len(), "{what}: {} matches, ground truth has {}", got.len(), want.len());
}

fn check(env: &mut Env, svc: &str, args: Value, q: Query, window: Option<Win>, context: usize, page: u32) -> u64 {
    let files = env.svc(svc).with_fmt();
    let want = corpus::expected(&files, &q, window, context);
    let (first, all) = env.search_all(args.clone(), page);
    assert_eq!(first["total_matches"].as_u64().unwrap(), want.len() as u64, "{args}: total_matches");
    assert_eq!(first["partial"], json!(false), "{args}: partial {first}");
    let matched_files: std::collections::BTreeSet<&str> = want.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(first["files_matched"].as_u64().unwrap(), matched_files.len() as u64, "{args}: files_matched");
    assert_matches(&args.to_string(), &all, &want);
    want.len() as u64
}

fn q(p: &str) -> Query {
    Query { pattern: p.into(), ..Query::default() }
}

#[test]
fn whole_history_every_format_rotated_and_gz() {
    let mut env = Env::start();
    for svc in ["auth", "gateway", "app"] {
        // Every file searched, bytes counted (the first ask: a miss).
        let r = env.search(json!({"service": svc, "pattern": "timeout"}));
        assert_eq!(r["cached"], json!(false));
        assert_eq!(r["files_searched"].as_u64().unwrap(), env.svc(svc).files.len() as u64, "{svc}: files_searched");
        assert!(r["bytes_scanned"].as_u64().unwrap() > 0);
        // Asked again with more results (a hit: max_results is not in the key).
        let n = check(&mut env, svc, json!({"service": svc, "pattern": "timeout", "max_results": 1000}), q("timeout"), None, 0, 1000);
        assert!(n > 20, "{svc}: corpus should have timeouts, found {n}");
    }
    // Unstamped lines (stack traces) match and carry the stamp of their entry;
    // lines before the first stamp have none.
    let n = check(
        &mut env,
        "app",
        json!({"service": "app", "pattern": "^\\tat |^Caused by", "max_results": 1000}),
        q("^\\tat |^Caused by"),
        None,
        0,
        1000,
    );
    assert!(n > 100);
    // NUL bytes: lines containing them are searched as text (rg -a).
    let n = check(
        &mut env,
        "gateway",
        json!({"service": "gateway", "pattern": "\\x00x\\x00", "max_results": 1000}),
        q("\\x00x\\x00"),
        None,
        0,
        1000,
    );
    assert!(n > 0, "the corpus has NUL bytes");
    check(
        &mut env,
        "app",
        json!({"service": "app", "pattern": "\\x00x\\x00.*timeout", "max_results": 1000}),
        q("\\x00x\\x00.*timeout"),
        None,
        0,
        1000,
    );
    // Non-ASCII text.
    check(&mut env, "auth", json!({"service": "auth", "pattern": "ünïcödé", "max_results": 1000}), q("ünïcödé"), None, 0, 1000);
    // No match: an empty, untruncated answer.
    let r = env.search(json!({"service": "auth", "pattern": "no-such-text-anywhere"}));
    assert_eq!(r["total_matches"], 0);
    assert_eq!(r["matches"], json!([]));
    assert_eq!(r["truncated"], false);
}

#[test]
fn case_insensitive_fixed_strings_and_context() {
    let mut env = Env::start();
    let ci = Query { pattern: "timeout".into(), case_insensitive: true, ..Query::default() };
    let a = check(
        &mut env,
        "gateway",
        json!({"service": "gateway", "pattern": "timeout", "case_insensitive": true, "max_results": 1000}),
        ci,
        None,
        0,
        1000,
    );
    let b =
        check(&mut env, "gateway", json!({"service": "gateway", "pattern": "timeout", "max_results": 1000}), q("timeout"), None, 0, 1000);
    assert!(a > b, "case-insensitive must find Timeout/TIMEOUT too ({a} vs {b})");

    // Regex metacharacters, literally.
    let fixed = Query { pattern: "[ERROR] a.b(c)".into(), fixed_strings: true, ..Query::default() };
    let n = check(
        &mut env,
        "auth",
        json!({"service": "auth", "pattern": "[ERROR] a.b(c)", "fixed_strings": true, "max_results": 1000}),
        fixed,
        None,
        0,
        1000,
    );
    assert!(n > 10);
    let both = Query { pattern: "CONNECTION timeout".into(), fixed_strings: true, case_insensitive: true };
    check(
        &mut env,
        "app",
        json!({"service": "app", "pattern": "CONNECTION timeout", "fixed_strings": true, "case_insensitive": true, "max_results": 1000}),
        both,
        None,
        0,
        1000,
    );

    // Context lines, including at file starts/ends, across unstamped lines,
    // overlapping neighbours, and across gz/plain files.
    for ctx in [1usize, 3, 10] {
        check(
            &mut env,
            "app",
            json!({"service": "app", "pattern": "Caused by|insufficient", "context": ctx, "max_results": 1000}),
            q("Caused by|insufficient"),
            None,
            ctx,
            1000,
        );
    }
}

/// `^` and `$` anchor at line starts and ends, as in `rg` (not at the
/// start/end of whatever buffer the scanner holds); `$` does not match
/// before a `\r` (no CRLF mode, like `rg` without `--crlf`).
#[test]
fn anchored_patterns_match_at_line_boundaries() {
    let mut env = Env::start();
    check(
        &mut env,
        "auth",
        json!({"service": "auth", "pattern": "n=(0|1|899)$|n=(0|1|899)\\r", "context": 2, "max_results": 1000}),
        q("n=(0|1|899)$|n=(0|1|899)\\r"),
        None,
        2,
        1000,
    );
    let n = check(&mut env, "app", json!({"service": "app", "pattern": "\"}$", "max_results": 1000}), q("\"}$"), None, 0, 1000);
    assert!(n > 1000, "every JSON line ends with \"}} ({n})");
    check(
        &mut env,
        "gateway",
        json!({"service": "gateway", "pattern": "^<13[0-3]>1 .*timeout", "max_results": 1000}),
        q("^<13[0-3]>1 .*timeout"),
        None,
        0,
        1000,
    );
}

#[test]
fn date_and_since_until_windows() {
    let mut env = Env::start();
    for (svc, pat) in [("auth", "timeout|login"), ("gateway", "timeout|declined"), ("app", "timeout|Caused by|at com")] {
        for day in [17u32, 18, 19, 20, 21] {
            let date = format!("2026-11-{day}");
            check(
                &mut env,
                svc,
                json!({"service": svc, "pattern": pat, "date": date, "max_results": 1000}),
                q(pat),
                Some(Win::date(2026, 11, day)),
                0,
                1000,
            );
        }
    }
    // Windows inside a file, across files (rotated plain + gz), open-ended,
    // and at the edges of files and of unstamped runs.
    let cases: [(&str, &str, Option<&str>, Option<&str>); 7] = [
        ("app", "timeout|Caused by", Some("2026-11-20T06:00:00Z"), Some("2026-11-20T06:30:00Z")),
        ("app", "timeout|Caused by|at com", Some("2026-11-19T22:00:00Z"), Some("2026-11-20T02:00:00.500Z")),
        ("app", "timeout", Some("2026-11-20T12:00:00+02:00"), None),
        ("app", "timeout", None, Some("2026-11-19T12:00:00Z")),
        ("auth", "timeout|login", Some("2026-11-18T23:30:00Z"), Some("2026-11-19T00:30:00Z")),
        ("gateway", "req-", Some("2026-11-19T23:00:00Z"), Some("2026-11-20T01:00:00Z")),
        ("gateway", "timeout", Some("2026-11-18T08:00:00-05:00"), Some("2026-11-18T09:00:00-05:00")),
    ];
    for (svc, pat, since, until) in cases {
        let mut args = json!({"service": svc, "pattern": pat, "max_results": 1000});
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        let mut w = Win { start: i64::MIN, end: i64::MAX };
        if let Some(s) = since {
            args["since"] = json!(s);
            w.start = parse(s);
        }
        if let Some(u) = until {
            args["until"] = json!(u);
            w.end = parse(u);
        }
        let n = check(&mut env, svc, args.clone(), q(pat), Some(w), 0, 1000);
        assert!(n > 0, "{args}: the window should hold matches");
        let r = env.search(args.clone());
        if let Some(s) = since {
            assert_eq!(r["window_start"].as_str().map(parse), Some(parse(s)), "{args}: window_start {r}");
        }
    }
    // Context around windowed matches comes from the file, not the window.
    check(
        &mut env,
        "app",
        json!({"service": "app", "pattern": "timeout", "since": "2026-11-20T09:00:00Z", "until": "2026-11-20T10:00:00Z", "context": 4, "max_results": 1000}),
        q("timeout"),
        Some(Win { start: corpus::ms(2026, 11, 20, 9, 0, 0), end: corpus::ms(2026, 11, 20, 10, 0, 0) }),
        4,
        1000,
    );
}

#[test]
fn file_pattern_selects_files() {
    let mut env = Env::start();
    let all = env.svc("auth").with_fmt();
    for (glob, keep) in
        [("*.gz", vec![0usize]), ("auth.log.1", vec![1]), ("auth.log", vec![2]), ("auth.log*", vec![0, 1, 2]), ("*.[12]*", vec![0, 1])]
    {
        let files: Vec<(PathBuf, Fmt)> = keep.iter().map(|&i| all[i].clone()).collect();
        let want = corpus::expected(&files, &q("timeout"), None, 0);
        let (first, got) =
            env.search_all(json!({"service": "auth", "pattern": "timeout", "file_pattern": glob, "max_results": 1000}), 1000);
        assert_eq!(first["files_searched"].as_u64().unwrap(), keep.len() as u64, "file_pattern {glob}: {first}");
        assert_matches(&format!("file_pattern {glob}"), &got, &want);
    }
    // A glob matching nothing: zero files, zero matches, not an error.
    let r = env.search(json!({"service": "auth", "pattern": "timeout", "file_pattern": "*.nothing"}));
    assert_eq!(r["files_searched"], 0);
    assert_eq!(r["total_matches"], 0);
}

#[test]
fn overflow_paging_recovers_every_match_in_order() {
    let mut env = Env::start();
    let pat = "req-";
    let files = env.svc("app").with_fmt();
    let want = corpus::expected(&files, &q(pat), None, 0);
    assert!(want.len() > 4000);
    for (max, page) in [(1u32, 1000u32), (7, 13), (100, 1000), (1000, 999)] {
        let (first, got) = env.search_all(json!({"service": "app", "pattern": pat, "max_results": max}), page);
        assert_eq!(first["returned"].as_u64().unwrap(), max as u64);
        assert_eq!(first["matches"].as_array().unwrap().len(), max as usize);
        assert_eq!(first["truncated"], true);
        assert_matches(&format!("max_results={max} page={page}"), &got, &want);
    }
    // With context, the overflow keeps each match's context.
    let want = corpus::expected(&files, &q("Caused by"), None, 2);
    let (_, got) = env.search_all(json!({"service": "app", "pattern": "Caused by", "max_results": 5, "context": 2}), 50);
    assert_matches("overflow with context", &got, &want);
    // Default max_results is 100.
    let r = env.search(json!({"service": "app", "pattern": pat}));
    assert_eq!(r["matches"].as_array().unwrap().len(), 100);
    // Past the end: an empty final page, not an error.
    let reference = r["overflow"]["reference"].as_str().unwrap().to_string();
    let total = r["total_matches"].as_u64().unwrap();
    let p = env.client.call_tool_ok("read_search_file", json!({"reference": reference, "offset": total + 5, "limit": 10}));
    if p["isError"] != json!(true) {
        let p = &p["structuredContent"];
        assert_eq!(p["matches"], json!([]));
        assert_eq!(p["eof"], true);
    }
}

#[test]
fn list_services_reports_files_sizes_and_time_ranges() {
    let mut env = Env::start();
    let r = env.client.call_tool_ok("list_services", json!({}));
    assert_ne!(r["isError"], json!(true), "{r}");
    let sc = check_text_and_structured(&r);
    let list = sc["services"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let text = first_text(&r);
    for s in list {
        let svc = env.svc(s["name"].as_str().unwrap());
        assert!(text.contains(svc.name), "{text}");
        assert_eq!(s["file_count"].as_u64().unwrap(), svc.files.len() as u64);
        let size: u64 = svc.files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
        assert_eq!(s["total_bytes"].as_u64().unwrap(), size);
        // Earliest/latest stamps, by the ground truth parser.
        let stamps: Vec<i64> =
            svc.files.iter().flat_map(|f| corpus::read_lines(f).into_iter().filter_map(|l| corpus::stamp(svc.fmt, &l))).collect();
        let (lo, hi) = (stamps.iter().min().unwrap(), stamps.iter().max().unwrap());
        assert_eq!(s["earliest"].as_str().unwrap(), corpus::rfc3339(*lo), "{}", svc.name);
        assert_eq!(s["latest"].as_str().unwrap(), corpus::rfc3339(*hi), "{}", svc.name);
    }
}

#[test]
fn file_growing_during_the_search() {
    corpus::prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let d = std::fs::canonicalize(dir.path()).unwrap().join("grow");
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = Rng::new(11);
    let start = corpus::ms(2026, 11, 20, 0, 0, 0);
    let lines = corpus::gen_lines(&mut rng, Fmt::Rfc5424, start, 120_000, 500, 0, 0);
    let path = corpus::write_file(&d, &GenFile { name: "grow.log".into(), fmt: Fmt::Rfc5424, lines, gz: false });
    let manifest = corpus::manifest(dir.path(), &[("grow", "syslog", &[format!("{}/*.log", d.display())])], "");
    let env = corpus::serve_env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut client = McpClient::serve(&manifest, &envs);
    client.timeout = Duration::from_secs(120);
    client.initialize();
    let before = corpus::expected(&[(path.clone(), Fmt::Rfc5424)], &q("timeout"), None, 0).len();

    // Append whole lines (one write each) while the search runs.
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut rng = Rng::new(12);
            let more = corpus::gen_lines(&mut rng, Fmt::Rfc5424, start + 120_000 * 500 + 1000, 60_000, 100, 0, 0);
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            for chunk in more.chunks(200) {
                f.write_all(&corpus::file_bytes(chunk)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let args = json!({"service": "grow", "pattern": "timeout", "max_results": 1000});
    let r = client.call_tool_ok("search_logs", args.clone());
    writer.join().unwrap();
    assert_ne!(r["isError"], json!(true), "{r}");
    let sc = &r["structuredContent"];
    let after = corpus::expected(&[(path.clone(), Fmt::Rfc5424)], &q("timeout"), None, 0);
    let total = sc["total_matches"].as_u64().unwrap() as usize;
    // The search covers a line-aligned prefix of the file: at least what was
    // there before it started, at most what is there now, nothing half-written.
    assert!(total >= before && total <= after.len(), "total {total} outside [{before}, {}]", after.len());
    let inline = sc["matches"].as_array().unwrap();
    assert_matches("growing file, inline prefix", inline, &after[..inline.len()]);
    if let Some(reference) = sc["overflow"]["reference"].as_str() {
        let mut got = Vec::new();
        let mut offset = 0;
        loop {
            let p = client.call_tool_ok("read_search_file", json!({"reference": reference, "offset": offset, "limit": 1000}));
            let p = &p["structuredContent"];
            let ms = p["matches"].as_array().unwrap();
            offset += ms.len();
            got.extend(ms.iter().cloned());
            if p["eof"] == true {
                break;
            }
        }
        assert_matches("growing file, overflow", &got, &after[..total]);
    }
    // Once the file stopped growing, a new search sees every line (no stale cache).
    let r = client.call_tool_ok("search_logs", args);
    assert_eq!(
        r["structuredContent"]["total_matches"].as_u64().unwrap() as usize,
        after.len(),
        "a later search must see the appended lines"
    );
}

/// The bundled sample logs answer the quick start's examples (docs/tools.md).
#[test]
fn bundled_sample_logs_quick_start() {
    corpus::prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let root = logai_e2e::repo_root().join("examples/logs");
    let p = |glob: &str| vec![format!("{}/{glob}", root.display())];
    let manifest = corpus::manifest(
        dir.path(),
        &[
            ("payments", "json", &p("payments/*.log*")),
            ("auth", "syslog", &p("auth/auth.log*")),
            ("gateway", "syslog", &p("gateway/*.log*")),
        ],
        "",
    );
    let env = corpus::serve_env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut client = McpClient::serve(&manifest, &envs);
    client.initialize();
    let canon = |s: &str| std::fs::canonicalize(root.join(s)).unwrap();
    let payments = vec![
        (canon("payments/payments.log.2.gz"), Fmt::Json),
        (canon("payments/payments.log.1"), Fmt::Json),
        (canon("payments/payments.log"), Fmt::Json),
    ];
    // (arguments, the files and formats they cover, the query, the window)
    type Case = (Value, Vec<(PathBuf, Fmt)>, Query, Option<Win>);
    let cases: Vec<Case> = vec![
        (
            json!({"service": "payments", "pattern": "timeout", "date": "2026-11-20", "max_results": 1000}),
            payments.clone(),
            q("timeout"),
            Some(Win::date(2026, 11, 20)),
        ),
        (
            json!({"service": "gateway", "pattern": "status=504", "since": "2026-11-20T14:00:00Z", "until": "2026-11-20T15:00:00Z", "max_results": 1000}),
            vec![(canon("gateway/gateway.log.1"), Fmt::Rfc5424), (canon("gateway/gateway.log"), Fmt::Rfc5424)],
            q("status=504"),
            Some(Win { start: corpus::ms(2026, 11, 20, 14, 0, 0), end: corpus::ms(2026, 11, 20, 15, 0, 0) }),
        ),
        (
            json!({"service": "payments", "pattern": "SocketTimeoutException", "max_results": 1000}),
            payments,
            q("SocketTimeoutException"),
            None,
        ),
    ];
    for (args, files, query, win) in cases {
        let want = corpus::expected(&files, &query, win, 0);
        assert!(!want.is_empty(), "{args}: the sample logs should answer this");
        let r = client.call_tool_ok("search_logs", args.clone());
        assert_ne!(r["isError"], json!(true), "{args}: {r}");
        assert_matches(&args.to_string(), r["structuredContent"]["matches"].as_array().unwrap(), &want);
    }
    // RFC 3164 (auth) needs the year from the file's mtime; just check the
    // brute force is found on its day.
    let r = client.call_tool_ok(
        "search_logs",
        json!({"service": "auth", "pattern": "203.0.113.77", "fixed_strings": true, "date": "2026-11-20", "max_results": 1000}),
    );
    let total = r["structuredContent"]["total_matches"].as_u64().unwrap_or(0);
    let want = corpus::rg_line_numbers(
        &canon("auth/auth.log"),
        &Query { pattern: "203.0.113.77".into(), fixed_strings: true, ..Query::default() },
    )
    .len();
    assert_eq!(total as usize, want, "{r}");
}

/// A live log asked about again by another session (another process,
/// sharing Redis) with `minutes_back`: the answer includes the lines
/// appended since (never stale) and only those bytes are scanned — the
/// second session resumes from the tail the first left in the shared cache.
#[test]
fn growing_log_asked_again_from_another_session_scans_only_the_new_bytes() {
    corpus::prerequisites();
    let redis = logai_e2e::RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = std::fs::canonicalize(dir.path()).unwrap().join("live");
    std::fs::create_dir_all(&d).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut rng = Rng::new(21);
    // ~16 minutes of lines ending about 3 minutes ago.
    let lines = corpus::gen_lines(&mut rng, Fmt::Rfc5424, now - 20 * 60_000, 4000, 250, 0, 0);
    let path = corpus::write_file(&d, &GenFile { name: "live.log".into(), fmt: Fmt::Rfc5424, lines, gz: false });
    let manifest = corpus::manifest(dir.path(), &[("live", "syslog", &[format!("{}/*.log", d.display())])], "");
    let mut env = corpus::serve_env();
    env.push(("REDIS_URL".into(), redis.url()));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = json!({"service": "live", "pattern": "timeout", "minutes_back": 15, "max_results": 1000});
    let ask = || {
        let mut c = McpClient::serve(&manifest, &envs);
        c.initialize();
        let r = c.call_tool_ok("search_logs", args.clone());
        assert!(c.close().success());
        r["structuredContent"].clone()
    };
    let window = |sc: &Value| {
        let ms = |k: &str| chrono::DateTime::parse_from_rfc3339(sc[k].as_str().unwrap()).unwrap().timestamp_millis();
        Win { start: ms("window_start"), end: ms("window_end") }
    };

    let first = ask();
    let size_before = std::fs::metadata(&path).unwrap().len();
    assert_matches(
        "first session",
        first["matches"].as_array().unwrap(),
        &corpus::expected(&[(path.clone(), Fmt::Rfc5424)], &q("timeout"), Some(window(&first)), 0),
    );
    assert!(first["bytes_scanned"].as_u64().unwrap() > 100_000, "{}", first["bytes_scanned"]);

    // The service keeps writing: 40 more seconds of lines.
    let more = corpus::gen_lines(&mut rng, Fmt::Rfc5424, now - 40_000, 400, 50, 0, 0);
    let appended = corpus::file_bytes(&more);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&appended).unwrap();

    let second = ask();
    let want = corpus::expected(&[(path.clone(), Fmt::Rfc5424)], &q("timeout"), Some(window(&second)), 0);
    assert!(want.iter().any(|e| e.to_json()["line_number"].as_u64().unwrap() > 4000), "the appended lines have matches");
    assert_matches("second session, after the log grew", second["matches"].as_array().unwrap(), &want);
    let scanned = second["bytes_scanned"].as_u64().unwrap();
    eprintln!(
        "first session scanned {} bytes of {size_before}; after {} bytes were appended the second scanned {scanned}",
        first["bytes_scanned"],
        appended.len()
    );
    assert!(
        scanned >= appended.len() as u64 && scanned <= appended.len() as u64 + 4096,
        "scanned {scanned} bytes, {} appended",
        appended.len()
    );
}

#[test]
fn narrower_windows_and_less_context_are_cut_from_a_covering_answer() {
    let mut env = Env::start();
    let pat = "timeout|Caused by";
    let ask = |extra: Value| {
        let mut a = json!({"service": "app", "pattern": pat, "max_results": 1000});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };
    // The wide question: every file (plain and gz), context 3.
    let wide = env.search(ask(json!({"context": 3})));
    assert_eq!(wide["cached"], json!(false));
    assert!(wide["total_matches"].as_u64().unwrap() > 50, "{}", wide["total_matches"]);
    assert!(wide["bytes_scanned"].as_u64().unwrap() > 0);
    // Asked again: an exact hit reports what it did (nothing scanned, no
    // time in the core), not the figures of the scan that stored it.
    let again = env.search(ask(json!({"context": 3})));
    let hit = |r: &Value| (r["cached"].clone(), r["bytes_scanned"].clone(), r["duration_ms"].clone());
    assert_eq!(hit(&again), (json!(true), json!(0), json!(0)), "exact hit: {again}");
    assert_eq!(again["total_matches"], wide["total_matches"]);
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
    // Narrower ones, each against the ground truth, answered from it
    // (cached, nothing scanned): a day, a window across the gz/plain
    // rotation with a millisecond bound, an open end, less context, and
    // one paged through its overflow (max_results below its matches).
    let cases: [(Value, Option<Win>, usize, u32); 5] = [
        (json!({"date": "2026-11-20", "context": 1}), Some(Win::date(2026, 11, 20)), 1, 1000),
        (
            json!({"since": "2026-11-19T22:00:00Z", "until": "2026-11-20T02:00:00.500Z"}),
            Some(Win { start: parse("2026-11-19T22:00:00Z"), end: parse("2026-11-20T02:00:00.500Z") }),
            0,
            1000,
        ),
        (
            json!({"since": "2026-11-20T12:00:00+02:00", "context": 3}),
            Some(Win { start: parse("2026-11-20T12:00:00+02:00"), end: i64::MAX }),
            3,
            1000,
        ),
        (json!({"context": 2}), None, 2, 1000),
        (json!({"context": 1, "max_results": 7}), None, 1, 13),
    ];
    for (extra, win, context, page) in cases {
        let args = ask(extra);
        let first = env.search(args.clone());
        assert_eq!(hit(&first), (json!(true), json!(0), json!(0)), "narrowed hit {args}: {first}");
        // Asked again: an exact hit on what the narrowed one stored, the same.
        let second = env.search(args.clone());
        assert_eq!(hit(&second), (json!(true), json!(0), json!(0)), "exact hit {args}: {second}");
        // Asked again (now under its own key), every match paged through.
        let n = check(&mut env, "app", args.clone(), q(pat), win, context, page);
        assert!(n > 0, "{args}: the window should hold matches");
    }
    // More context than the covering answer has: searched.
    let more = env.search(ask(json!({"date": "2026-11-20", "context": 4})));
    assert_eq!(more["cached"], json!(false));
}
