//! `dir:NAME`: the directories a session writes are writable: the session
//! root (overflow files), the slot directory (the search caps) and the
//! precompiled component cache.

use std::path::{Path, PathBuf};

use super::Finding;
use crate::config::Config;

pub(super) fn check(config: &Config) -> Vec<Finding> {
    let session = match std::env::var_os("LOGAI_SESSION_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => config.resolve(&config.server.session_root),
    };
    let mut out = vec![
        one("dir:session", &session, "server.session_root (or $LOGAI_SESSION_DIR)"),
        one("dir:slots", &config.slot_dir(), "limits.slot_dir"),
    ];
    out.push(match crate::plugins::cache_dir(config) {
        Some(d) => one("dir:cache", &d, "server.compile_cache_dir (or $LOGAI_CACHE_DIR)"),
        None => Finding::warn(
            "dir:cache",
            "no precompile cache directory (no $LOGAI_CACHE_DIR, server.compile_cache_dir or $HOME)",
            "set server.compile_cache_dir: without it every session compiles every plugin at start",
        ),
    });
    out
}

fn one(check: &str, dir: &Path, setting: &str) -> Finding {
    match writable(dir) {
        Ok(()) => Finding::ok(check, format!("{} is writable", dir.display())),
        Err(e) => Finding::fail(
            check,
            format!("{} is not writable: {e}", dir.display()),
            format!("create it writable by the serving account, or point {setting} elsewhere"),
        ),
    }
}

/// Create `dir` if missing, then write and remove a file in it.
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".logai-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"probe")?;
    std::fs::remove_file(&probe)
}
