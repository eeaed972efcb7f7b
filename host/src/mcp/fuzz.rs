//! Property tests of the reader and dispatcher: whatever arrives on stdin
//! (random bytes, random JSON, near-valid requests, lines far over the size
//! limit), every line written is a valid JSON-RPC 2.0 message, nothing
//! panics, and a `ping` sent after the garbage is answered exactly once.
//! An oversized request is answered with its own top-level id, wherever the
//! id is and however the line is cut into reads: the oracle is the id
//! `serde_json` finds when it parses the whole line.
//! Bounded: a fixed number of cases with small inputs (runs in a few
//! seconds inside `cargo test`).

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::id_scan::MAX_ID_TEXT;
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
        oversized_request().prop_map(String::into_bytes),
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

/// A string that is hard on a streaming scan once serialized: quotes and
/// backslashes (escaped), braces, brackets, commas, `"id":` spelled out.
fn tricky_text(min_len: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"id\":1"),
        Just("\""),
        Just("\\"),
        Just("\\\""),
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(","),
        Just(":"),
        Just("id"),
        Just("é"),
        Just("\n"),
        Just("xxxxxxxxxxxxxxxx"),
    ];
    prop::collection::vec(piece, min_len / 4..min_len / 2).prop_map(move |v| {
        let mut s = v.concat();
        while s.len() < min_len {
            s.push_str("pad-");
        }
        s
    })
}

/// The text of an `id` value: valid ids, ids that are not valid, and ids too
/// long to keep.
fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        ".{0,20}".prop_map(|s| Value::from(s).to_string()),
        r#"["\\{}:,a-z]{0,12}"#.prop_map(|s| Value::from(s).to_string()),
        Just(format!("\"{}\"", "k".repeat(MAX_ID_TEXT))),
        json_value().prop_map(|v| v.to_string()),
    ]
}

/// One request line over `LIMIT`: its members in any order, a huge `params`
/// holding decoy `id`s, the top-level `id` present, absent or repeated.
fn oversized_request() -> impl Strategy<Value = String> {
    let params = (tricky_text(LIMIT + 1), json_value(), id_text()).prop_map(|(text, extra, decoy)| {
        let decoy: Value = serde_json::from_str(&decoy).unwrap();
        json!({"name": "echo", "id": decoy.clone(), "arguments": {"text": text, "more": [extra, {"id": decoy}]}}).to_string()
    });
    let ids = prop::collection::vec((id_text(), any::<prop::sample::Index>()), 0..3);
    let colon = prop_oneof![Just(":"), Just(" : "), Just(":\t")];
    (params, ids, colon).prop_map(|(params, ids, colon)| {
        let mut members =
            vec![r#""jsonrpc":"2.0""#.to_string(), r#""method":"tools/call""#.to_string(), format!(r#""params"{colon}{params}"#)];
        for (id, at) in ids {
            // before or after params, anywhere among the members
            let i = at.index(members.len() + 1);
            members.insert(i, format!(r#""id"{colon}{id}"#));
        }
        format!("{{{}}}", members.join(", "))
    })
}

/// The id the server must answer `line` with, from parsing it whole.
fn expected_id(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).expect("the generated line is valid JSON");
    match v.get("id") {
        Some(id @ Value::String(_)) if id.to_string().len() <= MAX_ID_TEXT => id.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
        _ => Value::Null,
    }
}

fn run_oversized_case(line: String, read_size: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        assert!(line.len() > LIMIT);
        let want = expected_id(&line);
        let input = format!("{line}\n{{\"jsonrpc\":\"2.0\",\"id\":\"final-ping\",\"method\":\"ping\"}}\n");
        // Small reads cut the id, strings and escapes at every possible place.
        let reader = tokio::io::BufReader::with_capacity(read_size, input.as_bytes());
        let (server_w, mut client_r) = tokio::io::duplex(1 << 16);
        let opts = ServerOptions { max_message_bytes: LIMIT, ..ServerOptions::default() };
        serve(reader, server_w, TestHost::new(), opts).await.unwrap();
        let mut out = String::new();
        client_r.read_to_string(&mut out).await.unwrap();
        let msgs: Vec<Value> = out.lines().map(check_message).collect();
        assert_eq!(msgs.len(), 2, "{out}");
        assert_eq!(msgs[0]["error"]["code"], -32600, "{out}");
        assert_eq!(msgs[0]["id"], want, "line: {line}");
        assert_eq!(msgs[1]["id"], "final-ping", "{out}");
    });
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

    #[test]
    fn oversized_request_is_answered_with_its_top_level_id(line in oversized_request(), read_size in 1usize..64) {
        run_oversized_case(line, read_size);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Whenever the quick reading of a plain `ping` takes a line, it found
    /// the same request, with the same id, as the general path, and writes
    /// the same bytes for it.
    #[test]
    fn the_quick_ping_agrees_with_the_general_path(req in near_valid_request(), spaced in any::<bool>()) {
        let text = if spaced { serde_json::to_string_pretty(&req).unwrap().replace('\n', " ") } else { req.to_string() };
        let (quick, general) = super::jsonrpc::ping_readings(&text);
        if let Some(id) = &quick {
            prop_assert_eq!(&quick, &general, "{}", text);
            let (fast, slow) = super::jsonrpc::ping_answers(id);
            prop_assert_eq!(fast, slow);
        }
    }
}

#[test]
fn plain_pings_take_the_quick_path_and_others_do_not() {
    for (line, id) in [
        (r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#, json!(7)),
        (r#"{ "method": "ping", "id": "a\u0041\"", "jsonrpc": "2.0", "params": {} }"#, json!("aA\"")),
        (r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping","params":null}"#, json!(u64::MAX)),
    ] {
        assert_eq!(super::jsonrpc::ping_readings(line), (Some(id.clone()), Some(id.clone())), "{line}");
        let (fast, slow) = super::jsonrpc::ping_answers(&id);
        assert_eq!(fast, slow);
    }
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":0}"#,
        r#"{"jsonrpc":"2.0","method":"ping"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
    ] {
        assert_eq!(super::jsonrpc::ping_readings(line).0, None, "{line}");
    }
}
