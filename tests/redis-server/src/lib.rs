//! A real `redis-server` (apt `redis-server`) for tests: on a free loopback
//! port, persistence off, SIGKILLed when dropped. Shared by the host's unit
//! tests and the end-to-end suites so both start it the same way.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const MISSING: &str = "not found on PATH: run scripts/install-test-deps (Debian package redis-server)";

/// Panics with the fix when `redis-server` or `redis-cli` cannot be run.
fn require_installed() {
    for tool in ["redis-server", "redis-cli"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(found, "{tool} {MISSING}");
    }
}

impl RedisServer {
    /// Start with extra arguments (a config file first, then `--name value`
    /// pairs). Panics, naming the fix, when redis-server or redis-cli is not
    /// on PATH: a Redis test without Redis fails, it never passes silently.
    pub fn start(extra: &[&str]) -> RedisServer {
        require_installed();
        let mut s = RedisServer { port: free_port(), child: None, args: extra.iter().map(|s| s.to_string()).collect() };
        s.spawn();
        s
    }

    /// (Re)start on the same port; empty (no persistence).
    pub fn spawn(&mut self) {
        self.kill();
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("redis-server {MISSING} ({e})")));
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Run `redis-cli` against it; stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli {MISSING} ({e})"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's process id while it runs (to pause it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL (no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `len` bytes that do not compress (xorshift from `seed`): values that
/// take their full size in Redis, since logai stores cache values
/// LZ4-compressed when that pays.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
