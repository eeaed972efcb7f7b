//! Exporter plugins: one long-lived instance per exporter, fed telemetry
//! batches. Every operation runs under the exporter's time limit
//! (`timeout_ms`, lock wait included): a hung or trapped exporter returns
//! an error to the caller and its instance is dropped and re-created (and
//! re-configured) on the next operation.
//!
//! [`ExportEvent`] mirrors WIT `telemetry-types.telemetry-event` as a plain
//! serde type, so telemetry builds events without touching wasmtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::Store;

use super::bindings::exporter as xb;
use super::bindings::tool::logai::plugin::metrics as wm;
use super::precompiled::ArtifactCache;
use super::engine;
use super::guest::fresh_store;
use super::guest::{describe_trap, hint_missing, link_error, timeout_message, Limit};
use super::sandbox::Sandbox;
use super::state::{exporter_linker, PluginState, Watch};
use super::{NoHostServices, PluginError};
use crate::config::{Config, ExporterConfig};
use crate::coord::MetricsSnapshot;

use xb::logai::plugin::telemetry_types as wx;

/// What kind of telemetry event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A finished span (tool call, plugin call, search, cache, permit, scan).
    Span,
    /// An error with context.
    Error,
    /// A metric observation.
    Metric,
}

/// What kind of metric a [`MetricPoint`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub name: String,
    pub kind: MetricKind,
    pub value: f64,
    pub tags: Vec<(String, String)>,
}

/// A recent session step, for error events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breadcrumb {
    pub timestamp_ms: u64,
    pub category: String,
    pub message: String,
}

/// One telemetry event (mirrors WIT `telemetry-event`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportEvent {
    pub kind: EventKind,
    /// Unix time in milliseconds when the event started.
    pub timestamp_ms: u64,
    /// Span or error name (`tools/call`, `search_logs`, `search`, ...).
    pub name: String,
    /// 128-bit W3C trace id, 32 hex chars.
    pub trace_id: String,
    /// 64-bit span id, 16 hex chars.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub duration_us: u64,
    /// `ok` or an error kind.
    pub status: String,
    /// Tags: service, tool, cached, session, user, release, ...
    pub attributes: Vec<(String, String)>,
    /// Error message, for error events.
    pub message: Option<String>,
    /// Recent session steps, for error events.
    pub breadcrumbs: Vec<Breadcrumb>,
    /// Set for metric events.
    pub metric: Option<MetricPoint>,
}

impl ExportEvent {
    /// The value of attribute `name`, if set.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn labels(v: Vec<(String, String)>) -> Vec<wm::Label> {
    v.into_iter().map(|(name, value)| wm::Label { name, value }).collect()
}

impl From<ExportEvent> for wx::TelemetryEvent {
    fn from(e: ExportEvent) -> Self {
        wx::TelemetryEvent {
            kind: match e.kind {
                EventKind::Span => wx::EventKind::Span,
                EventKind::Error => wx::EventKind::Error,
                EventKind::Metric => wx::EventKind::Metric,
            },
            timestamp_ms: e.timestamp_ms,
            name: e.name,
            trace_id: e.trace_id,
            span_id: e.span_id,
            parent_span_id: e.parent_span_id,
            duration_us: e.duration_us,
            status: e.status,
            attributes: labels(e.attributes),
            message: e.message,
            breadcrumbs: e
                .breadcrumbs
                .into_iter()
                .map(|b| wx::Breadcrumb { timestamp_ms: b.timestamp_ms, category: b.category, message: b.message })
                .collect(),
            metric: e.metric.map(|m| wx::MetricPoint {
                name: m.name,
                kind: match m.kind {
                    MetricKind::Counter => wx::MetricKind::Counter,
                    MetricKind::Gauge => wx::MetricKind::Gauge,
                    MetricKind::Histogram => wx::MetricKind::Histogram,
                },
                value: m.value,
                tags: labels(m.tags),
            }),
        }
    }
}

/// A loaded exporter plugin. Cheap to clone; operations are serialized.
#[derive(Clone)]
pub struct Exporter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    sandbox: Sandbox,
    pre: xb::ExporterPluginPre<PluginState>,
    slot: tokio::sync::Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    /// The settings last given to `configure`, re-applied after a restart.
    settings: Option<String>,
    /// Set when `configure` failed: the exporter stays off.
    disabled: Option<String>,
}

struct Live {
    store: Store<PluginState>,
    bindings: xb::ExporterPlugin,
    watch: Watch,
    /// True while a guest call runs: if its future is dropped (timeout),
    /// the next operation finds it set and discards the instance.
    in_call: bool,
}

impl Exporter {
    /// Load `cfg`'s component (through the precompile cache) with its grants.
    /// Nothing is instantiated until [`Exporter::configure`] (or the first
    /// operation).
    pub async fn load(config: &Config, cfg: &ExporterConfig) -> Result<Exporter, PluginError> {
        let name = cfg.name.clone();
        let shared = engine::shared().map_err(PluginError::Engine)?;
        let sandbox = Sandbox::new(config, &name, &cfg.grants)?;
        let path = config.resolve(&cfg.component);
        let cache = ArtifactCache::open(config, &shared.engine);
        let loaded = {
            let (engine, p) = (shared.engine.clone(), path.clone());
            tokio::task::spawn_blocking(move || cache.load(&engine, &p))
                .await
                .map_err(|e| PluginError::load(&name, format!("loader failed: {e}")))?
                .map_err(|m| PluginError::load(&name, hint_missing(m, &path)))?
        };
        let linker =
            exporter_linker(&shared.engine).map_err(|e| PluginError::Engine(format!("cannot link exporter host imports: {e:#}")))?;
        let pre = linker.instantiate_pre(&loaded.component).map_err(|e| link_error(&name, &e))?;
        let pre = xb::ExporterPluginPre::new(pre).map_err(|e| {
            PluginError::load(&name, format!("does not export logai:plugin/exporter (build it against world exporter-plugin): {e:#}"))
        })?;
        tracing::info!(exporter = %name, cache = %loaded.outcome, "exporter loaded from {}", path.display());
        Ok(Exporter { inner: Arc::new(Inner { name, sandbox, pre, slot: Default::default() }) })
    }

    /// The exporter's name (from the manifest).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The exporter's time limit per operation.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.sandbox.timeout_ms)
    }

    /// The manifest's `settings` table as the JSON `configure` expects.
    pub fn settings_json(cfg: &ExporterConfig) -> String {
        serde_json::to_string(&cfg.settings).unwrap_or_else(|_| "{}".into())
    }

    /// (Re)start the instance and hand it its settings (a JSON object). An
    /// error leaves the exporter disabled with that message until the next
    /// successful `configure`.
    pub async fn configure(&self, settings_json: &str) -> Result<(), String> {
        let settings = settings_json.to_string();
        let name = self.inner.name.clone();
        let r = self
            .run("configure", Some(settings.clone()), move |b, store| {
                Box::pin(async move { b.logai_plugin_exporter().call_configure(store, &settings).await })
            })
            .await;
        let mut slot = self.inner.slot.lock().await;
        match r {
            Ok(Ok(())) => {
                slot.disabled = None;
                Ok(())
            }
            Ok(Err(m)) => {
                let msg = format!("exporter '{name}' rejected its configuration: {m}");
                slot.disabled = Some(msg.clone());
                slot.live = None;
                Err(msg)
            }
            Err(m) => Err(m),
        }
    }

    /// Send one batch.
    pub async fn export(&self, batch: Vec<ExportEvent>) -> Result<(), String> {
        let batch: Vec<wx::TelemetryEvent> = batch.into_iter().map(Into::into).collect();
        let name = self.inner.name.clone();
        self.run("export", None, move |b, store| Box::pin(async move { b.logai_plugin_exporter().call_export(store, &batch).await }))
            .await?
            .map_err(|m| format!("exporter '{name}' failed to export: {m}"))
    }

    /// Send anything buffered.
    pub async fn flush(&self) -> Result<(), String> {
        let name = self.inner.name.clone();
        self.run("flush", None, |b, store| Box::pin(async move { b.logai_plugin_exporter().call_flush(store).await }))
            .await?
            .map_err(|m| format!("exporter '{name}' failed to flush: {m}"))
    }

    /// Render the metrics as text (Prometheus exposition); `Ok(None)` from
    /// exporters that do not render.
    pub async fn render(&self, metrics: &MetricsSnapshot) -> Result<Option<String>, String> {
        let snapshot: wm::Snapshot = metrics.clone().into();
        self.run("render", None, move |b, store| Box::pin(async move { b.logai_plugin_exporter().call_render(store, &snapshot).await }))
            .await
    }

    /// One guest operation under the time limit. `restart_with`: drop any
    /// live instance and start a fresh one with these settings (configure).
    async fn run<T, F>(&self, what: &str, restart_with: Option<String>, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(
                &'a xb::ExporterPlugin,
                &'a mut Store<PluginState>,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<T>> + Send + 'a>>
            + Send,
    {
        let inner = &self.inner;
        let limit = Duration::from_millis(inner.sandbox.timeout_ms);
        let deadline = Instant::now() + limit;
        let doing = format!("during {what}");
        let work = async {
            let mut slot = inner.slot.lock().await;
            if let Some(settings) = restart_with {
                slot.live = None;
                slot.settings = Some(settings);
                slot.disabled = None;
            } else if let Some(why) = &slot.disabled {
                return Err(why.clone());
            }
            if slot.live.as_ref().is_some_and(|l| l.in_call) {
                tracing::warn!(exporter = %inner.name, "dropping an exporter instance abandoned mid-call");
                slot.live = None;
            }
            if slot.live.is_none() {
                self.restart(&mut slot, what, deadline).await?;
            }
            let live = slot.live.as_mut().unwrap();
            live.store.data_mut().deadline = deadline;
            live.in_call = true;
            let r = f(&live.bindings, &mut live.store).await;
            live.in_call = false;
            let denied = live.watch.denials.take();
            if !denied.is_empty() {
                tracing::warn!(exporter = %inner.name, "exporter '{}' was denied {doing}: {}", inner.name, denied.join("; "));
            }
            match r {
                Ok(v) => Ok(v),
                Err(e) => {
                    let watch = live.watch.clone();
                    slot.live = None;
                    let mut m = describe_trap(&format!("exporter '{}'", inner.name), &inner.sandbox, &doing, &e, &watch, Limit::Plugin);
                    if !denied.is_empty() {
                        m.push_str(&format!("; it was denied: {}", denied.join("; ")));
                    }
                    Err(m)
                }
            }
        };
        match tokio::time::timeout(limit + Duration::from_millis(50), work).await {
            Ok(r) => {
                if let Err(m) = &r {
                    tracing::warn!(exporter = %inner.name, "{m}");
                }
                r
            }
            Err(_) => {
                let m = timeout_message(&format!("exporter '{}'", inner.name), &inner.sandbox, &doing, Limit::Plugin);
                tracing::warn!(exporter = %inner.name, "{m}");
                Err(m)
            }
        }
    }

    /// A fresh instance into the slot, configured again with the last
    /// settings (unless this operation is `configure` itself); a rejected
    /// configuration disables the exporter.
    async fn restart(&self, slot: &mut Slot, what: &str, deadline: Instant) -> Result<(), String> {
        let inner = &self.inner;
        let live = self.start(deadline).await?;
        slot.live = Some(live);
        // A restarted instance gets its settings again (not when this
        // operation is `configure` itself).
        if what == "configure" {
            return Ok(());
        }
        let Some(settings) = slot.settings.clone() else {
            return Ok(());
        };
        let live = slot.live.as_mut().unwrap();
        live.in_call = true;
        let r = live.bindings.logai_plugin_exporter().call_configure(&mut live.store, &settings).await;
        live.in_call = false;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(m)) => {
                let msg = format!("exporter '{}' rejected its configuration: {m}", inner.name);
                slot.disabled = Some(msg.clone());
                slot.live = None;
                Err(msg)
            }
            Err(e) => {
                let watch = live.watch.clone();
                slot.live = None;
                Err(describe_trap(&format!("exporter '{}'", inner.name), &inner.sandbox, "during configure", &e, &watch, Limit::Plugin))
            }
        }
    }

    async fn start(&self, deadline: Instant) -> Result<Live, String> {
        let inner = &self.inner;
        let (mut store, watch) = fresh_store(&inner.sandbox, Arc::new(NoHostServices), None, deadline)?;
        match inner.pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(Live { store, bindings, watch, in_call: false }),
            Err(e) => {
                Err(describe_trap(&format!("exporter '{}'", inner.name), &inner.sandbox, "while starting", &e, &watch, Limit::Plugin))
            }
        }
    }
}
