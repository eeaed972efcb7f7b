//! Aggregates of a service's lines: counts over time, levels, patterns,
//! field facets and groups. Knows nothing of MCP, Redis or wasmtime.
//!
//! ```text
//! Spec::new(..)          what to count: histogram step and origin, group_by,
//!                        the baseline split, the files' names
//! SearchCore::execute_fold(plan, ctl, &Arc<Spec>)
//!   Tally (per work item) every selected line: level (level.rs), stamp ->
//!                        bucket, message -> shape (patterns::Miner), JSON
//!                        fields or syslog header -> facets (fields.rs),
//!                        group key; lines stamped before the window's start
//!                        only feed the baseline's miner
//!   Tally::absorb        items merged in file order (counts add)
//! Tally::finish(top)     patterns mined over both windows' shapes, each
//!                        with its count here and in the baseline; the
//!                        histogram filled over the window; top groups
//! ```
//!
//! Counts are exact; only facet values and groups past their caps are
//! lumped (and say so). Lines are those a search with the same arguments
//! would match (the window applies to each line's effective stamp).

pub mod fields;
pub mod histogram;
pub mod json;
pub mod level;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::io;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use logai_records::aggregate::{AggregateResponse, GroupSeries, LevelCount, PatternStat};

use crate::patterns::message::{self, MessageFormat};
use crate::patterns::{self, min_opt, Loc, Miner, Stats};
use crate::search::scan::Emit;
use crate::search::{Fold, FoldSpec, SearchMatch};
use fields::{Facets, GroupBy, Line};
use histogram::Grid;
use level::Level;

/// Most distinct groups counted one by one; the rest count in `groups_other`.
pub const MAX_GROUPS: usize = 1000;
/// Most values shown per facet.
pub const FACET_VALUES: usize = 10;

/// What a run counts.
pub struct Spec {
    /// Each plan file's name, for examples.
    pub files: Vec<String>,
    /// Lines stamped before this belong to the baseline (counted per
    /// pattern only); `None` without a baseline.
    pub baseline_until: Option<i64>,
    pub grid: Grid,
    pub group: Option<GroupBy>,
    /// For `GroupBy::Capture`: the pattern, with its groups.
    pub capture: Option<regex::bytes::Regex>,
    pub config: patterns::Config,
}

impl FoldSpec for Arc<Spec> {
    fn start(&self, file: usize) -> Box<dyn Fold> {
        Box::new(Tally::new(self.clone(), file as u32))
    }
}

/// One group's lines: in all, and per bucket.
#[derive(Clone, Debug, Default)]
struct GroupCounts {
    total: u64,
    by_bucket: FxHashMap<i64, u64>,
}

/// The aggregate of some lines (a work item's, or merged).
pub struct Tally {
    spec: Arc<Spec>,
    source: u32,
    lines: u64,
    bytes: u64,
    unstamped: u64,
    baseline_lines: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    levels: [u64; 7],
    /// Bucket index -> (lines, errors).
    buckets: FxHashMap<i64, [u64; 2]>,
    main: Miner,
    base: Miner,
    shape_errors: FxHashMap<Box<[u8]>, u64>,
    facets: Facets,
    groups: FxHashMap<Vec<u8>, GroupCounts>,
    groups_other: u64,
}

impl Tally {
    fn new(spec: Arc<Spec>, source: u32) -> Tally {
        let config = spec.config;
        Tally {
            spec,
            source,
            lines: 0,
            bytes: 0,
            unstamped: 0,
            baseline_lines: 0,
            first_ms: None,
            last_ms: None,
            levels: [0; 7],
            buckets: FxHashMap::default(),
            main: Miner::new(config),
            base: Miner::new(config),
            shape_errors: FxHashMap::default(),
            facets: Facets::default(),
            groups: FxHashMap::default(),
            groups_other: 0,
        }
    }

    /// One selected line (without its newline) and its effective stamp.
    fn add(&mut self, line_number: u64, stamp: Option<i64>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let loc = Loc { source: self.source, offset: line_number };
        if let (Some(until), Some(ms)) = (self.spec.baseline_until, stamp) {
            if ms < until {
                self.baseline_lines += 1;
                self.base.add(message::message(line, MessageFormat::Auto), loc, stamp);
                return;
            }
        }
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        // A JSON line is scanned once, for its level and its facets.
        let (level, header) = match json::pairs(line) {
            Some(pairs) => {
                let mut level = None;
                for (k, v) in pairs {
                    if level.is_none() && level::JSON_KEYS.contains(&k) {
                        level = level::of_json(v);
                    }
                    self.facets.add_pair(k, v);
                }
                (level.unwrap_or(Level::None), None)
            }
            None => {
                let header = message::header(line);
                if let Some(h) = &header {
                    self.facets.add_header(h);
                }
                (level::of_text(line), header)
            }
        };
        self.levels[level as usize] += 1;
        let bucket = stamp.map(|ms| self.spec.grid.index(ms));
        match (stamp, bucket) {
            (Some(ms), Some(b)) => {
                self.first_ms = Some(self.first_ms.map_or(ms, |f| f.min(ms)));
                self.last_ms = Some(self.last_ms.map_or(ms, |l| l.max(ms)));
                let e = self.buckets.entry(b).or_default();
                e[0] += 1;
                e[1] += level.is_error() as u64;
            }
            _ => self.unstamped += 1,
        }
        let shape = self.main.add_shaped(message::message(line, MessageFormat::Auto), loc, stamp);
        if level.is_error() {
            *self.shape_errors.entry(shape.into()).or_default() += 1;
        }
        let key: Option<Vec<u8>> = match &self.spec.group {
            None => None,
            Some(GroupBy::Pattern) => Some(shape.to_vec()),
            Some(GroupBy::Capture) => Some(self.capture(line).unwrap_or_default()),
            Some(g) => Some(g.key(&Line { line, header, level }).unwrap_or_default().into_bytes()),
        };
        if let Some(key) = key {
            self.group(key, bucket, 1);
        }
    }

    /// The first capture group of the pattern that took part in the match.
    fn capture(&self, line: &[u8]) -> Option<Vec<u8>> {
        let caps = self.spec.capture.as_ref()?.captures(line)?;
        caps.iter().skip(1).flatten().next().map(|m| m.as_bytes().to_vec())
    }

    fn group(&mut self, key: Vec<u8>, bucket: Option<i64>, n: u64) {
        let room = self.groups.len() < MAX_GROUPS;
        let g = match self.groups.get_mut(&key) {
            Some(g) => g,
            None if room => self.groups.entry(key).or_default(),
            None => {
                self.groups_other += n;
                return;
            }
        };
        g.total += n;
        if let Some(b) = bucket {
            *g.by_bucket.entry(b).or_default() += n;
        }
    }
}

impl Emit for Tally {
    fn emit(&mut self, m: SearchMatch) -> io::Result<()> {
        // Only with context, which aggregates never ask for.
        let stamp = m.timestamp.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_millis());
        self.add(m.line_number, stamp, m.text.as_bytes());
        Ok(())
    }

    fn emit_line(&mut self, _file: &str, line_number: u64, stamp: Option<i64>, line: &[u8]) -> io::Result<()> {
        self.add(line_number, stamp, line);
        Ok(())
    }
}

impl Fold for Tally {
    fn rebase(&mut self, delta: u64) {
        self.main.shift(self.source, delta);
        self.base.shift(self.source, delta);
    }

    fn absorb(&mut self, later: Box<dyn Fold>) {
        let Ok(o) = later.into_any().downcast::<Tally>() else { return };
        let o = *o;
        self.lines += o.lines;
        self.bytes += o.bytes;
        self.unstamped += o.unstamped;
        self.baseline_lines += o.baseline_lines;
        self.first_ms = min_opt(self.first_ms, o.first_ms);
        self.last_ms = self.last_ms.max(o.last_ms);
        for (a, b) in self.levels.iter_mut().zip(o.levels) {
            *a += b;
        }
        for (k, v) in o.buckets {
            let e = self.buckets.entry(k).or_default();
            e[0] += v[0];
            e[1] += v[1];
        }
        self.main.merge(o.main);
        self.base.merge(o.base);
        for (k, v) in o.shape_errors {
            *self.shape_errors.entry(k).or_default() += v;
        }
        self.facets.merge(o.facets);
        self.groups_other += o.groups_other;
        for (k, g) in o.groups {
            for (b, n) in &g.by_bucket {
                self.group(k.clone(), Some(*b), *n);
            }
            let unbucketed = g.total - g.by_bucket.values().sum::<u64>();
            if unbucketed > 0 {
                self.group(k, None, unbucketed);
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// How far a pattern's count moved from its baseline, in units of the
/// baseline's Poisson noise (`|now - before| / sqrt(before + 1)`): a new
/// pattern of 12 lines outranks a common one that moved by 20.
pub fn change_score(now: u64, before: u64) -> f64 {
    now.abs_diff(before) as f64 / ((before + 1) as f64).sqrt()
}

/// Per pattern of a summary: its lines in the window and the baseline,
/// errors, and what is known of the window's lines.
struct PerPattern {
    count: Vec<u64>,
    base: Vec<u64>,
    errors: Vec<u64>,
    stats: Vec<Option<Stats>>,
}

impl Tally {
    /// The answer's aggregate part (counts of what was read, `top` of each
    /// list); the caller adds files, window, partial and timing.
    pub fn finish(self, top: usize) -> AggregateResponse {
        let mut union = self.main.clone();
        union.merge(self.base.clone());
        let summary = union.summarize();
        let per = self.per_pattern(&summary);
        let buckets = self.spec.grid.buckets(&self.buckets);
        let groups = self.groups_out(&summary, &buckets, top);
        let mut r = AggregateResponse {
            lines: self.lines,
            bytes: self.bytes,
            unstamped: self.unstamped,
            baseline_lines: self.baseline_lines,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            step_seconds: (self.spec.grid.step_of(&self.buckets) / 1000) as u32,
            levels: Level::ALL
                .iter()
                .filter(|l| self.levels[**l as usize] > 0)
                .map(|l| LevelCount { level: l.as_str().into(), count: self.levels[*l as usize] })
                .collect(),
            patterns_total: per.count.iter().filter(|c| **c > 0).count() as u32,
            patterns: self.patterns_out(&summary, &per, top),
            facets: self.facets.top(FACET_VALUES),
            groups_total: (self.groups.len() + (self.groups_other > 0) as usize) as u32,
            ..AggregateResponse::default()
        };
        r.groups_other =
            self.groups_other + self.groups.values().map(|g| g.total).sum::<u64>() - groups.iter().map(|g| g.total).sum::<u64>();
        r.groups = groups;
        r.buckets = buckets;
        r
    }

    fn per_pattern(&self, summary: &patterns::Summary) -> PerPattern {
        let n = summary.patterns.len();
        let mut per = PerPattern { count: vec![0; n], base: vec![0; n], errors: vec![0; n], stats: vec![None; n] };
        for (shape, st) in self.main.shape_stats() {
            let Some(i) = summary.pattern_of_shape(shape) else { continue };
            per.count[i] += st.count;
            match &mut per.stats[i] {
                Some(s) => s.absorb(st.clone()),
                None => per.stats[i] = Some(st.clone()),
            }
        }
        for (shape, st) in self.base.shape_stats() {
            if let Some(i) = summary.pattern_of_shape(shape) {
                per.base[i] += st.count;
            }
        }
        for (shape, n) in &self.shape_errors {
            if let Some(i) = summary.pattern_of_shape(shape) {
                per.errors[i] += n;
            }
        }
        per
    }

    /// The top `top` patterns by count, the top `top` by errors, and with a
    /// baseline the top `top` by change (new and vanished ones included).
    fn patterns_out(&self, summary: &patterns::Summary, per: &PerPattern, top: usize) -> Vec<PatternStat> {
        let n = summary.patterns.len();
        let mut chosen: Vec<usize> = (0..n).filter(|&i| per.count[i] > 0).take(top).collect();
        // The patterns with most errors: in an incident the rare failing
        // line matters more than the common one.
        let mut by_errors: Vec<usize> = (0..n).filter(|&i| per.errors[i] > 0).collect();
        by_errors.sort_by_key(|&i| (std::cmp::Reverse(per.errors[i]), i));
        for i in by_errors.into_iter().take(top) {
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        if self.spec.baseline_until.is_some() {
            let mut by_change: Vec<usize> = (0..n).collect();
            by_change.sort_by(|&a, &b| {
                change_score(per.count[b], per.base[b]).total_cmp(&change_score(per.count[a], per.base[a])).then(a.cmp(&b))
            });
            for i in by_change.into_iter().take(top) {
                if !chosen.contains(&i) && per.count[i].abs_diff(per.base[i]) > 0 {
                    chosen.push(i);
                }
            }
        }
        chosen
            .into_iter()
            .map(|i| {
                let p = &summary.patterns[i];
                let st = per.stats[i].as_ref();
                // A vanished pattern has no line here: its example is the baseline's.
                let ex = st.unwrap_or(&p.stats);
                PatternStat {
                    id: p.id.clone(),
                    template: p.template.clone(),
                    count: per.count[i],
                    baseline_count: per.base[i],
                    errors: per.errors[i],
                    first_ms: st.and_then(|s| s.first_ms),
                    last_ms: st.and_then(|s| s.last_ms),
                    example: ex.example.to_string(),
                    example_file: self.spec.files.get(ex.first.source as usize).cloned().unwrap_or_default(),
                    example_line: ex.first.offset,
                }
            })
            .collect()
    }

    fn groups_out(&self, summary: &patterns::Summary, buckets: &[logai_records::aggregate::TimeBucket], top: usize) -> Vec<GroupSeries> {
        // Pattern groups are keyed by shape: fold shapes into their patterns.
        let mut merged: FxHashMap<String, GroupCounts> = FxHashMap::default();
        for (k, g) in &self.groups {
            let key = match self.spec.group {
                Some(GroupBy::Pattern) => summary
                    .pattern_of_shape(k)
                    .map(|i| summary.patterns[i].template.clone())
                    .unwrap_or_else(|| String::from_utf8_lossy(k).into_owned()),
                _ if k.is_empty() => "(none)".to_string(),
                _ => String::from_utf8_lossy(k).into_owned(),
            };
            let m = merged.entry(key).or_default();
            m.total += g.total;
            for (b, n) in &g.by_bucket {
                *m.by_bucket.entry(*b).or_default() += n;
            }
        }
        let mut out: Vec<(String, GroupCounts)> = merged.into_iter().collect();
        out.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
        out.truncate(top);
        out.into_iter().map(|(key, g)| GroupSeries { key, total: g.total, counts: self.spec.grid.series(&g.by_bucket, buckets) }).collect()
    }
}
