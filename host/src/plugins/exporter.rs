//! Exporter plugins: one long-lived instance per exporter, fed telemetry
//! batches. Every operation runs under the exporter's time limit
//! (`timeout_ms`, lock wait included): a hung or trapped exporter returns
//! an error to the caller and its instance is dropped and re-created (and
//! re-configured) on the next operation.
//!
//! [`ExportEvent`] is the WIT `telemetry-event` record as defined once in
//! `logai-records` (plain serde), so telemetry builds events without
//! touching wasmtime; `bindings.rs` converts it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::bindings::exporter as xb;
use super::bindings::tool::logai::plugin::metrics as wm;
use super::engine;
use super::guest::fresh_store;
use super::guest::{describe_trap, hint_missing, link_error, timeout_message, Limit};
use super::precompiled::ArtifactCache;
use super::sandbox::Sandbox;
use super::state::{exporter_linker, PluginState, Watch};
use super::{NoHostServices, PluginError};
use crate::config::{Config, ExporterConfig};
use crate::coord::MetricsSnapshot;

use xb::logai::plugin::telemetry_types as wx;

pub use logai_records::telemetry::{Breadcrumb, Event as ExportEvent, EventKind, MetricKind, MetricPoint};

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
        let (mut store, watch) = fresh_store(inner.pre.engine(), &inner.sandbox, Arc::new(NoHostServices), None, deadline)?;
        match inner.pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(Live { store, bindings, watch, in_call: false }),
            Err(e) => {
                Err(describe_trap(&format!("exporter '{}'", inner.name), &inner.sandbox, "while starting", &e, &watch, Limit::Plugin))
            }
        }
    }
}
