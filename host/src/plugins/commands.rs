//! `logai precompile` and `logai plugins list`: plugins loaded outside a
//! session, with no host services, each one's outcome reported as text.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::engine;
use super::guest::hint_missing;
use super::precompiled::{ArtifactCache, CacheOutcome};
use super::runtime::{prepare, Plugin};
use super::sandbox::Sandbox;
use super::state::{tool_linker, PluginState};
use super::NoHostServices;
use crate::call::ToolDescriptor;
use crate::config::Config;

/// Load one `[[plugin]]` entry outside a session (`precompile`, `plugins
/// list`): no host services, errors as text for the report.
pub(super) async fn prepare_entry(
    config: &Config,
    engine: &Engine,
    cache: &Arc<ArtifactCache>,
    linker: &Arc<wasmtime::component::Linker<PluginState>>,
    p: &crate::config::PluginConfig,
) -> Result<Plugin, String> {
    let sandbox = Sandbox::new(config, &p.name, &p.grants).map_err(|e| e.to_string())?;
    let src = super::runtime::Source {
        name: p.name.clone(),
        path: config.resolve(&p.component),
        sandbox,
        limits: super::spec::search_limits(config),
    };
    prepare(engine, cache, linker, Arc::new(NoHostServices), src).await.map_err(|e| e.to_string())
}

// ---- logai precompile / logai plugins list ----

/// One component `precompile` handled.
#[derive(Clone, Debug)]
pub struct PrecompileReport {
    pub name: String,
    /// `plugin` or `exporter`.
    pub kind: &'static str,
    pub component: PathBuf,
    /// Where the artifact is, when cached.
    pub artifact: Option<PathBuf>,
    pub outcome: Result<CacheOutcome, String>,
    pub duration: Duration,
    /// The plugin's tools (empty for exporters).
    pub tools: Vec<String>,
}

/// Compile every enabled plugin and exporter into the cache (and record
/// each tool plugin's tool list), so `serve` starts without compiling.
/// Errors are per component in the reports; `Err` only when the engine or
/// the cache directory is unusable.
pub fn precompile(config: &Config) -> anyhow::Result<Vec<PrecompileReport>> {
    let config = config.clone();
    blocking_runtime(move || async move {
        let shared = engine::shared().map_err(anyhow::Error::msg)?;
        let cache = Arc::new(ArtifactCache::open(&config, &shared.engine));
        if cache.dir().is_none() {
            anyhow::bail!("the precompile cache directory is unusable (see the warning above); set LOGAI_CACHE_DIR");
        }
        let linker = Arc::new(tool_linker(&shared.engine).map_err(|e| anyhow::anyhow!("cannot link host imports: {e:#}"))?);
        let mut reports = Vec::new();
        for p in config.plugin.iter().filter(|p| p.enabled) {
            let started = Instant::now();
            let path = config.resolve(&p.component);
            let outcome = prepare_entry(&config, &shared.engine, &cache, &linker, p).await;
            let (outcome, tools, artifact) = match outcome {
                Ok(plugin) => {
                    (Ok(plugin.outcome.clone()), plugin.tools.iter().map(|t| t.descriptor.name.clone()).collect(), plugin.artifact.clone())
                }
                Err(e) => (Err(e), Vec::new(), None),
            };
            reports.push(PrecompileReport {
                name: p.name.clone(),
                kind: "plugin",
                artifact,
                component: path,
                outcome,
                duration: started.elapsed(),
                tools,
            });
        }
        for x in config.exporter.iter().filter(|x| x.enabled) {
            let started = Instant::now();
            let path = config.resolve(&x.component);
            let loaded = {
                let (engine, cache, p) = (shared.engine.clone(), cache.clone(), path.clone());
                tokio::task::spawn_blocking(move || cache.load(&engine, &p).map(|l| (l.outcome, l.entry.map(|e| e.artifact))))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
                    .map_err(|m| format!("exporter '{}': {}", x.name, hint_missing(m, &path)))
            };
            let (outcome, artifact) = match loaded {
                Ok((o, a)) => (Ok(o), a),
                Err(e) => (Err(e), None),
            };
            reports.push(PrecompileReport {
                name: x.name.clone(),
                kind: "exporter",
                artifact,
                component: path,
                outcome,
                duration: started.elapsed(),
                tools: Vec::new(),
            });
        }
        Ok(reports)
    })
}

/// One `[[plugin]]` or `[[exporter]]` as `logai plugins list` shows it.
#[derive(Clone, Debug)]
pub struct PluginListing {
    pub name: String,
    /// `plugin` or `exporter`.
    pub kind: &'static str,
    pub component: PathBuf,
    pub enabled: bool,
    /// The grants, one line (`memory_mb = 16, timeout_ms = 2000, env: none, ...`).
    pub grants: String,
    /// The tools (tool plugins that load), or why they could not be listed.
    pub tools: Result<Vec<ToolDescriptor>, String>,
}

/// Every plugin and exporter with its grants, and each enabled tool
/// plugin's tools (loading it through the cache, compiling on a miss).
pub fn list(config: &Config) -> anyhow::Result<Vec<PluginListing>> {
    let config = config.clone();
    blocking_runtime(move || async move {
        let shared = engine::shared().map_err(anyhow::Error::msg)?;
        let cache = Arc::new(ArtifactCache::open(&config, &shared.engine));
        let linker = Arc::new(tool_linker(&shared.engine).map_err(|e| anyhow::anyhow!("cannot link host imports: {e:#}"))?);
        let mut out = Vec::new();
        for p in &config.plugin {
            let path = config.resolve(&p.component);
            let tools = if !p.enabled {
                Err("disabled".to_string())
            } else {
                prepare_entry(&config, &shared.engine, &cache, &linker, p)
                    .await
                    .map(|plugin| plugin.tools.iter().map(|t| t.descriptor.clone()).collect())
            };
            out.push(PluginListing {
                name: p.name.clone(),
                kind: "plugin",
                component: path,
                enabled: p.enabled,
                grants: Sandbox::describe(&p.grants),
                tools,
            });
        }
        for x in &config.exporter {
            out.push(PluginListing {
                name: x.name.clone(),
                kind: "exporter",
                component: config.resolve(&x.component),
                enabled: x.enabled,
                grants: Sandbox::describe(&x.grants),
                tools: Ok(Vec::new()),
            });
        }
        Ok(out)
    })
}

/// Run async work to completion from synchronous code (the CLI), on a
/// runtime of its own in a thread of its own (so it works whether or not
/// the caller is inside a runtime).
pub(super) fn blocking_runtime<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        rt.block_on(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the plugin loader thread panicked"))?
}
