//! Logging setup: `tracing` to stderr or a file (never stdout, which carries
//! JSON-RPC), as text or JSON lines. JSON lines carry `dd.trace_id` /
//! `dd.span_id` (Datadog's 64-bit decimal ids: the lower 64 bits of the W3C
//! ids) and `dd.service`/`dd.env`/`dd.version`, so Datadog links logs and
//! traces. The [`TelemetryLayer`] is installed alongside, with its own
//! filter: telemetry spans are recorded whatever the log level.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::filter::{dynamic_filter_fn, filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::layer::current_ids;
use super::{TelemetryLayer, SPAN_TARGET};

/// Keeps logging alive; flushes the log file when dropped. Hold it in `main`.
pub struct TelemetryGuard {
    file: Option<Arc<std::sync::Mutex<std::fs::File>>>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = f.flush();
            }
        }
    }
}

/// Install the global subscriber. `level`: `trace`..`error` or an
/// `EnvFilter` directive (`logai=debug,info`); `format`: `text` or `json`;
/// `file`: append there instead of stderr.
pub fn init_logging(level: &str, format: &str, file: Option<&Path>) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::builder()
        .with_default_directive(tracing::level_filters::LevelFilter::INFO.into())
        .parse(level.trim())
        .with_context(|| format!("log level {level:?} is not a level (trace, debug, info, warn, error) or an EnvFilter directive"))?;
    // The fmt layer also sees telemetry spans (not their events), so log lines
    // inside them can name their trace.
    let fmt_filter = filter.or(filter_fn(|m| m.is_span() && m.target() == SPAN_TARGET));
    let json = match format.trim() {
        "json" => true,
        "text" | "" => false,
        other => anyhow::bail!("log format {other:?} is not `text` or `json`"),
    };
    // The telemetry layer keeps per-span data (fields, trace ids) for the
    // exporters and for the trace ids of JSON log lines; with text logs and
    // no exporter nothing reads it, and a tool call (that makes a span) is
    // spared building it.
    let telemetry_filter = dynamic_filter_fn(move |m, _| {
        if m.target() == SPAN_TARGET {
            json || super::exporting()
        } else {
            m.is_event() && *m.level() <= tracing::Level::WARN
        }
    })
    .with_callsite_filter(move |m| {
        if m.target() == SPAN_TARGET {
            if json {
                Interest::always()
            } else {
                Interest::sometimes()
            }
        } else if m.is_event() && *m.level() <= tracing::Level::WARN {
            Interest::always()
        } else {
            Interest::never()
        }
    });
    let (writer, file_handle): (BoxMakeWriter, Option<Arc<std::sync::Mutex<std::fs::File>>>) = match file {
        Some(path) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            let f = Arc::new(std::sync::Mutex::new(f));
            (BoxMakeWriter::File(f.clone()), Some(f))
        }
        None => (BoxMakeWriter::Stderr, None),
    };
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(TelemetryLayer::global().with_filter(telemetry_filter));
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer).event_format(JsonFormat::from_env()).with_filter(fmt_filter))
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi).with_filter(fmt_filter)).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("a logger is already installed: {e}"))?;
    Ok(TelemetryGuard { file: file_handle })
}

#[derive(Clone)]
enum BoxMakeWriter {
    Stderr,
    File(Arc<std::sync::Mutex<std::fs::File>>),
}

enum AnyWriter<'a> {
    Stderr(std::io::StderrLock<'a>),
    File(std::sync::MutexGuard<'a, std::fs::File>),
}

impl std::io::Write for AnyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            AnyWriter::Stderr(s) => s.write(buf),
            AnyWriter::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            AnyWriter::Stderr(s) => s.flush(),
            AnyWriter::File(f) => f.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for BoxMakeWriter {
    type Writer = AnyWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        match self {
            BoxMakeWriter::Stderr => AnyWriter::Stderr(std::io::stderr().lock()),
            BoxMakeWriter::File(f) => AnyWriter::File(f.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }
}

/// One JSON object per line: `timestamp`, `level`, `target`, `message`,
/// `fields`, `span` (innermost span name), `spans`, and the `dd.*` keys.
pub struct JsonFormat {
    service: String,
    env: Option<String>,
    version: String,
}

impl JsonFormat {
    /// `DD_SERVICE` (default `logai`), `DD_ENV`, `DD_VERSION` (default the crate version).
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        JsonFormat {
            service: var("DD_SERVICE").unwrap_or_else(|| "logai".into()),
            env: var("DD_ENV"),
            version: var("DD_VERSION").unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        }
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), Value::String(v.into()));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), Value::Bool(v));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), Value::from(v));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), Value::from(v));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().into(), serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.0.insert(f.name().into(), Value::String(v.to_string()));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().into(), Value::String(format!("{v:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &TracingEvent<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let message = fields.remove("message").unwrap_or(Value::String(String::new()));
        let mut obj = Map::new();
        obj.insert("timestamp".into(), Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        obj.insert("level".into(), Value::String(meta.level().to_string()));
        obj.insert("target".into(), Value::String(meta.target().to_string()));
        obj.insert("message".into(), message);
        if !fields.is_empty() {
            obj.insert("fields".into(), Value::Object(fields));
        }
        if let Some(scope) = ctx.event_scope() {
            let names: Vec<Value> = scope.from_root().map(|s| Value::String(s.name().to_string())).collect();
            if let Some(last) = names.last() {
                obj.insert("span".into(), last.clone());
                obj.insert("spans".into(), Value::Array(names));
            }
        }
        if let Some(ids) = current_ids(ctx) {
            obj.insert("dd.trace_id".into(), Value::String(ids.dd_trace_id().to_string()));
            obj.insert("dd.span_id".into(), Value::String(ids.span_id.to_string()));
            obj.insert("trace_id".into(), Value::String(ids.trace_hex()));
        }
        obj.insert("dd.service".into(), Value::String(self.service.clone()));
        if let Some(env) = &self.env {
            obj.insert("dd.env".into(), Value::String(env.clone()));
        }
        obj.insert("dd.version".into(), Value::String(self.version.clone()));
        let line = serde_json::to_string(&Value::Object(obj)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{line}")
    }
}
