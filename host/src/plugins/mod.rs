//! The WebAssembly plugin runtime: the only room that touches wasmtime.
//!
//! - One [`wasmtime::Engine`] per process (component model, epoch
//!   interruption driven by a ticker thread, the pooling allocator with
//!   copy-on-write memory images; on-demand allocation when the pool cannot
//!   be reserved or `LOGAI_WASM_ALLOCATOR=on-demand`); a second, on-demand
//!   engine for large components (interpreters), whose instances' memory is
//!   unmapped when they end instead of staying resident in a warm slot.
//! - Components are compiled once and loaded precompiled from a cache
//!   ([`precompile`], `logai precompile`); their tool lists are cached with
//!   them, so a warm start instantiates nothing before `tools/list`.
//! - [`Runtime`] implements [`ToolHost`](crate::call::ToolHost): every tool
//!   call gets a fresh instance in a fresh store (nothing leaks between
//!   calls, no locks), under the plugin's time limit (`timeout_ms`, epoch
//!   deadline) and memory cap (`memory_mb`, a `ResourceLimiter`), with
//!   exactly the plugin's grants (env, read-only dirs, allowed sockets,
//!   allowed HTTP hosts; nothing by default). A trap, a timeout, the memory
//!   cap or a malformed result becomes an `isError` result naming the
//!   plugin and the limit it hit; the next call works.
//! - [`Exporter`] hosts one long-lived exporter instance for telemetry.

mod bindings;
mod call_result;
mod commands;
mod engine;
pub mod exporter;
mod guest;
mod precompiled;
mod runtime;
mod sandbox;
mod spec;
mod standby;
mod state;
mod stderr;

#[cfg(test)]
mod tests;

use futures_util::future::BoxFuture;

use crate::call::CallScope;
use crate::coord::MetricsSnapshot;
use crate::search::api as search;
use logai_records::aggregate::{AggregateRequest, AggregateResponse};

pub use commands::{list, precompile, PluginListing, PrecompileReport};
pub use engine::Allocator;
pub use exporter::{ExportEvent, Exporter};
pub use precompiled::{cache_dir, CacheOutcome};
pub use runtime::Runtime;
pub use sandbox::{DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS};

/// What plugins reach through the host imports `search` and `metrics`.
/// The lead's wiring implements it over the search gateway and the shared
/// metrics; [`NoHostServices`] stands in for tests.
pub trait HostServices: Send + Sync + 'static {
    /// Run a search for the call `scope` (rate limits, cache, permits).
    fn search(
        &self,
        scope: &CallScope,
        req: search::SearchRequest,
    ) -> BoxFuture<'static, Result<search::SearchResponse, search::SearchError>>;

    /// The configured services.
    fn list_services(&self, scope: &CallScope) -> BoxFuture<'static, Result<Vec<search::ServiceInfo>, search::SearchError>>;

    /// A page of an overflow by the reference a search returned.
    fn read_overflow(
        &self,
        scope: &CallScope,
        reference: String,
        offset: u64,
        limit: u32,
    ) -> BoxFuture<'static, Result<search::OverflowPage, search::SearchError>>;

    /// A search that returns a cursor, and with one only what was appended
    /// since, waiting up to `wait_ms` for it (`search.follow`).
    fn follow(
        &self,
        _scope: &CallScope,
        _req: search::SearchRequest,
        _cursor: Option<String>,
        _wait_ms: u32,
    ) -> BoxFuture<'static, Result<search::FollowResponse, search::SearchError>> {
        Box::pin(async { Err(search::SearchError::internal("this host cannot follow logs")) })
    }

    /// Aggregates over a service's lines (`aggregate.summarize`).
    fn summarize(&self, _scope: &CallScope, _req: AggregateRequest) -> BoxFuture<'static, Result<AggregateResponse, search::SearchError>> {
        Box::pin(async { Err(search::SearchError::internal("this host has no log aggregates")) })
    }

    /// The shared metrics snapshot.
    fn metrics(&self) -> BoxFuture<'static, MetricsSnapshot>;

    /// The windowed metrics of the last `minutes` minutes (`metrics.read-window`).
    /// Without an implementation: empty, `source = "none"`.
    fn metrics_window(&self, _minutes: u32) -> BoxFuture<'static, MetricsSnapshot> {
        Box::pin(async { MetricsSnapshot { source: "none".into(), ..Default::default() } })
    }
}

/// Host services that have nothing: searches fail with an internal error
/// saying so, metrics are empty (`source = "none"`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHostServices;

impl HostServices for NoHostServices {
    fn search(
        &self,
        _scope: &CallScope,
        _req: search::SearchRequest,
    ) -> BoxFuture<'static, Result<search::SearchResponse, search::SearchError>> {
        Box::pin(async { Err(search::SearchError::internal("this host has no log search")) })
    }
    fn list_services(&self, _scope: &CallScope) -> BoxFuture<'static, Result<Vec<search::ServiceInfo>, search::SearchError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn read_overflow(
        &self,
        _scope: &CallScope,
        _reference: String,
        _offset: u64,
        _limit: u32,
    ) -> BoxFuture<'static, Result<search::OverflowPage, search::SearchError>> {
        Box::pin(async { Err(search::SearchError::new(search::SearchErrorKind::NotFound, "this host has no overflows")) })
    }
    fn metrics(&self) -> BoxFuture<'static, MetricsSnapshot> {
        Box::pin(async { MetricsSnapshot { source: "none".into(), ..Default::default() } })
    }
}

/// Why plugins could not be loaded. Every message names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The WebAssembly engine could not be created.
    #[error("{0}")]
    Engine(String),
    /// A plugin's component could not be read, compiled, linked or listed,
    /// or declared an invalid tool.
    #[error("plugin '{plugin}': {message}")]
    Load { plugin: String, message: String },
    /// A plugin declared tools with broken specs: every problem, each
    /// naming its tool.
    #[error("plugin '{plugin}': {} broken tool spec{}:{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    Specs { plugin: String, problems: Vec<String> },
    /// A grant in the manifest is malformed (bad address, missing directory, ...).
    #[error("plugin '{plugin}': invalid grant: {message}")]
    Grant { plugin: String, message: String },
    /// Two plugins declare the same tool.
    #[error("tool '{tool}' is declared by both plugin '{first}' and plugin '{second}'; tool names must be unique (rename one or disable a plugin)")]
    DuplicateTool { tool: String, first: String, second: String },
}

impl PluginError {
    pub(crate) fn load(plugin: &str, message: impl Into<String>) -> Self {
        PluginError::Load { plugin: plugin.to_string(), message: message.into() }
    }
}
