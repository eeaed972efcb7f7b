//! `search_logs` following a log like `tail -f` over the real stdio MCP
//! interface: a first search gives a cursor; with `after_cursor` only the
//! lines appended since come back, each exactly once, with absolute line
//! numbers, through an unfinished last line, a rename rotation with late
//! writes to the renamed file, and a `delaycompress` rotation (the renamed
//! file compressed into a new `.gz` after more late writes); `wait_ms`
//! waits for a line written while the call is under way.
//!
//! What is expected comes from this test's own bookkeeping of what it
//! wrote (which file, which line), not from logai's crates.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logai_e2e::{write_manifest, McpClient};
use serde_json::{json, Value};

/// The log directory and what was written where.
struct Logs {
    dir: PathBuf,
    /// File key -> its current name.
    names: HashMap<u32, String>,
    /// File key -> complete lines written.
    lines: HashMap<u32, u64>,
    /// Matching lines not yet returned: (file key, line number, text).
    expected: Vec<(u32, u64, String)>,
    /// A matching line whose end is not written yet: (file key, text so far).
    unfinished: Option<(u32, String)>,
    next_key: u32,
    seq: u32,
}

impl Logs {
    fn new(dir: PathBuf) -> Logs {
        std::fs::create_dir_all(&dir).unwrap();
        Logs { dir, names: HashMap::new(), lines: HashMap::new(), expected: Vec::new(), unfinished: None, next_key: 0, seq: 0 }
    }

    /// A new, empty file under `name`.
    fn create(&mut self, name: &str) -> u32 {
        std::fs::write(self.dir.join(name), b"").unwrap();
        self.next_key += 1;
        self.names.insert(self.next_key, name.into());
        self.lines.insert(self.next_key, 0);
        self.next_key
    }

    fn key(&self, name: &str) -> u32 {
        *self.names.iter().find(|(_, n)| *n == name).unwrap().0
    }

    fn raw(&self, name: &str, bytes: &str) {
        let mut f = std::fs::OpenOptions::new().append(true).open(self.dir.join(name)).unwrap();
        f.write_all(bytes.as_bytes()).unwrap();
    }

    /// `n` lines, every other one matching.
    fn append(&mut self, name: &str, n: u32) {
        let key = self.key(name);
        let mut text = String::new();
        for _ in 0..n {
            self.seq += 1;
            let line = if self.seq.is_multiple_of(2) { format!("MATCH {} in {name}", self.seq) } else { format!("noise {}", self.seq) };
            let number = self.lines[&key] + 1;
            self.lines.insert(key, number);
            if line.starts_with("MATCH") {
                self.expected.push((key, number, line.clone()));
            }
            text += &line;
            text.push('\n');
        }
        self.raw(name, &text);
    }

    /// The start of a matching line, its end not written.
    fn start_line(&mut self, name: &str) {
        let text = "MATCH unfinished".to_string();
        self.raw(name, &text);
        self.unfinished = Some((self.key(name), text));
    }

    /// The end of the unfinished line.
    fn finish_line(&mut self) {
        let (key, text) = self.unfinished.take().unwrap();
        let name = self.names[&key].clone();
        self.raw(&name, " ... done\n");
        let number = self.lines[&key] + 1;
        self.lines.insert(key, number);
        self.expected.push((key, number, format!("{text} ... done")));
    }

    fn rename(&mut self, from: &str, to: &str) {
        std::fs::rename(self.dir.join(from), self.dir.join(to)).unwrap();
        let key = self.key(from);
        self.names.insert(key, to.into());
    }

    /// `from` compressed into a new file `to` (its lines, its key), `from` removed.
    fn compress(&mut self, from: &str, to: &str) {
        let data = std::fs::read(self.dir.join(from)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(self.dir.join(to)).unwrap(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        enc.finish().unwrap();
        std::fs::remove_file(self.dir.join(from)).unwrap();
        let key = self.key(from);
        self.names.insert(key, to.into());
    }

    /// What the next call must return, as `name:line:text`, sorted; then forgotten.
    fn take_expected(&mut self) -> Vec<String> {
        let mut v: Vec<String> = self.expected.drain(..).map(|(k, n, t)| format!("{}:{n}:{t}", self.names[&k])).collect();
        v.sort();
        v
    }
}

/// One `search_logs` call: its matches as `name:line:text` (sorted), its
/// cursor, and its text.
fn search(c: &mut McpClient, cursor: Option<&str>, wait_ms: Option<u64>) -> (Vec<String>, String, String) {
    let mut args = json!({"service": "app", "pattern": "^MATCH", "max_results": 500});
    if let Some(cur) = cursor {
        args["after_cursor"] = json!(cur);
    }
    if let Some(w) = wait_ms {
        args["wait_ms"] = json!(w);
    }
    let r = c.call_tool_ok("search_logs", args);
    let text = r["content"][0]["text"].as_str().unwrap_or_default().to_string();
    assert_ne!(r["isError"], true, "{text}");
    let s = &r["structuredContent"];
    assert_eq!(s["partial"], false, "{s}");
    assert_eq!(s["truncated"], false, "{s}");
    let mut got: Vec<String> = s["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m: &Value| {
            let name = Path::new(m["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().to_string();
            format!("{name}:{}:{}", m["line_number"], m["text"].as_str().unwrap())
        })
        .collect();
    got.sort();
    let cursor = s["cursor"].as_str().expect("every answer has a cursor").to_string();
    let last = text.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains(&format!("after_cursor=\"{cursor}\"")), "the text ends with how to go on: {text}");
    (got, cursor, text)
}

#[test]
fn search_logs_follows_appends_and_rotations_returning_each_line_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut logs = Logs::new(tmp.path().join("logs"));
    let service = format!(
        "[[service]]\nname = \"app\"\ndescription = \"follow test\"\npaths = [\"{}/app.log*\"]\nformat = \"plain\"\n",
        logs.dir.display()
    );
    let manifest = write_manifest(tmp.path(), &[("search-tools", "search-tools.wasm")], &service);
    let mut c = McpClient::serve(&manifest, &[]);
    c.initialize();

    // The history, then a cursor at its end.
    logs.create("app.log");
    logs.append("app.log", 7);
    let (got, cursor, _) = search(&mut c, None, None);
    assert_eq!(got, logs.take_expected());

    // Appended lines, one of them unfinished: only the finished ones.
    logs.append("app.log", 6);
    logs.start_line("app.log");
    let (got, cursor, _) = search(&mut c, Some(&cursor), None);
    assert_eq!(got, logs.take_expected());
    assert!(!got.is_empty());

    // Rotation by rename: app.log -> app.log.1 (late writes, and the
    // unfinished line finished there), a new app.log.
    logs.rename("app.log", "app.log.1");
    logs.create("app.log");
    logs.append("app.log", 5);
    logs.finish_line();
    logs.append("app.log.1", 4);
    let (got, cursor, _) = search(&mut c, Some(&cursor), None);
    assert_eq!(got, logs.take_expected());
    assert!(got.iter().any(|g| g.starts_with("app.log.1:")) && got.iter().any(|g| g.starts_with("app.log:")), "{got:?}");

    // delaycompress: more late writes to app.log.1, then it is compressed
    // into app.log.2.gz (a new inode) and removed; app.log -> app.log.1
    // with a late write; a new app.log.
    logs.append("app.log.1", 4);
    logs.append("app.log", 3);
    logs.compress("app.log.1", "app.log.2.gz");
    logs.rename("app.log", "app.log.1");
    logs.create("app.log");
    logs.append("app.log.1", 2);
    logs.append("app.log", 6);
    let (got, cursor, _) = search(&mut c, Some(&cursor), None);
    assert_eq!(got, logs.take_expected());
    assert!(got.iter().any(|g| g.starts_with("app.log.2.gz:")), "the late lines come from the .gz: {got:?}");

    // Nothing new: nothing, said so.
    let (got, cursor, text) = search(&mut c, Some(&cursor), None);
    assert!(got.is_empty(), "{got:?}");
    assert!(text.contains("No new matching lines"), "{text}");

    // wait_ms: a line written while the call waits comes back in it. The
    // writer starts once the call is sent; 20 s only bounds a failure.
    let dir = logs.dir.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("app.log")).unwrap();
        f.write_all(b"noise while waiting\nMATCH while waiting\n").unwrap();
    });
    let key = logs.key("app.log");
    let n = logs.lines[&key];
    logs.lines.insert(key, n + 2);
    logs.expected.push((key, n + 2, "MATCH while waiting".into()));
    let (got, _, _) = search(&mut c, Some(&cursor), Some(20_000));
    writer.join().unwrap();
    assert_eq!(got, logs.take_expected());

    // A cursor that is not one is refused, naming the argument.
    let r = c.call_tool_ok("search_logs", json!({"service": "app", "pattern": "x", "after_cursor": "nonsense"}));
    assert_eq!(r["isError"], true);
    assert!(r["content"][0]["text"].as_str().unwrap().contains("argument `after_cursor`"), "{r}");
    assert!(c.close().success());
}
