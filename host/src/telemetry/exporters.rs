//! Exporters from the manifest: which `[[exporter]]` entries are enabled,
//! loading them through the plugin runtime (`plugins::Exporter`), and the
//! [`ExportSink`] adapter the pipeline feeds.
//!
//! With every exporter `enabled = false`, nothing is loaded: no component is
//! read, compiled or instantiated.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Event, ExportSink};
use crate::plugins::Exporter;
use crate::config::{Config, ExporterConfig};
use crate::coord::MetricsSnapshot;

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
            Err(err) => tracing::error!(exporter = %e.name, component = %e.component, error = %format!("{err:#}"), "exporter disabled: it could not be loaded"),
        }
    }
    out
}

async fn load_one(config: &Config, e: &ExporterConfig) -> anyhow::Result<Arc<dyn ExportSink>> {
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

impl RenderSink for Exporter {
    fn render(&self, snapshot: MetricsSnapshot) -> BoxFuture<'_, anyhow::Result<Option<String>>> {
        Box::pin(async move { Exporter::render(self, &snapshot).await.map_err(|m| anyhow::anyhow!(m)) })
    }
}

/// Renders `/metrics`: the Prometheus component, or the built-in renderer
/// (the same code) when the manifest has no loadable `prometheus` exporter.
#[derive(Clone)]
pub struct PrometheusRenderer {
    component: Option<Arc<dyn RenderSink>>,
}

/// An exporter that can render the exposition text.
pub trait RenderSink: Send + Sync + 'static {
    fn render(&self, snapshot: MetricsSnapshot) -> BoxFuture<'_, anyhow::Result<Option<String>>>;
}

impl PrometheusRenderer {
    pub fn native() -> Self {
        PrometheusRenderer { component: None }
    }
    pub fn is_component(&self) -> bool {
        self.component.is_some()
    }
    pub async fn render(&self, snapshot: MetricsSnapshot) -> anyhow::Result<String> {
        match &self.component {
            Some(c) => match c.render(snapshot).await? {
                Some(text) => Ok(text),
                None => anyhow::bail!("the prometheus exporter component rendered nothing"),
            },
            None => Ok(super::metrics_server::render_native(&snapshot)),
        }
    }
}

/// The renderer `logai metrics` uses.
pub async fn prometheus_renderer(config: &Config) -> PrometheusRenderer {
    let Some(entry) = config.exporter.iter().find(|e| e.name == "prometheus") else {
        tracing::warn!("no [[exporter]] named \"prometheus\" in the manifest: rendering with the built-in renderer");
        return PrometheusRenderer::native();
    };
    let loaded = async {
        let exporter = Exporter::load(config, entry).await.map_err(|err| anyhow::anyhow!("{err}"))?;
        exporter.configure(&settings_json(config, entry)).await.map_err(|m| anyhow::anyhow!(m))?;
        anyhow::Ok(exporter)
    }
    .await;
    match loaded {
        Ok(exporter) => {
            tracing::info!(component = %entry.component, "rendering /metrics with the prometheus exporter component");
            PrometheusRenderer { component: Some(Arc::new(exporter)) }
        }
        Err(e) => {
            tracing::error!(component = %entry.component, error = %format!("{e:#}"), "the prometheus exporter component could not be loaded: rendering with the built-in renderer");
            PrometheusRenderer::native()
        }
    }
}

/// A sink that forwards nothing (tests of the pipeline use their own).
#[allow(dead_code)]
struct Null;

impl ExportSink for Null {
    fn name(&self) -> &str {
        "null"
    }
    fn export(&self, _batch: Arc<Vec<Event>>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}
