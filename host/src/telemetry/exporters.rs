//! Exporters from the manifest: which `[[exporter]]` entries are enabled,
//! loading them through the plugin runtime (`plugins::Exporter`), and the
//! [`ExportSink`] adapter the pipeline feeds.
//!
//! With every exporter `enabled = false`, nothing is loaded: no component is
//! read, compiled or instantiated.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Event, ExportSink};
use crate::config::{Config, ExporterConfig};
use crate::plugins::Exporter;

/// The enabled `[[exporter]]` entries, in manifest order.
pub fn enabled(config: &Config) -> Vec<&ExporterConfig> {
    config.exporter.iter().filter(|e| e.enabled).collect()
}

/// Settings handed to an exporter's `configure` (the manifest's `settings`
/// table as JSON, plus `slow_search_ms` from `[telemetry]` unless set).
pub fn settings_json(config: &Config, e: &ExporterConfig) -> String {
    let mut v = serde_json::to_value(&e.settings).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.entry("slow_search_ms").or_insert_with(|| serde_json::Value::from(config.telemetry.slow_search_ms));
    }
    v.to_string()
}

/// Load every enabled exporter. One that fails to load or configure is
/// logged with its name and the reason, and left out; the rest run.
pub async fn load(config: &Config) -> Vec<Arc<dyn ExportSink>> {
    let wanted = enabled(config);
    if wanted.is_empty() {
        tracing::debug!("no exporter enabled: none loaded");
        return Vec::new();
    }
    let mut out: Vec<Arc<dyn ExportSink>> = Vec::new();
    for e in wanted {
        match load_one(config, e).await {
            Ok(sink) => {
                tracing::info!(exporter = %e.name, component = %e.component, "exporter loaded");
                out.push(sink)
            }
            Err(err) => {
                tracing::error!(exporter = %e.name, component = %e.component, error = %format!("{err:#}"), "exporter disabled: it could not be loaded")
            }
        }
    }
    out
}

/// Load and configure one exporter (`logai doctor` checks each this way).
pub async fn load_one(config: &Config, e: &ExporterConfig) -> anyhow::Result<Arc<dyn ExportSink>> {
    let exporter = Exporter::load(config, e).await.map_err(|err| anyhow::anyhow!("{err}"))?;
    exporter.configure(&settings_json(config, e)).await.map_err(|m| anyhow::anyhow!(m))?;
    Ok(Arc::new(ComponentSink(exporter)))
}

/// An exporter component as a pipeline sink.
pub struct ComponentSink(pub Exporter);

impl ExportSink for ComponentSink {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn export(&self, batch: Arc<Vec<Event>>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.export(batch.as_ref().clone()).await })
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.flush().await })
    }
}
