//! `logai metrics --listen ADDR`: a long-lived HTTP server (hyper 1) with
//! `/metrics` — the shared metrics of every session (`Coordinator::snapshot`,
//! from Redis) rendered by the Prometheus exporter component — and `/healthz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::coord::{Coordinator, MetricsSnapshot};
use crate::plugins::Exporter;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the current metrics; `source` is `redis` or `local`.
pub type Render = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<(String, String)>> + Send + Sync>;

/// Render a snapshot with the built-in renderer: the Prometheus component's
/// own code (`logai-exporter-prometheus`), compiled natively. Used by
/// `logai metrics` when the component cannot be loaded, and by tests.
pub fn render_native(s: &MetricsSnapshot) -> String {
    logai_exporter_prometheus::render::render(s, logai_exporter_prometheus::render::DEFAULT_PREFIX)
}

/// Serve `/metrics` and `/healthz` on `listener` until `stop` is cancelled.
pub async fn serve_metrics(listener: TcpListener, render: Render, stop: CancellationToken) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics server listening (GET /metrics, /healthz)");
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics server: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(handle(req, render).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(%peer, error = %e, "metrics connection ended with an error") },
                _ = stop.cancelled() => {}
            }
        });
    }
    Ok(())
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

async fn handle(req: Request<Incoming>, render: Render) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => match render().await {
            Ok((body, _)) => text(StatusCode::OK, CONTENT_TYPE, body),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "rendering metrics failed");
                text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("rendering metrics failed: {e:#}\n"))
            }
        },
        "/healthz" => match render().await {
            Ok((_, source)) => text(StatusCode::OK, "application/json", format!("{{\"status\":\"ok\",\"metrics_source\":\"{source}\"}}\n")),
            Err(e) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                serde_json::json!({"status": "error", "error": format!("{e:#}")}).to_string() + "\n",
            ),
        },
        "/" => text(StatusCode::OK, "text/plain", "logai metrics: GET /metrics (Prometheus), GET /healthz\n".into()),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics or /healthz\n".into()),
    }
}

/// `logai metrics --listen ADDR`: coordinate through the manifest's Redis,
/// render with the Prometheus exporter component (the manifest's
/// `[[exporter]] name = "prometheus"`; `enabled` is not required here, the
/// command is the choice), serve until SIGINT/SIGTERM.
pub async fn run_metrics_server(config: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let coord = Coordinator::start(&config.redis, &config.limits, &config.cache).await;
    tracing::info!(mode = ?coord.mode(), "metrics server coordinating");
    let renderer = prometheus_renderer(config).await;
    let render: Render = Arc::new(move || {
        let coord = coord.clone();
        let renderer = renderer.clone();
        Box::pin(async move {
            let snap = coord.snapshot().await;
            let source = snap.source.clone();
            let body = renderer.render(snap).await?;
            Ok((body, source))
        })
    });
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("metrics server stopping");
        stopper.cancel();
    });
    serve_metrics(listener, render, stop).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

// ---- the renderer: the prometheus exporter component, or the same code built in ----

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
            None => Ok(render_native(&snapshot)),
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
        exporter.configure(&super::exporters::settings_json(config, entry)).await.map_err(|m| anyhow::anyhow!(m))?;
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
