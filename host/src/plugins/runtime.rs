//! Tool plugins: loading (cache, link, tool lists), per-call instances,
//! failure reports, and `logai precompile` / `logai plugins list`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use wasmtime::Engine;

use super::bindings::tool as tb;
use super::cache::{ArtifactCache, CacheOutcome};
use super::engine::{self, Allocator};
use super::sandbox::Sandbox;
use super::spec::{self, CheckedTool, RawToolSpec};
use super::state::{new_store, tool_linker, PluginState, Watch};
use super::{HostServices, NoHostServices, PluginError};
use crate::call::{CallScope, ToolCallError, ToolDescriptor, ToolHost, ToolOutput};
use crate::config::Config;

use tb::logai::plugin::types as wt;

/// After the deadline, how long the host waits for the epoch interrupt
/// before dropping the call outright (covers a guest blocked in a host call).
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

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
}

struct Plugin {
    name: String,
    component: PathBuf,
    sandbox: Sandbox,
    pre: tb::ToolPluginPre<PluginState>,
    tools: Vec<CheckedTool>,
    outcome: CacheOutcome,
    artifact: Option<PathBuf>,
    load_time: Duration,
    standby: Standby,
}

/// Instances kept ready per plugin: two, so back-to-back calls find one
/// while the last call's replacement is still being made.
const STANDBY_DEPTH: usize = 2;

/// One instance made ahead of its call, so instantiation (store, WASI
/// context, the guest's start-up code) and tearing down the last call's
/// store (resetting its memory slot) are off the call's critical path.
/// Each instance still serves exactly one call and is never reused: a
/// standby has run no call, seen no arguments, and gets the call's scope
/// and deadline when taken. If making one fails (a guest whose start-up
/// traps or loops), standby is switched off for that plugin and calls
/// instantiate inline, where the failure is reported to the caller.
#[derive(Default)]
struct Standby {
    /// Up to [`STANDBY_DEPTH`] instances, each for one call.
    ready: parking_lot::Mutex<Vec<Ready>>,
    /// Stores of finished calls, dropped by the background task.
    retired: parking_lot::Mutex<Vec<wasmtime::Store<PluginState>>>,
    busy: std::sync::atomic::AtomicBool,
    off: std::sync::atomic::AtomicBool,
}

struct Ready {
    store: wasmtime::Store<PluginState>,
    bindings: tb::ToolPlugin,
    watch: Watch,
}

impl Plugin {
    /// (Nothing is made at load: start-up is on every session's critical
    /// path, and a plugin that is never called costs nothing. The first
    /// call instantiates on demand and starts the standby.)
    fn take_standby(&self) -> Option<Ready> {
        self.standby.ready.lock().pop()
    }

    /// Hand a finished call's store to the background task (which drops it
    /// and makes the next standby instance), starting that task unless it
    /// is already running.
    fn retire(self: &Arc<Self>, store: wasmtime::Store<PluginState>, services: Arc<dyn HostServices>) {
        use std::sync::atomic::Ordering;
        self.standby.retired.lock().push(store);
        if self.standby.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let plugin = self.clone();
        spawn_standby_work(async move {
            loop {
                drop(std::mem::take(&mut *plugin.standby.retired.lock()));
                while !plugin.standby.off.load(Ordering::Relaxed) && plugin.standby.ready.lock().len() < STANDBY_DEPTH {
                    match plugin.instantiate_standby(services.clone()).await {
                        Ok(ready) => plugin.standby.ready.lock().push(ready),
                        Err(why) => {
                            plugin.standby.off.store(true, Ordering::Relaxed);
                            tracing::debug!(plugin = %plugin.name, "no standby instance ({why}); calls instantiate on demand");
                        }
                    }
                }
                plugin.standby.busy.store(false, Ordering::Release);
                // A store retired after the drain above, while this task
                // still looked busy, would otherwise wait for the next call.
                if plugin.standby.retired.lock().is_empty() || plugin.standby.busy.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }

    async fn instantiate_standby(&self, services: Arc<dyn HostServices>) -> Result<Ready, String> {
        let limit = Duration::from_millis(self.sandbox.timeout_ms);
        let (mut store, watch) = fresh_store(&self.sandbox, services, None, Instant::now() + limit)?;
        let bindings = tokio::time::timeout(limit + DEADLINE_GRACE, self.pre.instantiate_async(&mut store))
            .await
            .map_err(|_| "instantiation timed out".to_string())?
            .map_err(|e| format!("{e:#}"))?;
        Ok(Ready { store, bindings, watch })
    }
}

/// Run standby work (dropping finished stores, making the next instances)
/// on the standby thread, or on the current runtime if that thread could
/// not be started.
///
/// On the workers this work ran right after each call, on the worker that
/// had just written the answer and would read the next request: a request
/// arriving meanwhile waited for it (busy back-to-back calls paid it). On a
/// thread of its own it runs beside the session and a call never waits for
/// it: the call takes a standby made earlier (two are kept), or instantiates
/// inline when it finds none, as before. Handing the work over wakes that
/// thread (a system call), so it happens after the answer is written.
fn spawn_standby_work(work: impl std::future::Future<Output = ()> + Send + 'static) {
    match standby_runtime() {
        Some(handle) => crate::call::after_answer(move || drop(handle.spawn(work))),
        None => drop(tokio::spawn(work)),
    }
}

/// The process's standby thread: a current-thread runtime (its own timers
/// bound instantiation) that lives as long as the process.
fn standby_runtime() -> Option<&'static tokio::runtime::Handle> {
    static HANDLE: std::sync::OnceLock<Option<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let started =
                std::thread::Builder::new().name("logai-standby".into()).spawn(move || match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = tx.send(Some(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        tracing::warn!("cannot start the standby runtime ({e}); standby instances are made on the workers");
                        let _ = tx.send(None);
                    }
                });
            match started {
                Ok(_) => rx.recv().ok().flatten(),
                Err(e) => {
                    tracing::warn!("cannot start the standby thread ({e}); standby instances are made on the workers");
                    None
                }
            }
        })
        .as_ref()
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
        let linker = Arc::new(tool_linker(&engine).map_err(|e| PluginError::Engine(format!("cannot link host imports: {e:#}")))?);

        let mut pending = Vec::new();
        for p in config.plugin.iter().filter(|p| p.enabled) {
            let sandbox = Sandbox::new(config, &p.name, &p.grants)?;
            let path = config.resolve(&p.component);
            let (engine, cache, linker, services) = (engine.clone(), cache.clone(), linker.clone(), services.clone());
            let name = p.name.clone();
            pending.push(tokio::spawn(async move { prepare(&engine, &cache, &linker, services, name, path, sandbox).await }));
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
        Ok(Runtime { inner: Arc::new(Inner { services, plugins, tools, index, allocator: shared.allocator }) })
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

/// What happened to one guest invocation.
pub(super) enum Ended<T> {
    Done(wasmtime::Result<T>),
    /// The instance could not be created (store set-up or instantiation).
    Setup(String),
    TimedOut,
    Cancelled,
}

/// Which limit a deadline came from.
#[derive(Clone, Copy)]
pub(super) enum Limit {
    /// The plugin's `timeout_ms`.
    Plugin,
    /// The call's own (host) deadline, shorter than the plugin's.
    Call(Duration),
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
        };
        let name_for_guest = name.clone();
        let args_text = if arguments.is_null() { "{}".to_string() } else { arguments.to_string() };
        let cancel = scope.cancel.clone();
        let deadline = Instant::now() + limit;
        // Host calls the guest makes (a search) see the plugin's own limit.
        let mut scope = scope;
        scope.deadline = scope.deadline.min(deadline);
        let ready = plugin.take_standby();
        let (prepared, standby) = match ready {
            Some(Ready { mut store, bindings, watch }) => {
                store.data_mut().deadline = deadline;
                store.data_mut().call = Some(scope);
                store.set_epoch_deadline(1);
                (Ok((store, watch)), Some(bindings))
            }
            None => (fresh_store(&plugin.sandbox, self.services.clone(), Some(scope), deadline), None),
        };
        let (pre, owner, services) = (plugin.pre.clone(), plugin.clone(), self.services.clone());
        let (ended, watch) = run_guest(prepared, limit, Some(cancel), |mut store| async move {
            let inst = match standby {
                Some(b) => b,
                None => pre.instantiate_async(&mut store).await?,
            };
            let r = inst.logai_plugin_tools().call_call(&mut store, &name_for_guest, &args_text, &ctx).await;
            owner.retire(store, services);
            r
        })
        .await;
        let elapsed = started.elapsed();
        let what = format!("running tool '{name}'");
        let who = format!("plugin '{}'", plugin.name);
        let result = match ended {
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
                Err(why) => Ok(failure(
                    &plugin.name,
                    &name,
                    format!("plugin '{}' returned a malformed result from tool '{name}': {why}", plugin.name),
                )),
            },
            Ended::Done(Ok(Err(e))) => Err(match e {
                wt::ToolError::UnknownTool(t) => ToolCallError::UnknownTool(t),
                wt::ToolError::InvalidArguments(a) => ToolCallError::InvalidArguments { path: a.path, message: a.message },
                wt::ToolError::Internal(m) => ToolCallError::Internal(format!("plugin '{}': {m}", plugin.name)),
            }),
            Ended::Done(Err(e)) => Ok(failure(&plugin.name, &name, describe_trap(&who, &plugin.sandbox, &what, &e, &watch, which))),
            Ended::Setup(m) => Ok(failure(&plugin.name, &name, m)),
            Ended::TimedOut => Ok(failure(&plugin.name, &name, timeout_message(&who, &plugin.sandbox, &what, which))),
            Ended::Cancelled => Ok(ToolOutput::error_text(format!("plugin '{}': the call to tool '{name}' was cancelled", plugin.name))),
        };
        let guest_stderr = watch.stderr.text();
        if !guest_stderr.is_empty() {
            tracing::debug!(plugin = %plugin.name, tool = %name, "guest stderr: {}", guest_stderr.trim_end());
        }
        tracing::debug!(plugin = %plugin.name, tool = %name, elapsed_us = elapsed.as_micros() as u64, "plugin call finished");
        result
    }
}

fn failure(plugin: &str, tool: &str, message: String) -> ToolOutput {
    tracing::warn!(plugin, tool, "{message}");
    // (ops) counted as outcome "internal": the host failed this call.
    ToolOutput::host_failure(message)
}

/// A fresh store for one guest invocation, from the plugin's grants.
pub(super) fn fresh_store(
    sandbox: &Sandbox,
    services: Arc<dyn HostServices>,
    scope: Option<CallScope>,
    deadline: Instant,
) -> Result<(wasmtime::Store<PluginState>, Watch), String> {
    let engine = &engine::shared()?.engine;
    new_store(engine, sandbox, services, scope, deadline).map_err(|e| e.to_string())
}

/// Run `work` (instantiate if needed, then call) in `prepared`'s store
/// under `limit`, stopping early on `cancel`. Returns how it ended and what
/// the host observed.
pub(super) async fn run_guest<T, F, Fut>(
    prepared: Result<(wasmtime::Store<PluginState>, Watch), String>,
    limit: Duration,
    cancel: Option<crate::call::CancellationToken>,
    work: F,
) -> (Ended<T>, Watch)
where
    F: FnOnce(wasmtime::Store<PluginState>) -> Fut,
    Fut: std::future::Future<Output = wasmtime::Result<T>>,
{
    let (store, watch) = match prepared {
        Ok(s) => s,
        Err(e) => return (Ended::Setup(e), Watch::default()),
    };
    let fut = work(store);
    let cancelled = async {
        match &cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        biased;
        _ = cancelled => Ended::Cancelled,
        r = tokio::time::timeout(limit + DEADLINE_GRACE, fut) => match r {
            Ok(r) => Ended::Done(r),
            Err(_) => Ended::TimedOut,
        },
    };
    (ended, watch)
}

/// `who` is `plugin 'name'` or `exporter 'name'`.
pub(super) fn timeout_message(who: &str, sandbox: &Sandbox, what: &str, which: Limit) -> String {
    match which {
        Limit::Plugin => format!("{who} exceeded its time limit (timeout_ms = {}) {what}; the call was stopped", sandbox.timeout_ms),
        Limit::Call(d) => {
            format!("{who} ran past the call's deadline ({} ms left when it started) {what}; the call was stopped", d.as_millis())
        }
    }
}

/// Explain a guest failure: the limit it hit, or the trap (with the panic
/// message from its stderr, when there is one).
/// `who` is `plugin 'name'` or `exporter 'name'`.
pub(super) fn describe_trap(who: &str, sandbox: &Sandbox, what: &str, e: &wasmtime::Error, watch: &Watch, which: Limit) -> String {
    if watch.memory_hit() {
        return format!("{who} exceeded its memory limit (memory_mb = {}) {what}; the call was stopped", sandbox.memory_mb);
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("{who} exited (status {}) {what} instead of returning a result", exit.0);
    }
    let trap = e.downcast_ref::<wasmtime::Trap>().copied();
    match trap {
        Some(wasmtime::Trap::Interrupt) => return timeout_message(who, sandbox, what, which),
        Some(wasmtime::Trap::StackOverflow) => return format!("{who} overflowed its stack {what}"),
        _ => {}
    }
    let panicked = watch.stderr.panic_message();
    let mut msg = match (trap, &panicked) {
        (_, Some(p)) => format!("{who} panicked {what}: {p}"),
        (Some(t), None) => format!("{who} trapped {what}: {t}"),
        (None, None) => {
            let text = format!("{e:#}");
            if text.contains("concurrent") && text.contains("limit") {
                format!("{who} could not start {what}: too many plugin instances at once; retry shortly")
            } else {
                format!("{who} failed {what}: {}", first_line(&text))
            }
        }
    };
    if panicked.is_none() {
        if let Some(s) = watch.stderr.last_lines(3, 600) {
            msg.push_str(&format!(" (stderr: {s})"));
        }
    }
    let denials = watch.denials.take();
    if !denials.is_empty() {
        msg.push_str(&format!("; it was denied: {}", denials.join("; ")));
    }
    msg
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Turn a plugin's `call-result` into MCP terms, checking it.
fn convert(tool: &CheckedTool, r: wt::CallResult) -> Result<ToolOutput, String> {
    let mut content = Vec::with_capacity(r.content.len());
    for (i, block) in r.content.into_iter().enumerate() {
        content.push(match block {
            wt::ContentBlock::Text(text) => json!({"type": "text", "text": text}),
            wt::ContentBlock::Image(b) => json!({"type": "image", "data": blob(i, &b, "image/")?, "mimeType": b.mime_type}),
            wt::ContentBlock::Audio(b) => json!({"type": "audio", "data": blob(i, &b, "audio/")?, "mimeType": b.mime_type}),
            wt::ContentBlock::Link(l) => {
                if l.uri.is_empty() || !l.uri.contains(':') {
                    return Err(format!("content block {i}: resource link uri {:?} is not a URI", l.uri));
                }
                if l.name.is_empty() {
                    return Err(format!("content block {i}: resource link has no name"));
                }
                let mut v = json!({"type": "resource_link", "uri": l.uri, "name": l.name});
                if let Some(d) = l.description {
                    v["description"] = json!(d);
                }
                if let Some(m) = l.mime_type {
                    v["mimeType"] = json!(m);
                }
                v
            }
            wt::ContentBlock::Resource(r) => {
                if r.uri.is_empty() || !r.uri.contains(':') {
                    return Err(format!("content block {i}: embedded resource uri {:?} is not a URI", r.uri));
                }
                let mut res = json!({"uri": r.uri});
                if let Some(m) = r.mime_type {
                    res["mimeType"] = json!(m);
                }
                match (r.text, r.blob_base64) {
                    (Some(text), None) => res["text"] = json!(text),
                    (None, Some(blob)) => {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD
                            .decode(blob.as_bytes())
                            .map_err(|e| format!("content block {i}: embedded resource blob is not base64 ({e})"))?;
                        res["blob"] = json!(blob)
                    }
                    _ => return Err(format!("content block {i}: an embedded resource needs exactly one of text and blob")),
                }
                json!({"type": "resource", "resource": res})
            }
        });
    }
    let structured_content = match r.structured_content {
        None => None,
        Some(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("structured content is not valid JSON ({e})"))?;
            if !v.is_object() {
                return Err("structured content is not a JSON object".into());
            }
            Some(v)
        }
    };
    if !r.is_error {
        if let Some(validator) = &tool.output {
            match &structured_content {
                None => return Err("the tool declares an output schema but returned no structured content".into()),
                Some(v) => {
                    if let Some(err) = validator.iter_errors(v).next() {
                        let at = err.instance_path().to_string();
                        let at = if at.is_empty() { "$".to_string() } else { format!("$ {at}") };
                        return Err(format!("structured content does not match the output schema at {at}: {err}"));
                    }
                }
            }
        }
    }
    Ok(ToolOutput { content, structured_content, is_error: r.is_error, ..Default::default() })
}

fn blob(i: usize, b: &wt::Blob, prefix: &str) -> Result<String, String> {
    if !b.mime_type.starts_with(prefix) {
        return Err(format!("content block {i}: mime type {:?} is not {prefix}*", b.mime_type));
    }
    base64::engine::general_purpose::STANDARD
        .decode(b.data_base64.as_bytes())
        .map_err(|e| format!("content block {i}: data is not valid base64 ({e})"))?;
    Ok(b.data_base64.clone())
}

/// Load one plugin: component (cache or compile, on a blocking thread),
/// link, tool list (cache or one instantiation), checked specs.
async fn prepare(
    engine: &Engine,
    cache: &Arc<ArtifactCache>,
    linker: &Arc<wasmtime::component::Linker<PluginState>>,
    services: Arc<dyn HostServices>,
    name: String,
    path: PathBuf,
    sandbox: Sandbox,
) -> Result<Plugin, PluginError> {
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
    let raw: Vec<RawToolSpec> = match loaded.tools.clone() {
        Some(t) => t,
        None => {
            let limit = Duration::from_millis(sandbox.timeout_ms);
            let prepared = fresh_store(&sandbox, services, None, Instant::now() + limit);
            let pre = &pre;
            let (ended, watch) = run_guest(prepared, limit, None, |mut store| async move {
                let inst = pre.instantiate_async(&mut store).await?;
                inst.logai_plugin_tools().call_list(&mut store).await
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
    let mut tools = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::new();
    for r in &raw {
        let t = spec::check(&name, r).map_err(|m| PluginError::load(&name, m))?;
        if !seen.insert(t.descriptor.name.clone()) {
            return Err(PluginError::load(&name, format!("declares tool '{}' twice", t.descriptor.name)));
        }
        tools.push(t);
    }
    if loaded.tools.is_none() {
        if let Some(entry) = &loaded.entry {
            cache.record_tools(entry, &raw);
        }
    }
    let artifact = loaded.entry.as_ref().map(|e| e.artifact.clone());
    Ok(Plugin {
        name,
        component: path,
        sandbox,
        pre,
        tools,
        outcome: loaded.outcome,
        artifact,
        load_time: started.elapsed(),
        standby: Standby::default(),
    })
}

/// Load one `[[plugin]]` entry outside a session (`precompile`, `plugins
/// list`): no host services, errors as text for the report.
async fn prepare_entry(
    config: &Config,
    engine: &Engine,
    cache: &Arc<ArtifactCache>,
    linker: &Arc<wasmtime::component::Linker<PluginState>>,
    p: &crate::config::PluginConfig,
) -> Result<Plugin, String> {
    let sandbox = Sandbox::new(config, &p.name, &p.grants).map_err(|e| e.to_string())?;
    prepare(engine, cache, linker, Arc::new(NoHostServices), p.name.clone(), config.resolve(&p.component), sandbox)
        .await
        .map_err(|e| e.to_string())
}

/// A component whose imports the host cannot satisfy.
pub(super) fn link_error(name: &str, e: &wasmtime::Error) -> PluginError {
    PluginError::load(
        name,
        format!("cannot be linked: {} (it may import an interface this host does not provide)", first_line(&format!("{e:#}"))),
    )
}

pub(super) fn hint_missing(message: String, path: &std::path::Path) -> String {
    if !path.exists() {
        format!("{message} (build the plugins first: scripts/build-plugins)")
    } else {
        message
    }
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
fn blocking_runtime<F, Fut, T>(f: F) -> anyhow::Result<T>
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
