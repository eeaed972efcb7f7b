//! Who this session is: the person (`logai serve --as NAME`, else the
//! local account), the user rate limits and logs name (person + client
//! address) and a session id, derived from the environment `sshd` sets.
//!
//! Trust: `--as` comes from the command line, which on a shared serving
//! account is the forced command of the key that logged in
//! (`restrict,command="logai serve --as alice"` in `authorized_keys`): sshd
//! runs it whatever the client asked, and the command the client asked for
//! (`SSH_ORIGINAL_COMMAND`) is never read here. When the manifest names the
//! serving account (`[access] account`), `--as` is refused under any other
//! account, so a person with a shell of their own cannot claim a name.

use std::sync::OnceLock;

static PERSON: OnceLock<String> = OnceLock::new();

/// Take on the name the forced command gave (`--as NAME`), before anything
/// asks who this session is. `account`: the manifest's serving account,
/// the only one `--as` is honoured under when set.
pub fn claim_person(name: &str, account: Option<&str>) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!("--as {name:?}: a person's name is letters, digits, '.', '_' or '-'"));
    }
    let me = local_user_name();
    if let Some(account) = account.filter(|a| *a != me) {
        return Err(format!(
            "--as {name}: names are taken only under the serving account '{account}' ([access] account), and this is '{me}'"
        ));
    }
    let set = PERSON.get_or_init(|| name.to_owned());
    if set != name {
        return Err(format!("--as {name}: this session is already '{set}'"));
    }
    Ok(())
}

/// Who this session acts for: the `--as` name, else the local account.
pub fn person() -> String {
    PERSON.get().cloned().unwrap_or_else(local_user_name)
}

/// The local user name (`$USER`, `$LOGNAME`, the passwd entry of the uid,
/// or `uid<N>`). sshd sets `$USER`; cron, systemd units and `env -i` may not.
pub fn local_user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(passwd_name)
        .unwrap_or_else(|| format!("uid{}", unsafe { libc::getuid() }))
}

/// The name of this process's uid in the passwd database.
fn passwd_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf` (its length given) and
    // sets `out` to `&pwd` on success; the name points into `buf`.
    let rc = unsafe { libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// The client address from `SSH_CONNECTION` ("client_ip client_port server_ip server_port").
pub fn ssh_client_addr() -> Option<String> {
    let conn = std::env::var("SSH_CONNECTION").ok()?;
    conn.split_whitespace().next().map(str::to_owned)
}

/// `person@client-address` over SSH, `person@local` otherwise ([`person`]).
/// This is the key rate limits are counted under, and the user logs and
/// telemetry name.
pub fn local_user() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let addr = ssh_client_addr().unwrap_or_else(|| "local".into());
        format!("{}@{}", person(), addr)
    })
    .clone()
}

/// A session id unique on this host: derived from `SSH_CONNECTION` (client
/// address and port) and the pid, so two sessions never share one, and safe
/// to use as a directory name.
pub fn session_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        match std::env::var("SSH_CONNECTION") {
            Ok(conn) => {
                let mut parts = conn.split_whitespace();
                let ip = parts.next().unwrap_or("unknown");
                let port = parts.next().unwrap_or("0");
                let ip: String = ip.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                format!("ssh-{ip}-{port}-{pid}")
            }
            Err(_) => format!("local-{pid}"),
        }
    })
    .clone()
}
