//! Misbehaving plugins against the real `logai serve`: each bad tool gets a
//! clear `isError` result naming the plugin and the limit or grant it hit,
//! within its limit, and the same session then serves a good tool. Start-up
//! refuses manifests whose plugins clash or declare broken tools.
//!
//! Needs `plugins/dist/` (scripts/build-plugins) and the `logai` binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use logai_e2e::mcp_client::McpClient;
use logai_e2e::{plugin_dist, target_dir};
use serde_json::{json, Value};

/// One `[[plugin]]` entry: name, dist file, extra lines (grants).
fn entry(name: &str, file: &str, extra: &str) -> String {
    let component = plugin_dist().join(file);
    assert!(component.is_file(), "{} is missing: run scripts/build-plugins", component.display());
    format!("[[plugin]]\nname = \"{name}\"\ncomponent = \"{}\"\n{extra}\n\n", component.display())
}

fn manifest(dir: &Path, entries: &[String]) -> PathBuf {
    let mut text = format!(
        "[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\nlog_level = \"info\"\n\n",
        dir.join("sessions").display(),
        target_dir().join("logai-test-cache").display()
    );
    for e in entries {
        text.push_str(e);
    }
    let path = dir.join("logai.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A session with `hello-plugin` (the good tools) beside `entries`.
fn session(dir: &Path, entries: &[String], envs: &[(&str, &str)]) -> McpClient {
    let mut all = vec![entry("hello", "hello-plugin.wasm", "memory_mb = 16\ntimeout_ms = 5000")];
    all.extend_from_slice(entries);
    let mut c = McpClient::serve(&manifest(dir, &all), envs);
    c.initialize();
    c
}

fn text(result: &Value) -> String {
    result["content"].as_array().map(|a| a.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// Call a tool that must fail as a tool error (`isError: true`) whose text
/// contains every needle, within `within`.
#[track_caller]
fn call_error(c: &mut McpClient, tool: &str, args: Value, needles: &[&str], within: Duration) -> String {
    let t = Instant::now();
    let result = c.call_tool_ok(tool, args);
    let took = t.elapsed();
    assert_eq!(result["isError"], json!(true), "{tool}: expected isError, got {result}");
    let t = text(&result);
    for n in needles {
        assert!(t.contains(n), "{tool}: {n:?} not in {t:?}");
    }
    // `within` is what the answer is due by (a limit), not a speed target:
    // ten times it, so a loaded machine cannot fail what a hang would.
    assert!(took < within * 10, "{tool} took {took:?} (due within {within:?})");
    t
}

/// The good tool still works in the same session.
#[track_caller]
fn hello_works(c: &mut McpClient) {
    let result = c.call_tool_ok("hello", json!({"name": "after"}));
    assert_eq!(result["isError"], json!(false), "{result}");
    assert!(text(&result).starts_with("Hello, after!"), "{result}");
}

#[test]
fn infinite_loop_is_stopped_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = session(dir.path(), &[entry("loop", "test-loop.wasm", "timeout_ms = 500")], &[]);
    let t = Instant::now();
    call_error(&mut c, "spin", json!({}), &["plugin 'loop' exceeded its time limit (timeout_ms = 500)"], Duration::from_secs(3));
    assert!(t.elapsed() >= Duration::from_millis(500));
    hello_works(&mut c);
    // Blocked in a host call (sleeping) instead of spinning: same limit.
    call_error(&mut c, "sleep", json!({}), &["plugin 'loop' exceeded its time limit (timeout_ms = 500)"], Duration::from_secs(3));
    hello_works(&mut c);
    assert_eq!(text(&c.call_tool_ok("quick", json!({}))), "quick");
    assert!(c.close().success());
}

#[test]
fn a_spinning_call_does_not_hold_up_a_ping() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = session(dir.path(), &[entry("loop", "test-loop.wasm", "timeout_ms = 3000")], &[]);
    // A call starts on the session's own thread and leaves it when it first
    // yields (a spinning guest does at the next epoch tick); the ping behind
    // it is read and answered while the call still spins. Event order, not a
    // clock: the ping's answer comes before the call's.
    c.send(&json!({"jsonrpc": "2.0", "id": "spin", "method": "tools/call", "params": {"name": "spin", "arguments": {}}}));
    c.send(&json!({"jsonrpc": "2.0", "id": "ping", "method": "ping"}));
    let first = c.recv(Duration::from_secs(60)).expect("an answer");
    assert_eq!(first, json!({"jsonrpc": "2.0", "id": "ping", "result": {}}), "the ping waited for the spinning call");
    let spin = c.recv(Duration::from_secs(60)).expect("the call's answer");
    assert_eq!(spin["id"], json!("spin"));
    assert_eq!(spin["result"]["isError"], json!(true), "{spin}");
    hello_works(&mut c);
    assert!(c.close().success());
}

#[test]
fn memory_bomb_is_stopped_at_its_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = session(dir.path(), &[entry("bomb", "test-bomb.wasm", "memory_mb = 16\ntimeout_ms = 10000")], &[]);
    call_error(&mut c, "alloc", json!({}), &["plugin 'bomb' exceeded its memory limit (memory_mb = 16)"], Duration::from_secs(5));
    hello_works(&mut c);
    // A fresh instance: a modest allocation fits again.
    assert_eq!(text(&c.call_tool_ok("alloc", json!({"mb": 4}))), "allocated 4 MiB");
    assert!(c.close().success());
}

#[test]
fn panics_and_traps_are_reported_with_the_plugin_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = session(dir.path(), &[entry("crash", "test-panic.wasm", "timeout_ms = 5000")], &[]);
    call_error(&mut c, "boom", json!({}), &["plugin 'crash' panicked", "the boom tool always panics"], Duration::from_secs(3));
    hello_works(&mut c);
    call_error(&mut c, "unreachable", json!({}), &["plugin 'crash' trapped", "unreachable"], Duration::from_secs(3));
    hello_works(&mut c);
    call_error(&mut c, "deep", json!({}), &["plugin 'crash'", "deep"], Duration::from_secs(3));
    // Each call gets a fresh instance: a static counter never passes 1.
    for _ in 0..3 {
        assert_eq!(text(&c.call_tool_ok("counter", json!({}))), "1");
    }
    assert!(c.close().success());
}

#[test]
fn malformed_results_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = session(dir.path(), &[entry("bad", "test-malformed.wasm", "")], &[]);
    call_error(
        &mut c,
        "not_json",
        json!({}),
        &["plugin 'bad' returned a malformed result from tool 'not_json'", "not valid JSON"],
        Duration::from_secs(3),
    );
    call_error(&mut c, "wrong_shape", json!({}), &["plugin 'bad'", "does not match the output schema"], Duration::from_secs(3));
    call_error(&mut c, "bad_image", json!({}), &["plugin 'bad'", "not valid base64"], Duration::from_secs(3));
    hello_works(&mut c);
    let fine = c.call_tool_ok("fine", json!({}));
    assert_eq!(fine["structuredContent"], json!({"count": 3}), "{fine}");
    assert!(c.close().success());
}

/// A loopback TCP server that answers every connection with `reply` until
/// dropped (bounded: at most 16 connections, 60 s).
struct Server {
    addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

fn server(reply: &'static [u8]) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while Instant::now() < until && served < 16 {
            match l.accept() {
                Ok((mut s, _)) => {
                    served += 1;
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(reply);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { addr, _thread: thread }
}

#[test]
fn ungranted_files_env_sockets_and_http_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, "TOP-SECRET-FILE").unwrap();
    let tcp = server(b"TOP-SECRET-SOCKET\n");
    let http = server(b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\nTOP-SECRET-HTTP\r\n");
    let mut c = session(dir.path(), &[entry("snoop", "test-snoop.wasm", "timeout_ms = 5000")], &[("LOGAI_E2E_SECRET", "TOP-SECRET-ENV")]);
    let within = Duration::from_secs(5);
    let path = secret_file.display().to_string();
    let mut seen = String::new();
    seen += &call_error(&mut c, "read_file", json!({"path": path}), &["cannot read"], within);
    seen += &call_error(&mut c, "read_file", json!({"path": "/etc/passwd"}), &["cannot read /etc/passwd"], within);
    seen += &call_error(
        &mut c,
        "read_env",
        json!({"name": "LOGAI_E2E_SECRET"}),
        &["cannot read environment variable LOGAI_E2E_SECRET", "(0 variables visible)"],
        within,
    );
    seen += &call_error(
        &mut c,
        "connect",
        json!({"addr": tcp.addr.to_string()}),
        &["cannot connect", &format!("plugin 'snoop' was denied: TCP connect to {} is not in its allowed_sockets grant", tcp.addr)],
        within,
    );
    seen += &call_error(&mut c, "udp_send", json!({"addr": "127.0.0.1:9"}), &["cannot send", "UDP"], within);
    seen += &call_error(
        &mut c,
        "http_get",
        json!({"authority": http.addr.to_string()}),
        &["HttpRequestDenied", &format!("HTTP request to {} is not in its allowed_hosts grant", http.addr)],
        within,
    );
    assert!(!seen.contains("TOP-SECRET"), "a secret leaked: {seen}");
    hello_works(&mut c);
    assert!(c.close().success());
}

#[test]
fn granted_access_works_and_stays_within_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "granted line\n").unwrap();
    let tcp = server(b"hello plugin\n");
    let http = server(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let grants = format!(
        "timeout_ms = 5000\nenv = [\"LOGAI_E2E_GRANTED\"]\ndirs = [\"{}:/logs\"]\nallowed_sockets = [\"{}\"]\nallowed_hosts = [\"{}\"]",
        logs.display(),
        tcp.addr,
        http.addr
    );
    let mut c = session(
        dir.path(),
        &[entry("snoop", "test-snoop.wasm", &grants)],
        &[("LOGAI_E2E_GRANTED", "yes"), ("LOGAI_E2E_SECRET", "TOP-SECRET-ENV")],
    );
    assert_eq!(text(&c.call_tool_ok("read_env", json!({"name": "LOGAI_E2E_GRANTED"}))), "LOGAI_E2E_GRANTED=yes");
    call_error(&mut c, "read_env", json!({"name": "LOGAI_E2E_SECRET"}), &["(1 variables visible)"], Duration::from_secs(5));
    assert_eq!(text(&c.call_tool_ok("read_file", json!({"path": "/logs/app.log"}))), "granted line\n");
    // Through the SDK's helpers: granted reads work; a path or variable
    // outside the grants says which grant to add.
    assert_eq!(
        text(&c.call_tool_ok("sdk_read", json!({"path": "/logs/app.log", "name": "LOGAI_E2E_GRANTED"}))),
        "granted line\n\nLOGAI_E2E_GRANTED=yes"
    );
    assert_eq!(
        text(&c.call_tool_ok("sdk_read", json!({"path": "/etc/passwd", "name": "LOGAI_E2E_SECRET"}))),
        "/etc/passwd is outside the directories granted to this plugin; to allow it, add dirs = [\"/etc\"] to the plugin's [[plugin]] entry in the logai manifest\n\
         environment variable LOGAI_E2E_SECRET is not visible to this plugin (not granted, or not set where logai runs); to allow it, add env = [\"LOGAI_E2E_SECRET\"] to the plugin's [[plugin]] entry in the logai manifest"
    );
    call_error(&mut c, "write_file", json!({"path": "/logs/x"}), &["cannot write /logs/x"], Duration::from_secs(5));
    assert!(!logs.join("x").exists());
    assert_eq!(
        text(&c.call_tool_ok("connect", json!({"addr": tcp.addr.to_string()}))),
        format!("connected to {}: hello plugin\n", tcp.addr)
    );
    assert_eq!(text(&c.call_tool_ok("http_get", json!({"authority": http.addr.to_string()}))), format!("GET http://{}/ -> 204", http.addr));
    assert!(c.close().success());
}

/// Start `logai serve` expecting it to refuse: returns its stderr.
fn refused_start(manifest: &Path) -> String {
    let mut child = logai_e2e::serve_command(manifest).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("logai serve did not refuse to start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "serve started with a bad manifest");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.is_empty(), "stdout must carry nothing but JSON-RPC: {out:?}");
    reader.join().unwrap()
}

#[test]
fn duplicate_tool_names_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &[entry("hello", "hello-plugin.wasm", ""), entry("team-hello", "hello-plugin.wasm", "")]);
    let err = refused_start(&m);
    assert!(err.contains("tool 'hello' is declared by both plugin 'hello' and plugin 'team-hello'"), "stderr: {err}");
}

#[test]
fn a_broken_tool_spec_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &[entry("hello", "hello-plugin.wasm", ""), entry("broken", "test-badspec.wasm", "")]);
    let err = refused_start(&m);
    assert!(err.contains("plugin 'broken'") && err.contains("tool 'broken'") && err.contains("input schema"), "stderr: {err}");
}

/// The same mistakes, caught before any session: `logai config check` loads
/// every plugin and reports every broken tool with its plugin, and fails;
/// `logai plugins list` fails when a tool is unavailable.
#[test]
fn config_check_and_plugins_list_report_every_broken_tool_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &[entry("hello", "hello-plugin.wasm", ""), entry("broken", "test-badspec.wasm", "")]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(logai_e2e::logai_bin()).args(args).arg("--config").arg(&m).output().unwrap();
        (out.status, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (status, out) = run(&["config", "check"]);
    assert!(!status.success(), "{out}");
    assert!(out.contains("plugin hello: ok (3 tools: hello, word_count, echo_json)"), "{out}");
    for line in [
        "plugin broken: FAILED: 3 broken tool specs:",
        "  - tool 'broken': input schema is not valid JSON",
        "  - tool 'not_a_schema': input schema is not a valid JSON Schema: at /properties/n/type",
        "  - tool 'bad_output': output schema must have \"type\": \"object\"",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    let (status, out) = run(&["plugins", "list"]);
    assert!(!status.success() && out.contains("tools: unavailable: plugin 'broken': 3 broken tool specs"), "{out}");

    let good = manifest(dir.path(), &[entry("hello", "hello-plugin.wasm", "")]);
    for args in [&["config", "check"][..], &["plugins", "list"][..]] {
        let out = std::process::Command::new(logai_e2e::logai_bin()).args(args).arg("--config").arg(&good).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
    }
}
