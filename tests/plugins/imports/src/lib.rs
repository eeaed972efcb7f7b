//! Calls every host import through the SDK and reports what came back.
use logai_plugin_sdk::search::{self, SearchRequest};
use logai_plugin_sdk::{cancelled, export_tools, json, log, metrics, progress, CallResult, Context, RawTool, ToolError, ToolSpec, Value};

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

/// Reports progress `steps` times and logs at every level.
pub struct Progress;
impl RawTool for Progress {
    fn spec() -> ToolSpec {
        ToolSpec::new("progress", "Reports progress.", obj(json!({"steps": {"type": "integer"}})))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let steps: u32 = ctx.arg("steps")?.unwrap_or(3);
        for i in 1..=steps {
            progress::report(i as f64, Some(steps as f64), Some(&format!("step {i}")));
        }
        log::trace("trace line");
        log::info(format!("info from request {}", ctx.request_id()));
        log::error("error line");
        Ok(CallResult::text(format!(
            "{steps} steps; cancelled={}; user={}; deadline_ms>0={}",
            cancelled(),
            ctx.user(),
            ctx.deadline_ms() > 0
        )))
    }
}

/// Runs a search and returns the response as JSON.
pub struct Search;
impl RawTool for Search {
    fn spec() -> ToolSpec {
        ToolSpec::new("search", "Searches.", obj(json!({"service": {"type": "string"}, "pattern": {"type": "string"}})))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let mut req =
            SearchRequest::new(ctx.arg::<String>("service")?.unwrap_or_default(), ctx.arg::<String>("pattern")?.unwrap_or_default());
        req.hours_back = Some(2);
        req.context = 1;
        Ok(match search::search(&req) {
            Ok(r) => CallResult::json(&json!({
                "total": r.total_matches,
                "files_searched": r.files_searched,
                "first": r.matches.first().map(|m| json!({"file": m.file, "line": m.line_number, "text": m.text, "before": m.before.len(), "ts": m.timestamp})),
                "overflow": r.overflow.map(|o| json!({"reference": o.reference, "total": o.total})),
                "partial_reason": r.partial_reason,
            }))?,
            Err(e) => CallResult::error(format!("search failed ({:?}, field {:?}): {}", e.kind, e.field, e.message)),
        })
    }
}

/// Lists services and reads an overflow page.
pub struct Services;
impl RawTool for Services {
    fn spec() -> ToolSpec {
        ToolSpec::new("services", "Lists services and reads an overflow.", obj(json!({})))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        let services = search::list_services().map_err(|e| ToolError::internal(e.message))?;
        let page = search::read_overflow("ref-1", 5, 10);
        CallResult::json(&json!({
            "services": services.iter().map(|s| json!({"name": s.name, "files": s.file_count, "latest": s.latest})).collect::<Vec<_>>(),
            "page": match page { Ok(p) => json!({"offset": p.offset, "total": p.total, "eof": p.eof, "n": p.matches.len()}), Err(e) => json!({"error": e.message}) },
        }))
    }
}

/// Reads the metrics snapshot.
pub struct Metrics;
impl RawTool for Metrics {
    fn spec() -> ToolSpec {
        ToolSpec::new("metrics", "Reads metrics.", obj(json!({})))
    }
    fn call(_ctx: &Context) -> Result<CallResult, ToolError> {
        let s = metrics::read();
        CallResult::json(&json!({
            "source": s.source,
            "counters": s.counters.iter().map(|c| json!({"name": c.name, "value": c.value, "labels": c.labels.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "histograms": s.histograms.iter().map(|h| json!({"name": h.name, "count": h.count, "buckets": h.bucket_counts})).collect::<Vec<_>>(),
        }))
    }
}

export_tools!(Progress, Search, Services, Metrics);
