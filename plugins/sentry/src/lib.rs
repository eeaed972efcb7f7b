//! The Sentry exporter component (`world exporter-plugin`).
//!
//! Error events become Sentry error events; each tool call's spans become a
//! transaction (sampled by `traces_sample_rate`, decided per trace). Both
//! are sent as envelopes (`POST <dsn host>/api/<project>/envelope/`,
//! `Content-Type: application/x-sentry-envelope`, `X-Sentry-Auth`).
//!
//! Settings: `dsn` (required), `environment` (default `production`),
//! `release` (default: the events' `release`, `logai@<version>`),
//! `traces_sample_rate` (0.0–1.0, default 1.0), `server_name`,
//! `slow_search_ms` (marks searches slower than this when the host did not),
//! `timeout_ms` (HTTP, default 2000).

pub mod build;
pub use logai_exporter_kit::model;

#[cfg(target_arch = "wasm32")]
use logai_exporter_kit::wasi_http;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use logai_exporter_kit::bindings::exports::logai::plugin::exporter::Guest;
    use logai_exporter_kit::bindings::logai::plugin::log::{write as log, Level};
    use logai_exporter_kit::bindings::logai::plugin::metrics::Snapshot;
    use logai_exporter_kit::bindings::logai::plugin::telemetry_types::TelemetryEvent;

    use crate::build::{self, Pending, Settings};
    use crate::model::setting_str;
    use crate::wasi_http;

    struct State {
        settings: Settings,
        pending: Pending,
        slow_ms: Option<u64>,
        timeout_ms: u64,
        https: bool,
        authority: String,
        path: String,
        auth: String,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    struct Sentry;

    impl Guest for Sentry {
        fn configure(config: String) -> Result<(), String> {
            let v: serde_json::Value = if config.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(&config).map_err(|e| format!("sentry settings are not a JSON object: {e}"))?
            };
            let dsn_text = setting_str(&v, "dsn").ok_or("sentry setting `dsn` is empty: set SENTRY_DSN or settings.dsn")?;
            let dsn: sentry_types::Dsn = dsn_text.parse().map_err(|e| format!("sentry setting `dsn` is not a valid DSN: {e}"))?;
            let rate = match setting_str(&v, "traces_sample_rate") {
                None => 1.0,
                Some(s) => {
                    let r: f64 = s.parse().map_err(|_| format!("sentry setting `traces_sample_rate` = {s:?} is not a number"))?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(format!("sentry setting `traces_sample_rate` = {r} must be within 0.0..=1.0"));
                    }
                    r
                }
            };
            let num = |key: &str| -> Result<Option<u64>, String> {
                match setting_str(&v, key) {
                    None => Ok(None),
                    Some(s) => s.parse().map(Some).map_err(|_| format!("sentry setting `{key}` = {s:?} is not a number")),
                }
            };
            let url = dsn.envelope_api_url();
            let https = url.scheme() == "https";
            let host = url.host_str().unwrap_or_default().to_string();
            let authority = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            let auth = dsn.to_auth(Some(concat!("logai-sentry/", env!("CARGO_PKG_VERSION")))).to_string();
            log(Level::Info, &format!("sentry exporter: envelopes to {url}, traces_sample_rate {rate}"));
            let settings = Settings {
                dsn,
                environment: setting_str(&v, "environment").unwrap_or_else(|| "production".into()),
                release: setting_str(&v, "release"),
                traces_sample_rate: rate,
                server_name: setting_str(&v, "server_name"),
            };
            *STATE.lock().unwrap() = Some(State {
                settings,
                pending: Pending::default(),
                slow_ms: num("slow_search_ms")?,
                timeout_ms: num("timeout_ms")?.unwrap_or(2000),
                https,
                authority,
                path: url.path().to_string(),
                auth,
            });
            Ok(())
        }

        fn export(batch: Vec<TelemetryEvent>) -> Result<(), String> {
            let mut guard = STATE.lock().unwrap();
            let st = guard.as_mut().ok_or("sentry exporter used before configure")?;
            let events = batch.into_iter().map(Into::into).collect();
            let envelopes = build::process(&st.settings, &mut st.pending, events, st.slow_ms);
            let mut errors = Vec::new();
            let mut sent = 0usize;
            for body in envelopes {
                let headers = [
                    ("Content-Type", "application/x-sentry-envelope".to_string()),
                    ("X-Sentry-Auth", st.auth.clone()),
                    ("User-Agent", concat!("logai-sentry/", env!("CARGO_PKG_VERSION")).to_string()),
                ];
                match wasi_http::send("POST", st.https, &st.authority, &st.path, &headers, &body, st.timeout_ms) {
                    Ok(r) if (200..300).contains(&r.status) => sent += 1,
                    Ok(r) => errors.push(format!(
                        "{} answered {}: {}",
                        st.authority,
                        r.status,
                        String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                    )),
                    Err(e) => {
                        // The receiver is down: the rest of the batch would fail the same way.
                        errors.push(e);
                        break;
                    }
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(format!("sent {sent} envelope(s); {}", errors.join("; ")))
            }
        }

        fn flush() -> Result<(), String> {
            // Spans of unfinished traces stay pending: a transaction without
            // its root would be wrong. Report how many are left.
            let guard = STATE.lock().unwrap();
            if let Some(st) = guard.as_ref() {
                let open = st.pending.open_traces();
                if open > 0 {
                    log(Level::Debug, &format!("sentry exporter: {open} unfinished trace(s) not sent at flush"));
                }
            }
            Ok(())
        }

        fn render(_metrics: Snapshot) -> Option<String> {
            None
        }
    }

    logai_exporter_kit::bindings::export_exporter!(Sentry);
}
