//! Telemetry: events from every room, a bounded export queue, batches fed to
//! the exporter components in the background — never on the response path.
//!
//! Other rooms know nothing of this module: they open `tracing` spans with
//! target [`SPAN_TARGET`] (helpers in [`spans`]) and the [`layer`] turns each
//! closed span into a span event (ids, parent, duration, fields as
//! attributes), failed spans and `error!` logs into error events (with the
//! session's breadcrumbs), and hands them to the global [`Telemetry`].
//!
//! ```text
//! tracing spans ─► TelemetryLayer ─► Telemetry::emit (try_send; full ⇒ drop + count)
//!                                        │ bounded queue (queue_capacity); it also holds
//!                                        │ the first events while exporters still load
//!                                        ▼
//!                               dispatcher task: batches (batch_size / batch_interval_ms)
//!                                        │ one bounded lane per exporter (a slow one drops its own batches)
//!                                        ▼
//!                               ExportSink::export (the component; the runtime bounds its time)
//! ```
//!
//! Span names and fields are listed in `docs/telemetry.md`.

pub mod drops;
pub mod exporters;
pub mod layer;
pub mod logging;
pub mod metrics_server;
pub mod spans;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::TelemetryConfig;
use crate::coord::names::{self, label, DropReason};
use crate::coord::Metrics;

pub use layer::TelemetryLayer;
pub use logging::{init_logging, TelemetryGuard};
pub use metrics_server::{run_metrics_server, serve_metrics};

/// Target of the spans that become telemetry (`info_span!(target: SPAN_TARGET, "search", ...)`).
pub const SPAN_TARGET: &str = "logai::span";
/// `logai@<version>`: the `release` attribute of every event.
pub const RELEASE: &str = concat!("logai@", env!("CARGO_PKG_VERSION"));
/// Breadcrumbs kept per session (the most recent steps).
pub const MAX_BREADCRUMBS: usize = 32;
/// Batches waiting per exporter; a slower exporter drops (and counts) beyond this.
pub const EXPORTER_LANE_BATCHES: usize = 4;

// The event model is the exporter contract's (WIT `telemetry-types`),
// defined once where the plugin runtime hands it to exporter components.
pub use crate::plugins::exporter::{Breadcrumb, EventKind, ExportEvent as Event, MetricKind, MetricPoint};

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Where batches go: an exporter component (see [`exporters`]) or, in tests
/// and benchmarks, anything else that receives batches.
pub trait ExportSink: Send + Sync + 'static {
    /// The exporter's manifest name (for logs and metrics).
    fn name(&self) -> &str;
    /// Send one batch. An error is logged and counted; the batch is dropped.
    fn export(&self, batch: Arc<Vec<Event>>) -> BoxFuture<'_, Result<(), String>>;
    /// Send anything buffered (at shutdown).
    fn flush(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Counts since start (this process).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetryStats {
    /// Events accepted into the queue.
    pub queued: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Per exporter: (name, events exported, events dropped (lane full or export failed), failed exports).
    pub exporters: Vec<ExporterStats>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExporterStats {
    pub name: String,
    pub exported_events: u64,
    pub dropped_events: u64,
    pub failed_exports: u64,
}

#[derive(Default)]
struct LaneCounters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Drops of this lane not yet reported to its exporter.
    unreported: drops::Unreported,
}

struct Inner {
    tx: Option<mpsc::Sender<Event>>,
    cfg: TelemetryConfig,
    queued: AtomicU64,
    dropped: AtomicU64,
    lanes: Vec<(String, Arc<LaneCounters>)>,
    breadcrumbs: Mutex<VecDeque<Breadcrumb>>,
    /// Drops, counted in the shared metrics from the first one (held here
    /// until the coordinator is up).
    drops: Arc<Drops>,
    stop: CancellationToken,
    /// Set once the exporters' loading is done (whether or not each loaded).
    loaded: Arc<AtomicBool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The telemetry pipeline of this process. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry(Arc<Inner>);

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").field("enabled", &self.is_enabled()).field("exporters", &self.exporter_names()).finish()
    }
}

static GLOBAL: RwLock<Option<Telemetry>> = RwLock::new(None);

/// Whether the installed pipeline exports (read per telemetry span by the
/// logging filter, which keeps the layer off spans nothing would export).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the installed pipeline has an exporter enabled.
pub(crate) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The pipeline the [`TelemetryLayer`] feeds (set by [`Telemetry::install`]).
pub fn global() -> Option<Telemetry> {
    GLOBAL.read().clone()
}

impl Telemetry {
    /// A pipeline that exports nothing (no exporter enabled). Events are
    /// not even built: [`Telemetry::is_enabled`] is false.
    pub fn disabled(cfg: &TelemetryConfig) -> Telemetry {
        Telemetry(Arc::new(Inner {
            tx: None,
            cfg: cfg.clone(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lanes: Vec::new(),
            breadcrumbs: Mutex::new(VecDeque::new()),
            drops: Arc::new(Drops::default()),
            stop: CancellationToken::new(),
            loaded: Arc::new(AtomicBool::new(true)),
            task: Mutex::new(None),
        }))
    }

    /// Start the pipeline (needs a tokio runtime). With no sinks this is
    /// [`Telemetry::disabled`]. `metrics`, when given, counts drops in the
    /// shared metrics (`logai_telemetry_dropped_total`) so they show in
    /// `logai metrics`.
    pub fn start(cfg: &TelemetryConfig, sinks: Vec<Arc<dyn ExportSink>>, metrics: Option<Metrics>) -> Telemetry {
        if sinks.is_empty() {
            return Telemetry::disabled(cfg);
        }
        let names = sinks.iter().map(|s| s.name().to_string()).collect();
        let t = Telemetry::start_loading(cfg, names, Box::pin(async move { (sinks, None) }));
        if let Some(m) = metrics {
            t.count_drops_in(m);
        }
        t
    }

    /// Start the pipeline now, while the exporters named in `names` are
    /// still loading (`loading` resolves to the ones that loaded and the
    /// shared metrics). Events queue from the first moment, so a session's
    /// first calls are exported even when compiling an exporter takes a
    /// second; nothing waits for the load but [`Telemetry::shutdown`], under
    /// its deadline. An exporter that fails to load keeps its lane in
    /// [`Telemetry::stats`] with every event counted as dropped.
    pub fn start_loading(cfg: &TelemetryConfig, names: Vec<String>, loading: BoxFuture<'static, Loaded>) -> Telemetry {
        if names.is_empty() {
            return Telemetry::disabled(cfg);
        }
        let capacity = cfg.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let lanes: Vec<(String, Arc<LaneCounters>)> = names.into_iter().map(|n| (n, Arc::new(LaneCounters::default()))).collect();
        let stop = CancellationToken::new();
        let loaded = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(Drops::default());
        let inner = Arc::new(Inner {
            tx: Some(tx),
            cfg: cfg.clone(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lanes: lanes.clone(),
            breadcrumbs: Mutex::new(VecDeque::new()),
            drops: drops.clone(),
            stop: stop.clone(),
            loaded: loaded.clone(),
            task: Mutex::new(None),
        });
        let batching = Batching { size: cfg.batch_size.max(1), interval: Duration::from_millis(cfg.batch_interval_ms.max(1)) };
        let task = tokio::spawn(async move {
            let (sinks, m) = loading.await;
            loaded.store(true, Ordering::Relaxed);
            if let Some(m) = m {
                drops.count_in(m);
            }
            dispatch(rx, sinks, lanes, batching, stop, drops).await
        });
        *inner.task.lock() = Some(task);
        tracing::debug!(exporters = ?inner.lanes.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), capacity, "telemetry pipeline started");
        Telemetry(inner)
    }

    /// Count drops in these shared metrics from now on, with the ones
    /// counted before (`logai_telemetry_dropped_total`): a session calls it
    /// as soon as its coordinator is up, whether or not the exporters loaded.
    pub fn count_drops_in(&self, metrics: Metrics) {
        self.0.drops.count_in(metrics);
    }

    /// Make this the pipeline the tracing layer feeds.
    pub fn install(&self) {
        EXPORTING.store(self.is_enabled(), Ordering::Relaxed);
        *GLOBAL.write() = Some(self.clone());
    }

    /// Stop feeding the global pipeline (tests).
    pub fn uninstall() {
        EXPORTING.store(false, Ordering::Relaxed);
        *GLOBAL.write() = None;
    }

    /// True when at least one exporter receives events.
    pub fn is_enabled(&self) -> bool {
        self.0.tx.is_some()
    }

    pub fn exporter_names(&self) -> Vec<String> {
        self.0.lanes.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.0.cfg
    }

    /// Queue one event; never blocks. A full queue drops it and counts the drop.
    pub fn emit(&self, event: Event) {
        let Some(tx) = &self.0.tx else { return };
        match tx.try_send(event) {
            Ok(()) => {
                self.0.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let n = self.0.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                self.0.drops.add(DropReason::QueueFull, "", 1);
                self.0.drops.queue_full.add(ev.kind);
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped = n,
                        capacity = self.0.cfg.queue_capacity,
                        "telemetry queue full: dropping events (exporters too slow or down)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.0.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Emit a metric observation (exported as-is, e.g. to DogStatsD).
    pub fn metric(&self, name: &str, kind: MetricKind, value: f64, tags: &[(&str, &str)]) {
        if !self.is_enabled() {
            return;
        }
        self.emit(metric_event(name, kind, value, tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
    }

    /// Remember one step of this session (attached to later error events).
    pub fn breadcrumb(&self, category: &str, message: String) {
        let mut b = self.0.breadcrumbs.lock();
        if b.len() == MAX_BREADCRUMBS {
            b.pop_front();
        }
        b.push_back(Breadcrumb { timestamp_ms: now_ms(), category: category.to_string(), message });
    }

    /// The session's recent steps, oldest first.
    pub fn breadcrumbs(&self) -> Vec<Breadcrumb> {
        self.0.breadcrumbs.lock().iter().cloned().collect()
    }

    pub fn stats(&self) -> TelemetryStats {
        TelemetryStats {
            queued: self.0.queued.load(Ordering::Relaxed),
            dropped_queue_full: self.0.dropped.load(Ordering::Relaxed),
            exporters: self
                .0
                .lanes
                .iter()
                .map(|(name, c)| ExporterStats {
                    name: name.clone(),
                    exported_events: c.exported.load(Ordering::Relaxed),
                    dropped_events: c.dropped.load(Ordering::Relaxed),
                    failed_exports: c.failed.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }

    /// Export what is queued, flush every exporter and stop, giving up at
    /// `deadline` (what is left then is dropped and logged). Idempotent.
    pub async fn shutdown(&self, deadline: Instant) {
        self.0.stop.cancel();
        let task = self.0.task.lock().take();
        if let Some(mut task) = task {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, &mut task).await {
                Ok(_) => {}
                Err(_) => {
                    self.give_up(left);
                    task.abort();
                }
            }
        }
    }
}

/// A metric observation as an export event (the one shape every metric
/// event has, whoever emits it).
fn metric_event(name: &str, kind: MetricKind, value: f64, tags: Vec<(String, String)>) -> Event {
    Event {
        kind: EventKind::Metric,
        timestamp_ms: now_ms(),
        name: name.to_string(),
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: None,
        duration_us: 0,
        status: "ok".into(),
        attributes: vec![("release".into(), RELEASE.into())],
        message: None,
        breadcrumbs: Vec::new(),
        metric: Some(MetricPoint { name: name.to_string(), kind, value, tags }),
    }
}

/// Dropped events as `logai_telemetry_dropped_total{reason, exporter}`.
/// Until the shared metrics are reachable (a session's coordinator connects
/// in the background) they are held here, then added at once: no drop goes
/// uncounted, however early.
#[derive(Default)]
struct Drops {
    state: Mutex<DropsState>,
    /// The queue's drops by kind of event, reported to every exporter ([`drops`]).
    queue_full: drops::QueueFull,
}

#[derive(Default)]
struct DropsState {
    metrics: Option<Metrics>,
    held: Vec<(DropReason, String, u64)>,
}

impl Drops {
    fn add(&self, reason: DropReason, exporter: &str, n: u64) {
        let mut s = self.state.lock();
        match &s.metrics {
            Some(m) => record_drops(m, reason, exporter, n),
            None => s.held.push((reason, exporter.to_string(), n)),
        }
    }

    fn count_in(&self, metrics: Metrics) {
        let mut s = self.state.lock();
        for (reason, exporter, n) in std::mem::take(&mut s.held) {
            record_drops(&metrics, reason, &exporter, n);
        }
        s.metrics = Some(metrics);
    }
}

fn record_drops(m: &Metrics, reason: DropReason, exporter: &str, n: u64) {
    if exporter.is_empty() {
        m.incr(names::TELEMETRY_DROPPED_TOTAL, &[(label::REASON, reason.as_str())], n as f64);
    } else {
        m.incr(names::TELEMETRY_DROPPED_TOTAL, &[(label::REASON, reason.as_str()), (label::EXPORTER, exporter)], n as f64);
    }
}

/// What loading the exporters yields: the sinks that loaded and the shared
/// metrics.
pub type Loaded = (Vec<Arc<dyn ExportSink>>, Option<Metrics>);

struct Batching {
    size: usize,
    interval: Duration,
}

/// One exporter's lane: its batches, each led by the drops it was not told
/// of yet ([`drops`]), exported in turn; then a flush.
async fn lane(mut rx: mpsc::Receiver<Arc<Vec<Event>>>, sink: Arc<dyn ExportSink>, counters: Arc<LaneCounters>, drops: Arc<Drops>) {
    let mut reporter = drops::Reporter::default();
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        let report = reporter.take(&drops.queue_full, &counters.unreported);
        let sent = match report.events.is_empty() {
            true => batch.clone(),
            false => Arc::new(report.events.iter().chain(batch.iter()).cloned().collect()),
        };
        match sink.export(sent).await {
            Ok(()) => {
                reporter.delivered(report);
                counters.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                reporter.failed(report, &counters.unreported);
                counters.unreported.add_batch(DropReason::ExportFailed, &batch);
                counters.failed.fetch_add(1, Ordering::Relaxed);
                counters.dropped.fetch_add(n, Ordering::Relaxed);
                drops.add(DropReason::ExportFailed, sink.name(), n);
                tracing::warn!(exporter = sink.name(), events = n, error = %e, "telemetry export failed; batch dropped");
            }
        }
    }
    if let Err(e) = sink.flush().await {
        tracing::warn!(exporter = sink.name(), error = %e, "telemetry exporter flush failed");
    }
}

async fn dispatch(
    mut rx: mpsc::Receiver<Event>,
    sinks: Vec<Arc<dyn ExportSink>>,
    all_lanes: Vec<(String, Arc<LaneCounters>)>,
    batching: Batching,
    stop: CancellationToken,
    drops: Arc<Drops>,
) {
    let Batching { size: batch_size, interval } = batching;
    let lanes = Lanes::open(&sinks, all_lanes, drops);
    let batch = lanes.collect(&mut rx, batch_size, interval, &stop).await;
    lanes.drain(rx, batch, batch_size).await;
}

/// A batch as the lanes share it.
type Batch = Arc<Vec<Event>>;

/// The exporters' lanes: one bounded channel and task per loaded exporter,
/// and the counters of those that did not load.
struct Lanes {
    loaded: Vec<(String, Arc<LaneCounters>, mpsc::Sender<Batch>)>,
    unloaded: Vec<(String, Arc<LaneCounters>)>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    drops: Arc<Drops>,
}

impl Lanes {
    fn open(sinks: &[Arc<dyn ExportSink>], all_lanes: Vec<(String, Arc<LaneCounters>)>, drops: Arc<Drops>) -> Lanes {
        // An exporter that did not load keeps no lane: its share of each batch
        // is counted as dropped.
        let (lanes, unloaded): (Vec<_>, Vec<_>) = all_lanes.into_iter().partition(|(name, _)| sinks.iter().any(|s| s.name() == name));
        // One lane (bounded channel + task) per exporter: a slow or hung one
        // only drops its own batches.
        let mut loaded = Vec::new();
        let mut workers = Vec::new();
        for (name, counters) in lanes {
            let Some(sink) = sinks.iter().find(|s| s.name() == name).cloned() else { continue };
            let (tx, rx) = mpsc::channel::<Batch>(EXPORTER_LANE_BATCHES);
            workers.push(tokio::spawn(lane(rx, sink, counters.clone(), drops.clone())));
            loaded.push((name, counters, tx));
        }
        Lanes { loaded, unloaded, workers, drops }
    }

    /// Hands a batch to every lane without waiting: a busy lane drops it.
    fn send(&self, batch: Vec<Event>) {
        let batch = Arc::new(batch);
        for (name, counters) in &self.unloaded {
            counters.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.drops.add(DropReason::NotLoaded, name, batch.len() as u64);
        }
        for (name, counters, tx) in &self.loaded {
            if tx.try_send(batch.clone()).is_err() {
                counters.unreported.add_batch(DropReason::ExporterBusy, &batch);
                counters.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.drops.add(DropReason::ExporterBusy, name, batch.len() as u64);
                tracing::debug!(exporter = %name, events = batch.len(), "exporter busy: batch dropped");
            }
        }
    }

    /// Batches events until `stop` or the queue closes: a batch goes out
    /// when full or `interval` after its first event. Returns the batch in
    /// progress.
    async fn collect(&self, rx: &mut mpsc::Receiver<Event>, batch_size: usize, interval: Duration, stop: &CancellationToken) -> Vec<Event> {
        let mut batch: Vec<Event> = Vec::with_capacity(batch_size);
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let sleep = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        if batch.is_empty() {
                            due = Some(tokio::time::Instant::now() + interval);
                        }
                        batch.push(ev);
                        if batch.len() >= batch_size {
                            self.send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size)));
                            due = None;
                        }
                    }
                    None => break,
                },
                _ = sleep => {
                    if !batch.is_empty() {
                        self.send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size)));
                    }
                    due = None;
                }
            }
        }
        batch
    }

    /// Shutdown: drain what is queued; lanes get it as full batches. Waiting
    /// here (not try_send) is right: shutdown runs under a deadline.
    async fn drain(self, mut rx: mpsc::Receiver<Event>, mut batch: Vec<Event>, batch_size: usize) {
        rx.close();
        for (name, counters) in &self.unloaded {
            counters.dropped.fetch_add((batch.len() + rx.len()) as u64, Ordering::Relaxed);
            self.drops.add(DropReason::NotLoaded, name, (batch.len() + rx.len()) as u64);
        }
        while let Ok(ev) = rx.try_recv() {
            batch.push(ev);
            if batch.len() >= batch_size {
                self.deliver(Arc::new(std::mem::replace(&mut batch, Vec::with_capacity(batch_size)))).await;
            }
        }
        if !batch.is_empty() {
            self.deliver(Arc::new(batch)).await;
        }
        drop(self.loaded);
        for w in self.workers {
            let _ = w.await;
        }
    }

    /// Hands a batch to every lane, waiting for room.
    async fn deliver(&self, batch: Batch) {
        for (_, _, tx) in &self.loaded {
            let _ = tx.send(batch.clone()).await;
        }
    }
}

#[cfg(test)]
mod components_tests;
#[cfg(test)]
mod drops_tests;
#[cfg(test)]
mod tests;
