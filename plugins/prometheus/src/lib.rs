//! The Prometheus exporter component (`world exporter-plugin`).
//!
//! It sends nothing: `logai metrics --listen` asks it to `render` the shared
//! metrics snapshot (all sessions, read from Redis by the host) as the
//! Prometheus text exposition format (version 0.0.4). `export` and `flush`
//! accept batches and ignore them, so enabling it under `logai serve` costs
//! nothing. The renderer is plain Rust over the shared records
//! (`logai-records`), so the host builds the same code in.

pub mod render;

#[cfg(target_arch = "wasm32")]
mod component {
    use logai_exporter_kit::bindings::exports::logai::plugin::exporter::Guest;
    use logai_exporter_kit::bindings::logai::plugin::metrics::Snapshot;
    use logai_exporter_kit::bindings::logai::plugin::telemetry_types::TelemetryEvent;

    use crate::render;

    static PREFIX: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

    struct Prometheus;

    impl Guest for Prometheus {
        fn configure(config: String) -> Result<(), String> {
            let v: serde_json::Value = if config.trim().is_empty() {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_str(&config).map_err(|e| format!("prometheus settings are not a JSON object: {e}"))?
            };
            let prefix = match v.get("prefix") {
                None => render::DEFAULT_PREFIX.to_string(),
                Some(serde_json::Value::String(s)) => {
                    if !s.is_empty() && !render::is_valid_metric_name(s) {
                        return Err(format!(
                            "prometheus setting `prefix` = {s:?} is not a valid metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)"
                        ));
                    }
                    s.clone()
                }
                Some(other) => return Err(format!("prometheus setting `prefix` must be a string, got {other}")),
            };
            *PREFIX.lock().unwrap() = Some(prefix);
            Ok(())
        }

        fn export(_batch: Vec<TelemetryEvent>) -> Result<(), String> {
            Ok(())
        }

        fn flush() -> Result<(), String> {
            Ok(())
        }

        fn render(metrics: Snapshot) -> Option<String> {
            let prefix = PREFIX.lock().unwrap().clone().unwrap_or_else(|| render::DEFAULT_PREFIX.to_string());
            Some(render::render(&metrics.into(), &prefix))
        }
    }

    logai_exporter_kit::bindings::export_exporter!(Prometheus);
}
