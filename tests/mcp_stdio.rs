//! `logai serve` over real stdio pipes: garbage and oversized lines, both
//! protocol eras on one stream, validation errors with JSON paths, and a
//! clean exit on EOF. (The protocol edge cases are unit-tested in
//! `host/src/mcp/tests.rs`; this suite checks the wired binary.)

use std::time::Duration;

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
    // Baseline: the spinning component burns about one core.
    std::thread::sleep(Duration::from_millis(500));
    let a = cpu_seconds(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let spinning = cpu_seconds(pid) - a;
    c.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}}));
    std::thread::sleep(Duration::from_millis(200));
    let b = cpu_seconds(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let after = cpu_seconds(pid) - b;
    eprintln!("CPU per second: {spinning:.2} s while spinning, {after:.2} s after notifications/cancelled");
    assert!(spinning > 0.15, "the spin tool did not run? {spinning:.2} s CPU in 1 s");
    assert!(after < 0.25 * spinning, "the call kept running after cancellation: {after:.2} s CPU in 1 s");
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
