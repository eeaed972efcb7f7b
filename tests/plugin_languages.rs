//! The plugin contract, kept alike by Rust, Python (componentize-py) and
//! JavaScript (ComponentizeJS) plugins: each language's `hello` example
//! (examples/hello-plugin, hello-python, hello-js) and contract probes
//! (tests/plugins/probe, probe-python, probe-js) are served by a real
//! `logai serve` and checked for the same tools/list, the same answers, the
//! host's schema validation, a denied read naming its grant, and a timeout.
//! All suites share the precompile cache under the target directory, so a
//! run compiles each component once.

use std::path::{Path, PathBuf};

use logai_e2e::{plugin_dist, target_dir, McpClient};
use serde_json::{json, Value};

struct Lang {
    hello: &'static str,
    probe: &'static str,
}

const RUST: Lang = Lang { hello: "hello-plugin.wasm", probe: "test-probe.wasm" };
const PYTHON: Lang = Lang { hello: "hello-python.wasm", probe: "test-probe-python.wasm" };
const JS: Lang = Lang { hello: "hello-js.wasm", probe: "test-probe-js.wasm" };

fn component(file: &str) -> PathBuf {
    let c = plugin_dist().join(file);
    assert!(c.is_file(), "{} is missing: run scripts/install-test-deps, then scripts/build-plugins", c.display());
    c
}

/// A session with the language's hello example and its probes (the probes
/// granted `granted/` of `dir`, stopped after 500 ms).
fn serve(dir: &Path, lang: &Lang) -> McpClient {
    let granted = dir.join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    let text = format!(
        "[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\nlog_level = \"info\"\n\n\
         [[plugin]]\nname = \"hello\"\ncomponent = \"{}\"\n\n\
         [[plugin]]\nname = \"probe\"\ncomponent = \"{}\"\ntimeout_ms = 500\ndirs = [\"{}\"]\n",
        dir.join("sessions").display(),
        target_dir().join("logai-test-cache").display(),
        component(lang.hello).display(),
        component(lang.probe).display(),
        granted.display()
    );
    let manifest = dir.join("logai.toml");
    std::fs::write(&manifest, text).unwrap();
    // Compile first, as an operator's `logai precompile` does: an 18 MB Python or JS component
    // compiles for tens of seconds on a loaded 2-core machine, and `serve` loads it before it
    // reads `initialize`, which the client's hang guard would then judge.
    let status = std::process::Command::new(logai_e2e::logai_bin()).arg("precompile").arg("--config").arg(&manifest).status().unwrap();
    assert!(status.success(), "logai precompile --config {}: {status}", manifest.display());
    let mut c = McpClient::serve(&manifest, &[]);
    c.initialize();
    c
}

fn text(result: &Value) -> String {
    result["content"].as_array().map(|a| a.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

fn tools_list(c: &mut McpClient) -> Vec<Value> {
    let resp = c.request("tools/list", json!({}));
    resp["result"]["tools"].as_array().unwrap_or_else(|| panic!("tools/list: {resp}")).clone()
}

fn lists_the_same_tools(c: &mut McpClient) {
    let tools = tools_list(c);
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hello", "word_count", "echo_json", "probe_read", "probe_spin"]);
    assert_eq!(
        tools[0]["inputSchema"],
        json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet." },
                "shout": { "type": "boolean", "description": "Greet in capitals.", "default": false }
            },
            "required": ["name"],
            "additionalProperties": false
        })
    );
    assert_eq!(tools[0]["description"], "Greet someone by name. Returns one line of text.");
    assert_eq!(tools[0]["title"], "Say hello");
    assert_eq!(tools[0]["annotations"]["readOnlyHint"], true);
    let top = &tools[1]["inputSchema"]["properties"]["top"];
    assert_eq!(
        top,
        &json!({"type": "integer", "minimum": 0, "maximum": 100, "default": 5, "description": "How many of the most frequent words to list."})
    );
    let out = &tools[1]["outputSchema"];
    assert_eq!(out["required"], json!(["lines", "words", "chars", "bytes", "top_words"]), "{out}");
    assert_eq!(tools[2]["inputSchema"]["required"], json!(["value"]));
}

fn answers_alike(c: &mut McpClient) {
    let r = c.call_tool_ok("hello", json!({"name": "Ada", "shout": true}));
    assert_eq!(text(&r), "HELLO, ADA! GREETINGS FROM A WEBASSEMBLY COMPONENT.");
    let r = c.call_tool_ok("hello", json!({"name": "Ada"}));
    assert_eq!(text(&r), "Hello, Ada! Greetings from a WebAssembly component.");
    let r = c.call_tool_ok("word_count", json!({"text": "The cat\nand the hat.\n", "top": 2}));
    assert_eq!(text(&r), "2 lines, 5 words, 21 characters, 21 bytes");
    assert_eq!(
        r["structuredContent"],
        json!({"lines": 2, "words": 5, "chars": 21, "bytes": 21, "top_words": [{"word": "the", "count": 2}, {"word": "and", "count": 1}]})
    );
    let r = c.call_tool_ok("word_count", json!({"text": "héllo wörld héllo"}));
    assert_eq!(text(&r), "1 lines, 3 words, 17 characters, 20 bytes");
    let r = c.call_tool_ok("echo_json", json!({"value": {"a": [1, null, "x"], "b": true}}));
    assert_eq!(r["structuredContent"], json!({"value": {"a": [1, null, "x"], "b": true}}));
    let echoed: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(echoed, r["structuredContent"]);
}

/// The host validates arguments against the derived schema before the plugin runs.
fn schemas_are_enforced(c: &mut McpClient) {
    for (args, needle) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "Ada", "loud": true}), "loud"),
        (json!({"shout": true}), "name"),
        (json!({"text": "x", "top": 101}), "top"),
    ] {
        let tool = if args.get("text").is_some() { "word_count" } else { "hello" };
        let resp = c.call_tool(tool, args.clone());
        let err = resp.get("error").unwrap_or_else(|| panic!("{tool} {args} was accepted: {resp}"));
        assert_eq!(err["code"], -32602, "{resp}");
        assert!(err.to_string().contains(needle), "{tool} {args}: {resp}");
    }
}

fn denied_read_names_the_grant(c: &mut McpClient, dir: &Path) {
    std::fs::write(dir.join("granted/ok.txt"), "granted text\n").unwrap();
    let r = c.call_tool_ok("probe_read", json!({"path": dir.join("granted/ok.txt").display().to_string()}));
    assert_eq!(text(&r), "granted text\n", "{r}");
    let secret = dir.join("secret/token.txt");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "TOP-SECRET").unwrap();
    let r = c.call_tool_ok("probe_read", json!({"path": secret.display().to_string()}));
    assert_eq!(r["isError"], true, "{r}");
    let expected = format!(
        "{} is outside the directories granted to this plugin; to allow it, add dirs = [\"{}\"] to the plugin's [[plugin]] entry in the logai manifest",
        secret.display(),
        dir.join("secret").display()
    );
    assert_eq!(text(&r), expected);
}

fn spinning_call_is_stopped(c: &mut McpClient) {
    let r = c.call_tool_ok("probe_spin", json!({}));
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        text(&r).contains("plugin 'probe' exceeded its time limit (timeout_ms = 500) running tool 'probe_spin'; the call was stopped"),
        "{r}"
    );
    // The session goes on with a fresh instance.
    assert!(text(&c.call_tool_ok("hello", json!({"name": "again"}))).starts_with("Hello, again!"));
}

fn contract(lang: &Lang) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = serve(dir.path(), lang);
    lists_the_same_tools(&mut c);
    answers_alike(&mut c);
    schemas_are_enforced(&mut c);
    denied_read_names_the_grant(&mut c, dir.path());
    spinning_call_is_stopped(&mut c);
    assert!(c.close().success());
}

#[test]
fn rust_plugin_keeps_the_contract() {
    contract(&RUST);
}

#[test]
fn python_plugin_keeps_the_contract() {
    contract(&PYTHON);
}

#[test]
fn js_plugin_keeps_the_contract() {
    contract(&JS);
}
