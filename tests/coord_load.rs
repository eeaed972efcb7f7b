//! The full system under load: N real `logai serve` processes (default 150,
//! `LOGAI_LOAD_PROCS` overrides) share one real redis-server (shipped
//! config/redis/logai.conf) and run a realistic search mix through MCP.
//!
//! `many_serve_processes_behave_as_one_system`: no call fails; an independent
//! witness polling the lease sets in Redis (its own TCP connection) never sees
//! more than the global or per-service limit; every session's searches are in
//! the shared metrics; repeated queries are answered from the shared cache.
//!
//! `redis_killed_and_restarted_mid_load_fails_no_call_and_loses_no_count`:
//! the same sessions, redis-server SIGKILLed while they search and restarted
//! empty on the same port ~1 s later: no call fails, every session exits 0,
//! the shared metrics count every search (live sessions re-add their totals),
//! and every session comes back to Redis by itself.
//!
//! The two never run at the same time: each is sized for 150 sessions on one
//! small machine. Each session's stderr goes to a file (`LOG_LEVEL=warn`, or
//! `LOGAI_LOAD_LOG_LEVEL`); what they logged is summed up at the end, and
//! `LOGAI_LOAD_KEEP=1` keeps the files.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logai::config::{CacheConfig, LimitsConfig, RedisConfig};
use logai::coord::{names, Coordinator, MetricsSnapshot};
use logai_e2e::{logai_bin, plugin_dist, sample_services_toml, write_manifest, McpClient, RedisServer};
use serde_json::{json, Value};

const GLOBAL: u64 = 6;
const PER_SERVICE: u64 = 3;
const SERVICES: [&str; 3] = ["payments", "auth", "gateway"];
const PATTERNS: [&str; 5] = ["error", "timeout", "fail", "user", "5\\d\\d"];

// ---------------------------------------------------------------- set-up --

static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held for a whole test: the load tests never overlap.
fn one_load_at_a_time() -> MutexGuard<'static, ()> {
    ONE_LOAD_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn load_procs() -> usize {
    std::env::var("LOGAI_LOAD_PROCS").ok().and_then(|v| v.parse().ok()).unwrap_or(150)
}

/// One redis-server with the shipped config and a manifest for sessions using it.
struct System {
    redis: RedisServer,
    manifest: PathBuf,
    dir: tempfile::TempDir,
}

fn system() -> System {
    assert!(plugin_dist().join("search-tools.wasm").is_file(), "build the plugins first (scripts/build-plugins)");
    let redis = RedisServer::start(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../config/redis/logai.conf")]);
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("LOGAI_LOAD_KEEP").is_some() {
        eprintln!("sessions' files kept in {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    let extra = format!(
        // 150 processes start at once on a small machine: give Redis time to
        // answer their first PING (the fallback itself is tested in coord_processes).
        "{}\n[redis]\nurl = \"{}\"\nconnect_timeout_ms = 10000\nop_timeout_ms = 2000\n\n[limits]\nmax_global_searches = {GLOBAL}\nmax_per_service_searches = {PER_SERVICE}\n\
         permit_wait_ms = 300000\nrate_limit_per_user_per_minute = 1000000\nrate_limit_burst = 10000\n",
        sample_services_toml(),
        redis.url()
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    System { redis, manifest, dir }
}

/// `search_logs` arguments of call `i` of the mix: 15 distinct queries, or
/// with `spread` 450 (an alternative that matches nothing makes 30 variants
/// of each pattern: fewer cache hits, more permits).
fn query(i: usize, spread: bool) -> Value {
    let base = PATTERNS[(i / 3) % PATTERNS.len()];
    let pattern = if spread { format!("{base}|v{}z", (i / 15) % 30) } else { base.to_string() };
    json!({"service": SERVICES[i % 3], "pattern": pattern, "date": "2026-11-19", "max_results": 20})
}

/// The calls the sessions made, as the clients saw them.
#[derive(Default)]
struct Calls {
    answered: AtomicU64,
    failed: AtomicU64,
    /// (sent, answered) of every answered call.
    times: Mutex<Vec<(Instant, Instant)>>,
}

impl Calls {
    /// One `search_logs` call; a JSON-RPC error or `isError` counts as failed.
    fn search(&self, c: &mut McpClient, process: usize, args: Value) {
        let sent = Instant::now();
        let r = c.call_tool("search_logs", args);
        let answered = Instant::now();
        match r.get("result") {
            Some(res) if res.get("isError") != Some(&json!(true)) => {
                self.times.lock().unwrap().push((sent, answered));
                self.answered.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                eprintln!("process {process}: call failed: {r}");
                self.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Start `procs` `logai serve` sessions (stderr to `session-<p>.log` in the
/// system's directory); each runs `script` between the MCP handshake and EOF.
/// A thread returns its session's pid after checking that it exited 0.
fn sessions<F>(sys: &System, procs: usize, script: F) -> Vec<JoinHandle<u32>>
where
    F: Fn(usize, &mut McpClient) + Send + Sync + 'static,
{
    let script = Arc::new(script);
    (0..procs)
        .map(|p| {
            let (manifest, log) = (sys.manifest.clone(), sys.dir.path().join(format!("session-{p}.log")));
            let script = script.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(logai_bin());
                cmd.arg("serve")
                    .arg("--config")
                    .arg(&manifest)
                    .env("LOG_LEVEL", std::env::var("LOGAI_LOAD_LOG_LEVEL").unwrap_or("warn".into()));
                cmd.stderr(File::create(&log).unwrap());
                let mut c = McpClient::spawn(cmd);
                c.timeout = Duration::from_secs(600);
                c.initialize();
                script(p, &mut c);
                let pid = c.pid();
                let status = c.close();
                if !status.success() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(20).collect();
                    panic!(
                        "process {p} exited with {status}; the end of its stderr:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                pid
            })
        })
        .collect()
}

fn join_sessions(handles: Vec<JoinHandle<u32>>) -> Vec<u32> {
    handles.into_iter().map(|h| h.join().expect("session thread")).collect()
}

/// What the sessions logged at WARN/ERROR: each message (timestamp and
/// fields stripped) with the number of sessions that logged it and the
/// first such line in full.
fn session_warnings(sys: &System, procs: usize) -> Vec<(String, usize, String)> {
    let mut by_message: HashMap<String, (usize, String)> = HashMap::new();
    for p in 0..procs {
        let text = std::fs::read_to_string(sys.dir.path().join(format!("session-{p}.log"))).unwrap_or_default();
        let mut mine = HashSet::new();
        for line in text.lines() {
            let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else { continue };
            let rest = line[at..].trim_start();
            // After the target (`logai::...: `), which follows any spans.
            let message = rest.find(" logai::").and_then(|t| rest[t..].split_once(": ")).map(|(_, m)| m).unwrap_or(rest);
            let words: Vec<&str> = message
                .split(' ')
                .take_while(|w| {
                    !w.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'))
                })
                .collect();
            let op = message.split(' ').find(|w| w.starts_with("op=")).map(|w| format!(" ({w})")).unwrap_or_default();
            let key = format!("{} {}{op}", rest.split(' ').next().unwrap_or(""), words.join(" "));
            if mine.insert(key.clone()) {
                by_message.entry(key).or_insert_with(|| (0, line.to_string())).0 += 1;
            }
        }
    }
    let mut v: Vec<_> = by_message.into_iter().map(|(m, (n, example))| (m, n, example)).collect();
    v.sort();
    v
}

/// Print what the sessions logged: each message once, with how many
/// sessions logged it, and (for unexpected ones) an example line in full.
fn print_session_warnings(sys: &System, procs: usize, expected: &[&str]) {
    for (message, n, example) in session_warnings(sys, procs) {
        eprintln!("  {n} sessions logged: {message}");
        if !expected.iter().any(|e| message.contains(e)) {
            eprintln!("    e.g. {}", example.chars().take(1000).collect::<String>());
        }
    }
}

/// The shared metrics as a fresh session sees them.
fn shared_snapshot(url: &str) -> MetricsSnapshot {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = Coordinator::start(
            &RedisConfig { url: Some(url.to_string()), ..RedisConfig::default() },
            &LimitsConfig::default(),
            &CacheConfig::default(),
        )
        .await;
        c.snapshot().await
    })
}

/// `logai_searches_total` summed: all, and those answered from the cache.
fn searches(snap: &MetricsSnapshot) -> (f64, f64) {
    let total = snap.counters.iter().filter(|c| c.name == names::SEARCHES_TOTAL);
    let cached = total.clone().filter(|c| c.labels.iter().any(|(k, v)| k == "cached" && v == "true"));
    (total.map(|c| c.value).sum(), cached.map(|c| c.value).sum())
}

// --------------------------------------------------------------- witness --

/// A raw RESP connection of the witness's own (independent of logai's client).
struct Resp(BufReader<TcpStream>);

enum Reply {
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
    Simple,
}

impl Reply {
    fn int(&self) -> io::Result<u64> {
        match self {
            Reply::Int(n) => Ok(*n as u64),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "expected an integer reply")),
        }
    }

    fn strings(self) -> Vec<String> {
        match self {
            Reply::Array(items) => items.into_iter().filter_map(|r| if let Reply::Bulk(s) = r { s } else { None }).collect(),
            _ => Vec::new(),
        }
    }
}

impl Resp {
    fn connect(port: u16) -> io::Result<Resp> {
        let s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_nodelay(true)?;
        Ok(Resp(BufReader::new(s)))
    }

    fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        Ok(self.pipeline(&[args])?.pop().expect("one reply"))
    }

    /// Send the commands in one write; their replies, in order.
    fn pipeline(&mut self, cmds: &[&[&str]]) -> io::Result<Vec<Reply>> {
        let mut out = String::new();
        for args in cmds {
            out += &format!("*{}\r\n", args.len());
            for a in *args {
                out += &format!("${}\r\n{a}\r\n", a.len());
            }
        }
        self.0.get_mut().write_all(out.as_bytes())?;
        cmds.iter().map(|_| self.reply()).collect()
    }

    fn reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        if self.0.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("RESP line {line:?}"));
        let (kind, rest) = (line.get(..1).ok_or_else(bad)?, &line[1..]);
        Ok(match kind {
            ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
            "+" => Reply::Simple,
            "-" => return Err(io::Error::other(format!("Redis: {rest}"))),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0; n as usize + 2];
                    self.0.read_exact(&mut buf)?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
                }
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                Reply::Array((0..n.max(0)).map(|_| self.reply()).collect::<io::Result<_>>()?)
            }
            _ => return Err(bad()),
        })
    }
}

/// Observers (witness, MONITOR reader) ask for a higher scheduling priority
/// than the 150 busy sessions, so that they sample what happens rather than
/// wait for a core; without the privilege they run at the normal priority.
fn observer_priority() {
    // SAFETY: plain syscalls on the calling thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -10);
    }
}

/// One poll of the lease sets that Redis answered.
struct Sample {
    at: Instant,
    global: u64,
    max_service: u64,
}

/// What the witness saw.
#[derive(Default)]
struct WitnessLog {
    samples: Vec<Sample>,
    /// Polls (or connection attempts) that failed: Redis was away.
    failed_polls: u64,
    connections: u64,
    /// Per connection, when each session (`<pid>-<random>`) was first seen
    /// holding a lease in the global set.
    lease_holders: Vec<(Instant, String)>,
}

/// Polls the lease sets every 2 ms on its own connection, reconnecting
/// whenever Redis goes away.
struct Witness {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<WitnessLog>,
}

impl Witness {
    fn start(port: u16) -> Witness {
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            observer_priority();
            let mut log = WitnessLog::default();
            let mut conn: Option<Resp> = None;
            let mut holders = HashSet::new();
            while !halt.load(Ordering::SeqCst) {
                if conn.is_none() {
                    match Resp::connect(port) {
                        Ok(c) => {
                            conn = Some(c);
                            log.connections += 1;
                            holders.clear();
                        }
                        Err(_) => {
                            log.failed_polls += 1;
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    }
                }
                match poll(conn.as_mut().unwrap()) {
                    Ok((global, max_service)) => {
                        let at = Instant::now();
                        log.samples.push(Sample { at, global: global.len() as u64, max_service });
                        for h in global {
                            let session = h.split(':').next().unwrap_or_default().to_string();
                            if holders.insert(session.clone()) {
                                log.lease_holders.push((at, session));
                            }
                        }
                    }
                    Err(_) => {
                        conn = None;
                        log.failed_polls += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            log
        });
        Witness { stop, thread }
    }

    fn finish(self) -> WitnessLog {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("witness thread")
    }
}

/// The quoted arguments of a `MONITOR` line (`+<time> [<db> <addr>] "cmd" "arg" ...`).
fn monitor_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    arg.push(c);
                    arg.extend(chars.next());
                }
                _ => arg.push(c),
            }
        }
        args.push(arg);
    }
    args
}

/// The pid in a session id `<pid>-<8 hex>`.
fn session_pid(arg: &str) -> Option<u32> {
    let (pid, random) = arg.split_once('-')?;
    let ok = random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| pid.parse().ok()).flatten()
}

/// The pid in a permit holder id `<session>:<n>`.
fn holder_pid(arg: &str) -> Option<u32> {
    let (session, n) = arg.split_once(':')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| session_pid(session)).flatten()
}

/// When `MONITOR` first saw each session (by pid) run a permit script
/// (acquire, renew or release: an argument is one of its holder ids) and
/// flush its metrics (the flush script, with its session id).
#[derive(Default)]
struct Sightings {
    permits: HashMap<u32, Instant>,
    metrics: HashMap<u32, Instant>,
    commands: u64,
}

/// `MONITOR` on its own connection: every command the server runs, with its
/// arguments — which sessions reach this Redis, and when.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Monitor {
    fn start(port: u16, seen: Arc<Mutex<Sightings>>) -> Monitor {
        let mut conn = Resp::connect(port).expect("MONITOR connection");
        assert!(matches!(conn.cmd(&["MONITOR"]), Ok(Reply::Simple)), "MONITOR refused");
        conn.0.get_ref().set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            observer_priority();
            let mut line = Vec::new();
            while !halt.load(Ordering::SeqCst) {
                // A timed-out read keeps what it read: the line goes on next time.
                match conn.0.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                    Err(_) => return,
                }
                let at = Instant::now();
                let args = monitor_args(&String::from_utf8_lossy(&line));
                line.clear();
                let mut seen = seen.lock().unwrap();
                seen.commands += 1;
                if !args.first().is_some_and(|c| c.eq_ignore_ascii_case("evalsha") || c.eq_ignore_ascii_case("eval")) {
                    continue;
                }
                let flush = args.iter().any(|a| a == "{logai}:metrics:batches");
                for a in &args[1..] {
                    if let Some(pid) = holder_pid(a) {
                        seen.permits.entry(pid).or_insert(at);
                    } else if let Some(pid) = session_pid(a).filter(|_| flush) {
                        seen.metrics.entry(pid).or_insert(at);
                    }
                }
            }
        });
        Monitor { stop, thread }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("monitor thread");
    }
}

/// Holders in the global lease set and the size of the largest service set,
/// as one atomic view (MULTI/EXEC) in one round trip.
fn poll(c: &mut Resp) -> io::Result<(Vec<String>, u64)> {
    let keys: Vec<String> = SERVICES.iter().map(|s| format!("{{logai}}:permits:svc:{s}")).collect();
    let mut cmds: Vec<Vec<&str>> = vec![vec!["MULTI"], vec!["ZRANGE", "{logai}:permits:global", "0", "-1"]];
    cmds.extend(keys.iter().map(|k| vec!["ZCARD", k.as_str()]));
    cmds.push(vec!["EXEC"]);
    let cmds: Vec<&[&str]> = cmds.iter().map(Vec::as_slice).collect();
    let Some(Reply::Array(mut view)) = c.pipeline(&cmds)?.pop() else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "EXEC did not answer an array"));
    };
    let mut max_service = 0;
    for r in view.drain(1..) {
        max_service = max_service.max(r.int()?);
    }
    Ok((view.pop().map(Reply::strings).unwrap_or_default(), max_service))
}

/// Maximum leases seen (global, one service) and the number of samples.
fn maxima<'a>(samples: impl Iterator<Item = &'a Sample>) -> (u64, u64, usize) {
    samples.fold((0, 0, 0), |(g, s, n), x| (g.max(x.global), s.max(x.max_service), n + 1))
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

// ----------------------------------------------------------------- tests --

#[test]
fn many_serve_processes_behave_as_one_system() {
    let _one = one_load_at_a_time();
    let procs = load_procs();
    let calls_per: usize = 4;
    let sys = system();
    let witness = Witness::start(sys.redis.port);

    let started = Instant::now();
    let calls = Arc::new(Calls::default());
    let log = calls.clone();
    let handles = sessions(&sys, procs, move |p, c| {
        for k in 0..calls_per {
            log.search(c, p, query(p * calls_per + k, false));
        }
    });
    join_sessions(handles);
    let elapsed = started.elapsed();
    let seen = witness.finish();
    let total = calls.answered.load(Ordering::SeqCst);

    let snap = shared_snapshot(&sys.redis.url());
    let (searches, cached) = searches(&snap);
    let (mg, ms, samples) = maxima(seen.samples.iter());
    eprintln!(
        "{procs} logai serve processes, {total} searches in {:.1} s; witness: {samples} samples, max {mg}/{GLOBAL} global, {ms}/{PER_SERVICE} per service; \
         shared metrics: {searches} searches, {cached} from cache ({:.0}%)",
        elapsed.as_secs_f64(),
        100.0 * cached / searches.max(1.0)
    );
    print_session_warnings(&sys, procs, &[]);
    assert_eq!(calls.failed.load(Ordering::SeqCst), 0, "calls failed");
    assert_eq!(total, (procs * calls_per) as u64);
    assert_eq!(seen.failed_polls, 0, "the witness lost Redis");
    assert!(mg <= GLOBAL, "witness saw {mg} leases > MAX_GLOBAL_SEARCHES {GLOBAL}");
    assert!(ms <= PER_SERVICE, "witness saw {ms} leases for one service > MAX_PER_SERVICE_SEARCHES {PER_SERVICE}");
    assert_eq!(snap.source, "redis");
    assert_eq!(searches, total as f64, "every session's searches are in the shared metrics");
    assert!(cached > 0.0, "repeated queries were answered from the shared cache");
}

/// Calls per session after the warm-up before it may stop (it goes on until
/// it has also made `AFTER_RESTART` calls sent after the restart and is back
/// on Redis).
const BURST: usize = 6;
const AFTER_RESTART: usize = 2;
/// How long a session may take to come back to Redis by itself.
const RETURN_LIMIT: Duration = Duration::from_secs(60);
/// Pause between a session's calls after the restart: busy, not a tight
/// loop of 150 processes starving the restarted Redis of the 2 cores.
const PACE_AFTER_RESTART: Duration = Duration::from_millis(200);

/// A query no other call asks (a cache miss: it takes a permit).
fn unique_query(p: usize, k: usize) -> Value {
    json!({"service": SERVICES[(p + k) % 3], "pattern": format!("error|p{p}k{k}z"), "date": "2026-11-19", "max_results": 20})
}

fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(a), Some(m), Some(z)) => format!("first {} / median {} / last {}", ms(*a), ms(*m), ms(*z)),
        _ => "none".into(),
    }
}

#[test]
fn redis_killed_and_restarted_mid_load_fails_no_call_and_loses_no_count() {
    let _one = one_load_at_a_time();
    let procs = load_procs();
    let mut sys = system();
    let witness = Witness::start(sys.redis.port);

    // Every session makes one call (counted in the first Redis), then waits
    // until all have; then all search at once, each until it has made BURST
    // calls, AFTER_RESTART calls sent after the restart, and MONITOR on the
    // restarted Redis has seen its permit requests — so every session is
    // alive and busy across the outage, and stays until it is back on Redis.
    // After the restart every call asks a query of its own (a cache miss,
    // so it needs a permit), one every PACE_AFTER_RESTART.
    let started = Instant::now();
    let calls = Arc::new(Calls::default());
    let ready = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let restarted: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let sightings = Arc::new(Mutex::new(Sightings::default()));
    let handles = {
        let (calls, ready, go, restarted, sightings) = (calls.clone(), ready.clone(), go.clone(), restarted.clone(), sightings.clone());
        sessions(&sys, procs, move |p, c| {
            let pid = c.pid();
            calls.search(c, p, query(p * 1000, true));
            ready.fetch_add(1, Ordering::SeqCst);
            while !go.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let (mut k, mut after) = (1, 0);
            loop {
                let restart = restarted.get().copied();
                let back = sightings.lock().unwrap().permits.contains_key(&pid);
                if k > BURST && after >= AFTER_RESTART && back {
                    break;
                }
                match restart {
                    Some(t) => {
                        assert!(t.elapsed() < RETURN_LIMIT, "process {p} (pid {pid}) did not come back to Redis within {RETURN_LIMIT:?}");
                        calls.search(c, p, unique_query(p, k));
                        after += 1;
                        std::thread::sleep(PACE_AFTER_RESTART);
                    }
                    None => calls.search(c, p, query(p * 1000 + k, true)),
                }
                k += 1;
                assert!(k < 1_000_000, "process {p}: Redis was never restarted");
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    while ready.load(Ordering::SeqCst) < procs as u64 {
        assert!(Instant::now() < deadline, "only {} of {procs} sessions came up", ready.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(20));
    }
    let warmed_up = started.elapsed();
    let warm = calls.answered.load(Ordering::SeqCst);
    go.store(true, Ordering::SeqCst);
    let burst_started = Instant::now();

    // Measured, not guessed: the kill lands once a third of the burst's
    // minimum calls are answered, whatever the machine's speed.
    let kill_after = warm + (procs * BURST / 3) as u64;
    while calls.answered.load(Ordering::SeqCst) < kill_after {
        std::thread::sleep(Duration::from_millis(1));
    }
    sys.redis.kill();
    let killed = Instant::now();
    let answered_at_kill = calls.answered.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    sys.redis.spawn();
    let monitor = Monitor::start(sys.redis.port, sightings.clone());
    let back = Instant::now();
    restarted.set(back).unwrap();

    let pids = join_sessions(handles);
    let finished = Instant::now();
    monitor.finish();
    let seen = witness.finish();
    let total = calls.answered.load(Ordering::SeqCst);
    let failed = calls.failed.load(Ordering::SeqCst);

    // Which sessions' metrics the restarted (empty) Redis holds: a session's
    // batch number is written only by its own flush.
    let batches = sys.redis.cli(&["HKEYS", "{logai}:metrics:batches"]);
    let flushed: HashSet<u32> = batches.lines().filter_map(|s| session_pid(s.trim())).collect();
    let not_flushed: Vec<u32> = pids.iter().copied().filter(|p| !flushed.contains(p)).collect();
    // The shared metrics as a fresh session sees them after all exited.
    let snap = shared_snapshot(&sys.redis.url());
    let (searches, cached) = searches(&snap);

    let locks = sys.redis.cli(&["KEYS", "{logai}:cache:*:lock"]).lines().filter(|l| !l.trim().is_empty()).count();
    let times = calls.times.lock().unwrap();
    let slowest = times.iter().map(|(s, a)| *a - *s).max().unwrap_or_default();
    let during_outage = times.iter().filter(|(_, a)| *a > killed && *a < back).count();
    let in_flight_at_kill = times.iter().filter(|(s, a)| *s < killed && *a > killed).count();
    let sent_after = times.iter().filter(|(s, _)| *s > back).count();
    let (g_up1, s_up1, n_up1) = maxima(seen.samples.iter().filter(|s| s.at < killed));
    let (g_up2, s_up2, n_up2) = maxima(seen.samples.iter().filter(|s| s.at > killed));
    let last_before = seen.samples.iter().filter(|s| s.at < killed).map(|s| s.at).max();
    let first_after = seen.samples.iter().filter(|s| s.at > killed).map(|s| s.at).min();
    let first_lease = seen.lease_holders.iter().filter(|(t, _)| *t > back).map(|(t, _)| *t).min();
    let lease_sessions = seen.lease_holders.iter().filter(|(t, _)| *t > killed).count();
    let sightings = sightings.lock().unwrap();
    let permit_back: Vec<Duration> =
        pids.iter().filter_map(|p| sightings.permits.get(p)).map(|t| t.saturating_duration_since(back)).collect();
    let metrics_back: Vec<Duration> =
        pids.iter().filter_map(|p| sightings.metrics.get(p)).map(|t| t.saturating_duration_since(back)).collect();
    let never_back: Vec<u32> = pids.iter().copied().filter(|p| !sightings.permits.contains_key(p)).collect();

    eprintln!(
        "{procs} logai serve processes: all up and warm after {:.1} s; then {} searches in {:.1} s; total {total} answered, {failed} failed, {:.1} s",
        warmed_up.as_secs_f64(),
        total - warm,
        (finished - burst_started).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "redis-server SIGKILLed {} into the burst, after {} of its calls ({in_flight_at_kill} calls in flight), answering PING again {} later; \
         {during_outage} calls answered while it was down, {sent_after} sent after the restart",
        ms(killed - burst_started),
        answered_at_kill - warm,
        ms(back - killed)
    );
    eprintln!(
        "witness: {} failed polls, {} connections; first Redis: {n_up1} samples, max {g_up1}/{GLOBAL} global, {s_up1}/{PER_SERVICE} per service \
         (last {} before the kill); restarted Redis: {n_up2} samples, max {g_up2}/{GLOBAL} global, {s_up2}/{PER_SERVICE} per service \
         (first {} after the restart); leases there: first {} after the restart, from {lease_sessions} sessions",
        seen.failed_polls,
        seen.connections,
        last_before.map(|t| ms(killed - t)).unwrap_or_default(),
        first_after.map(|t| ms(t.saturating_duration_since(back))).unwrap_or_default(),
        first_lease.map(|t| ms(t - back)).unwrap_or_else(|| "never".into()),
    );
    eprintln!(
        "back to Redis by themselves (MONITOR, {} commands): permit requests of {} of {procs} sessions, {} after the restart; \
         metrics flushes of {} sessions, {}; at the end {} of {procs} sessions had their batch number there",
        sightings.commands,
        permit_back.len(),
        spread(permit_back.clone()),
        metrics_back.len(),
        spread(metrics_back.clone()),
        procs - not_flushed.len(),
    );
    eprintln!(
        "shared metrics after all sessions exited ({}): {searches} searches, {cached} from cache; slowest call {}; cache fill locks left: {locks}",
        snap.source,
        ms(slowest)
    );
    print_session_warnings(&sys, procs, &["Redis unavailable; using local state"]);

    // No call failed and every session exited 0 (checked in its thread).
    assert_eq!(failed, 0, "calls failed across the Redis restart");
    assert_eq!(pids.len(), procs);
    // The kill really landed mid-load.
    assert!(in_flight_at_kill > 0, "no call was in flight at the kill");
    assert!(during_outage > 0, "no call was answered while Redis was down");
    assert!(seen.failed_polls > 0 && first_after.is_some(), "the witness did not see Redis go and come back");
    // Limits, as Redis holds them, whenever it was up (during the outage each
    // session enforces them on its own: documented).
    assert!(g_up1 <= GLOBAL && g_up2 <= GLOBAL, "witness saw {g_up1}/{g_up2} leases > MAX_GLOBAL_SEARCHES {GLOBAL}");
    assert!(
        s_up1 <= PER_SERVICE && s_up2 <= PER_SERVICE,
        "witness saw {s_up1}/{s_up2} leases for one service > MAX_PER_SERVICE_SEARCHES {PER_SERVICE}"
    );
    // No metric count lost: Redis restarted empty, every live session re-added its totals.
    assert_eq!(snap.source, "redis");
    assert_eq!(searches, total as f64, "searches counted in the shared metrics after the restart");
    // Every session came back to Redis by itself: its permit requests reached
    // the restarted Redis (a session sends them only once its own reconnect
    // loop found Redis answering) and its metrics are there.
    assert!(never_back.is_empty(), "sessions (pids) whose permit requests never reached the restarted Redis: {never_back:?}");
    assert!(not_flushed.is_empty(), "sessions (pids) whose metrics never reached the restarted Redis: {not_flushed:?}");
}
