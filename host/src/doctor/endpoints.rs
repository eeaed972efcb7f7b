//! `endpoint:EXPORTER:ADDRESS`: every enabled exporter's granted hosts
//! accept a TCP connection (HTTP receivers), and its granted sockets
//! (DogStatsD and other UDP receivers) resolve. A bare host takes its port
//! from a URL in the exporter's settings (a Sentry DSN), else 443.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::Finding;
use crate::config::{Config, ExporterConfig};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for x in crate::telemetry::exporters::enabled(config) {
        for host in &x.grants.allowed_hosts {
            out.push(tcp(x, &with_port(x, host)));
        }
        for socket in &x.grants.allowed_sockets {
            out.push(udp(x, socket));
        }
    }
    out
}

fn tcp(x: &ExporterConfig, addr: &str) -> Finding {
    let check = format!("endpoint:{}:{addr}", x.name);
    let addrs = match addr.to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Finding::fail(check, format!("{addr} does not resolve: {e}"), fix(x)),
    };
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(_) => return Finding::ok(check, format!("{addr} accepts connections ({a})")),
            Err(e) => last = Some(format!("{a}: {e}")),
        }
    }
    Finding::fail(check, format!("{addr} does not accept connections ({})", last.unwrap_or_else(|| "no address".into())), fix(x))
}

fn udp(x: &ExporterConfig, addr: &str) -> Finding {
    let check = format!("endpoint:{}:{addr}", x.name);
    match addr.to_socket_addrs().map(|a| a.collect::<Vec<_>>()) {
        Ok(a) if !a.is_empty() => Finding::ok(check, format!("{addr} resolves ({}); UDP has no handshake: delivery is not checked", a[0])),
        Ok(_) => Finding::fail(check, format!("{addr} resolves to no address"), fix(x)),
        Err(e) => Finding::fail(check, format!("{addr} does not resolve: {e}"), fix(x)),
    }
}

fn fix(x: &ExporterConfig) -> String {
    format!(
        "start the receiver, or fix the allowed_hosts / allowed_sockets and settings of exporter '{}'; until then its events are dropped (and counted)",
        x.name
    )
}

/// `host:port` as granted, or a bare host with the port of a URL in the
/// settings that names it (else 443).
fn with_port(x: &ExporterConfig, host: &str) -> String {
    if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        return host.to_string();
    }
    let port = x
        .settings
        .values()
        .filter_map(|v| v.as_str())
        .filter_map(|s| url_host_port(s).filter(|(h, _)| h == host).map(|(_, p)| p))
        .next()
        .unwrap_or(443);
    format!("{host}:{port}")
}

/// Host and port of `scheme://[user@]host[:port]/...`.
fn url_host_port(s: &str) -> Option<(String, u16)> {
    let (scheme, rest) = s.split_once("://")?;
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = if scheme == "http" { 80 } else { 443 };
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((hostport.to_string(), default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_hosts_take_the_port_of_the_dsn() {
        assert_eq!(url_host_port("http://k@localhost:9000/1"), Some(("localhost".into(), 9000)));
        assert_eq!(url_host_port("https://k@o1.ingest.sentry.io/5"), Some(("o1.ingest.sentry.io".into(), 443)));
        let mut x: ExporterConfig =
            toml::from_str("name = \"s\"\ncomponent = \"s.wasm\"\nsettings = { dsn = \"http://k@localhost:9000/1\" }\n").unwrap();
        assert_eq!(with_port(&x, "localhost"), "localhost:9000");
        assert_eq!(with_port(&x, "127.0.0.1:8126"), "127.0.0.1:8126");
        x.settings.clear();
        assert_eq!(with_port(&x, "example.com"), "example.com:443");
    }
}
