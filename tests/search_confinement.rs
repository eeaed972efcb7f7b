//! Confinement of the search tools: path traversal and symlink escapes
//! through every argument are refused with clear errors, and no byte from
//! outside a service's roots ever reaches a result.
//!
//! The "no read outside the roots" check: a canary file with a unique token
//! lives outside the log directory, reachable only through symlinks placed
//! inside it (a file symlink and a directory symlink). The token must never
//! appear in any match or context line, whatever the arguments.
//!
//! Two proptest targets feed random arguments: one through the search core
//! API directly (`logai::search::SearchCore`, many cases), one through MCP
//! against the real `logai serve` (fewer cases, each a real tool call).

#[path = "support/corpus.rs"]
mod corpus;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corpus::{Fmt, GenFile, Rng};
use logai_e2e::McpClient;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{json, Value};

struct Layout {
    dir: tempfile::TempDir,
    root: PathBuf,
    token: String,
    manifest: PathBuf,
}

/// `logs/` (the only root) holds real logs plus `escape.log` -> the canary
/// file and `sub/` -> a directory of canaries, both outside.
fn layout() -> Layout {
    corpus::need_rg();
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let token = format!("CANARY{:016x}", Rng::new(std::process::id() as u64 ^ 0x5eed).next());
    let outside = base.join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    let canary_line = |i: usize| format!("<134>1 2026-11-20T10:{:02}:00.000Z host app 1 - - timeout {token} secret line {i}", i % 60);
    let canary: Vec<String> = (0..50).map(canary_line).collect();
    std::fs::write(outside.join("canary.log"), canary.join("\n") + "\n").unwrap();
    std::fs::write(outside.join("dir/inner.log"), canary.join("\n") + "\n").unwrap();
    std::fs::write(base.join("sibling.log"), canary.join("\n") + "\n").unwrap();

    let root = base.join("logs");
    std::fs::create_dir_all(root.join("nested")).unwrap();
    let mut rng = Rng::new(3);
    let start = corpus::ms(2026, 11, 20, 0, 0, 0);
    for name in ["app.log", "app.log.1"] {
        let lines = corpus::gen_lines(&mut rng, Fmt::Rfc5424, start, 400, 200_000, 0, 1);
        corpus::write_file(&root, &GenFile { name: name.into(), fmt: Fmt::Rfc5424, lines, gz: false });
    }
    let lines = corpus::gen_lines(&mut rng, Fmt::Rfc5424, start, 100, 800_000, 0, 0);
    corpus::write_file(&root.join("nested"), &GenFile { name: "deep.log".into(), fmt: Fmt::Rfc5424, lines, gz: false });
    std::os::unix::fs::symlink(outside.join("canary.log"), root.join("escape.log")).unwrap();
    std::os::unix::fs::symlink(outside.join("dir"), root.join("sub")).unwrap();
    std::os::unix::fs::symlink("../sibling.log", root.join("relative-escape.log")).unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink(root.join("app.log.1"), root.join("alias.log")).unwrap();

    let manifest = corpus::manifest(
        &base,
        &[("flat", "syslog", &[format!("{}/*.log*", root.display())]), ("deep", "syslog", &[format!("{}/**/*.log", root.display())])],
        "",
    );
    Layout { dir, root, token, manifest }
}

fn serve(l: &Layout) -> McpClient {
    corpus::prerequisites();
    let env = corpus::serve_env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut c = McpClient::serve(&l.manifest, &envs);
    c.timeout = Duration::from_secs(120);
    c.initialize();
    c
}

fn text_of(r: &Value) -> String {
    r["result"]["content"]
        .as_array()
        .map(|c| c.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// Every match and context line of a result, and every file named, stay
/// inside the root; the canary never shows.
fn assert_confined(l: &Layout, what: &str, resp: &Value) {
    let sc = &resp["result"]["structuredContent"];
    if let Some(ms) = sc["matches"].as_array() {
        for m in ms {
            let file = m["file"].as_str().unwrap();
            assert!(Path::new(file).starts_with(&l.root), "{what}: a match from outside the root: {file}");
            assert!(!m.to_string().contains(&l.token), "{what}: canary leaked: {m}");
        }
    }
    // Structured content never carries the token in any field (error
    // messages may echo the caller's own arguments, which never hold it).
    assert!(!sc.to_string().contains(&l.token), "{what}: canary leaked in structured content");
    assert!(!text_of(resp).contains(&l.token), "{what}: canary leaked in text: {}", text_of(resp));
}

fn is_tool_error(r: &Value) -> bool {
    r["result"]["isError"] == json!(true)
}

#[test]
fn symlinks_out_of_the_root_are_never_searched() {
    let l = layout();
    let mut c = serve(&l);
    for svc in ["flat", "deep"] {
        let r = c.call_tool("search_logs", json!({"service": svc, "pattern": l.token, "fixed_strings": true}));
        assert!(!is_tool_error(&r), "{r}");
        assert_eq!(r["result"]["structuredContent"]["total_matches"], 0, "{svc}: canary found: {r}");
        // Everything, paged: nothing from outside.
        let r = c.call_tool("search_logs", json!({"service": svc, "pattern": ".", "max_results": 1000}));
        assert_confined(&l, svc, &r);
        let sc = r["result"]["structuredContent"].clone();
        let total = sc["total_matches"].as_u64().unwrap();
        if let Some(reference) = sc["overflow"]["reference"].as_str() {
            let mut off = 0;
            while off < total {
                let p = c.call_tool("read_search_file", json!({"reference": reference, "offset": off, "limit": 1000}));
                assert_confined(&l, "overflow page", &p);
                off += 1000;
            }
        }
    }
    // The in-root alias is searched; escape.log, relative-escape.log and sub/ are not.
    let r = c.call_tool("list_services", json!({}));
    let services = r["result"]["structuredContent"]["services"].as_array().unwrap().clone();
    let flat = services.iter().find(|s| s["name"] == "flat").unwrap();
    // app.log, app.log.1, alias.log (-> app.log.1; deduplicated by canonical path).
    assert_eq!(flat["file_count"], 2, "{flat}");
    let deep = services.iter().find(|s| s["name"] == "deep").unwrap();
    assert_eq!(deep["file_count"], 3, "{deep}");
}

#[test]
fn traversal_in_file_pattern_is_refused() {
    let l = layout();
    let mut c = serve(&l);
    let outside = l.dir.path().join("outside/canary.log");
    let refused = [
        "../outside/canary.log".to_string(),
        "..".to_string(),
        "../*".to_string(),
        "../../**".to_string(),
        "sub/../../outside/*".to_string(),
        "nested/../../sibling.log".to_string(),
        outside.display().to_string(),
        "/etc/passwd".to_string(),
        "/**".to_string(),
        "..\\outside\\canary.log".to_string(),
    ];
    for fp in &refused {
        let r = c.call_tool("search_logs", json!({"service": "deep", "pattern": ".", "file_pattern": fp}));
        assert_confined(&l, fp, &r);
        let t = text_of(&r);
        let rpc_error = r.get("error").is_some();
        assert!(is_tool_error(&r) || rpc_error, "file_pattern {fp:?} must be refused: {r}");
        if !rpc_error {
            assert!(t.contains("file_pattern"), "the error names the argument: {t}");
            assert!(t.contains("forbidden") || t.contains("invalid"), "{t}");
        }
    }
    // Globs that would reach symlinked files or directories match nothing inside.
    for fp in ["escape.log", "relative-escape.log", "sub/*", "sub/**", "**/inner.log", "*canary*"] {
        let r = c.call_tool("search_logs", json!({"service": "deep", "pattern": ".", "file_pattern": fp}));
        assert_confined(&l, fp, &r);
        if !is_tool_error(&r) {
            assert_eq!(r["result"]["structuredContent"]["total_matches"], 0, "file_pattern {fp:?}: {r}");
        }
    }
}

#[test]
fn file_pattern_naming_only_escaping_symlinks_is_refused_naming_the_file() {
    let l = layout();
    let mut c = serve(&l);
    let target = l.dir.path().canonicalize().unwrap().join("outside").display().to_string();
    let cases = [
        ("flat", "escape.log", "escape.log"),
        ("deep", "escape.log", "escape.log"),
        ("flat", "relative-escape.log", "relative-escape.log"),
        ("deep", "sub/inner.log", "sub"),
        ("deep", "sub/*", "sub"),
        ("deep", "sub/**", "sub"),
    ];
    for (svc, fp, named) in cases {
        let r = c.call_tool("search_logs", json!({"service": svc, "pattern": ".", "file_pattern": fp}));
        assert_confined(&l, fp, &r);
        assert!(is_tool_error(&r), "{svc}: file_pattern {fp:?} must be refused: {r}");
        let t = text_of(&r);
        assert!(t.contains("file_pattern") && t.contains("forbidden"), "{t}");
        assert!(t.contains(&l.root.join(named).display().to_string()), "{svc} {fp:?}: the error names the file: {t}");
        assert!(t.contains("outside the service's roots"), "{t}");
        assert!(!t.contains(&target), "{svc} {fp:?}: the symlink's target is never named: {t}");
    }
    // A pattern that also selects files inside searches those, as without one.
    let r = c.call_tool("search_logs", json!({"service": "deep", "pattern": ".", "file_pattern": "*", "max_results": 1}));
    assert!(!is_tool_error(&r), "{r}");
    assert_confined(&l, "*", &r);
    assert_eq!(r["result"]["structuredContent"]["files_searched"], 3, "{r}");
    c.close();
}

#[test]
fn service_names_and_references_cannot_name_paths() {
    let l = layout();
    let mut c = serve(&l);
    for svc in ["../logs", "flat/..", "flat/../deep", "/etc", "flat/", "..", "deep\\..\\x", "FLAT"] {
        let r = c.call_tool("search_logs", json!({"service": svc, "pattern": "."}));
        assert_confined(&l, svc, &r);
        assert!(is_tool_error(&r) || r.get("error").is_some(), "service {svc:?} must be refused: {r}");
        if is_tool_error(&r) {
            let t = text_of(&r);
            assert!(t.contains("unknown service"), "{t}");
            assert!(t.contains("flat") && t.contains("deep"), "the error lists the valid services: {t}");
        }
    }

    // A reference from this session works; paths and other sessions' references do not.
    let r = c.call_tool("search_logs", json!({"service": "flat", "pattern": ".", "max_results": 1}));
    let reference = r["result"]["structuredContent"]["overflow"]["reference"].as_str().unwrap().to_string();
    let ok = c.call_tool("read_search_file", json!({"reference": reference, "offset": 0, "limit": 5}));
    assert!(!is_tool_error(&ok), "{ok}");

    let mut other = serve(&l);
    let r2 = other.call_tool("search_logs", json!({"service": "deep", "pattern": ".", "max_results": 1}));
    let foreign = r2["result"]["structuredContent"]["overflow"]["reference"].as_str().unwrap().to_string();
    let sessions = l.dir.path().join("sessions");
    let mut on_disk: Vec<String> = Vec::new();
    for e in walk(&sessions) {
        on_disk.push(e.display().to_string());
    }
    let mut refs = vec![
        foreign.clone(),
        "/etc/passwd".to_string(),
        "../../../../etc/passwd".to_string(),
        format!("../{reference}"),
        format!("{reference}/../../escape"),
        format!("{reference}.jsonl"),
        l.dir.path().join("outside/canary.log").display().to_string(),
        "ovf-0000000000000000".to_string(),
        "".to_string(),
    ];
    refs.extend(on_disk.iter().cloned());
    for bad in &refs {
        let r = c.call_tool("read_search_file", json!({"reference": bad, "offset": 0, "limit": 10}));
        assert_confined(&l, bad, &r);
        assert!(is_tool_error(&r) || r.get("error").is_some(), "reference {bad:?} must be refused: {r}");
        let sc = &r["result"]["structuredContent"];
        assert!(sc.is_null(), "no structured content for a refused reference: {r}");
    }
    other.close();
    c.close();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---------- random arguments ----------

fn good_pieces() -> Vec<&'static str> {
    vec![
        "timeout",
        ".",
        ".*",
        "req-[0-9a-f]+",
        "(?i)TIMEOUT",
        "^",
        "$",
        "..",
        "../",
        "/etc/passwd",
        "\\x00",
        "é",
        "|",
        "CANARY",
        "escape",
        "sub/",
        "\u{202e}",
        "(a+)+$",
        "\\d{2}:\\d{2}",
    ]
}

fn bad_pieces() -> Vec<&'static str> {
    vec!["(", "[", "\\", "a{1000000}", "*", "?"]
}

/// Random `search_logs` arguments: mostly valid (so most reach a search),
/// with traversal attempts everywhere and a share of invalid values.
fn arg_strategy() -> impl Strategy<Value = Value> {
    let piece = prop_oneof![6 => proptest::sample::select(good_pieces()), 1 => proptest::sample::select(bad_pieces())];
    let pattern = proptest::collection::vec(piece, 1..4).prop_map(|v| v.concat());
    let service = prop_oneof![
        4 => proptest::sample::select(vec!["flat", "deep"]),
        1 => proptest::sample::select(vec!["../flat", "flat/../deep", "", "/", "nope", "deep/", "../../etc"]),
    ];
    let fp_piece = proptest::sample::select(vec![
        "*",
        "..",
        "/",
        "sub",
        "escape.log",
        "**",
        "nested",
        "app.log*",
        "\\",
        "{a,b}",
        "[",
        "*.log",
        "../outside",
    ]);
    let fp = prop_oneof![2 => Just(None), 1 => proptest::collection::vec(fp_piece, 1..4).prop_map(|v| Some(v.concat()))];
    let window = prop_oneof![
        4 => Just(json!({})),
        1 => (0u64..2_000_000).prop_map(|m| json!({"minutes_back": m})),
        1 => (0u64..200_000).prop_map(|h| json!({"hours_back": h})),
        1 => proptest::sample::select(vec!["2026-11-20", "2026-02-30", "20261120", "../../x", "2026-11-20T00:00:00Z"]).prop_map(|d| json!({"date": d})),
        1 => (proptest::sample::select(vec!["2026-11-20T00:00:00Z", "2026-11-20T10:00:00+02:00", "bad", "2026-11-21T00:00:00Z"]), proptest::sample::select(vec!["2026-11-20T12:00:00Z", "2026-11-19T00:00:00Z", "x"]))
            .prop_map(|(s, u)| json!({"since": s, "until": u})),
        1 => Just(json!({"hours_back": 5, "date": "2026-11-20"})),
    ];
    let context = prop_oneof![5 => 0u64..=10, 1 => 11u64..1000];
    let max = prop_oneof![2 => Just(None), 4 => (1u64..=1000).prop_map(Some), 1 => (0u64..100_000).prop_map(Some)];
    let fmt = prop_oneof![3 => Just(None), 2 => proptest::sample::select(vec!["auto", "syslog", "json", "plain"]).prop_map(Some), 1 => Just(Some("xml"))];
    (service, pattern, fp, window, any::<bool>(), any::<bool>(), context, max, fmt).prop_map(
        |(service, pattern, fp, window, fixed, ci, context, max, fmt)| {
            let mut a = json!({"service": service, "pattern": pattern, "fixed_strings": fixed, "case_insensitive": ci, "context": context});
            if let Some(fp) = fp {
                a["file_pattern"] = json!(fp);
            }
            if let Some(m) = max {
                a["max_results"] = json!(m);
            }
            if let Some(f) = fmt {
                a["log_format"] = json!(f);
            }
            for (k, v) in window.as_object().unwrap() {
                a[k] = v.clone();
            }
            a
        },
    )
}

#[test]
fn proptest_random_arguments_through_mcp() {
    let l = layout();
    let client = RefCell::new(serve(&l));
    let searched = std::cell::Cell::new(0u32);
    let cases: u32 = std::env::var("LOGAI_PROPTEST_MCP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut runner = TestRunner::new(PtConfig { cases, failure_persistence: None, ..PtConfig::default() });
    runner
        .run(&arg_strategy(), |args| {
            let mut c = client.borrow_mut();
            let r = c.call_tool("search_logs", args.clone());
            prop_assert!(r.get("result").is_some() || r.get("error").is_some(), "no answer to {}", args);
            assert_confined(&l, &args.to_string(), &r);
            if let Some(sc) = r["result"]["structuredContent"].as_object() {
                searched.set(searched.get() + 1);
                if let Some(reference) = sc.get("overflow").and_then(|o| o["reference"].as_str()) {
                    let p = c.call_tool("read_search_file", json!({"reference": reference, "offset": 0, "limit": 1000}));
                    assert_confined(&l, "page", &p);
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{} of {cases} random calls searched; the rest were refused", searched.get());
    assert!(searched.get() >= cases / 20, "too few random calls got through to a search ({})", searched.get());
    // Still serving after all that.
    let mut c = client.into_inner();
    let r = c.call_tool("list_services", json!({}));
    assert!(r["result"]["structuredContent"]["services"].is_array(), "{r}");
    c.close();
}

#[test]
fn proptest_random_requests_through_the_core_api() {
    use logai::search::{SearchControl, SearchCore, SearchRequest, SessionDir};
    let l = layout();
    let config = logai::config::load(Some(&l.manifest)).expect("manifest");
    let session = SessionDir::create(l.dir.path().join("core-session")).unwrap();
    let core = SearchCore::new(&config, session).expect("core");
    let now = chrono::Utc::now();
    let cases: u32 = std::env::var("LOGAI_PROPTEST_CORE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mut runner = TestRunner::new(PtConfig { cases, failure_persistence: None, ..PtConfig::default() });
    let executed = std::cell::Cell::new(0u32);
    let strategy = (arg_strategy(), proptest::option::of("[a-z0-9./_-]{0,40}"), 0u64..100, 0u32..2000);
    runner
        .run(&strategy, |(a, bad_ref, off, lim)| {
            let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(String::from);
            let n = |k: &str| a.get(k).and_then(|v| v.as_u64());
            let req = SearchRequest {
                service: s("service").unwrap_or_default(),
                pattern: s("pattern").unwrap_or_default(),
                fixed_strings: a["fixed_strings"].as_bool().unwrap_or(false),
                case_insensitive: a["case_insensitive"].as_bool().unwrap_or(false),
                minutes_back: n("minutes_back").map(|v| v as u32),
                hours_back: n("hours_back").map(|v| v as u32),
                date: s("date"),
                since: s("since"),
                until: s("until"),
                file_pattern: s("file_pattern"),
                log_format: s("log_format"),
                context: n("context").unwrap_or(0) as u32,
                max_results: n("max_results").unwrap_or(100) as u32,
            };
            if let Ok(plan) = core.plan(&req, now) {
                for f in &plan.files {
                    prop_assert!(f.path.starts_with(&l.root), "planned a file outside the root: {}", f.path.display());
                }
                let resp = core.execute(&plan, &SearchControl::with_timeout(Duration::from_secs(30)));
                if let Ok(resp) = resp {
                    executed.set(executed.get() + 1);
                    for m in &resp.matches {
                        prop_assert!(Path::new(&m.file).starts_with(&l.root), "match outside the root: {}", m.file);
                        prop_assert!(!m.text.contains(&l.token), "canary leaked");
                        prop_assert!(m.before.iter().chain(m.after.iter()).all(|c| !c.text.contains(&l.token)), "canary leaked in context");
                    }
                    if let Some(ov) = &resp.overflow {
                        let page = core.read_overflow(&ov.reference, off, lim.max(1)).expect("own overflow readable");
                        prop_assert!(page.matches.iter().all(|m| !m.text.contains(&l.token)));
                    }
                }
            }
            if let Some(r) = bad_ref {
                if let Ok(p) = core.read_overflow(&r, off, lim) {
                    prop_assert!(false, "a made-up reference {:?} was readable ({} matches)", r, p.matches.len());
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{} of {cases} random requests ran; the rest were refused", executed.get());
    assert!(executed.get() >= cases / 20, "too few random requests got through to a search ({})", executed.get());
}
