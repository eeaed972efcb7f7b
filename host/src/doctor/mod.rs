//! `logai doctor`: everything an operator checks on a log host, in one
//! command. Each check is a file of its own and answers [`Finding`]s:
//!
//! | check | file |
//! |---|---|
//! | `manifest` | [`manifest`]: the manifest parses and validates |
//! | `plugin`, `exporter` | [`components`]: every enabled component loads |
//! | `service` | [`services`]: readable files, parseable stamps (a tail sample) |
//! | `dir` | [`dirs`]: session, slot and compile cache directories writable |
//! | `redis` | [`redis`]: reachable, latency, eviction policy, memory |
//! | `endpoint` | [`endpoints`]: exporters' hosts and sockets reachable |
//! | `ssh` | [`ssh`]: the serving account's keys carry `restrict` and a forced `logai serve` |
//!
//! Human text by default, a JSON array with `--json`; the exit status is
//! non-zero when any finding is a failure (warnings do not fail).

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

mod components;
mod dirs;
mod endpoints;
mod manifest;
mod redis;
mod services;
mod ssh;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One thing the doctor looked at.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// `kind` or `kind:subject` (`service:payments`, `redis`).
    pub check: String,
    pub status: Status,
    /// What was seen.
    pub seen: String,
    /// What to do about it (empty when nothing).
    pub action: String,
}

impl Finding {
    pub fn ok(check: impl Into<String>, seen: impl Into<String>) -> Finding {
        Finding { check: check.into(), status: Status::Ok, seen: seen.into(), action: String::new() }
    }
    pub fn warn(check: impl Into<String>, seen: impl Into<String>, action: impl Into<String>) -> Finding {
        Finding { check: check.into(), status: Status::Warn, seen: seen.into(), action: action.into() }
    }
    pub fn fail(check: impl Into<String>, seen: impl Into<String>, action: impl Into<String>) -> Finding {
        Finding { check: check.into(), status: Status::Fail, seen: seen.into(), action: action.into() }
    }
}

/// Run every check for the manifest at `config` (located as `serve`
/// would); `authorized_keys`: sshd's file when not the serving account's
/// `~/.ssh/authorized_keys`.
pub fn findings(config: Option<&Path>, authorized_keys: Option<&Path>) -> Vec<Finding> {
    let (config, mut out) = manifest::check(config);
    let Some(config) = config else { return out };
    out.extend(components::check(&config));
    out.extend(services::check(&config));
    out.extend(dirs::check(&config));
    out.extend(redis::check(&config));
    out.extend(endpoints::check(&config));
    out.extend(ssh::check(&config, authorized_keys));
    out
}

/// `logai doctor [--config PATH] [--authorized-keys PATH] [--json]`.
pub fn run(config: Option<&Path>, authorized_keys: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let found = findings(config, authorized_keys);
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", render(&found));
    }
    let failed = found.iter().any(|f| f.status == Status::Fail);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The findings as text: one line each, the action indented below.
pub fn render(found: &[Finding]) -> String {
    let mut s = String::new();
    for f in found {
        s += &format!("{:<4} {}: {}\n", f.status.as_str(), f.check, f.seen);
        if !f.action.is_empty() {
            s += &format!("     -> {}\n", f.action);
        }
    }
    let count = |st: Status| found.iter().filter(|f| f.status == st).count();
    s += &format!("{} ok, {} warnings, {} failures\n", count(Status::Ok), count(Status::Warn), count(Status::Fail));
    s
}
