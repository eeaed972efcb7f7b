//! The digest over the real search core: counts equal a naive count of the
//! same lines, and the answer is the same whatever the workers and chunks.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::fields::GroupBy;
use super::histogram::Grid;
use super::{Spec, Tally};
use crate::search::{SearchControl, SearchCore, SearchRequest, SessionDir};

fn core(dir: &std::path::Path, workers: usize, chunk: u64) -> SearchCore {
    let text = format!(
        "[server]\nsession_root = \"{0}/s\"\n[[service]]\nname = \"app\"\npaths = [\"{0}/app.log*\"]\nformat = \"json\"\n",
        dir.display()
    );
    let cfg = crate::config::parse(&text, "test.toml", dir).unwrap();
    let session = SessionDir::create(dir.join(format!("s/t-{workers}-{chunk}"))).unwrap();
    let mut core = SearchCore::new(&cfg, session).unwrap();
    core.set_workers(workers);
    core.set_chunk_bytes(chunk);
    core
}

/// 6,000 JSON lines over two hours, every 7th an error with a stack line after it.
fn log() -> (String, u64, u64) {
    let mut s = String::new();
    let (mut lines, mut errors) = (0, 0);
    for i in 0..6000u64 {
        let (level, msg) = if i % 7 == 0 {
            ("ERROR", format!("charge {i} failed: timeout after {}ms", i % 900))
        } else {
            ("INFO", format!("charge {i} created"))
        };
        let _ = writeln!(
            s,
            r#"{{"timestamp":"2026-11-20T{:02}:{:02}:{:02}Z","level":"{level}","route":"/v{}","msg":"{msg}"}}"#,
            12 + i / 3000,
            i % 3000 / 50,
            i % 50,
            i % 3
        );
        lines += 1;
        if level == "ERROR" {
            errors += 1;
            s.push_str("\tat com.example.Charge(Charge.java:42)\n");
            lines += 1;
        }
    }
    (s, lines, errors)
}

fn run(core: &SearchCore, group: Option<GroupBy>) -> logai_records::aggregate::AggregateResponse {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().into();
    let req = SearchRequest {
        service: "app".into(),
        since: Some("2026-11-20T12:00:00Z".into()),
        until: Some("2026-11-20T14:00:00Z".into()),
        ..Default::default()
    };
    let plan = core.plan(&req, now).unwrap();
    let w = plan.window.unwrap();
    let spec = Arc::new(Spec {
        files: plan.files.iter().map(|f| f.path.display().to_string()).collect(),
        baseline_until: None,
        grid: Grid::new(Some((w.start_ms, w.end_ms)), None).unwrap(),
        group,
        capture: None,
        config: crate::patterns::Config::default(),
    });
    let (_, fold) = core.execute_fold(&plan, &SearchControl::with_timeout(Duration::from_secs(60)), &spec).unwrap();
    fold.unwrap().into_any().downcast::<Tally>().unwrap().finish(50)
}

#[test]
fn counts_equal_a_naive_count_whatever_the_workers_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (text, lines, errors) = log();
    std::fs::write(dir.path().join("app.log"), &text).unwrap();
    let one = run(&core(dir.path(), 1, 1 << 30), Some(GroupBy::Field("route".into())));
    assert_eq!(one.lines, lines);
    assert_eq!(one.buckets.iter().map(|b| b.lines).sum::<u64>(), lines);
    assert_eq!(one.buckets.iter().map(|b| b.errors).sum::<u64>(), errors);
    assert_eq!(one.step_seconds, 120);
    let lv: Vec<(String, u64)> = one.levels.iter().map(|l| (l.level.clone(), l.count)).collect();
    assert_eq!(lv, [("error".into(), errors), ("info".into(), 6000 - errors), ("none".into(), errors)]);
    // The stack lines have no route: they count under "(none)".
    let groups: u64 = one.groups.iter().map(|g| g.total).sum();
    assert_eq!(groups + one.groups_other, lines);
    assert_eq!(one.groups.iter().find(|g| g.key == "(none)").map(|g| g.total), Some(errors));
    assert_eq!(one.patterns.iter().filter(|p| p.count > 0).map(|p| p.count).sum::<u64>(), lines, "{:#?}", one.patterns);
    let failed = one.patterns.iter().find(|p| p.template.contains("failed")).unwrap();
    assert_eq!((failed.count, failed.errors, failed.example_line), (errors, errors, 1));
    let stack = one.patterns.iter().find(|p| p.template.contains("Charge.java")).unwrap();
    assert_eq!(stack.example_line, 2);
    for (workers, chunk) in [(2, 64 * 1024), (8, 4096)] {
        let other = run(&core(dir.path(), workers, chunk), Some(GroupBy::Field("route".into())));
        assert_eq!(other, one, "{workers} workers, {chunk}-byte chunks");
    }
}
