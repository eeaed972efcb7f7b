//! The server over an in-memory duplex pipe, with a native [`ToolHost`]
//! stand-in (the plugin runtime is exercised by the end-to-end suites).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::*;
use crate::call::{CallScope, ToolCallError, ToolDescriptor, ToolHost, ToolOutput};

pub(crate) struct TestHost {
    pub calls: AtomicUsize,
    pub running: Arc<AtomicUsize>,
    pub max_running: AtomicUsize,
    pub last_scope: parking_lot::Mutex<Option<CallScope>>,
    pub fillers: usize,
}

impl TestHost {
    pub(crate) fn new() -> Arc<Self> {
        Self::with_fillers(0)
    }
    pub(crate) fn with_fillers(fillers: usize) -> Arc<Self> {
        Arc::new(TestHost {
            calls: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            max_running: AtomicUsize::new(0),
            last_scope: parking_lot::Mutex::new(None),
            fillers,
        })
    }
}

fn tool(name: &str, input: Value, output: Option<Value>) -> ToolDescriptor {
    ToolDescriptor {
        name: name.into(),
        title: Some(format!("The {name} tool")),
        description: format!("test tool {name}"),
        input_schema: input,
        output_schema: output,
        annotations: Some(json!({"readOnlyHint": true})),
        plugin: "test-plugin".into(),
    }
}

impl ToolHost for TestHost {
    fn tools(&self) -> Vec<ToolDescriptor> {
        let mut v = vec![
            tool("echo", json!({"type": "object", "properties": {"text": {"type": "string"}, "max_results": {"type": "integer"}}}), None),
            tool("slow", json!({"type": "object", "properties": {"ms": {"type": "integer"}}, "required": ["ms"]}), None),
            tool("progress", json!({"type": "object"}), None),
            tool(
                "structured",
                json!({"type": "object", "properties": {"bad": {"type": "boolean"}}}),
                Some(json!({"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]})),
            ),
            tool("fail", json!({"type": "object", "properties": {"kind": {"type": "string"}}}), None),
        ];
        for i in 0..self.fillers {
            v.push(tool(&format!("filler_{i:02}"), json!({"type": "object"}), None));
        }
        v
    }

    fn call(
        &self,
        name: &str,
        arguments: Value,
        scope: CallScope,
    ) -> futures_util::future::BoxFuture<'static, Result<ToolOutput, ToolCallError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last_scope.lock() = Some(scope.clone());
        let name = name.to_string();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let running = self.running.clone();
        async move {
            struct Dec(Arc<AtomicUsize>);
            impl Drop for Dec {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _d = Dec(running);
            match name.as_str() {
                "echo" => Ok(ToolOutput {
                    content: vec![json!({"type": "text", "text": arguments.get("text").and_then(Value::as_str).unwrap_or("")})],
                    structured_content: None,
                    is_error: false,
                    ..Default::default()
                }),
                "slow" => {
                    // Deliberately ignores the cancellation token: the server must
                    // stop waiting for it anyway.
                    let ms = arguments["ms"].as_u64().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(ToolOutput { content: vec![json!({"type": "text", "text": "slept"})], ..Default::default() })
                }
                "progress" => {
                    for (p, m) in [(1.0, "one"), (2.0, "two"), (2.0, "again"), (1.5, "back"), (f64::NAN, "nan"), (3.0, "three")] {
                        scope.progress.report(p, Some(3.0), Some(m.into()));
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(ToolOutput { content: vec![json!({"type": "text", "text": "done"})], ..Default::default() })
                }
                "structured" => {
                    let bad = arguments.get("bad").and_then(Value::as_bool).unwrap_or(false);
                    Ok(ToolOutput {
                        content: vec![],
                        structured_content: Some(if bad { json!({"count": "many"}) } else { json!({"count": 3}) }),
                        is_error: false,
                        ..Default::default()
                    })
                }
                "fail" => match arguments.get("kind").and_then(Value::as_str).unwrap_or("") {
                    "args" => Err(ToolCallError::InvalidArguments { path: "$.kind".into(), message: "not today".into() }),
                    "unknown" => Err(ToolCallError::UnknownTool("fail".into())),
                    "tool" => Ok(ToolOutput::error_text("the tool says no")),
                    _ => Err(ToolCallError::Internal("boom".into())),
                },
                _ => Ok(ToolOutput::default()),
            }
        }
        .boxed()
    }
}

pub(crate) struct Client {
    w: DuplexStream,
    lines: tokio::io::Lines<BufReader<DuplexStream>>,
    /// Messages read while waiting for something else.
    pub backlog: Vec<Value>,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(crate) fn start(host: Arc<dyn ToolHost>, opts: ServerOptions) -> Client {
    let (client_w, server_r) = tokio::io::duplex(1 << 16);
    let (server_w, client_r) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(serve(BufReader::new(server_r), server_w, host, opts));
    Client { w: client_w, lines: BufReader::new(client_r).lines(), backlog: Vec::new(), server }
}

impl Client {
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
        self.w.flush().await.unwrap();
    }
    pub(crate) async fn send(&mut self, v: Value) {
        let mut s = v.to_string();
        s.push('\n');
        self.send_raw(s.as_bytes()).await;
    }
    /// The next line the server wrote, parsed. The bound only catches a
    /// hang: calls in these tests legitimately take up to 5 s.
    pub(crate) async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("no message from the server within 60 s")
            .unwrap()
            .expect("server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("server wrote invalid JSON ({e}): {line}"))
    }
    /// The response with this id; anything else read meanwhile goes to the backlog.
    pub(crate) async fn response(&mut self, id: Value) -> Value {
        if let Some(i) = self.backlog.iter().position(|m| m.get("id") == Some(&id) && m.get("method").is_none()) {
            return self.backlog.remove(i);
        }
        loop {
            let m = self.next().await;
            if m.get("id") == Some(&id) && m.get("method").is_none() {
                return m;
            }
            self.backlog.push(m);
        }
    }
    pub(crate) async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        self.response(json!(id)).await
    }
    pub(crate) async fn initialize(&mut self) -> Value {
        let r = self
            .request(
                0,
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "unit", "version": "1.0"}}),
            )
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        r
    }
    /// Close input and wait for the server to return.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        drop(self.w);
        tokio::time::timeout(Duration::from_secs(10), self.server).await.expect("server did not stop")?
    }
    /// Close input, keep reading; returns how the server ended and every
    /// message not read yet (the backlog first).
    pub(crate) async fn close_input_and_read_the_rest(mut self) -> (anyhow::Result<()>, Vec<Value>) {
        drop(self.w);
        let mut out = std::mem::take(&mut self.backlog);
        let read = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                out.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("server wrote invalid JSON ({e}): {line}")));
            }
        };
        tokio::time::timeout(Duration::from_secs(50), read).await.expect("the server did not close its output");
        let served = tokio::time::timeout(Duration::from_secs(10), self.server).await.expect("server did not stop").unwrap();
        (served, out)
    }
}

pub(crate) fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "modern-unit", "version": "2.0"}
    })
}

fn err_code(m: &Value) -> i64 {
    m["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {m}"))
}

#[tokio::test]
async fn initialize_negotiates_versions() {
    let mut c = start(TestHost::new(), ServerOptions { instructions: Some("read logs".into()), ..Default::default() });
    let r = c.initialize().await;
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(r["result"]["serverInfo"]["name"], "logai");
    assert_eq!(r["result"]["instructions"], "read logs");
    assert_eq!(r["result"]["capabilities"]["tools"]["listChanged"], false);
    assert!(r["result"].get("resultType").is_none());
    for (asked, got) in
        [("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"), ("2024-11-05", "2025-11-25"), ("1999-01-01", "2025-11-25")]
    {
        let r = c.request(1, "initialize", json!({"protocolVersion": asked, "capabilities": {}})).await;
        assert_eq!(r["result"]["protocolVersion"], got, "asked {asked}");
    }
    let r = c.request(2, "initialize", json!({"capabilities": {}})).await;
    assert_eq!(err_code(&r), -32602);
    assert_eq!(r["error"]["data"]["path"], "$.params.protocolVersion");
    c.close().await.unwrap();
}

#[tokio::test]
async fn legacy_requests_before_initialize() {
    let mut c = start(TestHost::new(), ServerOptions::default());
    // ping is allowed before initialize
    let r = c.request(1, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    let r = c.request(2, "tools/list", json!({})).await;
    assert_eq!(err_code(&r), -32600);
    assert!(r["error"]["message"].as_str().unwrap().contains("initialize"));
    let r = c.request(3, "tools/call", json!({"name": "echo"})).await;
    assert_eq!(err_code(&r), -32600);
    c.initialize().await;
    let r = c.request(4, "tools/list", json!({})).await;
    assert!(r["result"]["tools"].is_array());
    c.close().await.unwrap();
}

#[tokio::test]
async fn malformed_input_gets_the_right_codes_and_serving_continues() {
    let mut c = start(TestHost::new(), ServerOptions::default());
    let cases: Vec<(&[u8], i64)> = vec![
        (b"{not json\n", -32700),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"\n", -32700), // truncated
        (b"\xff\xfe\x00binary\n", -32700),
        (b"[]\n", -32600),
        (b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n", -32600),
        (b"42\n", -32600),
        (b"\"str\"\n", -32600),
        (b"{\"id\":1,\"method\":\"ping\"}\n", -32600),
        (b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope/nope\"}\n", -32601),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"info\"}}\n", -32601),
    ];
    for (bytes, code) in cases {
        c.send_raw(bytes).await;
        let m = c.next().await;
        assert_eq!(m["jsonrpc"], "2.0");
        assert_eq!(err_code(&m), code, "for {:?}: {m}", String::from_utf8_lossy(bytes));
    }
    // the id is echoed when it can be read, null otherwise
    c.send_raw(b"{\"jsonrpc\":\"1.0\",\"id\":\"abc\",\"method\":\"ping\"}\n").await;
    assert_eq!(c.next().await["id"], "abc");
    c.send_raw(b"{garbage\n").await;
    assert_eq!(c.next().await["id"], Value::Null);
    // blank lines and notifications produce nothing; the next ping is answered
    c.send_raw(b"\n   \n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}\n").await;
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"result\":{}}\n").await; // a client response: ignored
    let r = c.request(99, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    assert!(c.backlog.is_empty(), "unexpected output: {:?}", c.backlog);
    c.close().await.unwrap();
}

#[tokio::test]
async fn oversized_line_is_refused_and_the_next_is_served() {
    let mut c = start(TestHost::new(), ServerOptions { max_message_bytes: 1024 * 1024, ..Default::default() });
    let garbage = vec![b'a'; 10 * 1024 * 1024];
    let send = async {
        c.send_raw(&garbage).await;
        c.send_raw(b"\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\n").await;
    };
    // The server reads while we write; its answer waits in the pipe.
    send.await;
    let m = c.next().await;
    assert_eq!(err_code(&m), -32600);
    assert!(m["error"]["message"].as_str().unwrap().contains("10485760 bytes"), "{m}");
    let m = c.next().await;
    assert_eq!(m["id"], 7);
    assert_eq!(m["result"], json!({}));
    c.close().await.unwrap();
}

#[tokio::test]
async fn oversized_request_is_answered_with_its_own_id_wherever_it_is() {
    let mut c = start(TestHost::new(), ServerOptions { max_message_bytes: 64 * 1024, ..Default::default() });
    c.initialize().await;
    // A decoy id inside params, and a string full of escaped quotes and braces.
    let params = json!({"name": "echo", "arguments": {"text": "\"id\":9,{[".repeat(20_000)}, "_meta": {"id": 9}});
    let before = format!(r#"{{"jsonrpc":"2.0","id":"first","method":"tools/call","params":{params}}}"#);
    let after = format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{params},"id":7}}"#);
    let none = format!(r#"{{"jsonrpc":"2.0","method":"notifications/x","params":{params}}}"#);
    for line in [&before, &after, &none] {
        c.send_raw(format!("{line}\n").as_bytes()).await;
    }
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}\n").await;
    for (line, id) in [(&before, json!("first")), (&after, json!(7)), (&none, Value::Null)] {
        let m = c.next().await;
        assert_eq!(m["id"], id, "{m}");
        assert_eq!(err_code(&m), -32600);
        let message = m["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{} bytes", line.len())) && message.contains("65536 bytes"), "{m}");
    }
    let m = c.next().await;
    assert_eq!((m["id"].clone(), m["result"].clone()), (json!(8), json!({})));
    c.close().await.unwrap();
}

#[tokio::test]
async fn tools_list_paginates_with_opaque_cursors() {
    let mut c = start(TestHost::with_fillers(6), ServerOptions { tools_page_size: 4, ..Default::default() });
    c.initialize().await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let r = c.request(10 + pages, "tools/list", params).await;
        let res = &r["result"];
        for t in res["tools"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
            assert!(t["inputSchema"].is_object());
            assert!(t["description"].is_string());
        }
        pages += 1;
        match res.get("nextCursor").and_then(Value::as_str) {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 11);
    assert_eq!(names[0], "echo");
    // the echo tool's listing carries every field
    let r = c.request(30, "tools/list", json!({})).await;
    let echo = &r["result"]["tools"][0];
    assert_eq!(echo["title"], "The echo tool");
    assert_eq!(echo["annotations"]["readOnlyHint"], true);
    let structured = &r["result"]["tools"][3];
    assert_eq!(structured["outputSchema"]["required"][0], "count");
    for bad in
        [json!("nonsense"), json!(super::tools_list::cursor_for_tests(999)), json!(42), json!(super::tools_list::cursor_for_tests(0))]
    {
        let r = c.request(31, "tools/list", json!({"cursor": bad})).await;
        assert_eq!(err_code(&r), -32602, "{bad}");
        assert_eq!(r["error"]["data"]["path"], "$.params.cursor");
    }
    c.close().await.unwrap();
}

#[tokio::test]
async fn tools_call_validates_and_maps_errors() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions::default());
    c.initialize().await;
    let r = c.request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "hi");
    assert_eq!(r["result"]["isError"], false);
    assert!(r["result"].get("resultType").is_none());

    let r = c.request(2, "tools/call", json!({"name": "echo", "arguments": {"max_results": "5"}})).await;
    assert_eq!(err_code(&r), -32602);
    assert_eq!(r["error"]["message"], "$.arguments.max_results: expected integer, got string");
    assert_eq!(r["error"]["data"]["path"], "$.arguments.max_results");

    let r = c.request(3, "tools/call", json!({"name": "slow", "arguments": {}})).await;
    assert_eq!(r["error"]["data"]["path"], "$.arguments.ms");

    let r = c.request(4, "tools/call", json!({"name": "nope", "arguments": {}})).await;
    assert_eq!(err_code(&r), -32602);
    assert_eq!(r["error"]["message"], "unknown tool 'nope'");

    let r = c.request(5, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(r["error"]["data"]["path"], "$.params.name");
    let r = c.request(6, "tools/call", json!({"name": "echo", "arguments": [1]})).await;
    assert_eq!(r["error"]["message"], "$.arguments: expected object, got array");

    let r = c.request(7, "tools/call", json!({"name": "fail", "arguments": {"kind": "args"}})).await;
    assert_eq!(err_code(&r), -32602);
    assert_eq!(r["error"]["message"], "$.arguments.kind: not today");
    let r = c.request(8, "tools/call", json!({"name": "fail", "arguments": {"kind": "unknown"}})).await;
    assert_eq!(err_code(&r), -32602);
    let r = c.request(9, "tools/call", json!({"name": "fail", "arguments": {"kind": "internal"}})).await;
    assert_eq!(err_code(&r), -32603);
    assert_eq!(r["error"]["message"], "boom");
    let r = c.request(10, "tools/call", json!({"name": "fail", "arguments": {"kind": "tool"}})).await;
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(r["result"]["content"][0]["text"], "the tool says no");

    // structured content: mirrored as text; checked against the output schema
    let r = c.request(11, "tools/call", json!({"name": "structured"})).await;
    assert_eq!(r["result"]["structuredContent"], json!({"count": 3}));
    assert_eq!(r["result"]["content"][0]["type"], "text");
    assert_eq!(serde_json::from_str::<Value>(r["result"]["content"][0]["text"].as_str().unwrap()).unwrap(), json!({"count": 3}));
    let r = c.request(12, "tools/call", json!({"name": "structured", "arguments": {"bad": true}})).await;
    assert_eq!(err_code(&r), -32603);
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("test-plugin") && msg.contains("$.structuredContent.count"), "{msg}");

    // the scope carries identity
    let scope = host.last_scope.lock().clone().unwrap();
    assert_eq!(scope.request_id, "12");
    assert_eq!(scope.protocol_version, "2025-11-25");
    assert_eq!(scope.client.as_deref(), Some("unit/1.0"));
    assert!(!scope.progress.is_active());
    c.close().await.unwrap();
}

#[tokio::test]
async fn modern_era_is_stateless_and_stamped() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions { instructions: Some("hello".into()), ..Default::default() });
    // no initialize at all
    let r = c.request(1, "server/discover", json!({"_meta": modern_meta()})).await;
    let res = &r["result"];
    assert_eq!(res["resultType"], "complete");
    assert_eq!(res["supportedVersions"][0], "2026-07-28");
    assert!(res["supportedVersions"].as_array().unwrap().contains(&json!("2025-11-25")));
    assert_eq!(res["capabilities"]["tools"]["listChanged"], false);
    assert_eq!(res["serverInfo"]["name"], "logai");
    assert_eq!(res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "logai");
    assert_eq!(res["instructions"], "hello");
    assert!(res["ttlMs"].as_u64().unwrap() > 0);
    assert_eq!(res["cacheScope"], "public");
    // discover works without an envelope too (the dual-era probe)
    let r = c.request(2, "server/discover", json!({})).await;
    assert_eq!(r["result"]["resultType"], "complete");

    let r = c.request(3, "tools/list", json!({"_meta": modern_meta()})).await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(r["result"]["ttlMs"].is_u64());
    let mut meta = modern_meta();
    meta["traceparent"] = json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let r = c.request(4, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}, "_meta": meta})).await;
    assert_eq!(r["result"]["resultType"], "complete");
    assert_eq!(r["result"]["content"][0]["text"], "x");
    let scope = host.last_scope.lock().clone().unwrap();
    assert_eq!(scope.protocol_version, "2026-07-28");
    assert_eq!(scope.client.as_deref(), Some("modern-unit/2.0"));
    assert_eq!(scope.traceparent.as_deref(), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));

    // unsupported version
    let mut meta = modern_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let r = c.request(5, "tools/list", json!({"_meta": meta})).await;
    assert_eq!(err_code(&r), -32022);
    assert_eq!(r["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(r["error"]["data"]["supported"], json!(["2026-07-28"]));
    // missing capabilities / version
    let r = c.request(6, "tools/list", json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}})).await;
    assert_eq!(err_code(&r), -32602);
    assert!(r["error"]["data"]["path"].as_str().unwrap().contains("clientCapabilities"));
    let r = c.request(7, "tools/list", json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}})).await;
    assert_eq!(err_code(&r), -32602);
    assert!(r["error"]["data"]["path"].as_str().unwrap().contains("protocolVersion"));
    // ping does not exist in 2026-07-28
    let r = c.request(8, "ping", json!({"_meta": modern_meta()})).await;
    assert_eq!(err_code(&r), -32601);
    // a legacy request on the same stream still needs initialize
    let r = c.request(9, "tools/list", json!({})).await;
    assert_eq!(err_code(&r), -32600);
    // and both eras coexist after it
    c.initialize().await;
    let r = c.request(10, "tools/list", json!({})).await;
    assert!(r["result"].get("resultType").is_none());
    let r = c.request(11, "tools/list", json!({"_meta": modern_meta()})).await;
    assert_eq!(r["result"]["resultType"], "complete");
    c.close().await.unwrap();
}

#[tokio::test]
async fn cancellation_stops_a_running_call_and_sends_nothing() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions::default());
    c.initialize().await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 30000}}})).await;
    // wait until it runs
    let t0 = Instant::now();
    while host.running.load(Ordering::SeqCst) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(25));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cancelled_at = Instant::now();
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "user"}})).await;
    while host.running.load(Ordering::SeqCst) != 0 {
        assert!(cancelled_at.elapsed() < Duration::from_secs(25));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = cancelled_at.elapsed();
    eprintln!("call stopped {took:?} after notifications/cancelled");
    // The slow call sleeps far longer: stopping it is what is checked, not how fast.
    assert!(took < Duration::from_secs(30), "cancel took {took:?}");
    // no response for the cancelled request: the next thing we see is the ping's answer
    let r = c.request(2, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    assert!(c.backlog.is_empty(), "a cancelled call must not be answered: {:?}", c.backlog);
    // the id is free again
    let r = c.request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "again"}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "again");
    c.close().await.unwrap();
}

#[tokio::test]
async fn ping_and_other_calls_are_answered_while_a_call_sleeps() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions { max_concurrent_calls: 2, ..Default::default() });
    c.initialize().await;
    c.send(json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 5000}}})).await;
    while host.running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t0 = Instant::now();
    let r = c.request(2, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    let r = c.request(3, "tools/call", json!({"name": "echo", "arguments": {"text": "fast"}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "fast");
    // Answered while the slow call still runs (it sleeps 5 s): not behind it.
    assert_eq!(host.running.load(Ordering::SeqCst), 1, "blocked behind the slow call: {:?}", t0.elapsed());
    // a duplicate in-flight id is refused
    let r = c.request_raw_id(json!("slow"), "tools/call", json!({"name": "echo"})).await;
    assert_eq!(err_code(&r), -32600);
    let r = c.response(json!("slow")).await;
    assert_eq!(r["result"]["content"][0]["text"], "slept");
    c.close().await.unwrap();
}

impl Client {
    async fn request_raw_id(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        self.response(id).await
    }
}

#[tokio::test]
async fn concurrent_calls_are_capped_not_refused() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions { max_concurrent_calls: 2, ..Default::default() });
    c.initialize().await;
    for i in 0..6 {
        c.send(json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": 50}}})).await;
    }
    for i in 0..6 {
        let r = c.response(json!(100 + i)).await;
        assert_eq!(r["result"]["content"][0]["text"], "slept");
    }
    assert_eq!(host.max_running.load(Ordering::SeqCst), 2);
    c.close().await.unwrap();
}

#[tokio::test]
async fn progress_is_forwarded_monotonic_and_before_the_response() {
    let mut c = start(TestHost::new(), ServerOptions::default());
    c.initialize().await;
    let r = c.request(1, "tools/call", json!({"name": "progress", "_meta": {"progressToken": "tok-1"}})).await;
    assert_eq!(r["result"]["content"][0]["text"], "done");
    let notes: Vec<&Value> = c.backlog.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(notes.len(), 5, "{notes:?}"); // the NaN report is dropped
    let mut last = f64::MIN;
    for n in &notes {
        assert_eq!(n["params"]["progressToken"], "tok-1");
        assert_eq!(n["params"]["total"], 3.0);
        let p = n["params"]["progress"].as_f64().unwrap();
        assert!(p > last, "progress went from {last} to {p}");
        last = p;
    }
    assert_eq!(notes[0]["params"]["message"], "one");
    assert_eq!(notes[4]["params"]["progress"], 3.0);
    // without a token: no notifications
    c.backlog.clear();
    let r = c.request(2, "tools/call", json!({"name": "progress"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "done");
    assert!(c.backlog.is_empty());
    c.close().await.unwrap();
}

/// The server over in-memory pipes with a stand-in for the stdout probe.
fn start_with_probe(host: Arc<dyn ToolHost>, opts: ServerOptions, stdout_gone: Arc<AtomicBool>) -> Client {
    let (client_w, server_r) = tokio::io::duplex(1 << 16);
    let (server_w, client_r) = tokio::io::duplex(1 << 16);
    let probe: super::writer::OutputProbe = Arc::new(move || stdout_gone.load(Ordering::SeqCst));
    let server = tokio::spawn(super::server::run(BufReader::new(server_r), server_w, host, opts, Some(probe)));
    Client { w: client_w, lines: BufReader::new(client_r).lines(), backlog: Vec::new(), server }
}

/// `slow` calls (ids 1..=n) of `ms` each, and waits until they all run.
async fn start_slow_calls(c: &mut Client, host: &TestHost, n: usize, ms: u64) {
    c.initialize().await;
    for id in 1..=n {
        c.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "slow", "arguments": {"ms": ms}}})).await;
    }
    while host.running.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// The end-of-input tests bound the exit by the calls' own length (60 s) or
// the grace (60 s): an exit well inside them shows nothing waited for either.

#[tokio::test]
async fn eof_lets_running_calls_finish_and_answers_them() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions { shutdown_grace: Duration::from_secs(60), ..Default::default() });
    start_slow_calls(&mut c, &host, 2, 200).await;
    let t0 = Instant::now();
    let (served, out) = c.close_input_and_read_the_rest().await;
    served.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30), "waited for the grace, not for the calls");
    for id in [1, 2] {
        let m = out.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no answer for id {id}: {out:?}"));
        assert_eq!(m["result"]["content"][0]["text"], "slept", "{m}");
    }
}

#[tokio::test]
async fn eof_cancels_calls_that_outlive_the_grace_and_answers_them() {
    let host = TestHost::new();
    let mut c = start(host.clone(), ServerOptions { shutdown_grace: Duration::from_millis(200), ..Default::default() });
    start_slow_calls(&mut c, &host, 1, 60_000).await;
    let t0 = Instant::now();
    let (served, out) = c.close_input_and_read_the_rest().await;
    served.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(host.running.load(Ordering::SeqCst), 0);
    let m = out.iter().find(|m| m["id"] == 1).unwrap_or_else(|| panic!("no answer for the cut call: {out:?}"));
    assert_eq!(err_code(m), -32603);
    assert!(m["error"]["message"].as_str().unwrap().contains("the session is ending"), "{m}");
}

#[tokio::test]
async fn eof_with_stdout_gone_cancels_at_once() {
    let host = TestHost::new();
    let gone = Arc::new(AtomicBool::new(false));
    let opts = ServerOptions { shutdown_grace: Duration::from_secs(60), ..Default::default() };
    let mut c = start_with_probe(host.clone(), opts, gone.clone());
    start_slow_calls(&mut c, &host, 1, 60_000).await;
    gone.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    c.close().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30), "waited for the grace with no one to answer");
    assert_eq!(host.running.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn stdout_closing_during_the_grace_cancels_what_runs() {
    let host = TestHost::new();
    let gone = Arc::new(AtomicBool::new(false));
    let opts = ServerOptions { shutdown_grace: Duration::from_secs(60), ..Default::default() };
    let mut c = start_with_probe(host.clone(), opts, gone.clone());
    start_slow_calls(&mut c, &host, 1, 60_000).await;
    let server_done = async {
        let t0 = Instant::now();
        c.close().await.unwrap();
        t0.elapsed()
    };
    let close_stdout_later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        gone.store(true, Ordering::SeqCst);
    };
    let (took, ()) = tokio::join!(server_done, close_stdout_later);
    assert!(took < Duration::from_secs(30), "waited for the grace after stdout closed");
    assert_eq!(host.running.load(Ordering::SeqCst), 0);
}
