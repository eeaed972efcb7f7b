//! What a plugin may touch, prepared once from its manifest grants and
//! applied to every store: environment, read-only directories, socket
//! addresses (WASI sockets) and HTTP authorities (WASI HTTP). Everything
//! else is denied; the denials a host can observe (sockets, HTTP) are
//! logged and reported with the call's result, naming the grant missing.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::stderr::StderrTail;
use super::PluginError;
use crate::config::{Config, Grants};

/// Default linear memory cap when the manifest gives none.
pub const DEFAULT_MEMORY_MB: u64 = 64;
/// Default time limit per call when the manifest gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A plugin's grants, resolved and checked at load time.
#[derive(Debug)]
pub(crate) struct Sandbox {
    pub plugin: Arc<str>,
    pub memory_mb: u64,
    pub timeout_ms: u64,
    env: Vec<(String, String)>,
    dirs: Vec<(PathBuf, String)>,
    sockets: Arc<HashSet<SocketAddr>>,
    hosts: Arc<Vec<HostRule>>,
}

/// One `allowed_hosts` entry: a host name (case-insensitive) and,
/// optionally, a port.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostRule {
    host: String,
    port: Option<u16>,
}

impl HostRule {
    fn parse(s: &str) -> Result<HostRule, String> {
        let s = s.trim();
        let s = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://")).unwrap_or(s);
        let s = s.trim_end_matches('/');
        if s.is_empty() || s.contains('/') {
            return Err(format!("'{s}' is not a host or host:port"));
        }
        // [v6]:port, [v6], host:port, host
        if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| format!("'{s}': unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| format!("'{s}': bad port"))?),
                None if after.is_empty() => None,
                None => return Err(format!("'{s}' is not a host or host:port")),
            };
            return Ok(HostRule { host: h.to_ascii_lowercase(), port });
        }
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => {
                Ok(HostRule { host: h.to_ascii_lowercase(), port: Some(p.parse().map_err(|_| format!("'{s}': bad port"))?) })
            }
            _ => Ok(HostRule { host: s.to_ascii_lowercase(), port: None }),
        }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.host.eq_ignore_ascii_case(host) && self.port.is_none_or(|p| p == port)
    }
}

/// Whether `authority` (`host[:port]`, default port from the scheme) is
/// allowed by `rules`.
pub(crate) fn host_allowed(rules: &[HostRule], authority: &str, default_port: u16) -> bool {
    let (host, port) = split_authority(authority, default_port);
    rules.iter().any(|r| r.matches(&host, port))
}

fn split_authority(authority: &str, default_port: u16) -> (String, u16) {
    let a = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    if let Some(rest) = a.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port);
            return (h.to_string(), port);
        }
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().unwrap_or(default_port)),
        _ => (a.to_string(), default_port),
    }
}

impl Sandbox {
    /// Check and resolve `grants` for plugin `name`.
    pub fn new(config: &Config, name: &str, grants: &Grants) -> Result<Sandbox, PluginError> {
        let err = |m: String| PluginError::Grant { plugin: name.to_string(), message: m };
        let memory_mb = grants.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if memory_mb == 0 || memory_mb as usize > super::engine::MAX_MEMORY_BYTES >> 20 {
            return Err(err(format!("memory_mb = {memory_mb} is out of range (1..={})", super::engine::MAX_MEMORY_BYTES >> 20)));
        }
        let timeout_ms = grants.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(err("timeout_ms must be at least 1".into()));
        }
        let mut env = Vec::new();
        for var in &grants.env {
            if var.is_empty() || var.contains('=') {
                return Err(err(format!("env: '{var}' is not a variable name")));
            }
            // A granted variable that is unset is simply absent in the guest.
            if let Ok(v) = std::env::var(var) {
                env.push((var.clone(), v));
            }
        }
        let mut dirs = Vec::new();
        for d in &grants.dirs {
            let (host, guest) = match d.split_once(':') {
                Some((h, g)) => (h, g.to_string()),
                None => (d.as_str(), d.clone()),
            };
            let host_path = config.resolve(host);
            if !host_path.is_dir() {
                return Err(err(format!("dirs: '{}' is not a directory", host_path.display())));
            }
            dirs.push((host_path, guest));
        }
        let mut sockets = HashSet::new();
        for s in &grants.allowed_sockets {
            let addrs: Vec<SocketAddr> = match s.parse::<SocketAddr>() {
                Ok(a) => vec![a],
                Err(_) => s.to_socket_addrs().map_err(|e| err(format!("allowed_sockets: '{s}' is not an ip:port ({e})")))?.collect(),
            };
            sockets.extend(addrs);
        }
        let mut hosts = Vec::new();
        for h in &grants.allowed_hosts {
            hosts.push(HostRule::parse(h).map_err(|m| err(format!("allowed_hosts: {m}")))?);
        }
        Ok(Sandbox { plugin: Arc::from(name), memory_mb, timeout_ms, env, dirs, sockets: Arc::new(sockets), hosts: Arc::new(hosts) })
    }

    pub fn hosts(&self) -> Arc<Vec<HostRule>> {
        self.hosts.clone()
    }

    /// A fresh WASI context carrying exactly the grants. Guest stderr goes to
    /// `stderr` (kept for trap reports and logged); stdout is discarded;
    /// stdin is empty.
    pub fn wasi(&self, stderr: &StderrTail, denials: &Denials) -> Result<WasiCtx, PluginError> {
        let mut b = WasiCtxBuilder::new();
        b.stderr(stderr.clone());
        for (k, v) in &self.env {
            b.env(k, v);
        }
        for (host, guest) in &self.dirs {
            b.preopened_dir(host, guest, FsPerms::ReadOnly).map_err(|e| PluginError::Grant {
                plugin: self.plugin.to_string(),
                message: format!("dirs: cannot open '{}': {e:#}", host.display()),
            })?;
        }
        let allowed = self.sockets.clone();
        let denials = denials.clone();
        // TCP and UDP are on so every attempt reaches the address check
        // below (which denies all but the grant, and reports it); name
        // lookups only when some address is granted.
        b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(!allowed.is_empty());
        b.socket_addr_check(move |addr, usage| {
            let ok = socket_allowed(&allowed, addr, usage);
            if !ok {
                denials.push(format!(
                    "{} {addr} is not in its allowed_sockets grant",
                    match usage {
                        SocketAddrUse::TcpConnect => "TCP connect to",
                        SocketAddrUse::TcpBind => "TCP bind to",
                        SocketAddrUse::TcpListen => "TCP listen on",
                        SocketAddrUse::TcpAccept => "TCP accept from",
                        SocketAddrUse::UdpBind => "UDP bind to",
                        SocketAddrUse::UdpSend => "UDP send to",
                        SocketAddrUse::UdpReceive => "UDP receive from",
                    }
                ));
            }
            Box::pin(async move { ok })
        });
        Ok(b.build())
    }

    /// The grants as the manifest states them, for messages.
    pub fn describe(grants: &Grants) -> String {
        let list = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        format!(
            "memory_mb = {}, timeout_ms = {}, env: {}, dirs: {}, allowed_hosts: {}, allowed_sockets: {}",
            grants.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            grants.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            list(&grants.env),
            list(&grants.dirs),
            list(&grants.allowed_hosts),
            list(&grants.allowed_sockets)
        )
    }
}

fn socket_allowed(allowed: &HashSet<SocketAddr>, addr: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        // Implicit binds (before connect/send) use the wildcard address and
        // an ephemeral port; nothing else may bind, listen or accept.
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.port() == 0 && is_unspecified(addr.ip()),
        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
        SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
            allowed.contains(&addr) || allowed.contains(&unmapped(addr))
        }
    }
}

fn is_unspecified(ip: IpAddr) -> bool {
    ip.is_unspecified()
}

fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        _ => addr,
    }
}

/// Accesses the host refused during one call (or one exporter operation).
#[derive(Clone, Debug, Default)]
pub(crate) struct Denials(Arc<Mutex<Vec<String>>>);

impl Denials {
    pub fn push(&self, what: String) {
        let mut v = self.0.lock();
        if v.len() < 16 && !v.contains(&what) {
            v.push(what);
        }
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules() {
        let rules: Vec<HostRule> =
            ["sentry.io", "127.0.0.1:8126", "[::1]:9000", "https://Example.com/"].iter().map(|s| HostRule::parse(s).unwrap()).collect();
        assert!(host_allowed(&rules, "sentry.io", 443));
        assert!(host_allowed(&rules, "SENTRY.io:8443", 443));
        assert!(host_allowed(&rules, "127.0.0.1:8126", 80));
        assert!(!host_allowed(&rules, "127.0.0.1:8125", 80));
        assert!(!host_allowed(&rules, "127.0.0.1", 80));
        assert!(host_allowed(&rules, "[::1]:9000", 80));
        assert!(host_allowed(&rules, "example.com", 443));
        assert!(!host_allowed(&rules, "evil.com", 443));
        assert!(!host_allowed(&rules, "sentry.io.evil.com", 443));
        assert!(!host_allowed(&rules, "user@evil.com", 443));
        assert!(HostRule::parse("a/b").is_err());
    }

    #[test]
    fn socket_rules() {
        let allowed: HashSet<SocketAddr> = ["127.0.0.1:8125".parse().unwrap()].into_iter().collect();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(socket_allowed(&allowed, a("127.0.0.1:8125"), SocketAddrUse::UdpSend));
        assert!(socket_allowed(&allowed, a("[::ffff:127.0.0.1]:8125"), SocketAddrUse::UdpSend));
        assert!(!socket_allowed(&allowed, a("127.0.0.1:8126"), SocketAddrUse::UdpSend));
        assert!(!socket_allowed(&allowed, a("127.0.0.1:8125"), SocketAddrUse::TcpListen));
        assert!(socket_allowed(&allowed, a("0.0.0.0:0"), SocketAddrUse::UdpBind));
        assert!(!socket_allowed(&allowed, a("0.0.0.0:53"), SocketAddrUse::UdpBind));
        assert!(socket_allowed(&HashSet::new(), a("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!socket_allowed(&HashSet::new(), a("127.0.0.1:8125"), SocketAddrUse::UdpSend));
        assert!(!socket_allowed(&HashSet::new(), a("0.0.0.0:0"), SocketAddrUse::TcpListen));
    }
}
