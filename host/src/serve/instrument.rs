//! Every `tools/call` as telemetry sees it: a `tool.call` span (the root of
//! the call's span tree; the plugin and search spans nest inside it) and the
//! shared per-tool counters and latency histogram. Wraps any [`ToolHost`].

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tracing::Instrument;

use super::Gateway;
use crate::call::{CallScope, ToolCallError, ToolDescriptor, ToolHost, ToolOutput};
use crate::coord::names::{self, label, ToolOutcome};
use crate::telemetry::spans;

pub struct Instrumented<H> {
    inner: Arc<H>,
    gateway: Arc<Gateway>,
    /// Tool name → plugin, for span attributes.
    plugins: std::collections::HashMap<String, String>,
}

impl<H: ToolHost> Instrumented<H> {
    pub fn new(inner: H, gateway: Arc<Gateway>) -> Self {
        let plugins = inner.tools().into_iter().map(|t| (t.name, t.plugin)).collect();
        Instrumented { inner: Arc::new(inner), gateway, plugins }
    }
}

impl<H: ToolHost> ToolHost for Instrumented<H> {
    fn tools(&self) -> Vec<ToolDescriptor> {
        self.inner.tools()
    }

    fn call(&self, name: &str, arguments: Value, scope: CallScope) -> BoxFuture<'static, Result<ToolOutput, ToolCallError>> {
        let plugin = self.plugins.get(name).map(String::as_str).unwrap_or_default();
        let span = spans::tool_call(name, plugin, &scope);
        let fut = self.inner.call(name, arguments, scope).instrument(span.clone());
        let gateway = self.gateway.clone();
        let tool = name.to_string();
        Box::pin(async move {
            let started = Instant::now();
            let result = fut.await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            spans::record_tool_outcome(&span, &result);
            let outcome = spans::tool_outcome(&result);
            // Counting is no part of the answer: once the coordinator is up it
            // happens after the answer is written (before the next request).
            if gateway.started_coordinator().is_some() {
                crate::call::after_answer(move || {
                    if let Some(c) = gateway.started_coordinator() {
                        count(c.metrics(), &tool, outcome, ms);
                    }
                });
            } else {
                count(gateway.coordinator().await.metrics(), &tool, outcome, ms);
            }
            result
        })
    }
}

fn count(metrics: &crate::coord::Metrics, tool: &str, outcome: ToolOutcome, ms: f64) {
    metrics.incr(names::TOOL_CALLS_TOTAL, &[(label::TOOL, tool), (label::OUTCOME, outcome.as_str())], 1.0);
    metrics.observe(names::TOOL_DURATION_MS, &[(label::TOOL, tool)], ms);
}
