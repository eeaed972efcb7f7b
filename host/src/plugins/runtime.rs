//! Tool plugins: loading (cache, link, tool lists), per-call instances and
//! failure reports. Standby instances are in `standby`, running a guest in
//! `guest`, checking a call's result in `call_result`, and `logai
//! precompile` / `logai plugins list` in `commands`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tracing::Instrument;
use wasmtime::Engine;

use super::bindings::tool as tb;
use super::call_result::convert;
use super::engine::{self, Allocator};
use super::guest::{describe_trap, fresh_store, hint_missing, link_error, run_guest, timeout_message, Ended, Limit, DEADLINE_GRACE};
use super::precompiled::{ArtifactCache, CacheOutcome};
use super::sandbox::Sandbox;
use super::spec::{self, CheckedTool, RawToolSpec};
use super::standby::{self, Instances, Ready, Standby};
use super::state::{tool_linker, PluginState, Watch};
use super::{HostServices, PluginError};
use crate::call::{CallScope, ToolCallError, ToolDescriptor, ToolHost, ToolOutput};
use crate::config::Config;

use tb::logai::plugin::types as wt;

/// The loaded tool plugins. Cheap to clone; implements [`ToolHost`].
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    services: Arc<dyn HostServices>,
    plugins: Vec<Arc<Plugin>>,
    tools: Vec<ToolDescriptor>,
    /// tool name -> (plugin index, tool index in that plugin)
    index: HashMap<String, (usize, usize)>,
    allocator: Allocator,
    /// The operator's search limits, in every call's context.
    limits: wt::SearchLimits,
}

pub(super) struct Plugin {
    pub(super) name: String,
    pub(super) component: PathBuf,
    pub(super) sandbox: Sandbox,
    pub(super) pre: tb::ToolPluginPre<PluginState>,
    pub(super) tools: Vec<CheckedTool>,
    pub(super) outcome: CacheOutcome,
    pub(super) artifact: Option<PathBuf>,
    pub(super) load_time: Duration,
    pub(super) standby: Standby,
}

impl Instances for Plugin {
    fn standby(&self) -> &Standby {
        &self.standby
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn instantiate(&self, services: Arc<dyn HostServices>) -> Result<Ready, String> {
        let limit = Duration::from_millis(self.sandbox.timeout_ms);
        let (mut store, watch) = fresh_store(self.pre.engine(), &self.sandbox, services, None, Instant::now() + limit)?;
        let bindings = tokio::time::timeout(limit + DEADLINE_GRACE, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|_| "instantiation timed out".to_string())?
            .map_err(|e| format!("{e:#}"))?;
        Ok(Ready { store, bindings, watch })
    }
}

impl Runtime {
    /// Load every enabled `[[plugin]]` of the manifest: components from the
    /// precompile cache (compiled and cached on a miss), linked against the
    /// host imports, tool lists from the cache (or one instantiation), specs
    /// checked. Refuses to start on any plugin error or on two plugins
    /// declaring the same tool.
    pub async fn load(config: &Config, services: Arc<dyn HostServices>) -> Result<Runtime, PluginError> {
        let shared = engine::shared().map_err(PluginError::Engine)?;
        let engine = shared.engine.clone();
        let cache = Arc::new(ArtifactCache::open(config, &engine));
        let mut linkers = Linkers::default();
        let limits = spec::search_limits(config);

        let mut pending = Vec::new();
        for p in config.plugin.iter().filter(|p| p.enabled) {
            let sandbox = Sandbox::new(config, &p.name, &p.grants)?;
            let path = config.resolve(&p.component);
            let (engine, linker) = linkers.for_component(&path)?;
            let (cache, services) = (cache.clone(), services.clone());
            let name = p.name.clone();
            pending.push(tokio::spawn(
                async move { prepare(&engine, &cache, &linker, services, Source { name, path, sandbox, limits }).await },
            ));
        }
        let mut plugins = Vec::new();
        for task in pending {
            let plugin = task.await.map_err(|e| PluginError::Engine(format!("plugin loader failed: {e}")))??;
            plugins.push(Arc::new(plugin));
        }

        let mut tools = Vec::new();
        let mut index: HashMap<String, (usize, usize)> = HashMap::new();
        for (pi, p) in plugins.iter().enumerate() {
            for (ti, t) in p.tools.iter().enumerate() {
                if let Some(&(other, _)) = index.get(&t.descriptor.name) {
                    return Err(PluginError::DuplicateTool {
                        tool: t.descriptor.name.clone(),
                        first: plugins[other].name.clone(),
                        second: p.name.clone(),
                    });
                }
                index.insert(t.descriptor.name.clone(), (pi, ti));
                tools.push(t.descriptor.clone());
            }
        }
        for p in &plugins {
            tracing::info!(
                plugin = %p.name,
                tools = p.tools.len(),
                cache = %p.outcome,
                load_ms = p.load_time.as_millis() as u64,
                "plugin loaded from {}",
                p.component.display()
            );
        }
        Ok(Runtime { inner: Arc::new(Inner { services, plugins, tools, index, allocator: shared.allocator, limits }) })
    }

    /// Names of the loaded plugins, in manifest order.
    pub fn plugin_names(&self) -> Vec<String> {
        self.inner.plugins.iter().map(|p| p.name.clone()).collect()
    }

    /// How each plugin's component was obtained (cache hit, compiled, ...).
    pub fn cache_outcomes(&self) -> Vec<(String, CacheOutcome)> {
        self.inner.plugins.iter().map(|p| (p.name.clone(), p.outcome.clone())).collect()
    }

    /// The instance allocator the engine uses.
    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }
}

impl ToolHost for Runtime {
    fn tools(&self) -> Vec<ToolDescriptor> {
        self.inner.tools.clone()
    }

    fn call(&self, name: &str, arguments: Value, scope: CallScope) -> BoxFuture<'static, Result<ToolOutput, ToolCallError>> {
        let inner = self.inner.clone();
        let name = name.to_string();
        Box::pin(async move { inner.call(name, arguments, scope).await })
    }
}

impl Inner {
    async fn call(&self, name: String, arguments: Value, scope: CallScope) -> Result<ToolOutput, ToolCallError> {
        let Some(&(pi, ti)) = self.index.get(&name) else {
            return Err(ToolCallError::UnknownTool(name));
        };
        let plugin = self.plugins[pi].clone();
        let started = Instant::now();
        let plugin_limit = Duration::from_millis(plugin.sandbox.timeout_ms);
        let left = scope.remaining();
        let (limit, which) = if left < plugin_limit { (left, Limit::Call(left)) } else { (plugin_limit, Limit::Plugin) };
        let ctx = wt::CallContext {
            request_id: scope.request_id.clone(),
            session_id: scope.session_id.clone(),
            user: scope.user.clone(),
            protocol_version: scope.protocol_version.clone(),
            client: scope.client.clone(),
            traceparent: scope.traceparent.clone(),
            deadline_ms: limit.as_millis() as u64,
            limits: self.limits,
        };
        let name_for_guest = name.clone();
        let args_text = if arguments.is_null() { "{}".to_string() } else { arguments.to_string() };
        let cancel = scope.cancel.clone();
        let deadline = Instant::now() + limit;
        // Host calls the guest makes (a search) see the plugin's own limit.
        let mut scope = scope;
        scope.deadline = scope.deadline.min(deadline);
        let ready = plugin.standby.take();
        let (prepared, standby) = match ready {
            Some(Ready { mut store, bindings, watch }) => {
                store.data_mut().deadline = deadline;
                store.data_mut().call = Some(scope);
                store.set_epoch_deadline(1);
                (Ok((store, watch)), Some(bindings))
            }
            None => (fresh_store(plugin.pre.engine(), &plugin.sandbox, self.services.clone(), Some(scope), deadline), None),
        };
        let (pre, owner, services) = (plugin.pre.clone(), plugin.clone(), self.services.clone());
        // The component's own span, between the tool call and the searches
        // it makes: its exclusive time is the guest's (WASM), its children's the host's.
        let span = crate::telemetry::spans::plugin_call(&plugin.name, &name);
        let (ended, watch) = run_guest(prepared, limit, Some(cancel), |mut store| async move {
            let inst = match standby {
                Some(b) => b,
                None => pre.instantiate_async(&mut store).await?,
            };
            let r = inst.logai_plugin_tools().call_call(&mut store, &name_for_guest, &args_text, &ctx).await;
            standby::retire(&owner, store, services);
            r
        })
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();
        let result = outcome(&plugin, ti, &name, ended, &watch, which);
        crate::telemetry::spans::record_plugin_outcome(&span, &result);
        let guest_stderr = watch.stderr.text();
        if !guest_stderr.is_empty() {
            tracing::debug!(plugin = %plugin.name, tool = %name, "guest stderr: {}", guest_stderr.trim_end());
        }
        tracing::debug!(plugin = %plugin.name, tool = %name, elapsed_us = elapsed.as_micros() as u64, "plugin call finished");
        result
    }
}

/// A finished invocation as the call's result: the tool's answer (with
/// what the plugin was denied, when it failed), its own error, or an
/// `isError` result naming the plugin and what stopped it.
fn outcome(
    plugin: &Plugin,
    ti: usize,
    name: &str,
    ended: Ended<Result<wt::CallResult, wt::ToolError>>,
    watch: &Watch,
    which: Limit,
) -> Result<ToolOutput, ToolCallError> {
    // The failure texts are made only for a failure.
    let what = || format!("running tool '{name}'");
    let who = || format!("plugin '{}'", plugin.name);
    match ended {
        Ended::Done(Ok(Ok(r))) => match convert(&plugin.tools[ti], r) {
            Ok(mut out) => {
                let denials = watch.denials.take();
                if !denials.is_empty() {
                    let msg = format!("plugin '{}' was denied: {}", plugin.name, denials.join("; "));
                    tracing::warn!(plugin = %plugin.name, tool = %name, "{msg}");
                    if out.is_error {
                        out.content.push(json!({"type": "text", "text": format!("(logai) {msg}")}));
                    }
                }
                Ok(out)
            }
            Err(why) => {
                Ok(failure(&plugin.name, name, format!("plugin '{}' returned a malformed result from tool '{name}': {why}", plugin.name)))
            }
        },
        Ended::Done(Ok(Err(e))) => Err(match e {
            wt::ToolError::UnknownTool(t) => ToolCallError::UnknownTool(t),
            wt::ToolError::InvalidArguments(a) => ToolCallError::InvalidArguments { path: a.path, message: a.message },
            wt::ToolError::Internal(m) => ToolCallError::Internal(format!("plugin '{}': {m}", plugin.name)),
        }),
        Ended::Done(Err(e)) => Ok(failure(&plugin.name, name, describe_trap(&who(), &plugin.sandbox, &what(), &e, watch, which))),
        Ended::Setup(m) => Ok(failure(&plugin.name, name, m)),
        Ended::TimedOut => Ok(failure(&plugin.name, name, timeout_message(&who(), &plugin.sandbox, &what(), which))),
        Ended::Cancelled => Ok(ToolOutput::error_text(format!("plugin '{}': the call to tool '{name}' was cancelled", plugin.name))),
    }
}

fn failure(plugin: &str, tool: &str, message: String) -> ToolOutput {
    tracing::warn!(plugin, tool, "{message}");
    // Counted as outcome "internal": the host failed this call.
    ToolOutput::host_failure(message)
}

/// The engine and host-import linker for each component: the shared
/// engine's, or the on-demand engine's for a large component (made when
/// the first one is loaded).
#[derive(Default)]
struct Linkers {
    made: Vec<(Engine, Arc<wasmtime::component::Linker<PluginState>>)>,
}

impl Linkers {
    fn for_component(&mut self, path: &std::path::Path) -> Result<(Engine, Arc<wasmtime::component::Linker<PluginState>>), PluginError> {
        let engine = &engine::for_component(path).map_err(PluginError::Engine)?.engine;
        if let Some(made) = self.made.iter().find(|(e, _)| Engine::same(e, engine)) {
            return Ok(made.clone());
        }
        let linker = Arc::new(tool_linker(engine).map_err(|e| PluginError::Engine(format!("cannot link host imports: {e:#}")))?);
        self.made.push((engine.clone(), linker.clone()));
        Ok((engine.clone(), linker))
    }
}

/// One `[[plugin]]` entry to load: its name, component, sandbox and the
/// search limits its tool list is made for.
pub(super) struct Source {
    pub name: String,
    pub path: PathBuf,
    pub sandbox: Sandbox,
    pub limits: wt::SearchLimits,
}

/// Load one plugin: component (cache or compile, on a blocking thread),
/// link, tool list for its limits (cache or one instantiation), checked specs.
pub(super) async fn prepare(
    engine: &Engine,
    cache: &Arc<ArtifactCache>,
    linker: &Arc<wasmtime::component::Linker<PluginState>>,
    services: Arc<dyn HostServices>,
    src: Source,
) -> Result<Plugin, PluginError> {
    let Source { name, path, sandbox, limits } = src;
    let started = Instant::now();
    let loaded = {
        let (engine, cache, p) = (engine.clone(), cache.clone(), path.clone());
        tokio::task::spawn_blocking(move || cache.load(&engine, &p))
            .await
            .map_err(|e| PluginError::load(&name, format!("loader failed: {e}")))?
            .map_err(|m| PluginError::load(&name, hint_missing(m, &path)))?
    };
    let pre = linker.instantiate_pre(&loaded.component).map_err(|e| link_error(&name, &e))?;
    let pre = tb::ToolPluginPre::new(pre)
        .map_err(|e| PluginError::load(&name, format!("does not export logai:plugin/tools (build it against world tool-plugin): {e:#}")))?;
    let list_key = spec::list_key(&limits);
    let cached = loaded.tools.clone().filter(|_| loaded.tools_for.as_deref() == Some(list_key.as_str()));
    let listed_now = cached.is_none();
    let raw: Vec<RawToolSpec> = match cached {
        Some(t) => t,
        None => {
            let limit = Duration::from_millis(sandbox.timeout_ms);
            let prepared = fresh_store(engine, &sandbox, services, None, Instant::now() + limit);
            let pre = &pre;
            let (ended, watch) = run_guest(prepared, limit, None, |mut store| async move {
                let inst = pre.instantiate_async(&mut store).await?;
                inst.logai_plugin_tools().call_list(&mut store, limits).await
            })
            .await;
            let what = "listing its tools";
            let specs = match ended {
                Ended::Done(Ok(s)) => s,
                Ended::Done(Err(e)) => {
                    return Err(PluginError::load(
                        &name,
                        describe_trap(&format!("plugin '{name}'"), &sandbox, what, &e, &watch, Limit::Plugin),
                    ))
                }
                Ended::Setup(m) => return Err(PluginError::load(&name, m)),
                Ended::TimedOut => {
                    return Err(PluginError::load(&name, timeout_message(&format!("plugin '{name}'"), &sandbox, what, Limit::Plugin)))
                }
                Ended::Cancelled => return Err(PluginError::load(&name, "cancelled")),
            };
            specs.into_iter().map(RawToolSpec::from).collect()
        }
    };
    let tools = spec::check_all(&name, &raw).map_err(|problems| PluginError::Specs { plugin: name.clone(), problems })?;
    if listed_now {
        if let Some(entry) = &loaded.entry {
            cache.record_tools(entry, &list_key, &raw);
        }
    }
    let artifact = loaded.entry.as_ref().map(|e| e.artifact.clone());
    let standby = Standby::for_engine(engine);
    Ok(Plugin { name, component: path, sandbox, pre, tools, outcome: loaded.outcome, artifact, load_time: started.elapsed(), standby })
}
