//! Who this session is: the user (SSH user + client address) and a session
//! id, both derived from the environment `sshd` sets.

use std::sync::OnceLock;

/// The local user name (`$USER`, `$LOGNAME`, or the uid).
pub fn local_user_name() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| format!("uid{}", unsafe { libc::getuid() }))
}

/// The client address from `SSH_CONNECTION` ("client_ip client_port server_ip server_port").
pub fn ssh_client_addr() -> Option<String> {
    let conn = std::env::var("SSH_CONNECTION").ok()?;
    conn.split_whitespace().next().map(str::to_owned)
}

/// `user@client-address` over SSH, `user@local` otherwise. This is the key
/// rate limits are counted under.
pub fn local_user() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let addr = ssh_client_addr().unwrap_or_else(|| "local".into());
        format!("{}@{}", local_user_name(), addr)
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
