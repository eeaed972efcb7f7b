//! Unit tests of the search core, on real files in temporary directories.

// A test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::timestamp::{format_ms, LogFormat, StampParser};
use super::*;
use crate::lookup::keys;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ms(s: &str) -> i64 {
    utc(s).timestamp_millis()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }
    fn write_gz(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap();
        p
    }
    /// A core over `services` (TOML `[[service]]` tables; paths relative to the fixture).
    fn core(&self, services: &str) -> SearchCore {
        let text =
            format!("[server]\nsession_root = \"{}\"\n[limits]\nmax_results_cap = 100000\n{services}", self.path("sessions").display());
        let cfg = crate::config::parse(&text, "test.toml", self.dir.path()).unwrap();
        let session = SessionDir::create(self.path(&format!("sessions/test-{}", rand_suffix()))).unwrap();
        SearchCore::new(&cfg, session).unwrap()
    }
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::rng().random()
}

fn req(service: &str, pattern: &str) -> SearchRequest {
    SearchRequest { service: service.into(), pattern: pattern.into(), max_results: 1000, ..Default::default() }
}

fn run(core: &SearchCore, r: &SearchRequest, now: DateTime<Utc>) -> SearchResponse {
    let plan = core.plan(r, now).unwrap();
    core.execute(&plan, &SearchControl::with_timeout(Duration::from_secs(60))).unwrap()
}

/// Every match of a search, inline and overflow, in order.
fn all_matches(core: &SearchCore, resp: &SearchResponse) -> Vec<SearchMatch> {
    match &resp.overflow {
        None => resp.matches.clone(),
        Some(o) => {
            let mut out = Vec::new();
            let mut off = 0;
            loop {
                let page = core.read_overflow(&o.reference, off, 777).unwrap();
                off += page.matches.len() as u64;
                out.extend(page.matches);
                if page.eof {
                    break;
                }
            }
            out
        }
    }
}

/// Reference implementation: every line, its effective stamp, regex match.
fn naive(data: &[u8], re: &str, parser: &StampParser, window: Option<Window>) -> Vec<(u64, String, Option<String>)> {
    let re = regex::bytes::Regex::new(&format!("(?m){re}")).unwrap();
    let mut eff = None;
    let mut out = Vec::new();
    let text = data.strip_suffix(b"\n").unwrap_or(data);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if let Some(ms) = parser.parse(line) {
            eff = Some(ms);
        }
        if !re.is_match(line) {
            continue;
        }
        if let Some(w) = window {
            if !eff.is_some_and(|e| w.contains(e)) {
                continue;
            }
        }
        out.push((i as u64 + 1, String::from_utf8_lossy(line).into_owned(), eff.map(format_ms)));
    }
    out
}

fn triples(ms: &[SearchMatch]) -> Vec<(u64, String, Option<String>)> {
    ms.iter().map(|m| (m.line_number, m.text.clone(), m.timestamp.clone())).collect()
}

// ---------------------------------------------------------------- timestamps

#[test]
fn rfc3164_infers_the_year_from_the_reference() {
    let p = StampParser::new(LogFormat::Syslog, Tz::UTC, utc("2027-01-02T10:00:00Z"));
    assert_eq!(p.parse(b"Dec 31 23:59:59 host sshd[1]: x"), Some(ms("2026-12-31T23:59:59Z")));
    assert_eq!(p.parse(b"Jan  2 09:00:00 host sshd[1]: x"), Some(ms("2027-01-02T09:00:00Z")));
    assert_eq!(p.parse(b"<34>Jan  1 00:00:01 host su: x"), Some(ms("2027-01-01T00:00:01Z")));
    // A day of clock skew past the reference still counts as this year.
    assert_eq!(p.parse(b"Jan  3 09:00:00 host x"), Some(ms("2027-01-03T09:00:00Z")));
    // Further in the future: last year.
    assert_eq!(p.parse(b"Mar  3 09:00:00 host x"), Some(ms("2026-03-03T09:00:00Z")));
    assert_eq!(p.parse(b"    at com.example.Foo"), None);
    assert_eq!(p.parse(b"Xyz  3 09:00:00 host x"), None);
}

#[test]
fn rfc3164_reads_the_service_timezone() {
    let tz: Tz = "America/New_York".parse().unwrap();
    let p = StampParser::new(LogFormat::Syslog, tz, utc("2026-11-23T20:00:00Z"));
    assert_eq!(p.parse(b"Nov 23 13:12:01 host app: x"), Some(ms("2026-11-23T18:12:01Z")));
    // Summer time.
    assert_eq!(p.parse(b"Jul  4 12:00:00 host app: x"), Some(ms("2026-07-04T16:00:00Z")));
}

#[test]
fn rfc5424_and_iso_stamps() {
    let p = StampParser::new(LogFormat::Syslog, Tz::UTC, Utc::now());
    assert_eq!(p.parse(b"<34>1 2026-11-23T13:12:01.003Z host app 1 ID47 - msg"), Some(ms("2026-11-23T13:12:01.003Z")));
    assert_eq!(p.parse(b"<165>1 2026-11-23T13:12:01.123456+02:00 h a - - - m"), Some(ms("2026-11-23T11:12:01.123Z")));
    assert_eq!(p.parse(b"2026-11-23T13:12:01+00:00 host rsyslogd: x"), Some(ms("2026-11-23T13:12:01Z")));
    let plain = StampParser::new(LogFormat::Plain, "Europe/Berlin".parse().unwrap(), Utc::now());
    assert_eq!(plain.parse(b"2026-11-23 13:12:01,250 INFO x"), Some(ms("2026-11-23T12:12:01.250Z")));
    assert_eq!(plain.parse(b"[2026-11-23T13:12:01Z] x"), Some(ms("2026-11-23T13:12:01Z")));
    assert_eq!(plain.parse(b"2026-11-23T13:12:01-0500 x"), Some(ms("2026-11-23T18:12:01Z")));
    assert_eq!(plain.parse(b"Traceback (most recent call last):"), None);
    assert_eq!(plain.parse(b"2026-13-23T13:12:01Z bad month"), None);
}

#[test]
fn json_stamps() {
    let p = StampParser::new(LogFormat::Json, Tz::UTC, Utc::now());
    assert_eq!(p.parse(br#"{"level":"info","timestamp":"2026-11-23T13:12:01.5Z","msg":"x"}"#), Some(ms("2026-11-23T13:12:01.500Z")));
    assert_eq!(p.parse(br#"{"time": "2026-11-23T13:12:01+01:00"}"#), Some(ms("2026-11-23T12:12:01Z")));
    assert_eq!(p.parse(br#"{"ts":1795439521.25,"msg":"x"}"#), Some(1_795_439_521_250));
    assert_eq!(p.parse(br#"{"ts":1795439521250}"#), Some(1_795_439_521_250));
    assert_eq!(p.parse(br#"{"@timestamp":"2026-11-23T13:12:01Z"}"#), Some(ms("2026-11-23T13:12:01Z")));
    assert_eq!(p.parse(br#"{"date":"2026-11-23 13:12:01"}"#), Some(ms("2026-11-23T13:12:01Z")));
    assert_eq!(p.parse(br#"{"msg":"no stamp"}"#), None);
    let auto = StampParser::new(LogFormat::Auto, Tz::UTC, Utc::now());
    assert_eq!(auto.parse(br#"{"ts":1795439521}"#), Some(1_795_439_521_000));
    assert_eq!(auto.parse(b"<34>1 2026-11-23T13:12:01Z h a - - - m"), Some(ms("2026-11-23T13:12:01Z")));
    assert_eq!(auto.parse(b"2026-11-23T13:12:01Z x"), Some(ms("2026-11-23T13:12:01Z")));
}

// ---------------------------------------------------------------- windows

#[test]
fn windows_resolve_to_absolute_ranges() {
    let now = utc("2026-11-23T13:00:00Z");
    let mut r = req("s", "x");
    r.minutes_back = Some(5);
    let w = window::resolve(&r, Tz::UTC, now).unwrap().unwrap();
    assert_eq!((w.start_ms, w.end_ms), (ms("2026-11-23T12:55:00Z"), ms("2026-11-23T13:00:00Z")));

    let mut r = req("s", "x");
    r.date = Some("2026-11-22".into());
    let tz: Tz = "America/New_York".parse().unwrap();
    let w = window::resolve(&r, tz, now).unwrap().unwrap();
    assert_eq!((w.start_ms, w.end_ms), (ms("2026-11-22T05:00:00Z"), ms("2026-11-23T05:00:00Z")));

    let mut r = req("s", "x");
    r.since = Some("2026-11-23T10:00:00+01:00".into());
    let w = window::resolve(&r, Tz::UTC, now).unwrap().unwrap();
    assert_eq!((w.start_ms, w.end_ms), (ms("2026-11-23T09:00:00Z"), i64::MAX));
    assert_eq!(w.end_text(), None);

    assert_eq!(window::resolve(&req("s", "x"), Tz::UTC, now).unwrap(), None);
}

#[test]
fn conflicting_or_bad_windows_are_refused_by_field() {
    let now = Utc::now();
    let mut r = req("s", "x");
    r.minutes_back = Some(5);
    r.date = Some("2026-11-23".into());
    let e = window::resolve(&r, Tz::UTC, now).unwrap_err();
    assert_eq!(e.kind, SearchErrorKind::InvalidRequest);
    assert!(e.message.contains("minutes_back") && e.message.contains("date"), "{}", e.message);

    let mut r = req("s", "x");
    r.hours_back = Some(1);
    r.since = Some("2026-11-23T00:00:00Z".into());
    let e = window::resolve(&r, Tz::UTC, now).unwrap_err();
    assert!(e.message.contains("hours_back") && e.message.contains("since"), "{}", e.message);

    let mut r = req("s", "x");
    r.date = Some("23/11/2026".into());
    assert_eq!(window::resolve(&r, Tz::UTC, now).unwrap_err().field.as_deref(), Some("date"));

    let mut r = req("s", "x");
    r.since = Some("yesterday".into());
    assert_eq!(window::resolve(&r, Tz::UTC, now).unwrap_err().field.as_deref(), Some("since"));

    let mut r = req("s", "x");
    r.since = Some("2026-11-23T10:00:00Z".into());
    r.until = Some("2026-11-23T09:00:00Z".into());
    assert_eq!(window::resolve(&r, Tz::UTC, now).unwrap_err().field.as_deref(), Some("until"));
}

// ---------------------------------------------------------------- search

const SVC_PLAIN: &str = "[[service]]\nname = \"app\"\npaths = [\"logs/app.log*\"]\nformat = \"plain\"\n";

#[test]
fn finds_matches_with_line_numbers_context_and_stamps() {
    let fx = Fixture::new();
    let data = "2026-11-23T10:00:00Z start\n\
                2026-11-23T10:00:01Z ERROR boom\n\
                java.lang.IllegalStateException: ERROR inside\n\
                \tat com.example.Foo(Foo.java:1)\n\
                2026-11-23T10:00:02Z ok\n\
                2026-11-23T10:00:03Z error lower\n";
    fx.write("logs/app.log", data.as_bytes());
    let core = fx.core(SVC_PLAIN);
    let mut r = req("app", "ERROR");
    r.context = 1;
    let resp = run(&core, &r, Utc::now());
    assert_eq!(resp.total_matches, 2);
    assert_eq!(resp.files_searched, 1);
    assert_eq!(resp.files_matched, 1);
    assert!(!resp.truncated && !resp.partial);
    let m = &resp.matches[0];
    assert_eq!((m.line_number, m.text.as_str()), (2, "2026-11-23T10:00:01Z ERROR boom"));
    assert_eq!(m.timestamp.as_deref(), Some("2026-11-23T10:00:01.000Z"));
    assert_eq!(m.before, vec![ContextLine { line_number: 1, text: "2026-11-23T10:00:00Z start".into() }]);
    assert_eq!(m.after[0].line_number, 3);
    // The unstamped line takes the stamp of the line it belongs to.
    let m = &resp.matches[1];
    assert_eq!(m.line_number, 3);
    assert_eq!(m.timestamp.as_deref(), Some("2026-11-23T10:00:01.000Z"));
    assert!(m.file.ends_with("logs/app.log") && Path::new(&m.file).is_absolute());

    let mut r = req("app", "error");
    r.case_insensitive = true;
    assert_eq!(run(&core, &r, Utc::now()).total_matches, 3);
    let mut r = req("app", "Foo(Foo");
    r.fixed_strings = true;
    let resp = run(&core, &r, Utc::now());
    assert_eq!(resp.total_matches, 1);
    assert_eq!(resp.matches[0].line_number, 4);
}

#[test]
fn bad_requests_name_their_field() {
    let fx = Fixture::new();
    fx.write("logs/app.log", b"x\n");
    let core = fx.core(SVC_PLAIN);
    let e = core.plan(&req("nope", "x"), Utc::now()).unwrap_err();
    assert_eq!((e.kind, e.field.as_deref()), (SearchErrorKind::InvalidRequest, Some("service")));
    assert!(e.message.contains("app"), "lists known services: {}", e.message);
    let e = core.plan(&req("app", "(unclosed"), Utc::now()).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("pattern"));
    assert!(e.message.contains("unclosed"), "{}", e.message);
    let e = core.plan(&req("app", "\\w{1000}\\w{1000}\\w{1000}\\w{1000}"), Utc::now()).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("pattern"), "a too-large regex is refused: {}", e.message);
    let mut r = req("app", "x");
    r.log_format = Some("xml".into());
    assert_eq!(core.plan(&r, Utc::now()).unwrap_err().field.as_deref(), Some("log_format"));
    let mut r = req("app", "x");
    r.context = 1000;
    assert_eq!(core.plan(&r, Utc::now()).unwrap_err().field.as_deref(), Some("context"));
}

#[test]
fn nul_bytes_do_not_stop_the_search() {
    let fx = Fixture::new();
    let mut data = Vec::new();
    data.extend_from_slice(b"2026-11-23T10:00:00Z needle one\n");
    data.extend_from_slice(b"binary \x00\x01\x02\xff\xfe junk\n");
    data.extend_from_slice(b"2026-11-23T10:00:01Z \x00 needle after nul\n");
    for _ in 0..50_000 {
        data.extend_from_slice(b"\x00\x00\x00\x00 filler line without the word\n");
    }
    data.extend_from_slice(b"2026-11-23T10:00:02Z needle at the end");
    fx.write("logs/app.log", &data);
    let core = fx.core(SVC_PLAIN);
    let resp = run(&core, &req("app", "needle"), Utc::now());
    assert_eq!(resp.total_matches, 3);
    let lines: Vec<u64> = resp.matches.iter().map(|m| m.line_number).collect();
    assert_eq!(lines, vec![1, 3, 50_004]);
    assert_eq!(resp.matches[1].text, "2026-11-23T10:00:01Z \u{0} needle after nul");
    assert_eq!(resp.matches[2].text, "2026-11-23T10:00:02Z needle at the end");
}

#[test]
fn rotated_and_gzipped_files_are_searched_oldest_first() {
    let fx = Fixture::new();
    let gz = fx.write_gz("logs/app.log.2.gz", b"2026-11-21T10:00:00Z hit two\n2026-11-21T10:00:01Z miss\n");
    // Rotated files keep the mtime of their last write; a gz file's last
    // stamp is bounded by it (its tail is not decompressed to plan).
    std::fs::File::options().write(true).open(&gz).unwrap().set_modified(utc("2026-11-21T10:00:02Z").into()).unwrap();
    fx.write("logs/app.log.1", b"2026-11-22T10:00:00Z hit one\n");
    fx.write("logs/app.log", b"2026-11-23T10:00:00Z miss\n2026-11-23T10:00:01Z hit zero\n");
    fx.write("logs/other.txt", b"2026-11-23T10:00:01Z hit but not configured\n");
    let core = fx.core(SVC_PLAIN);
    let resp = run(&core, &req("app", "hit"), Utc::now());
    let got: Vec<(String, u64)> =
        resp.matches.iter().map(|m| (Path::new(&m.file).file_name().unwrap().to_string_lossy().into_owned(), m.line_number)).collect();
    assert_eq!(got, vec![("app.log.2.gz".into(), 1), ("app.log.1".into(), 1), ("app.log".into(), 2)]);
    assert_eq!(resp.files_searched, 3);
    assert_eq!(resp.files_matched, 3);

    // Date window prunes by file.
    let mut r = req("app", "hit");
    r.date = Some("2026-11-22".into());
    let plan = core.plan(&r, Utc::now()).unwrap();
    assert_eq!(plan.files.len(), 1);
    assert_eq!(plan.files_pruned, 2);
    let resp = core.execute(&plan, &SearchControl::with_timeout(Duration::from_secs(10))).unwrap();
    assert_eq!(resp.total_matches, 1);
    assert_eq!(resp.window_start.as_deref(), Some("2026-11-22T00:00:00.000Z"));

    // file_pattern narrows to file names.
    let mut r = req("app", "hit");
    r.file_pattern = Some("*.gz".into());
    assert_eq!(run(&core, &r, Utc::now()).total_matches, 1);
}

#[test]
fn gz_windows_and_multi_member_archives() {
    let fx = Fixture::new();
    let mut data = String::new();
    for i in 0..20_000 {
        data.push_str(&format!("2026-11-23T{:02}:{:02}:{:02}Z line {i} hit\n", i / 3600, (i / 60) % 60, i % 60));
    }
    // Two gzip members concatenated.
    let p = fx.path("logs/app.log.1.gz");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&p).unwrap();
    let half = data.len() / 2;
    let cut = data[..half].rfind('\n').unwrap() + 1;
    for part in [&data[..cut], &data[cut..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part.as_bytes()).unwrap();
        f.write_all(&enc.finish().unwrap()).unwrap();
    }
    drop(f);
    let core = fx.core(SVC_PLAIN);
    assert_eq!(run(&core, &req("app", "hit"), Utc::now()).total_matches, 20_000);
    let mut r = req("app", "hit");
    r.since = Some("2026-11-23T05:00:00Z".into());
    r.until = Some("2026-11-23T05:00:10Z".into());
    let resp = run(&core, &r, Utc::now());
    assert_eq!(resp.total_matches, 10);
    assert_eq!(resp.matches[0].line_number, 18_001);
}

/// A 30 MB file, roughly sorted (stamps jitter by up to 90 s), searched for
/// windows at many points: the binary search never loses a line.
#[test]
fn binary_search_with_local_disorder_matches_a_full_scan() {
    let fx = Fixture::new();
    let base = ms("2026-11-20T00:00:00Z");
    let mut data = Vec::new();
    let mut seed: u64 = 42;
    let mut i: u64 = 0;
    while data.len() < 30 * 1024 * 1024 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let jitter = ((seed >> 33) % 180_000) as i64 - 90_000;
        let t = base + i as i64 * 250 + jitter;
        let word = if seed.is_multiple_of(7) { "needle" } else { "hay" };
        data.extend_from_slice(format!("{} {word} request {i} took {}ms\n", format_ms(t), seed % 1000).as_bytes());
        if seed.is_multiple_of(13) {
            data.extend_from_slice(b"    at needle.continuation(Trace.java:12)\n");
        }
        i += 1;
    }
    let path = fx.write("logs/app.log", &data);
    let core = fx.core(SVC_PLAIN);
    let mtime = FileIdProbe::mtime(&path);
    let parser = StampParser::new(LogFormat::Plain, Tz::UTC, mtime);
    let span = i as i64 * 250;
    for k in [1i64, 7, 13, 29, 50, 71, 97] {
        let start = base + span * k / 100;
        let end = start + 20 * 60 * 1000;
        let mut r = req("app", "needle");
        r.since = Some(format_ms(start));
        r.until = Some(format_ms(end));
        let resp = run(&core, &r, Utc::now());
        let expect = naive(&data, "needle", &parser, Some(Window { start_ms: start, end_ms: end }));
        assert!(!expect.is_empty());
        assert_eq!(triples(&all_matches(&core, &resp)), expect, "window at {k}%");
        assert!(resp.bytes_scanned < data.len() as u64 / 4, "scanned {} of {}", resp.bytes_scanned, data.len());
    }
    // Without a window, the whole file, and every line number right.
    let resp = run(&core, &req("app", "needle"), Utc::now());
    let expect = naive(&data, "needle", &parser, None);
    assert_eq!(resp.total_matches, expect.len() as u64);
    assert!(resp.truncated);
    assert_eq!(triples(&all_matches(&core, &resp)), expect);
}

struct FileIdProbe;
impl FileIdProbe {
    fn mtime(p: &Path) -> DateTime<Utc> {
        let m = std::fs::metadata(p).unwrap();
        files::FileId::of(&m).mtime()
    }
}

#[test]
fn line_checkpoints_persist_and_survive_appends() {
    let fx = Fixture::new();
    let mut data = Vec::new();
    let base = ms("2026-11-20T00:00:00Z");
    let mut i = 0i64;
    while data.len() < 12 * 1024 * 1024 {
        data.extend_from_slice(format!("{} line {i} {}\n", format_ms(base + i * 100), if i % 1000 == 0 { "mark" } else { "" }).as_bytes());
        i += 1;
    }
    let path = fx.write("logs/app.log", &data);
    let parser = StampParser::new(LogFormat::Plain, Tz::UTC, Utc::now());
    let last = base + (i - 1) * 100;
    let mut r = req("app", "mark");
    r.since = Some(format_ms(last - 60_000));
    let expect = naive(&data, "mark", &parser, Some(Window { start_ms: last - 60_000, end_ms: i64::MAX }));
    for round in 0..2 {
        // A fresh core each round: the second finds the persisted checkpoints.
        let core = fx.core(SVC_PLAIN);
        let resp = run(&core, &r, Utc::now());
        assert_eq!(triples(&resp.matches), expect, "round {round}");
    }
    // Append; checkpoints stay valid, numbers stay right.
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(format!("{} appended mark\n", format_ms(last + 100)).as_bytes()).unwrap();
    drop(f);
    let core = fx.core(SVC_PLAIN);
    let resp = run(&core, &r, Utc::now());
    assert_eq!(resp.total_matches, expect.len() as u64 + 1);
    assert_eq!(resp.matches.last().unwrap().line_number, i as u64 + 1);
}

#[test]
fn segments_scan_only_new_bytes_with_absolute_line_numbers() {
    let fx = Fixture::new();
    let first = "2026-11-23T10:00:00Z a hit\n2026-11-23T10:00:01Z b\n";
    let path = fx.write("logs/app.log", first.as_bytes());
    let core = fx.core(SVC_PLAIN);
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"2026-11-23T10:00:02Z c hit\n").unwrap();
    drop(f);
    let mut plan = core.plan(&req("app", "hit"), Utc::now()).unwrap();
    plan.files[0].start_offset = first.len() as u64;
    let resp = core.execute(&plan, &SearchControl::with_timeout(Duration::from_secs(5))).unwrap();
    assert_eq!(resp.total_matches, 1);
    assert_eq!(resp.matches[0].line_number, 3);
    assert_eq!(resp.bytes_scanned, 27);
}

#[test]
fn cache_key_covers_parameters_window_and_file_state() {
    let fx = Fixture::new();
    let path = fx.write("logs/app.log", b"2026-11-23T10:00:00Z x\n");
    let core = fx.core(SVC_PLAIN);
    let now = Utc::now();
    let k1 = keys::answer(&core.plan(&req("app", "x"), now).unwrap());
    assert_eq!(k1, keys::answer(&core.plan(&req("app", "x"), now).unwrap()));
    assert_ne!(k1, keys::answer(&core.plan(&req("app", "y"), now).unwrap()));
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"more\n").unwrap();
    assert_ne!(k1, keys::answer(&core.plan(&req("app", "x"), now).unwrap()));

    // Relative windows: a bound that cuts into the files' time range is in
    // the key; one outside it selects nothing different and is left out.
    let fx = Fixture::new();
    let now = Utc::now();
    let stamp = |ago_s: i64| format_ms(now.timestamp_millis() - ago_s * 1000);
    fx.write("logs/app.log", format!("{} x\n{} x\n", stamp(600), stamp(180)).as_bytes());
    let core = fx.core(SVC_PLAIN);
    let later = now + chrono::Duration::seconds(1);
    let mut r = req("app", "x");
    r.minutes_back = Some(5);
    assert_ne!(keys::answer(&core.plan(&r, now).unwrap()), keys::answer(&core.plan(&r, later).unwrap()), "the start cuts into the file");
    r.minutes_back = Some(60);
    assert_eq!(keys::answer(&core.plan(&r, now).unwrap()), keys::answer(&core.plan(&r, later).unwrap()), "both bounds outside the file");
}

/// What a caller sees of an answer (matches with context, counts).
/// A match as a caller sees it: line, text, stamp, context before and after.
type MatchView = (u64, String, Option<String>, Vec<ContextLine>, Vec<ContextLine>);

fn answer_view(r: &SearchResponse) -> (Vec<MatchView>, u64, u32, u32) {
    let ms = r.matches.iter().map(|m| (m.line_number, m.text.clone(), m.timestamp.clone(), m.before.clone(), m.after.clone())).collect();
    (ms, r.total_matches, r.files_matched, r.files_searched)
}

#[test]
fn a_growing_log_asked_again_scans_only_the_new_bytes_and_is_never_stale() {
    let fx = Fixture::new();
    let t0 = Utc::now();
    let at = |s: i64| format_ms(t0.timestamp_millis() + s * 1000);
    // An older rotated file, then the live one; its last line is still
    // being written (no newline yet).
    fx.write("logs/app.log.1", format!("{} hit rotated\n{} other\n", at(-880), at(-700)).as_bytes());
    let mut live = String::new();
    for i in 0..2000 {
        let stamp = format_ms(t0.timestamp_millis() - 600_000 + i * 200);
        live.push_str(&format!("{stamp} line {i}{}\n", if i % 100 == 0 { " hit" } else { "" }));
    }
    live.push_str(&format!("{} hit half-writ", at(-150)));
    let path = fx.write("logs/app.log", live.as_bytes());
    let old_size = live.len() as u64;
    let core = fx.core(SVC_PLAIN);
    let ctl = || SearchControl::with_timeout(Duration::from_secs(60));
    let mut r = req("app", "hit");
    r.minutes_back = Some(15);
    r.context = 1;

    let plan1 = core.plan(&r, t0).unwrap();
    let first = core.execute_resumable(&plan1, None, &ctl(), 10_000);
    assert!(!first.resumed);
    let tail = first.tail.expect("a complete answer leaves a tail");
    let first = first.response.unwrap();
    assert!(first.matches.iter().any(|m| m.text.ends_with("hit half-writ")));

    // The writer finishes its line and appends more, some matching.
    let mut added = String::from("ten\n");
    for i in 0..20 {
        added.push_str(&format!("{} new {i}{}\n", at(-100 + i), if i % 5 == 0 { " hit" } else { "" }));
    }
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(added.as_bytes()).unwrap();

    // Asked again 90 s later: the window moved, so the oldest matches fall out.
    let t1 = t0 + chrono::Duration::seconds(90);
    let plan2 = core.plan(&r, t1).unwrap();
    assert_eq!(keys::tail(&plan2), keys::tail(&plan1), "same request over the same files");
    assert_ne!(keys::answer(&plan2), keys::answer(&plan1), "the file grew");
    let second = core.execute_resumable(&plan2, Some(&tail), &ctl(), 10_000);
    assert!(second.resumed, "resumed from the tail");
    let next_tail = second.tail.expect("a tail for the next one");
    let second = second.response.unwrap();
    let full = core.execute(&core.plan(&r, t1).unwrap(), &ctl()).unwrap();
    assert_eq!(answer_view(&second), answer_view(&full), "same answer as a search from scratch");
    assert!(second.matches.iter().any(|m| m.text.ends_with("hit half-written")), "the finished line, not the half-written one");
    assert!(second.matches.iter().any(|m| m.text.contains("new 15 hit")), "never stale: the new lines are in");
    assert!(
        first.matches[0].text.contains("hit rotated") && !second.matches.iter().any(|m| m.text.contains("hit rotated")),
        "the window moved on"
    );
    // Only the appended bytes (plus the unfinished line it restarted at and one context line).
    let restart = ("ten\n".len() + added.len()) as u64;
    assert!(second.bytes_scanned < restart + 200, "scanned {} bytes; {} were appended", second.bytes_scanned, added.len());
    assert!(second.bytes_scanned >= added.len() as u64);
    assert!(old_size > 10 * second.bytes_scanned);

    // Nothing new: answered from the tail without reading the file.
    let third = core.execute_resumable(&core.plan(&r, t1).unwrap(), Some(&next_tail), &ctl(), 10_000);
    assert!(third.resumed);
    assert_eq!(third.response.as_ref().unwrap().bytes_scanned, 0);
    assert!(third.response.as_ref().unwrap().cached, "answered wholly from the tail");
    assert_eq!(answer_view(third.response.as_ref().unwrap()), answer_view(&full));

    // A smaller max_results: the same tail, cut to it, the rest paged.
    let mut small = r.clone();
    small.max_results = 3;
    let cut = core.execute_resumable(&core.plan(&small, t1).unwrap(), Some(&next_tail), &ctl(), 10_000);
    let cut = cut.response.unwrap();
    assert!(cut.truncated && cut.matches.len() == 3);
    assert_eq!(all_matches(&core, &cut), full.matches);

    // Rewritten (not appended to): never resumed.
    let mut rewritten = live.replace("hit", "HIT");
    rewritten.push_str(&added);
    rewritten.push_str("more\n");
    std::fs::write(&path, rewritten.as_bytes()).unwrap();
    let plan4 = core.plan(&r, t1).unwrap();
    let fourth = core.execute_resumable(&plan4, Some(&next_tail), &ctl(), 10_000);
    assert!(!fourth.resumed, "a rewritten file is searched in full");
    assert_eq!(answer_view(&fourth.response.unwrap()), answer_view(&core.execute(&plan4, &ctl()).unwrap()));
}

// ---------------------------------------------------------------- confinement

#[test]
fn symlinks_leaving_the_roots_are_refused() {
    let fx = Fixture::new();
    fx.write("logs/app.log", b"2026-11-23T10:00:00Z secret? no\n");
    fx.write("outside/secret.log", b"2026-11-23T10:00:00Z secret yes\n");
    fx.write("logs/sub/inner.log", b"2026-11-23T10:00:00Z secret inner\n");
    std::os::unix::fs::symlink(fx.path("outside/secret.log"), fx.path("logs/app.log.1")).unwrap();
    std::os::unix::fs::symlink(fx.path("outside"), fx.path("logs/linkdir")).unwrap();
    let core = fx.core("[[service]]\nname = \"app\"\npaths = [\"logs/**/*.log*\"]\nformat = \"plain\"\n");
    let resp = run(&core, &req("app", "secret"), Utc::now());
    let files: Vec<&str> = resp.matches.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(resp.total_matches, 2, "{files:?}");
    assert!(files.iter().all(|f| !f.contains("outside")), "{files:?}");
}

#[test]
fn a_file_pattern_naming_only_files_that_leave_the_roots_is_refused_naming_them() {
    let fx = Fixture::new();
    fx.write("logs/app.log", b"2026-11-23T10:00:00Z inside\n");
    fx.write("outside/secret.log", b"2026-11-23T10:00:00Z CANARY secret\n");
    fx.write("outside/dir/inner.log", b"2026-11-23T10:00:00Z CANARY inner\n");
    std::os::unix::fs::symlink(fx.path("outside/secret.log"), fx.path("logs/escape.log")).unwrap();
    std::os::unix::fs::symlink(fx.path("outside/dir"), fx.path("logs/linkdir")).unwrap();
    let core = fx.core("[[service]]\nname = \"app\"\npaths = [\"logs/**/*.log\"]\nformat = \"plain\"\n");
    let root = std::fs::canonicalize(fx.path("logs")).unwrap();
    let outside = std::fs::canonicalize(fx.path("outside")).unwrap();
    for (fp, named) in [("escape.log", "escape.log"), ("esc*", "escape.log"), ("linkdir/inner.log", "linkdir"), ("linkdir/*", "linkdir")] {
        let mut r = req("app", ".");
        r.file_pattern = Some(fp.into());
        let e = core.plan(&r, Utc::now()).unwrap_err();
        assert_eq!((e.kind, e.field.as_deref()), (SearchErrorKind::Forbidden, Some("file_pattern")), "{fp}: {}", e.message);
        let named = root.join(named).display().to_string();
        assert!(e.message.contains(&format!("{fp:?}")) && e.message.contains(&named), "{fp}: names the file: {}", e.message);
        assert!(e.message.contains("outside the service's roots"), "{}", e.message);
        assert!(!e.message.contains(&outside.display().to_string()), "the target is never named: {}", e.message);
    }
    // A pattern that also selects files inside searches those (as without
    // one); one that selects nothing at all finds nothing.
    for (fp, files) in [("*.log", 1), ("nothing*.log", 0), ("**/inner.log", 0)] {
        let mut r = req("app", ".");
        r.file_pattern = Some(fp.into());
        let resp = run(&core, &r, Utc::now());
        assert_eq!(resp.files_searched, files, "{fp}");
        assert!(resp.matches.iter().all(|m| !m.text.contains("CANARY")), "{fp}");
    }
}

#[test]
fn file_patterns_that_escape_are_forbidden() {
    let fx = Fixture::new();
    fx.write("logs/app.log", b"x\n");
    let core = fx.core(SVC_PLAIN);
    for bad in ["../outside/*", "/etc/passwd", "logs/../../x", "..", "a/../../b"] {
        let mut r = req("app", "x");
        r.file_pattern = Some(bad.into());
        let e = core.plan(&r, Utc::now()).unwrap_err();
        assert_eq!((e.kind, e.field.as_deref()), (SearchErrorKind::Forbidden, Some("file_pattern")), "{bad}: {}", e.message);
    }
    let mut r = req("app", "x");
    r.file_pattern = Some("[".into());
    assert_eq!(core.plan(&r, Utc::now()).unwrap_err().kind, SearchErrorKind::InvalidRequest);
    let mut r = req("app", "x");
    r.file_pattern = Some("app.log".into());
    assert_eq!(run(&core, &r, Utc::now()).total_matches, 1);
}

// ---------------------------------------------------------------- overflow

#[test]
fn overflow_holds_every_match_and_pages_by_index() {
    let fx = Fixture::new();
    let mut data = String::new();
    for i in 0..5000 {
        data.push_str(&format!("2026-11-23T10:00:00Z item {i}\n"));
    }
    fx.write("logs/app.log", data.as_bytes());
    fx.write("logs/app.log.1", b"2026-11-22T10:00:00Z item old\n");
    let core = fx.core(SVC_PLAIN);
    let mut r = req("app", "item");
    r.max_results = 10;
    let resp = run(&core, &r, Utc::now());
    assert_eq!(resp.total_matches, 5001);
    assert_eq!(resp.matches.len(), 10);
    assert!(resp.truncated);
    let ovf = resp.overflow.clone().unwrap();
    assert_eq!(ovf.total, 5001);
    assert!(ovf.reference.starts_with("ovf-"));
    let page = core.read_overflow(&ovf.reference, 0, 3).unwrap();
    assert_eq!(page.matches[0].text, "2026-11-22T10:00:00Z item old");
    assert_eq!(page.matches[1].text, "2026-11-23T10:00:00Z item 0");
    let page = core.read_overflow(&ovf.reference, 4000, 2).unwrap();
    assert_eq!(page.matches[0].text, "2026-11-23T10:00:00Z item 3999");
    assert_eq!((page.offset, page.total, page.eof), (4000, 5001, false));
    let page = core.read_overflow(&ovf.reference, 5000, 100).unwrap();
    assert_eq!((page.matches.len(), page.eof), (1, true));
    let all = all_matches(&core, &resp);
    assert_eq!(&all[..10], &resp.matches[..]);
    // Unknown or path-like references resolve to nothing.
    for bad in ["ovf-0000000000000000", "../../etc/passwd", &format!("{}-0.jsonl", ovf.reference)] {
        assert_eq!(core.read_overflow(bad, 0, 1).unwrap_err().kind, SearchErrorKind::NotFound);
    }
    // Spill files are gone; only the overflow remains.
    let names: Vec<String> =
        std::fs::read_dir(core.session().path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with(&format!("{}-", ovf.reference))), "{names:?}");
}

// ---------------------------------------------------------------- control

fn big_file(fx: &Fixture, mb: usize) {
    let mut data = Vec::with_capacity(mb << 20);
    let line = b"2026-11-23T10:00:00Z GET /api/v1/things 200 12ms user=alice agent=curl/8.0\n";
    while data.len() < mb << 20 {
        data.extend_from_slice(line);
    }
    fx.write("logs/app.log", &data);
}

#[test]
fn cancellation_stops_within_100ms() {
    let fx = Fixture::new();
    big_file(&fx, 256);
    let core = Arc::new(fx.core(SVC_PLAIN));
    // A slow regex without a literal keeps the scan busy.
    let plan = core.plan(&req("app", r"\w+=\w+/9\.\d"), Utc::now()).unwrap();
    let ctl = Arc::new(SearchControl::with_timeout(Duration::from_secs(120)));
    let (c2, ctl2) = (core.clone(), ctl.clone());
    let h = std::thread::spawn(move || {
        let r = c2.execute(&plan, &ctl2).unwrap();
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(150));
    let cancelled_at = Instant::now();
    ctl.cancel.cancel();
    let (resp, done_at) = h.join().unwrap();
    let latency = done_at.duration_since(cancelled_at);
    assert!(resp.partial, "the search should still have been running");
    assert_eq!(resp.partial_reason.as_deref().map(|r| r.starts_with("cancelled")), Some(true));
    // Partial and cancelled above: it stopped before the end. Promptly: a
    // scan that only checked at file ends would run the whole 128 MB.
    assert!(latency < Duration::from_secs(10), "stopped {latency:?} after cancel");
}

#[test]
fn deadline_returns_partial_results() {
    let fx = Fixture::new();
    big_file(&fx, 128);
    let core = fx.core(SVC_PLAIN);
    let plan = core.plan(&req("app", r"\w+=\w+/9\.\d"), Utc::now()).unwrap();
    let ctl = SearchControl::new(CancellationToken::new(), Instant::now() + Duration::from_millis(30));
    let resp = core.execute(&plan, &ctl).unwrap();
    assert!(resp.partial);
    assert!(resp.partial_reason.unwrap().starts_with("deadline"));
    assert!(resp.bytes_scanned < 128 << 20);
}

#[test]
fn progress_is_reported_and_throttled() {
    let fx = Fixture::new();
    big_file(&fx, 64);
    let core = fx.core(SVC_PLAIN);
    let plan = core.plan(&req("app", r"\w+=\w+/9\.\d"), Utc::now()).unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let last = Arc::new(parking_lot::Mutex::new(0u64));
    let l = last.clone();
    let ctl = SearchControl::with_timeout(Duration::from_secs(60)).with_progress(move |done, total, _, files| {
        assert!(done <= total);
        assert_eq!(files, 1);
        let mut prev = l.lock();
        assert!(done >= *prev);
        *prev = done;
        c.fetch_add(1, Ordering::Relaxed);
    });
    let started = Instant::now();
    core.execute(&plan, &ctl).unwrap();
    let n = calls.load(Ordering::Relaxed) as u128;
    assert!(n <= started.elapsed().as_millis() / 100 + 1, "{n} reports");
}

// ---------------------------------------------------------------- session dir

#[test]
fn session_dirs_are_private_removed_and_swept() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let root = fx.path("root");
    // A stale dir of a dead pid, and one of a live pid (ours).
    std::fs::create_dir_all(root.join("local-999999999")).unwrap();
    std::fs::create_dir_all(root.join(format!("local-{}", std::process::id()))).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    for d in ["local-999999999".to_string(), format!("local-{}", std::process::id())] {
        let f = std::fs::File::open(root.join(&d)).unwrap();
        f.set_modified(old).unwrap();
    }
    let s = SessionDir::for_session(&root, "local-123456789", Duration::from_secs(3600)).unwrap();
    assert!(!root.join("local-999999999").exists(), "stale dir of a dead pid is swept");
    assert!(root.join(format!("local-{}", std::process::id())).exists(), "a live session's dir stays");
    let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let p = s.path().to_path_buf();
    drop(s);
    assert!(!p.exists());
}

#[test]
fn list_services_reports_files_and_span() {
    let fx = Fixture::new();
    fx.write("logs/app.log.1", b"2026-11-22T10:00:00Z a\n2026-11-22T11:00:00Z b\n");
    fx.write("logs/app.log", b"2026-11-23T10:00:00Z c\n2026-11-23T12:00:00Z d\n  trace\n");
    let core = fx.core(SVC_PLAIN);
    let s = core.list_services();
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].file_count, s[0].format.as_str()), (2, "plain"));
    assert_eq!(s[0].earliest.as_deref(), Some("2026-11-22T10:00:00.000Z"));
    assert_eq!(s[0].latest.as_deref(), Some("2026-11-23T12:00:00.000Z"));
    assert_eq!(s[0].total_bytes, 46 + 54);
}

#[test]
fn latest_is_the_latest_stamp_of_the_tail_when_the_last_lines_are_out_of_order() {
    // Writers stamp a line before they write it: the last lines of a busy
    // log are slightly out of order. The latest is not the last line's.
    let fx = Fixture::new();
    let mut data = String::new();
    for s in 0..50 {
        data.push_str(&format!("2026-11-23T10:00:{s:02}Z tick {s}\n"));
    }
    data.push_str("2026-11-23T10:00:53.250Z late writer\n2026-11-23T10:00:51.500Z slow writer\n2026-11-23T10:00:52Z another\n");
    fx.write("logs/app.log", data.as_bytes());
    let core = fx.core(SVC_PLAIN);
    let s = core.list_services();
    assert_eq!(s[0].earliest.as_deref(), Some("2026-11-23T10:00:00.000Z"));
    assert_eq!(s[0].latest.as_deref(), Some("2026-11-23T10:00:53.250Z"), "the latest stamp, not the last line's");
    // The same holds for planning: a window ending after the last line's
    // stamp but before the latest is not "after every line" (its end was
    // left out of the cache key, so it shared the answer of a window that
    // holds the late line).
    let until = |u: &str| SearchRequest { until: Some(u.into()), ..req("app", "writer") };
    let (p53, p54) =
        (core.plan(&until("2026-11-23T10:00:53Z"), Utc::now()).unwrap(), core.plan(&until("2026-11-23T10:00:54Z"), Utc::now()).unwrap());
    assert_ne!(keys::answer(&p53), keys::answer(&p54));
    assert_eq!(run(&core, &until("2026-11-23T10:00:53Z"), Utc::now()).total_matches, 1);
    assert_eq!(run(&core, &until("2026-11-23T10:00:54Z"), Utc::now()).total_matches, 2);
}

#[test]
fn syslog_minutes_back_uses_year_inference() {
    let fx = Fixture::new();
    let now = Utc::now();
    let tz = Tz::UTC;
    let mut data = String::new();
    for k in (0..120).rev() {
        let t = (now - chrono::Duration::minutes(k)).with_timezone(&tz);
        data.push_str(&format!("{} host app[1]: tick {k}\n", t.format("%b %e %H:%M:%S")));
    }
    fx.write("logs/app.log", data.as_bytes());
    let core = fx.core("[[service]]\nname = \"app\"\npaths = [\"logs/app.log\"]\nformat = \"syslog\"\n");
    let mut r = req("app", "tick");
    r.minutes_back = Some(10);
    let resp = run(&core, &r, now);
    // Minutes 0..=9 ago (second precision: the 10-minutes-ago line is at the edge).
    assert!((10..=11).contains(&resp.total_matches), "{}", resp.total_matches);
    assert!(resp.window_start.is_some() && resp.window_end.is_some());
    let _ = Utc.timestamp_millis_opt(0);
}

/// Large files are split into chunks searched in parallel: line numbers,
/// stamps carried across chunk edges, context across edges and overflow
/// order all equal a sequential scan.
#[test]
fn chunked_parallel_search_equals_a_sequential_scan() {
    let fx = Fixture::new();
    let base = ms("2026-11-20T00:00:00Z");
    let mut data = Vec::new();
    let mut i: u64 = 0;
    while data.len() < 6 * 1024 * 1024 {
        let t = base + i as i64 * 1000;
        let word = if i.is_multiple_of(5) { "needle" } else { "hay" };
        data.extend_from_slice(format!("{} {word} request {i}\n", format_ms(t)).as_bytes());
        if i.is_multiple_of(3) {
            data.extend_from_slice(b"    at needle.continuation(Trace.java:12)\n");
        }
        i += 1;
    }
    fx.write("logs/app.log", &data);
    let mut core = fx.core(SVC_PLAIN);
    core.set_workers(4);
    core.set_chunk_bytes(64 * 1024);
    let parser = StampParser::new(LogFormat::Plain, Tz::UTC, Utc::now());
    let lines: Vec<&[u8]> = data.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n').collect();
    for window in [None, Some((base + 3_600_000, base + 7_200_000))] {
        let mut r = req("app", "needle");
        r.context = 2;
        r.max_results = 50;
        if let Some((s, e)) = window {
            r.since = Some(format_ms(s));
            r.until = Some(format_ms(e));
        }
        let plan = core.plan(&r, Utc::now()).unwrap();
        let resp = core.execute(&plan, &SearchControl::with_timeout(Duration::from_secs(60))).unwrap();
        let expect = naive(&data, "needle", &parser, window.map(|(s, e)| Window { start_ms: s, end_ms: e }));
        let got = all_matches(&core, &resp);
        assert_eq!(triples(&got), expect);
        assert_eq!(&got[..50], &resp.matches[..]);
        for m in &got {
            let n = m.line_number as usize;
            let before: Vec<(u64, String)> =
                (n.saturating_sub(3)..n - 1).map(|k| (k as u64 + 1, String::from_utf8_lossy(lines[k]).into_owned())).collect();
            let after: Vec<(u64, String)> =
                (n..(n + 2).min(lines.len())).map(|k| (k as u64 + 1, String::from_utf8_lossy(lines[k]).into_owned())).collect();
            assert_eq!(m.before.iter().map(|c| (c.line_number, c.text.clone())).collect::<Vec<_>>(), before, "before {n}");
            assert_eq!(m.after.iter().map(|c| (c.line_number, c.text.clone())).collect::<Vec<_>>(), after, "after {n}");
        }
    }
}

#[test]
fn search_core_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SearchCore>();
    check::<SearchPlan>();
}

#[test]
fn format_ms_matches_chrono() {
    for ms in [0i64, 1, 999, 1_795_439_521_250, -1, -86_400_001, 253_402_300_799_999, 951_782_400_000, 4_107_542_400_000] {
        let want = Utc.timestamp_millis_opt(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(format_ms(ms), want, "{ms}");
    }
}

/// The overflow's borrowed fast path writes, byte for byte, what serializing
/// the equivalent owned match writes (plain, escaped, non-UTF-8, long and
/// CRLF lines; stamps absent, ordinary and outside years 0..=9999).
#[test]
fn overflow_write_line_matches_owned_serialization() {
    let dir = tempfile::tempdir().unwrap();
    let mut long = b"x".repeat(scan::MAX_LINE_BYTES + 10);
    long.extend_from_slice("é".as_bytes());
    let lines: Vec<Vec<u8>> = vec![
        b"Nov 23 08:15:00 web-01 app[3001]: ERROR payment declined order=1".to_vec(),
        b"GET \"/x\" with \\ backslash and \ttab".to_vec(),
        b"ctrl \x01\x1f\x7f del and crlf\r\n".to_vec(),
        "utf-8 caf\u{e9} \u{1F600}".as_bytes().to_vec(),
        b"bad utf-8 \xff\xfe end\n".to_vec(),
        Vec::new(),
        long,
        b"x".repeat(scan::MAX_LINE_BYTES),
    ];
    let stamps = [
        None,
        Some(ms("2026-11-23T08:15:00.123Z")),
        Some(ms("2026-11-23T23:59:59.999Z")),
        Some(ms("2026-11-24T00:00:00.000Z")),
        Some(-62_200_000_000_000i64),
        Some(ms("2026-11-24T07:08:09.010Z")),
        Some(0),
        Some(-1),
    ];
    let fast_path = dir.path().join("fast.jsonl");
    let slow_path = dir.path().join("slow.jsonl");
    let mut fast = session::JsonlWriter::create(fast_path.clone()).unwrap();
    let mut slow = session::JsonlWriter::create(slow_path.clone()).unwrap();
    let mut n = 0u64;
    for file in ["/var/log/a.log", "/var/log/we\"ird\\name.log"] {
        for line in &lines {
            for stamp in stamps {
                n += 1;
                let line_number = n * 7919 + (1u64 << 32);
                fast.write_line(file, line_number, stamp, line).unwrap();
                let m = SearchMatch {
                    file: file.to_string(),
                    line_number,
                    timestamp: stamp.map(format_ms),
                    text: scan::line_text(line),
                    before: Vec::new(),
                    after: Vec::new(),
                };
                slow.write(&m).unwrap();
            }
        }
    }
    let (f, s) = (fast.finish().unwrap(), slow.finish().unwrap());
    assert_eq!(f.count, s.count);
    assert_eq!(f.offsets, s.offsets);
    let (a, b) = (std::fs::read(&fast_path).unwrap(), std::fs::read(&slow_path).unwrap());
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    assert_eq!(a, b);
}

#[test]
fn a_truncated_answer_is_shared_whole_and_presented_under_each_callers_max_results() {
    let fx = Fixture::new();
    let mut data = String::new();
    for i in 0..50 {
        data.push_str(&format!("2026-11-23T10:00:{:02}Z hit {i}\n", i % 60));
    }
    fx.write("logs/app.log", data.as_bytes());
    let core = fx.core(SVC_PLAIN);
    let mut r = req("app", "hit");
    r.max_results = 10;
    let resp = run(&core, &r, Utc::now());
    assert!(resp.truncated && resp.matches.len() == 10);
    let every = all_matches(&core, &resp);
    assert_eq!(every.len(), 50);
    assert!(core.shareable(&resp, 49).is_none(), "over the cap: not shared");
    let shared = core.shareable(&resp, 50).expect("shared");
    assert_eq!((shared.matches.clone(), shared.truncated, shared.overflow.is_none()), (every.clone(), false, true));
    // Another session (another core) presents it under its own limits.
    let other = fx.core(SVC_PLAIN);
    let shown = other.present(shared.clone(), 20).unwrap();
    assert_eq!(shown.matches, every[..20].to_vec());
    assert!(shown.truncated);
    assert_eq!(shown.overflow.as_ref().unwrap().total, 50);
    assert_eq!(all_matches(&other, &shown), every, "the rest is paged from this session's overflow");
    let whole = other.present(shared, 50).unwrap();
    assert!(!whole.truncated && whole.overflow.is_none() && whole.matches == every);
    // max_results is not part of the key.
    let mut r2 = r.clone();
    r2.max_results = 500;
    let now = Utc::now();
    assert_eq!(keys::answer(&core.plan(&r, now).unwrap()), keys::answer(&core.plan(&r2, now).unwrap()));
}

#[test]
fn a_narrower_question_cut_from_a_covering_answer_equals_its_own_search() {
    let fx = Fixture::new();
    // Three rotated days with continuation lines (stamped by the line
    // before them) and a few needles in each.
    let day = |d: u32, n: usize| {
        let mut s = String::new();
        for i in 0..n {
            let t = ms(&format!("2026-11-{d:02}T00:00:00Z")) + i as i64 * 37_000;
            let word = if i % 5 == 0 { "needle" } else { "hay" };
            s.push_str(&format!("{} {word} request {i}\n", format_ms(t)));
            if i % 7 == 0 {
                s.push_str(&format!("    at needle.trace{i}(App.java:12)\n"));
            }
        }
        s
    };
    fx.write("logs/app.log.2", day(20, 2000).as_bytes());
    fx.write("logs/app.log.1", day(21, 2000).as_bytes());
    let live = fx.write("logs/app.log", day(22, 2000).as_bytes());
    let mut core = fx.core(SVC_PLAIN);
    // Small chunks: the wide search splits files in parallel chunks.
    core.set_chunk_bytes(16 * 1024);
    let now = utc("2026-11-23T12:00:00Z");
    let ctl = || SearchControl::with_timeout(Duration::from_secs(60));
    let with = |f: &dyn Fn(&mut SearchRequest)| {
        let mut r = req("app", "needle");
        r.max_results = 100_000;
        f(&mut r);
        r
    };
    let wide_plan = core.plan(&with(&|r| r.context = 3), now).unwrap();
    let wide = core.execute(&wide_plan, &ctl()).unwrap();
    assert!(!wide.truncated && wide.total_matches > 1000);
    let cover = wide_plan.coverage(&keys::answer(&wide_plan));

    let narrower: Vec<(&str, SearchRequest)> = vec![
        ("no window, no context", with(&|_| {})),
        (
            "a date, context 1",
            with(&|r| {
                r.date = Some("2026-11-21".into());
                r.context = 1
            }),
        ),
        (
            "across a rotation, context 3",
            with(&|r| {
                r.since = Some("2026-11-20T20:00:00Z".into());
                r.until = Some("2026-11-21T03:30:07.5Z".into());
                r.context = 3
            }),
        ),
        (
            "hours_back over the newest file",
            with(&|r| {
                r.hours_back = Some(40);
                r.context = 2
            }),
        ),
        (
            "a window with no needles",
            with(&|r| {
                r.since = Some("2026-11-25T00:00:00Z".into());
                r.until = Some("2026-11-26T00:00:00Z".into())
            }),
        ),
    ];
    for (what, r) in &narrower {
        let plan = core.plan(r, now).unwrap();
        let mine = plan.coverage(&keys::answer(&plan));
        assert!(cover.contains(&mine), "{what}: covered");
        let direct = core.execute(&plan, &ctl()).unwrap();
        assert_eq!(direct.total_matches == 0, what.contains("no needles"), "{what}: {} matches", direct.total_matches);
        let cut = plan.narrow(wide.clone());
        assert_eq!(answer_view(&cut), answer_view(&direct), "{what}");
        assert_eq!((cut.window_start.clone(), cut.window_end.clone()), (direct.window_start.clone(), direct.window_end.clone()), "{what}");
        assert!(cut.cached && !cut.truncated && cut.bytes_scanned == 0);
    }

    // What a narrower answer does not hold: more context, a wider window,
    // "no window" (unstamped lines) from a windowed answer.
    let covers = |f: &dyn Fn(&mut SearchRequest)| core.plan(&with(f), now).unwrap().coverage("");
    fn on_day(d: &'static str, ctx: u32) -> impl Fn(&mut SearchRequest) {
        move |r| (r.date, r.context) = (Some(d.into()), ctx)
    }
    fn between(s: &'static str, u: &'static str) -> impl Fn(&mut SearchRequest) {
        move |r| (r.since, r.until) = (Some(s.into()), Some(u.into()))
    }
    let day21 = covers(&on_day("2026-11-21", 1));
    assert!(!day21.contains(&covers(&on_day("2026-11-21", 2))));
    assert!(!day21.contains(&covers(&between("2026-11-21T12:00:00Z", "2026-11-22T01:00:00Z"))));
    assert!(!day21.contains(&covers(&|_| {})));
    assert!(day21.contains(&covers(&between("2026-11-21T06:00:00Z", "2026-11-21T07:00:00Z"))));

    // Never stale: once the live file grows, an answer that read it covers
    // nothing that reads it, but still covers a window over the old files.
    std::fs::OpenOptions::new().append(true).open(&live).unwrap().write_all(b"2026-11-22T23:59:59Z needle late\n").unwrap();
    assert!(!cover.contains(&covers(&|_| {})));
    assert!(cover.contains(&covers(&on_day("2026-11-20", 0))));
    // Another question is listed under another key; the same question over
    // any window or context under the same one.
    let other_window = core.plan(&with(&|r| (r.date, r.max_results, r.context) = (Some("2026-11-21".into()), 7, 1)), now).unwrap();
    assert_eq!(keys::question(&wide_plan), keys::question(&other_window));
    assert_ne!(keys::question(&wide_plan), keys::question(&core.plan(&req("app", "hay"), now).unwrap()));
}
