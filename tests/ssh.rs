//! `ssh -p PORT 127.0.0.1 logai serve` serves a full client session: a real
//! `sshd` on loopback with its own host key and an authorized key made for
//! the test, and a real `ssh` client carrying MCP over the session's stdio.
//! Then the deployment of docs/deploy.md: two keys forced to
//! `logai serve --as alice` / `--as bob`, `[access]` and a shared Redis.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logai_e2e::{free_port, logai_bin, plugin_dist, sample_services_toml, write_manifest, McpClient, RedisServer};
use serde_json::json;

struct Sshd {
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(cands: &[&str]) -> PathBuf {
    cands
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("none of {cands:?} exists: scripts/install-test-deps installs openssh-server and openssh-client"))
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).status().expect("ssh-keygen");
    assert!(status.success());
}

fn user() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        let out = Command::new("id").arg("-un").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

fn start_sshd(dir: &Path, port: u16) -> Sshd {
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    start_sshd_with_keys(dir, port)
}

/// sshd on 127.0.0.1:`port` taking the keys in `dir/authorized_keys`.
fn start_sshd_with_keys(dir: &Path, port: u16) -> Sshd {
    let sshd = which(&["/usr/sbin/sshd", "/usr/bin/sshd"]);
    keygen(&dir.join("host_key"));
    // sshd's privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
         PrintMotd no\nLogLevel ERROR\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let check = Command::new(&sshd).arg("-t").arg("-f").arg(dir.join("sshd_config")).output().unwrap();
    assert!(check.status.success(), "sshd -t: {}", String::from_utf8_lossy(&check.stderr));
    let child =
        Command::new(&sshd).arg("-D").arg("-e").arg("-f").arg(dir.join("sshd_config")).stdin(Stdio::null()).spawn().expect("start sshd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Sshd { child }
}

/// `ssh -T -p PORT -i KEY USER@127.0.0.1 [COMMAND...]` (batch, no host key checks).
fn ssh_command(port: u16, key: &Path, command: &[&std::ffi::OsStr]) -> Command {
    let mut ssh = Command::new(which(&["/usr/bin/ssh"]));
    ssh.args(["-T", "-p", &port.to_string(), "-i"])
        .arg(key)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg(format!("{}@127.0.0.1", user()))
        .args(command);
    ssh
}

#[test]
fn full_session_over_real_sshd() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sshd = start_sshd(dir.path(), port);

    let manifest =
        write_manifest(dir.path(), &[("hello", "hello-plugin.wasm"), ("search-tools", "search-tools.wasm")], &sample_services_toml());
    assert!(plugin_dist().join("hello-plugin.wasm").is_file(), "build the plugins first (scripts/build-plugins)");

    let bin = logai_bin();
    let command = [bin.as_os_str(), "serve".as_ref(), "--config".as_ref(), manifest.as_os_str()];
    let mut client = McpClient::spawn(ssh_command(port, &dir.path().join("client_key"), &command));

    let init = client.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "logai");

    let list = client.request("tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"hello"), "tools: {names:?}");
    assert!(names.contains(&"search_logs"), "tools: {names:?}");

    let hello = client.call_tool_ok("hello", json!({"name": "ssh"}));
    assert_eq!(hello["isError"], json!(false), "{hello}");
    let text = hello["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("ssh"), "{text}");

    let services = client.call_tool_ok("list_services", json!({}));
    assert_eq!(services["isError"], json!(false), "{services}");

    let search = client.call_tool_ok("search_logs", json!({"service": "payments", "pattern": "timeout"}));
    assert_eq!(search["isError"], json!(false), "{search}");
    assert!(search["structuredContent"]["total_matches"].as_u64().unwrap() > 0, "{search}");

    // The session is one of sshd's: identity comes from SSH_CONNECTION.
    let ping = client.request("ping", json!({}));
    assert!(ping.get("result").is_some(), "{ping}");

    let status = client.close();
    assert!(status.success(), "logai over ssh exited with {status}");
    // The session directory was removed at exit.
    let sessions = dir.path().join("sessions");
    let left: Vec<_> = std::fs::read_dir(&sessions)
        .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("ssh-")).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "session directories left behind: {left:?}");
}

/// The services `list_services` answers (the search-tools plugin's
/// structured result).
fn service_names(client: &mut McpClient) -> Vec<String> {
    let r = client.call_tool_ok("list_services", json!({}));
    assert_eq!(r["isError"], json!(false), "{r}");
    let mut names: Vec<String> =
        r["structuredContent"]["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// A search's result text, and whether it is an error.
fn search(client: &mut McpClient, service: &str) -> (bool, String) {
    let r = client.call_tool_ok("search_logs", json!({"service": service, "pattern": "a", "max_results": 1}));
    (r["isError"] == json!(true), r["content"][0]["text"].as_str().unwrap_or_default().to_string())
}

/// Two people through one account: each key's forced command names its
/// person; each sees only its services, is refused the others by name, is
/// rate-limited on its own (one Redis counts for every session), and the
/// command a client asks for cannot change the name.
#[test]
fn forced_commands_name_people_and_access_follows_them() {
    let redis = RedisServer::start(&[]);
    assert!(plugin_dist().join("search-tools.wasm").is_file(), "build the plugins first (scripts/build-plugins)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Two searches at once, then one a minute: a third within the test is refused.
    let extra = format!(
        "{}\n[redis]\nurl = \"{}\"\n[limits]\nrate_limit_per_user_per_minute = 1\nrate_limit_burst = 1\n\n\
         [access]\naccount = \"{}\"\ndefault = [\"payments\"]\n[access.people]\nalice = [\"*\"]\nbob = [\"gateway\"]\n",
        sample_services_toml(),
        redis.url(),
        user()
    );
    let manifest = write_manifest(dir.path(), &[("search-tools", "search-tools.wasm")], &extra);
    let mut keys = String::new();
    for person in ["alice", "bob"] {
        keygen(&dir.path().join(person));
        let public = std::fs::read_to_string(dir.path().join(format!("{person}.pub"))).unwrap();
        keys += &format!("restrict,command=\"{} serve --config {} --as {person}\" {}", logai_bin().display(), manifest.display(), public);
    }
    std::fs::write(dir.path().join("authorized_keys"), keys).unwrap();
    let _sshd = start_sshd_with_keys(dir.path(), port);

    // alice: every service; two searches, then her rate is spent.
    let mut alice = McpClient::spawn(ssh_command(port, &dir.path().join("alice"), &[]));
    alice.initialize();
    assert_eq!(service_names(&mut alice), ["auth", "gateway", "payments"]);
    assert!(!search(&mut alice, "auth").0);
    assert!(!search(&mut alice, "payments").0);
    let (refused, text) = search(&mut alice, "payments");
    assert!(refused && text.contains("rate limited"), "{text}");
    assert!(alice.close().success());

    // bob's key, asking to be alice: the forced command runs, he is bob.
    let (bin, manifest_arg) = (logai_bin(), manifest.clone());
    let asked = [bin.as_os_str(), "serve".as_ref(), "--config".as_ref(), manifest_arg.as_os_str(), "--as".as_ref(), "alice".as_ref()];
    let mut bob = McpClient::spawn(ssh_command(port, &dir.path().join("bob"), &asked));
    bob.initialize();
    assert_eq!(service_names(&mut bob), ["gateway", "payments"]);
    // Refused by name, before the cache that holds alice's answer.
    let (refused, text) = search(&mut bob, "auth");
    assert!(refused && text.contains("access denied: bob may not search service 'auth'"), "{text}");
    // His own rate: alice's spent one does not touch it.
    assert!(!search(&mut bob, "gateway").0);
    assert!(!search(&mut bob, "payments").0);
    let (refused, text) = search(&mut bob, "gateway");
    assert!(refused && text.contains("rate limited"), "{text}");
    assert!(bob.close().success());

    // A new alice session shares alice's (spent) rate through Redis.
    let mut again = McpClient::spawn(ssh_command(port, &dir.path().join("alice"), &[]));
    again.initialize();
    let (refused, text) = search(&mut again, "gateway");
    assert!(refused && text.contains("rate limited"), "{text}");
    assert!(again.close().success());
}
