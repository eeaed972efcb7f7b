//! What a plugin's store holds: WASI and WASI HTTP state carrying its
//! grants, the memory limiter, the call it serves, and the host imports
//! (`log`, `progress`, `cancelled`, `search`, `metrics`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::http;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::{exporter as xb, tool as tb};
use super::sandbox::{host_allowed, Denials, HostRule, Sandbox};
use super::stderr::StderrTail;
use super::{HostServices, PluginError};
use crate::call::CallScope;
use crate::search::api;

use tb::logai::plugin::{aggregate, cancelled, log, metrics, progress, search, types};

/// Longest log message a plugin may write in one record.
const MAX_LOG_CHARS: usize = 8 * 1024;

/// What the host observed during one call, readable after the store is
/// gone (a timed-out call's store is dropped with its future).
#[derive(Clone, Default)]
pub(crate) struct Watch {
    pub memory_hit: Arc<AtomicBool>,
    pub denials: Denials,
    pub stderr: StderrTail,
}

impl Watch {
    pub fn memory_hit(&self) -> bool {
        self.memory_hit.load(Ordering::Relaxed)
    }
}

pub(crate) struct PluginState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpHooks,
    table: ResourceTable,
    limiter: Limiter,
    /// When the current call must end (checked every epoch tick).
    pub deadline: Instant,
    /// The tool call being served; `None` for exporters and `tools.list`.
    pub call: Option<CallScope>,
    services: Arc<dyn HostServices>,
}

/// A store for one call (or one exporter instance) of the sandboxed plugin.
pub(crate) fn new_store(
    engine: &Engine,
    sandbox: &Sandbox,
    services: Arc<dyn HostServices>,
    call: Option<CallScope>,
    deadline: Instant,
) -> Result<(Store<PluginState>, Watch), PluginError> {
    let watch = Watch::default();
    let wasi = sandbox.wasi(&watch.stderr, &watch.denials)?;
    let state = PluginState {
        plugin: sandbox.plugin.clone(),
        wasi,
        http: WasiHttpCtx::new(),
        hooks: HttpHooks { plugin: sandbox.plugin.clone(), rules: sandbox.hosts(), denials: watch.denials.clone() },
        table: ResourceTable::new(),
        limiter: Limiter { max_bytes: (sandbox.memory_mb as usize) << 20, hit: watch.memory_hit.clone() },
        deadline,
        call,
        services,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Yield to the executor once per tick so cancellation and the
            // outer timeout are noticed even while the guest spins.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok((store, watch))
}

/// The linker for tool plugins: WASI p2, WASI HTTP, and the logai imports.
pub(crate) fn tool_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
    tb::ToolPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut l, |s| s)?;
    Ok(l)
}

/// The linker for exporter plugins: WASI p2, WASI HTTP, and `log`.
pub(crate) fn exporter_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
    xb::ExporterPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut l, |s| s)?;
    Ok(l)
}

// ---- limits ----

struct Limiter {
    max_bytes: usize,
    hit: Arc<AtomicBool>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        8
    }
}

// ---- WASI ----

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Outgoing HTTP goes only to the plugin's `allowed_hosts`.
struct HttpHooks {
    plugin: Arc<str>,
    rules: Arc<Vec<HostRule>>,
    denials: Denials,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        if !host_allowed(&self.rules, &authority, if https { 443 } else { 80 }) {
            let what = format!("HTTP request to {authority} is not in its allowed_hosts grant");
            tracing::debug!(plugin = %self.plugin, "denied: {what}");
            self.denials.push(what);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>))
        })
    }
}

// ---- logai imports ----

impl types::Host for PluginState {}
impl xb::logai::plugin::telemetry_types::Host for PluginState {}

impl log::Host for PluginState {
    fn write(&mut self, level: log::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_CHARS {
            let mut cut = MAX_LOG_CHARS;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        let request = self.call.as_ref().map(|c| c.request_id.as_str()).unwrap_or("");
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "logai::plugin", plugin, request, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "logai::plugin", plugin, request, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "logai::plugin", plugin, request, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "logai::plugin", plugin, request, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "logai::plugin", plugin, request, "{message}")
            }
        }
    }
}

impl progress::Host for PluginState {
    fn report(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(call) = &self.call {
            if progress.is_finite() {
                call.progress.report(progress, total.filter(|t| t.is_finite()), message);
            }
        }
    }
}

impl cancelled::Host for PluginState {
    fn is_cancelled(&mut self) -> bool {
        self.call.as_ref().is_some_and(|c| c.cancel.is_cancelled())
    }
}

fn outside_call() -> search::SearchError {
    search::SearchError {
        kind: search::SearchErrorKind::Internal,
        message: "the search interface is only available while serving a tool call".into(),
        field: None,
    }
}

impl search::Host for PluginState {
    async fn search(&mut self, request: search::SearchRequest) -> Result<search::SearchResponse, search::SearchError> {
        let Some(scope) = self.call.clone() else {
            return Err(outside_call());
        };
        let fut = self.services.search(&scope, api::SearchRequest::from(request));
        fut.await.map(Into::into).map_err(Into::into)
    }

    async fn list_services(&mut self) -> Result<Vec<search::ServiceInfo>, search::SearchError> {
        let Some(scope) = self.call.clone() else {
            return Err(outside_call());
        };
        let fut = self.services.list_services(&scope);
        fut.await.map(|v| v.into_iter().map(Into::into).collect()).map_err(Into::into)
    }

    async fn read_overflow(&mut self, reference: String, offset: u64, limit: u32) -> Result<search::OverflowPage, search::SearchError> {
        let Some(scope) = self.call.clone() else {
            return Err(outside_call());
        };
        let fut = self.services.read_overflow(&scope, reference, offset, limit);
        fut.await.map(Into::into).map_err(Into::into)
    }

    async fn follow(
        &mut self,
        request: search::SearchRequest,
        cursor: Option<String>,
        wait_ms: u32,
    ) -> Result<search::FollowResponse, search::SearchError> {
        let Some(scope) = self.call.clone() else {
            return Err(outside_call());
        };
        let fut = self.services.follow(&scope, api::SearchRequest::from(request), cursor, wait_ms);
        fut.await.map(Into::into).map_err(Into::into)
    }
}

impl aggregate::Host for PluginState {
    async fn summarize(&mut self, request: aggregate::AggregateRequest) -> Result<aggregate::AggregateResponse, search::SearchError> {
        let Some(scope) = self.call.clone() else {
            return Err(outside_call());
        };
        let fut = self.services.summarize(&scope, request.into());
        fut.await.map(Into::into).map_err(Into::into)
    }
}

impl metrics::Host for PluginState {
    async fn read(&mut self) -> metrics::Snapshot {
        let fut = self.services.metrics();
        fut.await.into()
    }

    async fn read_window(&mut self, minutes: u32) -> metrics::Snapshot {
        let fut = self.services.metrics_window(minutes);
        fut.await.into()
    }
}
