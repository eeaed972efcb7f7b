//! `logai serve` and friends: wires the rooms together. The search path
//! (rate limit → cache → permit → search core → cache store) lives in
//! [`crate::lookup`]; [`gateway`] wires it to the coordinator for the
//! plugins; tool-call spans and metrics in [`instrument`]; everything else
//! here is construction and shutdown order.
//!
//! Start-up is on every agent's critical path: Redis connects and exporter
//! components load in the background; only the tool plugins (precompiled)
//! load before the first request is read.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::call::CallScope;
use crate::config::Config;
use crate::coord::MetricsSnapshot;
use crate::plugins::{HostServices, Runtime};
use crate::search::{FollowResponse, OverflowPage, SearchCore, SearchError, SearchRequest, SearchResponse, ServiceInfo, SessionDir};
use crate::telemetry::{self, Telemetry};

mod gateway;
mod instrument;

pub use gateway::Gateway;
pub use instrument::Instrumented;

/// Set up logging from the manifest (stderr or `server.log_file`, never stdout).
pub fn init_logging(config: &Config) -> anyhow::Result<telemetry::TelemetryGuard> {
    let file = config.server.log_file.as_ref().map(|f| config.resolve(f));
    telemetry::init_logging(&config.server.log_level, &config.server.log_format, file.as_deref())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("logai").build()?)
}

/// Serve MCP over stdio until EOF.
pub fn run(config: Config) -> anyhow::Result<ExitCode> {
    run_as(config, None)
}

/// `logai serve --as NAME`: serve for the person the forced command named
/// (rate limits, access, logs and telemetry under that name; see
/// [`crate::identity`] for when the name is honoured).
pub fn run_as(config: Config, person: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(name) = person {
        let account = config.access.as_ref().and_then(|a| a.account.as_deref());
        if let Err(e) = crate::identity::claim_person(name, account) {
            eprintln!("logai: {e}");
            return Ok(ExitCode::from(2));
        }
    }
    let _log = init_logging(&config)?;
    let rt = runtime()?;
    let code = rt.block_on(serve(config))?;
    // Blocking search threads finish or notice cancellation on their own;
    // don't wait for stragglers past the grace period.
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(code)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let session = SessionDir::from_config(&config)
        .map_err(|e| anyhow::anyhow!("cannot create the session directory under {}: {e}", config.server.session_root))?;
    let core = SearchCore::new(&config, session).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let gateway = Gateway::new(&config, core);

    // Exporters load off the critical path; with none enabled, nothing
    // loads. The pipeline (and its bounded queue) exists from here on, so
    // the first calls' events wait in the queue while a component compiles.
    let exporter_names: Vec<String> = telemetry::exporters::enabled(&config).iter().map(|e| e.name.clone()).collect();
    let telemetry = {
        let config = config.clone();
        Telemetry::start_loading(
            &config.telemetry.clone(),
            exporter_names,
            Box::pin(async move { (telemetry::exporters::load(&config).await, None) }),
        )
    };
    telemetry.install();
    // Drops are counted in the shared metrics from the first one, whether
    // or not (or however slowly) the exporters load.
    if telemetry.is_enabled() {
        let (telemetry, gateway) = (telemetry.clone(), gateway.clone());
        tokio::spawn(async move { telemetry.count_drops_in(gateway.coordinator().await.metrics().clone()) });
    }

    let services: Arc<dyn HostServices> = Arc::new(GatewayServices(gateway.clone()));
    let plugins = match Runtime::load(&config, services).await {
        Ok(r) => r,
        Err(e) => {
            gateway.shutdown().await;
            eprintln!("logai: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    tracing::info!(
        plugins = ?plugins.plugin_names(),
        session = %crate::identity::session_id(),
        user = %crate::identity::local_user(),
        person = %crate::identity::person(),
        // Never acted on: a forced command runs whatever the client asked.
        client_asked = std::env::var("SSH_ORIGINAL_COMMAND").ok().as_deref(),
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        manifest = %config.source,
        "serving MCP on stdio"
    );
    let host = Arc::new(Instrumented::new(plugins, gateway.clone()));
    let opts = crate::mcp::ServerOptions::from_config(&config.server);
    let result = crate::mcp::serve_stdio(host, opts).await;

    // EOF: in-flight calls were cancelled by the server; flush what is left
    // (waiting, within the deadline, for an exporter still loading).
    telemetry.shutdown(Instant::now() + Duration::from_millis(config.telemetry.flush_timeout_ms)).await;
    gateway.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The plugins' `search` and `metrics` imports, served by the gateway.
struct GatewayServices(Arc<Gateway>);

impl HostServices for GatewayServices {
    fn search(&self, scope: &CallScope, req: SearchRequest) -> BoxFuture<'static, Result<SearchResponse, SearchError>> {
        Box::pin(self.0.clone().search(scope.clone(), req))
    }
    fn follow(
        &self,
        scope: &CallScope,
        req: SearchRequest,
        cursor: Option<String>,
        wait_ms: u32,
    ) -> BoxFuture<'static, Result<FollowResponse, SearchError>> {
        Box::pin(self.0.clone().follow(scope.clone(), req, cursor, wait_ms))
    }
    fn list_services(&self, _scope: &CallScope) -> BoxFuture<'static, Result<Vec<ServiceInfo>, SearchError>> {
        Box::pin(self.0.clone().list_services())
    }
    fn read_overflow(
        &self,
        _scope: &CallScope,
        reference: String,
        offset: u64,
        limit: u32,
    ) -> BoxFuture<'static, Result<OverflowPage, SearchError>> {
        Box::pin(self.0.clone().read_overflow(reference, offset, limit))
    }
    fn summarize(
        &self,
        scope: &CallScope,
        req: logai_records::aggregate::AggregateRequest,
    ) -> BoxFuture<'static, Result<logai_records::aggregate::AggregateResponse, SearchError>> {
        Box::pin(self.0.clone().summarize(scope.clone(), req))
    }
    fn metrics(&self) -> BoxFuture<'static, MetricsSnapshot> {
        Box::pin(self.0.clone().metrics())
    }
    fn metrics_window(&self, minutes: u32) -> BoxFuture<'static, MetricsSnapshot> {
        Box::pin(self.0.clone().metrics_window(minutes))
    }
}

/// `logai precompile`.
pub fn precompile(config: &Config) -> anyhow::Result<ExitCode> {
    let _log = init_logging(config)?;
    let reports = crate::plugins::precompile(config)?;
    let mut failed = 0;
    for r in &reports {
        match &r.outcome {
            Ok(outcome) => eprintln!(
                "{:<9} {:<16} {:?} in {:.0} ms -> {}{}",
                r.kind,
                r.name,
                outcome,
                r.duration.as_secs_f64() * 1000.0,
                r.artifact.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(no cache dir)".into()),
                if r.tools.is_empty() { String::new() } else { format!(" [{}]", r.tools.join(", ")) }
            ),
            Err(e) => {
                failed += 1;
                eprintln!("{:<9} {:<16} FAILED: {e}", r.kind, r.name);
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `logai plugins list`. Exits non-zero when an enabled plugin's tools are
/// unavailable (it would not load) or two plugins declare the same tool:
/// `logai serve` would refuse to start.
pub fn list_plugins(config: &Config) -> anyhow::Result<ExitCode> {
    let _log = init_logging(config)?;
    let listings = crate::plugins::list(config)?;
    let mut failed = 0;
    for p in &listings {
        println!(
            "{} {} ({})\n  component: {}\n  grants: {}",
            p.kind,
            p.name,
            if p.enabled { "enabled" } else { "disabled" },
            p.component.display(),
            p.grants
        );
        match &p.tools {
            Ok(tools) if tools.is_empty() => {}
            Ok(tools) => {
                for t in tools {
                    println!("  tool {}: {}", t.name, t.description.lines().next().unwrap_or(""));
                }
            }
            Err(e) => {
                println!("  tools: unavailable: {e}");
                failed += usize::from(p.enabled);
            }
        }
    }
    for d in duplicate_tools(&listings) {
        println!("error: {d}");
        failed += 1;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `logai config check`, past the manifest itself: load every enabled tool
/// plugin as `serve` would (compile it, list its tools for the manifest's
/// limits, check every schema) and report every problem, each naming its
/// plugin and tool. Failure when any plugin would not load.
pub fn check_plugins(config: &Config) -> anyhow::Result<ExitCode> {
    let listings = crate::plugins::list(config)?;
    let mut failed = 0;
    for p in listings.iter().filter(|p| p.kind == "plugin" && p.enabled) {
        match &p.tools {
            Ok(tools) => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                println!("plugin {}: ok ({} tools: {})", p.name, names.len(), names.join(", "));
            }
            Err(e) => {
                failed += 1;
                // The loader's message names the plugin already.
                let e = e.strip_prefix(&format!("plugin '{}': ", p.name)).unwrap_or(e);
                println!("plugin {}: FAILED: {e}", p.name);
            }
        }
    }
    for d in duplicate_tools(&listings) {
        failed += 1;
        println!("error: {d}");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Tools declared by more than one loadable plugin, as `serve` words the refusal.
fn duplicate_tools(listings: &[crate::plugins::PluginListing]) -> Vec<String> {
    let mut first: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for p in listings.iter().filter(|p| p.enabled) {
        for t in p.tools.iter().flatten() {
            if let Some(other) = first.insert(&t.name, &p.name) {
                out.push(
                    crate::plugins::PluginError::DuplicateTool { tool: t.name.clone(), first: other.into(), second: p.name.clone() }
                        .to_string(),
                );
            }
        }
    }
    out
}

/// `logai search`: the same core, without MCP or plugins.
pub fn search_cli(args: crate::search::SearchArgs) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(args.config.as_deref()).map_err(|e| anyhow::anyhow!("invalid manifest: {e}"))?;
    crate::search::run_cli(args, &config)
}

/// `logai metrics --listen ADDR`.
pub fn metrics_server(config: &Config, listen: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    let _log = init_logging(config)?;
    runtime()?.block_on(telemetry::run_metrics_server(config, listen))?;
    Ok(ExitCode::SUCCESS)
}
