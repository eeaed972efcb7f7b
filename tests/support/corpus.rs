//! Corpus generators and an independent ground truth for the search suites.
//!
//! Included by the search suites with `#[path = "support/corpus.rs"] mod corpus;`.
//!
//! Ground truth is computed without logai's code: `rg -a -n --json` (ripgrep,
//! Debian package `ripgrep`) finds the matching line numbers of each file
//! (gzip files are decompressed with `zcat` and piped in), and the time
//! window is applied by the simple stamp parsers below (a line without a
//! stamp belongs to the last stamped line above it in the same file; lines
//! before the first stamp have no time and never fall in a window).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

/// Deterministic xorshift64*.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// How a generated file stamps its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmt {
    /// `Mmm dd hh:mm:ss host app[pid]: msg` (no year: files get an mtime in [`YEAR`]).
    Rfc3164,
    /// `<pri>1 2026-11-20T10:00:00.123Z host app pid - - msg`
    Rfc5424,
    /// `{"timestamp":"2026-11-20T10:00:00.123Z",...}` with unstamped stack traces.
    Json,
}

/// The year of every generated stamp; RFC 3164 files get an mtime late in it.
pub const YEAR: i32 = 2026;

pub fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().timestamp_millis()
}

/// RFC 3339 as logai reports stamps (UTC, milliseconds, `Z`).
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn iso_z(ms: i64) -> String {
    rfc3339(ms)
}

const WORDS: &[&str] = &[
    "request done",
    "upstream timeout after 30000 ms",
    "Connection Timeout while reading",
    "TIMEOUT waiting for lock",
    "user login ok",
    "cache miss",
    "[ERROR] a.b(c) failed",
    "retrying (attempt 2/5)",
    "payment declined: insufficient funds",
    "disk usage 91% on /var",
    "GET /v1/charges 200",
    "POST /v1/refunds 502",
    "café crème ünïcödé",
];

const STACK: &[&str] = &[
    "java.net.SocketTimeoutException: Read timed out",
    "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
    "\tat com.example.Client.call(Client.java:87)",
    "Caused by: java.io.InterruptedIOException: timeout",
    "\t... 12 more",
];

/// One generated log file: its lines (no terminators) in order.
pub struct GenFile {
    pub name: String,
    pub fmt: Fmt,
    pub lines: Vec<Vec<u8>>,
    pub gz: bool,
}

/// Lines stamped from `start_ms`, `n` entries, `step_ms` apart on average,
/// with request ids, timeouts in three casings, regex metacharacters,
/// unstamped stack traces (`stack_pct`% of entries), NUL bytes
/// (`nul_pct`% of entries) and a few CRLF endings.
pub fn gen_lines(rng: &mut Rng, fmt: Fmt, start_ms: i64, n: usize, step_ms: i64, stack_pct: u64, nul_pct: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n + n / 5);
    let mut t = start_ms;
    for i in 0..n {
        t += 1 + rng.below((2 * step_ms).max(1) as u64) as i64;
        let msg = format!("{} req=req-{:06x} n={i}", rng.pick(WORDS), rng.below(1 << 24));
        let level = *rng.pick(&["INFO", "WARN", "ERROR", "DEBUG"]);
        let mut line: Vec<u8> = match fmt {
            Fmt::Rfc3164 => {
                let dt = Utc.timestamp_millis_opt(t).unwrap();
                format!("{} host1 app[{}]: {level} {msg}", dt.format("%b %e %H:%M:%S"), 100 + rng.below(900)).into_bytes()
            }
            Fmt::Rfc5424 => {
                format!("<{}>1 {} host1 app {} - - {level} {msg}", 130 + rng.below(8), iso_z(t), 100 + rng.below(900)).into_bytes()
            }
            Fmt::Json => serde_json::to_vec(&json!({"timestamp": iso_z(t), "level": level, "msg": msg})).unwrap(),
        };
        if rng.chance(nul_pct) {
            // A NUL byte in the middle of the line (binary junk in a log).
            let at = line.len() / 2;
            line.splice(at..at, [0u8, b'x', 0u8]);
        }
        if rng.chance(2) {
            line.push(b'\r');
        }
        out.push(line);
        if rng.chance(stack_pct) {
            for s in STACK {
                out.push(s.as_bytes().to_vec());
            }
        }
    }
    out
}

pub fn file_bytes(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    for l in lines {
        b.extend_from_slice(l);
        b.push(b'\n');
    }
    b
}

/// Write `f` into `dir` (gzip when `f.gz`), with the mtime a real log file
/// would have: its last stamp (so RFC 3164 stamps get [`YEAR`], and a
/// rotated file is not "written" after its last line). Returns the
/// canonical path.
pub fn write_file(dir: &Path, f: &GenFile) -> PathBuf {
    let path = dir.join(&f.name);
    let bytes = file_bytes(&f.lines);
    let data = if f.gz {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        enc.finish().unwrap()
    } else {
        bytes
    };
    std::fs::write(&path, data).unwrap();
    let last = f.lines.iter().rev().find_map(|l| stamp(f.fmt, l.strip_suffix(b"\r").unwrap_or(l)));
    set_mtime(&path, last.unwrap_or(ms(YEAR, 12, 31, 12, 0, 0)));
    std::fs::canonicalize(&path).unwrap()
}

pub fn set_mtime(path: &Path, at_ms: i64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms as u64);
    f.set_modified(t).unwrap();
}

/// The file's lines as logai reads them (gunzipped), without terminators.
pub fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    let raw = std::fs::read(path).unwrap();
    let data = if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("zcat").arg(path).output().expect("zcat");
        assert!(out.status.success());
        out.stdout
    } else {
        raw
    };
    let mut lines: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
    if data.ends_with(b"\n") || data.is_empty() {
        lines.pop();
    }
    lines
}

/// Text of a line as logai reports it: without `\r`, lossy UTF-8.
pub fn line_text(line: &[u8]) -> String {
    let l = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(l).into_owned()
}

/// How the pattern is matched (rg flags).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub pattern: String,
    pub fixed_strings: bool,
    pub case_insensitive: bool,
}

/// 1-based line numbers matching `q` in `path`, by ripgrep (`rg -a -n --json`).
pub fn rg_line_numbers(path: &Path, q: &Query) -> Vec<u64> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut cmd = Command::new("rg");
    cmd.args(["-a", "-n", "--json", "--no-config"]);
    if q.fixed_strings {
        cmd.arg("-F");
    }
    if q.case_insensitive {
        cmd.arg("-i");
    }
    cmd.arg("-e").arg(&q.pattern);
    let out = if gz {
        let mut zcat = Command::new("zcat").arg(path).stdout(Stdio::piped()).spawn().expect("zcat");
        cmd.arg("-").stdin(zcat.stdout.take().unwrap());
        let out = cmd.output().expect("rg (install the Debian package ripgrep)");
        let _ = zcat.wait();
        out
    } else {
        cmd.arg(path);
        cmd.output().expect("rg (install the Debian package ripgrep)")
    };
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1), "rg failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines = Vec::new();
    for l in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(l).unwrap();
        if v["type"] == "match" {
            lines.push(v["data"]["line_number"].as_u64().unwrap());
        }
    }
    lines
}

/// The stamp of one line, by the test's own parser (UTC stamps only).
pub fn stamp(fmt: Fmt, line: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(line).ok().or_else(|| std::str::from_utf8(&line[..line.iter().position(|&b| b == 0)?]).ok())?;
    match fmt {
        Fmt::Rfc3164 => {
            // "Nov 20 10:00:00 ..." / "Nov  2 10:00:00 ..."
            let head = s.get(..15)?;
            let t = chrono::NaiveDateTime::parse_from_str(&format!("{YEAR} {head}"), "%Y %b %e %H:%M:%S").ok()?;
            Some(Utc.from_utc_datetime(&t).timestamp_millis())
        }
        Fmt::Rfc5424 => {
            let rest = s.strip_prefix('<')?;
            let gt = rest.find('>')?;
            let rest = rest[gt + 1..].strip_prefix("1 ")?;
            let ts = rest.split(' ').next()?;
            DateTime::parse_from_rfc3339(ts).ok().map(|t| t.timestamp_millis())
        }
        Fmt::Json => {
            // "timestamp": "..." (any whitespace around the colon)
            let k = s.find("\"timestamp\"")? + "\"timestamp\"".len();
            let rest = s[k..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
            let end = rest.find('"')?;
            DateTime::parse_from_rfc3339(&rest[..end]).ok().map(|t| t.timestamp_millis())
        }
    }
}

/// Half-open window `[start, end)`.
#[derive(Clone, Copy, Debug)]
pub struct Win {
    pub start: i64,
    pub end: i64,
}

impl Win {
    pub fn date(y: i32, m: u32, d: u32) -> Win {
        let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap()).timestamp_millis();
        Win { start, end: start + 86_400_000 }
    }
}

/// One expected match, in logai's structured shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub file: String,
    pub line_number: u64,
    pub timestamp: Option<String>,
    pub text: String,
    pub before: Vec<(u64, String)>,
    pub after: Vec<(u64, String)>,
}

impl Expected {
    pub fn to_json(&self) -> Value {
        let ctx = |v: &Vec<(u64, String)>| -> Value { v.iter().map(|(n, t)| json!({"line_number": n, "text": t})).collect() };
        let mut m = json!({
            "file": self.file,
            "line_number": self.line_number,
            "text": self.text,
            "before": ctx(&self.before),
            "after": ctx(&self.after),
        });
        if let Some(t) = &self.timestamp {
            m["timestamp"] = json!(t);
        }
        m
    }
}

/// Every expected match of `q` over `files` (given oldest first), within
/// `window`, with `context` lines around each.
pub fn expected(files: &[(PathBuf, Fmt)], q: &Query, window: Option<Win>, context: usize) -> Vec<Expected> {
    let mut all = Vec::new();
    for (path, fmt) in files {
        let lines = read_lines(path);
        // Effective stamp of each line.
        let mut eff: Vec<Option<i64>> = Vec::with_capacity(lines.len());
        let mut last = None;
        for l in &lines {
            if let Some(t) = stamp(*fmt, l.strip_suffix(b"\r").unwrap_or(l)) {
                last = Some(t);
            }
            eff.push(last);
        }
        for n in rg_line_numbers(path, q) {
            let i = (n - 1) as usize;
            if let Some(w) = window {
                match eff[i] {
                    Some(t) if t >= w.start && t < w.end => {}
                    _ => continue,
                }
            }
            let lo = i.saturating_sub(context);
            let hi = (i + context).min(lines.len() - 1);
            all.push(Expected {
                file: path.to_string_lossy().into_owned(),
                line_number: n,
                timestamp: eff[i].map(rfc3339),
                text: line_text(&lines[i]),
                before: (lo..i).map(|j| (j as u64 + 1, line_text(&lines[j]))).collect(),
                after: (i + 1..=hi).map(|j| (j as u64 + 1, line_text(&lines[j]))).collect(),
            });
        }
    }
    all
}

/// A manifest for `logai serve` over the given services, the search-tools
/// component from `plugins/dist`, local state only, generous limits (tests
/// make many calls), overflow files under `session_root`.
pub fn manifest(dir: &Path, services: &[(&str, &str, &[String])], extra_limits: &str) -> PathBuf {
    let wasm = super_plugin_dist().join("search-tools.wasm");
    let mut t = format!(
        r#"[server]
log_level = "warn"
session_root = "{root}"

[limits]
rate_limit_per_user_per_minute = 1000000
rate_limit_burst = 1000000
permit_wait_ms = 60000
{extra_limits}

[cache]
enabled = true

[[plugin]]
name = "search-tools"
component = "{wasm}"
memory_mb = 64
timeout_ms = 120000
"#,
        root = dir.join("sessions").display(),
        wasm = wasm.display()
    );
    for (name, format, paths) in services {
        let paths: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
        t.push_str(&format!(
            "\n[[service]]\nname = {name:?}\ndescription = \"test service {name}\"\npaths = [{}]\nformat = {format:?}\ntimezone = \"UTC\"\n",
            paths.join(", ")
        ));
    }
    let path = dir.join("logai.toml");
    std::fs::write(&path, t).unwrap();
    path
}

fn super_plugin_dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("plugins/dist")
}

/// Environment for `logai serve` in tests: a shared precompile cache under
/// the target dir (compiling the component once per run, not per test).
pub fn serve_env() -> Vec<(String, String)> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target/e2e-compile-cache");
    vec![("LOGAI_CACHE_DIR".into(), cache.to_string_lossy().into_owned()), ("LOG_LEVEL".into(), "warn".into())]
}

/// ripgrep and the built component are present (panics naming what is missing).
pub fn prerequisites() -> bool {
    need_rg();
    let wasm = super_plugin_dist().join("search-tools.wasm");
    assert!(wasm.is_file(), "{} is missing: run scripts/build-plugins first", wasm.display());
    true
}

/// ripgrep is present (panics naming the package otherwise).
pub fn need_rg() {
    let rg = Command::new("rg").arg("--version").output().is_ok_and(|o| o.status.success());
    if !rg {
        panic!("ripgrep (`rg`) is required for the search ground truth: apt-get install -y ripgrep");
    }
}
