//! The host side of the plugins' `search` import: the search path
//! ([`crate::lookup`]) wired to the coordinator, with its span and metrics;
//! the other imports (services, overflow pages, metrics) passed through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::call::CallScope;
use crate::config::Config;
use crate::coord::names::{self, label, Cached};
use crate::coord::{Coordinator, MetricsSnapshot};
use crate::lookup::Lookup;
use crate::search::{FollowResponse, OverflowPage, SearchCore, SearchError, SearchRequest, SearchResponse, ServiceInfo};
use logai_records::aggregate::{AggregateRequest, AggregateResponse};

/// Searches for the plugins, coordinated with every other session.
pub struct Gateway {
    core: Arc<SearchCore>,
    /// Started in the background so Redis never delays the first answer.
    coord: Arc<OnceCell<Coordinator>>,
    coord_start: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Coordinator>>>,
    lookup: Lookup,
}

impl Gateway {
    pub fn new(config: &Config, core: SearchCore) -> Arc<Gateway> {
        let (redis, mut limits, cache) = (config.redis.clone(), config.limits.clone(), config.cache.clone());
        limits.slot_dir = config.slot_dir().display().to_string();
        let handle = tokio::spawn(async move { Coordinator::start(&redis, &limits, &cache).await });
        let core = Arc::new(core);
        Arc::new(Gateway {
            lookup: Lookup::new(config, core.clone()),
            core,
            coord: Arc::new(OnceCell::new()),
            coord_start: tokio::sync::Mutex::new(Some(handle)),
        })
    }

    /// The coordinator if something already waited for its start.
    pub fn started_coordinator(&self) -> Option<&Coordinator> {
        self.coord.get()
    }

    /// The coordinator, once its start (Redis connect or fallback) is done.
    pub async fn coordinator(&self) -> &Coordinator {
        self.coord
            .get_or_init(|| async {
                let handle = self.coord_start.lock().await.take();
                match handle {
                    Some(h) => h.await.expect("coordinator start panicked"),
                    None => unreachable!("coordinator start taken twice"),
                }
            })
            .await
    }

    pub async fn search(self: Arc<Self>, scope: CallScope, req: SearchRequest) -> Result<SearchResponse, SearchError> {
        let started = Instant::now();
        let service = req.service.clone();
        let span = crate::telemetry::spans::search(&req);
        let result = async { self.lookup.answer(self.coordinator().await, &scope, req).await }.instrument(span.clone()).await;
        crate::telemetry::spans::record_search(&span, &result);
        if let Ok(SearchResponse { overflow: Some(o), .. }) = &result {
            self.lookup.grant().note_overflow(&o.reference, &service);
        }
        self.count(&service, result.as_ref().map(|r| r.cached), started).await;
        result
    }

    /// A search that returns a cursor and, given one, only what was
    /// appended since, waiting up to `wait_ms` for it (`lookup::follow`).
    /// Its span and metrics are a search's; the duration counted leaves
    /// the wait out (the time in the search core, for a call that waited).
    pub async fn follow(
        self: Arc<Self>,
        scope: CallScope,
        req: SearchRequest,
        cursor: Option<String>,
        wait_ms: u32,
    ) -> Result<FollowResponse, SearchError> {
        let started = Instant::now();
        let service = req.service.clone();
        let waited = cursor.is_some() && wait_ms > 0;
        let span = crate::telemetry::spans::search(&req);
        let result =
            async { self.lookup.follow(self.coordinator().await, &scope, req, cursor, wait_ms).await }.instrument(span.clone()).await;
        let (cursor, result) = match result {
            Ok(f) => (f.cursor, Ok(f.response)),
            Err(e) => (String::new(), Err(e)),
        };
        crate::telemetry::spans::record_search(&span, &result);
        if let Ok(SearchResponse { overflow: Some(o), .. }) = &result {
            self.lookup.grant().note_overflow(&o.reference, &service);
        }
        let started = match &result {
            Ok(r) if waited => Instant::now().checked_sub(Duration::from_millis(r.duration_ms)).unwrap_or(started),
            _ => started,
        };
        self.count(&service, result.as_ref().map(|r| r.cached), started).await;
        result.map(|response| FollowResponse { response, cursor })
    }

    /// Aggregates over a service's lines (the plugins' `aggregate.summarize`),
    /// counted in the search metrics like a search of the same service.
    pub async fn summarize(self: Arc<Self>, scope: CallScope, req: AggregateRequest) -> Result<AggregateResponse, SearchError> {
        let started = Instant::now();
        let service = req.lines.service.clone();
        let span = crate::telemetry::spans::search(&req.lines);
        let result = async { self.lookup.summarize(self.coordinator().await, &scope, req).await }.instrument(span.clone()).await;
        self.count(&service, result.as_ref().map(|r| r.cached), started).await;
        result
    }

    /// A search or aggregate of `service` in the shared metrics: answered
    /// (from the cache or not) with its duration, or an error by kind.
    async fn count(&self, service: &str, outcome: Result<bool, &SearchError>, started: Instant) {
        let coord = self.coordinator().await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(cached) => {
                let cached = Cached::of(cached).as_str();
                coord.metrics().incr(names::SEARCHES_TOTAL, &[(label::SERVICE, service), (label::CACHED, cached)], 1.0);
                coord.metrics().observe(names::SEARCH_DURATION_MS, &[(label::SERVICE, service)], elapsed_ms);
            }
            Err(e) => {
                coord.metrics().incr(names::ERRORS_TOTAL, &[(label::KIND, crate::telemetry::spans::error_kind(e.kind).as_str())], 1.0);
            }
        }
    }

    /// The services this session's person may search ([`crate::lookup::Grant`]).
    pub async fn list_services(self: Arc<Self>) -> Result<Vec<ServiceInfo>, SearchError> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.list_services_where(|name| self.lookup.grant().allows(name)))
            .await
            .map_err(|e| SearchError::internal(format!("listing services failed: {e}")))
    }

    pub async fn read_overflow(self: Arc<Self>, reference: String, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        self.lookup.grant().check_overflow(&reference)?;
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.read_overflow(&reference, offset, limit))
            .await
            .map_err(|e| SearchError::internal(format!("reading the overflow failed: {e}")))?
    }

    /// The shared metrics, holding only the services this session's
    /// person may search (the plugins' `metrics.read`).
    pub async fn metrics(self: Arc<Self>) -> MetricsSnapshot {
        let snap = self.coordinator().await.snapshot().await;
        self.lookup.grant().restrict(snap)
    }

    /// The last `minutes` minutes of the windowed metrics, restricted like
    /// [`Gateway::metrics`] (the plugins' `metrics.read-window`).
    pub async fn metrics_window(self: Arc<Self>, minutes: u32) -> MetricsSnapshot {
        let snap = self.coordinator().await.window_snapshot(minutes).await;
        self.lookup.grant().restrict(snap)
    }

    /// Flush metrics and release anything held; remove the session directory.
    pub async fn shutdown(&self) {
        if let Some(c) = self.coord.get() {
            c.shutdown().await;
        }
        self.core.close();
    }
}
