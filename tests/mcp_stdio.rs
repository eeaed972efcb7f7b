//! `logai serve` over real stdio pipes: garbage and oversized lines, both
//! protocol eras on one stream, validation errors with JSON paths, and a
//! clean exit on EOF. (The protocol edge cases are unit-tested in
//! `host/src/mcp/tests.rs`; this suite checks the wired binary.)

use std::time::{Duration, Instant};

use logai_e2e::mcp_client::McpClient;
use serde_json::{json, Value};

fn hello_server() -> (tempfile::TempDir, McpClient) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = logai_e2e::write_manifest(dir.path(), &[("hello", "hello-plugin.wasm")], "");
    let client = McpClient::serve(&manifest, &[]);
    (dir, client)
}

fn code(resp: &Value) -> i64 {
    resp["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error: {resp}"))
}

#[test]
fn garbage_then_service_continues() {
    let (_dir, mut c) = hello_server();
    // invalid UTF-8, truncated JSON, a batch, a non-request
    for (bytes, expected) in [
        (&b"\xff\xfe\xfd\n"[..], -32700),
        (&b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\n"[..], -32700),
        (&b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n"[..], -32600),
        (&b"{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}\n"[..], -32600),
    ] {
        c.send_raw(bytes);
        let m = c.recv(Duration::from_secs(30)).expect("an error response");
        assert_eq!(code(&m), expected, "{m}");
        assert_eq!(m["id"], Value::Null);
    }
    // a 10 MB line: refused without buffering it, and the next line is served
    let mut big = vec![b'x'; 10 * 1024 * 1024];
    big.push(b'\n');
    c.send_raw(&big);
    let m = c.recv(Duration::from_secs(60)).expect("an error for the oversized line");
    assert_eq!(code(&m), -32600, "{m}");
    let pong = c.request("ping", json!({}));
    assert_eq!(pong["result"], json!({}));
    assert!(c.close().success());
}

#[test]
fn both_eras_on_one_stream() {
    let (_dir, mut c) = hello_server();
    // 2026-07-28 first, without initialize
    let disc = c.request("server/discover", json!({"_meta": McpClient::modern_meta()}));
    assert_eq!(disc["result"]["resultType"], "complete", "{disc}");
    assert!(disc["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));
    let list = c.request("tools/list", json!({"_meta": McpClient::modern_meta()}));
    assert!(list["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "hello"), "{list}");
    let call = c.request("tools/call", json!({"name": "hello", "arguments": {"name": "Modern"}, "_meta": McpClient::modern_meta()}));
    assert_eq!(call["result"]["resultType"], "complete");
    assert!(call["result"]["content"][0]["text"].as_str().unwrap().contains("Hello, Modern!"), "{call}");
    let mut bad = McpClient::modern_meta();
    bad["io.modelcontextprotocol/protocolVersion"] = json!("2030-01-01");
    let r = c.request("tools/list", json!({"_meta": bad}));
    assert_eq!(code(&r), -32022);
    assert_eq!(r["error"]["data"]["requested"], "2030-01-01");

    // legacy before initialize is refused; ping is not
    let r = c.request("tools/list", json!({}));
    assert_eq!(code(&r), -32600);
    assert_eq!(c.request("ping", json!({}))["result"], json!({}));
    let init = c.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let r = c.call_tool("hello", json!({"name": 5}));
    assert_eq!(code(&r), -32602);
    assert_eq!(r["error"]["data"]["path"], "$.arguments.name", "{r}");
    let ok = c.call_tool_ok("hello", json!({"name": "Legacy"}));
    assert!(ok["content"][0]["text"].as_str().unwrap().contains("Hello, Legacy!"));
    assert!(ok.get("resultType").is_none());
    assert!(c.close().success());
}

/// CPU seconds (user + system) the process has used so far (Linux `/proc`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // fields after the parenthesised command name; utime and stime are the 14th and 15th
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn cancelled_call_stops_running_and_gets_no_response() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = logai_e2e::write_manifest(dir.path(), &[("loop", "test-loop.wasm")], "");
    let mut c = McpClient::serve(&manifest, &[]);
    c.initialize();
    let pid = c.pid();
    let id = c.next_id();
    c.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "spin", "arguments": {}}}));
    // It runs: it has burnt 0.3 s of CPU, however long a loaded machine
    // takes to give it that (the bound only catches a hang).
    let (start, t) = (cpu_seconds(pid), Instant::now());
    while cpu_seconds(pid) - start < 0.3 {
        assert!(t.elapsed() < Duration::from_secs(60), "the spin tool did not run: {:.2} s CPU in 60 s", cpu_seconds(pid) - start);
        std::thread::sleep(Duration::from_millis(20));
    }
    c.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}));
    // It stops: a second in which the process is nearly idle comes (a
    // spinning guest takes all the CPU it is given, so it never would).
    let t = Instant::now();
    loop {
        let b = cpu_seconds(pid);
        std::thread::sleep(Duration::from_millis(1000));
        let after = cpu_seconds(pid) - b;
        if after < 0.1 {
            eprintln!("CPU in 1 s after notifications/cancelled: {after:.2} s ({:.1} s after it)", t.elapsed().as_secs_f64());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the call kept running after cancellation: {after:.2} s CPU in the last second");
    }
    // no response for the cancelled id; the session goes on
    let pong = c.request("ping", json!({}));
    assert_eq!(pong["result"], json!({}));
    while let Some(m) = c.recv(Duration::from_millis(100)) {
        assert_ne!(m.get("id"), Some(&json!(id)), "a cancelled request was answered: {m}");
    }
    let quick = c.call_tool_ok("quick", json!({}));
    assert_eq!(quick["isError"], false);
    assert!(c.close().success());
}

#[test]
fn oversized_request_is_answered_with_its_id_then_the_next_line() {
    let (_dir, mut c) = hello_server();
    c.initialize();
    // A 10 MB tools/call written as the TypeScript SDK writes it: id after params.
    let line = format!(
        r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"hello","arguments":{{"name":"{}","id":1}}}},"id":7}}"#,
        "\\\"x".repeat(10 * 1024 * 1024 / 3)
    );
    c.send_raw(format!("{line}\n").as_bytes());
    c.send(&json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}));
    let m = c.recv(Duration::from_secs(60)).expect("an answer for the oversized line");
    assert_eq!(m["id"], 7, "{m}");
    assert_eq!(code(&m), -32600, "{m}");
    let message = m["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("message of {} bytes", line.len())), "{m}");
    assert!(message.contains("limit of 8388608 bytes"), "{m}");
    let pong = c.recv(Duration::from_secs(60)).expect("the ping's answer");
    assert_eq!((pong["id"].clone(), pong["result"].clone()), (json!(8), json!({})), "{pong}");
    assert!(c.close().success());
}

/// A manifest with `plugins`, the loop plugin's call timeout at 120 s and
/// the given shutdown grace.
fn manifest_with_grace(dir: &std::path::Path, plugins: &[(&str, &str)], grace_ms: u64) -> std::path::PathBuf {
    let path = logai_e2e::write_manifest(dir, plugins, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("[server]\n", &format!("[server]\nshutdown_grace_ms = {grace_ms}\n"), 1)
        .replacen("name = \"loop\"\n", "name = \"loop\"\ntimeout_ms = 120000\n", 1);
    std::fs::write(&path, text).unwrap();
    path
}

/// `logai serve` on plain pipes, as `printf ... | logai serve` runs it; its
/// log goes to a file.
struct Piped {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
    log: std::path::PathBuf,
}

impl Piped {
    fn start(manifest: &std::path::Path) -> Piped {
        use std::process::Stdio;
        let log = manifest.with_file_name("stderr.log");
        let mut child = logai_e2e::serve_command(manifest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn logai serve");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(std::io::BufReader::new);
        Piped { child, stdin, stdout, log }
    }

    fn write(&mut self, msgs: &[Value]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        for m in msgs {
            writeln!(stdin, "{m}").unwrap();
        }
        stdin.flush().unwrap();
    }

    fn read_message(&mut self) -> Value {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line:?}"))
    }

    /// Close stdin; read stdout to its end (unless it was closed) and wait
    /// for the exit, at most 50 s. Returns the exit status, every message
    /// written after stdin closed, the time from closing stdin to the exit,
    /// and the log.
    fn close_stdin(mut self) -> (std::process::ExitStatus, Vec<Value>, Duration, String) {
        use std::io::Read;
        let closed = std::time::Instant::now();
        drop(self.stdin.take());
        let reader = self.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                let mut text = String::new();
                out.read_to_string(&mut text).unwrap();
                text
            })
        });
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if closed.elapsed() > Duration::from_secs(50) {
                let _ = self.child.kill();
                panic!("logai serve did not exit within 50 s of EOF; log:\n{}", std::fs::read_to_string(&self.log).unwrap());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = closed.elapsed();
        let text = reader.map(|r| r.join().unwrap()).unwrap_or_default();
        let msgs = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {l:?}")))
            .collect();
        (status, msgs, took, std::fs::read_to_string(&self.log).unwrap())
    }
}

fn initialize_msgs() -> [Value; 2] {
    [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "printf", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]
}

fn call(id: i64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

fn answer(msgs: &[Value], id: i64) -> &Value {
    msgs.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no answer for id {id}: {msgs:?}"))
}

// The end-of-input tests bound the exit by the grace or the call's timeout
// (60 s and 120 s): an exit well inside them shows nothing waited for them.

#[test]
fn piped_calls_are_answered_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with_grace(dir.path(), &[("hello", "hello-plugin.wasm"), ("loop", "test-loop.wasm")], 60_000);
    let mut p = Piped::start(&manifest);
    // printf '<initialize>\n<initialized>\n<hello>\n<sleep 2 s>\n' | logai serve
    let [init, initialized] = initialize_msgs();
    p.write(&[init, initialized, call(2, "hello", json!({"name": "pipe"})), call(3, "sleep", json!({"ms": 2000}))]);
    let (status, msgs, took, log) = p.close_stdin();
    assert!(status.success(), "{status:?}; log:\n{log}");
    let hello = answer(&msgs, 2);
    assert!(hello["result"]["content"][0]["text"].as_str().unwrap().contains("Hello, pipe!"), "{hello}");
    let slept = answer(&msgs, 3);
    assert_eq!(slept["result"]["content"][0]["text"], "slept 2000 ms", "{slept}");
    assert!(took < Duration::from_secs(30), "waited for the grace ({took:?}), not for the calls");
    assert!(log.contains("stdin closed; waiting up to 60000 ms for"), "{log}");
    assert!(log.contains("all calls answered"), "{log}");
    assert!(!log.contains("cancel"), "{log}");
}

#[test]
fn a_call_outliving_the_grace_is_cancelled_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with_grace(dir.path(), &[("loop", "test-loop.wasm")], 300);
    let mut p = Piped::start(&manifest);
    let [init, initialized] = initialize_msgs();
    p.write(&[init, initialized, call(2, "spin", json!({}))]);
    let (status, msgs, took, log) = p.close_stdin();
    assert!(status.success(), "{status:?}; log:\n{log}");
    let cut = answer(&msgs, 2);
    assert_eq!(code(cut), -32603, "{cut}");
    assert!(cut["error"]["message"].as_str().unwrap().contains("the session is ending"), "{cut}");
    assert!(took < Duration::from_secs(30), "exit took {took:?}: the spinning call was not cut after the grace");
    assert!(log.contains("stdin closed; waiting up to 300 ms for 1 running call(s)"), "{log}");
    assert!(log.contains("cancelled 1 call(s) still running after the grace of 300 ms"), "{log}");
}

#[test]
fn with_stdout_closed_too_everything_is_cancelled_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with_grace(dir.path(), &[("loop", "test-loop.wasm")], 60_000);
    let mut p = Piped::start(&manifest);
    let [init, initialized] = initialize_msgs();
    p.write(&[init]);
    assert!(p.read_message()["result"].is_object());
    p.write(&[initialized, call(2, "spin", json!({}))]);
    // The client goes away: stdout first, then stdin.
    drop(p.stdout.take());
    let (status, _, took, log) = p.close_stdin();
    assert!(status.success(), "{status:?}; log:\n{log}");
    assert!(took < Duration::from_secs(30), "exit took {took:?}: it waited for the grace with no one to answer");
    assert!(
        log.contains("stdin and stdout closed; cancelled 1 of 1 running call(s) at once")
            || log.contains("stdout closed while waiting; cancelled 1 call(s)"),
        "{log}"
    );
}

/// stdout is switched to non-blocking for the session (answers are written
/// by whoever makes them, never waiting for the client) and switched back
/// when the session ends: the pipe's open file may be shared with whatever
/// writes to it next (`(logai serve; echo done) | ...`).
#[test]
fn stdout_is_blocking_again_after_the_session() {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let nonblocking = |fd: i32| {
        // SAFETY: F_GETFL on a descriptor this test holds open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert!(flags >= 0);
        flags & libc::O_NONBLOCK != 0
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = logai_e2e::write_manifest(dir.path(), &[("hello", "hello-plugin.wasm")], "");
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = logai_e2e::serve_command(&manifest)
        .stdin(std::process::Stdio::piped())
        .stdout(writer.try_clone().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(reader).lines();
    stdin.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").unwrap();
    let answer: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
    assert!(nonblocking(writer.as_raw_fd()), "stdout was not switched for the session");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(!nonblocking(writer.as_raw_fd()), "stdout was left non-blocking");
}
