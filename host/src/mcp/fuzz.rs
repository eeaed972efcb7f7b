//! Property test of the reader and dispatcher: whatever arrives on stdin
//! (random bytes, random JSON, near-valid requests, lines far over the size
//! limit), every line written is a valid JSON-RPC 2.0 message, nothing
//! panics, and a `ping` sent after the garbage is answered exactly once.
//! Bounded: a fixed number of cases with small inputs (runs in a few
//! seconds inside `cargo test`).

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::tests::TestHost;
use super::{serve, ServerOptions};

const LIMIT: usize = 4096;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_/]{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn near_valid_request() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        Just("initialize"),
        Just("ping"),
        Just("tools/list"),
        Just("tools/call"),
        Just("server/discover"),
        Just("notifications/cancelled"),
        Just("notifications/initialized"),
        Just("logging/setLevel"),
        Just("x/y"),
    ];
    let id = prop_oneof![Just(None), (0i64..20).prop_map(|i| Some(json!(i))), json_value().prop_map(Some)];
    let params = prop_oneof![
        Just(None),
        json_value().prop_map(Some),
        (prop_oneof![Just("echo"), Just("slow"), Just("progress"), Just("structured"), Just("fail"), Just("nope")], json_value())
            .prop_map(|(n, a)| Some(json!({"name": n, "arguments": a, "_meta": {"progressToken": 1}}))),
        (json_value(), any::<bool>()).prop_map(|(v, modern)| Some(if modern {
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": v, "io.modelcontextprotocol/clientCapabilities": {}}})
        } else {
            json!({"protocolVersion": v, "capabilities": {}, "cursor": v})
        })),
    ];
    (method, id, params).prop_map(|(m, id, params)| {
        let mut o = json!({"jsonrpc": "2.0", "method": m});
        if let Some(id) = id {
            o["id"] = id;
        }
        if let Some(p) = params {
            o["params"] = p;
        }
        o
    })
}

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        near_valid_request().prop_map(|v| v.to_string().into_bytes()),
        (1usize..3 * LIMIT).prop_map(|n| vec![b'{'; n]),
    ]
}

fn check_message(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid JSON written ({e}): {line}"));
    assert_eq!(v["jsonrpc"], "2.0", "{line}");
    let is_notification = v.get("method").is_some_and(Value::is_string) && v.get("id").is_none();
    if !is_notification {
        let id = v.get("id").unwrap_or_else(|| panic!("response without id: {line}"));
        assert!(id.is_string() || id.is_i64() || id.is_u64() || id.is_null(), "{line}");
        match (v.get("result"), v.get("error")) {
            (Some(r), None) => assert!(r.is_object(), "{line}"),
            (None, Some(e)) => {
                assert!(e["code"].is_i64(), "{line}");
                assert!(e["message"].is_string(), "{line}");
            }
            _ => panic!("neither result nor error: {line}"),
        }
    }
    v
}

fn run_case(chunks: Vec<Vec<u8>>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let mut input = Vec::new();
        for c in chunks {
            input.extend_from_slice(&c);
            input.push(b'\n');
        }
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":\"final-ping\",\"method\":\"ping\"}\n");
        let (server_w, mut client_r) = tokio::io::duplex(1 << 16);
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            client_r.read_to_end(&mut out).await.unwrap();
            out
        });
        let opts = ServerOptions { max_message_bytes: LIMIT, shutdown_grace: Duration::from_millis(100), ..ServerOptions::default() };
        tokio::time::timeout(Duration::from_secs(20), serve(&input[..], server_w, TestHost::new(), opts))
            .await
            .expect("serve did not finish")
            .unwrap();
        let out = reader.await.unwrap();
        let text = String::from_utf8(out).expect("output is UTF-8");
        let mut final_answers = 0;
        for line in text.lines() {
            let v = check_message(line);
            if v["id"] == "final-ping" {
                assert_eq!(v["result"], json!({}), "{line}");
                final_answers += 1;
            }
        }
        assert_eq!(final_answers, 1, "the ping after the garbage must be answered once");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn any_input_yields_valid_jsonrpc_and_serving_continues(chunks in prop::collection::vec(chunk(), 0..12)) {
        run_case(chunks);
    }
}
