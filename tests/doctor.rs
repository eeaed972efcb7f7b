//! `logai doctor` on a host set up for the test: healthy, it passes (exit 0,
//! no failure); each check broken in turn (a bad manifest, an unreadable
//! log file, unparseable stamps, an unwritable cache directory, Redis down,
//! an exporter's endpoint that accepts no connection), it names the check
//! that failed and exits non-zero. Receivers and Redis are real.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use logai_e2e::{free_port, logai_bin, plugin_dist, target_dir, RedisServer};
use serde_json::Value;

/// A host: one service of stamped lines, the hello plugin, the Datadog
/// exporter granted `trace` (TCP) and `statsd` (UDP), a forced key.
struct Host {
    dir: tempfile::TempDir,
    trace: u16,
    statsd: u16,
    redis_url: String,
    cache_dir: PathBuf,
    format: &'static str,
    /// The hello plugin and the Datadog exporter (loading them costs time:
    /// only the checks about them have them).
    components: bool,
    /// Written instead of the manifest, when set.
    manifest_text: Option<String>,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let lines: String = (0..50).map(|i| format!("2026-11-23T10:00:{i:02}Z INFO request {i} done\n")).collect();
        std::fs::write(dir.path().join("logs/app.log"), lines).unwrap();
        std::fs::write(
            dir.path().join("authorized_keys"),
            "restrict,command=\"logai serve --as alice\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice\n",
        )
        .unwrap();
        Host {
            dir,
            trace: 0,
            statsd: free_port(),
            redis_url: String::new(),
            cache_dir: target_dir().join("logai-test-cache"),
            format: "plain",
            components: false,
            manifest_text: None,
        }
    }

    fn manifest(&self) -> PathBuf {
        let d = self.dir.path();
        let redis = if self.redis_url.is_empty() { String::new() } else { format!("[redis]\nurl = \"{}\"\n", self.redis_url) };
        let mut text = format!(
            r#"{redis}
[server]
session_root = "{sessions}"
compile_cache_dir = "{cache}"

[[service]]
name = "app"
paths = ["{logs}/*.log"]
format = "{format}"
"#,
            sessions = d.join("sessions").display(),
            cache = self.cache_dir.display(),
            logs = d.join("logs").display(),
            format = self.format,
        );
        if self.components {
            text += &self.components_toml();
        }
        if let Some(t) = &self.manifest_text {
            text = t.clone();
        }
        let path = d.join("logai.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn components_toml(&self) -> String {
        format!(
            r#"
[[plugin]]
name = "hello"
component = "{hello}"

[[exporter]]
name = "datadog"
component = "{datadog}"
enabled = true
allowed_hosts = ["127.0.0.1:{trace}"]
allowed_sockets = ["127.0.0.1:{statsd}"]
settings = {{ agent_host = "127.0.0.1", dogstatsd_port = "{statsd}", trace_port = "{trace}", service = "doctor-e2e", env = "test" }}
"#,
            hello = plugin_dist().join("hello-plugin.wasm").display(),
            datadog = plugin_dist().join("datadog.wasm").display(),
            trace = self.trace,
            statsd = self.statsd,
        )
    }

    /// `logai doctor --config M --authorized-keys K`.
    fn command(&self) -> Command {
        let mut c = Command::new(logai_bin());
        c.arg("doctor").arg("--config").arg(self.manifest());
        c.arg("--authorized-keys").arg(self.dir.path().join("authorized_keys"));
        // The manifest's directories and Redis, not the environment's.
        c.env_remove("LOGAI_CACHE_DIR").env_remove("LOGAI_SESSION_DIR").env_remove("REDIS_URL").env_remove("REDIS_HOST");
        c
    }

    /// `logai doctor --json`: its exit status and findings.
    fn doctor(&self, cmd: impl FnOnce(&mut Command)) -> (bool, Vec<Value>) {
        let mut c = self.command();
        c.arg("--json");
        cmd(&mut c);
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let findings: Vec<Value> = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("doctor --json printed no JSON array ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), findings)
    }
}

fn status_of<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings.iter().find(|f| f["check"] == check).unwrap_or_else(|| panic!("no finding '{check}' in {findings:#?}"))
}

/// Doctor failed, naming `check` as a failure whose `seen` has `words`.
fn assert_fails(host: &Host, check: &str, words: &str, cmd: impl FnOnce(&mut Command)) {
    let (ok, findings) = host.doctor(cmd);
    let f = status_of(&findings, check);
    assert_eq!(f["status"], "fail", "{f:#}");
    assert!(f["seen"].as_str().unwrap().contains(words), "{f:#}");
    assert!(!f["action"].as_str().unwrap().is_empty(), "a failure says what to do: {f:#}");
    assert!(!ok, "doctor exited 0 with a failure: {findings:#?}");
}

fn components_built() {
    for c in ["hello-plugin.wasm", "datadog.wasm"] {
        assert!(plugin_dist().join(c).is_file(), "build the plugins first (scripts/build-plugins): {c}");
    }
}

#[test]
fn a_healthy_host_passes_every_check() {
    components_built();
    let trace = TcpListener::bind("127.0.0.1:0").unwrap();
    let redis = RedisServer::start(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]);
    let mut host = Host::new();
    host.components = true;
    host.trace = trace.local_addr().unwrap().port();
    host.redis_url = redis.url();
    let (ok, findings) = host.doctor(|_| {});
    let failed: Vec<&Value> = findings.iter().filter(|f| f["status"] != "ok").collect();
    assert!(failed.is_empty() && ok, "{failed:#?}");
    for check in ["manifest", "plugin:hello", "exporter:datadog", "service:app", "dir:session", "dir:slots", "dir:cache", "redis", "ssh"] {
        assert_eq!(status_of(&findings, check)["status"], "ok", "{check}");
    }
    let endpoint = format!("endpoint:datadog:127.0.0.1:{}", host.trace);
    assert_eq!(status_of(&findings, &endpoint)["status"], "ok");
    assert_eq!(status_of(&findings, "redis:eviction")["status"], "ok");
    assert!(status_of(&findings, "redis")["seen"].as_str().unwrap().contains(" ms"), "latency");
    // Text by default: one line a finding, a summary, exit 0.
    let out = host.command().output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ok   service:app: 1 files readable") && text.contains(" 0 failures"), "{text}");
}

#[test]
fn a_bad_manifest_is_named_with_its_place() {
    let mut host = Host::new();
    host.manifest_text = Some("[limits]\nmax_global_searches = \"many\"\n".into());
    let (ok, findings) = host.doctor(|_| {});
    assert!(!ok);
    let f = status_of(&findings, "manifest");
    assert_eq!(f["status"], "fail");
    let seen = f["seen"].as_str().unwrap();
    assert!(seen.contains("logai.toml:2:23: invalid type"), "{seen}");
}

#[test]
fn an_unreadable_log_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let host = Host::new();
    let log = host.dir.path().join("logs/app.log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anything: check as nobody then (the directories let it in).
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        for d in [host.dir.path(), &host.dir.path().join("logs")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    host.manifest();
    std::fs::set_permissions(host.dir.path().join("logai.toml"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fails(&host, "service:app", "cannot be read", |c| {
        if root {
            c.uid(65534).gid(65534).env("HOME", "/tmp");
        }
    });
}

#[test]
fn unparseable_stamps_are_named() {
    let mut host = Host::new();
    host.format = "json";
    assert_fails(&host, "service:app", "has a stamp the 'json' format parses", |_| {});
}

#[test]
fn an_unwritable_cache_dir_is_named() {
    let mut host = Host::new();
    // Under a regular file: no one can create it, root included.
    let file = host.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    host.cache_dir = file.join("cache");
    assert_fails(&host, "dir:cache", "is not writable", |_| {});
}

#[test]
fn redis_down_is_named() {
    let mut host = Host::new();
    host.redis_url = format!("redis://127.0.0.1:{}/", free_port());
    assert_fails(&host, "redis", "is unreachable", |_| {});
}

#[test]
fn an_unreachable_exporter_endpoint_is_named() {
    components_built();
    let mut host = Host::new();
    host.components = true;
    host.trace = free_port(); // nothing listens
    let check = format!("endpoint:datadog:127.0.0.1:{}", host.trace);
    assert_fails(&host, &check, "does not accept connections", |_| {});
}

#[test]
fn keys_without_a_forced_command_are_a_warning() {
    let host = Host::new();
    let keys = host.dir.path().join("authorized_keys");
    std::fs::write(&keys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin\n").unwrap();
    let (_, findings) = host.doctor(|_| {});
    let f = status_of(&findings, "ssh");
    assert_eq!(f["status"], "warn", "{f:#}");
    assert!(f["seen"].as_str().unwrap().contains("line 1"), "{f:#}");
}
