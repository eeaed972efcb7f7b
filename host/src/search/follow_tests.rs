//! Following logs through appends, unfinished lines, rotation (rename,
//! `delaycompress`, `copytruncate`) and truncation: every line exactly once.

// A test here is one scenario, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::search::{SearchControl, SessionDir};

struct Fx {
    dir: tempfile::TempDir,
    core: SearchCore,
}

const SVC: &str = "[[service]]\nname = \"app\"\npaths = [\"logs/app.log*\"]\nformat = \"plain\"\n";

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let text = format!("[server]\nsession_root = \"{}\"\n{SVC}", dir.path().join("sessions").display());
        let cfg = crate::config::parse(&text, "test.toml", dir.path()).unwrap();
        let session = SessionDir::create(dir.path().join("sessions/follow-test")).unwrap();
        let core = SearchCore::new(&cfg, session).unwrap();
        Fx { dir, core }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join("logs").join(name)
    }
    fn append(&self, name: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.p(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    fn gzip(&self, from: &str, to: &str) {
        let data = std::fs::read(self.p(from)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(self.p(to)).unwrap(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
    }
    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.p(from), self.p(to)).unwrap();
    }
    /// One follow call: the matches as `file:line:text`, and the next cursor.
    fn follow(&self, cursor: Option<&Cursor>) -> (Vec<String>, Cursor, Option<String>) {
        let req = SearchRequest { service: "app".into(), pattern: "^L".into(), max_results: 1000, ..Default::default() };
        let fp = self.core.plan_follow(&req, Utc::now(), cursor).unwrap();
        let ctl = SearchControl::with_timeout(Duration::from_secs(60));
        let ex = self.core.execute_tracked(&fp.plan, &ctl).unwrap();
        assert!(ex.response.overflow.is_none());
        let got = ex
            .response
            .matches
            .iter()
            .map(|m| format!("{}:{}:{}", Path::new(&m.file).file_name().unwrap().to_string_lossy(), m.line_number, m.text))
            .collect();
        let next = fp.cursor(&ex.finished, &ex.lines_at_end);
        // Every cursor survives its text form.
        assert_eq!(Cursor::decode(&next.encode()).unwrap(), next);
        let notes = (!fp.notes.is_empty()).then(|| fp.notes.join("; "));
        (got, next, notes.or(ex.response.partial_reason))
    }
}

fn lines(file: &str, first_line: u64, texts: &[&str]) -> Vec<String> {
    texts.iter().enumerate().map(|(i, t)| format!("{file}:{}:{t}", first_line + i as u64)).collect()
}

#[test]
fn appended_lines_come_once_and_unfinished_lines_wait() {
    let fx = Fx::new();
    fx.append("app.log", "L1\nx\nL2\n");
    let (got, c, _) = fx.follow(None);
    assert_eq!(got, lines("app.log", 1, &["L1"]).into_iter().chain(lines("app.log", 3, &["L2"])).collect::<Vec<_>>());
    // Nothing new: nothing.
    let (got, c, _) = fx.follow(Some(&c));
    assert!(got.is_empty(), "{got:?}");
    // Two lines and one the writer has not finished.
    fx.append("app.log", "L3\nL4\nL5 unfin");
    let (got, c, _) = fx.follow(Some(&c));
    assert_eq!(got, lines("app.log", 4, &["L3", "L4"]));
    fx.append("app.log", "ished\nL6\n");
    let (got, c, _) = fx.follow(Some(&c));
    assert_eq!(got, lines("app.log", 6, &["L5 unfinished", "L6"]));
    let (got, _, _) = fx.follow(Some(&c));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_first_call_over_an_unfinished_line_leaves_it_for_later() {
    let fx = Fx::new();
    fx.append("app.log", "L1\nL2 part");
    let req = SearchRequest { service: "app".into(), pattern: "^L".into(), max_results: 10, ..Default::default() };
    let fp = fx.core.plan_follow(&req, Utc::now(), None).unwrap();
    assert!(!fp.ordinary, "the plan stops before the unfinished line: not the cached search's");
    let ex = fx.core.execute_tracked(&fp.plan, &SearchControl::with_timeout(Duration::from_secs(60))).unwrap();
    assert_eq!(ex.response.total_matches, 1);
    let c = fp.cursor(&ex.finished, &ex.lines_at_end);
    fx.append("app.log", "\n");
    let (got, _, _) = fx.follow(Some(&c));
    assert_eq!(got, lines("app.log", 2, &["L2 part"]));
    // Files ending at a line end: the ordinary plan (and its cache key).
    let fp = fx.core.plan_follow(&req, Utc::now(), None).unwrap();
    assert!(fp.ordinary);
}

/// logrotate with `delaycompress`: rename, late writes to the renamed file,
/// then compression into a new inode and the next rename.
#[test]
fn rotation_with_delaycompress_neither_loses_nor_repeats() {
    let fx = Fx::new();
    fx.append("app.log", "L1 a\nL2 a\n");
    let (_, c, _) = fx.follow(None);
    fx.append("app.log", "L3 a\n");
    // Rotate: app.log -> app.log.1 (same inode), a new app.log.
    fx.rename("app.log", "app.log.1");
    fx.append("app.log", "L1 b\n");
    fx.append("app.log.1", "L4 a late\n");
    let (got, c, notes) = fx.follow(Some(&c));
    assert_eq!(notes, None);
    let mut want = lines("app.log.1", 3, &["L3 a", "L4 a late"]);
    want.extend(lines("app.log", 1, &["L1 b"]));
    assert_eq!(got, want);
    // More late writes, then the next rotation before any call: app.log.1
    // compressed into app.log.2.gz (a new inode, a new mtime) and removed,
    // app.log -> app.log.1, a new app.log.
    fx.append("app.log.1", "L5 a later\n");
    fx.append("app.log", "L2 b\n");
    fx.gzip("app.log.1", "app.log.2.gz");
    std::fs::remove_file(fx.p("app.log.1")).unwrap();
    fx.rename("app.log", "app.log.1");
    fx.append("app.log", "L1 c\n");
    let (got, c, notes) = fx.follow(Some(&c));
    assert_eq!(notes, None);
    let mut want = lines("app.log.2.gz", 5, &["L5 a later"]);
    want.extend(lines("app.log.1", 2, &["L2 b"]));
    want.extend(lines("app.log", 1, &["L1 c"]));
    let (mut got_sorted, mut want_sorted) = (got.clone(), want.clone());
    got_sorted.sort();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "{got:?}");
    // Nothing new: nothing, the .gz included.
    let (got, c, _) = fx.follow(Some(&c));
    assert!(got.is_empty(), "{got:?}");
    // The compression seen half-way: app.log.2.gz -> app.log.3.gz, then
    // app.log.1 compressed into a new app.log.2.gz while still there.
    fx.append("app.log.1", "L3 b\n");
    fx.rename("app.log.2.gz", "app.log.3.gz");
    fx.gzip("app.log.1", "app.log.2.gz");
    let (got, c, _) = fx.follow(Some(&c));
    assert_eq!(got, lines("app.log.1", 3, &["L3 b"]));
    // ... then removed, and the next rename.
    fx.append("app.log", "L2 c\n");
    std::fs::remove_file(fx.p("app.log.1")).unwrap();
    fx.rename("app.log", "app.log.1");
    fx.append("app.log", "L1 d\n");
    let (got, c, _) = fx.follow(Some(&c));
    let mut want = lines("app.log.1", 2, &["L2 c"]);
    want.extend(lines("app.log", 1, &["L1 d"]));
    assert_eq!(got, want);
    let (got, _, _) = fx.follow(Some(&c));
    assert!(got.is_empty(), "{got:?}");
}

/// logrotate with `copytruncate`: a copy (new inode), the original
/// truncated in place and written again.
#[test]
fn copytruncate_reads_the_copy_on_and_the_truncated_file_from_its_start() {
    let fx = Fx::new();
    fx.append("app.log", "L1\nL2\n");
    let (_, c, _) = fx.follow(None);
    fx.append("app.log", "L3\n");
    std::fs::copy(fx.p("app.log"), fx.p("app.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(fx.p("app.log")).unwrap().set_len(0).unwrap();
    fx.append("app.log", "L9\n");
    let (got, c, notes) = fx.follow(Some(&c));
    let mut want = lines("app.log.1", 3, &["L3"]);
    want.extend(lines("app.log", 1, &["L9"]));
    assert_eq!(got, want);
    assert_eq!(notes, None);
    // Truncated in place, no copy: read from its start, and said.
    fx.append("app.log", "L10\n");
    let (_, c, _) = fx.follow(Some(&c));
    std::fs::OpenOptions::new().write(true).open(fx.p("app.log")).unwrap().set_len(0).unwrap();
    fx.append("app.log", "L1\n");
    let (got, _, notes) = fx.follow(Some(&c));
    assert_eq!(got, lines("app.log", 1, &["L1"]));
    assert!(notes.unwrap().contains("app.log: shorter than where the cursor stood (truncated in place)"));
}

#[test]
fn older_files_moved_in_are_not_new_and_bad_cursors_are_refused() {
    let fx = Fx::new();
    fx.append("app.log.9", "L1 old\n");
    let t = std::fs::File::options().write(true).open(fx.p("app.log.9")).unwrap();
    t.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
    fx.rename("app.log.9", "elsewhere");
    fx.append("app.log", "L1\n");
    let (_, c, _) = fx.follow(None);
    fx.rename("elsewhere", "app.log.9");
    let (got, _, _) = fx.follow(Some(&c));
    assert!(got.is_empty(), "{got:?}");
    // Not a cursor, or another service's.
    for bad in ["", "lc1.!!", "lc1.e30", "xyz"] {
        assert_eq!(Cursor::decode(bad).unwrap_err().field.as_deref(), Some("cursor"), "{bad:?}");
    }
    let other = Cursor { service: "other".into(), ..c };
    let req = SearchRequest { service: "app".into(), pattern: "x".into(), max_results: 10, ..Default::default() };
    let e = fx.core.plan_follow(&req, Utc::now(), Some(&other)).unwrap_err();
    assert!(e.message.contains("follows service 'other'"), "{}", e.message);
}

#[test]
fn a_relative_window_keeps_its_start_only() {
    let fx = Fx::new();
    let stamp = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let now = Utc::now();
    fx.append("app.log", &format!("{} L1 old\n{} L2 recent\n", stamp(now - chrono::Duration::hours(2)), stamp(now)));
    let req = SearchRequest {
        service: "app".into(),
        pattern: " L".into(),
        minutes_back: Some(30),
        log_format: Some("auto".into()),
        max_results: 10,
        ..Default::default()
    };
    let fp = fx.core.plan_follow(&req, now, None).unwrap();
    let ex = fx.core.execute_tracked(&fp.plan, &SearchControl::with_timeout(Duration::from_secs(60))).unwrap();
    assert_eq!(ex.response.total_matches, 1);
    let c = fp.cursor(&ex.finished, &ex.lines_at_end);
    assert!(c.window_end_ms.is_some());
    // A line stamped an hour ahead (a skewed clock) appended.
    fx.append("app.log", &format!("{} L3 ahead\n", stamp(now + chrono::Duration::hours(1))));
    let fp = fx.core.plan_follow(&req, now, Some(&c)).unwrap();
    let ex = fx.core.execute_tracked(&fp.plan, &SearchControl::with_timeout(Duration::from_secs(60))).unwrap();
    let texts: Vec<&str> = ex.response.matches.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].ends_with("L3 ahead"), "{texts:?}");
}
