//! Memory bound of a huge search through `logai serve`.
//!
//! EXPECTATIONS (what this suite asserts):
//! - a pattern matching every line of a 2 GiB file is searched through the
//!   real `logai serve` + search-tools component with peak RSS of the logai
//!   process (VmHWM from /proc/<pid>/status, read before it exits) < 100 MB;
//! - exactly `max_results` matches come back inline, the first lines of the file;
//! - the overflow holds every line of the file (its match count and the
//!   overflow file's line count equal the file's line count), and its last
//!   page ends with the file's last line.
//!
//! The 2 GiB file is written from one repeated 1 MiB buffer (seconds, not
//! minutes), in a temp dir removed at the end (the overflow, about as large,
//! lives in the session dir under it). `LOGAI_MEMORY_TEST_MB` shrinks it for
//! a quick local run.

#[path = "support/corpus.rs"]
mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logai_e2e::McpClient;
use serde_json::json;

const LINE_LEN: usize = 128;

/// Line `i` of the file: fixed width, stamped, distinct per position in the buffer.
fn line(i: usize) -> Vec<u8> {
    let mut l = format!(
        "2026-11-20T10:{:02}:{:02}.000Z INFO worker-{:04} request req-{:08x} done status=200 ok",
        (i / 60) % 60,
        i % 60,
        i % 7919,
        i
    )
    .into_bytes();
    l.resize(LINE_LEN - 1, b'.');
    l.push(b'\n');
    l
}

fn vm_hwm_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap()
}

/// The overflow's files under `dir`: `<reference>.jsonl`, or its parts
/// `<reference>-<k>.jsonl` (one per file or chunk searched).
fn overflow_files(dir: &Path, reference: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            overflow_files(&p, reference, out);
        } else if name.ends_with(".jsonl") && (name == format!("{reference}.jsonl") || name.starts_with(&format!("{reference}-"))) {
            out.push(p);
        }
    }
}

fn count_lines(path: &Path) -> u64 {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            return n;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

#[test]
fn two_gib_every_line_matches_under_100_mb_rss() {
    corpus::prerequisites();
    let mb: usize = std::env::var("LOGAI_MEMORY_TEST_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(2048);
    let dir = tempfile::tempdir().unwrap();
    let logs = std::fs::canonicalize(dir.path()).unwrap().join("big");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("big.log");

    // One 1 MiB block of whole lines, written `mb` times.
    let per_block = (1 << 20) / LINE_LEN;
    let block: Vec<u8> = (0..per_block).flat_map(line).collect();
    let t = Instant::now();
    {
        let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(&path).unwrap());
        for _ in 0..mb {
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    let lines_total = (per_block * mb) as u64;
    eprintln!("wrote {mb} MiB ({lines_total} lines) in {:?}", t.elapsed());

    let manifest = corpus::manifest(
        dir.path(),
        &[("big", "plain", &[format!("{}/*.log", logs.display())])],
        "search_timeout_ms = 600000\nmax_results_cap = 1000",
    );
    let env = corpus::serve_env();
    let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    envs.push(("LOGAI_TEST_QUIET", "1"));
    let mut c = McpClient::serve(&manifest, &envs);
    c.timeout = Duration::from_secs(900);
    c.initialize();
    let pid = c.pid();

    let t = Instant::now();
    let r = c.call_tool_ok("search_logs", json!({"service": "big", "pattern": "status=200", "max_results": 100}));
    let took = t.elapsed();
    assert_ne!(r["isError"], json!(true), "{r}");
    let sc = &r["structuredContent"];
    eprintln!(
        "searched {} bytes in {took:?}: total_matches={} partial={} ({})",
        sc["bytes_scanned"], sc["total_matches"], sc["partial"], sc["partial_reason"]
    );
    assert_eq!(sc["partial"], false, "{sc}");
    assert_eq!(sc["total_matches"].as_u64().unwrap(), lines_total);
    // max_results inline: the file's first lines, in order.
    let inline = sc["matches"].as_array().unwrap();
    assert_eq!(inline.len(), 100);
    for (i, m) in inline.iter().enumerate() {
        assert_eq!(m["line_number"].as_u64().unwrap(), i as u64 + 1);
        assert_eq!(m["text"].as_str().unwrap().as_bytes(), &line(i)[..LINE_LEN - 1]);
    }
    assert_eq!(sc["truncated"], true);
    // The overflow is complete: every line, counted on disk and by the last page.
    let reference = sc["overflow"]["reference"].as_str().unwrap().to_string();
    assert_eq!(sc["overflow"]["total"].as_u64().unwrap(), lines_total);
    let mut files = Vec::new();
    overflow_files(&dir.path().join("sessions"), &reference, &mut files);
    assert!(!files.is_empty(), "no overflow file for {reference} in the session dir");
    let on_disk: u64 = files.iter().map(|f| count_lines(f)).sum();
    eprintln!(
        "overflow: {} file(s), {on_disk} lines, {} bytes",
        files.len(),
        files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>()
    );
    assert_eq!(on_disk, lines_total, "overflow files' line count");
    let p = c.call_tool_ok("read_search_file", json!({"reference": reference, "offset": lines_total - 3, "limit": 10}));
    let page = &p["structuredContent"];
    assert_eq!(page["eof"], true, "{page}");
    let ms = page["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 3);
    assert_eq!(ms[2]["line_number"].as_u64().unwrap(), lines_total);
    assert_eq!(ms[2]["text"].as_str().unwrap().as_bytes(), &line((lines_total - 1) as usize % per_block)[..LINE_LEN - 1]);
    // A page from the middle.
    let mid = lines_total / 2;
    let p = c.call_tool_ok("read_search_file", json!({"reference": reference, "offset": mid, "limit": 2}));
    let m0 = &p["structuredContent"]["matches"][0];
    assert_eq!(m0["line_number"].as_u64().unwrap(), mid + 1);

    let hwm_kb = vm_hwm_kb(pid);
    eprintln!("logai peak RSS (VmHWM): {:.1} MB for a {mb} MiB file", hwm_kb as f64 / 1024.0);
    assert!(hwm_kb < 100 * 1024, "peak RSS {hwm_kb} kB is not under 100 MB");
    c.close();
    drop(dir);
}
