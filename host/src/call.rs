//! What one tool call carries across rooms: who asked, how to report
//! progress, how to learn it was cancelled, and when it must be done.
//!
//! `mcp` creates a [`CallScope`] per `tools/call`; `plugins` hands it to the
//! component (progress / cancelled imports) and to the host services the
//! component calls (search). No room needs to know where the others come from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
pub use tokio_util::sync::CancellationToken;

/// Receives progress reports for one call. `mcp` turns them into
/// `notifications/progress` when the request carried a progress token; with
/// no token the sink is [`ProgressSink::none`] and reports are dropped.
#[derive(Clone)]
pub struct ProgressSink(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

/// One progress report.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

impl ProgressSink {
    pub fn none() -> Self {
        ProgressSink(None)
    }
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        ProgressSink(Some(Arc::new(f)))
    }
    /// Whether anyone listens (lets callers skip building messages).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }
    pub fn report(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(f) = &self.0 {
            f(Progress { progress, total, message })
        }
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_active() { "ProgressSink(active)" } else { "ProgressSink(none)" })
    }
}

/// Everything a call needs to know about itself.
#[derive(Clone, Debug)]
pub struct CallScope {
    /// JSON-RPC request id as JSON text.
    pub request_id: String,
    /// This process's session id.
    pub session_id: String,
    /// `user@address` from `SSH_CONNECTION`/`USER`, or the local user.
    pub user: String,
    /// The MCP protocol version the request was made under.
    pub protocol_version: String,
    /// `name/version` of the client, when known.
    pub client: Option<String>,
    /// W3C `traceparent` from the request's `_meta`, when present.
    pub traceparent: Option<String>,
    pub progress: ProgressSink,
    /// Cancelled by `notifications/cancelled` or by the session ending.
    pub cancel: CancellationToken,
    /// When the host gives up on the call.
    pub deadline: Instant,
}

impl CallScope {
    /// A scope for calls made outside MCP (CLI, tests, benchmarks).
    pub fn detached(session_id: &str, timeout: Duration) -> Self {
        CallScope {
            request_id: "0".into(),
            session_id: session_id.into(),
            user: crate::identity::local_user(),
            protocol_version: String::new(),
            client: None,
            traceparent: None,
            progress: ProgressSink::none(),
            cancel: CancellationToken::new(),
            deadline: Instant::now() + timeout,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A tool as the host offers it to clients (from a plugin's `tools.list`).
#[derive(Clone, Debug)]
pub struct ToolDescriptor {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    /// MCP `ToolAnnotations` as JSON (`readOnlyHint`, ...), when stated.
    pub annotations: Option<Value>,
    /// The plugin that declared it (for errors and metrics).
    pub plugin: String,
}

/// A tool result in MCP terms.
#[derive(Clone, Debug, Default)]
pub struct ToolOutput {
    /// MCP content blocks (`{"type":"text","text":...}`, ...).
    pub content: Vec<Value>,
    pub structured_content: Option<Value>,
    pub is_error: bool,
    /// The host failed the call (the component trapped, ran out of time,
    /// could not be set up, or answered malformed): still an `isError`
    /// result for the model, but `outcome = "internal"` for operators, not
    /// a tool-level error like a bad regex.
    pub failed_in_host: bool,
}

impl ToolOutput {
    /// A tool-level error the model should read (`isError: true`).
    pub fn error_text(text: impl Into<String>) -> Self {
        ToolOutput { content: vec![serde_json::json!({"type": "text", "text": text.into()})], is_error: true, ..Default::default() }
    }

    /// An `isError` result for a call the host failed ([`ToolOutput::failed_in_host`]).
    pub fn host_failure(text: impl Into<String>) -> Self {
        ToolOutput { failed_in_host: true, ..ToolOutput::error_text(text) }
    }
}

/// Failures that become JSON-RPC errors rather than `isError` results.
#[derive(Debug, thiserror::Error)]
pub enum ToolCallError {
    /// `-32602`: no tool of that name.
    #[error("unknown tool '{0}'")]
    UnknownTool(String),
    /// `-32602`: an argument is wrong; `path` is a JSON path (`$.max_results`).
    #[error("invalid argument at {path}: {message}")]
    InvalidArguments { path: String, message: String },
    /// `-32603`.
    #[error("{0}")]
    Internal(String),
}

/// What `mcp` needs from whoever runs tools (the plugin runtime, or a
/// native stand-in in tests and benchmarks).
pub trait ToolHost: Send + Sync + 'static {
    /// Every tool, in a stable order.
    fn tools(&self) -> Vec<ToolDescriptor>;

    /// Run one tool. Arguments are already validated against the input schema.
    fn call(
        &self,
        name: &str,
        arguments: Value,
        scope: CallScope,
    ) -> futures_util::future::BoxFuture<'static, Result<ToolOutput, ToolCallError>>;
}

/// Work waiting for the answer being made on this thread.
type Deferred = Vec<Box<dyn FnOnce()>>;

thread_local! {
    /// Work deferred by [`after_answer`] while [`deferring`] runs on this thread.
    static DEFERRED: std::cell::RefCell<Option<Deferred>> = const { std::cell::RefCell::new(None) };
}

/// Run `work` once the answer being made on this thread has been written:
/// for work that is no part of any answer (handing a finished instance to
/// the standby thread, which wakes that thread: a system call) and would
/// otherwise delay it. Outside [`deferring`] (a call running as a task of
/// its own, a test) it runs now.
pub fn after_answer(work: impl FnOnce() + 'static) {
    let work: Box<dyn FnOnce()> = Box::new(work);
    let left = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(queue) => {
            queue.push(work);
            None
        }
        None => Some(work),
    });
    if let Some(work) = left {
        work();
    }
}

/// Run `f` (which makes and writes answers), then the work it deferred
/// with [`after_answer`]. Nested calls defer to the outermost.
pub fn deferring<R>(f: impl FnOnce() -> R) -> R {
    let outermost = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_some() {
            return false;
        }
        *d = Some(Vec::new());
        true
    });
    let r = f();
    if outermost {
        let work = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
        for w in work {
            w();
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn deferred_work_runs_after_the_answer_in_order_and_at_once_outside() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        after_answer(move || l.borrow_mut().push("outside: now"));
        let r = deferring(|| {
            let (a, b) = (log.clone(), log.clone());
            after_answer(move || a.borrow_mut().push("first"));
            // Nested: defers to the outermost.
            deferring(|| after_answer(move || b.borrow_mut().push("second")));
            log.borrow_mut().push("answer");
            7
        });
        assert_eq!(r, 7);
        assert_eq!(*log.borrow(), ["outside: now", "answer", "first", "second"]);
    }
}
