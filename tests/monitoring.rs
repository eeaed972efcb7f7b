//! The operator's kit against real runs (issue 12, items 1 and 2): several
//! runs of real `logai serve` sessions, each behind its own `logai metrics
//! --listen` (one log host each, sharing one real Redis under different key
//! prefixes), scraped every second by a real `prometheus` that evaluates a
//! test copy of `config/monitoring/logai-alerts.rules.yml` (every `for:`
//! set to 0s, annotations dropped):
//!
//! - `healthy`: searches, cache hits by key and narrowed, a resumed tail,
//!   evictions; no alert may ever be active for it;
//! - `trip`: a panicking tool (internal errors), a bad regex, busy refusals
//!   while a permit is held elsewhere, rate-limited calls, results too large
//!   to cache, and a Sentry exporter whose receiver hangs (dropped events);
//! - `slow`: searches that wait over 5 s for a permit;
//! - `outage`: its Redis refuses writes (full), recovers, then dies;
//!   and a target where nothing listens.
//!
//! Then: every metric name and label value that the rules, the dashboard
//! queries (after `_ms` → `_seconds`) and the docs use is in the runs' real
//! exposition; every query of every Grafana panel returns data; every alert
//! is active for the run that should trip it; `promtool test rules` on the
//! series scraped from these runs agrees with what the real Prometheus
//! decided.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logai_e2e::{
    free_port, http_get, logai_bin, plugin_dist, repo_root, sample_services_toml, serve_command, wait_for, which, write_manifest,
    McpClient, Proc, RedisServer,
};
use serde_json::{json, Value};

struct Keep(PathBuf);
impl Keep {
    fn path(&self) -> &Path {
        &self.0
    }
}

fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// One log host: a manifest, its key prefix in the shared Redis, its `logai metrics`.
struct Run {
    name: &'static str,
    manifest: PathBuf,
    port: u16,
    dir: PathBuf,
    _metrics: Proc,
}

fn start_run(root: &Path, name: &'static str, redis: Option<&RedisServer>, plugins: &[(&str, &str)], extra: &str) -> Run {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let redis_toml = match redis {
        Some(r) => format!("[redis]\nurl = \"{}\"\nkey_prefix = \"monitoring-{name}-{}\"\n", r.url(), std::process::id()),
        None => String::new(),
    };
    let text = format!(
        "{}\n{extra}\n{redis_toml}\n[[exporter]]\nname = \"prometheus\"\ncomponent = \"{}\"\n",
        sample_services_toml(),
        plugin_dist().join("prometheus.wasm").display()
    );
    let manifest = write_manifest(&dir, plugins, &text);
    let port = free_port();
    let metrics = Proc(
        Command::new(logai_bin())
            .args(["metrics", "--config"])
            .arg(&manifest)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("metrics.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    Run { name, manifest, port, dir, _metrics: metrics }
}

/// A `logai serve` session of a run (its stderr in the run's directory).
fn session(manifest: &Path, dir: &Path, tag: &str) -> McpClient {
    let mut cmd = serve_command(manifest);
    cmd.stderr(Stdio::from(std::fs::File::create(dir.join(format!("serve-{tag}.log"))).unwrap()));
    let mut c = McpClient::spawn(cmd);
    c.initialize();
    c
}

impl Run {
    fn session(&self, tag: &str) -> McpClient {
        session(&self.manifest, &self.dir, tag)
    }
    fn exposition(&self) -> String {
        http_get(self.port, "/metrics").unwrap_or_else(|| panic!("{}: /metrics failed", self.name))
    }
}

/// `coord-holder` taking the only permit of a run and holding it until dropped.
fn hold_permit(prefix: &str, url: &str) -> Proc {
    use std::io::BufRead;
    let mut h = Command::new(env!("CARGO_BIN_EXE_coord-holder"))
        .args([url, "hold", "payments"])
        .env("COORD_PREFIX", prefix)
        .env("COORD_GLOBAL", "1")
        .env("COORD_SERVICE", "1")
        .env("COORD_LEASE_MS", "600")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(h.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ACQUIRED shared=true");
    Proc(h)
}

fn text_of(result: &Value) -> String {
    result["content"].as_array().map(|c| c.iter().filter_map(|x| x["text"].as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// The exposition: family → label name → values seen (TYPE lines name the families).
type Exposed = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn parse_exposition(text: &str, into: &mut Exposed) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            into.entry(rest.split(' ').next().unwrap().to_string()).or_default();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, labels) = match line.split_once('{') {
            Some((n, rest)) => (n, rest.rsplit_once('}').unwrap().0),
            None => (line.split(' ').next().unwrap(), ""),
        };
        // A histogram's series belong to its family (TYPE comes first).
        let family =
            ["_bucket", "_sum", "_count"].iter().filter_map(|s| series.strip_suffix(s)).find(|f| into.contains_key(*f)).unwrap_or(series);
        let fam = into.entry(family.to_string()).or_default();
        for (k, v) in label_pairs(labels) {
            fam.entry(k).or_default().insert(v);
        }
    }
}

/// A label matcher: (name, op, value).
type Matcher = (String, String, String);

/// `a="x",b=~"y|z"` → (name, op, value) (values unescaped enough for ours).
fn matchers(s: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &s[start..i];
        let ostart = i;
        while i < b.len() && b"=!~".contains(&b[i]) {
            i += 1;
        }
        let op = &s[ostart..i];
        if name.is_empty() || op.is_empty() || i >= b.len() || b[i] != b'"' {
            break;
        }
        i += 1;
        let vstart = i;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        out.push((name.to_string(), op.to_string(), s[vstart..i.min(s.len())].replace("\\\"", "\"")));
        i += 1;
    }
    out
}

fn label_pairs(s: &str) -> Vec<(String, String)> {
    matchers(s).into_iter().map(|(k, _, v)| (k, v)).collect()
}

/// Every `logai_*` metric selector in a PromQL expression: (family as
/// exposed, matchers). Histogram series name their family.
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("logai_") {
        let before = rest[..i].chars().last();
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        if matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == ':') || rest.starts_with(':') {
            continue;
        }
        let mut ms = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let close = r.find('}').unwrap();
            ms = matchers(&r[..close]);
        }
        out.push((name.to_string(), ms));
    }
    out
}

/// The family a name is exposed under (`_ms` → `_seconds`; a histogram's
/// `_bucket`/`_sum`/`_count` series belong to it).
fn exposed_family<'a>(name: &str, exposed: &'a Exposed) -> Option<(String, &'a BTreeMap<String, BTreeSet<String>>)> {
    let name = name.strip_suffix("_ms").map(|s| format!("{s}_seconds")).unwrap_or_else(|| name.to_string());
    if let Some(f) = exposed.get(&name) {
        return Some((name, f));
    }
    let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s))?;
    exposed.get(family).map(|f| (family.to_string(), f))
}

/// Problems with one use of a name (and its matchers) against the exposition.
fn check_use(place: &str, name: &str, ms: &[(String, String, String)], exposed: &Exposed, problems: &mut Vec<String>) {
    let Some((fam, labels)) = exposed_family(name, exposed) else {
        problems.push(format!("{place}: `{name}` is not in the exposition"));
        return;
    };
    for (k, op, v) in ms {
        let values: Vec<&str> = match op.as_str() {
            "=" => vec![v.as_str()],
            "=~" => v.split('|').collect(),
            _ => continue,
        };
        for v in values {
            if !labels.get(k).is_some_and(|seen| seen.contains(v)) {
                problems.push(format!("{place}: `{fam}{{{k}=\"{v}\"}}` is not in the exposition (seen {k}: {:?})", labels.get(k)));
            }
        }
    }
}

/// Every PromQL expression of the rules file: (what, expr), alerts and records.
fn rule_exprs(rules: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = String::new();
    let lines: Vec<&str> = rules.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start().trim_start_matches("- ");
        if let Some(n) = t.strip_prefix("alert: ").or_else(|| t.strip_prefix("record: ")) {
            name = n.trim().to_string();
        } else if let Some(e) = t.strip_prefix("expr: ") {
            let indent = lines[i].len() - lines[i].trim_start().len();
            let mut expr = String::new();
            if e.trim() == "|" {
                i += 1;
                while i < lines.len() && (lines[i].trim().is_empty() || lines[i].len() - lines[i].trim_start().len() > indent) {
                    expr.push_str(lines[i].trim());
                    expr.push(' ');
                    i += 1;
                }
                out.push((name.clone(), expr));
                continue;
            }
            out.push((name.clone(), e.trim().to_string()));
        }
        i += 1;
    }
    out
}

fn dashboard_exprs() -> Vec<(String, String)> {
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("config/monitoring/grafana-logai.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    fn walk(ps: &Value, out: &mut Vec<(String, String)>) {
        for p in ps.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    format!("panel {:?} {}", p["title"].as_str().unwrap_or(""), t["refId"]),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
            walk(&p["panels"], out);
        }
    }
    walk(&d["panels"], &mut out);
    out
}

/// Names and label values the docs use: backticked `logai_*` names (with
/// inline `{k="v"}` matchers), and in the metric tables of
/// docs/coordination.md the values listed for a label (`k` (`a`/`b`)).
fn doc_uses() -> Vec<(String, String, Vec<Matcher>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for (n, line) in text.lines().enumerate() {
            let place = format!("docs/{file}:{}", n + 1);
            for chunk in line.split('`').skip(1).step_by(2) {
                if let Some(rest) = chunk.strip_prefix("logai_") {
                    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                    let after = &rest[end..];
                    if !(after.is_empty() || after.starts_with('{')) {
                        continue; // a Rust path (`logai_plugin_sdk::...`), not a metric
                    }
                    let ms = after.strip_prefix('{').and_then(|a| a.split_once('}')).map(|(m, _)| matchers(m)).unwrap_or_default();
                    out.push((place.clone(), format!("logai_{}", &rest[..end]), ms));
                }
            }
            // | `name` | type | `label` (`a`/`b`), `label2` ... |
            if line.starts_with("| `logai_") {
                let cols: Vec<&str> = line.split('|').map(str::trim).collect();
                let name = cols[1].trim_matches('`').to_string();
                let mut ms = Vec::new();
                for part in cols.get(3).unwrap_or(&"").split("), ") {
                    if let Some((label, list)) = part.split_once(" (") {
                        let label = label.rsplit(',').next().unwrap().trim().trim_matches('`');
                        for v in list.trim_end_matches(')').split(['/', ',']) {
                            let v = v.trim();
                            if v.starts_with('`') && v.ends_with('`') && !v.contains(':') {
                                ms.push((label.to_string(), "=".to_string(), v.trim_matches('`').to_string()));
                            }
                        }
                    }
                }
                out.push((place.clone(), name, ms));
            }
        }
    }
    out
}

/// The rules file with every `for:` 0s and no annotations (they render
/// `$value`, which no two evaluations share).
fn test_copy_of_rules(rules: &str) -> String {
    let mut out = String::new();
    let mut skipping: Option<usize> = None;
    for line in rules.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(i) = skipping {
            if line.trim().is_empty() || indent > i {
                continue;
            }
            skipping = None;
        }
        if line.trim_start().starts_with("annotations:") {
            skipping = Some(indent);
            continue;
        }
        if line.trim_start().starts_with("for: ") {
            out.push_str(&format!("{}for: 0s\n", " ".repeat(indent)));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

struct Prom {
    port: u16,
    _proc: Proc,
}

impl Prom {
    fn api(&self, path: &str) -> Value {
        let body = http_get(self.port, path).unwrap_or_else(|| panic!("prometheus {path} failed"));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }
    fn query(&self, q: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", enc(q)))["result"].as_array().cloned().unwrap_or_default()
    }
    fn query_at(&self, q: &str, t: f64) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}&time={t:.3}", enc(q)))["result"].as_array().cloned().unwrap_or_default()
    }
    /// Active alerts: (alertname, instance) → labels (without alertname/alertstate).
    fn active(&self) -> BTreeMap<(String, String), BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for a in self.api("/api/v1/alerts")["alerts"].as_array().unwrap() {
            let labels: BTreeMap<String, String> =
                a["labels"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
            out.insert((labels["alertname"].clone(), labels.get("instance").cloned().unwrap_or_default()), labels);
        }
        out
    }
}

/// A loopback TCP port bound but not listening: connecting is refused (and
/// nothing else can take it) for as long as the returned socket lives.
fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0);
        let mut len2 = len;
        assert_eq!(libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len2), 0);
        (std::os::fd::OwnedFd::from_raw_fd(fd), u16::from_be(addr.sin_port))
    }
}

/// Wait until Prometheus holds a sample of `selector`: a counter's first
/// sample is its base (`rate` counts increases after it), so a test that
/// wants a rate puts one event before that sample and the rest after.
fn until_scraped(pport: u16, selector: &str) {
    wait_for(&format!("prometheus to scrape {selector}"), 60, || {
        let body = http_get(pport, &format!("/api/v1/query?query={}", enc(selector)))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (!v["data"]["result"].as_array()?.is_empty()).then_some(())
    });
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn monitoring_artefacts_hold_against_real_runs() {
    let redis = RedisServer::start(&[]);
    let root_dir = tempfile::tempdir().unwrap();
    // LOGAI_KEEP_TEST_DIR=1 keeps the runs' logs, manifests and promtool files.
    let root = if std::env::var_os("LOGAI_KEEP_TEST_DIR").is_some() {
        let p = root_dir.keep();
        eprintln!("monitoring: test directory {}", p.display());
        Keep(p)
    } else {
        Keep(root_dir.path().to_path_buf())
    };
    let search_tools = ("search-tools", "search-tools.wasm");

    // A service whose log grows between two identical searches (a resumed tail).
    let app_dir = root.path().join("applogs");
    std::fs::create_dir_all(&app_dir).unwrap();
    let app_log = app_dir.join("app.log");
    let line = |i: usize| format!("{{\"timestamp\": \"2026-11-20T00:{:02}:00Z\", \"level\": \"ERROR\", \"msg\": \"boom {i}\"}}\n", i % 60);
    std::fs::write(&app_log, (0..50).map(line).collect::<String>()).unwrap();
    let app_service = format!(
        "[[service]]\nname = \"app\"\ndescription = \"grows\"\npaths = [\"{}\"]\nformat = \"json\"\ntimezone = \"UTC\"\n",
        app_log.display()
    );

    let healthy = start_run(root.path(), "healthy", Some(&redis), &[search_tools], &format!("[cache]\nmax_size_mb = 1\n\n{app_service}"));
    // The trip run's Sentry receiver accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let trip = start_run(
        root.path(),
        "trip",
        Some(&redis),
        &[search_tools, ("test-panic", "test-panic.wasm")],
        &format!(
            "[limits]\nmax_global_searches = 1\nmax_per_service_searches = 1\npermit_wait_ms = 300\nrate_limit_per_user_per_minute = 1\nrate_limit_burst = 12\n\n\
             [cache]\nmax_entry_kb = 1\n\n\
             [telemetry]\nqueue_capacity = 8\nbatch_size = 4\nbatch_interval_ms = 50\nflush_timeout_ms = 300\n\n\
             [[exporter]]\nname = \"sentry\"\ncomponent = \"{}\"\nenabled = true\ntimeout_ms = 1000\nallowed_hosts = [\"127.0.0.1:{hung_port}\"]\n\
             settings = {{ dsn = \"http://k@127.0.0.1:{hung_port}/1\" }}\n",
            plugin_dist().join("sentry.wasm").display()
        ),
    );
    let slow = start_run(
        root.path(),
        "slow",
        Some(&redis),
        &[search_tools],
        "[limits]\nmax_global_searches = 1\nmax_per_service_searches = 1\npermit_wait_ms = 60000\n",
    );
    // The outage run has a Redis of its own: full (writes refused), then gone.
    let mut outage_redis = RedisServer::start(&[]);
    let local = start_run(root.path(), "outage", Some(&outage_redis), &[search_tools], "");
    let (_dead_socket, dead_port) = refusing_port();
    for r in [&healthy, &trip, &slow, &local] {
        wait_for(&format!("{} /healthz", r.name), 60, || http_get(r.port, "/healthz"));
    }
    let instance = |r: &Run| format!("127.0.0.1:{}", r.port);
    let dead_instance = format!("127.0.0.1:{dead_port}");

    // The real Prometheus with the test copy of the rules.
    let rules = std::fs::read_to_string(repo_root().join("config/monitoring/logai-alerts.rules.yml")).unwrap();
    let pdir = root.path().join("prometheus");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("rules.yml"), test_copy_of_rules(&rules)).unwrap();
    let targets: Vec<String> =
        [&healthy, &trip, &slow, &local].iter().map(|r| format!("'{}'", instance(r))).chain([format!("'{dead_instance}'")]).collect();
    std::fs::write(
        pdir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: logai\n    static_configs:\n      - targets: [{}]\n",
            pdir.join("rules.yml").display(),
            targets.join(", ")
        ),
    )
    .unwrap();
    let pport = free_port();
    let prom = Prom {
        port: pport,
        _proc: Proc(
            Command::new(which("prometheus"))
                .arg(format!("--config.file={}", pdir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", pdir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(pdir.join("prometheus.log")).unwrap()))
                .spawn()
                .unwrap(),
        ),
    };
    wait_for("prometheus to scrape every target", 60, || {
        let body = http_get(pport, &format!("/api/v1/query?query={}", enc("up")))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["data"]["result"].as_array()?.len() == 5).then_some(())
    });
    let t0 = now_s().floor();

    // --- healthy: ordinary work, no alert.
    let h = std::thread::spawn({
        let manifest = healthy.manifest.clone();
        let dir = healthy.dir.clone();
        let app_log = app_log.clone();
        move || {
            let mut c = session(&manifest, &dir, "h1");
            let a = json!({"service": "payments", "pattern": "declined"});
            c.call_tool_ok("search_logs", a.clone());
            let hit = c.call_tool_ok("search_logs", a);
            assert!(!hit["isError"].as_bool().unwrap_or(false), "{hit}");
            // A wider window answered, then a narrower one cut from it.
            c.call_tool_ok(
                "search_logs",
                json!({"service": "payments", "pattern": "refund", "since": "2026-11-19T00:00:00Z", "until": "2026-11-22T00:00:00Z"}),
            );
            c.call_tool_ok(
                "search_logs",
                json!({"service": "payments", "pattern": "refund", "since": "2026-11-20T00:00:00Z", "until": "2026-11-21T00:00:00Z"}),
            );
            // A growing log asked about again: the tail resumes.
            let q = json!({"service": "app", "pattern": "boom"});
            c.call_tool_ok("search_logs", q.clone());
            std::fs::OpenOptions::new().append(true).open(&app_log).unwrap().write_all(line(99).as_bytes()).unwrap();
            c.call_tool_ok("search_logs", q);
            // Large answers until the 1 MB cache evicts (each distinct).
            for i in 1..=12 {
                c.call_tool_ok("search_logs", json!({"service": "gateway", "pattern": ".".repeat(i), "max_results": 5}));
            }
            c.call_tool_ok("list_services", json!({}));
            assert!(c.close().success());
        }
    });

    // --- slow (on its own thread): three searches wait over 5 s for the
    // permit a holder takes; a fourth is cancelled while it waits.
    let slow_phase = std::thread::spawn({
        let (manifest, dir, port, url) = (slow.manifest.clone(), slow.dir.clone(), slow.port, redis.url());
        move || {
            // One quick search first: the histogram's base sample.
            let mut c = session(&manifest, &dir, "s-first");
            c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "refund"}));
            assert!(c.close().success());
            until_scraped(pport, &format!("logai_search_duration_seconds_count{{instance=\"127.0.0.1:{port}\"}}"));
            let prefix = format!("monitoring-slow-{}", std::process::id());
            let holder = hold_permit(&prefix, &url);
            let waiters: Vec<_> = (0..3)
                .map(|i| {
                    let (manifest, dir) = (manifest.clone(), dir.clone());
                    std::thread::spawn(move || {
                        let mut c = session(&manifest, &dir, &format!("s{i}"));
                        let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": format!("timeout|slow{i}")}));
                        assert!(!r["isError"].as_bool().unwrap_or(false), "{r}");
                        assert!(c.close().success());
                    })
                })
                .collect();
            let mut canceller = session(&manifest, &dir, "cancel");
            let id = canceller.next_id();
            canceller.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "search_logs", "arguments": {"service": "payments", "pattern": "cancelled"}}}));
            let queued = |n: u32| {
                let want = format!(" {n}");
                move || {
                    http_get(port, "/metrics")?
                        .lines()
                        .any(|l| l.starts_with("logai_permit_queue_length") && l.ends_with(&want))
                        .then_some(())
                }
            };
            wait_for("four searches queued in the slow run", 60, queued(4));
            let queued_at = Instant::now();
            canceller.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}));
            wait_for("the cancelled search to leave the queue", 60, queued(3));
            assert!(canceller.close().success());
            // They have waited over 5 s (what the latency SLO counts as slow).
            if let Some(left) = Duration::from_millis(5200).checked_sub(queued_at.elapsed()) {
                std::thread::sleep(left);
            }
            drop(holder);
            for w in waiters {
                w.join().unwrap();
            }
        }
    });

    // --- outage: Redis refuses writes (OOM), recovers, then dies.
    outage_redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let mut c = local.session("o1");
    c.call_tool_ok("search_logs", json!({"service": "auth", "pattern": "sshd"}));
    outage_redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert!(c.close().success());
    // What each run exposed along the way (an outage changes what is exposed).
    let mut exposed = Exposed::new();
    let text = wait_for("the refused writes counted (kind=redis_reply) once Redis takes writes again", 60, || {
        let t = local.exposition();
        t.contains("logai_errors_total{kind=\"redis_reply\"}").then_some(t)
    });
    parse_exposition(&text, &mut exposed);
    outage_redis.kill();
    let text = wait_for("the outage counted (kind=redis_unavailable) by `logai metrics`", 60, || {
        let t = local.exposition();
        t.contains("logai_errors_total{kind=\"redis_unavailable\"}").then_some(t)
    });
    parse_exposition(&text, &mut exposed);

    // --- trip: errors, busy refusals, rate limits, drops, saturation.
    let trip_prefix = format!("monitoring-trip-{}", std::process::id());
    let mut c = trip.session("t1");
    c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "timeout"}));
    for i in 0..3 {
        let r = c.call_tool("boom", json!({}));
        assert!(r.get("error").is_some() || r["result"]["isError"] == true, "{r}");
        if i == 0 {
            c.call_tool_ok("list_services", json!({})); // the metrics flush runs between calls
            until_scraped(pport, &format!("logai_tool_calls_total{{outcome=\"internal\",instance=\"{}\"}}", instance(&trip)));
        }
    }
    let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "(unclosed"}));
    assert_eq!(r["isError"], true, "{r}");
    c.call_tool("no_such_tool", json!({}));
    c.call_tool("search_logs", json!({"service": 5}));
    let trip_holder = hold_permit(&trip_prefix, &redis.url());
    for i in 0..2 {
        let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": format!("busy{i}")}));
        assert!(text_of(&r).contains("busy"), "{r}");
    }
    let inst_trip = instance(&trip);
    wait_for("LogaiPermitsSaturated active for the trip run while its permit is held", 60, || {
        prom.active().contains_key(&("LogaiPermitsSaturated".to_string(), inst_trip.clone())).then_some(())
    });
    wait_for("the holder's lease renewals in the trip run's exposition", 60, || {
        trip.exposition().contains("op=\"permit_renew\"").then_some(())
    });
    drop(trip_holder);
    let mut limited = false;
    for i in 0..30 {
        let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": format!("rate{i}")}));
        if text_of(&r).contains("rate limit") {
            limited = true;
            until_scraped(pport, &format!("logai_rate_limited_total{{instance=\"{}\"}}", instance(&trip)));
            let r = c.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "rate-again"}));
            assert!(text_of(&r).contains("rate limit"), "{r}");
            break;
        }
    }
    assert!(limited, "the trip run's rate limit refused a call");
    assert!(c.close().success());

    slow_phase.join().unwrap();
    h.join().unwrap();

    // --- item 1: every name and label value used is in the real exposition.
    for r in [&healthy, &trip, &slow, &local] {
        parse_exposition(&r.exposition(), &mut exposed);
    }
    let mut problems = Vec::new();
    for (what, expr) in rule_exprs(&rules).into_iter().map(|(n, e)| (format!("rules {n}"), e)).chain(dashboard_exprs()) {
        assert!(!expr.contains("vector("), "{what}: `{expr}` hides absence with vector(...)");
        for (name, ms) in selectors(&expr) {
            check_use(&what, &name, &ms, &exposed, &mut problems);
        }
    }
    let docs = doc_uses();
    assert!(docs.len() > 20, "the docs' metric uses were found: {docs:?}");
    for (place, name, ms) in docs {
        check_use(&place, &name, &ms, &exposed, &mut problems);
    }
    assert!(problems.is_empty(), "names or label values not in the real exposition:\n{}", problems.join("\n"));

    // --- item 2: the alerts each run should trip, and nothing for the healthy one.
    let expected: BTreeSet<(String, String)> = [
        ("LogaiErrorRateHigh", &inst_trip),
        ("LogaiPermitsBusy", &inst_trip),
        ("LogaiRateLimiting", &inst_trip),
        ("LogaiTelemetryDropping", &inst_trip),
        ("LogaiSearchAvailabilityBurnFast", &inst_trip),
        ("LogaiSearchAvailabilityBurnSlow", &inst_trip),
        ("LogaiSearchLatencyHigh", &instance(&slow)),
        ("LogaiSearchLatencyBurnFast", &instance(&slow)),
        ("LogaiSearchLatencyBurnSlow", &instance(&slow)),
        ("LogaiRedisDown", &instance(&local)),
        ("LogaiMetricsDown", &dead_instance),
    ]
    .into_iter()
    .map(|(a, i)| (a.to_string(), i.clone()))
    .collect();
    let t_alerts = Instant::now();
    loop {
        let keys: BTreeSet<_> = prom.active().keys().cloned().collect();
        if keys == expected {
            break;
        }
        assert!(
            t_alerts.elapsed() < Duration::from_secs(90),
            "alerts active after 90 s: missing {:?}, unexpected {:?}",
            expected.difference(&keys).collect::<Vec<_>>(),
            keys.difference(&expected).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let every_alert: BTreeSet<String> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_string)).collect();
    let seen: BTreeSet<String> = expected.iter().map(|(a, _)| a.clone()).chain(["LogaiPermitsSaturated".to_string()]).collect();
    assert_eq!(seen, every_alert, "every alert of the rules file is tripped by some run");
    let healthy_alerts = prom.query(&format!("count_over_time(ALERTS{{instance=\"{}\"}}[10m])", instance(&healthy)));
    assert!(healthy_alerts.is_empty(), "the healthy run tripped alerts: {healthy_alerts:?}");

    // Every query of every Grafana panel returns data.
    let mut empty = Vec::new();
    for (what, expr) in dashboard_exprs() {
        let r = prom.query(&expr);
        let finite = r.iter().any(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(f64::is_finite));
        if !finite {
            empty.push(format!("{what}: `{expr}` -> {r:?}"));
        }
    }
    assert!(empty.is_empty(), "dashboard queries without data:\n{}", empty.join("\n"));

    // --- promtool test rules on the series these runs produced.
    // A whole second after every alert was seen active, and queried once
    // Prometheus has evaluated past it.
    let t_end = now_s().ceil() + 1.0;
    std::thread::sleep(Duration::from_secs_f64((t_end + 2.0 - now_s()).max(0.0)));
    let step = 1.0;
    let data = prom.api(&format!("/api/v1/query_range?query={}&start={t0}&end={t_end}&step={step}", enc("{__name__=~\"logai_.+|up\"}")));
    let steps = ((t_end - t0) / step) as usize + 1;
    let mut series_yaml = String::new();
    for s in data["result"].as_array().unwrap() {
        let m = s["metric"].as_object().unwrap();
        let name = m["__name__"].as_str().unwrap();
        let labels: Vec<String> = m
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap().replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let mut vals = vec!["_".to_string(); steps];
        for p in s["values"].as_array().unwrap() {
            let i = ((p[0].as_f64().unwrap() - t0) / step).round() as usize;
            if i < steps {
                vals[i] = p[1].as_str().unwrap().to_string();
            }
        }
        series_yaml.push_str(&format!("      - series: '{name}{{{}}}'\n        values: '{}'\n", labels.join(","), vals.join(" ")));
    }
    let eval = (t_end - t0) as u64;
    let at_end = prom.query_at("ALERTS{alertstate=\"firing\"}", t_end);
    let mut by_alert: BTreeMap<String, Vec<String>> = every_alert.iter().map(|a| (a.clone(), Vec::new())).collect();
    for a in &at_end {
        let m = a["metric"].as_object().unwrap();
        let labels: Vec<String> = m
            .iter()
            .filter(|(k, _)| !["__name__", "alertname", "alertstate"].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}: '{}'", v.as_str().unwrap()))
            .collect();
        by_alert.get_mut(m["alertname"].as_str().unwrap()).unwrap().push(format!("          - exp_labels: {{{}}}\n", labels.join(", ")));
    }
    let expected_at_end: BTreeSet<(String, String)> = at_end
        .iter()
        .map(|a| (a["metric"]["alertname"].as_str().unwrap().to_string(), a["metric"]["instance"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(expected_at_end, expected, "the real Prometheus' alerts at the end of the run");
    let mut tests = String::new();
    for (alert, exp) in &by_alert {
        tests.push_str(&format!("      - eval_time: {eval}s\n        alertname: {alert}\n        exp_alerts:"));
        if exp.is_empty() {
            tests.push_str(" []\n");
        } else {
            tests.push('\n');
            for e in exp {
                tests.push_str(e);
            }
        }
    }
    std::fs::write(
        pdir.join("rules.test.yml"),
        format!(
            "rule_files:\n  - rules.yml\nevaluation_interval: 1s\ntests:\n  - interval: {step}s\n    input_series:\n{series_yaml}    alert_rule_test:\n{tests}"
        ),
    )
    .unwrap();
    let o = Command::new(which("promtool")).args(["test", "rules", "rules.test.yml"]).current_dir(&pdir).output().unwrap();
    assert!(
        o.status.success(),
        "promtool test rules on the scraped series disagrees with the real Prometheus ({}):\n{}{}",
        pdir.join("rules.test.yml").display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    drop(hung);
}
