//! The runtime against real components (built by `scripts/build-plugins`
//! into `plugins/dist/`): good calls, every kind of misbehaviour, grants,
//! the precompile cache, exporters. `cargo test -p logai plugins::`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::call::{CallScope, ToolCallError, ToolHost, ToolOutput};
use crate::config::Config;

fn dist(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist").join(name);
    assert!(p.is_file(), "{} is missing: run scripts/build-plugins first", p.display());
    p
}

/// A manifest of `entries` with a private cache directory.
fn manifest(entries: &str, cache: &Path) -> Config {
    let text = format!("[server]\ncompile_cache_dir = {:?}\n\n{entries}", cache.display().to_string());
    crate::config::parse(&text, "test.toml", Path::new("/")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn plugin(name: &str, file: &str, extra: &str) -> String {
    format!("[[plugin]]\nname = {name:?}\ncomponent = {:?}\n{extra}\n", dist(file).display().to_string())
}

/// What `examples/hello-plugin`'s `hello` answers.
fn greeting(name: &str) -> String {
    format!("Hello, {name}! Greetings from a WebAssembly component.")
}

fn scope() -> CallScope {
    CallScope::detached("test-session", Duration::from_secs(60))
}

async fn load(entries: &str) -> (Runtime, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::load(&manifest(entries, cache.path()), Arc::new(NoHostServices)).await.unwrap_or_else(|e| panic!("{e}"));
    (rt, cache)
}

async fn call(rt: &Runtime, tool: &str, args: Value) -> ToolOutput {
    rt.call(tool, args, scope()).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn text(out: &ToolOutput) -> String {
    out.content.iter().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join("\n")
}

#[track_caller]
fn assert_error_contains(out: &ToolOutput, needles: &[&str]) {
    assert!(out.is_error, "expected an error, got {out:?}");
    let t = text(out);
    for n in needles {
        assert!(t.contains(n), "{n:?} not in {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_plugin_tools_work() {
    let (rt, _c) = load(&plugin("hello", "hello-plugin.wasm", "memory_mb = 16\ntimeout_ms = 2000")).await;
    let names: Vec<String> = rt.tools().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["hello", "word_count", "echo_json"]);
    let hello = &rt.tools()[0];
    assert_eq!(hello.plugin, "hello");
    assert_eq!(hello.title.as_deref(), Some("Say hello"));
    assert_eq!(hello.input_schema["required"], json!(["name"]));
    assert_eq!(hello.annotations.as_ref().unwrap()["readOnlyHint"], json!(true));

    let out = call(&rt, "hello", json!({"name": "Ada"})).await;
    assert!(!out.is_error);
    assert_eq!(text(&out), greeting("Ada"));

    let out = call(&rt, "word_count", json!({"text": "a b a\nc", "top": 1})).await;
    assert_eq!(
        out.structured_content.unwrap(),
        json!({"lines": 2, "words": 4, "chars": 7, "bytes": 7, "top_words": [{"word": "a", "count": 2}]})
    );

    let out = call(&rt, "echo_json", json!({"value": [1, {"x": null}]})).await;
    assert_eq!(out.structured_content.unwrap(), json!({"value": [1, {"x": null}]}));

    match rt.call("nope", json!({}), scope()).await {
        Err(ToolCallError::UnknownTool(t)) => assert_eq!(t, "nope"),
        other => panic!("{other:?}"),
    }
    // The SDK reports typed-argument errors with their JSON path.
    match rt.call("hello", json!({"name": 5}), scope()).await {
        Err(ToolCallError::InvalidArguments { path, message }) => {
            assert_eq!(path, "$.name");
            assert!(message.contains("expected a string"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_time_limit_and_the_next_call_works() {
    let (rt, _c) = load(&plugin("loop", "test-loop.wasm", "timeout_ms = 300")).await;
    let t = Instant::now();
    let out = call(&rt, "spin", json!({})).await;
    let took = t.elapsed();
    assert_error_contains(&out, &["plugin 'loop' exceeded its time limit (timeout_ms = 300)", "spin"]);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(30), "{took:?}");
    assert_eq!(text(&call(&rt, "quick", json!({})).await), "quick");

    // Blocked in a host call (sleep) rather than spinning: the same limit.
    let t = Instant::now();
    let out = call(&rt, "sleep", json!({})).await;
    assert_error_contains(&out, &["exceeded its time limit (timeout_ms = 300)"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed()); // stopped, not run to its end
    assert_eq!(text(&call(&rt, "sleep", json!({"ms": 10})).await), "slept 10 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_deadline_caps_the_plugin_limit() {
    let (rt, _c) = load(&plugin("loop", "test-loop.wasm", "timeout_ms = 60000")).await;
    let s = CallScope::detached("s", Duration::from_millis(200));
    let t = Instant::now();
    let out = rt.call("spin", json!({}), s).await.unwrap();
    assert_error_contains(&out, &["plugin 'loop' ran past the call's deadline"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed()); // stopped, not run to its end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_spinning_call_and_is_visible_to_the_guest() {
    let (rt, _c) = load(&plugin("loop", "test-loop.wasm", "timeout_ms = 10000")).await;
    // Spinning guest: the host drops the call when the token fires.
    let s = scope();
    let cancel = s.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let t = Instant::now();
    let out = rt.call("spin", json!({}), s).await.unwrap();
    assert_error_contains(&out, &["plugin 'loop'", "cancelled"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed()); // stopped, not run to its end
                                                                         // The guest's `cancelled()` import reads the same token.
    let s = scope();
    s.cancel.cancel();
    let out = rt.call("until_cancelled", json!({}), s).await.unwrap();
    assert_error_contains(&out, &["cancelled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_memory_limit_and_the_next_call_works() {
    let (rt, _c) = load(&plugin("bomb", "test-bomb.wasm", "memory_mb = 16\ntimeout_ms = 5000")).await;
    let t = Instant::now();
    let out = call(&rt, "alloc", json!({})).await;
    assert_error_contains(&out, &["plugin 'bomb' exceeded its memory limit (memory_mb = 16)", "alloc"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(text(&call(&rt, "alloc", json!({"mb": 4})).await), "allocated 4 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_traps_are_reported_and_instances_are_fresh() {
    let (rt, _c) = load(&plugin("crash", "test-panic.wasm", "")).await;
    let out = call(&rt, "boom", json!({})).await;
    assert_error_contains(&out, &["plugin 'crash' panicked running tool 'boom'", "the boom tool always panics"]);
    let out = call(&rt, "unreachable", json!({})).await;
    assert_error_contains(&out, &["plugin 'crash' trapped running tool 'unreachable'", "unreachable"]);
    // Rust keeps its stack in linear memory: overflowing it is an
    // out-of-bounds access (a native wasm stack overflow says so itself).
    let out = call(&rt, "deep", json!({})).await;
    assert_error_contains(&out, &["plugin 'crash'", "running tool 'deep'"]);
    let t = text(&out);
    assert!(t.contains("overflowed its stack") || t.contains("out of bounds memory access"), "{t}");
    // A fresh instance per call: statics start over every time, whether
    // the call got a standby instance (made ahead, between calls) or one
    // made on demand (back to back, or several at once).
    for _ in 0..4 {
        assert_eq!(text(&call(&rt, "counter", json!({})).await), "1");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let burst = futures_util::future::join_all((0..6).map(|_| call(&rt, "counter", json!({})))).await;
    assert!(burst.iter().all(|o| text(o) == "1"), "{burst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_results_are_refused() {
    let (rt, _c) = load(&plugin("bad", "test-malformed.wasm", "")).await;
    let out = call(&rt, "not_json", json!({})).await;
    assert_error_contains(&out, &["plugin 'bad' returned a malformed result from tool 'not_json'", "not valid JSON"]);
    let out = call(&rt, "wrong_shape", json!({})).await;
    assert_error_contains(&out, &["tool 'wrong_shape'", "does not match the output schema", "count"]);
    let out = call(&rt, "bad_image", json!({})).await;
    assert_error_contains(&out, &["tool 'bad_image'", "not valid base64"]);
    let out = call(&rt, "fine", json!({})).await;
    assert!(!out.is_error);
    assert_eq!(out.structured_content.unwrap(), json!({"count": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_and_duplicate_tools_are_refused_at_load() {
    let cache = tempfile::tempdir().unwrap();
    let e = Runtime::load(&manifest(&plugin("broken", "test-badspec.wasm", ""), cache.path()), Arc::new(NoHostServices))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("plugin 'broken'") && e.contains("tool 'broken'") && e.contains("not valid JSON"), "{e}");
    // Every broken tool is reported, not only the first; the good one is not.
    assert!(e.contains("3 broken tool specs"), "{e}");
    assert!(e.contains("tool 'not_a_schema': input schema is not a valid JSON Schema: at /properties/n/type"), "{e}");
    assert!(e.contains("tool 'bad_output': output schema must have"), "{e}");
    assert!(!e.contains("tool 'fine'"), "{e}");

    let two = plugin("hello", "hello-plugin.wasm", "") + &plugin("hello-again", "hello-plugin.wasm", "");
    let e = Runtime::load(&manifest(&two, cache.path()), Arc::new(NoHostServices)).await.err().unwrap().to_string();
    assert!(e.contains("tool 'hello'") && e.contains("plugin 'hello'") && e.contains("plugin 'hello-again'"), "{e}");

    let missing = "[[plugin]]\nname = \"ghost\"\ncomponent = \"/nonexistent/ghost.wasm\"\n";
    let e = Runtime::load(&manifest(missing, cache.path()), Arc::new(NoHostServices)).await.err().unwrap().to_string();
    assert!(e.contains("plugin 'ghost'") && e.contains("/nonexistent/ghost.wasm"), "{e}");

    // Disabled plugins are not loaded at all.
    let off = plugin("ghost", "hello-plugin.wasm", "enabled = false");
    let rt = Runtime::load(&manifest(&off, cache.path()), Arc::new(NoHostServices)).await.unwrap();
    assert!(rt.tools().is_empty());
}

/// A loopback server answering each connection with `reply`.
fn serve_once(reply: &'static [u8]) -> (std::net::SocketAddr, std::thread::JoinHandle<bool>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(reply);
                    return true;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        false
    });
    (addr, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_granted_by_default() {
    std::env::set_var("LOGAI_TEST_SECRET_DEFAULT", "hunter2");
    let (rt, _c) = load(&plugin("snoop", "test-snoop.wasm", "timeout_ms = 5000")).await;

    let out = call(&rt, "read_file", json!({"path": "/etc/passwd"})).await;
    assert_error_contains(&out, &["cannot read /etc/passwd"]);
    assert!(!text(&out).contains("root:"));
    let out = call(&rt, "list_dir", json!({"path": "/"})).await;
    assert!(out.is_error, "{out:?}");

    let out = call(&rt, "read_env", json!({"name": "LOGAI_TEST_SECRET_DEFAULT"})).await;
    assert_error_contains(&out, &["cannot read environment variable", "(0 variables visible)"]);
    assert!(!text(&out).contains("hunter2"));

    let (addr, server) = serve_once(b"hello from the host\n");
    let out = call(&rt, "connect", json!({"addr": addr.to_string()})).await;
    assert_error_contains(&out, &["cannot connect"]);
    drop(server);

    let out = call(&rt, "udp_send", json!({"addr": "127.0.0.1:9"})).await;
    assert_error_contains(&out, &["cannot send"]);

    let out = call(&rt, "http_get", json!({"authority": format!("{addr}")})).await;
    assert_error_contains(&out, &["HttpRequestDenied", "plugin 'snoop' was denied", "allowed_hosts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_open_exactly_what_they_name() {
    std::env::set_var("LOGAI_TEST_GRANTED", "granted-value");
    std::env::set_var("LOGAI_TEST_NOT_GRANTED", "hidden-value");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), "line one\n").unwrap();
    let (tcp, tcp_server) = serve_once(b"hi\n");
    let (http, http_server) = serve_once(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let (other, _other_server) = serve_once(b"nope\n");
    let grants = format!(
        "timeout_ms = 5000\nenv = [\"LOGAI_TEST_GRANTED\"]\ndirs = [\"{}:/logs\"]\nallowed_sockets = [\"{tcp}\"]\nallowed_hosts = [\"{http}\"]",
        dir.path().display()
    );
    let (rt, _c) = load(&plugin("snoop", "test-snoop.wasm", &grants)).await;

    assert_eq!(text(&call(&rt, "read_env", json!({"name": "LOGAI_TEST_GRANTED"})).await), "LOGAI_TEST_GRANTED=granted-value");
    let out = call(&rt, "read_env", json!({"name": "LOGAI_TEST_NOT_GRANTED"})).await;
    assert_error_contains(&out, &["(1 variables visible)"]);

    assert_eq!(text(&call(&rt, "read_file", json!({"path": "/logs/app.log"})).await), "line one\n");
    assert_eq!(text(&call(&rt, "list_dir", json!({"path": "/logs"})).await), "app.log");
    let out = call(&rt, "read_file", json!({"path": "/logs/../../etc/passwd"})).await;
    assert!(out.is_error && !text(&out).contains("root:"), "{out:?}");
    let out = call(&rt, "write_file", json!({"path": "/logs/new.txt"})).await;
    assert_error_contains(&out, &["cannot write /logs/new.txt"]);
    assert!(!dir.path().join("new.txt").exists());

    let out = call(&rt, "connect", json!({"addr": tcp.to_string()})).await;
    assert_eq!(text(&out), format!("connected to {tcp}: hi\n"));
    assert!(tcp_server.join().unwrap());
    let out = call(&rt, "connect", json!({"addr": other.to_string()})).await;
    assert_error_contains(&out, &["cannot connect", &format!("TCP connect to {other} is not in its allowed_sockets grant")]);

    let out = call(&rt, "http_get", json!({"authority": http.to_string()})).await;
    assert_eq!(text(&out), format!("GET http://{http}/ -> 204"), "{out:?}");
    assert!(http_server.join().unwrap());
    let out = call(&rt, "http_get", json!({"authority": "example.com"})).await;
    assert_error_contains(&out, &["HTTP request to example.com is not in its allowed_hosts grant"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_their_own_instances() {
    let (rt, _c) = load(&plugin("hello", "hello-plugin.wasm", "")).await;
    let mut calls = Vec::new();
    for i in 0..40 {
        let rt = rt.clone();
        calls.push(tokio::spawn(async move { rt.call("hello", json!({"name": format!("n{i}")}), scope()).await.unwrap() }));
    }
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(text(&c.await.unwrap()), greeting(&format!("n{i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_warm_starts_and_replaces_bad_artifacts() {
    let cache = tempfile::tempdir().unwrap();
    let config = manifest(&plugin("hello", "hello-plugin.wasm", ""), cache.path());
    let cold = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    assert_eq!(cold.cache_outcomes()[0].1, CacheOutcome::Compiled);
    let t = Instant::now();
    let warm = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    let warm_time = t.elapsed();
    assert_eq!(warm.cache_outcomes()[0].1, CacheOutcome::Hit);
    assert_eq!(warm.tools().len(), 3);
    eprintln!("warm load of one plugin: {warm_time:?}");

    // Corrupt the artifact: rejected, recompiled, rewritten, and the call works.
    let artifact =
        std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "cwasm")).unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    // Through a new inode, as every writer of the cache does: the runtimes above still map the
    // old file, and a file truncated under a mapping faults its reader (SIGBUS).
    replace_file(&artifact, &bytes);
    let again = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    match &again.cache_outcomes()[0].1 {
        CacheOutcome::Replaced(why) => assert!(why.contains("hash mismatch"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(text(&call(&again, "hello", json!({"name": "x"})).await), greeting("x"));
    let fixed = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    assert_eq!(fixed.cache_outcomes()[0].1, CacheOutcome::Hit);

    // A foreign file under the artifact's name is rejected too.
    replace_file(&artifact, b"not an artifact");
    let again = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    assert!(matches!(again.cache_outcomes()[0].1, CacheOutcome::Replaced(_)));
}

/// `path`'s content replaced by a new file renamed over it.
fn replace_file(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("test-tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_replaced_in_place_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let component = work.path().join("team.wasm");
    std::fs::copy(dist("hello-plugin.wasm"), &component).unwrap();
    let entry = format!("[[plugin]]\nname = \"team\"\ncomponent = {:?}\n", component.display().to_string());
    let config = manifest(&entry, cache.path());
    let first = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    assert_eq!(first.tools()[0].name, "hello");
    assert_eq!(Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap().cache_outcomes()[0].1, CacheOutcome::Hit);
    // Same path, same size or not: a new build is a new component.
    std::fs::write(&component, std::fs::read(dist("test-loop.wasm")).unwrap()).unwrap();
    let second = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    assert_eq!(second.cache_outcomes()[0].1, CacheOutcome::Compiled);
    assert_eq!(second.tools()[0].name, "spin");
}

#[test]
fn precompile_and_list_report_every_component() {
    let cache = tempfile::tempdir().unwrap();
    let entries = plugin("hello", "hello-plugin.wasm", "memory_mb = 16")
        + &plugin("off", "test-loop.wasm", "enabled = false")
        + &format!(
            "[[exporter]]\nname = \"counter\"\ncomponent = {:?}\nenabled = true\n",
            dist("test-exporter.wasm").display().to_string()
        );
    let config = manifest(&entries, cache.path());
    let reports = precompile(&config).unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].name, "hello");
    assert_eq!(reports[0].outcome, Ok(CacheOutcome::Compiled));
    assert_eq!(reports[0].tools, ["hello", "word_count", "echo_json"]);
    assert!(reports[0].artifact.as_ref().unwrap().starts_with(cache.path()));
    assert_eq!((reports[1].kind, reports[1].outcome.clone()), ("exporter", Ok(CacheOutcome::Compiled)));
    let again = precompile(&config).unwrap();
    assert!(again.iter().all(|r| r.outcome == Ok(CacheOutcome::Hit)), "{again:?}");

    let listing = list(&config).unwrap();
    assert_eq!(listing.len(), 3);
    assert_eq!(listing[0].tools.as_ref().unwrap().len(), 3);
    assert!(listing[0].grants.contains("memory_mb = 16"), "{}", listing[0].grants);
    assert!(!listing[1].enabled);
    assert_eq!(listing[2].kind, "exporter");
}

fn event(name: &str) -> ExportEvent {
    ExportEvent {
        kind: exporter::EventKind::Span,
        timestamp_ms: 1,
        name: name.into(),
        trace_id: "0".repeat(32),
        span_id: "0".repeat(16),
        parent_span_id: None,
        duration_us: 5,
        status: "ok".into(),
        attributes: vec![("tool".into(), "hello".into())],
        message: None,
        breadcrumbs: vec![],
        metric: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporters_keep_state_and_recover_from_hangs_and_traps() {
    let cache = tempfile::tempdir().unwrap();
    let entry = format!(
        "[[exporter]]\nname = \"counter\"\ncomponent = {:?}\nenabled = true\ntimeout_ms = 300\nsettings = {{ label = \"x\" }}\n",
        dist("test-exporter.wasm").display().to_string()
    );
    let config = manifest(&entry, cache.path());
    let cfg = &config.exporter[0];
    let x = Exporter::load(&config, cfg).await.unwrap();
    x.configure(&Exporter::settings_json(cfg)).await.unwrap();
    let snap = crate::coord::MetricsSnapshot { source: "local".into(), ..Default::default() };
    x.export(vec![event("a"), event("b")]).await.unwrap();
    x.export(vec![event("c")]).await.unwrap();
    x.flush().await.unwrap();
    assert_eq!(x.render(&snap).await.unwrap().unwrap(), "exported=3 label=x counters=0 source=local");

    let e = x.export(vec![event("reject")]).await.unwrap_err();
    assert!(e.contains("exporter 'counter' failed to export: rejected the batch"), "{e}");

    let t = Instant::now();
    let e = x.export(vec![event("hang")]).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed()); // stopped, not run to its end
    assert!(e.contains("exporter 'counter' exceeded its time limit (timeout_ms = 300)"), "{e}");
    // Restarted and re-configured: the count starts over, the label is back.
    assert_eq!(x.render(&snap).await.unwrap().unwrap(), "exported=0 label=x counters=0 source=local");

    let e = x.export(vec![event("panic")]).await.unwrap_err();
    assert!(e.contains("'counter' panicked") && e.contains("panics on request"), "{e}");
    x.export(vec![event("d")]).await.unwrap();
    assert_eq!(x.render(&snap).await.unwrap().unwrap(), "exported=1 label=x counters=0 source=local");

    let e = x.configure(r#"{"fail": true}"#).await.unwrap_err();
    assert!(e.contains("exporter 'counter' rejected its configuration: told to fail"), "{e}");
    assert!(x.export(vec![event("e")]).await.unwrap_err().contains("rejected its configuration"));
    x.configure("{}").await.unwrap();
    x.export(vec![event("f")]).await.unwrap();
}

/// `cargo test -p logai --release plugins::tests::start_time -- --ignored --nocapture`:
/// time to load N components cold (compile), warm (precompiled), and warm
/// without the cache's tool lists (one instantiation each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p logai --release --lib plugins::tests::start_time -- --ignored --nocapture"]
async fn start_time() {
    let files = ["hello-plugin.wasm", "test-loop.wasm", "test-bomb.wasm", "test-panic.wasm", "test-snoop.wasm", "test-malformed.wasm"];
    let entries: String = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let body = plugin(&format!("p{i}"), f, "");
            // Each needs unique tool names: only hello's are unique among these.
            body
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let config = manifest(&entries, cache.path());
    let t = Instant::now();
    Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
    let cold = t.elapsed();
    let mut warm = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let rt = Runtime::load(&config, Arc::new(NoHostServices)).await.unwrap();
        warm.push(t.elapsed());
        assert!(rt.cache_outcomes().iter().all(|(_, o)| *o == CacheOutcome::Hit));
    }
    warm.sort();
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(dist(f)).unwrap().len()).sum();
    eprintln!(
        "{} components ({} KiB): cold load {cold:?}, warm load median {:?} (min {:?})",
        files.len(),
        bytes / 1024,
        warm[warm.len() / 2],
        warm[0]
    );
}

/// Host services that answer from fixed data and record what they were asked.
#[derive(Default)]
struct FakeServices {
    asked: parking_lot::Mutex<Vec<String>>,
    /// `max_results` of each search, as the plugin asked.
    max_results: parking_lot::Mutex<Vec<u32>>,
}

impl HostServices for FakeServices {
    fn search(
        &self,
        scope: &CallScope,
        req: search::SearchRequest,
    ) -> futures_util::future::BoxFuture<'static, Result<search::SearchResponse, search::SearchError>> {
        self.asked.lock().push(format!("search {} {} {:?} {} by {}", req.service, req.pattern, req.hours_back, req.context, scope.user));
        self.max_results.lock().push(req.max_results);
        let r = if req.service == "nope" {
            Err(search::SearchError::invalid("service", "no service named 'nope'"))
        } else {
            Ok(search::SearchResponse {
                matches: vec![search::SearchMatch {
                    file: "/var/log/app.log".into(),
                    line_number: 42,
                    timestamp: Some("2026-11-23T10:00:00Z".into()),
                    text: "ERROR boom".into(),
                    before: vec![search::ContextLine { line_number: 41, text: "before".into() }],
                    after: vec![],
                }],
                total_matches: 7,
                files_searched: 3,
                overflow: Some(search::OverflowRef { reference: "ref-1".into(), total: 6 }),
                partial_reason: Some("deadline".into()),
                ..Default::default()
            })
        };
        Box::pin(async move { r })
    }
    /// search_logs always follows: the search above, with a cursor.
    fn follow(
        &self,
        scope: &CallScope,
        req: search::SearchRequest,
        _cursor: Option<String>,
        _wait_ms: u32,
    ) -> futures_util::future::BoxFuture<'static, Result<search::FollowResponse, search::SearchError>> {
        let answer = self.search(scope, req);
        Box::pin(async move { answer.await.map(|response| search::FollowResponse { response, cursor: "lc1.fake".into() }) })
    }
    fn list_services(
        &self,
        _scope: &CallScope,
    ) -> futures_util::future::BoxFuture<'static, Result<Vec<search::ServiceInfo>, search::SearchError>> {
        Box::pin(async {
            Ok(vec![search::ServiceInfo {
                name: "app".into(),
                description: "d".into(),
                format: "syslog".into(),
                file_count: 2,
                total_bytes: 10,
                earliest: None,
                latest: Some("2026-11-23T10:00:00Z".into()),
            }])
        })
    }
    fn read_overflow(
        &self,
        _scope: &CallScope,
        reference: String,
        offset: u64,
        limit: u32,
    ) -> futures_util::future::BoxFuture<'static, Result<search::OverflowPage, search::SearchError>> {
        self.asked.lock().push(format!("overflow {reference} {offset} {limit}"));
        Box::pin(async move { Ok(search::OverflowPage { matches: vec![], offset, total: 6, eof: true }) })
    }
    fn metrics(&self) -> futures_util::future::BoxFuture<'static, crate::coord::MetricsSnapshot> {
        use crate::coord::*;
        Box::pin(async {
            MetricsSnapshot {
                counters: vec![CounterValue {
                    name: "logai_tool_calls_total".into(),
                    help: "h".into(),
                    labels: vec![("tool".into(), "hello".into())],
                    value: 3.0,
                }],
                gauges: vec![],
                histograms: vec![HistogramValue {
                    name: "logai_search_seconds".into(),
                    help: "h".into(),
                    labels: vec![],
                    bucket_bounds: vec![0.1, 1.0],
                    bucket_counts: vec![1, 2],
                    sum: 1.5,
                    count: 2,
                }],
                source: "local".into(),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_imports_reach_the_call_scope_and_the_host_services() {
    let cache = tempfile::tempdir().unwrap();
    let services = Arc::new(FakeServices::default());
    let config = manifest(&plugin("imports", "test-imports.wasm", ""), cache.path());
    let rt = Runtime::load(&config, services.clone()).await.unwrap();

    let reports = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut s = scope();
    let sink = reports.clone();
    s.progress = crate::call::ProgressSink::new(move |p| sink.lock().push(p));
    s.user = "alice@10.0.0.1".into();
    let out = rt.call("progress", json!({"steps": 3}), s).await.unwrap();
    assert_eq!(text(&out), "3 steps; cancelled=false; user=alice@10.0.0.1; deadline_ms>0=true");
    let reports = reports.lock().clone();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[2], crate::call::Progress { progress: 3.0, total: Some(3.0), message: Some("step 3".into()) });

    let mut s = scope();
    s.user = "bob@local".into();
    let out = rt.call("search", json!({"service": "app", "pattern": "ERROR"}), s).await.unwrap();
    assert_eq!(
        out.structured_content.unwrap(),
        json!({"total": 7, "files_searched": 3,
               "first": {"file": "/var/log/app.log", "line": 42, "text": "ERROR boom", "before": 1, "ts": "2026-11-23T10:00:00Z"},
               "overflow": {"reference": "ref-1", "total": 6}, "partial_reason": "deadline"})
    );
    let out = call(&rt, "search", json!({"service": "nope", "pattern": "x"})).await;
    assert_error_contains(&out, &["InvalidRequest", "Some(\"service\")", "no service named 'nope'"]);

    let out = call(&rt, "services", json!({})).await;
    assert_eq!(
        out.structured_content.unwrap(),
        json!({"services": [{"name": "app", "files": 2, "latest": "2026-11-23T10:00:00Z"}], "page": {"offset": 5, "total": 6, "eof": true, "n": 0}})
    );
    let out = call(&rt, "metrics", json!({})).await;
    assert_eq!(
        out.structured_content.unwrap(),
        json!({"source": "local", "counters": [{"name": "logai_tool_calls_total", "value": 3.0, "labels": ["tool=hello"]}],
               "histograms": [{"name": "logai_search_seconds", "count": 2, "buckets": [1, 2]}]})
    );
    assert_eq!(
        *services.asked.lock(),
        [
            "search app ERROR Some(2) 1 by bob@local".to_string(),
            format!("search nope x Some(2) 1 by {}", crate::identity::local_user()),
            "overflow ref-1 5 10".to_string()
        ]
    );
}

/// The operator's `[limits]` reach search-tools through `tools.list` (its
/// schemas say them) and the call context (its defaults follow them), with
/// no grants; a tool list cached for other limits is listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_limits_reach_the_plugin_without_grants() {
    let cache = tempfile::tempdir().unwrap();
    let entry = plugin("search-tools", "search-tools.wasm", "");
    let schema_of = |rt: &Runtime| rt.tools().into_iter().find(|t| t.name == "search_logs").unwrap().input_schema;

    let defaults = Runtime::load(&manifest(&entry, cache.path()), Arc::new(NoHostServices)).await.unwrap();
    assert_eq!(schema_of(&defaults)["properties"]["max_results"]["maximum"], json!(1000));

    let limits = "[limits]\ndefault_max_results = 25\nmax_results_cap = 400\nmax_context_lines = 4\n";
    let config = manifest(&format!("{limits}\n{entry}"), cache.path());
    let services = Arc::new(FakeServices::default());
    let rt = Runtime::load(&config, services.clone()).await.unwrap();
    assert_eq!(rt.cache_outcomes()[0].1, CacheOutcome::Hit, "the component is reused, its list is not");
    let s = schema_of(&rt);
    assert_eq!(s["properties"]["max_results"]["maximum"], json!(400));
    assert_eq!(s["properties"]["max_results"]["default"], json!(25));
    assert_eq!(s["properties"]["context"]["maximum"], json!(4));
    let out = call(&rt, "search_logs", json!({"service": "app", "pattern": "ERROR"})).await;
    assert!(!out.is_error, "{}", text(&out));
    assert_eq!(*services.max_results.lock(), vec![25]);
}

/// A large component (an interpreter) gets the on-demand engine, a small
/// one the shared engine; both engines make the same artifacts (one cache
/// digest), so `logai precompile` serves either.
#[test]
fn large_components_get_the_on_demand_engine_with_the_same_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    std::fs::File::create(&big).unwrap().set_len(engine::LARGE_COMPONENT_BYTES).unwrap();
    let shared = engine::shared().unwrap();
    let large = engine::for_component(&big).unwrap();
    let small = engine::for_component(&dist("hello-plugin.wasm")).unwrap();
    assert!(wasmtime::Engine::same(&small.engine, &shared.engine));
    assert_eq!(large.allocator, Allocator::OnDemand);
    if shared.allocator == Allocator::Pooling {
        assert!(!wasmtime::Engine::same(&large.engine, &shared.engine));
    }
    assert_eq!(engine::compatibility_digest(&large.engine), engine::compatibility_digest(&shared.engine));
}
