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
/// `logai serve --config <manifest>`, to be given its stdio and spawned.
pub fn serve_command(manifest: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(logai_bin());
    cmd.arg("serve").arg("--config").arg(manifest);
    cmd
}

pub fn plugin_dist() -> PathBuf {
    repo_root().join("plugins/dist")
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub use mcp_client::McpClient;

/// A minimal, strict MCP client over a child's stdio: every stdout line must
/// be a JSON-RPC message (anything else fails the test), responses are
/// matched by id, notifications are kept for inspection.
pub mod mcp_client {
    use std::io::{BufRead, BufReader, Write};
    use std::path::Path;
    use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    pub const LEGACY_VERSION: &str = "2025-11-25";
    pub const MODERN_VERSION: &str = "2026-07-28";

    pub struct McpClient {
        child: Child,
        stdin: Option<ChildStdin>,
        rx: Receiver<Result<Value, String>>,
        /// Notifications received so far (in order).
        pub notifications: Vec<Value>,
        /// Responses read while waiting for another id.
        pending: Vec<Value>,
        next_id: i64,
        /// stdout reached EOF.
        closed: bool,
        /// How long `request` waits for its response.
        pub timeout: Duration,
    }

    impl McpClient {
        /// Start `logai serve --config <manifest>` with extra environment.
        pub fn serve(manifest: &Path, envs: &[(&str, &str)]) -> McpClient {
            let mut cmd = super::serve_command(manifest);
            for (k, v) in envs {
                cmd.env(k, v);
            }
            if std::env::var_os("LOGAI_TEST_QUIET").is_some() {
                cmd.stderr(Stdio::null());
            }
            McpClient::spawn(cmd)
        }

        /// Talk to any command that speaks MCP on its stdio (e.g. `ssh ... logai serve`).
        /// Its stderr is left as the command has it (inherited by default).
        pub fn spawn(mut cmd: Command) -> McpClient {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn MCP server");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let msg = serde_json::from_slice::<Value>(&line)
                                .map_err(|e| format!("stdout carried a non-JSON line ({e}): {:?}", String::from_utf8_lossy(&line)));
                            if tx.send(msg).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let stdin = child.stdin.take();
            McpClient {
                child,
                stdin,
                rx,
                notifications: Vec::new(),
                pending: Vec::new(),
                next_id: 1,
                closed: false,
                timeout: Duration::from_secs(60),
            }
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Write one message as a line.
        pub fn send(&mut self, msg: &Value) {
            let mut line = serde_json::to_vec(msg).unwrap();
            line.push(b'\n');
            self.send_raw(&line);
        }

        /// Write raw bytes (garbage tests).
        pub fn send_raw(&mut self, bytes: &[u8]) {
            let stdin = self.stdin.as_mut().expect("stdin already closed");
            stdin.write_all(bytes).expect("write to server stdin");
            stdin.flush().unwrap();
        }

        /// A fresh request id.
        pub fn next_id(&mut self) -> i64 {
            self.next_id += 1;
            self.next_id
        }

        /// Send a request and wait for its response (the whole message).
        pub fn request(&mut self, method: &str, params: Value) -> Value {
            let id = self.next_id();
            self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
            self.response(&json!(id))
        }

        /// Wait for the response with this id.
        pub fn response(&mut self, id: &Value) -> Value {
            if let Some(i) = self.pending.iter().position(|m| m.get("id") == Some(id)) {
                return self.pending.remove(i);
            }
            let deadline = Instant::now() + self.timeout;
            loop {
                let msg = match self.recv_until(deadline) {
                    Some(m) => m,
                    None if self.closed => panic!("the server closed stdout before answering id {id} (exit: {:?})", self.child.try_wait()),
                    None => panic!("no response to id {id} within {:?}", self.timeout),
                };
                if msg.get("id") == Some(id) && msg.get("method").is_none() {
                    return msg;
                }
                self.keep(msg);
            }
        }

        /// The next message of any kind, or `None` after `wait`.
        pub fn recv(&mut self, wait: Duration) -> Option<Value> {
            self.recv_until(Instant::now() + wait)
        }

        fn recv_until(&mut self, deadline: Instant) -> Option<Value> {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(v)) => Some(v),
                Ok(Err(violation)) => panic!("{violation}"),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    None
                }
            }
        }

        fn keep(&mut self, msg: Value) {
            if msg.get("method").is_some() && msg.get("id").is_none() {
                self.notifications.push(msg);
            } else {
                self.pending.push(msg);
            }
        }

        /// Legacy handshake: `initialize` + `notifications/initialized`.
        pub fn initialize(&mut self) -> Value {
            let resp = self.request(
                "initialize",
                json!({"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "logai-e2e", "version": "0"}}),
            );
            assert!(resp.get("result").is_some(), "initialize failed: {resp}");
            self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
            resp
        }

        /// `tools/call` (legacy era, after `initialize`); returns the whole response.
        pub fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
            self.request("tools/call", json!({"name": name, "arguments": arguments}))
        }

        /// `tools/call`'s `result`, panicking on a JSON-RPC error.
        pub fn call_tool_ok(&mut self, name: &str, arguments: Value) -> Value {
            let resp = self.call_tool(name, arguments);
            resp.get("result").cloned().unwrap_or_else(|| panic!("tools/call {name} failed: {resp}"))
        }

        /// `_meta` of a stateless (2026-07-28) request.
        pub fn modern_meta() -> Value {
            json!({
                "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "logai-e2e", "version": "0"}
            })
        }

        /// Close stdin (EOF) and wait for the server to exit.
        pub fn close(mut self) -> ExitStatus {
            self.stdin.take();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("server did not exit within 30 s of EOF");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        /// SIGKILL the server (coordination tests).
        pub fn kill(mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for McpClient {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Write a manifest into `dir` for a test: session dirs inside `dir`, the
/// shared precompile cache under the target dir (so suites reuse compiled
/// components), the given `[[plugin]]` entries as (name, dist file name).
/// `extra` goes first, verbatim: top-level keys (`services_file = ...`) and
/// tables other than `[server]` (`[limits]`, `[[service]]`, ...).
pub fn write_manifest(dir: &Path, plugins: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut text = format!("{extra}\n");
    text += &format!(
        "[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\nlog_level = \"info\"\n\n",
        dir.join("sessions").display(),
        target_dir().join("logai-test-cache").display()
    );
    for (name, file) in plugins {
        text.push_str(&format!("[[plugin]]\nname = \"{name}\"\ncomponent = \"{}\"\n\n", plugin_dist().join(file).display()));
    }
    let path = dir.join("logai.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The first-party sample services (examples/logs) as manifest TOML.
pub fn sample_services_toml() -> String {
    format!("services_file = \"{}\"\n", repo_root().join("config/services.toml").display())
}

/// A real `redis-server` on a free loopback port (coord suites).
pub use logai_test_redis::{incompressible, RedisServer};

/// `coord-holder` processes (tests/bin/coord_holder.rs, its path from the
/// test's `env!("CARGO_BIN_EXE_coord-holder")`) that each take a permit for
/// one of `services` and hold it, renewing the lease, until killed. Returns
/// once every one has its permit through Redis.
pub fn hold_permits(
    holder_bin: &str,
    url: &str,
    services: &[&str],
    global: u32,
    per_service: u32,
    lease_ms: u64,
) -> Vec<std::process::Child> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut holders: Vec<_> = services
        .iter()
        .map(|svc| {
            Command::new(holder_bin)
                .args([url, "hold", svc])
                .env("COORD_GLOBAL", global.to_string())
                .env("COORD_SERVICE", per_service.to_string())
                .env("COORD_LEASE_MS", lease_ms.to_string())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start coord-holder")
        })
        .collect();
    for h in &mut holders {
        let mut line = String::new();
        BufReader::new(h.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ACQUIRED shared=true");
    }
    holders
}

/// A child process killed and reaped when dropped (a test's receivers and
/// servers never outlive it).
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of a program on `PATH`; panics naming what installs it.
pub fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{name} missing: scripts/install-test-deps installs it (Debian package prometheus)"))
}

/// The body of `GET path` on a loopback port, `None` unless it answered 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if !out.starts_with("HTTP/1.1 200") && !out.starts_with("HTTP/1.0 200") {
        return None;
    }
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Poll `f` until it gives a value; the bound (seconds) only catches a hang.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(secs), "timed out after {secs} s waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
