//! The Datadog exporter component (`world exporter-plugin`).
//!
//! - Metrics: DogStatsD over UDP to `agent_host:dogstatsd_port` (the
//!   `log_ai.*` names of [`statsd::names`], tagged `service:`, `tool:`,
//!   `env:` (`none` when unset), and per metric `cached:`, `op:`, ...;
//!   the host's reports of dropped events as `log_ai.telemetry.dropped`).
//! - Traces: APM spans (msgpack) `PUT http://agent_host:trace_port/v0.4/traces`.
//!
//! Settings (the manifest's `settings` table, all optional): `agent_host`
//! (127.0.0.1), `dogstatsd_port` (8125), `trace_port` (8126), `service`
//! (`DD_SERVICE`, default `logai`), `env` (`DD_ENV`), `version`
//! (`DD_VERSION`, default the event's release), `metrics` / `traces`
//! (`true`/`false`, both on by default), `tags` (extra constant DogStatsD
//! tags, `"k:v,k:v"`), `timeout_ms` (HTTP, default 2000).

pub use logai_exporter_kit::model;
pub mod statsd;
pub mod traces;

#[cfg(target_arch = "wasm32")]
use logai_exporter_kit::wasi_http;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::net::UdpSocket;
    use std::sync::Mutex;

    use logai_exporter_kit::bindings::exports::logai::plugin::exporter::Guest;
    use logai_exporter_kit::bindings::logai::plugin::log::{write as log, Level};
    use logai_exporter_kit::bindings::logai::plugin::metrics::Snapshot;
    use logai_exporter_kit::bindings::logai::plugin::telemetry_types::TelemetryEvent;

    use crate::model::{self, setting_str};
    use crate::{statsd, traces, wasi_http};

    struct Settings {
        statsd_addr: String,
        trace_authority: String,
        info: traces::ServiceInfo,
        version_from_release: bool,
        metrics: bool,
        traces: bool,
        constant_tags: Vec<(String, String)>,
        timeout_ms: u64,
    }

    struct State {
        settings: Settings,
        socket: Option<UdpSocket>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    fn flag(v: &serde_json::Value, key: &str) -> Result<bool, String> {
        match setting_str(v, key).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("datadog setting `{key}` = {other:?}: expected true or false")),
        }
    }

    fn port(v: &serde_json::Value, key: &str, default: u16) -> Result<u16, String> {
        match setting_str(v, key) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("datadog setting `{key}` = {s:?} is not a port number")),
        }
    }

    struct Datadog;

    impl Guest for Datadog {
        fn configure(config: String) -> Result<(), String> {
            let v: serde_json::Value = if config.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(&config).map_err(|e| format!("datadog settings are not a JSON object: {e}"))?
            };
            let host = setting_str(&v, "agent_host").unwrap_or_else(|| "127.0.0.1".into());
            let statsd_port = port(&v, "dogstatsd_port", 8125)?;
            let trace_port = port(&v, "trace_port", 8126)?;
            let version = setting_str(&v, "version").unwrap_or_default();
            let mut constant_tags = Vec::new();
            if let Some(tags) = setting_str(&v, "tags") {
                for t in tags.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let (k, val) = t.split_once(':').unwrap_or((t, ""));
                    constant_tags.push((k.to_string(), val.to_string()));
                }
            }
            let env = setting_str(&v, "env").unwrap_or_default();
            // Every metric carries `env:` (Datadog's own word for an unset one is `none`).
            constant_tags.push((statsd::tag::ENV.into(), if env.is_empty() { "none".into() } else { env.clone() }));
            let timeout_ms = match setting_str(&v, "timeout_ms") {
                None => 2000,
                Some(s) => s.parse().map_err(|_| format!("datadog setting `timeout_ms` = {s:?} is not a number"))?,
            };
            let settings = Settings {
                statsd_addr: format!("{host}:{statsd_port}"),
                trace_authority: format!("{host}:{trace_port}"),
                info: traces::ServiceInfo {
                    service: setting_str(&v, "service").unwrap_or_else(|| "logai".into()),
                    env,
                    version: version.clone(),
                },
                version_from_release: version.is_empty(),
                metrics: flag(&v, "metrics")?,
                traces: flag(&v, "traces")?,
                constant_tags,
                timeout_ms,
            };
            let socket = if settings.metrics {
                let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("datadog: cannot open a UDP socket for DogStatsD: {e}"))?;
                Some(s)
            } else {
                None
            };
            log(
                Level::Info,
                &format!(
                    "datadog exporter: DogStatsD to {} ({}), traces to http://{}/v0.4/traces ({}), service {}",
                    settings.statsd_addr,
                    if settings.metrics { "on" } else { "off" },
                    settings.trace_authority,
                    if settings.traces { "on" } else { "off" },
                    settings.info.service
                ),
            );
            *STATE.lock().unwrap() = Some(State { settings, socket });
            Ok(())
        }

        fn export(batch: Vec<TelemetryEvent>) -> Result<(), String> {
            let mut guard = STATE.lock().unwrap();
            let state = guard.as_mut().ok_or("datadog exporter used before configure")?;
            let events: Vec<model::Event> = batch.into_iter().map(Into::into).collect();
            if state.settings.version_from_release {
                if let Some(rel) = events.iter().find_map(|e| e.attr("release").map(str::to_string)) {
                    state.settings.info.version = rel.rsplit('@').next().unwrap_or(&rel).to_string();
                }
            }
            let mut errors = Vec::new();
            if let Some(socket) = &state.socket {
                let lines: Vec<String> =
                    events.iter().flat_map(|e| statsd::metrics_for(e)).map(|m| statsd::line(&m, &state.settings.constant_tags)).collect();
                for gram in statsd::datagrams(&lines) {
                    if let Err(e) = socket.send_to(&gram, state.settings.statsd_addr.as_str()) {
                        errors.push(format!("DogStatsD to {}: {e}", state.settings.statsd_addr));
                        break;
                    }
                }
            }
            if state.settings.traces {
                let t = traces::traces(&events, &state.settings.info);
                if !t.is_empty() {
                    let body = traces::encode(&t)?;
                    let headers = [
                        ("Content-Type", "application/msgpack".to_string()),
                        ("X-Datadog-Trace-Count", t.len().to_string()),
                        ("Datadog-Meta-Lang", "rust".to_string()),
                        ("Datadog-Meta-Lang-Interpreter", "wasm32-wasip2".to_string()),
                        ("Datadog-Meta-Tracer-Version", env!("CARGO_PKG_VERSION").to_string()),
                    ];
                    match wasi_http::send(
                        "PUT",
                        false,
                        &state.settings.trace_authority,
                        "/v0.4/traces",
                        &headers,
                        &body,
                        state.settings.timeout_ms,
                    ) {
                        Ok(r) if (200..300).contains(&r.status) => {}
                        Ok(r) => errors.push(format!(
                            "trace agent http://{}/v0.4/traces answered {}: {}",
                            state.settings.trace_authority,
                            r.status,
                            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                        )),
                        Err(e) => errors.push(format!("trace agent: {e}")),
                    }
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        }

        fn flush() -> Result<(), String> {
            // Nothing is buffered: every batch is sent as it comes.
            Ok(())
        }

        fn render(_metrics: Snapshot) -> Option<String> {
            None
        }
    }

    logai_exporter_kit::bindings::export_exporter!(Datadog);
}
