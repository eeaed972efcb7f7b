//! Running one guest invocation, for tool plugins and exporters alike: a
//! fresh store from the plugin's grants, the time limit and cancellation,
//! how it ended, and what a failure says (the limit it hit, the trap, the
//! panic message, what it was denied).

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::sandbox::Sandbox;
use super::state::{new_store, PluginState, Watch};
use super::{HostServices, PluginError};
use crate::call::CallScope;

/// After the deadline, how long the host waits for the epoch interrupt
/// before dropping the call outright (covers a guest blocked in a host call).
pub(super) const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// What happened to one guest invocation.
pub(super) enum Ended<T> {
    Done(wasmtime::Result<T>),
    /// The instance could not be created (store set-up or instantiation).
    Setup(String),
    TimedOut,
    Cancelled,
}

/// Which limit a deadline came from.
#[derive(Clone, Copy)]
pub(super) enum Limit {
    /// The plugin's `timeout_ms`.
    Plugin,
    /// The call's own (host) deadline, shorter than the plugin's.
    Call(Duration),
}

/// A fresh store in `engine` (the plugin's) for one guest invocation, from
/// the plugin's grants.
pub(super) fn fresh_store(
    engine: &wasmtime::Engine,
    sandbox: &Sandbox,
    services: Arc<dyn HostServices>,
    scope: Option<CallScope>,
    deadline: Instant,
) -> Result<(wasmtime::Store<PluginState>, Watch), String> {
    new_store(engine, sandbox, services, scope, deadline).map_err(|e| e.to_string())
}

/// Run `work` (instantiate if needed, then call) in `prepared`'s store
/// under `limit`, stopping early on `cancel`. Returns how it ended and what
/// the host observed.
pub(super) async fn run_guest<T, F, Fut>(
    prepared: Result<(wasmtime::Store<PluginState>, Watch), String>,
    limit: Duration,
    cancel: Option<crate::call::CancellationToken>,
    work: F,
) -> (Ended<T>, Watch)
where
    F: FnOnce(wasmtime::Store<PluginState>) -> Fut,
    Fut: std::future::Future<Output = wasmtime::Result<T>>,
{
    let (store, watch) = match prepared {
        Ok(s) => s,
        Err(e) => return (Ended::Setup(e), Watch::default()),
    };
    let deadline = tokio::time::Instant::now() + limit + DEADLINE_GRACE;
    if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
        return (Ended::Cancelled, watch);
    }
    let mut fut = std::pin::pin!(work(store));
    // Most guests finish on their first poll (no host call that waits):
    // those need neither a timer in the runtime's wheel nor a waiter on the
    // cancellation token, which are armed only for a guest that waits. The
    // deadline counts from before that first poll all the same.
    if let Poll::Ready(r) = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return (Ended::Done(r), watch);
    }
    let cancelled = async {
        match &cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        biased;
        _ = cancelled => Ended::Cancelled,
        r = tokio::time::timeout_at(deadline, fut) => match r {
            Ok(r) => Ended::Done(r),
            Err(_) => Ended::TimedOut,
        },
    };
    (ended, watch)
}

/// `who` is `plugin 'name'` or `exporter 'name'`.
pub(super) fn timeout_message(who: &str, sandbox: &Sandbox, what: &str, which: Limit) -> String {
    match which {
        Limit::Plugin => format!("{who} exceeded its time limit (timeout_ms = {}) {what}; the call was stopped", sandbox.timeout_ms),
        Limit::Call(d) => {
            format!("{who} ran past the call's deadline ({} ms left when it started) {what}; the call was stopped", d.as_millis())
        }
    }
}

/// Explain a guest failure: the limit it hit, or the trap (with the panic
/// message from its stderr, when there is one).
/// `who` is `plugin 'name'` or `exporter 'name'`.
pub(super) fn describe_trap(who: &str, sandbox: &Sandbox, what: &str, e: &wasmtime::Error, watch: &Watch, which: Limit) -> String {
    if watch.memory_hit() {
        return format!("{who} exceeded its memory limit (memory_mb = {}) {what}; the call was stopped", sandbox.memory_mb);
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("{who} exited (status {}) {what} instead of returning a result", exit.0);
    }
    let trap = e.downcast_ref::<wasmtime::Trap>().copied();
    match trap {
        Some(wasmtime::Trap::Interrupt) => return timeout_message(who, sandbox, what, which),
        Some(wasmtime::Trap::StackOverflow) => return format!("{who} overflowed its stack {what}"),
        _ => {}
    }
    let panicked = watch.stderr.panic_message();
    let mut msg = match (trap, &panicked) {
        (_, Some(p)) => format!("{who} panicked {what}: {p}"),
        (Some(t), None) => format!("{who} trapped {what}: {t}"),
        (None, None) => {
            let text = format!("{e:#}");
            if text.contains("concurrent") && text.contains("limit") {
                format!("{who} could not start {what}: too many plugin instances at once; retry shortly")
            } else {
                format!("{who} failed {what}: {}", first_line(&text))
            }
        }
    };
    if panicked.is_none() {
        if let Some(s) = watch.stderr.last_lines(3, 600) {
            msg.push_str(&format!(" (stderr: {s})"));
        }
    }
    let denials = watch.denials.take();
    if !denials.is_empty() {
        msg.push_str(&format!("; it was denied: {}", denials.join("; ")));
    }
    msg
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A component whose imports the host cannot satisfy.
pub(super) fn link_error(name: &str, e: &wasmtime::Error) -> PluginError {
    PluginError::load(
        name,
        format!("cannot be linked: {} (it may import an interface this host does not provide)", first_line(&format!("{e:#}"))),
    )
}

pub(super) fn hint_missing(message: String, path: &std::path::Path) -> String {
    if !path.exists() {
        format!("{message} (build the plugins first: scripts/build-plugins)")
    } else {
        message
    }
}
