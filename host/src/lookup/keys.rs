//! Every key the search path stores under, made here and nowhere else.
//!
//! Three keys per plan, all `<kind>:v1:<service>:<sha256>` over a key
//! version, the request as given, the log format, the timezone and what
//! else the kind needs:
//! - [`answer`] (`search`): an answer, exactly; equal keys give equal answers.
//! - [`question`]: the answers to one question over any window or context,
//!   listed for narrower asks to be cut from (`search::cover`).
//! - [`aggregate`]: an aggregate's answer (`digest`), exactly.
//! - [`tail`]: what the last search of this request left, to resume from
//!   once the log grew (`search::tail`).
//!
//! `max_results` is in none of them: cached answers and tails hold every
//! match and are cut to each caller's `max_results` when presented.
//! Changing what a key covers means bumping its version.

use std::path::Path;

use serde::Serialize;

use crate::search::{SearchPlan, SearchRequest, Window};

/// A stable key over every parameter, the absolute window (the bounds
/// that cut into the files' time ranges, [`SearchPlan::key_window`]) and
/// each file's identity, size, mtime and byte range: equal keys give equal
/// answers.
pub fn answer(plan: &SearchPlan) -> String {
    #[derive(Serialize)]
    struct State<'a> {
        window: Option<Window>,
        files: Vec<(&'a Path, u64, u64, u64, i64, u64, u64)>,
    }
    // Cached answers hold every match and are cut to each caller's
    // max_results when presented: it is not part of the key.
    let req = SearchRequest { max_results: 0, ..plan.request.clone() };
    let state = State {
        window: plan.key_window(),
        files: plan
            .files
            .iter()
            .map(|f| (f.path.as_path(), f.id.dev, f.id.ino, f.id.size, f.id.mtime_ns, f.start_offset, f.end_offset))
            .collect(),
    };
    hashed(plan, "search", 3, &req, state)
}

/// An aggregate's key: as [`answer`] (every parameter, the absolute window,
/// each file's state) and what else it counts by (`extra`).
pub fn aggregate(plan: &SearchPlan, extra: impl Serialize) -> String {
    #[derive(Serialize)]
    struct State<'a, E> {
        window: Option<Window>,
        files: Vec<(&'a Path, u64, u64, u64, i64, u64, u64)>,
        counted_by: E,
    }
    let req = SearchRequest { max_results: 0, ..plan.request.clone() };
    let state = State {
        // The exact window: its bounds place the buckets.
        window: plan.window,
        files: plan
            .files
            .iter()
            .map(|f| (f.path.as_path(), f.id.dev, f.id.ino, f.id.size, f.id.mtime_ns, f.start_offset, f.end_offset))
            .collect(),
        counted_by: extra,
    };
    hashed(plan, "aggregate", 1, &req, state)
}

/// The key under which the answers to this question are listed: every
/// parameter but the window, `context` and `max_results`.
pub fn question(plan: &SearchPlan) -> String {
    let req = SearchRequest {
        minutes_back: None,
        hours_back: None,
        date: None,
        since: None,
        until: None,
        context: 0,
        max_results: 0,
        ..plan.request.clone()
    };
    #[derive(Serialize)]
    struct Nothing {}
    hashed(plan, "question", 1, &req, Nothing {})
}

/// Where the tail of this request over these files is kept: every
/// parameter as asked (a relative window as its length) and each file's
/// path and identity, but not sizes or mtimes, so the same question
/// asked after the log grew finds it.
pub fn tail(plan: &SearchPlan) -> String {
    #[derive(Serialize)]
    struct Files<'a> {
        files: Vec<(&'a Path, u64, u64)>,
    }
    // A tail holds every match: max_results is applied when presenting.
    let req = SearchRequest { max_results: 0, ..plan.request.clone() };
    let files = Files { files: plan.files.iter().map(|f| (f.path.as_path(), f.id.dev, f.id.ino)).collect() };
    hashed(plan, "tail", 2, &req, files)
}

/// `<kind>:v1:<service>:<sha256>` over a key version, the request as
/// given, the log format, the timezone and `extra`.
fn hashed(plan: &SearchPlan, kind: &str, v: u32, req: &SearchRequest, extra: impl Serialize) -> String {
    use sha2::{Digest, Sha256};
    #[derive(Serialize)]
    struct Key<'a, E> {
        v: u32,
        req: &'a SearchRequest,
        format: &'a str,
        tz: &'a str,
        #[serde(flatten)]
        extra: E,
    }
    let key = Key { v, req, format: plan.format.as_str(), tz: &plan.timezone, extra };
    let bytes = serde_json::to_vec(&key).expect("plan key serializes");
    format!("{kind}:v1:{}:{}", plan.service, hex::encode(Sha256::digest(&bytes)))
}
