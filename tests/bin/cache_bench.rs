//! Result-cache benchmarks end to end (run by scripts/bench-coord after the
//! coord-bench micro-benchmarks): real `logai serve` processes (release
//! binary, search-tools plugin) speaking MCP over stdio, a real redis-server
//! on a free loopback port (config/redis/logai.conf), a generated corpus in
//! a scratch directory.
//!
//! 1. **Hit vs cold**: `tools/call search_logs` timed from request write to
//!    response read; cold = the first call after the service's files got a
//!    new mtime (contents untouched: a key the cache has never seen, and no
//!    cached answer covers it; the same work and answer), hit = the same call
//!    repeated. Redis mode, then local mode
//!    (no Redis: the per-process LRU). Then a probe: relative windows asked
//!    again 1.2 s later, from the cache or not.
//! 2. **Hit rate on a replayed query mix**: seeded agent sessions (separate
//!    `logai serve` processes, several at once, one Redis) investigating an
//!    incident; the hit rate comes from logai's own shared metrics
//!    (`logai_searches_total{cached="true"}` over all, Coordinator snapshot),
//!    broken down by window kind from each answer's `cached` field.
//!
//!   cache-bench [--corpus-mb N] [--cold N] [--hits N] [--sessions N]
//!               [--parallel N] [--calls MIN-MAX] [--think-ms MIN-MAX] [--seed N]
//!               [--scratch DIR] [--keep] [--only e2e|mix|plans]

#[path = "../support/corpus.rs"]
mod corpus;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, TimeZone, Utc};
use corpus::Rng;
use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator, MetricsSnapshot};
use logai_e2e::{plugin_dist, repo_root, RedisServer};
use serde_json::{json, Value};

// ------------------------------------------------------------------ options

struct Opts {
    corpus_mb: u64,
    cold: usize,
    hits: usize,
    sessions: usize,
    parallel: usize,
    calls: (usize, usize),
    think_ms: (u64, u64),
    seed: u64,
    scratch: PathBuf,
    keep: bool,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        corpus_mb: 400,
        cold: 40,
        hits: 200,
        // The issue's scale: 150 sessions on one log host.
        sessions: 150,
        parallel: 24,
        calls: (20, 50),
        think_ms: (500, 1000),
        seed: 42,
        scratch: std::env::temp_dir().join("logai-cache-bench"),
        keep: false,
        only: None,
    };
    let mut a = std::env::args().skip(1);
    while let Some(k) = a.next() {
        let mut v = || a.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--corpus-mb" => o.corpus_mb = v().parse().unwrap(),
            "--cold" => o.cold = v().parse().unwrap(),
            "--hits" => o.hits = v().parse().unwrap(),
            "--sessions" => o.sessions = v().parse().unwrap(),
            "--parallel" => o.parallel = v().parse().unwrap(),
            "--calls" => {
                let s = v();
                let (lo, hi) = s.split_once('-').unwrap_or((&s, &s));
                o.calls = (lo.parse().unwrap(), hi.parse().unwrap());
            }
            "--think-ms" => {
                let s = v();
                let (lo, hi) = s.split_once('-').unwrap_or((&s, &s));
                o.think_ms = (lo.parse().unwrap(), hi.parse().unwrap());
            }
            "--seed" => o.seed = v().parse().unwrap(),
            "--scratch" => o.scratch = PathBuf::from(v()),
            "--keep" => o.keep = true,
            "--only" => o.only = Some(v()),
            other => panic!("unknown argument {other} (see the header of tests/bin/cache_bench.rs)"),
        }
    }
    assert!(o.cold >= 1 && o.cold <= 400, "--cold 1..=400");
    o
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

// ------------------------------------------------------------------ corpus

/// The generated services and the incident they share.
struct Corpus {
    dir: PathBuf,
    /// Last stamp of every service (files stopped growing here).
    end_ms: i64,
    start_ms: i64,
    /// The incident: `[incident_ms, incident_ms + INCIDENT_MS)`.
    incident_ms: i64,
    /// (name, glob, bytes)
    services: Vec<(&'static str, String, u64)>,
}

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
/// Hours of logs (so `hours_back = 24` covers all of it).
const SPAN_H: i64 = 20;
/// The incident starts this long before the end of the logs and lasts 20 min.
const INCIDENT_BEFORE_END: i64 = 3 * HOUR;
const INCIDENT_MS: i64 = 20 * MINUTE;
/// Incident order ids `ord-9000000`.. (drill-down targets).
const INCIDENT_ORDERS: u64 = 200;

/// Stamps, formatted once per second.
struct Stamp {
    sec: i64,
    iso: String,
    bsd: String,
}

impl Stamp {
    fn at(&mut self, ms: i64) {
        let sec = ms.div_euclid(1000);
        if sec != self.sec || self.iso.is_empty() {
            let t = Utc.timestamp_opt(sec, 0).unwrap();
            self.sec = sec;
            self.iso = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.bsd = t.format("%b %e %H:%M:%S").to_string();
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Gateway,
    Payments,
    Auth,
}

/// One file of `bytes` bytes with stamps from `t0` to `t1` (time advances
/// with the bytes written); its mtime is its last stamp.
fn gen_file(path: &Path, kind: Kind, bytes: u64, t0: i64, t1: i64, incident: i64, rng: &mut Rng) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut st = Stamp { sec: 0, iso: String::new(), bsd: String::new() };
    let mut line: Vec<u8> = Vec::with_capacity(512);
    let mut written = 0u64;
    let mut last = t0;
    let mut ord_seq = 0u64;
    while written < bytes {
        let t = t0 + ((written as i128 * (t1 - t0) as i128) / bytes as i128) as i64;
        last = t;
        st.at(t);
        let ms = t.rem_euclid(1000);
        let in_incident = t >= incident && t < incident + INCIDENT_MS;
        let r = rng.next();
        let p = r % 10_000; // per-mille-ish dice
        let user = 1000 + (r >> 16) % 20_000;
        let trace = rng.next();
        line.clear();
        match kind {
            Kind::Gateway => {
                let host = 1 + (r >> 40) % 4;
                let pid = 4000 + (r >> 44) % 8;
                let paths = ["/v1/charges", "/v1/refunds", "/v1/customers", "/v1/orders", "/health", "/v1/sessions"];
                let path = paths[((r >> 48) % 6) as usize];
                let upstream = match path {
                    "/v1/charges" | "/v1/refunds" => "payments",
                    "/v1/sessions" => "auth",
                    _ => "orders",
                };
                let timeout = if in_incident && upstream == "payments" { p < 1500 } else { p < 5 };
                if timeout {
                    write!(
                        line,
                        "<131>1 {}.{ms:03}Z edge-0{host} gateway {pid} - - level=error msg=\"upstream timeout after 30000 ms\" upstream={upstream} path={path} status=504 user=u-{user} trace={trace:016x}",
                        st.iso
                    )
                    .unwrap();
                } else {
                    let status = if in_incident && upstream == "payments" && p < 2500 {
                        503
                    } else {
                        match p {
                            0..=49 => 500,
                            50..=79 => 502,
                            80..=99 => 503,
                            100..=499 => 404,
                            500..=799 => 201,
                            _ => 200,
                        }
                    };
                    let level = if status >= 500 {
                        "error"
                    } else if status >= 400 {
                        "warn"
                    } else {
                        "info"
                    };
                    let pri = if status >= 500 { 131 } else { 134 };
                    let dur = if status == 503 {
                        5000 + (r >> 20) % 200
                    } else if p.is_multiple_of(997) {
                        10_000 + (r >> 20) % 20_000
                    } else {
                        3 + (r >> 20) % 400
                    };
                    let method = if path == "/v1/customers" || path == "/health" { "GET" } else { "POST" };
                    write!(
                        line,
                        "<{pri}>1 {}.{ms:03}Z edge-0{host} gateway {pid} - - level={level} method={method} path={path} status={status} upstream={upstream} dur_ms={dur} user=u-{user} trace={trace:016x}",
                        st.iso
                    )
                    .unwrap();
                }
            }
            Kind::Payments => {
                let (level, msg, order, user) = if in_incident && p < 600 {
                    ord_seq += 1;
                    let u = if ord_seq.is_multiple_of(10) { 1042 } else { user };
                    ("ERROR", "db pool exhausted: timeout waiting for connection after 5000 ms", 9_000_000 + ord_seq % INCIDENT_ORDERS, u)
                } else {
                    let order = 1_000_000 + (r >> 24) % 8_000_000;
                    match p {
                        0..=14 => ("ERROR", "charge failed: card declined", order, user),
                        15..=29 => ("ERROR", "charge failed: bank authorization timeout", order, user),
                        30..=229 => ("WARN", "retrying charge (attempt 2/3)", order, user),
                        230..=429 => ("INFO", "refund issued", order, user),
                        _ => ("INFO", "charge captured", order, user),
                    }
                };
                let amount = 100 + (r >> 32) % if p.is_multiple_of(50) { 2_000_000 } else { 20_000 };
                write!(
                    line,
                    "{{\"timestamp\":\"{}.{ms:03}Z\",\"level\":\"{level}\",\"service\":\"payments\",\"msg\":\"{msg}\",\"user\":\"u-{user}\",\"order\":\"ord-{order}\",\"amount_cents\":{amount},\"trace\":\"{trace:016x}\"}}",
                    st.iso
                )
                .unwrap();
            }
            Kind::Auth => {
                let pid = 20_000 + (r >> 20) % 30_000;
                let port = 40_000 + (r >> 36) % 20_000;
                let names = ["deploy", "alice", "bob", "carol", "ci"];
                let who = names[((r >> 50) % 5) as usize];
                match p {
                    0..=199 => write!(line, "{} auth-01 sshd[{pid}]: Failed password for {who} from 203.0.113.{} port {port} ssh2", st.bsd, (r >> 28) % 256),
                    200..=299 => write!(line, "{} auth-01 sshd[{pid}]: Invalid user admin{} from 198.51.100.{} port {port}", st.bsd, (r >> 28) % 50, (r >> 30) % 256),
                    300..=349 => write!(
                        line,
                        "{} auth-01 sudo[{pid}]:   {who} : TTY=pts/0 ; PWD=/home/{who} ; USER=root ; COMMAND=/usr/bin/systemctl restart payments",
                        st.bsd
                    ),
                    350..=2999 => write!(line, "{} auth-01 sshd[{pid}]: pam_unix(sshd:session): session opened for user {who}(uid=1000) by (uid=0)", st.bsd),
                    3000..=5499 => write!(line, "{} auth-01 sshd[{pid}]: pam_unix(sshd:session): session closed for user {who}", st.bsd),
                    _ => write!(
                        line,
                        "{} auth-01 sshd[{pid}]: Accepted publickey for {who} from 10.0.{}.{} port {port} ssh2: ED25519 SHA256:{trace:016x}",
                        st.bsd,
                        (r >> 28) % 256,
                        (r >> 36) % 256
                    ),
                }
                .unwrap();
            }
        }
        line.push(b'\n');
        w.write_all(&line).unwrap();
        written += line.len() as u64;
    }
    w.flush().unwrap();
    drop(w);
    corpus::set_mtime(path, last);
}

fn gen_corpus(root: &Path, total_mb: u64, seed: u64) -> Corpus {
    let _ = std::fs::remove_dir_all(root);
    // Logs end two minutes before now (whole minute): the services stopped
    // writing, the agents look at what happened.
    let now = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap().timestamp_millis();
    let end_ms = now - 2 * MINUTE;
    let start_ms = end_ms - SPAN_H * HOUR;
    let incident_ms = end_ms - INCIDENT_BEFORE_END;
    let total = total_mb << 20;
    // (name, kind, share %, files: newest last)
    let specs: [(&'static str, Kind, u64, u64); 3] =
        [("gateway", Kind::Gateway, 60, 4), ("payments", Kind::Payments, 27, 2), ("auth", Kind::Auth, 13, 2)];
    let mut services = Vec::new();
    let mut rng = Rng::new(seed);
    for (name, kind, share, nfiles) in specs {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = total * share / 100;
        let file_span = (end_ms - start_ms) / nfiles as i64;
        for k in 0..nfiles {
            // Rotated names: name.log.{n-1} oldest ... name.log newest.
            let idx = nfiles - 1 - k;
            let fname = if idx == 0 { format!("{name}.log") } else { format!("{name}.log.{idx}") };
            let t0 = start_ms + k as i64 * file_span;
            let t1 = if k + 1 == nfiles { end_ms } else { t0 + file_span - 1000 };
            gen_file(&dir.join(fname), kind, bytes / nfiles, t0, t1, incident_ms, &mut rng);
        }
        services.push((name, format!("{}/{name}.log*", dir.display()), bytes));
    }
    Corpus { dir: root.to_path_buf(), end_ms, start_ms, incident_ms, services }
}

/// A manifest over the corpus: its own services, the search-tools plugin,
/// Redis when given, no rate limit (every session is the same local user).
fn manifest(dir: &Path, corpus: &Corpus, redis: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut t = String::new();
    if let Some(url) = redis {
        // Several sessions start at once on a loaded 2-core machine: give
        // Redis time rather than fall back to local state (a split cache).
        t += &format!("[redis]\nurl = \"{url}\"\nconnect_timeout_ms = 5000\nop_timeout_ms = 1000\n\n");
    }
    t += "[limits]\nrate_limit_per_user_per_minute = 1000000\nrate_limit_burst = 100000\nsearch_timeout_ms = 120000\npermit_wait_ms = 120000\n\n";
    t += "[cache]\nenabled = true\n\n";
    t += &format!(
        "[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\nlog_level = \"warn\"\n\n",
        dir.join("sessions").display(),
        repo_root().join("target/cache-bench-compile-cache").display()
    );
    t += &format!(
        "[[plugin]]\nname = \"search-tools\"\ncomponent = \"{}\"\ntimeout_ms = 120000\n\n",
        plugin_dist().join("search-tools.wasm").display()
    );
    for (name, glob, _) in &corpus.services {
        let format = if *name == "payments" { "json" } else { "syslog" };
        t += &format!("[[service]]\nname = \"{name}\"\npaths = [\"{glob}\"]\nformat = \"{format}\"\ntimezone = \"UTC\"\n\n");
    }
    let path = dir.join("logai.toml");
    std::fs::write(&path, t).unwrap();
    path
}

/// A `logai serve` process spoken to over its stdio: one JSON-RPC message
/// per line. (Not `McpClient`: its reader thread parses every line before
/// handing it over, which would put the client's JSON parsing of large
/// answers inside the timed span. Here the clock stops when the response
/// line has been read; it is parsed after.)
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Session {
    fn start(manifest: &Path) -> Session {
        let bin = std::env::var_os("LOGAI_BIN").unwrap();
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(manifest)
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn logai serve");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Session { child, stdin, stdout, next_id: 0 };
        let (_, init) = s.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "cache-bench", "version": "0"}}),
        );
        let init: Value = serde_json::from_slice(&init).unwrap();
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        let w = self.stdin.as_mut().unwrap();
        w.write_all(&line).unwrap();
        w.flush().unwrap();
    }

    /// Write the request, read lines up to its response: (time from the
    /// write to the last byte of the response read, the response line).
    fn request(&mut self, method: &str, params: Value) -> (Duration, Vec<u8>) {
        self.next_id += 1;
        let id = self.next_id;
        let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).unwrap();
        line.push(b'\n');
        let want = format!("\"id\":{id}");
        let t = Instant::now();
        let w = self.stdin.as_mut().unwrap();
        w.write_all(&line).unwrap();
        w.flush().unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.stdout.read_until(b'\n', &mut buf).unwrap();
            assert!(n > 0, "logai serve closed stdout (exit {:?})", self.child.try_wait());
            let took = t.elapsed();
            // Notifications have no id; the id sits at the top level of a
            // response (logai writes it before `result`).
            let head = &buf[..buf.len().min(64)];
            if head.windows(want.len()).any(|w| w == want.as_bytes()) {
                return (took, buf);
            }
        }
    }

    /// EOF on stdin, wait for the exit (metrics are flushed at shutdown).
    fn close(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        self.child.wait().unwrap()
    }
}

fn serve(manifest: &Path) -> Session {
    Session::start(manifest)
}

/// One `search_logs` call: latency, response bytes, and structuredContent
/// or the error text.
fn search(c: &mut Session, args: &Value) -> (Duration, usize, Result<Value, String>) {
    let (took, line) = c.request("tools/call", json!({"name": "search_logs", "arguments": args}));
    let resp: Value = serde_json::from_slice(&line).expect("a JSON-RPC response line");
    let out = match resp.get("result") {
        Some(r) if r.get("isError") != Some(&json!(true)) => {
            r.get("structuredContent").cloned().ok_or_else(|| format!("no structuredContent: {r}"))
        }
        Some(r) => Err(r["content"][0]["text"].as_str().unwrap_or("?").to_string()),
        None => Err(resp.to_string()),
    };
    (took, line.len(), out)
}

// ------------------------------------------------------------------ stats

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Two decimals, `-` when there was nothing to measure.
fn ms2(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.2}")
    }
}

fn ms_sorted(v: &[Duration]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s
}

// ------------------------------------------------------------------ 1. hit vs cold

struct E2eQuery {
    label: &'static str,
    args: Value,
}

fn e2e_queries(c: &Corpus) -> Vec<E2eQuery> {
    let iso = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    vec![
        E2eQuery {
            label: "user id, whole service (gateway, all files)",
            args: json!({"service": "gateway", "pattern": "user=u-1042 ", "fixed_strings": true}),
        },
        E2eQuery {
            label: "user id in the incident window (payments, since/until 20 min)",
            args: json!({"service": "payments", "pattern": "u-1042", "fixed_strings": true,
                         "since": iso(c.incident_ms), "until": iso(c.incident_ms + INCIDENT_MS)}),
        },
        E2eQuery {
            label: "ERROR in the incident window (payments, since/until 20 min)",
            args: json!({"service": "payments", "pattern": "ERROR", "fixed_strings": true,
                         "since": iso(c.incident_ms), "until": iso(c.incident_ms + INCIDENT_MS)}),
        },
    ]
}

/// The files of a service's directory with their mtimes.
fn service_files(corpus: &Corpus, service: &str) -> Vec<(PathBuf, std::time::SystemTime)> {
    std::fs::read_dir(corpus.dir.join(service))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, mtime)
        })
        .collect()
}

/// Move each file's mtime `ms` milliseconds past `files`' (contents untouched).
fn touch(files: &[(PathBuf, std::time::SystemTime)], ms: u64) {
    for (path, base) in files {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(*base + Duration::from_millis(ms)).unwrap();
    }
}

/// Cold and hit latencies of each query in one `logai serve`.
fn hit_vs_cold(mode: &str, manifest: &Path, corpus: &Corpus, o: &Opts) {
    let mut c = serve(manifest);
    println!();
    println!(
        "{mode}: `tools/call search_logs`, request write -> response read, one `logai serve` process; load average {} at start",
        loadavg()
    );
    println!();
    println!("| query | matches | response KB | bytes scanned (cold) | search core p50 ms (cold) | cold p50 ms | cold p90 | cold p99 | hit p50 ms | hit p90 | hit p99 | cold/hit p50 | cold/hit p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for q in e2e_queries(corpus) {
        // Warm up (page cache, file time ranges, line checkpoints, plugin
        // instances) and learn the match count.
        let hit_args = with(&q.args, "max_results", 1000);
        let (_, size, first) = search(&mut c, &hit_args);
        let first = first.unwrap_or_else(|e| panic!("{}: {e}", q.label));
        let total = first["total_matches"].as_u64().unwrap();
        assert!(!first["truncated"].as_bool().unwrap(), "{}: {total} matches: truncated; use a smaller --corpus-mb", q.label);
        let (_, _, again) = search(&mut c, &hit_args);
        assert_eq!(again.unwrap()["cached"], json!(true), "{}: the repeated call was not a cache hit", q.label);
        let per = (o.hits / o.cold).max(1);
        let (mut cold, mut hit, mut core, mut scanned) = (Vec::new(), Vec::new(), Vec::new(), 0u64);
        let files = service_files(corpus, q.args["service"].as_str().unwrap());
        for i in 0..o.cold {
            // A key never seen: the service's files get a new mtime (1 ms
            // later each round, contents untouched), which is in every key
            // and in what a cached answer covers: the same work and answer.
            touch(&files, i as u64 + 1);
            let (d, _, r) = search(&mut c, &hit_args);
            let r = r.unwrap_or_else(|e| panic!("{}: {e}", q.label));
            assert_eq!((r["cached"].as_bool(), r["total_matches"].as_u64()), (Some(false), Some(total)), "{}: cold call {i}", q.label);
            scanned = r["bytes_scanned"].as_u64().unwrap_or(0);
            core.push(Duration::from_millis(r["duration_ms"].as_u64().unwrap_or(0)));
            cold.push(d);
            for _ in 0..per {
                let (d, _, r) = search(&mut c, &hit_args);
                assert_eq!(r.unwrap()["cached"], json!(true), "{}: hit", q.label);
                hit.push(d);
            }
        }
        let (cs, hs) = (ms_sorted(&cold), ms_sorted(&hit));
        println!(
            "| {} | {total} | {:.0} | {:.1} MB | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.3} | {:.1}x | {:.1}x |",
            q.label,
            size as f64 / 1024.0,
            scanned as f64 / 1048576.0,
            pct(&ms_sorted(&core), 0.5),
            pct(&cs, 0.5),
            pct(&cs, 0.9),
            pct(&cs, 0.99),
            pct(&hs, 0.5),
            pct(&hs, 0.9),
            pct(&hs, 0.99),
            pct(&cs, 0.5) / pct(&hs, 0.5),
            pct(&cs, 0.99) / pct(&hs, 0.99)
        );
        notes.push(format!("{}: {} cold, {} hits; args {}", q.label, cold.len(), hit.len(), hit_args));
    }
    for n in notes {
        println!("  {n}");
    }
    c.close();
}

/// A relative window asked again a little over a second later (so `now`
/// resolves to another second), with a query whose answer is not
/// truncated: does the key repeat? It does when no window bound enters the
/// key (478bf4e: a bound outside every planned file's time range is left
/// out; the logs here stopped growing 2 minutes before the run).
fn relative_repeat_probe(manifest: &Path) {
    let mut c = serve(manifest);
    println!();
    println!("relative window asked again 1.2 s later (gateway `user=u-1042 `, not truncated; logs stopped 2 min before the run):");
    println!();
    println!("| window | covers | 2nd call from cache |");
    println!("|---|---|---|");
    for (k, v, covers) in [
        ("hours_back", 24, "all 20 h of logs (both bounds outside every file)"),
        ("hours_back", 1, "starts inside the newest files"),
        ("minutes_back", 15, "starts inside the newest files"),
    ] {
        let args = json!({"service": "gateway", "pattern": "user=u-1042 ", "fixed_strings": true, k: v});
        let (_, _, first) = search(&mut c, &args);
        assert!(!first.unwrap()["truncated"].as_bool().unwrap());
        std::thread::sleep(Duration::from_millis(1200));
        let (_, _, again) = search(&mut c, &args);
        println!("| {k}={v} | {covers} | {} |", if again.unwrap()["cached"] == json!(true) { "yes" } else { "no" });
    }
    c.close();
}

fn with(args: &Value, k: &str, v: u64) -> Value {
    let mut a = args.clone();
    a[k] = json!(v);
    a
}

// ------------------------------------------------------------------ 2. the query mix

/// The questions agents ask about the incident, most popular first
/// (service, pattern, fixed_strings, case_insensitive). Popularity of rank r
/// is proportional to 1/r (Zipf, s = 1).
const QUESTIONS: &[(&str, &str, bool, bool)] = &[
    ("payments", "ERROR", true, false),
    ("gateway", "timeout", true, true),
    ("gateway", r"status=5\d\d", false, false),
    ("payments", "u-1042", true, false),
    ("payments", "db pool exhausted", true, false),
    ("gateway", "status=503", true, false),
    ("auth", "Failed password", true, false),
    ("gateway", "user=u-1042 ", true, false),
    ("payments", "timeout", true, true),
    ("payments", "declined", true, false),
    ("gateway", r"dur_ms=\d{5}", false, false),
    ("auth", "COMMAND=/usr/bin/systemctl restart", true, false),
    ("payments", "WARN", true, false),
    ("gateway", "level=error", true, false),
    ("auth", r"Invalid user \w+", false, false),
    ("payments", r#""amount_cents":\d{6,}"#, false, false),
    ("gateway", "status=502", true, false),
    ("auth", "session opened for user deploy", true, false),
    ("payments", "refund", true, true),
    ("gateway", "path=/v1/refunds status=5", true, false),
];
/// Share of calls that drill into one id instead of a catalogued question:
/// an incident order id (Zipf over the 200 the incident produced, so agents
/// often pick the same ones from the same first results) or an arbitrary
/// user id (almost always unique).
const DRILL_PCT: u64 = 20;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum WinKind {
    SinceUntil,
    Date,
    HoursBack,
    MinutesBack,
    None,
}

impl WinKind {
    fn label(self) -> &'static str {
        match self {
            WinKind::SinceUntil => "absolute: since/until",
            WinKind::Date => "absolute: date",
            WinKind::HoursBack => "relative: hours_back",
            WinKind::MinutesBack => "relative: minutes_back",
            WinKind::None => "no window",
        }
    }
    fn absolute(self) -> bool {
        matches!(self, WinKind::SinceUntil | WinKind::Date)
    }
}

/// Rank 0.. with probability proportional to 1/(rank+1).
fn zipf(rng: &mut Rng, n: usize) -> usize {
    let h: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
    let mut x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * h;
    for k in 1..=n {
        x -= 1.0 / k as f64;
        if x <= 0.0 {
            return k - 1;
        }
    }
    n - 1
}

fn weighted<T: Copy>(rng: &mut Rng, xs: &[(T, u64)]) -> T {
    let total: u64 = xs.iter().map(|x| x.1).sum();
    let mut r = rng.below(total);
    for (v, w) in xs {
        if r < *w {
            return *v;
        }
        r -= w;
    }
    xs[xs.len() - 1].0
}

/// A window: its kind, a label naming it, and the arguments it adds.
fn draw_window(rng: &mut Rng, c: &Corpus) -> (WinKind, String, Vec<(&'static str, Value)>) {
    let iso = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let i = c.incident_ms;
    let kind = weighted(
        rng,
        &[(WinKind::SinceUntil, 35), (WinKind::Date, 15), (WinKind::HoursBack, 25), (WinKind::MinutesBack, 15), (WinKind::None, 10)],
    );
    match kind {
        WinKind::SinceUntil => {
            let hour = i - i.rem_euclid(HOUR);
            let (label, s, u) = weighted(
                rng,
                &[
                    (("alert: incident -10 min .. +30 min", i - 10 * MINUTE, i + 30 * MINUTE), 4),
                    (("the incident's 20 min", i, i + INCIDENT_MS), 3),
                    (("the incident's clock hour", hour, hour + HOUR), 2),
                    (("incident -1 h .. +1 h", i - HOUR, i + HOUR), 1),
                ],
            );
            (kind, format!("since/until {label}"), vec![("since", json!(iso(s))), ("until", json!(iso(u)))])
        }
        WinKind::Date => (
            kind,
            "date (the incident's day)".into(),
            vec![("date", json!(Utc.timestamp_millis_opt(i).unwrap().format("%Y-%m-%d").to_string()))],
        ),
        WinKind::HoursBack => {
            let h = weighted(rng, &[(1, 3), (4, 3), (6, 2), (24, 2), (2, 1)]);
            (kind, format!("hours_back={h}"), vec![("hours_back", json!(h))])
        }
        WinKind::MinutesBack => {
            let m = weighted(rng, &[(15, 3), (60, 3), (30, 2), (240, 1)]);
            (kind, format!("minutes_back={m}"), vec![("minutes_back", json!(m))])
        }
        WinKind::None => (kind, "no window (all files)".into(), vec![]),
    }
}

#[derive(Clone)]
struct PlannedCall {
    kind: WinKind,
    window: String,
    /// `service: pattern`, or the kind of drill-down.
    question: String,
    args: Value,
    think: Duration,
}

/// One agent's calls, from the seed and its index only (not from timing).
fn plan_session(seed: u64, idx: usize, c: &Corpus, o: &Opts) -> Vec<PlannedCall> {
    let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(idx as u64 + 1));
    let n = o.calls.0 + rng.below((o.calls.1 - o.calls.0 + 1) as u64) as usize;
    // Each agent has a habit: the window it reaches for first (from the
    // alert, or "the last hour"); 65% of its calls use it.
    let preferred = draw_window(&mut rng, c);
    (0..n)
        .map(|_| {
            let (service, pattern, fixed, ci, question) = if rng.chance(DRILL_PCT) {
                if rng.chance(60) {
                    let id = format!("ord-{}", 9_000_000 + zipf(&mut rng, INCIDENT_ORDERS as usize));
                    ("payments", id, true, false, "drill-down: payments incident order id (Zipf over 200)".to_string())
                } else {
                    (
                        "gateway",
                        format!("user=u-{} ", 1000 + rng.below(20_000)),
                        true,
                        false,
                        "drill-down: gateway any user id (uniform over 20000)".to_string(),
                    )
                }
            } else {
                let q = QUESTIONS[zipf(&mut rng, QUESTIONS.len())];
                (q.0, q.1.to_string(), q.2, q.3, format!("{}: `{}`{}", q.0, q.1.trim_end(), if q.3 { " (ignore case)" } else { "" }))
            };
            let (kind, window, wargs) = if rng.chance(65) { preferred.clone() } else { draw_window(&mut rng, c) };
            let mut a = json!({"service": service, "pattern": pattern});
            if fixed {
                a["fixed_strings"] = json!(true);
            }
            if ci {
                a["case_insensitive"] = json!(true);
            }
            for (k, v) in wargs {
                a[k] = v;
            }
            if let Some(m) = weighted(&mut rng, &[(None, 75), (Some(50), 10), (Some(200), 10), (Some(20), 5)]) {
                a["max_results"] = json!(m);
            }
            if rng.chance(20) {
                a["context"] = json!(3);
            }
            PlannedCall {
                kind,
                window,
                question,
                args: a,
                think: Duration::from_millis(o.think_ms.0 + rng.below(o.think_ms.1 - o.think_ms.0 + 1)),
            }
        })
        .collect()
}

struct Record {
    session: usize,
    sent: Instant,
    kind: WinKind,
    window: String,
    question: String,
    args: String,
    took: Duration,
    result: Result<Answer, String>,
}

struct Answer {
    cached: bool,
    truncated: bool,
    partial: bool,
    /// The absolute window the host resolved (`window_start..window_end`).
    resolved: String,
}

fn counter(snap: &MetricsSnapshot, name: &str, label: Option<(&str, &str)>) -> f64 {
    snap.counters
        .iter()
        .filter(|c| c.name == name && label.is_none_or(|(k, v)| c.labels.iter().any(|(a, b)| a == k && b == v)))
        .map(|c| c.value)
        .sum::<f64>()
        + 0.0 // no -0
}

fn mix(redis: &RedisServer, manifest: &Path, corpus: &Corpus, o: &Opts) {
    let plans: Vec<Vec<PlannedCall>> = (0..o.sessions).map(|s| plan_session(o.seed, s, corpus, o)).collect();
    let planned: usize = plans.iter().map(Vec::len).sum();
    println!();
    println!(
        "query mix: {} agent sessions (one `logai serve` each, {} at a time, one Redis), {}-{} search_logs calls each ({planned} in all), think time {}-{} ms, seed {}; load average {} at start",
        o.sessions, o.parallel, o.calls.0, o.calls.1, o.think_ms.0, o.think_ms.1, o.seed, loadavg()
    );
    let plans = Arc::new(plans);
    let next = Arc::new(AtomicUsize::new(0));
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..o.parallel)
        .map(|_| {
            let (plans, next, records, manifest) = (plans.clone(), next.clone(), records.clone(), manifest.to_path_buf());
            std::thread::spawn(move || loop {
                let s = next.fetch_add(1, Ordering::SeqCst);
                if s >= plans.len() {
                    break;
                }
                let mut c = serve(&manifest);
                for call in &plans[s] {
                    std::thread::sleep(call.think);
                    let sent = Instant::now();
                    let (took, _, r) = search(&mut c, &call.args);
                    let result = r.map(|v| Answer {
                        cached: v["cached"].as_bool().unwrap_or(false),
                        truncated: v["truncated"].as_bool().unwrap_or(false),
                        partial: v["partial"].as_bool().unwrap_or(false),
                        resolved: format!("{}..{}", v["window_start"], v["window_end"]),
                    });
                    records.lock().unwrap().push(Record {
                        session: s,
                        sent,
                        kind: call.kind,
                        window: call.window.clone(),
                        question: call.question.clone(),
                        args: call.args.to_string(),
                        took,
                        result,
                    });
                }
                let status = c.close();
                assert!(status.success(), "session {s} exited with {status}");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("session thread");
    }
    let elapsed = started.elapsed();
    let mut recs = std::mem::take(&mut *records.lock().unwrap());
    recs.sort_by_key(|r| r.sent);

    let snap = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = Coordinator::start(
            &RedisConfig { url: Some(redis.url()), ..RedisConfig::default() },
            &LimitsConfig::default(),
            &CacheConfig::default(),
        )
        .await;
        let s = c.snapshot().await;
        c.shutdown().await;
        s
    });
    assert_eq!(snap.source, "redis", "the snapshot did not come from Redis");
    let searches = counter(&snap, names::SEARCHES_TOTAL, None);
    let cached = counter(&snap, names::SEARCHES_TOTAL, Some(("cached", "true")));
    println!("done in {:.1} s; load average {} at the end", elapsed.as_secs_f64(), loadavg());
    println!();
    println!(
        "**hit rate (logai shared metrics, all sessions): {:.1}%** = logai_searches_total{{cached=\"true\"}} {cached} / logai_searches_total {searches}",
        100.0 * cached / searches.max(1.0)
    );
    println!(
        "  logai_cache_hits_total {}, logai_cache_misses_total {}, logai_cache_skipped_total {} (over max_entry_kb), logai_errors_total {}, logai_rate_limited_total {}",
        counter(&snap, names::CACHE_HITS_TOTAL, None),
        counter(&snap, names::CACHE_MISSES_TOTAL, None),
        counter(&snap, names::CACHE_SKIPPED_TOTAL, None),
        counter(&snap, names::ERRORS_TOTAL, None),
        counter(&snap, names::RATE_LIMITED_TOTAL, None)
    );
    println!(
        "  hits by the exact key {}, cut from a covering answer (a wider window or more context) {}",
        counter(&snap, names::CACHE_HITS_TOTAL, Some(("via", "key"))),
        counter(&snap, names::CACHE_HITS_TOTAL, Some(("via", "narrowed")))
    );
    for c in snap.counters.iter().filter(|c| c.name == names::ERRORS_TOTAL) {
        println!("  {} {:?} {}", c.name, c.labels, c.value);
    }

    // Client side, from each answer's `cached`, `truncated` and resolved
    // window. "Repeated arguments": an earlier call had the same arguments.
    // "Same resolved window": ... and the host resolved the same absolute
    // window (relative windows: the same second): with files that no longer
    // change, exactly the calls a key over the whole resolved window can
    // answer, unless truncated. (Since 478bf4e the key leaves out window
    // bounds outside every planned file's time range, so a relative window
    // covering all of the files can hit beyond this column.)
    #[derive(Default, Clone)]
    struct Row {
        calls: u64,
        hits: u64,
        truncated: u64,
        partial: u64,
        errors: u64,
        arg_repeats: u64,
        arg_repeats_cacheable: u64,
        key_repeats: u64,
        key_repeats_cacheable: u64,
        key_repeat_hits: u64,
        hit_ms: Vec<Duration>,
        miss_ms: Vec<Duration>,
    }
    impl Row {
        fn add(&mut self, r: &Row) {
            self.calls += r.calls;
            self.hits += r.hits;
            self.truncated += r.truncated;
            self.partial += r.partial;
            self.errors += r.errors;
            self.arg_repeats += r.arg_repeats;
            self.arg_repeats_cacheable += r.arg_repeats_cacheable;
            self.key_repeats += r.key_repeats;
            self.key_repeats_cacheable += r.key_repeats_cacheable;
            self.key_repeat_hits += r.key_repeat_hits;
            self.hit_ms.extend(&r.hit_ms);
            self.miss_ms.extend(&r.miss_ms);
        }
    }
    let mut rows: BTreeMap<WinKind, Row> = BTreeMap::new();
    let mut by_window: BTreeMap<(WinKind, String), Row> = BTreeMap::new();
    let mut by_question: BTreeMap<String, Row> = BTreeMap::new();
    let (mut seen_args, mut seen_keys) = (HashSet::new(), HashSet::new());
    let mut errors = Vec::new();
    for r in &recs {
        let mut one = Row { calls: 1, ..Row::default() };
        let arg_repeat = !seen_args.insert(r.args.clone());
        match &r.result {
            Ok(a) => {
                let key_repeat = !seen_keys.insert((r.args.clone(), a.resolved.clone()));
                one.hits = a.cached as u64;
                one.truncated = a.truncated as u64;
                one.partial = a.partial as u64;
                one.arg_repeats = arg_repeat as u64;
                one.arg_repeats_cacheable = (arg_repeat && !a.truncated) as u64;
                one.key_repeats = key_repeat as u64;
                one.key_repeats_cacheable = (key_repeat && !a.truncated) as u64;
                one.key_repeat_hits = (key_repeat && a.cached) as u64;
                if a.cached {
                    one.hit_ms.push(r.took)
                } else {
                    one.miss_ms.push(r.took)
                }
            }
            Err(e) => {
                one.errors = 1;
                errors.push(format!("session {}: {} -> {e}", r.session, r.args));
            }
        }
        rows.entry(r.kind).or_default().add(&one);
        by_window.entry((r.kind, r.window.clone())).or_default().add(&one);
        by_question.entry(r.question.clone()).or_default().add(&one);
    }
    let p = |a: u64, b: u64| if b == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) };
    println!();
    println!("| window kind | calls | from cache | hit rate | truncated | repeated arguments | hit p50 ms | miss p50 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut groups: Vec<(String, Vec<WinKind>)> = rows.keys().map(|k| (k.label().to_string(), vec![*k])).collect();
    groups.push(("**absolute (since/until + date)**".into(), rows.keys().copied().filter(|k| k.absolute()).collect()));
    groups.push((
        "**relative (hours_back + minutes_back)**".into(),
        rows.keys().copied().filter(|k| matches!(k, WinKind::HoursBack | WinKind::MinutesBack)).collect(),
    ));
    groups.push(("**all**".into(), rows.keys().copied().collect()));
    for (label, kinds) in groups {
        let mut t = Row::default();
        for k in kinds {
            t.add(&rows[&k]);
        }
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            t.calls,
            t.hits,
            p(t.hits, t.calls),
            t.truncated,
            t.arg_repeats,
            ms2(pct(&ms_sorted(&t.hit_ms), 0.5)),
            ms2(pct(&ms_sorted(&t.miss_ms), 0.5))
        );
    }
    println!();
    println!("| window | calls | from cache | truncated | repeated arguments | ... not truncated | same resolved window, not truncated |");
    println!("|---|---|---|---|---|---|---|");
    let mut ws: Vec<_> = by_window.iter().collect();
    ws.sort_by_key(|((k, w), _)| (*k, w.len(), w.clone()));
    for ((_, w), t) in ws {
        println!(
            "| {w} | {} | {} | {} | {} | {} | {} |",
            t.calls, t.hits, t.truncated, t.arg_repeats, t.arg_repeats_cacheable, t.key_repeats_cacheable
        );
    }
    println!();
    println!("| question (most asked first) | calls | from cache | truncated | repeated arguments |");
    println!("|---|---|---|---|---|");
    let mut qs: Vec<_> = by_question.iter().collect();
    qs.sort_by_key(|(q, t)| (std::cmp::Reverse(t.calls), (*q).clone()));
    for (q, t) in qs.iter().take(10) {
        println!("| {} | {} | {} | {} | {} |", q.replace('|', "\\|"), t.calls, t.hits, t.truncated, t.arg_repeats);
    }
    if qs.len() > 10 {
        let mut rest = Row::default();
        for (_, t) in &qs[10..] {
            rest.add(t);
        }
        println!("| {} other questions | {} | {} | {} | {} |", qs.len() - 10, rest.calls, rest.hits, rest.truncated, rest.arg_repeats);
    }
    print_ceilings(o, corpus);
    let client_hits: u64 = rows.values().map(|r| r.hits).sum();
    let partial: u64 = rows.values().map(|r| r.partial).sum();
    let answered: u64 = rows.values().map(|r| r.calls - r.errors).sum();
    println!();
    println!(
        "client side: {answered} answered ({} errors, {partial} partial), {client_hits} marked cached; the shared metrics counted {searches} / {cached}{}",
        errors.len(),
        if (searches - answered as f64).abs() < 0.5 && (cached - client_hits as f64).abs() < 0.5 { " (agree)" } else { " (DISAGREE)" }
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
}

/// The same mix with more sessions (plans only, not run): how many calls
/// repeat an earlier call's arguments (the ceiling of an exact-arguments
/// cache if nothing were truncated), and how many an earlier call covers.
fn print_ceilings(o: &Opts, corpus: &Corpus) {
    let ceiling = |n: usize| {
        let mut seen = HashSet::new();
        let (mut calls, mut rep) = (0u64, 0u64);
        for s in 0..n {
            for c in plan_session(o.seed, s, corpus, o) {
                calls += 1;
                rep += !seen.insert(c.args.to_string()) as u64;
            }
        }
        format!("{n} sessions: {rep}/{calls} = {:.1}%", 100.0 * rep as f64 / calls as f64)
    };
    let mut sizes = vec![30, 150, 500];
    if !sizes.contains(&o.sessions) {
        sizes.insert(0, o.sessions);
    }
    let each = |f: &dyn Fn(usize) -> String| sizes.iter().map(|&n| f(n)).collect::<Vec<_>>().join("; ");
    println!();
    println!("repeated arguments in the same mix (plans only): {}", each(&ceiling));
    println!(
        "answerable from an earlier call of the same question over a covering window with at least as much context (plans only, relative windows resolved at the end of the logs + 2 min): {}",
        each(&|n| covered_ceiling(o, corpus, n))
    );
}

/// The call's window in ms as the cache key sees it over this corpus: a
/// bound outside the logs' time range is open.
fn resolved_window(args: &Value, c: &Corpus) -> (i64, i64) {
    let now = c.end_ms + 2 * MINUTE;
    let parse = |k: &str| chrono::DateTime::parse_from_rfc3339(args[k].as_str().unwrap()).unwrap().timestamp_millis();
    let (s, e) = if let Some(h) = args["hours_back"].as_i64() {
        (now - h * HOUR, now)
    } else if let Some(m) = args["minutes_back"].as_i64() {
        (now - m * MINUTE, now)
    } else if let Some(d) = args["date"].as_str() {
        let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
        (day, day + 24 * HOUR)
    } else if args.get("since").is_some() {
        (parse("since"), parse("until"))
    } else {
        (i64::MIN, i64::MAX)
    };
    (if s <= c.start_ms { i64::MIN } else { s }, if e > c.end_ms { i64::MAX } else { e })
}

/// Share of calls an earlier call answers by narrowing: same question
/// (everything but window, context and max_results), a window covering
/// this one, at least as much context.
fn covered_ceiling(o: &Opts, c: &Corpus, n: usize) -> String {
    let mut seen: Vec<(String, (i64, i64), u64)> = Vec::new();
    let (mut calls, mut hit) = (0u64, 0u64);
    for s in 0..n {
        for call in plan_session(o.seed, s, c, o) {
            calls += 1;
            let mut q = call.args.clone();
            let w = resolved_window(&q, c);
            let ctx = q["context"].as_u64().unwrap_or(0);
            for k in ["hours_back", "minutes_back", "date", "since", "until", "context", "max_results"] {
                q.as_object_mut().unwrap().remove(k);
            }
            let q = q.to_string();
            if seen.iter().any(|(sq, sw, sc)| *sq == q && sw.0 <= w.0 && sw.1 >= w.1 && *sc >= ctx) {
                hit += 1;
            }
            seen.push((q, w, ctx));
        }
    }
    format!("{n} sessions: {hit}/{calls} = {:.1}%", 100.0 * hit as f64 / calls as f64)
}

// ------------------------------------------------------------------ main

fn main() {
    let o = opts();
    // The release binary unless told otherwise; sessions' stderr quiet.
    if std::env::var_os("LOGAI_BIN").is_none() {
        std::env::set_var("LOGAI_BIN", repo_root().join("target/release/logai"));
    }
    std::env::set_var("LOGAI_TEST_QUIET", "1");
    let bin = PathBuf::from(std::env::var_os("LOGAI_BIN").unwrap());
    assert!(bin.is_file(), "{} is missing: cargo build --release -p logai", bin.display());
    assert!(plugin_dist().join("search-tools.wasm").is_file(), "plugins/dist/search-tools.wasm is missing: scripts/build-plugins");

    if o.only.as_deref() == Some("plans") {
        let now = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap().timestamp_millis();
        let end_ms = now - 2 * MINUTE;
        let corpus = Corpus {
            dir: o.scratch.clone(),
            end_ms,
            start_ms: end_ms - SPAN_H * HOUR,
            incident_ms: end_ms - INCIDENT_BEFORE_END,
            services: vec![],
        };
        print_ceilings(&o, &corpus);
        return;
    }
    let t = Instant::now();
    let corpus = gen_corpus(&o.scratch.join("corpus"), o.corpus_mb, o.seed);
    let iso = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    println!(
        "cache-bench: logai {} ; corpus {} MB generated in {:.1} s under {} (seed {}): {}; stamps {} .. {} (files stopped growing 2 min before the run), incident {} + 20 min",
        bin.display(),
        o.corpus_mb,
        t.elapsed().as_secs_f64(),
        corpus.dir.display(),
        o.seed,
        corpus.services.iter().map(|(n, _, b)| format!("{n} {} MB", b >> 20)).collect::<Vec<_>>().join(", "),
        iso(corpus.start_ms),
        iso(corpus.end_ms),
        iso(corpus.incident_ms)
    );
    // Page cache warm for both parts (a cold disk is not what we measure).
    for (_, glob, _) in &corpus.services {
        let dir = Path::new(glob).parent().unwrap();
        for e in std::fs::read_dir(dir).unwrap() {
            let _ = std::io::copy(&mut std::fs::File::open(e.unwrap().path()).unwrap(), &mut std::io::sink());
        }
    }
    let conf = repo_root().join("config/redis/logai.conf");
    let conf = conf.to_str().unwrap();

    if o.only.as_deref() != Some("mix") {
        let redis = RedisServer::start(&[conf]);
        let m = manifest(&o.scratch.join("e2e-redis"), &corpus, Some(&redis.url()));
        hit_vs_cold("Redis mode (shared cache on loopback Redis)", &m, &corpus, &o);
        relative_repeat_probe(&m);
        drop(redis);
        let m = manifest(&o.scratch.join("e2e-local"), &corpus, None);
        hit_vs_cold("local mode (no Redis: per-process LRU)", &m, &corpus, &o);
        println!();
        println!("cold = the first call after the service's files got a new mtime (1 ms later each round, contents untouched: a key the cache never saw, the same work and answer); hit = the same call repeated; cold/hit = how many times faster a hit answers than the cold search (baseline) of the same query, same process, same run, interleaved");
    }
    if o.only.as_deref() != Some("e2e") {
        let redis = RedisServer::start(&[conf]);
        let m = manifest(&o.scratch.join("mix"), &corpus, Some(&redis.url()));
        mix(&redis, &m, &corpus, &o);
    }
    if !o.keep {
        let _ = std::fs::remove_dir_all(&o.scratch);
    }
}
