//! Shared helpers for the end-to-end suites: where the built binary and
//! components are, free loopback ports, and scratch directories.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The cargo target directory the tests were built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() { dir } else { repo_root().join(dir) };
    }
    // .../target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| repo_root().join("target"))
}

/// The `logai` binary under test (built by `scripts/test` before the suites run).
pub fn logai_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGAI_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join("logai");
    assert!(bin.is_file(), "{} is missing: build it first (scripts/test does)", bin.display());
    bin
}

/// Built plugin components (`scripts/build-plugins` copies them here).
pub fn plugin_dist() -> PathBuf {
    repo_root().join("plugins/dist")
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
